//! Training deep Boltzmann machines: the DBM's [`Objective`] for the one
//! training loop (Salakhutdinov & Hinton 2009).
//!
//! Per minibatch of n rows, with m persistent fantasy particles:
//!
//! ```text
//! μ      = mean field on the batch (μ_0 = v)                    data-dependent statistics
//! s      = train.k block Gibbs sweeps of the particles           model statistics
//! g_W_k  = -(μ_kᵀ μ_{k+1}) / n + (s_kᵀ s_{k+1}) / m              descent directions
//! g_b_l  = -mean(μ_l) + mean(s_l)
//! ```
//!
//! and the recipe's optimiser ([`crate::train::optim`]: momentum, weight
//! decay on the weights, the learning-rate schedule) takes the step. With
//! `mf_tol = 0` nothing is read back and nothing is allocated per batch.

use std::path::Path;

use crate::backend::{Fused, Matrix};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::Recipe;
use crate::models::dbm::{Dbm, DbmHost, MeanField, MfState, Particles};
use crate::models::AnyModel;
use crate::rng::RngStream;
use crate::train::backprop::optim_config;
use crate::train::fit::{Batch, Objective, Resident, Step, Trainer};
use crate::train::history::{CurveSpec, EpochRecord};
use crate::train::optim::Optimizer;
use crate::units::UnitKind;
use crate::viz::Color;

/// A training run of a DBM.
pub type DbmTrainer<B> = Trainer<B, DbmObjective<B>>;

/// The rows one epoch-end monitor scores, with their mean-field state.
struct Probe<B: Fused> {
    name: &'static str,
    v: B::Mat,
    st: MfState<B>,
    recon: B::Mat,
}

/// A DBM with its particles, optimiser and monitors.
pub struct DbmObjective<B: Fused> {
    pub dbm: Dbm<B>,
    pub particles: Particles<B>,
    mf: MeanField,
    sweeps: usize,
    st: MfState<B>,
    /// Descent directions of every W_k, then every b_l.
    g_w: Vec<B::Mat>,
    g_b: Vec<B::Mat>,
    opt: Optimizer<B>,
    names: Vec<String>,
    probes: Vec<Probe<B>>,
}

/// The DBM a recipe starts from: composed from its `init` stack, or small
/// random weights with the visible biases at the data's log-odds.
fn initial(
    spec_host: Option<DbmHost>,
    widths: &[usize],
    recipe: &Recipe,
    data: &Resident<impl Fused>,
    rng: &mut RngStream,
) -> Result<DbmHost> {
    if let Some(h) = spec_host {
        return Ok(h);
    }
    let std = recipe.dbm()?.init_std;
    let d = rng.next_draw();
    let mut at = 0usize;
    let mut w = Vec::new();
    for p in widths.windows(2) {
        let m = HostMat::from_fn(p[0], p[1], |r, c| std * d.normal(at + r * p[1] + c));
        at += p[0] * p[1];
        w.push(m);
    }
    let mut b: Vec<HostMat> = widths.iter().map(|&n| HostMat::zeros(1, n)).collect();
    b[0] = HostMat::new(
        1,
        widths[0],
        data.prepared
            .raw_means
            .iter()
            .map(|&p| {
                let p = p.clamp(1e-3, 1.0 - 1e-3);
                (p / (1.0 - p)).ln()
            })
            .collect(),
    )?;
    Ok(DbmHost { w, b })
}

/// The DBM composed from a pretraining stack checkpoint.
fn from_init(path: &Path) -> Result<DbmHost> {
    let (model, ck) = AnyModel::load(path)?;
    let AnyModel::Stack(stack) = model else {
        return Err(Error::format(
            path,
            format!(
                "model.init must be a stack of RBMs, this is a {}",
                model.kind()
            ),
        ));
    };
    let recipe = match ck.recipe.trim().is_empty() {
        true => None,
        false => Some(Recipe::parse(&ck.recipe, path)?),
    };
    DbmHost::from_stack(&stack, recipe.as_ref()).map_err(|e| Error::format(path, e.to_string()))
}

impl<B: Fused> DbmObjective<B> {
    fn assemble(be: &B, recipe: &Recipe, host: &DbmHost, data: &Resident<B>) -> Result<Self> {
        let spec = recipe.dbm()?;
        let widths = host.widths();
        if widths[0] != data.cols() {
            return Err(Error::shape(
                "dbm",
                format!(
                    "{} visible units for data of {} columns",
                    widths[0],
                    data.cols()
                ),
            ));
        }
        if !spec.hidden.is_empty() && spec.hidden != widths[1..] {
            return Err(Error::value(
                "model.hidden",
                format!(
                    "the recipe says {:?}, the model has {:?}",
                    spec.hidden,
                    &widths[1..]
                ),
            ));
        }
        let dbm = Dbm::from_host(be, host)?;
        let (bs, nc) = (
            data.batch_size(),
            recipe.train.chains.unwrap_or(data.batch_size()),
        );
        let mut shapes: Vec<(usize, usize)> = widths.windows(2).map(|p| (p[0], p[1])).collect();
        shapes.extend(widths.iter().map(|&n| (1, n)));
        let decay: Vec<bool> = (0..shapes.len()).map(|i| i < dbm.depth()).collect();
        let mut names: Vec<String> = (0..dbm.depth()).map(|k| format!("W_{k}")).collect();
        names.extend((0..widths.len()).map(|l| format!("b_{l}")));
        let p = &data.prepared;
        let mut probes = Vec::new();
        for (name, x) in [
            ("train", Some(&p.monitor_train)),
            ("heldout", p.monitor_heldout.as_ref()),
        ] {
            if let Some(x) = x {
                probes.push(Probe {
                    name,
                    v: be.upload(x)?,
                    st: dbm.mf_state(be, x.rows)?,
                    recon: be.zeros(x.rows, widths[0])?,
                });
            }
        }
        Ok(DbmObjective {
            particles: dbm.particles(be, nc)?,
            mf: MeanField {
                iters: spec.mf_iters,
                tol: spec.mf_tol,
                damping: spec.mf_damping,
            },
            sweeps: recipe.train.k,
            st: dbm.mf_state(be, bs)?,
            g_w: shapes[..dbm.depth()]
                .iter()
                .map(|&(r, c)| be.zeros(r, c))
                .collect::<Result<_>>()?,
            g_b: widths
                .iter()
                .map(|&n| be.zeros(1, n))
                .collect::<Result<_>>()?,
            opt: Optimizer::new(be, &shapes, &decay, optim_config(&recipe.train))?,
            names,
            probes,
            dbm,
        })
    }

    fn name_refs(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }
}

impl<B: Fused> Objective<B> for DbmObjective<B> {
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, rng: &mut RngStream) -> Result<Self> {
        let spec = recipe.dbm()?;
        let composed = spec.init.as_deref().map(from_init).transpose()?;
        let mut widths = vec![data.cols()];
        widths.extend(&spec.hidden);
        let host = initial(composed, &widths, recipe, data, rng)?;
        let mut o = Self::assemble(be, recipe, &host, data)?;
        // The particles start at training rows, their hidden layers drawn
        // from the doubled bottom-up pass.
        let n = data.len();
        let idx: Vec<u32> = (0..o.particles.s[0].rows())
            .map(|r| (r % n) as u32)
            .collect();
        let v0 = data.rows(be, &idx, rng)?;
        o.dbm.start_particles(be, &v0, &mut o.particles, rng)?;
        Ok(o)
    }

    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self> {
        let host: DbmHost = ck.model(origin)?;
        let mut o = Self::assemble(be, recipe, &host, data)?;
        let steps = ck.epoch * data.batches_per_epoch() as u64;
        let names = o.names.clone();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        o.opt.import(be, &refs, (ck, origin), steps)?;
        let widths = o.dbm.widths();
        let rows = o.particles.s[0].rows();
        for (l, &n) in widths.iter().enumerate() {
            let s = ck.state_tensor(origin, &format!("chains.s_{l}"), (rows, n))?;
            be.write(&mut o.particles.s[l], s)?;
        }
        Ok(o)
    }

    fn check_data(_recipe: &Recipe, x: &HostMat, what: &str) -> Result<()> {
        UnitKind::Bernoulli.check_values(x, what)
    }

    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()> {
        let d = &self.dbm;
        d.mean_field(be, batch.x, &mut self.st, self.mf, false)?;
        for _ in 0..self.sweeps {
            d.gibbs_sweep(be, &mut self.particles, rng)?;
        }
        let n = batch.x.rows() as f32;
        let m = self.particles.s[0].rows() as f32;
        let (mu, s) = (&self.st.mu, &self.particles.s);
        for (k, g) in self.g_w.iter_mut().enumerate() {
            be.gemm(-1.0 / n, mu[k].t(), mu[k + 1].n(), 0.0, g)?;
            be.gemm(1.0 / m, s[k].t(), s[k + 1].n(), 1.0, g)?;
        }
        for (l, g) in self.g_b.iter_mut().enumerate() {
            be.col_sums(&mu[l], -1.0 / n, 0.0, g)?;
            be.col_sums(&s[l], 1.0 / m, 1.0, g)?;
        }
        let dbm = &mut self.dbm;
        let mut params: Vec<&mut B::Mat> = dbm.w.iter_mut().chain(dbm.b.iter_mut()).collect();
        let grads: Vec<&B::Mat> = self.g_w.iter().chain(self.g_b.iter()).collect();
        self.opt.step(be, &mut params, &grads, at.lr, at.momentum)
    }

    fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        let all = self.dbm.w.iter().chain(&self.dbm.b);
        for (name, m) in self.names.iter().zip(all) {
            if !be.sum(m)?.is_finite() {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// Per probe: the squared error of σ(μ_1 W_0ᵀ + b_0) against the rows
    /// after mean field, and `−E_Q + H(Q)`, the bound without its log Z
    /// (the gap between training and held-out rows shows overfitting).
    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()> {
        let d = &self.dbm;
        for p in &mut self.probes {
            d.mean_field(be, &p.v, &mut p.st, self.mf, false)?;
            be.sigmoid_affine(1.0, p.st.mu[1].n(), d.w[0].t(), &d.b[0], &mut p.recon, None)?;
            be.axpby(-1.0, &p.v, 1.0, &mut p.recon)?;
            be.unary_inplace(crate::backend::Unary::Square, &mut p.recon)?;
            let rows = p.v.rows() as f64;
            rec.metrics.insert(
                format!("recon_{}", p.name),
                f64::from(be.sum(&p.recon)?) / rows,
            );
            // The means of the reconstruction's mean field, reused.
            let t = crate::estimate::dbm::mf_terms(be, d, &p.st)?;
            rec.metrics
                .insert(format!("mf_score_{}", p.name), t.iter().sum::<f64>() / rows);
        }
        Ok(())
    }

    fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(&self.dbm.to_host(be)?)?;
        self.opt.export(be, &self.name_refs(), &mut c)?;
        for (l, s) in self.particles.s.iter().enumerate() {
            c.state.insert(format!("chains.s_{l}"), be.download(s)?);
        }
        Ok(c)
    }

    fn describe(&self, r: &EpochRecord) -> String {
        let o = |k: &str, p: usize| {
            r.metric(k)
                .map(|v| format!("{v:.p$}"))
                .unwrap_or_else(|| "-".into())
        };
        format!(
            "epoch {} recon {} / {} -E_Q+H {} / {} (train / held-out, {:.2} s)",
            r.epoch,
            o("recon_train", 3),
            o("recon_heldout", 3),
            o("mf_score_train", 2),
            o("mf_score_heldout", 2),
            r.seconds
        )
    }

    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]) {
        (CURVES, COLUMNS)
    }
}

const COLUMNS: &[&str] = &[
    "recon_train",
    "recon_heldout",
    "mf_score_train",
    "mf_score_heldout",
];

const CURVES: &[CurveSpec] = &[
    CurveSpec {
        name: "recon",
        title: "mean-field reconstruction error: training (blue), held-out (red) rows",
        y_desc: "squared error per row",
        lines: &[("recon_train", Color::Blue), ("recon_heldout", Color::Red)],
    },
    CurveSpec {
        name: "mf_score",
        title: "-E_Q + H(Q), the bound without log Z: training (blue), held-out (red) rows",
        y_desc: "nats per row",
        lines: &[
            ("mf_score_train", Color::Blue),
            ("mf_score_heldout", Color::Red),
        ],
    },
];
