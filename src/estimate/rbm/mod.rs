//! Estimators specific to RBMs: exact log Z by enumeration ([`exact`]), the
//! fused annealing path from a base-rate model ([`ais`]), and the
//! evaluation `ebmkit eval` reports ([`evaluate`]): exact when a layer is
//! small enough, else AIS (a stochastic lower bound on log Z) and reverse
//! AIS (an upper bound) from the same data.

pub mod ais;
pub mod exact;

use crate::backend::{Fused, Matrix};
use crate::data::prepare::{cycle, head};
use crate::data::EvalData;
use crate::error::{Error, Result};
use crate::estimate::ais::{AisEstimate, Schedule};
use crate::estimate::neg_free_energies;
use crate::host::HostMat;
use crate::models::rbm::{GibbsRun, Rbm, RbmHost};
use crate::rng::RngStream;
use crate::units::UnitKind;

/// The default seed of `ebmkit eval` (and of the estimate closing `train`).
pub const EVAL_SEED: u64 = 11;
/// The Philox stream of the evaluation's draws ("AIS!").
pub const EVAL_STREAM: u32 = 0x4149_5321;
/// Training rows scored beside the test set.
pub const EVAL_TRAIN_ROWS: usize = 10_000;
/// Gibbs sweeps from test rows that make reverse-AIS starts when a
/// checkpoint has no persistent chains.
pub const REVERSE_START_SWEEPS: usize = 1000;

/// How to estimate log Z when it cannot be summed exactly.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// AIS runs.
    pub runs: usize,
    /// `Some(n)`: n evenly spaced temperatures; None: the standard 14,500
    /// of Salakhutdinov & Murray.
    pub betas: Option<usize>,
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            runs: ais::DEFAULT_RUNS,
            betas: None,
            seed: EVAL_SEED,
        }
    }
}

/// How a log Z was obtained.
#[derive(Clone, Debug)]
pub enum Method {
    Exact,
    Ais(AisEstimate),
    ReverseAis(AisEstimate),
}

/// One estimate of the log-likelihood: log Z and the mean log-probability
/// of the test and training rows, in nats.
#[derive(Clone, Debug)]
pub struct LogLikelihood {
    pub method: Method,
    pub log_z: f64,
    pub test: f64,
    pub train: f64,
    /// Values per example; with `per_dimension` the report divides by it.
    pub dims: usize,
    pub per_dimension: bool,
}

impl std::fmt::Display for LogLikelihood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.method {
            Method::Exact => write!(f, "exact")?,
            Method::Ais(e) => write!(
                f,
                "AIS ({} runs, {} temperatures, ESS {:.1}; log Z in [{:.3}, {:.3}])",
                e.runs(),
                e.temperatures,
                e.ess,
                e.log_z_lower,
                e.log_z_upper
            )?,
            Method::ReverseAis(e) => write!(
                f,
                "reverse AIS ({} runs from approximate model samples; log Z in [{:.3}, {:.3}])",
                e.runs(),
                e.log_z_lower,
                e.log_z_upper
            )?,
        }
        write!(
            f,
            ": log Z = {:.3}; mean log p: test {:.3}, train {:.3} nats",
            self.log_z, self.test, self.train
        )?;
        if self.per_dimension {
            let d = self.dims as f64;
            write!(
                f,
                " ({:.4} / {:.4} nats per dimension)",
                self.test / d,
                self.train / d
            )?;
        }
        Ok(())
    }
}

/// Whether log Z of this RBM is summed exactly (the layer to enumerate has
/// at most [`exact::MAX_ENUMERATED`] units).
pub fn is_exact(h: &RbmHost) -> bool {
    match h.visible {
        UnitKind::Gaussian => h.n_hidden() <= exact::MAX_ENUMERATED,
        _ => h.n_visible().min(h.n_hidden()) <= exact::MAX_ENUMERATED,
    }
}

/// The test log-likelihood of an RBM with binary hidden units and binary
/// or Gaussian visible units, on data prepared as its training run saw them
/// (the first [`EVAL_TRAIN_ROWS`] training rows are scored too): exact when
/// [`is_exact`], else AIS and reverse AIS, the latter from `chains` (the
/// checkpoint's persistent chains, cycled to `runs` rows) or from
/// [`REVERSE_START_SWEEPS`] Gibbs sweeps started at test rows.
pub fn evaluate<B: Fused>(
    be: &B,
    host: &RbmHost,
    data: &EvalData,
    chains: Option<&HostMat>,
    opts: &EvalOptions,
) -> Result<Vec<LogLikelihood>> {
    let supported = matches!(host.visible, UnitKind::Bernoulli | UnitKind::Gaussian)
        && host.hidden == UnitKind::Bernoulli;
    if !supported {
        return Err(Error::value(
            "eval",
            format!(
                "handles binary and Gaussian-binary RBMs, this one is {}-{}",
                host.visible, host.hidden
            ),
        ));
    }
    let rbm = Rbm::from_host(be, host)?;
    let mean_nf = |x: &HostMat| -> Result<f64> {
        let nf = neg_free_energies(be, &rbm, &be.upload(x)?, crate::estimate::BATCH_ROWS)?;
        if nf.is_empty() {
            return Err(Error::value("eval data", "no rows to average over"));
        }
        Ok(nf.iter().sum::<f64>() / nf.len() as f64)
    };
    let (f_test, f_train) = (
        mean_nf(&data.test)?,
        mean_nf(&head(&data.train, EVAL_TRAIN_ROWS)?)?,
    );
    let report = |method: Method, log_z: f64| LogLikelihood {
        method,
        log_z,
        test: f_test - log_z,
        train: f_train - log_z,
        dims: host.n_visible(),
        per_dimension: host.visible == UnitKind::Gaussian,
    };
    if is_exact(host) {
        return Ok(vec![report(Method::Exact, exact::log_z(be, &rbm)?)]);
    }
    if opts.runs == 0 {
        return Err(Error::value("--runs", "must be at least 1"));
    }
    let schedule = match opts.betas {
        Some(n) => Schedule::linear(n)?,
        None => Schedule::standard(),
    };
    let mut rng = RngStream::new(opts.seed, EVAL_STREAM);
    let (fwd, rev) = match &host.log_var_v {
        None if host.visible == UnitKind::Bernoulli => {
            let base = ais::BaseRate::from_host(&data.train)?;
            let fwd = ais::forward(be, &rbm, &base, &schedule, opts.runs, &mut rng)?;
            let init = reverse_starts(be, &rbm, chains, &data.test, opts.runs, &mut rng)?;
            let rev = ais::reverse(be, &rbm, &base, &schedule, &be.upload(&init)?, &mut rng)?;
            (fwd, rev)
        }
        _ => {
            let z = match &rbm.var_v {
                Some(var) => be.download(&var.log_var)?.data,
                None => vec![0.0; host.n_visible()],
            };
            let base = ais::GaussianBase::from_host(&data.train, &z)?;
            let fwd = ais::forward(be, &rbm, &base, &schedule, opts.runs, &mut rng)?;
            let init = reverse_starts(be, &rbm, chains, &data.test, opts.runs, &mut rng)?;
            let rev = ais::reverse(be, &rbm, &base, &schedule, &be.upload(&init)?, &mut rng)?;
            (fwd, rev)
        }
    };
    let (lz_f, lz_r) = (fwd.log_z, rev.log_z);
    Ok(vec![
        report(Method::Ais(fwd), lz_f),
        report(Method::ReverseAis(rev), lz_r),
    ])
}

/// Approximate model samples for reverse AIS: the stored persistent chains
/// cycled to `runs` rows, else Gibbs chains started at test rows (binary
/// visible units: a Bernoulli draw from the last visible means; Gaussian:
/// the last visible state).
fn reverse_starts<B: Fused>(
    be: &B,
    rbm: &Rbm<B>,
    chains: Option<&HostMat>,
    test: &HostMat,
    runs: usize,
    rng: &mut RngStream,
) -> Result<HostMat> {
    let nv = rbm.w.rows();
    if let Some(v) = chains.filter(|v| v.cols == nv && v.rows > 0) {
        return cycle(v, runs, "stored chains");
    }
    let start = cycle(test, runs, "test data")?;
    let run = GibbsRun {
        start: Some(&start),
        chains: runs,
        steps: REVERSE_START_SWEEPS,
        every: None,
    };
    let g = rbm.gibbs(be, &run, rng)?;
    if rbm.visible.is_binary() {
        let mut v = be.zeros(runs, nv)?;
        be.bernoulli(&be.upload(&g.last)?, &mut v, rng)?;
        be.download(&v)
    } else {
        Ok(g.last_sample)
    }
}
