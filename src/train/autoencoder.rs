//! Training auto-encoders: the auto-encoder's [`Objective`] for the one
//! training loop.
//!
//! Per minibatch: one forward and backward pass of the model's graph
//! ([`crate::models::autoencoder::Arch::graph`], corruption drawn on the
//! device from the training stream), then one step of the recipe's
//! optimiser ([`crate::train::optim`]). The batch losses add up on the
//! device; nothing is read back until the epoch ends, when the monitors
//! run the clean graph (no corruption, no penalty) over fixed training and
//! held-out subsets.

use std::path::Path;

use crate::autodiff::{Activation, Var};
use crate::backend::Fused;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::Recipe;
use crate::models::autoencoder::{AeHost, Arch, AutoEncoder, Penalties};
use crate::rng::RngStream;
use crate::train::backprop::Backprop;
use crate::train::fit::{Batch, Objective, Resident, Step, Trainer};
use crate::train::history::{CurveSpec, EpochRecord};
use crate::units::UnitKind;
use crate::viz::Color;

/// A training run of an auto-encoder.
pub type AeTrainer<B> = Trainer<B, AeObjective<B>>;

/// An auto-encoder with its planned graph, optimiser and monitors.
pub struct AeObjective<B: Fused> {
    pub ae: AutoEncoder<B>,
    bp: Backprop<B>,
    /// The reconstruction's node (kept by the plan for walkback).
    recon: Var,
    /// The monitors' fixed training and held-out subsets.
    probes: Vec<(&'static str, HostMat)>,
    walk: Option<Walkback<B>>,
}

/// Walkback training's state: the chain's further steps per batch, its
/// Bernoulli samples and the gradients summed over the passes.
struct Walkback<B: Fused> {
    steps: usize,
    x: B::Mat,
    grads: Vec<B::Mat>,
}

impl<B: Fused> AeObjective<B> {
    fn assemble(be: &B, recipe: &Recipe, ae: AutoEncoder<B>, data: &Resident<B>) -> Result<Self> {
        let spec = recipe.autoencoder()?;
        let g = ae
            .arch
            .graph(data.batch_size(), &Penalties::from_spec(spec))?;
        let walking = spec.walkback > 1;
        let keep = if walking { vec![g.recon] } else { vec![] };
        let bp = Backprop::new(be, &g.graph, (g.loss, &keep), &recipe.train)?;
        let shapes: Vec<_> = ae.arch.params().iter().map(|(_, s)| *s).collect();
        let p = &data.prepared;
        let mut probes = vec![("train", p.monitor_train.clone())];
        if let Some(h) = &p.monitor_heldout {
            probes.push(("heldout", h.clone()));
        }
        let walk = match walking {
            false => None,
            true => Some(Walkback {
                steps: spec.walkback - 1,
                x: be.zeros(data.batch_size(), data.cols())?,
                grads: shapes
                    .iter()
                    .map(|&(r, c)| be.zeros(r, c))
                    .collect::<Result<_>>()?,
            }),
        };
        Ok(AeObjective {
            recon: g.recon,
            ae,
            bp,
            probes,
            walk,
        })
    }

    /// After the plain pass on `batch`: walks the chain `steps` more times
    /// (sample the reconstruction, corrupt it, reconstruct towards the
    /// batch), and steps along the gradient averaged over every pass.
    fn walkback_step(
        &mut self,
        be: &B,
        batch: &B::Mat,
        at: Step,
        rng: &mut RngStream,
    ) -> Result<()> {
        let w = self.walk.as_mut().expect("walkback is on");
        let n = self.ae.params.len();
        for i in 0..n {
            be.copy(self.bp.plan.param_grad(i)?, &mut w.grads[i])?;
        }
        for _ in 0..w.steps {
            let r = self.bp.plan.value(self.recon)?;
            be.bernoulli(r, &mut w.x, rng)?;
            self.bp.pass(be, &self.ae.bound(), &[&w.x, batch], rng)?;
            for i in 0..n {
                be.axpby(1.0, self.bp.plan.param_grad(i)?, 1.0, &mut w.grads[i])?;
            }
        }
        let k = (w.steps + 1) as f32;
        for g in &mut w.grads {
            be.affine(g, 1.0 / k, 0.0)?;
        }
        let grads: Vec<&B::Mat> = w.grads.iter().collect();
        self.bp.update_with(be, &mut self.ae.params, &grads, at)
    }
}

impl<B: Fused> Objective<B> for AeObjective<B> {
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, rng: &mut RngStream) -> Result<Self> {
        let spec = recipe.autoencoder()?;
        let arch = Arch::from_spec(data.cols(), spec);
        let ae = AutoEncoder::new(be, arch, spec.init_std, rng)?;
        Self::assemble(be, recipe, ae, data)
    }

    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self> {
        let host: AeHost = ck.model(origin)?;
        let want = Arch::from_spec(data.cols(), recipe.autoencoder()?);
        if host.arch != want {
            return Err(Error::format(
                origin,
                format!(
                    "the model is {:?}, the recipe and data ask for {want:?}",
                    host.arch
                ),
            ));
        }
        let ae = AutoEncoder::from_host(be, &host)?;
        let mut o = Self::assemble(be, recipe, ae, data)?;
        let steps = ck.epoch * data.batches_per_epoch() as u64;
        o.bp.import(be, (ck, origin), steps)?;
        Ok(o)
    }

    fn check_data(recipe: &Recipe, x: &HostMat, what: &str) -> Result<()> {
        // Cross-entropy needs targets in [0, 1]; squared error any finite value.
        let as_units = match recipe.autoencoder()?.decoder {
            Activation::Sigmoid => UnitKind::Bernoulli,
            _ => UnitKind::Gaussian,
        };
        as_units.check_values(x, what)
    }

    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()> {
        let batch = batch.x;
        self.bp.pass(be, &self.ae.bound(), &[batch, batch], rng)?;
        self.bp.note_loss(be)?;
        if self.walk.is_some() {
            return self.walkback_step(be, batch, at, rng);
        }
        self.bp.update(be, &mut self.ae.params, at)
    }

    fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        Ok(self.ae.first_non_finite(be)?.map(str::to_string))
    }

    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()> {
        rec.metrics
            .insert("loss".into(), self.bp.take_mean_loss(be)?);
        let xent = self.ae.arch.decoder == Activation::Sigmoid;
        for (name, x) in &self.probes {
            // The clean graph draws nothing: any stream will do.
            let r = self
                .ae
                .reconstruct(be, x, None, &mut RngStream::new(0, 0))?;
            rec.metrics.insert(format!("recon_{name}"), r.squared_error);
            if xent {
                rec.metrics.insert(format!("xent_{name}"), r.loss);
            }
        }
        Ok(())
    }

    fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(&self.ae.to_host(be)?)?;
        self.bp.export(be, &mut c)?;
        Ok(c)
    }

    fn describe(&self, r: &EpochRecord) -> String {
        let o = |k: &str| {
            r.metric(k)
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "-".into())
        };
        let mut m = format!(
            "epoch {} loss {} recon {} / {}",
            r.epoch,
            o("loss"),
            o("recon_train"),
            o("recon_heldout")
        );
        if r.metric("xent_train").is_some() {
            m.push_str(&format!(
                " xent {} / {}",
                o("xent_train"),
                o("xent_heldout")
            ));
        }
        m.push_str(&format!(" (train / held-out, {:.2} s)", r.seconds));
        m
    }

    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]) {
        (CURVES, COLUMNS)
    }
}

/// The columns of an auto-encoder run's `curves.csv`.
const COLUMNS: &[&str] = &[
    "loss",
    "recon_train",
    "recon_heldout",
    "xent_train",
    "xent_heldout",
];

/// The plots of an auto-encoder run's curves.
const CURVES: &[CurveSpec] = &[
    CurveSpec {
        name: "loss",
        title: "training loss (corrupted inputs, with penalties)",
        y_desc: "per example",
        lines: &[("loss", Color::Blue)],
    },
    CurveSpec {
        name: "recon_error",
        title: "clean reconstruction error: train (blue), held-out (red)",
        y_desc: "squared error per example",
        lines: &[("recon_train", Color::Blue), ("recon_heldout", Color::Red)],
    },
    CurveSpec {
        name: "xent",
        title: "clean reconstruction cross-entropy: train (blue), held-out (red)",
        y_desc: "nats per example",
        lines: &[("xent_train", Color::Blue), ("xent_heldout", Color::Red)],
    },
];
