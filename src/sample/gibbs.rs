//! Block Gibbs sampling: all hidden units given the visible ones, then all
//! visible units given the hidden ones.

use crate::backend::{Backend, Sample};
use crate::energy::{Bipartite, LayerScratch};
use crate::error::Result;
use crate::rng::RngStream;

/// `rows` chains of a two-layer model: the current samples `v`, `h` and the
/// conditional means `pv = E[v | h_prev]`, `ph = E[h | v]` from the
/// half-steps that produced them.
pub struct Chains<B: Backend> {
    pub v: B::Mat,
    pub h: B::Mat,
    pub pv: B::Mat,
    pub ph: B::Mat,
    sv: LayerScratch<B>,
    sh: LayerScratch<B>,
}

impl<B: Backend> Chains<B> {
    pub fn new(be: &B, rows: usize, n_visible: usize, n_hidden: usize) -> Result<Self> {
        Ok(Chains {
            v: be.zeros(rows, n_visible)?,
            h: be.zeros(rows, n_hidden)?,
            pv: be.zeros(rows, n_visible)?,
            ph: be.zeros(rows, n_hidden)?,
            sv: LayerScratch::new(be, rows, n_visible)?,
            sh: LayerScratch::new(be, rows, n_hidden)?,
        })
    }

    pub fn rows(&self) -> usize {
        crate::backend::Matrix::rows(&self.v)
    }

    /// Starts the chains at `v0` (rows x n_visible) and samples `h ~ p(h | v0)`.
    pub fn start_from<E: Bipartite<B>>(
        &mut self,
        be: &B,
        model: &E,
        v0: &B::Mat,
        rng: &mut RngStream,
    ) -> Result<()> {
        be.copy(v0, &mut self.v)?;
        self.sample_hidden(be, model, rng)
    }

    /// `ph = E[h | v]`, `h ~ p(h | v)`.
    pub fn sample_hidden<E: Bipartite<B>>(
        &mut self,
        be: &B,
        model: &E,
        rng: &mut RngStream,
    ) -> Result<()> {
        let sample = Sample {
            out: &mut self.h,
            rng,
        };
        model.hidden_given_visible(be, &self.v, None, &mut self.ph, Some(sample), &mut self.sh)
    }

    /// `pv = E[v | h]`, `v ~ p(v | h)`.
    pub fn sample_visible<E: Bipartite<B>>(
        &mut self,
        be: &B,
        model: &E,
        rng: &mut RngStream,
    ) -> Result<()> {
        let sample = Sample {
            out: &mut self.v,
            rng,
        };
        model.visible_given_hidden(be, &self.h, None, &mut self.pv, Some(sample), &mut self.sv)
    }

    /// `k` full sweeps from the current hidden state: `v ~ p(v | h)`, then
    /// `h ~ p(h | v)`. Afterwards `(v, ph)` are the negative statistics of
    /// CD-k / PCD-k.
    pub fn sweep<E: Bipartite<B>>(
        &mut self,
        be: &B,
        model: &E,
        k: usize,
        rng: &mut RngStream,
    ) -> Result<()> {
        for _ in 0..k {
            self.sample_visible(be, model, rng)?;
            self.sample_hidden(be, model, rng)?;
        }
        Ok(())
    }
}
