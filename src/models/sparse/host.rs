//! A sparse-coding model in host memory and its checkpoint form: the
//! dictionary `D` (atoms as rows), λ, the sign constraint, and PSD's
//! encoder when there is one.

use std::path::Path;

use crate::autodiff::Activation;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::{in_file, Checkpoint, Parts, Persist, Tensor};
use crate::models::net::Dense;

use super::psd::PsdArch;

#[derive(Clone, Debug, PartialEq)]
pub struct SparseHost {
    /// k x d.
    pub dict: HostMat,
    pub lambda: f32,
    pub nonneg: bool,
    /// PSD's `W_enc` (k x d), `b_enc` and `gain` (1 x k).
    pub encoder: Option<[HostMat; 3]>,
}

impl SparseHost {
    pub fn atoms(&self) -> usize {
        self.dict.rows
    }
    pub fn dim(&self) -> usize {
        self.dict.cols
    }

    /// Everything a model of this kind must satisfy: finite values, no
    /// atom of zero norm, λ > 0, encoder shapes that match the dictionary.
    pub fn validate(&self) -> Result<()> {
        if self.dict.rows == 0 || self.dict.cols == 0 {
            return Err(Error::shape(
                "dictionary D",
                format!("{:?}", self.dict.shape()),
            ));
        }
        super::dict::check_dictionary(&self.dict, "dictionary D")?;
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(Error::value(
                "lambda",
                format!("{} must be finite and > 0", self.lambda),
            ));
        }
        if let Some(enc) = &self.encoder {
            let arch = PsdArch {
                dim: self.dim(),
                atoms: self.atoms(),
            };
            super::check_params("PSD encoder", &arch.params(), enc)?;
        }
        Ok(())
    }
}

impl SparseHost {
    /// PSD's encoder as a dense layer for a feed-forward net:
    /// `tanh(x W_encᵀ + b_enc)`. The per-unit gain is left out: the next
    /// layer's weights absorb a scale per input.
    pub fn encoder_layer(&self) -> Result<Dense> {
        let [w, b, _] = self.encoder.as_ref().ok_or_else(|| {
            Error::value(
                "pretrained net",
                "sparse coding without an encoder has no feed-forward layer (its codes are an \
                 optimisation): train it with encoder = \"psd\"",
            )
        })?;
        Ok(Dense {
            w: w.transpose(),
            b: b.clone(),
            act: Activation::Tanh,
        })
    }
}

impl Persist for SparseHost {
    const KIND: &'static str = "sparse";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        p.tensors
            .insert("D".into(), Tensor::matrix(self.dict.clone()));
        if let Some([w, b, g]) = &self.encoder {
            p.tensors.insert("W_enc".into(), Tensor::matrix(w.clone()));
            p.tensors.insert("b_enc".into(), Tensor::vector(b.clone()));
            p.tensors.insert("gain".into(), Tensor::vector(g.clone()));
        }
        p.meta.insert("lambda".into(), self.lambda.to_string());
        p.meta.insert("nonneg".into(), self.nonneg.to_string());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let dict = p.tensor("D", 2, origin)?.clone();
        let lambda: f32 = p
            .meta("lambda", origin)?
            .parse()
            .map_err(|_| Error::format(origin, "metadata 'lambda' is not a number"))?;
        let nonneg = match p.meta("nonneg", origin)? {
            "true" => true,
            "false" => false,
            other => {
                return Err(Error::format(
                    origin,
                    format!("metadata 'nonneg' = '{other}' is not true or false"),
                ))
            }
        };
        let encoder = if p.tensors.contains_key("W_enc") {
            Some([
                p.tensor("W_enc", 2, origin)?.clone(),
                p.tensor("b_enc", 1, origin)?.clone(),
                p.tensor("gain", 1, origin)?.clone(),
            ])
        } else {
            None
        };
        let host = SparseHost {
            dict,
            lambda,
            nonneg,
            encoder,
        };
        host.validate().map_err(|e| in_file(origin, e))?;
        Ok(host)
    }
}

/// PSD as a layer of a stack: its encoder's features `tanh(x W_encᵀ +
/// b_enc)` up, the dictionary (linear, `z D`) down.
impl crate::models::net::Layerwise for SparseHost {
    fn encoder(&self) -> Result<Dense> {
        self.encoder_layer()
    }
    fn decoder(&self) -> Result<Dense> {
        Ok(Dense {
            w: self.dict.clone(),
            b: HostMat::zeros(1, self.dim()),
            act: Activation::Linear,
        })
    }
}
