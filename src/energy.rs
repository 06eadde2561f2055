//! Energy functions of two layers of units coupled by a weight matrix, and
//! the interface samplers and losses see.
//!
//! For visible units `v` (1 x n_v), hidden units `h` (1 x n_h), weights `W`
//! (n_v x n_h) and biases `b_v`, `b_h`:
//!
//! ```text
//! E(v, h)  = q_v(v) + q_h(h) - v·b_v - h·b_h - v W hᵀ
//! F(v)     = -log Σ_h exp(-E(v, h)) = q_v(v) - v·b_v - Σ_j A_h((v W + b_h)_j)
//! ∂F/∂W    = -vᵀ E[h | v],   ∂F/∂b_v = -v,   ∂F/∂b_h = -E[h | v]
//! ```
//!
//! with `q` the units' base energy and `A` their log-partition (see
//! [`crate::units`]). At inverse temperature β the linear part is scaled:
//! `E_β = q_v + q_h + β (-v·b_v - h·b_h - v W hᵀ)`.
//!
//! Rows are independent examples or chains: every function here works on
//! `rows x width` matrices and returns per-row quantities as `rows x 1`
//! column vectors.

use crate::backend::{Backend, Sample};
use crate::error::Result;

/// Working memory for one layer of `rows` rows: the total input and two
/// spare buffers. Allocated once per sampler, never per step.
pub struct LayerScratch<B: Backend> {
    pub pre: B::Mat,
    pub aux: B::Mat,
    pub tmp: B::Mat,
}

impl<B: Backend> LayerScratch<B> {
    pub fn new(be: &B, rows: usize, width: usize) -> Result<Self> {
        Ok(LayerScratch {
            pre: be.zeros(rows, width)?,
            aux: be.zeros(rows, width)?,
            tmp: be.zeros(rows, width)?,
        })
    }
}

/// Scratch for both layers at a given number of rows.
pub struct Scratch<B: Backend> {
    pub v: LayerScratch<B>,
    pub h: LayerScratch<B>,
    pub rows: usize,
}

impl<B: Backend> Scratch<B> {
    pub fn new(be: &B, rows: usize, n_visible: usize, n_hidden: usize) -> Result<Self> {
        Ok(Scratch {
            v: LayerScratch::new(be, rows, n_visible)?,
            h: LayerScratch::new(be, rows, n_hidden)?,
            rows,
        })
    }
}

/// A model whose free energy `F(v) = -log Σ_h exp(-E(v, h))` is tractable:
/// what the estimators (log-likelihood, pseudo-likelihood) see.
pub trait FreeEnergy<B: Backend> {
    /// Working memory for a batch of rows, made once per batch shape.
    type Scratch;
    fn n_visible(&self) -> usize;
    fn free_energy_scratch(&self, be: &B, rows: usize) -> Result<Self::Scratch>;
    /// `F(v)` per row of `v` into `out` (rows x 1).
    fn free_energy(
        &self,
        be: &B,
        v: &B::Mat,
        s: &mut Self::Scratch,
        out: &mut B::Mat,
    ) -> Result<()>;
}

/// What block samplers and losses need from a two-layer energy.
///
/// `beta`, where given, is a `rows x 1` column holding each row's inverse
/// temperature (parallel tempering stacks its temperatures as row blocks);
/// `None` means β = 1 and allows fused kernels. A sample, when asked for,
/// consumes one draw of its stream per Bernoulli / Gaussian pass.
pub trait Bipartite<B: Backend>: FreeEnergy<B, Scratch = Scratch<B>> {
    fn n_hidden(&self) -> usize;

    /// `mean = E[h | v]`, and a sample of `p(h | v)` if asked.
    fn hidden_given_visible(
        &self,
        be: &B,
        v: &B::Mat,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
        s: &mut LayerScratch<B>,
    ) -> Result<()>;

    /// `mean = E[v | h]`, and a sample of `p(v | h)` if asked.
    fn visible_given_hidden(
        &self,
        be: &B,
        h: &B::Mat,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
        s: &mut LayerScratch<B>,
    ) -> Result<()>;

    /// The tempered part of the energy per row: `-(v·b_v + h·b_h + v W hᵀ)`.
    fn linear_energy(
        &self,
        be: &B,
        v: &B::Mat,
        h: &B::Mat,
        s: &mut Scratch<B>,
        out: &mut B::Mat,
    ) -> Result<()>;

    /// `E(v, h)` per row.
    fn energy(
        &self,
        be: &B,
        v: &B::Mat,
        h: &B::Mat,
        s: &mut Scratch<B>,
        out: &mut B::Mat,
    ) -> Result<()>;
}
