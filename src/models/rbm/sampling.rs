//! Drawing from a trained RBM: block Gibbs chains from data rows or random
//! states, with snapshots along the way (what `ebmkit sample` pictures).

use super::Rbm;
use crate::backend::Fused;
use crate::energy::{Bipartite, FreeEnergy};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;
use crate::sample::Chains;

/// A sampling run: `chains` block Gibbs chains for `steps` sweeps, started
/// at the rows of `start` (else at random states), with a snapshot of the
/// visible means every `every` sweeps if asked.
pub struct GibbsRun<'a> {
    pub start: Option<&'a HostMat>,
    pub chains: usize,
    pub steps: usize,
    pub every: Option<usize>,
}

/// Visible means after the last sweep, and the snapshots if asked for.
pub struct GibbsOutput {
    /// chains x n_visible: the visible means of the last sweep, and the
    /// visible states drawn from them.
    pub last: HostMat,
    pub last_sample: HostMat,
    /// The start states, then the visible means every `every` sweeps.
    pub snapshots: Vec<HostMat>,
}

impl<B: Fused> Rbm<B> {
    /// `n` random visible states: fair bits for binary units, standard
    /// normals for the others.
    pub fn random_visible(&self, be: &B, n: usize, rng: &mut RngStream) -> Result<B::Mat> {
        let nv = self.n_visible();
        let half = be.upload(&HostMat::from_fn(n, nv, |_, _| 0.5))?;
        let mut v = be.zeros(n, nv)?;
        if self.visible.is_binary() {
            be.bernoulli(&half, &mut v, rng)?;
        } else {
            let zero = be.zeros(n, nv)?;
            be.gaussian(&zero, 1.0, &mut v, rng)?;
        }
        Ok(v)
    }

    /// Runs block Gibbs chains as `run` says.
    pub fn gibbs(&self, be: &B, run: &GibbsRun<'_>, rng: &mut RngStream) -> Result<GibbsOutput> {
        if run.chains == 0 || run.every == Some(0) {
            return Err(Error::value(
                "sampling",
                "needs at least one chain and a snapshot interval of at least 1",
            ));
        }
        let nv = self.n_visible();
        let mut chains = Chains::new(be, run.chains, nv, self.n_hidden())?;
        let v0 = match run.start {
            Some(h) if h.shape() == (run.chains, nv) => be.upload(h)?,
            Some(h) => {
                return Err(Error::shape(
                    "sampling start",
                    format!(
                        "{}x{} start states for {} chains of {nv} visible units",
                        h.rows, h.cols, run.chains
                    ),
                ))
            }
            None => self.random_visible(be, run.chains, rng)?,
        };
        chains.start_from(be, self, &v0, rng)?;
        let mut snapshots = Vec::new();
        if run.every.is_some() {
            snapshots.push(be.download(&v0)?);
        }
        for step in 1..=run.steps {
            chains.sweep(be, self, 1, rng)?;
            if let Some(e) = run.every {
                if step % e == 0 {
                    snapshots.push(be.download(&chains.pv)?);
                }
            }
        }
        Ok(GibbsOutput {
            last: be.download(&chains.pv)?,
            last_sample: be.download(&chains.v)?,
            snapshots,
        })
    }
}
