//! The `[model]` section of LISTA (`kind = "lista"`, Gregor & LeCun 2010):
//! a `steps`-step unrolled ISTA network trained to predict the optimal
//! codes of a fixed, learned dictionary (`dictionary`, a `kind = "sparse"`
//! checkpoint, whose λ it takes). The network starts at the ISTA values
//! (so before training it computes `steps` ISTA iterations); the targets
//! are the codes of every training and held-out row inferred once, before
//! training, to a residual of `target_tol` (at most `target_iters`
//! iterations). Training is the recipe's optimiser on the mean squared
//! error of the codes.
//!
//! ```toml
//! [model]
//! kind = "lista"
//! dictionary = "out/sparse-patches/model.safetensors"
//! steps = 5
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{positive_usize, ModelSpec, Recipe};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListaSpec {
    pub dictionary: PathBuf,
    pub steps: usize,
    #[serde(default = "default_tol")]
    pub target_tol: f64,
    #[serde(default = "default_iters")]
    pub target_iters: usize,
}

fn default_tol() -> f64 {
    1e-4
}
fn default_iters() -> usize {
    20_000
}

impl ListaSpec {
    pub fn new(dictionary: impl Into<PathBuf>, steps: usize) -> ListaSpec {
        ListaSpec {
            dictionary: dictionary.into(),
            steps,
            target_tol: default_tol(),
            target_iters: default_iters(),
        }
    }
}

impl From<ListaSpec> for ModelSpec {
    fn from(m: ListaSpec) -> ModelSpec {
        ModelSpec::Lista(m)
    }
}

impl Recipe {
    /// The LISTA section.
    pub fn lista(&self) -> Result<&ListaSpec> {
        match &self.model {
            ModelSpec::Lista(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not lista", other.kind()),
            )),
        }
    }
}

/// What a LISTA recipe must satisfy beyond the generic checks.
pub(super) fn validate(r: &Recipe, m: &ListaSpec) -> Result<()> {
    if m.steps == 0 {
        return Err(Error::value(
            "model.steps",
            "LISTA needs T >= 1 unrolled steps (T = 0 computes no code)",
        ));
    }
    positive_usize("model.target_iters", m.target_iters)?;
    if !(m.target_tol.is_finite() && m.target_tol > 0.0) {
        return Err(Error::value(
            "model.target_tol",
            format!("{} must be finite and > 0", m.target_tol),
        ));
    }
    if r.train.method.is_some() {
        return Err(Error::value(
            "train.method",
            "LISTA learns by backpropagation; it has no sampling method",
        ));
    }
    Ok(())
}
