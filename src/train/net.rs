//! Training feed-forward nets (fine-tuning): the net's [`Objective`] for
//! the one training loop.
//!
//! Per minibatch: one forward and backward pass of the net's graph
//! (dropout masks drawn on the device), one step of the recipe's
//! optimiser. At epoch ends the monitors score the training subset and the
//! validation set without dropout; the parameters of the epoch with the
//! best validation score (error rate for a classifier, loss otherwise) are
//! kept on the device, and with `patience` training stops once that many
//! epochs bring no better one. The test set is never seen here.

use std::path::Path;

use crate::backend::{Backend, Fused};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{Output, Recipe};
use crate::models::net::{build, Dropout, Net, NetHost};
use crate::models::AnyModel;
use crate::rng::RngStream;
use crate::train::backprop::Backprop;
use crate::train::fit::{Batch, Objective, Resident, Step, Trainer};
use crate::train::history::{CurveSpec, EpochRecord};
use crate::units::UnitKind;
use crate::viz::Color;

/// A training run of a net.
pub type NetTrainer<B> = Trainer<B, NetObjective<B>>;

/// The parameters of the best epoch so far, with its score.
struct Best<B: Backend> {
    params: Vec<B::Mat>,
    score: f32,
    epoch: u64,
}

/// A net with its planned graph, optimiser, monitors and best epoch.
pub struct NetObjective<B: Fused> {
    pub net: Net<B>,
    bp: Backprop<B>,
    /// (name, rows, targets) of the training subset and the validation set.
    probes: Vec<(&'static str, HostMat, HostMat)>,
    best: Option<Best<B>>,
    epoch: u64,
    patience: Option<usize>,
}

/// The pretrained layers a recipe's `init` names.
fn pretrained(path: &Path, autoencoder: bool) -> Result<crate::models::net::Pretrained> {
    let (model, _) = AnyModel::load(path)?;
    model.pretrained(autoencoder).map_err(|e| match e {
        Error::Value { msg, .. } | Error::Shape { detail: msg, .. } => Error::format(path, msg),
        other => other,
    })
}

impl<B: Fused> NetObjective<B> {
    fn assemble(be: &B, recipe: &Recipe, host: &NetHost, data: &Resident<B>) -> Result<Self> {
        let spec = recipe.net()?;
        let net = Net::from_host(be, host)?;
        let dropout = Dropout {
            input: spec.dropout_input,
            hidden: spec.dropout_hidden,
        };
        let g = net.graph(data.batch_size(), dropout)?;
        let bp = Backprop::new(be, &g.graph, (g.loss, &[]), &recipe.train)?;
        let p = &data.prepared;
        let targets = |x: &HostMat, t: Option<&HostMat>| -> Result<HostMat> {
            match (spec.autoencoder, t) {
                (true, _) => Ok(x.clone()),
                (false, Some(t)) => Ok(t.clone()),
                (false, None) => Err(Error::value(
                    "data",
                    "a classifier needs labels: a data source with labels (MNIST)",
                )),
            }
        };
        let tg = p.targets.as_ref();
        let mut probes = vec![(
            "train",
            p.monitor_train.clone(),
            targets(&p.monitor_train, tg.map(|t| &t.monitor_train))?,
        )];
        if let Some(h) = &p.monitor_heldout {
            let t = targets(h, tg.and_then(|t| t.monitor_heldout.as_ref()))?;
            probes.push(("valid", h.clone(), t));
        }
        Ok(NetObjective {
            net,
            bp,
            probes,
            best: None,
            epoch: 0,
            patience: spec.patience,
        })
    }

    /// The net of the best validation epoch (the current one when there
    /// is no validation set).
    pub fn best(&self, be: &B) -> Result<NetHost> {
        let mut host = self.net.to_host(be)?;
        if let Some(b) = &self.best {
            for (k, l) in host.layers.iter_mut().enumerate() {
                l.w = be.download(&b.params[2 * k])?;
                l.b = be.download(&b.params[2 * k + 1])?;
            }
        }
        Ok(host)
    }

    /// The epoch whose parameters [`best`](Self::best) returns, with its
    /// validation score.
    pub fn best_epoch(&self) -> Option<(u64, f32)> {
        self.best.as_ref().map(|b| (b.epoch, b.score))
    }

    /// Keeps the parameters if `score` beats the best so far.
    fn select(&mut self, be: &B, score: f32) -> Result<()> {
        if self.best.as_ref().is_some_and(|b| b.score <= score) {
            return Ok(());
        }
        let params = match self.best.take() {
            Some(mut b) => {
                for (d, s) in b.params.iter_mut().zip(&self.net.params) {
                    be.copy(s, d)?;
                }
                b.params
            }
            None => {
                let mut v = Vec::new();
                for s in &self.net.params {
                    let mut d = be.zeros(s.rows(), s.cols())?;
                    be.copy(s, &mut d)?;
                    v.push(d);
                }
                v
            }
        };
        self.best = Some(Best {
            params,
            score,
            epoch: self.epoch,
        });
        Ok(())
    }
}

use crate::backend::Matrix;

impl<B: Fused> Objective<B> for NetObjective<B> {
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, rng: &mut RngStream) -> Result<Self> {
        let spec = recipe.net()?;
        let pre = match &spec.init {
            Some(p) => Some(pretrained(p, spec.autoencoder)?),
            None => None,
        };
        let host = build(spec, data.cols(), pre.as_ref(), rng)?;
        Self::assemble(be, recipe, &host, data)
    }

    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self> {
        let host: NetHost = ck.model(origin)?;
        let mut o = Self::assemble(be, recipe, &host, data)?;
        let steps = ck.epoch * data.batches_per_epoch() as u64;
        o.bp.import(be, (ck, origin), steps)?;
        o.epoch = ck.epoch;
        if ck.state.contains_key("best_score") {
            let score = ck.state_tensor(origin, "best_score", (1, 1))?.data[0];
            let epoch = ck.state_tensor(origin, "best_epoch", (1, 1))?.data[0] as u64;
            let mut params = Vec::new();
            for (name, shape) in o.net.param_shapes() {
                params.push(be.upload(ck.state_tensor(
                    origin,
                    &format!("best.{name}"),
                    shape,
                )?)?);
            }
            o.best = Some(Best {
                params,
                score,
                epoch,
            });
        }
        Ok(o)
    }

    fn check_data(recipe: &Recipe, x: &HostMat, what: &str) -> Result<()> {
        let spec = recipe.net()?;
        // A sigmoid output reconstructs inputs in [0, 1]; the rest take any
        // finite value.
        let as_units = match (spec.autoencoder, spec.output) {
            (true, Output::Sigmoid) => UnitKind::Bernoulli,
            _ => UnitKind::Gaussian,
        };
        as_units.check_values(x, what)
    }

    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()> {
        // A deep auto-encoder's targets are its inputs.
        let t = batch.t.unwrap_or(batch.x);
        self.bp.pass(be, &self.net.bound(), &[batch.x, t], rng)?;
        self.bp.note_loss(be)?;
        self.bp.update(be, &mut self.net.params, at)
    }

    fn done(&self) -> bool {
        match (self.patience, &self.best) {
            (Some(p), Some(b)) => self.epoch >= b.epoch + p as u64,
            _ => false,
        }
    }

    fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        self.net.first_non_finite(be)
    }

    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()> {
        self.epoch += 1;
        rec.metrics
            .insert("loss".into(), self.bp.take_mean_loss(be)?);
        let mut score = None;
        for (name, x, t) in &self.probes {
            let s = self.net.evaluate(be, x, t)?;
            rec.metrics.insert(format!("{name}_loss"), s.loss);
            if let Some(e) = s.error_rate {
                rec.metrics.insert(format!("{name}_error"), 100.0 * e);
            }
            if let Some(se) = s.squared_error {
                rec.metrics.insert(format!("{name}_se"), se);
            }
            if *name == "valid" {
                // Error counts are exact in f32; losses compare as stored.
                score = Some(match s.error_rate {
                    Some(e) => (e * x.rows as f64).round() as f32,
                    None => s.loss as f32,
                });
            }
        }
        if let Some(s) = score {
            self.select(be, s)?;
            let b = self.best.as_ref().map_or(0, |b| b.epoch);
            rec.metrics.insert("best_epoch".into(), b as f64);
        }
        Ok(())
    }

    fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(&self.net.to_host(be)?)?;
        self.bp.export(be, &mut c)?;
        if let Some(b) = &self.best {
            for (name, m) in self.bp.names().iter().zip(&b.params) {
                c.state.insert(format!("best.{name}"), be.download(m)?);
            }
            c.state
                .insert("best_score".into(), HostMat::new(1, 1, vec![b.score])?);
            c.state.insert(
                "best_epoch".into(),
                HostMat::new(1, 1, vec![b.epoch as f32])?,
            );
        }
        Ok(c)
    }

    fn describe(&self, r: &EpochRecord) -> String {
        let o = |k: &str, p: usize| {
            r.metric(k)
                .map(|v| format!("{v:.p$}"))
                .unwrap_or_else(|| "-".into())
        };
        let mut m = format!("epoch {} loss {}", r.epoch, o("loss", 4));
        if r.metric("train_error").is_some() {
            m.push_str(&format!(
                " error {} % / {} %",
                o("train_error", 2),
                o("valid_error", 2)
            ));
        } else {
            m.push_str(&format!(
                " squared error {} / {}",
                o("train_se", 3),
                o("valid_se", 3)
            ));
        }
        m.push_str(&format!(
            " (train / validation, best epoch {}, {:.2} s)",
            o("best_epoch", 0),
            r.seconds
        ));
        m
    }

    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]) {
        (CURVES, COLUMNS)
    }
}

/// The columns of a net run's `curves.csv`.
const COLUMNS: &[&str] = &[
    "loss",
    "train_loss",
    "valid_loss",
    "train_error",
    "valid_error",
    "train_se",
    "valid_se",
    "best_epoch",
];

/// The plots of a net run's curves.
const CURVES: &[CurveSpec] = &[
    CurveSpec {
        name: "loss",
        title: "loss: training batches (blue), training subset (green), validation (red)",
        y_desc: "per example",
        lines: &[
            ("loss", Color::Blue),
            ("train_loss", Color::Green),
            ("valid_loss", Color::Red),
        ],
    },
    CurveSpec {
        name: "error",
        title: "classification error: train (blue), validation (red)",
        y_desc: "%",
        lines: &[("train_error", Color::Blue), ("valid_error", Color::Red)],
    },
    CurveSpec {
        name: "squared_error",
        title: "squared reconstruction error: train (blue), validation (red)",
        y_desc: "per example",
        lines: &[("train_se", Color::Blue), ("valid_se", Color::Red)],
    },
];
