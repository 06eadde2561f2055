//! Exact log partition function, log-probabilities and samples of a small
//! RBM, by enumerating one layer and summing the other out in closed form.
//!
//! Binary RBMs: the smaller layer of `n` units leaves `2^n` terms; with the
//! hidden layer enumerated,
//! `log Z = logsumexp_h [h·b_h + Σ_i softplus(b_v,i + (W h)_i)]`, and the
//! same with the roles swapped. Gaussian visible units integrate out, so
//! the hidden layer is enumerated ([`log_z`] dispatches on the unit types).
//! Chunks of states go through the backend as one GEMM each; their
//! log-marginals come back and are summed in f64.

use crate::backend::{Backend, Fused, Matrix, Op, Sample, Trans, Unary};
use crate::energy::FreeEnergy;
use crate::error::{Error, Result};
use crate::estimate::{data_dims, neg_free_energies, LogSumExp, BATCH_ROWS};
use crate::host::HostMat;
use crate::models::rbm::Rbm;
use crate::rng::RngStream;
use crate::units::UnitKind;

/// The largest layer that is enumerated: 2^25 states is about a minute of
/// work for a 784-unit opposite layer on a 2-core CPU.
pub const MAX_ENUMERATED: usize = 25;

/// Values (states x other layer) per chunk: a 16 MB scratch matrix.
const CHUNK_VALUES: usize = 1 << 22;

/// Which layer was enumerated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Visible,
    Hidden,
}

/// Writes binary state `first + r` of an `n`-unit layer into row `r`
/// (bit `j` of the index is unit `j`).
fn fill_states(states: &mut HostMat, first: u64) {
    let n = states.cols;
    for r in 0..states.rows {
        let s = first + r as u64;
        for (j, x) in states.row_mut(r).iter_mut().enumerate().take(n) {
            *x = ((s >> j) & 1) as f32;
        }
    }
}

/// Calls `f(first_state, log_marginals)` for every chunk of states of the
/// smaller layer, in state order; returns the layer enumerated.
fn enumerate<B: Backend>(
    be: &B,
    rbm: &Rbm<B>,
    mut f: impl FnMut(u64, &[f64]) -> Result<()>,
) -> Result<Layer> {
    let (w, b_v, b_h) = (&rbm.w, &rbm.b_v, &rbm.b_h);
    let (nv, nh) = w.shape();
    let (layer, n, other) = if nh <= nv {
        (Layer::Hidden, nh, nv)
    } else {
        (Layer::Visible, nv, nh)
    };
    if n > MAX_ENUMERATED {
        return Err(Error::Limit {
            what: format!(
                "exact log Z of a {nv}-visible x {nh}-hidden RBM enumerates its smaller \
                 layer ({n} units, 2^{n} states); use AIS instead. Units enumerated"
            ),
            requested: n as u64,
            limit: MAX_ENUMERATED as u64,
        });
    }
    let total = 1u64 << n;
    let rows = (CHUNK_VALUES / other).max(1).min(total as usize);
    // A power of two, so the chunks tile the 2^n states exactly.
    let rows = 1usize << rows.ilog2();
    let (other_bias, own_bias, tw) = match layer {
        Layer::Hidden => (b_v, b_h, Trans::T),
        Layer::Visible => (b_h, b_v, Trans::N),
    };
    let mut host = HostMat::zeros(rows, n);
    let mut states = be.zeros(rows, n)?;
    let mut act = be.zeros(rows, other)?;
    let mut col = be.zeros(rows, 1)?;
    let mut first = 0u64;
    while first < total {
        fill_states(&mut host, first);
        be.write(&mut states, &host)?;
        be.gemm(1.0, states.n(), Op { m: w, t: tw }, 0.0, &mut act)?;
        be.add_row_vec(&mut act, other_bias, 1.0)?;
        be.unary_inplace(Unary::Softplus, &mut act)?;
        be.row_sums(&act, 1.0, 0.0, &mut col)?;
        be.gemm(1.0, states.n(), own_bias.t(), 1.0, &mut col)?;
        let lm: Vec<f64> = be.download(&col)?.data.into_iter().map(f64::from).collect();
        f(first, &lm)?;
        first += rows as u64;
    }
    Ok(layer)
}

/// The exact log partition function, in nats, of an RBM with binary hidden
/// units and binary or Gaussian visible units. Fails with [`Error::Limit`]
/// when the layer to enumerate has more than [`MAX_ENUMERATED`] units.
pub fn log_z<B: Fused>(be: &B, rbm: &Rbm<B>) -> Result<f64> {
    match (rbm.visible, rbm.hidden, &rbm.var_v) {
        (UnitKind::Bernoulli, UnitKind::Bernoulli, _) => {
            let mut acc = LogSumExp::new();
            enumerate(be, rbm, |_, lm| {
                acc.add_all(lm.iter().copied());
                Ok(())
            })?;
            Ok(acc.value())
        }
        (UnitKind::Gaussian, UnitKind::Bernoulli, Some(var)) => {
            log_z_gaussian_visible(be, rbm, &var.log_var)
        }
        (v, h, _) => Err(Error::value(
            "exact log Z",
            format!(
                "is summed for binary or Gaussian visible and binary hidden units, not {v}-{h}"
            ),
        )),
    }
}

/// The exact log partition function of an RBM with Gaussian visible units of
/// variances σ² = e^z (`log_var`, 1 x nv) and binary hidden units, energy
/// `Σ_i (v_i²/2 - v_i b_v,i)/σ_i² - h·b_h - Σ_ij (v_i/σ_i²) W_ij h_j` (see
/// [`crate::models::rbm`]). The visible layer integrates out in closed form,
/// so the hidden layer (at most [`MAX_ENUMERATED`] units) is enumerated:
///
/// `log Z = logsumexp_h [h·b_h + Σ_i μ_i²/(2σ_i²)] + Σ_i ½ log 2πσ_i²`,
/// `μ = h Wᵀ + b_v`.
fn log_z_gaussian_visible<B: Backend>(be: &B, rbm: &Rbm<B>, log_var: &B::Mat) -> Result<f64> {
    let (w, b_v, b_h) = (&rbm.w, &rbm.b_v, &rbm.b_h);
    let (nv, nh) = w.shape();
    if log_var.shape() != (1, nv) {
        return Err(Error::shape(
            "exact::log_z_gaussian_visible",
            format!("log_var is {:?}, need 1x{nv}", log_var.shape()),
        ));
    }
    if nh > MAX_ENUMERATED {
        return Err(Error::Limit {
            what: format!(
                "exact log Z of a Gaussian-visible RBM enumerates its {nh} hidden units \
                 (2^{nh} states). Units enumerated"
            ),
            requested: nh as u64,
            limit: MAX_ENUMERATED as u64,
        });
    }
    let z = be.download(log_var)?;
    let constant: f64 = z
        .data
        .iter()
        .map(|&zi| 0.5 * ((2.0 * std::f64::consts::PI).ln() + zi as f64))
        .sum();
    let half_prec = be.upload(&HostMat::from_fn(1, nv, |_, i| {
        (0.5 * (-(z.data[i] as f64)).exp()) as f32
    }))?;
    let total = 1u64 << nh;
    let rows = (CHUNK_VALUES / nv).max(1).min(total as usize);
    let rows = 1usize << rows.ilog2();
    let mut host = HostMat::zeros(rows, nh);
    let mut states = be.zeros(rows, nh)?;
    let mut mu = be.zeros(rows, nv)?;
    let mut col = be.zeros(rows, 1)?;
    let mut acc = LogSumExp::new();
    let mut first = 0u64;
    while first < total {
        fill_states(&mut host, first);
        be.write(&mut states, &host)?;
        be.gemm(1.0, states.n(), w.t(), 0.0, &mut mu)?;
        be.add_row_vec(&mut mu, b_v, 1.0)?;
        be.unary_inplace(Unary::Square, &mut mu)?;
        be.mul_row_vec(&mut mu, &half_prec)?;
        be.row_sums(&mu, 1.0, 0.0, &mut col)?;
        be.gemm(1.0, states.n(), b_h.t(), 1.0, &mut col)?;
        acc.add_all(be.download(&col)?.data.into_iter().map(f64::from));
        first += rows as u64;
    }
    Ok(acc.value() + constant)
}

/// The exact `log p(v)` of every row of `data` (n x nv).
pub fn log_prob<B: Fused>(be: &B, rbm: &Rbm<B>, data: &B::Mat) -> Result<Vec<f64>> {
    data_dims("exact::log_prob", data.shape(), rbm.n_visible())?;
    let lz = log_z(be, rbm)?;
    Ok(neg_free_energies(be, rbm, data, BATCH_ROWS)?
        .into_iter()
        .map(|x| x - lz)
        .collect())
}

/// A uniform in [0, 1) with 48 random bits: 2^25 states need more than
/// the 24 bits of an f32 uniform.
fn uniform48(d: &crate::rng::Draw, i: usize) -> f64 {
    let hi = (d.word(2 * i) >> 8) as u64;
    let lo = (d.word(2 * i + 1) >> 8) as u64;
    ((hi << 24) | lo) as f64 * (1.0 / (1u64 << 48) as f64)
}

/// `n` independent exact samples of the visible layer (n x nv, 0/1), for
/// models small enough for [`log_z`]: the smaller layer is drawn from its
/// exact marginal by inverse CDF, then, if that was the hidden layer,
/// `v ~ p(v | h)` on the backend. These are the starting points that make
/// reverse AIS a true stochastic upper bound. Holds the 2^n log-marginals
/// as f32 (what the device computes anyway): 128 MB at 25 units.
pub fn sample<B: Fused>(be: &B, rbm: &Rbm<B>, n: usize, rng: &mut RngStream) -> Result<B::Mat> {
    if (rbm.visible, rbm.hidden) != (UnitKind::Bernoulli, UnitKind::Bernoulli) {
        return Err(Error::value(
            "exact samples",
            format!(
                "are drawn for binary RBMs, not {}-{}",
                rbm.visible, rbm.hidden
            ),
        ));
    }
    let (w, b_v) = (&rbm.w, &rbm.b_v);
    let (nv, nh) = w.shape();
    if n == 0 {
        return Err(Error::value("samples", "asked for 0 samples"));
    }
    let mut marg: Vec<f32> = Vec::new();
    let mut acc = LogSumExp::new();
    let layer = enumerate(be, rbm, |_, lm| {
        acc.add_all(lm.iter().copied());
        marg.extend(lm.iter().map(|&x| x as f32));
        Ok(())
    })?;
    let lz = acc.value();
    let d = rng.next_draw();
    let mut u: Vec<(f64, usize)> = (0..n).map(|i| (uniform48(&d, i), i)).collect();
    u.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sorted uniforms against the running CDF: one pass over the states.
    let mut chosen = vec![0u64; n];
    let mut next = 0usize;
    let mut cdf = 0.0f64;
    for (s, &l) in marg.iter().enumerate() {
        cdf += (l as f64 - lz).exp();
        while next < n && u[next].0 < cdf {
            chosen[u[next].1] = s as u64;
            next += 1;
        }
    }
    // Rounding can leave the CDF a hair below the largest uniforms.
    for &(_, i) in &u[next..] {
        chosen[i] = marg.len() as u64 - 1;
    }
    let k = match layer {
        Layer::Hidden => nh,
        Layer::Visible => nv,
    };
    let host = HostMat::from_fn(n, k, |r, j| ((chosen[r] >> j) & 1) as f32);
    let states = be.upload(&host)?;
    match layer {
        Layer::Visible => Ok(states),
        Layer::Hidden => {
            let mut p = be.zeros(n, nv)?;
            let mut v = be.zeros(n, nv)?;
            be.sigmoid_affine(
                1.0,
                states.n(),
                w.t(),
                b_v,
                &mut p,
                Some(Sample { out: &mut v, rng }),
            )?;
            Ok(v)
        }
    }
}
