//! The `[model]` section of an auto-encoder recipe (`kind = "autoencoder"`)
//! and its validation hook: denoising (Vincent et al. 2008, 2010),
//! contractive (Rifai et al. 2011) and sparse auto-encoders, tied or
//! untied, trained by backpropagation.

use serde::{Deserialize, Serialize};

use super::{finite_nonneg, positive_usize, ModelSpec, Recipe};
use crate::autodiff::{Activation, Noise};
use crate::error::{Error, Result};

/// How the encoder's input is corrupted during training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corruption {
    #[default]
    None,
    /// Each input set to 0 with probability `noise_level`.
    Masking,
    /// Each input set to 0 or 1 (equal odds) with probability `noise_level`.
    SaltPepper,
    /// N(0, noise_level²) added to every input.
    Gaussian,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeSpec {
    pub n_hidden: usize,
    /// sigmoid | tanh | relu | linear.
    #[serde(default = "sigmoid")]
    pub encoder: Activation,
    /// sigmoid (cross-entropy against inputs in [0, 1]) | linear (squared error).
    #[serde(default = "sigmoid")]
    pub decoder: Activation,
    /// The decoder's weights are the encoder's, transposed.
    #[serde(default = "yes")]
    pub tied: bool,
    #[serde(default)]
    pub noise: Corruption,
    /// The masking / salt-and-pepper probability, or the Gaussian σ.
    #[serde(default)]
    pub noise_level: f32,
    /// λ of the contractive penalty λ ‖∂h/∂x‖²_F (0: off).
    #[serde(default)]
    pub contractive: f32,
    /// Target mean activation of the hidden units for the KL sparsity
    /// penalty (absent: no penalty), and its weight.
    #[serde(default)]
    pub sparsity_target: Option<f32>,
    #[serde(default = "default_sparsity_cost")]
    pub sparsity_cost: f32,
    /// Weight of an L1 penalty on the codes (0: off).
    #[serde(default)]
    pub l1: f32,
    /// Walkback training (Bengio, Yao, Alain & Vincent 2013): every batch
    /// also trains on `walkback - 1` further corruptions drawn along the
    /// model's own chain from each row, each reconstructed towards the row
    /// (1: plain denoising). Sigmoid decoders only.
    #[serde(default = "one")]
    pub walkback: usize,
    /// Initial weights N(0, init_std²); absent: Glorot & Bengio's uniform
    /// range ±√(6 / (n_in + n_out)), four times wider for sigmoid units.
    #[serde(default)]
    pub init_std: Option<f32>,
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn default_sparsity_cost() -> f32 {
    3.0
}

impl AeSpec {
    /// A tied sigmoid auto-encoder with `n_hidden` hidden units and no
    /// corruption or penalty.
    pub fn new(n_hidden: usize) -> AeSpec {
        AeSpec {
            n_hidden,
            encoder: Activation::Sigmoid,
            decoder: Activation::Sigmoid,
            tied: true,
            noise: Corruption::None,
            noise_level: 0.0,
            contractive: 0.0,
            sparsity_target: None,
            sparsity_cost: default_sparsity_cost(),
            l1: 0.0,
            walkback: 1,
            init_std: None,
        }
    }

    /// The corruption as a graph noise (None: clean inputs).
    pub fn corruption(&self) -> Option<Noise> {
        let p = self.noise_level;
        match self.noise {
            Corruption::None => None,
            Corruption::Masking => Some(Noise::Masking(p)),
            Corruption::SaltPepper => Some(Noise::SaltPepper(p)),
            Corruption::Gaussian => Some(Noise::Gaussian(p)),
        }
    }
}

impl From<AeSpec> for ModelSpec {
    fn from(m: AeSpec) -> ModelSpec {
        ModelSpec::Autoencoder(m)
    }
}

impl Recipe {
    /// The auto-encoder section.
    pub fn autoencoder(&self) -> Result<&AeSpec> {
        match &self.model {
            ModelSpec::Autoencoder(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not an autoencoder", other.kind()),
            )),
        }
    }
    pub fn autoencoder_mut(&mut self) -> Result<&mut AeSpec> {
        match &mut self.model {
            ModelSpec::Autoencoder(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not an autoencoder", other.kind()),
            )),
        }
    }
}

/// What an auto-encoder recipe must satisfy beyond the generic checks.
pub(super) fn validate(r: &Recipe, m: &AeSpec) -> Result<()> {
    positive_usize("model.n_hidden", m.n_hidden)?;
    if let Some(method) = r.train.method {
        return Err(Error::value(
            "train.method",
            format!("{method:?}: an auto-encoder is trained by backpropagation; remove the key"),
        ));
    }
    if matches!(m.decoder, Activation::Tanh | Activation::Relu) {
        return Err(Error::value(
            "model.decoder",
            format!(
                "'{}': use sigmoid (cross-entropy) or linear (squared error)",
                m.decoder.name()
            ),
        ));
    }
    validate_corruption(m)?;
    validate_penalties(r, m)?;
    if let Some(s) = m.init_std {
        finite_nonneg("model.init_std", s)?;
    }
    Ok(())
}

/// The noise level for its kind, and what walkback needs.
fn validate_corruption(m: &AeSpec) -> Result<()> {
    match m.noise {
        Corruption::None => {}
        Corruption::Masking | Corruption::SaltPepper => {
            if !(0.0..1.0).contains(&m.noise_level) {
                return Err(Error::value(
                    "model.noise_level",
                    format!("{} is not in [0, 1)", m.noise_level),
                ));
            }
        }
        Corruption::Gaussian => {
            if !(m.noise_level.is_finite() && m.noise_level > 0.0) {
                return Err(Error::value(
                    "model.noise_level",
                    format!("σ = {} must be > 0", m.noise_level),
                ));
            }
        }
    }
    positive_usize("model.walkback", m.walkback)?;
    // Walkback trains on corruptions wider than one step's; it stays
    // consistent with a reconstruction distribution that the decoder
    // parametrises in full (Bernoulli), not with N(r, σ²) at a fixed σ
    // (tried on a 2-D Gaussian: the chain's variance came out 0.66x).
    if m.walkback > 1 && (m.decoder != Activation::Sigmoid || m.noise == Corruption::None) {
        return Err(Error::value(
            "model.walkback",
            "walkback walks the model's chain: it needs corruption and a sigmoid decoder (Bernoulli reconstructions)",
        ));
    }
    Ok(())
}

/// The contractive and sparsity penalties (and the RBM keys that are not
/// an auto-encoder's).
fn validate_penalties(r: &Recipe, m: &AeSpec) -> Result<()> {
    finite_nonneg("model.contractive", m.contractive)?;
    if m.contractive > 0.0 && m.encoder == Activation::Relu {
        return Err(Error::value(
            "model.contractive",
            "ReLU units have a piecewise constant Jacobian: use a sigmoid, tanh or linear encoder",
        ));
    }
    for (key, set) in [
        ("train.sparsity_target", r.train.sparsity_target.is_some()),
        ("train.centering", r.train.centering),
        ("train.chains", r.train.chains.is_some()),
    ] {
        if set {
            return Err(Error::value(
                key,
                "is an RBM training key; an auto-encoder's penalties are in [model] (sparsity_target, l1, contractive)",
            ));
        }
    }
    finite_nonneg("model.sparsity_cost", m.sparsity_cost)?;
    finite_nonneg("model.l1", m.l1)?;
    if let Some(s) = m.sparsity_target {
        if !(s > 0.0 && s < 1.0) {
            return Err(Error::value(
                "model.sparsity_target",
                format!("{s} is not in (0, 1)"),
            ));
        }
        if m.encoder != Activation::Sigmoid {
            return Err(Error::value(
                "model.sparsity_target",
                "the KL penalty needs activations in (0, 1): a sigmoid encoder",
            ));
        }
    }
    Ok(())
}
