//! The `[model]` section of sparse coding (`kind = "sparse"`): dictionary
//! learning for `E(x, z) = ½‖x − z D‖² + λ‖z‖₁`, and with `encoder =
//! "psd"` predictive sparse decomposition (the energy gains `α‖z − F(x)‖²`
//! and an encoder `F` is trained with the recipe's optimiser and `train.lr`).
//! Per minibatch: `iters` iterations of `algorithm` for the codes (from
//! `F(x)` under PSD), then the dictionary update: `update = "bcd"` (Mairal
//! et al. 2009, as scikit-learn's MiniBatchDictionaryLearning) or `"sgd"`
//! (a step of `dict_lr`, atoms rescaled to unit norm). The monitors and
//! `ebmkit encode` infer to a residual of `eval_tol` (at most `eval_iters`).
//!
//! ```toml
//! [model]
//! kind = "sparse"
//! atoms = 256
//! lambda = 0.1
//! encoder = "psd"
//! alpha = 1.0
//! ```

use serde::{Deserialize, Serialize};

use super::{finite_nonneg, positive_usize, ModelSpec, Recipe};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseSpec {
    pub atoms: usize,
    pub lambda: f32,
    /// "ista" or "fista".
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Inference iterations per training batch.
    #[serde(default = "default_iters")]
    pub iters: usize,
    /// "bcd" or "sgd".
    #[serde(default = "default_update")]
    pub update: String,
    /// The dictionary's learning rate under `update = "sgd"`.
    #[serde(default = "default_dict_lr")]
    pub dict_lr: f32,
    #[serde(default)]
    pub nonneg: bool,
    /// "none" or "psd".
    #[serde(default = "default_encoder")]
    pub encoder: String,
    /// PSD's weight of the prediction term.
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// The starting gain of PSD's encoder.
    #[serde(default = "default_gain")]
    pub init_gain: f32,
    #[serde(default = "default_eval_tol")]
    pub eval_tol: f64,
    #[serde(default = "default_eval_iters")]
    pub eval_iters: usize,
}

fn default_algorithm() -> String {
    "fista".into()
}
fn default_iters() -> usize {
    100
}
fn default_update() -> String {
    "bcd".into()
}
fn default_dict_lr() -> f32 {
    0.1
}
fn default_encoder() -> String {
    "none".into()
}
fn default_alpha() -> f32 {
    1.0
}
fn default_gain() -> f32 {
    0.1
}
fn default_eval_tol() -> f64 {
    1e-4
}
fn default_eval_iters() -> usize {
    5000
}

impl SparseSpec {
    /// A dictionary of `atoms` atoms with penalty `lambda`, defaults elsewhere.
    pub fn new(atoms: usize, lambda: f32) -> SparseSpec {
        SparseSpec {
            atoms,
            lambda,
            algorithm: default_algorithm(),
            iters: default_iters(),
            update: default_update(),
            dict_lr: default_dict_lr(),
            nonneg: false,
            encoder: default_encoder(),
            alpha: default_alpha(),
            init_gain: default_gain(),
            eval_tol: default_eval_tol(),
            eval_iters: default_eval_iters(),
        }
    }

    /// Whether the recipe trains PSD's encoder.
    pub fn psd(&self) -> bool {
        self.encoder == "psd"
    }
}

impl From<SparseSpec> for ModelSpec {
    fn from(m: SparseSpec) -> ModelSpec {
        ModelSpec::Sparse(m)
    }
}

impl Recipe {
    /// The sparse-coding section.
    pub fn sparse(&self) -> Result<&SparseSpec> {
        match &self.model {
            ModelSpec::Sparse(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not sparse coding", other.kind()),
            )),
        }
    }
}

/// What a sparse-coding recipe must satisfy beyond the generic checks.
pub(super) fn validate(r: &Recipe, m: &SparseSpec) -> Result<()> {
    positive_usize("model.atoms", m.atoms)?;
    positive_usize("model.iters", m.iters)?;
    positive_usize("model.eval_iters", m.eval_iters)?;
    if !(m.lambda.is_finite() && m.lambda > 0.0) {
        return Err(Error::value(
            "model.lambda",
            format!("{} must be finite and > 0", m.lambda),
        ));
    }
    if !matches!(m.algorithm.as_str(), "ista" | "fista") {
        return Err(Error::value(
            "model.algorithm",
            format!("'{}' is not ista or fista", m.algorithm),
        ));
    }
    if !matches!(m.update.as_str(), "bcd" | "sgd") {
        return Err(Error::value(
            "model.update",
            format!("'{}' is not bcd or sgd", m.update),
        ));
    }
    if !matches!(m.encoder.as_str(), "none" | "psd") {
        return Err(Error::value(
            "model.encoder",
            format!("'{}' is not none or psd", m.encoder),
        ));
    }
    if m.update == "sgd" && !(m.dict_lr.is_finite() && m.dict_lr > 0.0) {
        return Err(Error::value(
            "model.dict_lr",
            format!("{} must be finite and > 0", m.dict_lr),
        ));
    }
    finite_nonneg("model.alpha", m.alpha)?;
    finite_nonneg("model.init_gain", m.init_gain)?;
    if !(m.eval_tol.is_finite() && m.eval_tol > 0.0) {
        return Err(Error::value(
            "model.eval_tol",
            format!("{} must be finite and > 0", m.eval_tol),
        ));
    }
    if r.train.method.is_some() {
        return Err(Error::value(
            "train.method",
            "sparse coding infers its codes; it has no sampling method",
        ));
    }
    Ok(())
}
