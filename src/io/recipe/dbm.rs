//! The `[model]` section of a deep Boltzmann machine (`kind = "dbm"`) and
//! its validation hook. Training is PCD with mean field (Salakhutdinov &
//! Hinton 2009): per minibatch, mean field on the data for the positive
//! statistics, `train.k` Gibbs sweeps of `train.chains` persistent
//! fantasy particles for the negative ones. With `init` (or `ebmkit train
//! --init STACK`) the DBM is composed from a pretraining stack of RBMs
//! (`models::DbmHost::from_stack`); without, it starts from small
//! random weights.
//!
//! ```toml
//! [model]
//! kind = "dbm"
//! hidden = [500, 1000]
//! mf_iters = 10
//!
//! [train]
//! method = "pcd"
//! chains = 100
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{finite_nonneg, positive_usize, Method, ModelSpec, Recipe};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbmSpec {
    /// Hidden layer widths, bottom first (with `init`: checked against the
    /// stack's; may be left empty to take them).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Standard deviation of random initial weights (without `init`).
    #[serde(default = "default_init_std")]
    pub init_std: f32,
    /// A pretraining stack of RBMs to compose the DBM from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// Mean-field sweeps per minibatch, the tolerance that may end them
    /// early (0: always `mf_iters`, nothing read back) and the damping.
    #[serde(default = "default_mf_iters")]
    pub mf_iters: usize,
    #[serde(default)]
    pub mf_tol: f32,
    #[serde(default)]
    pub mf_damping: f32,
}

fn default_init_std() -> f32 {
    0.01
}
fn default_mf_iters() -> usize {
    10
}

impl From<DbmSpec> for ModelSpec {
    fn from(m: DbmSpec) -> ModelSpec {
        ModelSpec::Dbm(m)
    }
}

impl Recipe {
    /// The DBM section.
    pub fn dbm(&self) -> Result<&DbmSpec> {
        match &self.model {
            ModelSpec::Dbm(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not a dbm", other.kind()),
            )),
        }
    }
    pub fn dbm_mut(&mut self) -> Result<&mut DbmSpec> {
        match &mut self.model {
            ModelSpec::Dbm(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not a dbm", other.kind()),
            )),
        }
    }
}

/// What a DBM recipe must satisfy beyond the generic checks.
pub(super) fn validate(r: &Recipe, m: &DbmSpec) -> Result<()> {
    if m.hidden.is_empty() && m.init.is_none() {
        return Err(Error::value(
            "model.hidden",
            "a DBM needs its hidden widths (or an init stack to take them from)",
        ));
    }
    for (k, &n) in m.hidden.iter().enumerate() {
        positive_usize(&format!("model.hidden[{k}]"), n)?;
    }
    finite_nonneg("model.init_std", m.init_std)?;
    positive_usize("model.mf_iters", m.mf_iters)?;
    finite_nonneg("model.mf_tol", m.mf_tol)?;
    if !(0.0..1.0).contains(&m.mf_damping) {
        return Err(Error::value(
            "model.mf_damping",
            format!("{}: must be in [0, 1)", m.mf_damping),
        ));
    }
    match r.train.method {
        None | Some(Method::Pcd) => {}
        Some(other) => {
            return Err(Error::value(
                "train.method",
                format!("a DBM trains by PCD with mean field (method = \"pcd\"), not {other:?}"),
            ))
        }
    }
    Ok(())
}
