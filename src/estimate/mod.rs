//! How good is a trained RBM: its log partition function and the
//! log-likelihood that follows from it, plus cheaper proxies. Binary RBMs
//! throughout; Gaussian-visible ones (with per-unit variances) through
//! [`exact::log_z_gaussian_visible`] and AIS from an [`ais::GaussianBase`].
//!
//! - [`exact`]: log Z by enumerating the smaller layer (up to
//!   [`exact::MAX_ENUMERATED`] units), exact log-probabilities and exact
//!   samples for small models.
//! - [`ais`]: annealed importance sampling (Salakhutdinov & Murray 2008) from
//!   a base-rate model, forward (a stochastic lower bound on log Z) and
//!   reverse (a stochastic upper bound, Burda, Grosse & Salakhutdinov 2015).
//! - [`pseudo_likelihood`]: the stochastic pseudo-log-likelihood and the
//!   reconstruction error.
//! - here: free energies and [`mean_log_prob`], batched on the backend.
//!
//! Every function takes the parameters directly as backend matrices, so it
//! works for any model that is (or contains) a binary RBM:
//! `w` is `n_visible x n_hidden`, `b_v` is `1 x n_visible`, `b_h` is
//! `1 x n_hidden`, with energy `E(v,h) = -v·b_v - h·b_h - v W h` and free
//! energy `F(v) = -v·b_v - Σ_j softplus(b_h,j + (vW)_j)`. Results are in nats.
//! Arithmetic on the device is f32; every sum over rows, states or runs is
//! finished in f64 on the host.

pub mod ais;
pub mod exact;
pub mod pseudo_likelihood;

pub use ais::{AisEstimate, BaseRate, Schedule};
pub use pseudo_likelihood::{pseudo_log_likelihood, reconstruction_error, Reconstruction};

use crate::backend::{Fused, Matrix, Unary};
use crate::error::{Error, Result};

/// Rows per batch when a data set is walked on the backend: big enough to
/// keep a GEMM busy, small enough that the scratch matrices stay a few MB.
pub const BATCH_ROWS: usize = 1000;

/// Checks `w` (nv x nh), `b_v` (1 x nv) and `b_h` (1 x nh); returns (nv, nh).
pub fn rbm_dims<B: Fused>(w: &B::Mat, b_v: &B::Mat, b_h: &B::Mat) -> Result<(usize, usize)> {
    let (nv, nh) = w.shape();
    if b_v.shape() != (1, nv) || b_h.shape() != (1, nh) {
        return Err(Error::shape(
            "RBM parameters",
            format!(
                "W is {nv}x{nh}, so b_v must be 1x{nv} and b_h 1x{nh}; got b_v {}x{} and b_h {}x{}",
                b_v.rows(),
                b_v.cols(),
                b_h.rows(),
                b_h.cols()
            ),
        ));
    }
    if nv == 0 || nh == 0 {
        return Err(Error::shape(
            "RBM parameters",
            format!("W is {nv}x{nh}; both layers need at least one unit"),
        ));
    }
    Ok((nv, nh))
}

/// Checks that `data` has one column per visible unit.
pub(crate) fn data_dims(op: &'static str, data: (usize, usize), nv: usize) -> Result<()> {
    if data.1 != nv {
        return Err(Error::shape(
            op,
            format!(
                "data rows have {} values but the RBM has {nv} visible units",
                data.1
            ),
        ));
    }
    Ok(())
}

/// `log Σ exp(x)` in f64; `-inf` for an empty slice.
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

/// `log mean exp(x)`.
pub fn log_mean_exp(x: &[f64]) -> f64 {
    log_sum_exp(x) - (x.len() as f64).ln()
}

/// A running log-sum-exp, for sums too long to hold (2^25 states).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogSumExp {
    max: f64,
    sum: f64,
}

impl LogSumExp {
    pub(crate) fn new() -> Self {
        LogSumExp {
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
    pub(crate) fn add_all(&mut self, xs: impl IntoIterator<Item = f64>) {
        for x in xs {
            if x > self.max {
                // Rescale once per new maximum, which is rare after the first
                // few chunks, rather than once per term.
                self.sum = self.sum * (self.max - x).exp() + 1.0;
                self.max = x;
            } else {
                self.sum += (x - self.max).exp();
            }
        }
    }
    pub(crate) fn value(&self) -> f64 {
        if self.max == f64::NEG_INFINITY {
            f64::NEG_INFINITY
        } else {
            self.max + self.sum.ln()
        }
    }
}

/// Walks `data` in batches of at most `batch` rows, handing each to `f` as a
/// backend matrix together with its first row index. A data set that fits
/// one batch is passed through as is; otherwise rows are gathered into two
/// preallocated scratch matrices (full batches and the remainder).
pub(crate) fn for_each_batch<B: Fused>(
    be: &B,
    data: &B::Mat,
    batch: usize,
    mut f: impl FnMut(&B::Mat, usize) -> Result<()>,
) -> Result<()> {
    let (n, cols) = data.shape();
    let batch = batch.max(1);
    if n <= batch {
        return f(data, 0);
    }
    let mut full = be.zeros(batch, cols)?;
    let rem = n % batch;
    let mut tail = if rem > 0 {
        Some(be.zeros(rem, cols)?)
    } else {
        None
    };
    let mut idx: Vec<u32> = Vec::with_capacity(batch);
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        idx.clear();
        idx.extend((start..start + len).map(|i| i as u32));
        let dst = if len == batch {
            &mut full
        } else {
            tail.as_mut()
                .expect("remainder buffer exists when n % batch > 0")
        };
        be.gather_rows(data, &idx, dst)?;
        f(dst, start)?;
        start += len;
    }
    Ok(())
}

/// Scratch matrices for the free energies of one batch shape.
pub(crate) struct FreeEnergyScratch<B: Fused> {
    /// rows x nh pre-activations of the hidden units.
    act: B::Mat,
    /// rows x 1 result: `-F(v)`.
    neg_f: B::Mat,
}

impl<B: Fused> FreeEnergyScratch<B> {
    pub(crate) fn new(be: &B, rows: usize, nh: usize) -> Result<Self> {
        Ok(FreeEnergyScratch {
            act: be.zeros(rows, nh)?,
            neg_f: be.zeros(rows, 1)?,
        })
    }
    pub(crate) fn rows(&self) -> usize {
        self.neg_f.rows()
    }
    /// Queues `-F(v)` for every row of `v` and downloads it as f64.
    pub(crate) fn neg_free_energy(
        &mut self,
        be: &B,
        w: &B::Mat,
        b_v: &B::Mat,
        b_h: &B::Mat,
        v: &B::Mat,
    ) -> Result<Vec<f64>> {
        be.gemm(1.0, v.n(), w.n(), 0.0, &mut self.act)?;
        be.add_row_vec(&mut self.act, b_h, 1.0)?;
        be.unary_inplace(Unary::Softplus, &mut self.act)?;
        be.row_sums(&self.act, 1.0, 0.0, &mut self.neg_f)?;
        // v·b_v as a GEMV straight into the same column.
        be.gemm(1.0, v.n(), b_v.t(), 1.0, &mut self.neg_f)?;
        Ok(be
            .download(&self.neg_f)?
            .data
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// `-F(v)` for every row, batched: the per-batch scratch is reused, and
/// one small column per batch comes back from the device.
pub(crate) fn neg_free_energies<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    data: &B::Mat,
    batch: usize,
) -> Result<Vec<f64>> {
    let (nv, nh) = rbm_dims::<B>(w, b_v, b_h)?;
    data_dims("free energy", data.shape(), nv)?;
    let mut out = Vec::with_capacity(data.rows());
    let mut scratch: Option<FreeEnergyScratch<B>> = None;
    for_each_batch(be, data, batch, |v, _| {
        if scratch.as_ref().map(|s| s.rows()) != Some(v.rows()) {
            scratch = Some(FreeEnergyScratch::new(be, v.rows(), nh)?);
        }
        let s = scratch.as_mut().expect("just set");
        out.extend(s.neg_free_energy(be, w, b_v, b_h, v)?);
        Ok(())
    })?;
    Ok(out)
}

/// The free energy `F(v)` of every row of `data` (n x nv), in nats.
pub fn free_energy<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    data: &B::Mat,
) -> Result<Vec<f64>> {
    Ok(neg_free_energies(be, w, b_v, b_h, data, BATCH_ROWS)?
        .into_iter()
        .map(|x| -x)
        .collect())
}

/// The average log-probability of the rows of `data`, `mean(-F(v)) - log_z`,
/// in nats per example: the test log-likelihood once `log_z` comes from
/// [`exact::log_z`] or [`ais`].
pub fn mean_log_prob<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    data: &B::Mat,
    log_z: f64,
) -> Result<f64> {
    if data.rows() == 0 {
        return Err(Error::value("data", "no rows to average over"));
    }
    let nf = neg_free_energies(be, w, b_v, b_h, data, BATCH_ROWS)?;
    Ok(nf.iter().sum::<f64>() / nf.len() as f64 - log_z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_matches_direct_and_streaming() {
        let x = [0.5, -3.0, 700.0, 699.0, -1e300];
        let want = 700.0 + (1.0 + (-1f64).exp() + (-699.5f64).exp()).ln();
        assert!((log_sum_exp(&x) - want).abs() < 1e-12);
        let mut s = LogSumExp::new();
        s.add_all(x[..2].iter().copied());
        s.add_all(x[2..].iter().copied());
        assert!((s.value() - want).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
        assert_eq!(LogSumExp::new().value(), f64::NEG_INFINITY);
    }
}
