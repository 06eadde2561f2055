//! Nets from recipes and from pretrained stacks: the layer-wise modules'
//! encoders (and decoders) as dense layers, stacked into the MLP or
//! unrolled into the deep auto-encoder, the rest freshly initialised.

use super::{initial_weights, Dense, NetHost, Output};
use crate::autodiff::Activation;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::recipe::NetSpec;
use crate::models::{AeHost, RbmHost};
use crate::rng::RngStream;
use crate::units::UnitKind;

/// A module trained layer-wise: its encoder `h = f(x W + b)` and its
/// decoder back to the layer below, as dense layers.
pub trait Layerwise {
    fn encoder(&self) -> Result<Dense>;
    fn decoder(&self) -> Result<Dense>;
}

/// The activation that computes a layer's mean from its total input.
fn unit_activation(u: UnitKind, layer: &str) -> Result<Activation> {
    match u {
        UnitKind::Bernoulli => Ok(Activation::Sigmoid),
        UnitKind::Gaussian => Ok(Activation::Linear),
        UnitKind::Relu => Ok(Activation::Relu),
        UnitKind::Softmax { .. } => Err(Error::value(
            "pretrained RBM",
            format!("softmax {layer} units have no dense-layer equivalent"),
        )),
    }
}

impl Layerwise for RbmHost {
    /// `E[h | v] = f(v W + b_h)`.
    fn encoder(&self) -> Result<Dense> {
        Ok(Dense {
            w: self.w.clone(),
            b: self.b_h.clone(),
            act: unit_activation(self.hidden, "hidden")?,
        })
    }

    /// `E[v | h] = f(h Wᵀ + b_v)` (unit variances).
    fn decoder(&self) -> Result<Dense> {
        if self.log_var_v.is_some() {
            return Err(Error::value(
                "pretrained RBM",
                "an RBM with learned visible variances does not unroll into a dense decoder",
            ));
        }
        Ok(Dense {
            w: self.w.transpose(),
            b: self.b_v.clone(),
            act: unit_activation(self.visible, "visible")?,
        })
    }
}

/// A parameter of a validated auto-encoder.
fn ae_param(ae: &AeHost, name: &str) -> Result<HostMat> {
    ae.validate()?;
    ae.param(name)
        .cloned()
        .ok_or_else(|| Error::value("autoencoder", format!("no tensor '{name}'")))
}

impl Layerwise for AeHost {
    fn encoder(&self) -> Result<Dense> {
        let b = ae_param(self, "b_h")?;
        Ok(Dense {
            w: self.params[0].clone(),
            b,
            act: self.arch.encoder,
        })
    }

    fn decoder(&self) -> Result<Dense> {
        Ok(Dense {
            w: self.decoder_weights().transpose(),
            b: ae_param(self, "b_v")?,
            act: self.arch.decoder,
        })
    }
}

/// Pretrained layers: encoders input side first, and (for a deep
/// auto-encoder) each one's decoder.
pub struct Pretrained {
    pub encoders: Vec<Dense>,
    pub decoders: Vec<Dense>,
}

impl Pretrained {
    pub fn of(layers: &[&dyn Layerwise], with_decoders: bool) -> Result<Pretrained> {
        let encoders = layers
            .iter()
            .map(|l| l.encoder())
            .collect::<Result<Vec<_>>>()?;
        let decoders = match with_decoders {
            true => layers
                .iter()
                .map(|l| l.decoder())
                .collect::<Result<Vec<_>>>()?,
            false => vec![],
        };
        Ok(Pretrained { encoders, decoders })
    }
}

fn fresh(
    n_in: usize,
    n_out: usize,
    act: Activation,
    std: Option<f32>,
    rng: &mut RngStream,
) -> Dense {
    Dense {
        w: initial_weights((n_in, n_out), act, std, rng),
        b: HostMat::zeros(1, n_out),
        act,
    }
}

/// The hidden widths and activations: the recipe's, or the stack's (which
/// the recipe, where it states them, must match).
fn hidden_layers(
    spec: &NetSpec,
    n_in: usize,
    pre: Option<&Pretrained>,
) -> Result<Vec<(usize, Activation)>> {
    let Some(p) = pre else {
        if spec.hidden.is_empty() {
            return Err(Error::value(
                "model.hidden",
                "no hidden layers and no pretrained stack (`init`, `--init`) to take them from",
            ));
        }
        return Ok((0..spec.hidden.len())
            .map(|k| (spec.hidden[k], spec.hidden_activation(k)))
            .collect());
    };
    let widths: Vec<usize> = p.encoders.iter().map(|d| d.w.cols).collect();
    if let Some(first) = p.encoders.first() {
        if first.w.rows != n_in {
            return Err(Error::shape(
                "pretrained stack",
                format!(
                    "its first layer reads {} values, the data rows have {n_in}",
                    first.w.rows
                ),
            ));
        }
    }
    if !spec.hidden.is_empty() && spec.hidden != widths {
        return Err(Error::shape(
            "model.hidden",
            format!(
                "the recipe says {:?}, the pretrained stack has {widths:?}",
                spec.hidden
            ),
        ));
    }
    let acts: Vec<Activation> = p.encoders.iter().map(|d| d.act).collect();
    if !spec.activations.is_empty() && spec.activations != acts {
        return Err(Error::value(
            "model.activations",
            format!(
                "the recipe says {:?}, the pretrained stack has {acts:?}",
                spec.activations
            ),
        ));
    }
    Ok(widths.into_iter().zip(acts).collect())
}

/// The net `spec` describes for rows of `n_in` values: hidden layers from
/// `pre` where given (else fresh), then the softmax layer of a classifier
/// (always fresh) or the mirrored decoder of a deep auto-encoder.
pub fn build(
    spec: &NetSpec,
    n_in: usize,
    pre: Option<&Pretrained>,
    rng: &mut RngStream,
) -> Result<NetHost> {
    let hidden = hidden_layers(spec, n_in, pre)?;
    let std = spec.init_std;
    let mut layers = Vec::new();
    let mut width = n_in;
    for (k, &(w, act)) in hidden.iter().enumerate() {
        layers.push(match pre {
            Some(p) => p.encoders[k].clone(),
            None => fresh(width, w, act, std, rng),
        });
        width = w;
    }
    if !spec.autoencoder {
        layers.push(fresh(width, spec.classes, Activation::Linear, std, rng));
        let net = NetHost {
            layers,
            output: Output::Softmax,
        };
        net.validate()?;
        return Ok(net);
    }
    // The decoder mirrors the encoder: layer k's decoder maps back to the
    // width and activation of layer k - 1 (the output's for k = 0).
    for k in (0..hidden.len()).rev() {
        let (below, act) = match k {
            0 => (n_in, spec.output.activation()),
            _ => hidden[k - 1],
        };
        let d = match pre {
            Some(p) if !p.decoders.is_empty() => {
                let d = p.decoders[k].clone();
                if d.act != act {
                    return Err(Error::value(
                        "pretrained stack",
                        format!(
                            "layer {k}'s decoder is {} but the unrolled net needs {} there (model.output = {})",
                            d.act.name(),
                            act.name(),
                            spec.output.name()
                        ),
                    ));
                }
                d
            }
            _ => fresh(hidden[k].0, below, act, std, rng),
        };
        layers.push(d);
    }
    let net = NetHost {
        layers,
        output: spec.output,
    };
    net.validate()?;
    Ok(net)
}
