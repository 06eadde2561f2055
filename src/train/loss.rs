//! Loss strategies: how the negative phase of the log-likelihood gradient
//! `∂ log p(v)/∂θ = -<∂F/∂θ>_data + <∂F/∂θ>_model` is estimated.
//!
//! After [`Negative::run`], [`Negative::stats`] gives `(v⁻, E[h | v⁻])`; the
//! optimiser combines them with the positive statistics.

use crate::backend::{Backend, Fused};
use crate::error::Result;
use crate::models::rbm::Rbm;
use crate::rng::RngStream;
use crate::sample::{Chains, FastWeights, Tempering};

pub enum Negative<B: Backend> {
    /// CD-k: the chains start at the batch (the positive phase samples
    /// their first hidden state) and run `k` sweeps.
    Cd { chains: Chains<B>, k: usize },
    /// PCD-k: the chains persist across updates.
    Pcd { chains: Chains<B>, k: usize },
    /// FPCD-k: persistent chains sampling from θ + θ_fast.
    Fpcd {
        chains: Chains<B>,
        k: usize,
        fast: FastWeights<B>,
    },
    /// PT: `k` tempering steps per update; statistics from the β = 1 chains.
    Pt {
        pt: Tempering<B>,
        k: usize,
        v: B::Mat,
        ph: B::Mat,
    },
}

impl<B: Fused> Negative<B> {
    /// For CD: where the positive phase must put its hidden sample.
    pub fn cd_hidden(&mut self) -> Option<&mut B::Mat> {
        match self {
            Negative::Cd { chains, .. } => Some(&mut chains.h),
            _ => None,
        }
    }

    /// Advances the chains; afterwards [`stats`](Self::stats) are current.
    pub fn run(&mut self, be: &B, rbm: &Rbm<B>, rng: &mut RngStream) -> Result<()> {
        match self {
            Negative::Cd { chains, k } | Negative::Pcd { chains, k } => {
                chains.sweep(be, rbm, *k, rng)
            }
            Negative::Fpcd { chains, k, fast } => {
                fast.refresh(be, rbm)?;
                chains.sweep(be, &fast.sum, *k, rng)
            }
            Negative::Pt { pt, k, v, ph } => {
                for _ in 0..*k {
                    pt.step(be, rbm, rng)?;
                }
                pt.cold(be, v, ph)
            }
        }
    }

    /// `(v⁻, E[h | v⁻])`: the negative samples and their hidden means. For
    /// FPCD the means are under the fast-weight model that sampled them.
    pub fn stats(&self) -> (&B::Mat, &B::Mat) {
        match self {
            Negative::Cd { chains, .. }
            | Negative::Pcd { chains, .. }
            | Negative::Fpcd { chains, .. } => (&chains.v, &chains.ph),
            Negative::Pt { v, ph, .. } => (v, ph),
        }
    }
}
