//! Cheap proxies for the likelihood that need no partition function: the
//! stochastic pseudo-log-likelihood of a model with binary visible units,
//! and the reconstruction error of one mean-field up-down pass. The
//! training monitors report both through these functions.

use super::{data_dims, for_each_batch, BATCH_ROWS};
use crate::backend::{Backend, Binary, Matrix, Unary};
use crate::energy::{Bipartite, FreeEnergy, LayerScratch};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;
use crate::units::softplus64;

/// The stochastic pseudo-log-likelihood, averaged over the rows of `data`
/// (n x nv, 0/1): for each row one visible unit `i` is drawn uniformly and
/// `n_visible · log p(v_i | v_-i) = n_visible · log sigmoid(F(ṽ) - F(v))`
/// with `ṽ` the row with bit `i` flipped: an unbiased estimate of the row's
/// full pseudo-log-likelihood (the estimator of scikit-learn's
/// `BernoulliRBM.score_samples`). In nats per example.
///
/// Row `r` flips unit `⌊word_r · n_visible / 2³²⌋` of one draw of `rng`
/// (word `r` of the draw as in [`crate::rng`]), so the result does not
/// depend on the batch size.
pub fn pseudo_log_likelihood<B: Backend, M: FreeEnergy<B>>(
    be: &B,
    model: &M,
    data: &B::Mat,
    rng: &mut RngStream,
) -> Result<f64> {
    let nv = model.n_visible();
    data_dims("pseudo_log_likelihood", data.shape(), nv)?;
    let n = data.rows();
    if n == 0 {
        return Err(Error::value("data", "no rows to average over"));
    }
    let draw = rng.next_draw();
    let mut total = 0.0f64;
    // The model's scratch, the free energies, the host and device masks
    // and the flipped rows, made once per batch shape.
    type Scratch<B, S> = (
        S,
        <B as Backend>::Mat,
        HostMat,
        <B as Backend>::Mat,
        <B as Backend>::Mat,
    );
    let mut scratch: Option<Scratch<B, M::Scratch>> = None;
    for_each_batch(be, data, BATCH_ROWS, |v, first| {
        let rows = v.rows();
        if scratch.as_ref().map(|s| s.1.rows()) != Some(rows) {
            scratch = Some((
                model.free_energy_scratch(be, rows)?,
                be.zeros(rows, 1)?,
                HostMat::zeros(rows, nv),
                be.zeros(rows, nv)?,
                be.zeros(rows, nv)?,
            ));
        }
        let (s, f, mask_host, mask, flipped) = scratch.as_mut().expect("just set");
        mask_host.data.iter_mut().for_each(|x| *x = 0.0);
        for r in 0..rows {
            let i = ((draw.word(first + r) as u64 * nv as u64) >> 32) as usize;
            mask_host.data[r * nv + i] = 1.0;
        }
        be.write(mask, mask_host)?;
        // ṽ = v + m (1 - 2v) flips exactly the masked bit of a 0/1 row.
        be.copy(v, flipped)?;
        be.affine(flipped, -2.0, 1.0)?;
        be.binary_inplace(Binary::Mul, flipped, mask)?;
        be.binary_inplace(Binary::Add, flipped, v)?;
        model.free_energy(be, v, s, f)?;
        let f_v = be.download(f)?;
        model.free_energy(be, flipped, s, f)?;
        let f_flip = be.download(f)?;
        // log σ(F(ṽ) - F(v)) = -softplus(F(v) - F(ṽ))
        total += f_v
            .data
            .iter()
            .zip(&f_flip.data)
            .map(|(a, b)| -softplus64(*a as f64 - *b as f64))
            .sum::<f64>();
        Ok(())
    })?;
    Ok(nv as f64 * total / n as f64)
}

/// Reconstruction errors of one deterministic up-down pass,
/// `p_h = E[h | v]`, `p_v = E[v | p_h]`, averaged over rows (summed over
/// the visible units).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconstruction {
    /// `Σ_i (v_i - p_v,i)²`.
    pub squared_error: f64,
    /// `-Σ_i [v_i log p_v,i + (1 - v_i) log(1 - p_v,i)]`, nats; `p_v` is
    /// kept within `[1e-6, 1 - 1e-6]` so a confident miss stays finite
    /// (meaningful for binary or [0, 1]-valued data).
    pub cross_entropy: f64,
}

/// See [`Reconstruction`].
pub fn reconstruction_error<B: Backend>(
    be: &B,
    model: &impl Bipartite<B>,
    data: &B::Mat,
) -> Result<Reconstruction> {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    data_dims("reconstruction_error", data.shape(), nv)?;
    let n = data.rows();
    if n == 0 {
        return Err(Error::value("data", "no rows to average over"));
    }
    let (mut se, mut ce) = (0.0f64, 0.0f64);
    struct Scratch<B: Backend> {
        p_h: B::Mat,
        p_v: B::Mat,
        t: B::Mat,
        u: B::Mat,
        col: B::Mat,
        sh: LayerScratch<B>,
        sv: LayerScratch<B>,
    }
    let mut scratch: Option<Scratch<B>> = None;
    for_each_batch(be, data, BATCH_ROWS, |v, _| {
        let rows = v.rows();
        if scratch.as_ref().map(|s| s.col.rows()) != Some(rows) {
            scratch = Some(Scratch {
                p_h: be.zeros(rows, nh)?,
                p_v: be.zeros(rows, nv)?,
                t: be.zeros(rows, nv)?,
                u: be.zeros(rows, nv)?,
                col: be.zeros(rows, 1)?,
                sh: LayerScratch::new(be, rows, nh)?,
                sv: LayerScratch::new(be, rows, nv)?,
            });
        }
        let s = scratch.as_mut().expect("just set");
        model.hidden_given_visible(be, v, None, &mut s.p_h, None, &mut s.sh)?;
        model.visible_given_hidden(be, &s.p_h, None, &mut s.p_v, None, &mut s.sv)?;
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
