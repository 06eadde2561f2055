//! The `[model]` section of an RBM recipe (`kind = "rbm"`) and the RBM's
//! validation hook over the whole recipe.

use serde::{Deserialize, Serialize};

use super::{finite_nonneg, positive_finite, positive_usize, ModelSpec, Recipe};
use crate::data::{Binarize, DataSource};
use crate::error::{Error, Result};
use crate::units::UnitKind;

/// The largest |log σ²| of a Gaussian visible unit: beyond it 1/σ² (or σ²)
/// times a weight or a squared value overflows f32, and every score and
/// sample of the model turns NaN.
pub const LOG_VAR_LIMIT: f32 = 69.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbmSpec {
    /// Unit types: bernoulli | gaussian | relu | softmax:K.
    #[serde(default = "bernoulli")]
    pub visible: String,
    #[serde(default = "bernoulli")]
    pub hidden: String,
    pub n_hidden: usize,
    /// Standard deviation of the initial weights.
    #[serde(default = "default_init_std")]
    pub init_std: f32,
    /// Visible biases start at log(p / (1 - p)) of the training means
    /// (Hinton's practical guide) for Bernoulli units, at the mean for the
    /// others; else at zero.
    #[serde(default = "yes")]
    pub visible_bias_from_data: bool,
    /// Gaussian visible units learn one variance per unit (Cho, Ilin &
    /// Raiko 2011); else the variances stay at `init_variance`.
    #[serde(default)]
    pub learn_variance: bool,
    /// σ² of Gaussian visible units at the start (1 for standardised data).
    #[serde(default = "one_f32")]
    pub init_variance: f32,
    /// Learned variances never go below this.
    #[serde(default = "default_min_variance")]
    pub min_variance: f32,
    /// This RBM pretrains a layer of a deep Boltzmann machine: "first"
    /// (its hidden layer's input doubled), "middle" (both layers' inputs
    /// doubled) or "last" (its visible layer's input doubled), after
    /// Salakhutdinov & Hinton (2009, 2012); see
    /// `models::Rbm::with_multipliers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbm_layer: Option<DbmLayer>,
}

/// Where an RBM sits in the stack that pretrains a DBM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbmLayer {
    First,
    Middle,
    Last,
}

impl DbmLayer {
    /// The (up, down) multipliers of the RBM's conditionals.
    pub fn multipliers(layer: Option<DbmLayer>) -> (f32, f32) {
        match layer {
            None => (1.0, 1.0),
            Some(DbmLayer::First) => (2.0, 1.0),
            Some(DbmLayer::Middle) => (2.0, 2.0),
            Some(DbmLayer::Last) => (1.0, 2.0),
        }
    }
}

impl RbmSpec {
    /// Binary units on both layers, `n_hidden` of them hidden, the defaults
    /// of every other key.
    pub fn new(n_hidden: usize) -> RbmSpec {
        RbmSpec {
            visible: bernoulli(),
            hidden: bernoulli(),
            n_hidden,
            init_std: default_init_std(),
            visible_bias_from_data: true,
            learn_variance: false,
            init_variance: 1.0,
            min_variance: default_min_variance(),
            dbm_layer: None,
        }
    }

    pub fn visible_units(&self) -> Result<UnitKind> {
        UnitKind::parse(&self.visible, "model.visible")
    }
    pub fn hidden_units(&self) -> Result<UnitKind> {
        UnitKind::parse(&self.hidden, "model.hidden")
    }
}

fn one_f32() -> f32 {
    1.0
}
fn default_min_variance() -> f32 {
    1e-2
}
fn bernoulli() -> String {
    "bernoulli".into()
}
fn default_init_std() -> f32 {
    0.01
}
fn yes() -> bool {
    true
}

impl From<RbmSpec> for ModelSpec {
    fn from(m: RbmSpec) -> ModelSpec {
        ModelSpec::Rbm(m)
    }
}

impl Recipe {
    /// The RBM section.
    pub fn rbm(&self) -> Result<&RbmSpec> {
        match &self.model {
            ModelSpec::Rbm(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not an rbm", other.kind()),
            )),
        }
    }
    pub fn rbm_mut(&mut self) -> Result<&mut RbmSpec> {
        match &mut self.model {
            ModelSpec::Rbm(m) => Ok(m),
            other => Err(Error::value(
                "model.kind",
                format!("the recipe is for a {}, not an rbm", other.kind()),
            )),
        }
    }
    /// The RBM's visible and hidden unit types.
    pub fn visible_units(&self) -> Result<UnitKind> {
        self.rbm()?.visible_units()
    }
    pub fn hidden_units(&self) -> Result<UnitKind> {
        self.rbm()?.hidden_units()
    }
}

/// What an RBM recipe must satisfy beyond the generic checks.
pub(super) fn validate(r: &Recipe, m: &RbmSpec) -> Result<()> {
    let vis = m.visible_units()?;
    m.hidden_units()?;
    positive_usize("model.n_hidden", m.n_hidden)?;
    finite_nonneg("model.init_std", m.init_std)?;
    if r.train.method.is_none() {
        return Err(Error::value(
            "train.method",
            "an RBM is trained by one of cd, pcd, fpcd, pt",
        ));
    }
    if r.train.optimizer != super::Optimizer::Sgd || r.train.clip_norm.is_some() {
        return Err(Error::value(
            "train.optimizer",
            "an RBM takes its own momentum steps on sampled statistics: leave optimizer and \
             clip_norm out",
        ));
    }
    if r.data.source == Some(DataSource::Patches) && vis != UnitKind::Gaussian {
        return Err(Error::value(
            "model.visible",
            format!("whitened patches take real values: use \"gaussian\", not {vis}"),
        ));
    }
    for (name, v) in [
        ("model.init_variance", m.init_variance),
        ("model.min_variance", m.min_variance),
    ] {
        positive_finite(name, v)?;
        // What the model would then hold could not be loaded again.
        let limit = LOG_VAR_LIMIT;
        if v.ln().abs() > limit {
            return Err(Error::value(
                name,
                format!(
                    "{v}: variances must lie within e^-{limit} to e^{limit} (about 1e-30 to 1e30)"
                ),
            ));
        }
    }
    if m.learn_variance && vis != UnitKind::Gaussian {
        return Err(Error::value(
            "model.learn_variance",
            format!("only Gaussian visible units have variances, these are {vis}"),
        ));
    }
    if m.learn_variance && m.init_variance < m.min_variance {
        return Err(Error::value(
            "model.init_variance",
            format!(
                "{} is below model.min_variance = {}",
                m.init_variance, m.min_variance
            ),
        ));
    }
    if m.dbm_layer.is_some()
        && (vis != UnitKind::Bernoulli || m.hidden_units()? != UnitKind::Bernoulli)
    {
        return Err(Error::value(
            "model.dbm_layer",
            format!(
                "a DBM is built of binary units; this RBM is {vis}-{}",
                m.hidden_units()?
            ),
        ));
    }
    if vis != UnitKind::Bernoulli && r.data.binarize != Binarize::None {
        return Err(Error::value(
            "data.binarize",
            format!("{vis} visible units take real values: use binarize = \"none\""),
        ));
    }
    Ok(())
}
