//! AIS for RBMs (Salakhutdinov & Murray 2008): the path runs from a
//! base-rate model A (visible biases `b_A` fit to the data, no weights,
//! `n_hidden` free hidden units) to the RBM B through the marginals
//!
//! `log p*_β(v) = (1-β) v·b_A + β v·b_v + Σ_j softplus(β (vW + b_h)_j)`,
//!
//! so `Z_0 = Z_A = 2^nh Π_i (1 + e^{b_A,i})` is analytic and `Z_1 = Z_B`.
//! One Gibbs sweep at β, `h ~ sigmoid(β (vW + b_h))` then
//! `v ~ sigmoid((1-β) b_A + β (h W^T + b_v))`, leaves `p_β` invariant. The
//! generic loop and the meaning of forward and reverse estimates are in
//! [`crate::estimate::ais`].
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

use crate::backend::{sigmoid, Backend, Fused, Matrix, Sample, Tempered};
use crate::error::{Error, Result};
use crate::estimate::ais::{anneal, AisEstimate, Direction, Path, Schedule};
use crate::estimate::data_dims;
use crate::host::HostMat;
use crate::models::rbm::Rbm;
use crate::rng::RngStream;
use crate::units::{gaussian_per_unit, UnitKind};

/// Runs per estimate in Salakhutdinov & Murray (2008).
pub const DEFAULT_RUNS: usize = 100;

/// Base-rate probabilities are clamped to `[BASE_RATE_CLAMP, 1 - BASE_RATE_CLAMP]`
/// so pixels that are always off in the data get a finite bias.
pub const BASE_RATE_CLAMP: f32 = 1e-3;

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
        if data.rows == 0 {
            return Err(Error::value("base-model data", "no rows"));
        }
        Ok(BaseRate::from_mean(&data.column_means()))
    }

    /// Fit to the rows of a matrix already on the backend (one small download).
    pub fn from_data<B: Backend>(be: &B, data: &B::Mat) -> Result<BaseRate> {
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
    /// What kind of base this is, for errors.
    fn name(&self) -> &'static str;
}

impl Base for BaseRate {
    fn name(&self) -> &'static str {
        "base-rate (binary)"
    }
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
        if data.rows == 0 {
            return Err(Error::value("base-model data", "no rows"));
        }
        Ok(GaussianBase {
            mean: data.column_means(),
            log_var: log_var.to_vec(),
        })
    }
}

impl Base for GaussianBase {
    fn name(&self) -> &'static str {
        "Gaussian"
    }
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
struct Annealer<'a, B: Backend> {
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
    /// Checks the base against the model: as many visible units, and
    /// variances exactly for Gaussian visible units.
    fn check_base(rbm: &Rbm<B>, base: &impl Base, runs: usize) -> Result<()> {
        let nv = rbm.w.rows();
        if base.visible().len() != nv {
            return Err(Error::shape(
                "AIS base-rate model",
                format!(
                    "{} base biases for an RBM with {nv} visible units",
                    base.visible().len()
                ),
            ));
        }
        match (base.log_var(), rbm.visible) {
            (Some(z), _) if z.len() != nv => {
                return Err(Error::shape(
                    "Gaussian AIS",
                    format!(
                        "{} log-variances for an RBM with {nv} visible units",
                        z.len()
                    ),
                ))
            }
            (Some(_), UnitKind::Gaussian) | (None, UnitKind::Bernoulli) => {}
            (_, v) => {
                return Err(Error::value(
                    "AIS base model",
                    format!(
                        "a {} base model does not fit {v} visible units",
                        base.name()
                    ),
                ))
            }
        }
        if rbm.hidden != UnitKind::Bernoulli {
            return Err(Error::value(
                "AIS",
                format!(
                    "the path sums out binary hidden units, these are {}",
                    rbm.hidden
                ),
            ));
        }
        if runs == 0 {
            return Err(Error::value("AIS runs", "needs at least one run"));
        }
        Ok(())
    }

    fn new(be: &'a B, rbm: &'a Rbm<B>, base: &impl Base, runs: usize) -> Result<Self> {
        Self::check_base(rbm, base, runs)?;
        // The base's visible means (binary units: its biases b_A).
        let base_mean = base.visible();
        let log_var = base.log_var();
        let (nv, nh) = rbm.w.shape();
        let wh = be.download(&rbm.w)?;
        let bvh = be.download(&rbm.b_v)?;
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
        let bhh = be.download(&rbm.b_h)?;
        let b_h_aug = HostMat::from_fn(1, nh + 1, |_, j| if j < nh { bhh.data[j] } else { 0.0 });
        let p_a = HostMat::from_fn(runs, nv, |_, i| match log_var {
            None => sigmoid(base_mean[i]),
            Some(_) => base_mean[i],
        });
        let sd = match log_var {
            Some(z) => Some(be.upload(&HostMat::from_fn(1, nv, |_, i| (0.5 * z[i]).exp()))?),
            None => None,
        };
        Ok(Annealer {
            be,
            b_v: &rbm.b_v,
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

    /// The visible half of a sweep at `b1`:
    /// `β (h W_vᵀ + b_v) = β (h Wᵀ + b_v) + (1-β) b_A` (relative precision
    /// survives small β because the large `c b_A` is scaled straight back
    /// down), then the visible draw.
    fn visible_draw(&mut self, b1: f32, rng: &mut RngStream) -> Result<()> {
        let be = self.be;
        match &self.sd {
            None => {
                let sample = Sample {
                    out: &mut self.v,
                    rng,
                };
                be.sigmoid_affine(
                    b1,
                    self.h.n(),
                    self.w_v.t(),
                    self.b_v,
                    &mut self.p_v,
                    Some(sample),
                )
            }
            Some(sd) => {
                be.gemm(b1, self.h.n(), self.w_v.t(), 0.0, &mut self.p_v)?;
                be.add_row_vec(&mut self.p_v, self.b_v, b1)?;
                gaussian_per_unit(be, &self.p_v, sd, &mut self.v, rng)
            }
        }
    }

    /// `v ~` the base model.
    fn draw_base(&mut self, rng: &mut RngStream) -> Result<()> {
        match &self.sd {
            None => self.be.bernoulli(&self.p_a, &mut self.v, rng),
            Some(sd) => gaussian_per_unit(self.be, &self.p_a, sd, &mut self.v, rng),
        }
    }
}

impl<B: Fused> Path for Annealer<'_, B> {
    fn step(&mut self, b0: f64, b1: f64, transition: bool, rng: &mut RngStream) -> Result<()> {
        // Below ~1e-30, (1-β)/β would overflow f32; such a β is the base model anyway.
        let sweep = transition && b1 > 1e-30;
        let c = if sweep { ((1.0 - b1) / b1) as f32 } else { 0.0 };
        // x = [v W_in | v·d] in one GEMM, then the hidden part of the ratio
        // (softplus terms subtracted per unit before summing: the two row
        // sums are large and nearly equal), the visible part (b1 - b0) v·d,
        // and the hidden sample, in one pass over x.
        let p = Tempered {
            b_h: &self.b_h,
            beta0: b0 as f32,
            beta1: b1 as f32,
            linear_last: Some(c),
        };
        let h = sweep.then_some(Sample {
            out: &mut self.h,
            rng: &mut *rng,
        });
        self.be.gemm_tempered_hidden(
            &self.v,
            &self.w_x,
            &mut self.x,
            &p,
            &mut self.lw_recent,
            h,
        )?;
        if sweep {
            self.visible_draw(b1 as f32, rng)?;
        } else if transition {
            // At β = 0 (or within 1e-30 of it) the visible units ignore the hidden ones.
            self.draw_base(rng)?;
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
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// Forward AIS: `runs` chains from the base model ([`BaseRate`] for binary
/// visible units, [`GaussianBase`] for Gaussian ones) annealed to the RBM
/// along `schedule`. `Ẑ = Z_A · mean(w)`: a stochastic lower bound.
pub fn forward<B: Fused>(
    be: &B,
    rbm: &Rbm<B>,
    base: &impl Base,
    schedule: &Schedule,
    runs: usize,
    rng: &mut RngStream,
) -> Result<AisEstimate> {
    let mut a = Annealer::new(be, rbm, base, runs)?;
    a.draw_base(rng)?;
    let lw = anneal(&mut a, schedule.betas().iter().copied(), rng)?;
    let log_z_base = base.log_z(rbm.w.cols());
    Ok(AisEstimate::new(
        Direction::Forward,
        log_z_base,
        lw,
        schedule.len(),
    ))
}

/// Reverse AIS: one chain per row of `init` (runs x nv, samples of the
/// RBM), annealed from β = 1 to the base model. `Ẑ = Z_A / mean(w_rev)`: an
/// upper bound in expectation when `init` holds exact samples.
pub fn reverse<B: Fused>(
    be: &B,
    rbm: &Rbm<B>,
    base: &impl Base,
    schedule: &Schedule,
    init: &B::Mat,
    rng: &mut RngStream,
) -> Result<AisEstimate> {
    let mut a = Annealer::new(be, rbm, base, init.rows())?;
    data_dims("reverse AIS start states", init.shape(), a.v.cols())?;
    be.copy(init, &mut a.v)?;
    let lw = anneal(&mut a, schedule.betas().iter().rev().copied(), rng)?;
    let log_z_base = base.log_z(rbm.w.cols());
    Ok(AisEstimate::new(
        Direction::Reverse,
        log_z_base,
        lw,
        schedule.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
