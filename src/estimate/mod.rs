//! How good is a trained model: its log partition function, the
//! log-likelihood that follows from it, and cheaper proxies.
//!
//! Generic over the model (through its energy, [`crate::energy`]):
//! - here: free energies and [`mean_log_prob`] of any [`FreeEnergy`] model,
//!   batched on the backend;
//! - [`proxies`]: the stochastic pseudo-log-likelihood (binary visible
//!   units) and the reconstruction error of one mean-field up-down pass;
//! - [`ais`]: annealed importance sampling (Neal 2001), the schedule, the
//!   estimate and its bounds, and the annealing loop that drives a model's
//!   path forward (a stochastic lower bound on log Z) or in reverse (a
//!   stochastic upper bound, Burda, Grosse & Salakhutdinov 2015).
//!
//! For deep belief nets ([`dbn`]): the variational lower bound on log p(v)
//! with the top RBM's log Z from the RBM estimators.
//!
//! For RBMs ([`rbm`]): exact log Z by enumerating the smaller layer, exact
//! samples, the fused annealing path from a base-rate model, and the
//! evaluation `ebmkit eval` reports (exact when small, else AIS and reverse
//! AIS).
//!
//! Results are in nats. Arithmetic on the device is f32; every sum over
//! rows, states or runs is finished in f64 on the host.

pub mod ais;
pub mod dbm;
pub mod dbn;
pub mod proxies;
pub mod rbm;

pub use ais::{AisEstimate, Schedule};
pub use proxies::{pseudo_log_likelihood, reconstruction_error, Reconstruction};

use crate::backend::{Backend, Matrix};
use crate::energy::FreeEnergy;
use crate::error::{Error, Result};

/// Rows per batch when a data set is walked on the backend: big enough to
/// keep a GEMM busy, small enough that the scratch matrices stay a few MB.
pub const BATCH_ROWS: usize = 1000;

/// Checks that `data` has one column per visible unit.
pub(crate) fn data_dims(op: &'static str, data: (usize, usize), nv: usize) -> Result<()> {
    if data.1 != nv {
        return Err(Error::shape(
            op,
            format!(
                "data rows have {} values but the model has {nv} visible units",
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
pub(crate) fn for_each_batch<B: Backend>(
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

/// `-F(v)` of every row of `data`, batched: the model's free-energy scratch
/// is made once per batch shape, and one small column per batch comes back
/// from the device.
pub(crate) fn neg_free_energies<B: Backend, M: FreeEnergy<B>>(
    be: &B,
    model: &M,
    data: &B::Mat,
    batch: usize,
) -> Result<Vec<f64>> {
    data_dims("free energy", data.shape(), model.n_visible())?;
    let mut out = Vec::with_capacity(data.rows());
    let mut scratch: Option<(M::Scratch, B::Mat)> = None;
    for_each_batch(be, data, batch, |v, _| {
        if scratch.as_ref().map(|s| s.1.rows()) != Some(v.rows()) {
            scratch = Some((
                model.free_energy_scratch(be, v.rows())?,
                be.zeros(v.rows(), 1)?,
            ));
        }
        let (s, f) = scratch.as_mut().expect("just set");
        model.free_energy(be, v, s, f)?;
        out.extend(be.download(f)?.data.into_iter().map(|x| -f64::from(x)));
        Ok(())
    })?;
    Ok(out)
}

/// The free energy `F(v)` of every row of `data` (n x nv), in nats.
pub fn free_energy<B: Backend>(
    be: &B,
    model: &impl FreeEnergy<B>,
    data: &B::Mat,
) -> Result<Vec<f64>> {
    Ok(neg_free_energies(be, model, data, BATCH_ROWS)?
        .into_iter()
        .map(|x| -x)
        .collect())
}

/// The average log-probability of the rows of `data`, `mean(-F(v)) - log_z`,
/// in nats per example: the test log-likelihood once `log_z` comes from an
/// exact sum or AIS.
pub fn mean_log_prob<B: Backend>(
    be: &B,
    model: &impl FreeEnergy<B>,
    data: &B::Mat,
    log_z: f64,
) -> Result<f64> {
    if data.rows() == 0 {
        return Err(Error::value("data", "no rows to average over"));
    }
    let nf = neg_free_energies(be, model, data, BATCH_ROWS)?;
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
