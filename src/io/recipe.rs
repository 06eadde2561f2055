//! Training recipes: a TOML file with the model, the data and the training
//! hyper-parameters of one experiment (see `models/*.toml`).
//!
//! Unknown keys are rejected (a typo never silently falls back to a
//! default), and impossible values are errors naming the key.
//!
//! ```toml
//! [model]
//! visible = "bernoulli"      # bernoulli | gaussian | relu | softmax:K
//! hidden = "bernoulli"
//! n_hidden = 500
//! learn_variance = false     # Gaussian visible units: learn σ² per unit
//!
//! [data]
//! source = "mnist"           # mnist (data folder) | mnist-small (shipped subset) | patches (photographs)
//! binarize = "fixed"         # fixed (one draw at load) | stochastic (fresh draw per presentation) | threshold | none
//!
//! [train]
//! method = "pcd"             # cd | pcd | fpcd | pt
//! k = 1
//! epochs = 20
//! batch_size = 100
//! lr = 0.05
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::units::UnitKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// A free-form description printed at the start of training.
    #[serde(default)]
    pub description: String,
    pub model: ModelSpec,
    pub data: DataSpec,
    pub train: TrainSpec,
    #[serde(default)]
    pub monitor: MonitorSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// The full MNIST from the data folder (`--data`, `$EBMKIT_DATA`, `../shared/data`).
    Mnist,
    /// The 5000/1000-digit subset shipped in `data/mnist-small`.
    MnistSmall,
    /// Whitened patches of the photographs in `<data>/images`
    /// (see [`crate::data::natural`]).
    Patches,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whiten {
    /// Zero-phase whitening: patches stay in pixel space.
    Zca,
    /// PCA whitening, all components.
    Pca,
    /// DC removal only.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// Each pixel is 1 with probability its intensity, drawn afresh each
    /// time a digit is presented (monitoring subsets: one fixed draw).
    Stochastic,
    /// One stochastic draw when the data is loaded, kept for the whole run
    /// (the fixed binarised MNIST of Salakhutdinov & Murray 2008); no random
    /// numbers are spent on the data during training.
    Fixed,
    /// Pixel > 0.5.
    Threshold,
    /// Values as they are.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub source: DataSource,
    #[serde(default = "default_binarize")]
    pub binarize: Binarize,
    /// Use only the first `n_train` training examples.
    #[serde(default)]
    pub n_train: Option<usize>,
    /// Patches: side in pixels, training and test counts, whitening and its
    /// ε (added to the covariance eigenvalues of the intensities in [0, 1]).
    #[serde(default = "default_patch_size")]
    pub patch_size: usize,
    #[serde(default = "default_patches")]
    pub patches: usize,
    #[serde(default = "default_test_patches")]
    pub test_patches: usize,
    #[serde(default = "default_whiten")]
    pub whiten: Whiten,
    #[serde(default = "default_whiten_epsilon")]
    pub whiten_epsilon: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Contrastive divergence, chains restarted at the data (Hinton 2002).
    Cd,
    /// Persistent CD (Tieleman 2008).
    Pcd,
    /// Fast-weights PCD (Tieleman & Hinton 2009).
    Fpcd,
    /// Parallel tempering (Desjardins et al. 2010).
    Pt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Constant,
    /// Linear from `lr` at the first epoch to `lr_final` at the last.
    Linear,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub method: Method,
    /// Gibbs sweeps (PT: tempering steps) per update.
    #[serde(default = "one")]
    pub k: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    #[serde(default = "default_schedule")]
    pub lr_schedule: LrSchedule,
    #[serde(default)]
    pub lr_final: f32,
    #[serde(default)]
    pub momentum: f32,
    /// Momentum from `momentum_switch_epoch` on (default: `momentum`).
    #[serde(default)]
    pub final_momentum: Option<f32>,
    #[serde(default)]
    pub momentum_switch_epoch: usize,
    /// L2 weight decay on W.
    #[serde(default)]
    pub weight_decay: f32,
    /// Target mean activation of the hidden units (absent: no sparsity term).
    #[serde(default)]
    pub sparsity_target: Option<f32>,
    #[serde(default = "default_sparsity_cost")]
    pub sparsity_cost: f32,
    /// Decay of the running estimate of the hidden activations.
    #[serde(default = "default_sparsity_decay")]
    pub sparsity_decay: f32,
    /// Centered gradient (Melchior, Fischer & Wiskott, JMLR 2016).
    #[serde(default)]
    pub centering: bool,
    /// Sliding-average rate of the centering offsets.
    #[serde(default = "default_centering_rate")]
    pub centering_rate: f32,
    /// Persistent chains (PCD, FPCD; per temperature for PT); default batch_size.
    #[serde(default)]
    pub chains: Option<usize>,
    /// FPCD: learning rate and decay of the fast weights.
    #[serde(default = "default_fast_lr")]
    pub fast_lr: f32,
    #[serde(default = "default_fast_decay")]
    pub fast_decay: f32,
    /// PT: number of temperatures and the smallest inverse temperature.
    #[serde(default = "default_temperatures")]
    pub temperatures: usize,
    #[serde(default)]
    pub beta_min: f32,
    /// Learned variances: their learning rate is `lr` times this.
    #[serde(default = "one_f32")]
    pub variance_lr_factor: f32,
    #[serde(default = "one_u64")]
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Rows of the training and held-out sets used by the epoch-end monitors.
    #[serde(default = "default_monitor_rows")]
    pub rows: usize,
    /// Write a checkpoint every this many epochs (and at the end).
    #[serde(default = "one")]
    pub checkpoint_every: usize,
}

impl Default for MonitorSpec {
    fn default() -> Self {
        MonitorSpec {
            rows: default_monitor_rows(),
            checkpoint_every: 1,
        }
    }
}

fn default_patch_size() -> usize {
    8
}
fn default_patches() -> usize {
    50_000
}
fn default_test_patches() -> usize {
    10_000
}
fn default_whiten() -> Whiten {
    Whiten::Zca
}
fn default_whiten_epsilon() -> f64 {
    1e-3
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
fn default_binarize() -> Binarize {
    Binarize::Stochastic
}
fn one() -> usize {
    1
}
fn one_u64() -> u64 {
    1
}
fn default_schedule() -> LrSchedule {
    LrSchedule::Constant
}
fn default_sparsity_cost() -> f32 {
    0.1
}
fn default_sparsity_decay() -> f32 {
    0.95
}
fn default_centering_rate() -> f32 {
    0.01
}
fn default_fast_lr() -> f32 {
    0.05
}
fn default_fast_decay() -> f32 {
    19.0 / 20.0
}
fn default_temperatures() -> usize {
    10
}
fn default_monitor_rows() -> usize {
    1000
}

impl Recipe {
    /// Parses and validates recipe text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Recipe> {
        let r: Recipe = toml::from_str(text).map_err(|e| Error::format(origin, e.to_string()))?;
        r.validate().map_err(|e| match e {
            Error::Value { name, msg } => Error::format(origin, format!("{name}: {msg}")),
            other => other,
        })?;
        Ok(r)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Recipe> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Recipe::parse(&text, path)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    pub fn visible_units(&self) -> Result<UnitKind> {
        UnitKind::parse(&self.model.visible, "model.visible")
    }
    pub fn hidden_units(&self) -> Result<UnitKind> {
        UnitKind::parse(&self.model.hidden, "model.hidden")
    }

    /// Rejects impossible values, naming the key.
    pub fn validate(&self) -> Result<()> {
        let vis = self.visible_units()?;
        self.hidden_units()?;
        let m = &self.model;
        let t = &self.train;
        positive_usize("model.n_hidden", m.n_hidden)?;
        finite_nonneg("model.init_std", m.init_std)?;
        positive_usize("train.k", t.k)?;
        positive_usize("train.epochs", t.epochs)?;
        positive_usize("train.batch_size", t.batch_size)?;
        finite_nonneg("train.lr", t.lr)?;
        if t.lr == 0.0 {
            return Err(Error::value("train.lr", "must be positive"));
        }
        finite_nonneg("train.lr_final", t.lr_final)?;
        unit_interval("train.momentum", t.momentum, false)?;
        if let Some(fm) = t.final_momentum {
            unit_interval("train.final_momentum", fm, false)?;
        }
        finite_nonneg("train.weight_decay", t.weight_decay)?;
        if let Some(s) = t.sparsity_target {
            if !(s > 0.0 && s < 1.0) {
                return Err(Error::value(
                    "train.sparsity_target",
                    format!("{s} is not in (0, 1)"),
                ));
            }
        }
        finite_nonneg("train.sparsity_cost", t.sparsity_cost)?;
        unit_interval("train.sparsity_decay", t.sparsity_decay, true)?;
        unit_interval("train.centering_rate", t.centering_rate, true)?;
        if let Some(c) = t.chains {
            positive_usize("train.chains", c)?;
        }
        finite_nonneg("train.fast_lr", t.fast_lr)?;
        unit_interval("train.fast_decay", t.fast_decay, true)?;
        positive_usize("train.temperatures", t.temperatures)?;
        if t.method == Method::Pt && t.temperatures < 2 {
            return Err(Error::value(
                "train.temperatures",
                "parallel tempering needs at least 2",
            ));
        }
        unit_interval("train.beta_min", t.beta_min, false)?;
        positive_usize("monitor.rows", self.monitor.rows)?;
        positive_usize("monitor.checkpoint_every", self.monitor.checkpoint_every)?;
        if let Some(n) = self.data.n_train {
            if n < t.batch_size {
                return Err(Error::value(
                    "data.n_train",
                    format!("{n} examples is less than one batch of {}", t.batch_size),
                ));
            }
        }
        if self.data.source == DataSource::Patches {
            let d = &self.data;
            positive_usize("data.patch_size", d.patch_size)?;
            positive_usize("data.patches", d.patches)?;
            positive_usize("data.test_patches", d.test_patches)?;
            if !(d.whiten_epsilon.is_finite() && d.whiten_epsilon > 0.0) {
                return Err(Error::value(
                    "data.whiten_epsilon",
                    format!("{} must be finite and > 0", d.whiten_epsilon),
                ));
            }
            if vis != UnitKind::Gaussian {
                return Err(Error::value(
                    "model.visible",
                    format!("whitened patches take real values: use \"gaussian\", not {vis}"),
                ));
            }
        }
        let m = &self.model;
        positive_finite("model.init_variance", m.init_variance)?;
        positive_finite("model.min_variance", m.min_variance)?;
        finite_nonneg("train.variance_lr_factor", t.variance_lr_factor)?;
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
        if vis != UnitKind::Bernoulli && self.data.binarize != Binarize::None {
            return Err(Error::value(
                "data.binarize",
                format!("{vis} visible units take real values: use binarize = \"none\""),
            ));
        }
        Ok(())
    }

    /// The learning rate of epoch `e` (0-based).
    pub fn lr_at(&self, e: usize) -> f32 {
        let t = &self.train;
        match t.lr_schedule {
            LrSchedule::Constant => t.lr,
            LrSchedule::Linear => {
                let f = if t.epochs <= 1 {
                    0.0
                } else {
                    e as f32 / (t.epochs - 1) as f32
                };
                t.lr + (t.lr_final - t.lr) * f.min(1.0)
            }
        }
    }

    /// The momentum of epoch `e` (0-based).
    pub fn momentum_at(&self, e: usize) -> f32 {
        let t = &self.train;
        match t.final_momentum {
            Some(fm) if e >= t.momentum_switch_epoch => fm,
            _ => t.momentum,
        }
    }

    /// Persistent chains (per temperature for PT); CD uses one per batch row.
    pub fn chains(&self) -> usize {
        match self.train.method {
            Method::Cd => self.train.batch_size,
            _ => self.train.chains.unwrap_or(self.train.batch_size),
        }
    }
}

fn positive_usize(name: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::value(name, "must be at least 1"));
    }
    Ok(())
}

fn positive_finite(name: &str, v: f32) -> Result<()> {
    if !v.is_finite() || v <= 0.0 {
        return Err(Error::value(name, format!("{v} must be finite and > 0")));
    }
    Ok(())
}

fn finite_nonneg(name: &str, v: f32) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(Error::value(name, format!("{v} must be finite and >= 0")));
    }
    Ok(())
}

fn unit_interval(name: &str, v: f32, closed_top: bool) -> Result<()> {
    let ok = v.is_finite() && v >= 0.0 && if closed_top { v <= 1.0 } else { v < 1.0 };
    if !ok {
        let top = if closed_top { "1]" } else { "1)" };
        return Err(Error::value(name, format!("{v} is not in [0, {top}")));
    }
    Ok(())
}
