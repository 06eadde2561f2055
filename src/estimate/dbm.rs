//! How good a deep Boltzmann machine is (Salakhutdinov & Hinton 2009;
//! Salakhutdinov & Murray 2008 for the annealing): its log Z, exactly by
//! enumeration when the odd layers are small, else by AIS; and the
//! variational lower bound on log p(v) from the mean-field posterior Q:
//!
//! ```text
//! log p(v) ≥ Σ_l μ_l·b_l + Σ_k Σ (μ_k W_k) ⊙ μ_{k+1} + Σ_{l≥1} H(μ_l) − log Z,   μ_0 = v
//! ```
//!
//! Both sum the even layers (h⁰ = v, h², …) out in closed form given the
//! odd ones:
//!
//! ```text
//! log p*(h_odd) = Σ_{l odd} hˡ·b_l + Σ_{l even} Σ_j softplus(hˡ⁻¹ W_{l-1} + hˡ⁺¹ W_lᵀ + b_l)_j
//! ```
//!
//! The AIS path runs from a base model A (independent units: the visible
//! ones with the data's base-rate biases b_A, the hidden ones free) to the
//! DBM through θ_β = β θ + (1-β) θ_A; its states are the odd layers, its
//! transitions block Gibbs sweeps of the DBM at θ_β, its weights the ratios
//! of log p*_β(h_odd) above.

use crate::backend::{Fused, Matrix, Sample, Unary};
use crate::data::prepare::head;
use crate::data::EvalData;
use crate::error::{Error, Result};
use crate::estimate::ais::{self, AisEstimate, Direction, Schedule};
use crate::estimate::rbm::ais::BaseRate;
use crate::estimate::rbm::{LogLikelihood, Method, EVAL_STREAM, EVAL_TRAIN_ROWS};
use crate::estimate::{log_sum_exp, BATCH_ROWS};
use crate::host::HostMat;
use crate::models::dbm::{Dbm, DbmHost, MeanField, MfReport, MfState, Particles};
use crate::rng::RngStream;

/// The largest number of odd-layer units whose states are enumerated.
pub const MAX_ENUMERATED: usize = 20;

/// The temperatures `ebmkit eval` anneals a DBM through by default: the
/// shape of Salakhutdinov & Murray's schedule with 20,000 points.
pub fn default_schedule() -> Schedule {
    Schedule::three_stage(1000, 4000, 15000).expect("valid counts")
}

/// Mean field as `ebmkit eval` runs it for the bound.
pub const EVAL_MEAN_FIELD: MeanField = MeanField {
    iters: 100,
    tol: 1e-6,
    damping: 0.0,
};

/// The odd layers' unit count: what an exact sum enumerates.
pub fn odd_units(h: &DbmHost) -> usize {
    h.widths().iter().skip(1).step_by(2).sum()
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `log p*(h_odd)` (the even layers summed out) for the odd layers' states
/// in `s` (even entries ignored), or with `v` given, `log p*(v, h_odd)`
/// (the visible layer kept, the other even layers summed out).
fn log_unnorm(h: &DbmHost, s: &[Vec<f64>], v: Option<&[f32]>) -> f64 {
    let widths = h.widths();
    let mut total = 0.0;
    for (l, &n) in widths.iter().enumerate() {
        if l % 2 == 1 {
            total += s[l]
                .iter()
                .zip(&h.b[l].data)
                .map(|(x, b)| x * f64::from(*b))
                .sum::<f64>();
            continue;
        }
        // The even layer's total input from its odd neighbours.
        let mut input: Vec<f64> = h.b[l].data.iter().map(|&b| f64::from(b)).collect();
        if l > 0 {
            let w = &h.w[l - 1];
            for (i, &x) in s[l - 1].iter().enumerate() {
                if x != 0.0 {
                    for (j, t) in input.iter_mut().enumerate() {
                        *t += x * f64::from(w.data[i * n + j]);
                    }
                }
            }
        }
        if l < h.depth() {
            let w = &h.w[l];
            let m = widths[l + 1];
            for (j, t) in input.iter_mut().enumerate() {
                for (k, &x) in s[l + 1].iter().enumerate() {
                    *t += x * f64::from(w.data[j * m + k]);
                }
            }
        }
        total += match (l, v) {
            (0, Some(v)) => input.iter().zip(v).map(|(t, &x)| t * f64::from(x)).sum(),
            _ => input.iter().map(|&t| softplus(t)).sum::<f64>(),
        };
    }
    total
}

/// `log Σ_{h_odd} exp(f(h_odd))` over every state of the odd layers.
fn sum_over_odd(h: &DbmHost, f: impl Fn(&[Vec<f64>]) -> f64) -> Result<f64> {
    let n = odd_units(h);
    if n > MAX_ENUMERATED {
        return Err(Error::value(
            "exact DBM sums",
            format!("{n} odd-layer units: at most {MAX_ENUMERATED} are enumerated"),
        ));
    }
    let widths = h.widths();
    let mut s: Vec<Vec<f64>> = widths.iter().map(|&w| vec![0.0; w]).collect();
    let mut terms = Vec::with_capacity(1 << n);
    for code in 0u64..(1u64 << n) {
        let mut bit = 0;
        for (l, layer) in s.iter_mut().enumerate().skip(1).step_by(2) {
            debug_assert!(l % 2 == 1);
            for x in layer.iter_mut() {
                *x = ((code >> bit) & 1) as f64;
                bit += 1;
            }
        }
        terms.push(f(&s));
    }
    Ok(log_sum_exp(&terms))
}

/// The exact log Z of a DBM with at most [`MAX_ENUMERATED`] odd-layer
/// units, in f64.
pub fn exact_log_z(h: &DbmHost) -> Result<f64> {
    h.validate()?;
    sum_over_odd(h, |s| log_unnorm(h, s, None))
}

/// The exact log p(v) of each row of `x` (in f64).
pub fn exact_log_prob(h: &DbmHost, x: &HostMat) -> Result<Vec<f64>> {
    let log_z = exact_log_z(h)?;
    if x.cols != h.widths()[0] {
        return Err(Error::shape(
            "exact DBM log p",
            format!("{} columns for {} visible units", x.cols, h.widths()[0]),
        ));
    }
    (0..x.rows)
        .map(|r| Ok(sum_over_odd(h, |s| log_unnorm(h, s, Some(x.row(r))))? - log_z))
        .collect()
}

/// The device state of a batch of AIS runs through the DBM's path.
struct Annealer<'a, B: Fused> {
    be: &'a B,
    dbm: &'a Dbm<B>,
    /// Per layer, 1 x n: the base biases (b_A on the visible layer, zero
    /// above), `diff = b - base` and the current `c(β) = base + β diff`.
    base: Vec<B::Mat>,
    diff: Vec<B::Mat>,
    c: Vec<B::Mat>,
    x: Particles<B>,
    /// Per even layer, the product of its odd neighbours' states; scratch.
    pre: Vec<B::Mat>,
    tmp: Vec<B::Mat>,
    lw_recent: B::Mat,
    lw_total: B::Mat,
}

impl<'a, B: Fused> Annealer<'a, B> {
    /// Runs from the base model's odd layers (forward), or from `start`,
    /// states of every layer of which the odd ones are used (reverse).
    fn new(
        be: &'a B,
        dbm: &'a Dbm<B>,
        base: &BaseRate,
        (runs, start): (usize, Option<&[HostMat]>),
        rng: &mut RngStream,
    ) -> Result<Self> {
        let widths = dbm.widths();
        if base.b_a.len() != widths[0] {
            return Err(Error::shape(
                "DBM AIS base model",
                format!(
                    "{} base biases for {} visible units",
                    base.b_a.len(),
                    widths[0]
                ),
            ));
        }
        if runs == 0 {
            return Err(Error::value("AIS runs", "needs at least one run"));
        }
        let mut base_m = Vec::new();
        let mut diff = Vec::new();
        let mut c = Vec::new();
        for (l, &n) in widths.iter().enumerate() {
            let b = match l {
                0 => HostMat::new(1, n, base.b_a.clone())?,
                _ => HostMat::zeros(1, n),
            };
            let mut d = be.upload(&b)?;
            be.axpby(1.0, &dbm.b[l], -1.0, &mut d)?;
            diff.push(d);
            c.push(be.upload(&b)?);
            base_m.push(be.upload(&b)?);
        }
        let mut x = dbm.particles(be, runs)?;
        for l in (1..widths.len()).step_by(2) {
            match start {
                Some(s) => {
                    if s.len() != widths.len() || s[l].shape() != (runs, widths[l]) {
                        return Err(Error::shape(
                            "reverse AIS starts",
                            format!(
                                "{} layers of states (layer {l}: {:?}) for {runs} runs of a \
                                 DBM of widths {widths:?}",
                                s.len(),
                                s.get(l).map(|m| m.shape())
                            ),
                        ));
                    }
                    be.write(&mut x.s[l], &s[l])?;
                }
                // The base model's odd layers: free units, drawn at p = ½.
                None => {
                    be.fill(&mut x.p[l], 0.5)?;
                    be.bernoulli(&x.p[l], &mut x.s[l], rng)?;
                }
            }
        }
        Ok(Annealer {
            be,
            dbm,
            base: base_m,
            diff,
            c,
            pre: dbm.layers(be, runs)?,
            tmp: dbm.layers(be, runs)?,
            x,
            lw_recent: be.zeros(runs, 1)?,
            lw_total: be.zeros(runs, 1)?,
        })
    }

    /// log Z of the base model.
    fn log_z_base(&self, base: &BaseRate) -> f64 {
        let hidden: usize = self.dbm.widths()[1..].iter().sum();
        base.b_a
            .iter()
            .map(|&b| softplus(f64::from(b)))
            .sum::<f64>()
            + hidden as f64 * std::f64::consts::LN_2
    }

    /// `c[l] = base + β diff`, then `tmp[l] = β pre[l] + c[l]`.
    fn tempered_input(&mut self, l: usize, beta: f32) -> Result<()> {
        let be = self.be;
        be.copy(&self.base[l], &mut self.c[l])?;
        be.axpby(beta, &self.diff[l], 1.0, &mut self.c[l])?;
        be.copy(&self.pre[l], &mut self.tmp[l])?;
        be.affine(&mut self.tmp[l], beta, 0.0)?;
        be.add_row_vec(&mut self.tmp[l], &self.c[l], 1.0)
    }
}

impl<B: Fused> ais::Path for Annealer<'_, B> {
    fn step(&mut self, b0: f64, b1: f64, transition: bool, rng: &mut RngStream) -> Result<()> {
        let (be, dbm) = (self.be, self.dbm);
        let (b0, b1) = (b0 as f32, b1 as f32);
        let depth = dbm.depth();
        for l in (0..=depth).step_by(2) {
            // pre = h^{l-1} W_{l-1} + h^{l+1} W_lᵀ, from the odd states.
            let mut first = true;
            if l > 0 {
                be.gemm(
                    1.0,
                    self.x.s[l - 1].n(),
                    dbm.w[l - 1].n(),
                    0.0,
                    &mut self.pre[l],
                )?;
                first = false;
            }
            if l < depth {
                let beta = if first { 0.0 } else { 1.0 };
                be.gemm(
                    1.0,
                    self.x.s[l + 1].n(),
                    dbm.w[l].t(),
                    beta,
                    &mut self.pre[l],
                )?;
            }
            for (beta, sign) in [(b0, -1.0), (b1, 1.0)] {
                self.tempered_input(l, beta)?;
                be.unary_inplace(Unary::Softplus, &mut self.tmp[l])?;
                be.row_sums(&self.tmp[l], sign, 1.0, &mut self.lw_recent)?;
            }
        }
        for l in (1..=depth).step_by(2) {
            // The odd layers' linear terms: (β1 - β0) hˡ·b_l.
            be.gemm(
                b1 - b0,
                self.x.s[l].n(),
                self.diff[l].t(),
                1.0,
                &mut self.lw_recent,
            )?;
        }
        if !transition {
            return Ok(());
        }
        for l in (0..=depth).step_by(2) {
            self.tempered_input(l, b1)?;
            be.unary(Unary::Sigmoid, &self.tmp[l], &mut self.x.p[l])?;
            be.bernoulli(&self.x.p[l], &mut self.x.s[l], rng)?;
        }
        for l in (1..=depth).step_by(2) {
            // The hidden layers' base biases are zero: c(β) = β b_l.
            let (lo, rest) = self.x.s.split_at_mut(l);
            let (mid, hi) = rest.split_at_mut(1);
            let sample = Some(Sample {
                out: &mut mid[0],
                rng,
            });
            let nb = (lo.last(), hi.first());
            dbm.layer_given(be, l, nb, b1, &mut self.x.p[l], sample)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.be
            .axpby(1.0, &self.lw_recent, 1.0, &mut self.lw_total)?;
        self.be.fill(&mut self.lw_recent, 0.0)
    }

    fn log_weights(&mut self) -> Result<Vec<f64>> {
        Ok(self
            .be
            .download(&self.lw_total)?
            .data
            .iter()
            .map(|&x| f64::from(x))
            .collect())
    }
}

/// AIS estimate of a DBM's log Z: `runs` runs through `schedule` from the
/// base-rate model `base` (a stochastic lower bound on log Z in
/// expectation).
pub fn ais_log_z<B: Fused>(
    be: &B,
    dbm: &Dbm<B>,
    base: &BaseRate,
    runs: usize,
    schedule: &Schedule,
    rng: &mut RngStream,
) -> Result<AisEstimate> {
    let mut a = Annealer::new(be, dbm, base, (runs, None), rng)?;
    let log_z_base = a.log_z_base(base);
    let lw = ais::anneal(&mut a, schedule.betas().iter().copied(), rng)?;
    Ok(AisEstimate::new(
        Direction::Forward,
        log_z_base,
        lw,
        schedule.len(),
    ))
}

/// Reverse AIS (Burda, Grosse & Salakhutdinov 2015): the same path walked
/// from the DBM to the base model, starting at `starts` (states of every
/// layer, one row per run; the odd layers are used), which should be
/// samples of the DBM: a stochastic upper bound on log Z when they are
/// exact, and from the other side of the forward estimate either way.
pub fn reverse_ais_log_z<B: Fused>(
    be: &B,
    dbm: &Dbm<B>,
    base: &BaseRate,
    starts: &[HostMat],
    schedule: &Schedule,
    rng: &mut RngStream,
) -> Result<AisEstimate> {
    let runs = starts.first().map_or(0, |m| m.rows);
    let mut a = Annealer::new(be, dbm, base, (runs, Some(starts)), rng)?;
    let log_z_base = a.log_z_base(base);
    let lw = ais::anneal(&mut a, schedule.betas().iter().rev().copied(), rng)?;
    Ok(AisEstimate::new(
        Direction::Reverse,
        log_z_base,
        lw,
        schedule.len(),
    ))
}

/// Gibbs sweeps from test rows that make reverse-AIS starts when no
/// persistent particles are at hand.
pub const REVERSE_START_SWEEPS: usize = 1000;

/// Reverse-AIS starts: `runs` chains started at rows of `x` (cycled) and
/// run for [`REVERSE_START_SWEEPS`] sweeps; every layer's states.
pub fn reverse_starts<B: Fused>(
    be: &B,
    dbm: &Dbm<B>,
    x: &HostMat,
    runs: usize,
    rng: &mut RngStream,
) -> Result<Vec<HostMat>> {
    if x.rows == 0 || runs == 0 {
        return Err(Error::value("reverse AIS starts", "needs rows and runs"));
    }
    let idx: Vec<usize> = (0..runs).map(|r| r % x.rows).collect();
    let mut p = dbm.particles(be, runs)?;
    dbm.start_particles(be, &be.upload(&x.select_rows(&idx)?)?, &mut p, rng)?;
    for _ in 0..REVERSE_START_SWEEPS {
        dbm.gibbs_sweep(be, &mut p, rng)?;
    }
    p.s.iter().map(|m| be.download(m)).collect()
}

/// How mean field went over the rows of a bound: the most sweeps any block
/// took, the largest residual and how many blocks stopped at the cap.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MfSummary {
    pub blocks: usize,
    pub max_sweeps: usize,
    pub max_residual: f32,
    pub unconverged: usize,
}

impl MfSummary {
    fn add(&mut self, r: &MfReport) {
        self.blocks += 1;
        self.max_sweeps = self.max_sweeps.max(r.sweeps);
        self.max_residual = self.max_residual.max(r.residual.unwrap_or(0.0));
        self.unconverged += usize::from(r.residual.is_some() && !r.converged);
    }
}

/// Per row of `x`: the bound without its `− log Z`, i.e. `−E_Q[E] + H(Q)`
/// at the mean-field posterior `cfg` reaches.
pub fn bound_terms<B: Fused>(
    be: &B,
    dbm: &Dbm<B>,
    x: &HostMat,
    cfg: MeanField,
    summary: &mut MfSummary,
) -> Result<Vec<f64>> {
    let widths = dbm.widths();
    if x.cols != widths[0] {
        return Err(Error::shape(
            "DBM bound",
            format!("{} columns for {} visible units", x.cols, widths[0]),
        ));
    }
    let mut out = Vec::with_capacity(x.rows);
    for start in (0..x.rows).step_by(BATCH_ROWS) {
        let rows: Vec<usize> = (start..(start + BATCH_ROWS).min(x.rows)).collect();
        let n = rows.len();
        let v = be.upload(&x.select_rows(&rows)?)?;
        let mut st = dbm.mf_state(be, n)?;
        summary.add(&dbm.mean_field(be, &v, &mut st, cfg, false)?);
        out.extend(mf_terms(be, dbm, &st)?);
    }
    Ok(out)
}

/// Per row of the state's batch: `−E_Q[E] + H(Q)` at the mean-field means
/// `st` already holds (the bound without its `− log Z`).
pub fn mf_terms<B: Fused>(be: &B, dbm: &Dbm<B>, st: &MfState<B>) -> Result<Vec<f64>> {
    // -E_Q[E] on the device: Σ_l μ_l·b_l + Σ_k rowsum((μ_k W_k) ⊙ μ_{k+1}).
    let n = st.mu[0].rows();
    let mut acc = be.zeros(n, 1)?;
    for (l, b) in dbm.b.iter().enumerate() {
        be.gemm(1.0, st.mu[l].n(), b.t(), 1.0, &mut acc)?;
    }
    for k in 0..dbm.depth() {
        let mut t = be.zeros(n, st.mu[k + 1].cols())?;
        be.gemm(1.0, st.mu[k].n(), dbm.w[k].n(), 0.0, &mut t)?;
        be.binary_inplace(crate::backend::Binary::Mul, &mut t, &st.mu[k + 1])?;
        be.row_sums(&t, 1.0, 1.0, &mut acc)?;
    }
    let mut terms: Vec<f64> = be.download(&acc)?.data.iter().map(|&a| a.into()).collect();
    // The entropies in f64 on the host.
    for mu in &st.mu[1..] {
        let m = be.download(mu)?;
        for (r, t) in terms.iter_mut().enumerate() {
            *t += m
                .row(r)
                .iter()
                .map(|&p| bernoulli_entropy(p.into()))
                .sum::<f64>();
        }
    }
    Ok(terms)
}

fn bernoulli_entropy(p: f64) -> f64 {
    let h = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    h(p) + h(1.0 - p)
}

/// Options of a DBM's evaluation: AIS runs and temperatures, the
/// reverse-AIS starts (e.g. a checkpoint's persistent particles; None:
/// [`reverse_starts`] from test rows), the seed and the bound's mean field.
#[derive(Clone, Debug)]
pub struct DbmEvalOptions {
    pub runs: usize,
    pub schedule: Schedule,
    pub reverse_from: Option<Vec<HostMat>>,
    pub seed: u64,
    pub mean_field: MeanField,
}

/// The DBM's log Z (exact when its odd layers have at most
/// [`MAX_ENUMERATED`] units, else AIS and reverse AIS from the base rates
/// of the training rows) and, for each, the mean variational bound on the
/// test and training rows.
pub fn evaluate<B: Fused>(
    be: &B,
    dbm: &Dbm<B>,
    data: &EvalData,
    opts: &DbmEvalOptions,
) -> Result<(Vec<LogLikelihood>, MfSummary)> {
    let host = dbm.to_host(be)?;
    let train = head(&data.train, EVAL_TRAIN_ROWS)?;
    let log_zs = if odd_units(&host) <= MAX_ENUMERATED {
        vec![(Method::Exact, exact_log_z(&host)?)]
    } else {
        let mut rng = RngStream::new(opts.seed, EVAL_STREAM ^ 0xDB3);
        let base = BaseRate::from_host(&train)?;
        let e = ais_log_z(be, dbm, &base, opts.runs, &opts.schedule, &mut rng)?;
        let starts = match &opts.reverse_from {
            Some(s) => s.clone(),
            None => reverse_starts(be, dbm, &data.test, opts.runs, &mut rng)?,
        };
        let r = reverse_ais_log_z(be, dbm, &base, &starts, &opts.schedule, &mut rng)?;
        vec![
            (Method::Ais(e.clone()), e.log_z),
            (Method::ReverseAis(r.clone()), r.log_z),
        ]
    };
    let mut summary = MfSummary::default();
    let mean = |x: &HostMat, s: &mut MfSummary| -> Result<f64> {
        let t = bound_terms(be, dbm, x, opts.mean_field, s)?;
        if t.is_empty() {
            return Err(Error::value("eval data", "no rows to average over"));
        }
        Ok(t.iter().sum::<f64>() / t.len() as f64)
    };
    let test = mean(&data.test, &mut summary)?;
    let train = mean(&train, &mut summary)?;
    let lls = log_zs
        .into_iter()
        .map(|(method, log_z)| LogLikelihood {
            method,
            log_z,
            test: test - log_z,
            train: train - log_z,
            dims: host.widths()[0],
            per_dimension: false,
        })
        .collect();
    Ok((lls, summary))
}

/// One line of the report.
pub fn describe(l: &LogLikelihood) -> String {
    let how = match &l.method {
        Method::Exact => "exact".to_string(),
        Method::Ais(e) => format!(
            "by AIS, {} runs, {} temperatures, ESS {:.1}; log Z in [{:.3}, {:.3}]",
            e.runs(),
            e.temperatures,
            e.ess,
            e.log_z_lower,
            e.log_z_upper
        ),
        Method::ReverseAis(e) => format!(
            "by reverse AIS, {} runs; log Z in [{:.3}, {:.3}]",
            e.runs(),
            e.log_z_lower,
            e.log_z_upper
        ),
    };
    format!(
        "DBM variational lower bound, log Z = {:.3} ({how}): mean log p(v) >= test {:.3}, train {:.3} nats",
        l.log_z, l.test, l.train
    )
}
