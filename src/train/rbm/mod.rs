//! Training RBMs: the RBM's [`Objective`] for the one training loop.
//!
//! Per minibatch (PCD-1, binary units): `p⁺ = σ(v W + b_h)` (fused GEMM),
//! one Gibbs sweep of the persistent chains (two fused GEMMs), and the
//! update (two GEMMs into the new weights, both bias steps in one pass).
//! Nothing is allocated and nothing is read back; the loop
//! ([`crate::train::fit`]) gathers and binarises the batch before.
//!
//! - [`negative::Negative`]: where the negative statistics come from: CD-k
//!   (chains restarted at the data), PCD-k (persistent chains), FPCD-k
//!   (persistent chains on fast weights), PT (parallel tempering, cold
//!   chains).
//! - [`sgd::Sgd`]: SGD with momentum, L2 weight decay, an optional sparsity
//!   target on the hidden units and optional centering (Melchior et al. 2016).
//! - [`monitor`]: reconstruction error, stochastic pseudo-likelihood and the
//!   free-energy gap at epoch ends.
//! - `state.rs`: the training state in checkpoints.

pub mod monitor;
pub mod negative;
pub mod sgd;
mod state;

use std::path::Path;

use crate::backend::{Fused, Sample};
use crate::energy::{Bipartite, FreeEnergy, LayerScratch};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{DbmLayer, Method, Recipe};
use crate::models::rbm::{Rbm, RbmHost};
use crate::rng::RngStream;
use crate::sample::tempering::linear_betas;
use crate::sample::{Chains, Tempering};
use crate::train::fit::{Batch, Objective, Resident, Step, Trainer};
use crate::train::history::{CurveSpec, EpochRecord};
use crate::units::UnitKind;
use crate::viz::Color;

use monitor::Monitor;
use negative::{FastWeights, Negative};
use sgd::{Sgd, SgdConfig, Stats, VarianceConfig};

/// A training run of an RBM.
pub type RbmTrainer<B> = Trainer<B, RbmObjective<B>>;

/// An RBM with its negative phase, optimiser and monitors.
pub struct RbmObjective<B: Fused> {
    pub rbm: Rbm<B>,
    neg: Negative<B>,
    opt: Sgd<B>,
    monitor: Monitor<B>,
    pos_ph: B::Mat,
    sh: LayerScratch<B>,
}

impl<B: Fused> RbmObjective<B> {
    /// Everything but the model's parameters, built for `rbm`.
    fn assemble(be: &B, recipe: &Recipe, rbm: Rbm<B>, data: &Resident<B>) -> Result<Self> {
        let (up, down) = DbmLayer::multipliers(recipe.rbm()?.dbm_layer);
        let rbm = rbm.with_multipliers(up, down)?;
        let (nv, nh) = (rbm.n_visible(), rbm.n_hidden());
        let bs = data.batch_size();
        let p = &data.prepared;
        let monitor = Monitor::new(be, &p.monitor_train, p.monitor_heldout.as_ref(), nh)?;
        let t = &recipe.train;
        let nc = recipe.chains();
        let method = t.method.unwrap_or(Method::Pcd);
        let neg = match method {
            Method::Cd => Negative::Cd {
                chains: Chains::new(be, bs, nv, nh)?,
                k: t.k,
            },
            Method::Pcd => Negative::Pcd {
                chains: Chains::new(be, nc, nv, nh)?,
                k: t.k,
            },
            Method::Fpcd => Negative::Fpcd {
                chains: Chains::new(be, nc, nv, nh)?,
                k: t.k,
                fast: FastWeights::new(be, &rbm, t.fast_lr, t.fast_decay)?,
            },
            Method::Pt => Negative::Pt {
                pt: Tempering::new(be, linear_betas(t.temperatures, t.beta_min), nc, nv, nh)?,
                k: t.k,
                v: be.zeros(nc, nv)?,
                ph: be.zeros(nc, nh)?,
            },
        };
        let m = recipe.rbm()?;
        let cfg = SgdConfig {
            weight_decay: t.weight_decay,
            sparsity: t
                .sparsity_target
                .map(|s| (s, t.sparsity_cost, t.sparsity_decay)),
            centering: t
                .centering
                .then(|| (p.resident.column_means(), t.centering_rate)),
            explicit: method == Method::Fpcd,
            momentum_free: recipe.momentum_free(),
            variance: rbm.var_v.as_ref().map(|_| VarianceConfig {
                n_pos: bs,
                n_neg: nc,
                learn: m
                    .learn_variance
                    .then(|| (t.variance_lr_factor, m.min_variance.ln())),
            }),
        };
        Ok(RbmObjective {
            opt: Sgd::new(be, &rbm.w, cfg)?,
            pos_ph: be.zeros(bs, nh)?,
            sh: LayerScratch::new(be, bs, nh)?,
            rbm,
            neg,
            monitor,
        })
    }

    /// Visible biases from the data means (Hinton's guide, §8): logit of
    /// the mean for Bernoulli units, log of it for softmax units (their
    /// natural parameters up to a constant), the mean for the others.
    fn biases_from_data(&mut self, be: &B, mean: &[f32]) -> Result<()> {
        let b: Vec<f32> = match self.rbm.visible {
            UnitKind::Bernoulli => mean
                .iter()
                .map(|&p| {
                    let p = p.clamp(1e-3, 1.0 - 1e-3);
                    (p / (1.0 - p)).ln()
                })
                .collect(),
            UnitKind::Softmax { .. } => mean.iter().map(|&p| p.max(1e-3).ln()).collect(),
            _ => mean.to_vec(),
        };
        be.write(&mut self.rbm.b_v, &HostMat::new(1, b.len(), b)?)
    }

    /// Persistent chains start at (binarised) training rows.
    fn start_chains(&mut self, be: &B, data: &Resident<B>, rng: &mut RngStream) -> Result<()> {
        let rows = match &self.neg {
            Negative::Cd { .. } => return Ok(()),
            Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => chains.rows(),
            Negative::Pt { pt, .. } => pt.n,
        };
        let n = data.len();
        let idx: Vec<u32> = (0..rows).map(|r| (r % n) as u32).collect();
        let v0 = data.rows(be, &idx, rng)?;
        match &mut self.neg {
            Negative::Cd { .. } => Ok(()),
            Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => {
                chains.start_from(be, &self.rbm, &v0, rng)
            }
            Negative::Pt { pt, .. } => pt.start_from(be, &self.rbm, &v0, rng),
        }
    }
}

impl<B: Fused> Objective<B> for RbmObjective<B> {
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, rng: &mut RngStream) -> Result<Self> {
        let m = recipe.rbm()?;
        let (vis, hid) = (m.visible_units()?, m.hidden_units()?);
        let nv = data.cols();
        let rbm = Rbm::new(be, nv, m.n_hidden, vis, hid, m.init_std, rng)?;
        let mut o = Self::assemble(be, recipe, rbm, data)?;
        if m.visible_bias_from_data {
            o.biases_from_data(be, &data.prepared.raw_means)?;
        }
        if let Some(var) = &mut o.rbm.var_v {
            be.fill(&mut var.log_var, m.init_variance.ln())?;
        }
        o.rbm.refresh(be)?;
        o.start_chains(be, data, rng)?;
        Ok(o)
    }

    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self> {
        let host: RbmHost = ck.model(origin)?;
        if host.n_visible() != data.cols() {
            return Err(Error::format(
                origin,
                format!(
                    "the model has {} visible units, the data {} columns",
                    host.n_visible(),
                    data.cols()
                ),
            ));
        }
        // A checkpoint's own recipe agrees with it (the loading hook checks
        // that); the recipe it resumes under is another file, whose unit
        // types would otherwise silently reinterpret the weights.
        crate::models::rbm::persist::check_against_recipe(
            &host,
            recipe,
            origin,
            "the recipe it resumes under",
        )?;
        if host.n_hidden() != recipe.rbm()?.n_hidden {
            return Err(Error::format(
                origin,
                format!(
                    "the model has {} hidden units, the recipe says {}",
                    host.n_hidden(),
                    recipe.rbm()?.n_hidden
                ),
            ));
        }
        let rbm = Rbm::from_host(be, &host)?;
        let mut o = Self::assemble(be, recipe, rbm, data)?;
        state::import(&mut o, be, ck, origin)?;
        Ok(o)
    }

    fn check_data(recipe: &Recipe, x: &HostMat, what: &str) -> Result<()> {
        recipe.visible_units()?.check_values(x, what)
    }

    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()> {
        let batch = batch.x;
        // Positive phase: p⁺ = E[h | v⁺] (and, for CD, the chains' first h).
        let h0 = self.neg.cd_hidden().map(|out| Sample {
            out,
            rng: &mut *rng,
        });
        self.rbm
            .hidden_given_visible(be, batch, None, &mut self.pos_ph, h0, &mut self.sh)?;
        self.neg.run(be, &self.rbm, rng)?;
        let (v_neg, h_neg, fast) = self.neg.stats_and_fast();
        let stats = Stats {
            v_pos: batch,
            h_pos: &self.pos_ph,
            v_neg,
            h_neg,
        };
        self.opt
            .step(be, &mut self.rbm, stats, at.lr, at.momentum, fast)
    }

    fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        Ok(self.rbm.first_non_finite(be)?.map(str::to_string))
    }

    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()> {
        self.monitor.evaluate(be, &self.rbm, rec)?;
        if let Negative::Pt { pt, .. } = &self.neg {
            rec.series.insert("swap_rates".into(), pt.swap_rates(be)?);
        }
        Ok(())
    }

    fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(&self.rbm.to_host(be)?)?;
        state::export(self, be, &mut c)?;
        Ok(c)
    }

    fn describe(&self, r: &EpochRecord) -> String {
        let o = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        let mut m = format!(
            "epoch {} recon {:.3} PL {} FE gap {} ({:.2} s)",
            r.epoch,
            r.metric("recon_error").unwrap_or(f64::NAN),
            o(r.metric("pseudo_ll")),
            o(r.metric("fe_gap")),
            r.seconds
        );
        if let Some(rates) = r.series.get("swap_rates") {
            let rates: Vec<String> = rates.iter().map(|x| format!("{x:.2}")).collect();
            m.push_str(&format!(" swaps [{}]", rates.join(" ")));
        }
        m
    }

    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]) {
        (CURVES, COLUMNS)
    }
}

/// The columns of an RBM run's `curves.csv`.
const COLUMNS: &[&str] = &[
    "recon_error",
    "pseudo_ll",
    "fe_train",
    "fe_heldout",
    "fe_gap",
];

/// The plots of an RBM run's curves.
const CURVES: &[CurveSpec] = &[
    CurveSpec {
        name: "recon_error",
        title: "reconstruction error",
        y_desc: "squared error per example",
        lines: &[("recon_error", Color::Blue)],
    },
    CurveSpec {
        name: "pseudo_ll",
        title: "pseudo-log-likelihood (training subset)",
        y_desc: "nats per example",
        lines: &[("pseudo_ll", Color::Blue)],
    },
    CurveSpec {
        name: "fe_gap",
        title: "free-energy gap: held-out - train",
        y_desc: "nats",
        lines: &[("fe_gap", Color::Blue)],
    },
    CurveSpec {
        name: "free_energy",
        title: "mean free energy: train (blue), held-out (red)",
        y_desc: "F(v)",
        lines: &[("fe_train", Color::Blue), ("fe_heldout", Color::Red)],
    },
];
