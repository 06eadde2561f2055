//! Cheap proxies for the likelihood of a binary RBM that need no partition
//! function: the stochastic pseudo-log-likelihood and the reconstruction
//! error of one mean-field up-down pass.

use super::{data_dims, for_each_batch, rbm_dims, FreeEnergyScratch, BATCH_ROWS};
use crate::backend::{Backend, Binary, Fused, Matrix, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// `log sigmoid(x)` without overflow.
fn log_sigmoid(x: f64) -> f64 {
    -((-x).max(0.0) + (-x.abs()).exp().ln_1p())
}

/// The stochastic pseudo-log-likelihood, averaged over the rows of `data`
/// (n x nv, 0/1): for each row one visible unit `i` is drawn uniformly and
/// `n_visible · log p(v_i | v_-i) = n_visible · log sigmoid(F(ṽ) - F(v))`
/// with `ṽ` the row with bit `i` flipped — an unbiased estimate of the
/// row's full pseudo-log-likelihood (the estimator of scikit-learn's
/// `BernoulliRBM.score_samples`). In nats per example.
pub fn pseudo_log_likelihood<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    data: &B::Mat,
    rng: &mut RngStream,
) -> Result<f64> {
    let (nv, nh) = rbm_dims::<B>(w, b_v, b_h)?;
    data_dims("pseudo_log_likelihood", data.shape(), nv)?;
    let n = data.rows();
    if n == 0 {
        return Err(Error::value("data", "no rows to average over"));
    }
    // Which bit each row flips: one draw for the whole data set, so the
    // result does not depend on the batch size.
    let draw = rng.next_draw();
    let mut total = 0.0f64;
    // Free-energy scratch, the host mask, the device mask and the flipped rows.
    type Scratch<B> = (
        FreeEnergyScratch<B>,
        HostMat,
        <B as Backend>::Mat,
        <B as Backend>::Mat,
    );
    let mut scratch: Option<Scratch<B>> = None;
    for_each_batch(be, data, BATCH_ROWS, |v, first| {
        let rows = v.rows();
        if scratch.as_ref().map(|s| s.0.rows()) != Some(rows) {
            scratch = Some((
                FreeEnergyScratch::new(be, rows, nh)?,
                HostMat::zeros(rows, nv),
                be.zeros(rows, nv)?,
                be.zeros(rows, nv)?,
            ));
        }
        let (fe, mask_host, mask, flipped) = scratch.as_mut().expect("just set");
        mask_host.data.iter_mut().for_each(|x| *x = 0.0);
        for r in 0..rows {
            let i = ((draw.uniform(first + r) as f64 * nv as f64) as usize).min(nv - 1);
            mask_host.data[r * nv + i] = 1.0;
        }
        be.write(mask, mask_host)?;
        // ṽ = v + m - 2 v⊙m flips exactly the masked bit of a 0/1 row.
        be.binary(Binary::Mul, v, mask, flipped)?;
        be.affine(flipped, -2.0, 0.0)?;
        be.binary_inplace(Binary::Add, flipped, mask)?;
        be.binary_inplace(Binary::Add, flipped, v)?;
        let nf = fe.neg_free_energy(be, w, b_v, b_h, v)?;
        let nf_flip = fe.neg_free_energy(be, w, b_v, b_h, flipped)?;
        total += nf
            .iter()
            .zip(&nf_flip)
            .map(|(a, b)| nv as f64 * log_sigmoid(a - b))
            .sum::<f64>();
        Ok(())
    })?;
    Ok(total / n as f64)
}

/// Reconstruction errors of one deterministic up-down pass,
/// `p_h = sigmoid(vW + b_h)`, `p_v = sigmoid(p_h W^T + b_v)`, averaged over
/// rows (summed over the visible units).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconstruction {
    /// `Σ_i (v_i - p_v,i)²`.
    pub squared_error: f64,
    /// `-Σ_i [v_i log p_v,i + (1 - v_i) log(1 - p_v,i)]`, nats; `p_v` is
    /// kept within `[1e-6, 1 - 1e-6]` so a confident miss stays finite.
    pub cross_entropy: f64,
}

/// See [`Reconstruction`]. Works for binary or [0, 1]-valued data.
pub fn reconstruction_error<B: Fused>(
    be: &B,
    w: &B::Mat,
    b_v: &B::Mat,
    b_h: &B::Mat,
    data: &B::Mat,
) -> Result<Reconstruction> {
    let (nv, nh) = rbm_dims::<B>(w, b_v, b_h)?;
    data_dims("reconstruction_error", data.shape(), nv)?;
    let n = data.rows();
    if n == 0 {
        return Err(Error::value("data", "no rows to average over"));
    }
    // No sampling happens; the fused kernel just wants a stream.
    let _rng = RngStream::new(0, 0);
    let (mut se, mut ce) = (0.0f64, 0.0f64);
    struct Scratch<M> {
        p_h: M,
        p_v: M,
        t: M,
        u: M,
        col: M,
    }
    let mut scratch: Option<Scratch<B::Mat>> = None;
    for_each_batch(be, data, BATCH_ROWS, |v, _| {
        let rows = v.rows();
        if scratch.as_ref().map(|s| s.col.rows()) != Some(rows) {
            scratch = Some(Scratch {
                p_h: be.zeros(rows, nh)?,
                p_v: be.zeros(rows, nv)?,
                t: be.zeros(rows, nv)?,
                u: be.zeros(rows, nv)?,
                col: be.zeros(rows, 1)?,
            });
        }
        let s = scratch.as_mut().expect("just set");
        be.sigmoid_affine(1.0, v.n(), w.n(), b_h, &mut s.p_h, None)?;
        be.sigmoid_affine(1.0, s.p_h.n(), w.t(), b_v, &mut s.p_v, None)?;
        be.binary(Binary::Sub, v, &s.p_v, &mut s.t)?;
        be.unary_inplace(Unary::Square, &mut s.t)?;
        be.row_sums(&s.t, 1.0, 0.0, &mut s.col)?;
        se += be
            .download(&s.col)?
            .data
            .iter()
            .map(|&x| x as f64)
            .sum::<f64>();
        // v log p + (1-v) log(1-p) = v (log p - log(1-p)) + log(1-p).
        be.affine(&mut s.p_v, 1.0 - 2e-6, 1e-6)?;
        be.unary(Unary::Log, &s.p_v, &mut s.t)?;
        be.affine(&mut s.p_v, -1.0, 1.0)?;
        be.unary(Unary::Log, &s.p_v, &mut s.u)?;
        be.binary_inplace(Binary::Sub, &mut s.t, &s.u)?;
        be.binary_inplace(Binary::Mul, &mut s.t, v)?;
        be.binary_inplace(Binary::Add, &mut s.t, &s.u)?;
        be.row_sums(&s.t, -1.0, 0.0, &mut s.col)?;
        ce += be
            .download(&s.col)?
            .data
            .iter()
            .map(|&x| x as f64)
            .sum::<f64>();
        Ok(())
    })?;
    Ok(Reconstruction {
        squared_error: se / n as f64,
        cross_entropy: ce / n as f64,
    })
}
