//! Annealed importance sampling for the log partition function of a binary
//! RBM (Neal 2001; Salakhutdinov & Murray, "On the quantitative analysis of
//! deep belief networks", ICML 2008), forward and reverse.
//!
//! The path runs from a base-rate model A (visible biases `b_A` fit to the
//! data, no weights, `n_hidden` free hidden units) to the target B through
//! the marginals
//!
//! `log p*_β(v) = (1-β) v·b_A + β v·b_v + Σ_j softplus(β (vW + b_h)_j)`,
//!
//! so `Z_0 = Z_A = 2^nh Π_i (1 + e^{b_A,i})` is analytic and `Z_1 = Z_B`.
//! One Gibbs sweep at β, `h ~ sigmoid(β (vW + b_h))` then
//! `v ~ sigmoid((1-β) b_A + β (h W^T + b_v))`, leaves `p_β` invariant.
//!
//! **Forward** AIS starts `M` runs from the base model and anneals to β = 1;
//! `Ẑ_B = Z_A · mean(w)` is unbiased, so `log Ẑ_B` is a stochastic *lower*
//! bound on `log Z_B` (Jensen) and the log-likelihood it implies tends to be
//! too *high*.
//!
//! **Reverse** AIS (Burda, Grosse & Salakhutdinov, "Accurate and
//! conservative estimates of MRF log-likelihood using reverse annealing",
//! AISTATS 2015; Grosse et al. 2015 on bidirectional sandwiching) starts from
//! samples of the target and anneals toward the base: `mean(w_rev)` is an
//! unbiased estimate of `Z_A / Z_B`, so `log Ẑ_B = log Z_A - log mean(w_rev)`
//! is a stochastic *upper* bound on `log Z_B`, and the log-likelihood it
//! implies a conservative (too low) one. The bound holds only when the
//! starting points are exact samples (see [`super::exact::sample`] for
//! small models); persistent chains or long Gibbs chains from the data are
//! the usual approximation, and a poorly mixed chain that misses modes makes
//! the estimate too low again. Run both: the truth is bracketed between them
//! when both are accurate, and their gap says how far to trust either.
//!
//! Gaussian visible units with variances σ² take the same path with `v/σ²`
//! in the linear terms and a base model of the same variances centred on the
//! data means ([`GaussianBase`], passed to [`forward`] and [`reverse`] like a
//! [`BaseRate`]); only the visible draws change (mean + σ ε instead of
//! a Bernoulli).
//!
//! All runs advance together as one `runs x nv` matrix. Inside the
//! temperature loop nothing is allocated and nothing is read back: the log
//! weights accumulate on the device (a short-range accumulator flushed into
//! a long-range one, to limit f32 rounding over 14,500 additions) and only
//! the final `runs x 1` column is downloaded.

use super::{log_mean_exp, rbm_dims};
use crate::backend::{Fused, Matrix, Sample, Tempered};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;
use crate::units::gaussian_per_unit;

/// Runs per estimate in Salakhutdinov & Murray (2008).
pub const DEFAULT_RUNS: usize = 100;

/// Base-rate probabilities are clamped to `[BASE_RATE_CLAMP, 1 - BASE_RATE_CLAMP]`
/// so pixels that are always off in the data get a finite bias.
pub const BASE_RATE_CLAMP: f32 = 1e-3;

/// Steps between flushes of the short-range log-weight accumulator.
const FLUSH_EVERY: usize = 64;

/// The inverse temperatures `0 = β_0 <= β_1 <= ... <= β_K = 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    betas: Vec<f64>,
}

/// `n` points from `a` to `b` inclusive, as numpy's `linspace`.
fn linspace(a: f64, b: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| {
        if n == 1 {
            a
        } else if i == n - 1 {
            b
        } else {
            a + (b - a) * i as f64 / (n - 1) as f64
        }
    })
}

impl Schedule {
    /// The 14,500 temperatures of Salakhutdinov & Murray (2008): steps of
    /// 1e-3 on [0, 0.5), 1e-4 on [0.5, 0.9) and 10,000 points on [0.9, 1]
    /// (as `torch_rbm.py` builds them).
    pub fn standard() -> Schedule {
        Schedule::three_stage(500, 4000, 10000).expect("the standard counts are valid")
    }

    /// The standard shape with other counts: `n1` points on [0, 0.5), `n2` on
    /// [0.5, 0.9), `n3` on [0.9, 1] (`n1 + n2 + n3` temperatures in all).
    /// Scaling the three counts together gives shorter schedules for tests.
    pub fn three_stage(n1: usize, n2: usize, n3: usize) -> Result<Schedule> {
        if n1 == 0 || n2 == 0 || n3 < 2 {
            return Err(Error::value(
                "AIS schedule",
                format!("three_stage({n1}, {n2}, {n3}) needs n1, n2 >= 1 and n3 >= 2"),
            ));
        }
        let mut betas = Vec::with_capacity(n1 + n2 + n3);
        betas.extend(linspace(0.0, 0.5, n1 + 1).take(n1));
        betas.extend(linspace(0.5, 0.9, n2 + 1).take(n2));
        betas.extend(linspace(0.9, 1.0, n3));
        Schedule::from_betas(betas)
    }

    /// `n` evenly spaced temperatures from 0 to 1.
    pub fn linear(n: usize) -> Result<Schedule> {
        Schedule::from_betas(linspace(0.0, 1.0, n).collect())
    }

    /// Any schedule: at least two temperatures, starting at exactly 0,
    /// ending at exactly 1, never decreasing.
    pub fn from_betas(betas: Vec<f64>) -> Result<Schedule> {
        let bad = |msg: String| Err(Error::value("AIS schedule", msg));
        if betas.len() < 2 {
            return bad(format!(
                "needs at least 2 temperatures, got {}",
                betas.len()
            ));
        }
        if betas[0] != 0.0 || betas[betas.len() - 1] != 1.0 {
            return bad(format!(
                "must start at 0 and end at 1, got {} ... {}",
                betas[0],
                betas[betas.len() - 1]
            ));
        }
        if let Some(i) =
            (1..betas.len()).find(|&i| !betas[i].is_finite() || betas[i] < betas[i - 1])
        {
            return bad(format!(
                "must be finite and non-decreasing; beta[{}] = {} follows beta[{}] = {}",
                i,
                betas[i],
                i - 1,
                betas[i - 1]
            ));
        }
        Ok(Schedule { betas })
    }

    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// Number of temperatures (transitions are one fewer).
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::standard()
    }
}

/// Column means of the rows of `data` (f64 sums), for the base models.
fn column_means(data: &HostMat) -> Result<Vec<f32>> {
    if data.rows == 0 {
        return Err(Error::value("base-model data", "no rows"));
    }
    let mut acc = vec![0f64; data.cols];
    for r in 0..data.rows {
        for (a, &x) in acc.iter_mut().zip(data.row(r)) {
            *a += x as f64;
        }
    }
    Ok(acc.iter().map(|a| (a / data.rows as f64) as f32).collect())
}

/// The base model A: independent visible units with biases `b_a` and free
/// hidden units (zero weights and biases).
#[derive(Clone, Debug, PartialEq)]
pub struct BaseRate {
    pub b_a: Vec<f32>,
}

impl BaseRate {
    /// Biases `logit(p_i)` with `p_i` the data mean of pixel `i`, clamped to
    /// `[eps, 1 - eps]`.
    pub fn from_mean_clamped(mean: &[f32], eps: f32) -> BaseRate {
        let b_a = mean
            .iter()
            .map(|&p| {
                let p = p.clamp(eps, 1.0 - eps);
                (p / (1.0 - p)).ln()
            })
            .collect();
        BaseRate { b_a }
    }

    /// [`from_mean_clamped`](Self::from_mean_clamped) with [`BASE_RATE_CLAMP`].
    pub fn from_mean(mean: &[f32]) -> BaseRate {
        BaseRate::from_mean_clamped(mean, BASE_RATE_CLAMP)
    }

    /// Fit to the rows of a host matrix (the training data).
    pub fn from_host(data: &HostMat) -> Result<BaseRate> {
        Ok(BaseRate::from_mean(&column_means(data)?))
    }

    /// Fit to the rows of a matrix already on the backend (one small download).
    pub fn from_data<B: Fused>(be: &B, data: &B::Mat) -> Result<BaseRate> {
        let (n, nv) = data.shape();
        if n == 0 {
            return Err(Error::value("base-rate data", "no rows"));
        }
        let mut mean = be.zeros(1, nv)?;
        be.col_sums(data, 1.0 / n as f32, 0.0, &mut mean)?;
        Ok(BaseRate::from_mean(&be.download(&mean)?.data))
    }

    /// The uniform base (all biases 0).
    pub fn uniform(nv: usize) -> BaseRate {
        BaseRate { b_a: vec![0.0; nv] }
    }
}

/// A base model AIS starts from (forward) or ends at (reverse): independent
/// visible units and free hidden units, with a log Z in closed form.
pub trait Base {
    /// Per visible unit: the biases b_A (binary units) or the means
    /// (Gaussian units).
    fn visible(&self) -> &[f32];
    /// The log-variances of Gaussian visible units (None: binary units).
    fn log_var(&self) -> Option<&[f32]>;
    /// `log Z_A` with `n_hidden` free hidden units.
    fn log_z(&self, n_hidden: usize) -> f64;
}

impl Base for BaseRate {
    fn visible(&self) -> &[f32] {
        &self.b_a
    }
    fn log_var(&self) -> Option<&[f32]> {
        None
    }
    /// `Σ_i softplus(b_A,i) + n_hidden ln 2`.
    fn log_z(&self, n_hidden: usize) -> f64 {
        self.b_a
            .iter()
            .map(|&b| {
                let b = b as f64;
                b.max(0.0) + (-b.abs()).exp().ln_1p()
            })
            .sum::<f64>()
            + n_hidden as f64 * std::f64::consts::LN_2
    }
}

/// Which way the chain was annealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Base → target: a stochastic lower bound on log Z.
    Forward,
    /// Target → base: a stochastic upper bound on log Z (given exact starts).
    Reverse,
}

/// The result of one AIS estimate, in nats.
#[derive(Clone, Debug)]
pub struct AisEstimate {
    pub direction: Direction,
    /// The estimate of log Z_B.
    pub log_z: f64,
    /// `log(Ẑ - 3σ̂)` and `log(Ẑ + 3σ̂)` (Salakhutdinov & Murray's ±3 standard
    /// deviations of the mean importance weight, mapped to log Z; for reverse
    /// AIS the bounds of `Z_A / Z_B` inverted). The lower end is `-inf`
    /// (forward) or the upper `+inf` (reverse) when 3σ̂ exceeds the mean.
    pub log_z_lower: f64,
    pub log_z_upper: f64,
    /// log Z of the base-rate model.
    pub log_z_base: f64,
    /// Per-run log importance weights (of Z_B/Z_A forward, Z_A/Z_B reverse).
    pub log_weights: Vec<f64>,
    /// Effective sample size `(Σ w)² / Σ w²`, between 1 and the number of runs.
    pub ess: f64,
    /// Temperatures in the schedule.
    pub temperatures: usize,
}

impl AisEstimate {
    fn new(
        direction: Direction,
        log_z_base: f64,
        log_weights: Vec<f64>,
        temperatures: usize,
    ) -> AisEstimate {
        let m = log_weights
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let n = log_weights.len() as f64;
        let w: Vec<f64> = log_weights.iter().map(|&l| (l - m).exp()).collect();
        let mean = w.iter().sum::<f64>() / n;
        let var = if w.len() > 1 {
            w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let se3 = 3.0 * (var / n).sqrt();
        let ess = w.iter().sum::<f64>().powi(2) / w.iter().map(|x| x * x).sum::<f64>();
        let lme = log_mean_exp(&log_weights);
        let lo = m + (mean - se3).max(0.0).ln();
        let hi = m + (mean + se3).ln();
        let (log_z, log_z_lower, log_z_upper) = match direction {
            Direction::Forward => (log_z_base + lme, log_z_base + lo, log_z_base + hi),
            Direction::Reverse => (log_z_base - lme, log_z_base - hi, log_z_base - lo),
        };
        AisEstimate {
            direction,
            log_z,
            log_z_lower,
            log_z_upper,
            log_z_base,
            log_weights,
            ess,
            temperatures,
        }
    }

    /// Number of AIS runs.
    pub fn runs(&self) -> usize {
        self.log_weights.len()
    }
}

/// The device state of `runs` chains and everything one temperature step
/// touches, allocated once.
///
/// One step is two calls: [`Backend::gemm_tempered_hidden`] (`x = v W_x`
/// and the hidden half) and the visible draw from `h W_vᵀ`. Both weight
/// matrices carry one extra column so that nothing else is needed: the last
/// column of `W_x` is `d = b_v - b_A` (so the GEMM also yields `v·d`, the
/// visible part of the weight ratio), the last column of `W_v` is `b_A`, and
/// `tempered_hidden` sets the matching entry of `h` to `c = (1-β)/β`, so
/// `β (h W_vᵀ + b_v) = β (h Wᵀ + b_v) + (1-β) b_A`. For Gaussian visible
/// units `W_x` is `diag(σ⁻²) W` and `d` is scaled by σ⁻² too.
struct Annealer<'a, B: Fused> {
    be: &'a B,
    b_v: &'a B::Mat,
    /// nv x (nh+1): `[W_in | d]` and `[W | b_A]`.
    w_x: B::Mat,
    w_v: B::Mat,
    /// 1 x (nh+1): `[b_h | 0]`.
    b_h: B::Mat,
    /// runs x nv base-model means (probabilities for binary units), the
    /// start states and β = 0 transitions.
    p_a: B::Mat,
    v: B::Mat,
    p_v: B::Mat,
    /// runs x (nh+1): `v W_x` and the hidden states (last column: c).
    x: B::Mat,
    h: B::Mat,
    /// runs x 1 log weights: recent steps, and everything flushed so far.
    lw_recent: B::Mat,
    lw_total: B::Mat,
    /// Gaussian visible units: their standard deviations (None: binary).
    sd: Option<B::Mat>,
}

impl<'a, B: Fused> Annealer<'a, B> {
    fn new(
        be: &'a B,
        w: &'a B::Mat,
        b_v: &'a B::Mat,
        b_h: &'a B::Mat,
        base: &impl Base,
        runs: usize,
    ) -> Result<Self> {
        // The base's visible means (binary units: its biases b_A).
        let base_mean = base.visible();
        let log_var = base.log_var();
        let (nv, nh) = rbm_dims::<B>(w, b_v, b_h)?;
        if base_mean.len() != nv {
            return Err(Error::shape(
                "AIS base-rate model",
                format!(
                    "{} base biases for an RBM with {nv} visible units",
                    base_mean.len()
                ),
            ));
        }
        if let Some(z) = log_var {
            if z.len() != nv {
                return Err(Error::shape(
                    "Gaussian AIS",
                    format!(
                        "{} log-variances for an RBM with {nv} visible units",
                        z.len()
                    ),
                ));
            }
        }
        if runs == 0 {
            return Err(Error::value("AIS runs", "needs at least one run"));
        }
        let wh = be.download(w)?;
        let bvh = be.download(b_v)?;
        let prec = |i: usize| log_var.map_or(1.0, |z| (-z[i]).exp());
        let w_x = HostMat::from_fn(nv, nh + 1, |i, j| {
            if j < nh {
                prec(i) * wh.get(i, j)
            } else {
                prec(i) * (bvh.data[i] - base_mean[i])
            }
        });
        let w_v = HostMat::from_fn(
            nv,
            nh + 1,
            |i, j| {
                if j < nh {
                    wh.get(i, j)
                } else {
                    base_mean[i]
                }
            },
        );
        let bhh = be.download(b_h)?;
        let b_h_aug = HostMat::from_fn(1, nh + 1, |_, j| if j < nh { bhh.data[j] } else { 0.0 });
        let p_a = HostMat::from_fn(runs, nv, |_, i| match log_var {
            None => crate::backend::sigmoid(base_mean[i]),
            Some(_) => base_mean[i],
        });
        let sd = match log_var {
            Some(z) => Some(be.upload(&HostMat::from_fn(1, nv, |_, i| (0.5 * z[i]).exp()))?),
            None => None,
        };
        Ok(Annealer {
            be,
            b_v,
            w_x: be.upload(&w_x)?,
            w_v: be.upload(&w_v)?,
            b_h: be.upload(&b_h_aug)?,
            p_a: be.upload(&p_a)?,
            v: be.zeros(runs, nv)?,
            p_v: be.zeros(runs, nv)?,
            x: be.zeros(runs, nh + 1)?,
            h: be.zeros(runs, nh + 1)?,
            lw_recent: be.zeros(runs, 1)?,
            lw_total: be.zeros(runs, 1)?,
            sd,
        })
    }

    /// Adds `log p*_{b1}(v) - log p*_{b0}(v)` to the log weights and, if
    /// `transition`, moves `v` by one Gibbs sweep at `b1`.
    fn step(&mut self, b0: f64, b1: f64, transition: bool, rng: &mut RngStream) -> Result<()> {
        let be = self.be;
        // Below ~1e-30, (1-β)/β would overflow f32; such a β is the base model anyway.
        let sweep = transition && b1 > 1e-30;
        let c = if sweep { ((1.0 - b1) / b1) as f32 } else { 0.0 };
        // x = [v W_in | v·d] in one GEMM, then the hidden part of the ratio
        // (softplus terms subtracted per unit before summing: the two row
        // sums are large and nearly equal), the visible part (b1 - b0) v·d,
        // and the hidden sample, in one pass over x.
        be.gemm_tempered_hidden(
            &self.v,
            &self.w_x,
            &mut self.x,
            &Tempered {
                b_h: &self.b_h,
                beta0: b0 as f32,
                beta1: b1 as f32,
                linear_last: Some(c),
            },
            &mut self.lw_recent,
            if sweep { Some(&mut self.h) } else { None }.map(|out| Sample { out, rng }),
        )?;
        if sweep {
            // β (h Wᵀ + c b_A + b_v) = β (h Wᵀ + b_v) + (1-β) b_A; relative
            // precision survives small β because the large c b_A is scaled
            // straight back down.
            match &self.sd {
                None => be.sigmoid_affine(
                    b1 as f32,
                    self.h.n(),
                    self.w_v.t(),
                    self.b_v,
                    &mut self.p_v,
                    Some(Sample {
                        out: &mut self.v,
                        rng,
                    }),
                )?,
                Some(sd) => {
                    be.gemm(b1 as f32, self.h.n(), self.w_v.t(), 0.0, &mut self.p_v)?;
                    be.add_row_vec(&mut self.p_v, self.b_v, b1 as f32)?;
                    gaussian_per_unit(be, &self.p_v, sd, &mut self.v, rng)?;
                }
            }
        } else if transition {
            // At β = 0 (or within 1e-30 of it) the visible units ignore the hidden ones.
            self.draw_base(rng)?;
        }
        Ok(())
    }

    /// `v ~` the base model.
    fn draw_base(&mut self, rng: &mut RngStream) -> Result<()> {
        match &self.sd {
            None => self.be.bernoulli(&self.p_a, &mut self.v, rng),
            Some(sd) => gaussian_per_unit(self.be, &self.p_a, sd, &mut self.v, rng),
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.be
            .axpby(1.0, &self.lw_recent, 1.0, &mut self.lw_total)?;
        self.be.fill(&mut self.lw_recent, 0.0)
    }

    /// Forward AIS from base-model draws; `log_z_base` is the base's log Z.
    fn forward(
        mut self,
        log_z_base: f64,
        schedule: &Schedule,
        rng: &mut RngStream,
    ) -> Result<AisEstimate> {
        self.draw_base(rng)?;
        let lw = self.anneal(schedule.betas().iter().copied(), rng)?;
        Ok(AisEstimate::new(
            Direction::Forward,
            log_z_base,
            lw,
            schedule.len(),
        ))
    }

    /// Reverse AIS from the model samples `init` (one run per row).
    fn reverse(
        mut self,
        log_z_base: f64,
        schedule: &Schedule,
        init: &B::Mat,
        rng: &mut RngStream,
    ) -> Result<AisEstimate> {
        super::data_dims("reverse AIS start states", init.shape(), self.v.cols())?;
        self.be.copy(init, &mut self.v)?;
        let lw = self.anneal(schedule.betas().iter().rev().copied(), rng)?;
        Ok(AisEstimate::new(
            Direction::Reverse,
            log_z_base,
            lw,
            schedule.len(),
        ))
    }

    /// Runs the whole path `betas` (in the order given) and returns the
    /// per-run log weights.
    fn anneal(
        &mut self,
        betas: impl Iterator<Item = f64> + Clone,
        rng: &mut RngStream,
    ) -> Result<Vec<f64>> {
        let steps = betas.clone().count().saturating_sub(1);
        let mut prev = None;
        let mut k = 0;
        for b in betas {
            if let Some(b0) = prev {
                k += 1;
                // The sweep after the last ratio would be thrown away.
                self.step(b0, b, k < steps, rng)?;
                if k % FLUSH_EVERY == 0 {
                    self.flush()?;
                }
            }
            prev = Some(b);
        }
        self.flush()?;
        Ok(self
            .be
            .download(&self.lw_total)?
            .data
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// The base model of AIS for Gaussian visible units with variances σ² = e^z:
/// the same variances, means `mean` (the data means), no weights and free
/// hidden units, `E_A(v) = Σ_i (v_i²/2 - v_i mean_i)/σ_i²`, so that
/// `log Z_A = n_hidden ln 2 + Σ_i (½ ln 2πσ_i² + mean_i²/(2σ_i²))`. Along the
/// path only the linear terms move, exactly as for binary units with
/// `v/σ²` in place of `v`.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianBase {
    pub mean: Vec<f32>,
    /// The model's log-variances z = log σ².
    pub log_var: Vec<f32>,
}

impl GaussianBase {
    /// Column means of the rows of `data` (the training data), with the
    /// model's log-variances `log_var`.
    pub fn from_host(data: &HostMat, log_var: &[f32]) -> Result<GaussianBase> {
        Ok(GaussianBase {
            mean: column_means(data)?,
            log_var: log_var.to_vec(),
        })
    }
}

impl Base for GaussianBase {
    fn visible(&self) -> &[f32] {
        &self.mean
    }
    fn log_var(&self) -> Option<&[f32]> {
        Some(&self.log_var)
    }
    fn log_z(&self, n_hidden: usize) -> f64 {
        self.mean
            .iter()
            .zip(&self.log_var)
            .map(|(&m, &z)| {
                let (m, z) = (m as f64, z as f64);
                0.5 * ((2.0 * std::f64::consts::PI).ln() + z) + 0.5 * m * m * (-z).exp()
            })
            .sum::<f64>()
            + n_hidden as f64 * std::f64::consts::LN_2
    }
}

/// Forward AIS: `runs` chains from the base model ([`BaseRate`] for binary
/// visible units, [`GaussianBase`] for Gaussian ones) annealed to the RBM
/// along `schedule`. `Ẑ = Z_A · mean(w)`; see the module docs for its bias.
#[allow(clippy::too_many_arguments)]
pub fn forward<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    base: &impl Base,
    schedule: &Schedule,
    runs: usize,
    rng: &mut RngStream,
) -> Result<AisEstimate> {
    let a = Annealer::new(be, w, b_v, b_h, base, runs)?;
    a.forward(base.log_z(w.cols()), schedule, rng)
}

/// Reverse AIS: one chain per row of `init` (runs x nv, samples of the
/// RBM), annealed from β = 1 to the base model. `Ẑ = Z_A / mean(w_rev)`; an
/// upper bound in expectation when `init` holds exact samples (module docs).
#[allow(clippy::too_many_arguments)]
pub fn reverse<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    base: &impl Base,
    schedule: &Schedule,
    init: &B::Mat,
    rng: &mut RngStream,
) -> Result<AisEstimate> {
    let a = Annealer::new(be, w, b_v, b_h, base, init.rows())?;
    a.reverse(base.log_z(w.cols()), schedule, init, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedule_matches_the_reference() {
        let s = Schedule::standard();
        assert_eq!(s.len(), 14_500);
        let b = s.betas();
        assert_eq!(b[0], 0.0);
        assert!((b[1] - 1e-3).abs() < 1e-15);
        assert!((b[499] - 0.499).abs() < 1e-12);
        assert_eq!(b[500], 0.5);
        assert!((b[501] - 0.5001).abs() < 1e-12);
        assert_eq!(b[4500], 0.9);
        assert_eq!(b[14_499], 1.0);
        assert!(b.windows(2).all(|p| p[1] > p[0]));
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(Schedule::from_betas(vec![0.0]).is_err());
        assert!(Schedule::from_betas(vec![0.1, 1.0]).is_err());
        assert!(Schedule::from_betas(vec![0.0, 0.9]).is_err());
        assert!(Schedule::from_betas(vec![0.0, 0.6, 0.5, 1.0]).is_err());
        assert!(Schedule::from_betas(vec![0.0, f64::NAN, 1.0]).is_err());
        assert!(Schedule::three_stage(0, 1, 2).is_err());
        assert_eq!(Schedule::linear(3).unwrap().betas(), &[0.0, 0.5, 1.0]);
    }

    #[test]
    fn base_rate_log_z_is_analytic() {
        let base = BaseRate::from_mean(&[0.0, 0.5, 1.0, 0.25]);
        assert!((base.b_a[1]).abs() < 1e-7);
        assert!((base.b_a[3] - (1f32 / 3.0).ln()).abs() < 1e-6);
        // Z_A = Π (1 + e^b) · 2^nh = Π 1/(1-p) · 2^nh
        let want = -(1.0f64 - 1e-3).ln() + 2f64.ln() - (1e-3f64).ln()
            + (4.0f64 / 3.0).ln()
            + 3.0 * 2f64.ln();
        // f32 logits of clamped probabilities: ~1e-5 off.
        assert!((base.log_z(3) - want).abs() < 1e-4, "{}", base.log_z(3));
    }

    #[test]
    fn spread_and_ess() {
        let e = AisEstimate::new(Direction::Forward, 1.0, vec![0.0; 4], 10);
        assert!((e.log_z - 1.0).abs() < 1e-12);
        assert!((e.ess - 4.0).abs() < 1e-12);
        assert_eq!(e.log_z_lower, e.log_z_upper);
        let e = AisEstimate::new(Direction::Reverse, 1.0, vec![0.0, 2f64.ln()], 10);
        assert!((e.log_z - (1.0 - 1.5f64.ln())).abs() < 1e-12);
        assert!(e.log_z_lower < e.log_z && e.log_z < e.log_z_upper);
        assert!((e.ess - 9.0 / 5.0).abs() < 1e-12);
    }
}
