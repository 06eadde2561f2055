//! Training recipes: a TOML file with the model, the data and the training
//! hyper-parameters of one experiment (see `models/*.toml`), or the same
//! typed configuration built in code ([`Recipe::new`] and its setters).
//!
//! The `[model]` section names its kind (`kind = "rbm"`; a recipe without
//! one is an RBM recipe, as every recipe was before kinds existed) and holds
//! that kind's keys ([`rbm::RbmSpec`]). `[data]` ([`DataSpec`]) may be left
//! out when the data are passed in memory. Unknown keys are rejected (a typo
//! never silently falls back to a default), and impossible values are errors
//! naming the key; each kind adds its own checks ([`Recipe::validate`]).
//!
//! ```toml
//! [model]
//! kind = "rbm"
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

pub mod autoencoder;
pub mod dbm;
pub mod lista;
pub mod net;
pub mod rbm;
pub mod sparse;
pub mod stack;

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::data::{Binarize, DataSource, DataSpec};
use crate::error::{Error, Result};
pub use autoencoder::{AeSpec, Corruption};
pub use dbm::DbmSpec;
pub use lista::ListaSpec;
pub use net::{NetSpec, Output};
pub use rbm::{DbmLayer, RbmSpec};
pub use sparse::SparseSpec;
pub use stack::{Codes, LayerSpec, StackSpec};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// A free-form description printed at the start of training.
    #[serde(default)]
    pub description: String,
    pub model: ModelSpec,
    #[serde(default)]
    pub data: DataSpec,
    pub train: TrainSpec,
    #[serde(default)]
    pub monitor: MonitorSpec,
    /// The layers of a stack (`kind = "stack"`), as `[[layer]]` sections.
    #[serde(default, rename = "layer", skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
}

/// The `[model]` section: the model kind and its keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// A restricted Boltzmann machine.
    Rbm(RbmSpec),
    /// A denoising / contractive / sparse auto-encoder.
    Autoencoder(AeSpec),
    /// A feed-forward net: an MLP classifier or a deep auto-encoder.
    Net(NetSpec),
    /// Layers pretrained greedily, each on the codes of the one below.
    Stack(StackSpec),
    /// A deep Boltzmann machine.
    Dbm(DbmSpec),
    /// Sparse coding (dictionary learning), or PSD with its encoder.
    Sparse(SparseSpec),
    /// LISTA, the learned unrolled ISTA of a sparse-coding dictionary.
    Lista(ListaSpec),
}

impl ModelSpec {
    /// The kind's name in recipes and checkpoints.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Rbm(_) => "rbm",
            ModelSpec::Autoencoder(_) => "autoencoder",
            ModelSpec::Net(_) => "net",
            ModelSpec::Stack(_) => "stack",
            ModelSpec::Dbm(_) => "dbm",
            ModelSpec::Sparse(_) => "sparse",
            ModelSpec::Lista(_) => "lista",
        }
    }

    /// What `[data] binarize` is when a recipe leaves it out: a fresh
    /// binarisation per presentation for RBMs (binary visible units), the
    /// values as they are for auto-encoders (cross-entropy against
    /// intensities, as Vincent et al. train them).
    pub fn default_binarize(&self) -> Binarize {
        match self {
            ModelSpec::Rbm(_) | ModelSpec::Dbm(_) => Binarize::Stochastic,
            // A stack's layer 0 says for itself (`layer(0)`).
            ModelSpec::Autoencoder(_)
            | ModelSpec::Net(_)
            | ModelSpec::Stack(_)
            | ModelSpec::Sparse(_)
            | ModelSpec::Lista(_) => Binarize::None,
        }
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(d)?;
        // No kind: an RBM, as every recipe was before kinds existed.
        let kind = match table.remove("kind") {
            None => "rbm".to_string(),
            Some(toml::Value::String(k)) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "model.kind must be a string, got {other}"
                )))
            }
        };
        match kind.as_str() {
            "rbm" => table
                .try_into()
                .map(ModelSpec::Rbm)
                .map_err(D::Error::custom),
            "autoencoder" => table
                .try_into()
                .map(ModelSpec::Autoencoder)
                .map_err(D::Error::custom),
            "net" => table
                .try_into()
                .map(ModelSpec::Net)
                .map_err(D::Error::custom),
            "stack" => table
                .try_into()
                .map(ModelSpec::Stack)
                .map_err(D::Error::custom),
            "dbm" => table
                .try_into()
                .map(ModelSpec::Dbm)
                .map_err(D::Error::custom),
            "sparse" => table
                .try_into()
                .map(ModelSpec::Sparse)
                .map_err(D::Error::custom),
            "lista" => table
                .try_into()
                .map(ModelSpec::Lista)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "model.kind = \"{other}\" is not a known model kind (known: rbm, autoencoder, net, stack, dbm, sparse, lista)"
            ))),
        }
    }
}

/// How a sampling-trained model (RBM, and the deep models built of them)
/// estimates the negative phase.
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

/// The update rule of a model trained by backpropagation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with the momentum schedule.
    #[default]
    Sgd,
    /// SGD with Nesterov's momentum.
    Nesterov,
    Adam,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Constant,
    /// Linear from `lr` at the first epoch to `lr_final` at the last.
    Linear,
}

/// The `[train]` section: the schedule every kind shares (epochs, batch
/// size, learning rate and momentum schedules, weight decay, seed) and the
/// options of sampling-based training, which kinds that do not sample
/// refuse in their validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The negative phase of sampling-based training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
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
    /// L2 weight decay on the weights.
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
    /// Models trained by backpropagation: the update rule (sgd uses the
    /// momentum schedule above), Adam's constants, and clipping of the
    /// global gradient norm.
    #[serde(default)]
    pub optimizer: Optimizer,
    #[serde(default = "default_adam_beta1")]
    pub adam_beta1: f32,
    #[serde(default = "default_adam_beta2")]
    pub adam_beta2: f32,
    #[serde(default = "default_adam_eps")]
    pub adam_eps: f32,
    #[serde(default)]
    pub clip_norm: Option<f32>,
    #[serde(default = "one_u64")]
    pub seed: u64,
}

impl Default for TrainSpec {
    /// PCD-1, 10 epochs of batches of 100 at learning rate 0.01, no
    /// momentum, seed 1 (every other key at its recipe default).
    fn default() -> Self {
        TrainSpec {
            method: Some(Method::Pcd),
            k: 1,
            epochs: 10,
            batch_size: 100,
            lr: 0.01,
            lr_schedule: LrSchedule::Constant,
            lr_final: 0.0,
            momentum: 0.0,
            final_momentum: None,
            momentum_switch_epoch: 0,
            weight_decay: 0.0,
            sparsity_target: None,
            sparsity_cost: default_sparsity_cost(),
            sparsity_decay: default_sparsity_decay(),
            centering: false,
            centering_rate: default_centering_rate(),
            chains: None,
            fast_lr: default_fast_lr(),
            fast_decay: default_fast_decay(),
            temperatures: default_temperatures(),
            beta_min: 0.0,
            variance_lr_factor: 1.0,
            optimizer: Optimizer::Sgd,
            adam_beta1: default_adam_beta1(),
            adam_beta2: default_adam_beta2(),
            adam_eps: default_adam_eps(),
            clip_norm: None,
            seed: 1,
        }
    }
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

fn one_f32() -> f32 {
    1.0
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
fn default_adam_beta1() -> f32 {
    0.9
}
fn default_adam_beta2() -> f32 {
    0.999
}
fn default_adam_eps() -> f32 {
    1e-8
}

impl Recipe {
    /// A recipe in code: the model section, data passed in memory, and
    /// the defaults of [`TrainSpec::default`] and [`MonitorSpec::default`].
    /// Adjust with the setters or the public fields.
    ///
    /// ```
    /// use ebmkit::io::recipe::{AeSpec, Method, RbmSpec, Recipe};
    /// # fn main() -> ebmkit::Result<()> {
    /// let r = Recipe::new(RbmSpec::new(64)).method(Method::Cd).epochs(5).lr(0.05);
    /// r.validate()?;
    /// assert_eq!(r.rbm()?.n_hidden, 64);
    /// // A denoising auto-encoder: the model section is a typed value too.
    /// let mut dae = AeSpec::new(100);
    /// dae.noise = ebmkit::io::recipe::Corruption::Masking;
    /// dae.noise_level = 0.25;
    /// let r = Recipe::new(dae).epochs(5).lr(0.1);
    /// r.validate()?;
    /// assert!(r.rbm().is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(model: impl Into<ModelSpec>) -> Recipe {
        let model = model.into();
        let mut train = TrainSpec::default();
        if !matches!(model, ModelSpec::Rbm(_)) {
            // The sampling method is an RBM key; the others learn by backprop.
            train.method = None;
        }
        let data = DataSpec {
            binarize: model.default_binarize(),
            ..Default::default()
        };
        Recipe {
            description: String::new(),
            model,
            data,
            train,
            monitor: MonitorSpec::default(),
            layers: vec![],
        }
    }
}

/// Setters for recipes built in code (each returns the recipe).
impl Recipe {
    pub fn method(mut self, m: Method) -> Self {
        self.train.method = Some(m);
        self
    }
    /// Gibbs sweeps (tempering steps) per update.
    pub fn k(mut self, k: usize) -> Self {
        self.train.k = k;
        self
    }
    pub fn epochs(mut self, n: usize) -> Self {
        self.train.epochs = n;
        self
    }
    pub fn batch_size(mut self, n: usize) -> Self {
        self.train.batch_size = n;
        self
    }
    pub fn lr(mut self, lr: f32) -> Self {
        self.train.lr = lr;
        self
    }
    pub fn momentum(mut self, m: f32) -> Self {
        self.train.momentum = m;
        self
    }
    pub fn weight_decay(mut self, l2: f32) -> Self {
        self.train.weight_decay = l2;
        self
    }
    /// Persistent chains (per temperature for PT).
    pub fn persistent_chains(mut self, n: usize) -> Self {
        self.train.chains = Some(n);
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.train.seed = seed;
        self
    }
    pub fn binarize(mut self, b: Binarize) -> Self {
        self.data.binarize = b;
        self
    }
    pub fn source(mut self, s: DataSource) -> Self {
        self.data.source = Some(s);
        self
    }
    /// Rows of the epoch-end monitors' subsets.
    pub fn monitor_rows(mut self, n: usize) -> Self {
        self.monitor.rows = n;
        self
    }
}

impl Recipe {
    /// Parses and validates recipe text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Recipe> {
        let fault = |e: toml::de::Error| Error::format(origin, e.to_string());
        let mut raw: toml::Table = toml::from_str(text).map_err(fault)?;
        let stack = raw
            .get("model")
            .and_then(|m| m.get("kind"))
            .and_then(|k| k.as_str())
            == Some("stack");
        // (Layers in a recipe of another kind parse, to be refused by name.)
        let mut r: Recipe = if stack || raw.contains_key("layer") {
            stack::merge_layer_defaults(&mut raw);
            toml::Value::Table(raw.clone()).try_into().map_err(fault)?
        } else {
            toml::from_str(text).map_err(fault)?
        };
        if raw.get("data").and_then(|d| d.get("binarize")).is_none() {
            // A stack's data are its first layer's.
            let first = r.layers.first().map(|l| &l.model);
            r.data.binarize = first.unwrap_or(&r.model).default_binarize();
        }
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

    /// The recipe as TOML text (what checkpoints store).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::value("recipe", e.to_string()))
    }

    /// Rejects impossible values, naming the key: the checks every kind
    /// shares, then the kind's own.
    pub fn validate(&self) -> Result<()> {
        if !self.layers.is_empty() && !matches!(self.model, ModelSpec::Stack(_)) {
            return Err(Error::value(
                "layer",
                format!(
                    "[[layer]] sections belong to kind = \"stack\", not {}",
                    self.model.kind()
                ),
            ));
        }
        self.validate_train()?;
        positive_usize("monitor.rows", self.monitor.rows)?;
        positive_usize("monitor.checkpoint_every", self.monitor.checkpoint_every)?;
        self.data.validate(self.train.batch_size)?;
        match &self.model {
            ModelSpec::Rbm(m) => rbm::validate(self, m),
            ModelSpec::Autoencoder(m) => autoencoder::validate(self, m),
            ModelSpec::Net(m) => net::validate(self, m),
            ModelSpec::Stack(m) => stack::validate(self, m),
            ModelSpec::Dbm(m) => dbm::validate(self, m),
            ModelSpec::Sparse(m) => sparse::validate(self, m),
            ModelSpec::Lista(m) => lista::validate(self, m),
        }
    }

    fn validate_train(&self) -> Result<()> {
        let t = &self.train;
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
        if t.method == Some(Method::Pt) && t.temperatures < 2 {
            return Err(Error::value(
                "train.temperatures",
                "parallel tempering needs at least 2",
            ));
        }
        unit_interval("train.beta_min", t.beta_min, false)?;
        finite_nonneg("train.variance_lr_factor", t.variance_lr_factor)?;
        unit_interval("train.adam_beta1", t.adam_beta1, false)?;
        unit_interval("train.adam_beta2", t.adam_beta2, false)?;
        positive_finite("train.adam_eps", t.adam_eps)?;
        if let Some(c) = t.clip_norm {
            positive_finite("train.clip_norm", c)?;
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

    /// Whether the momentum is zero at every epoch there can be, however
    /// many epochs a run ends up training (the optimiser may then update
    /// the weights in place).
    pub fn momentum_free(&self) -> bool {
        self.train.momentum == 0.0 && self.train.final_momentum.unwrap_or(0.0) == 0.0
    }

    /// Persistent chains (per temperature for PT); CD uses one per batch row.
    pub fn chains(&self) -> usize {
        match self.train.method {
            Some(Method::Cd) | None => self.train.batch_size,
            _ => self.train.chains.unwrap_or(self.train.batch_size),
        }
    }
}

pub(crate) fn positive_usize(name: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::value(name, "must be at least 1"));
    }
    Ok(())
}

pub(crate) fn positive_finite(name: &str, v: f32) -> Result<()> {
    if !v.is_finite() || v <= 0.0 {
        return Err(Error::value(name, format!("{v} must be finite and > 0")));
    }
    Ok(())
}

pub(crate) fn finite_nonneg(name: &str, v: f32) -> Result<()> {
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
