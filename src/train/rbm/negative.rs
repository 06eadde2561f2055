//! Loss strategies of RBM training: how the negative phase of the
//! log-likelihood gradient `∂ log p(v)/∂θ = -<∂F/∂θ>_data + <∂F/∂θ>_model`
//! is estimated.
//!
//! After [`Negative::run`], [`Negative::stats`] gives `(v⁻, E[h | v⁻])`; the
//! optimiser combines them with the positive statistics.
//!
//! Fast persistent contrastive divergence (Tieleman & Hinton 2009): the
//! persistent chains sample from the model with parameters θ + θ_fast
//! ([`FastWeights`]). The fast parameters follow the same gradient as θ with
//! their own (large) learning rate and decay geometrically each update:
//! `θ_fast ← decay · θ_fast + lr_fast · g`, which pushes the chains away from
//! modes they have just visited and so speeds up mixing.

use crate::backend::{Backend, Fused};
use crate::error::Result;
use crate::models::rbm::Rbm;
use crate::rng::RngStream;
use crate::sample::{Chains, Tempering};

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

    /// The negative statistics and, for FPCD, the fast weights the update
    /// also moves.
    pub fn stats_and_fast(&mut self) -> (&B::Mat, &B::Mat, Option<&mut FastWeights<B>>) {
        match self {
            Negative::Cd { chains, .. } | Negative::Pcd { chains, .. } => {
                (&chains.v, &chains.ph, None)
            }
            Negative::Fpcd { chains, fast, .. } => (&chains.v, &chains.ph, Some(fast)),
            Negative::Pt { v, ph, .. } => (&*v, &*ph, None),
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

/// The fast-weights overlay of FPCD.
pub struct FastWeights<B: Backend> {
    /// θ_fast (all zero at the start).
    pub fast: Rbm<B>,
    /// θ + θ_fast, the model the chains sample from.
    pub sum: Rbm<B>,
    pub lr: f32,
    pub decay: f32,
}

impl<B: Fused> FastWeights<B> {
    pub fn new(be: &B, model: &Rbm<B>, lr: f32, decay: f32) -> Result<Self> {
        Ok(FastWeights {
            fast: Rbm::zeros_like(be, model)?,
            sum: Rbm::zeros_like(be, model)?,
            lr,
            decay,
        })
    }

    /// Recomputes the sampling model `sum = model + fast`.
    pub fn refresh(&mut self, be: &B, model: &Rbm<B>) -> Result<()> {
        self.sum.set_sum(be, model, &self.fast)
    }

    /// `fast ← decay · fast + lr · g` for each parameter, `g` the ascent
    /// direction of the log-likelihood (W, b_v, b_h).
    pub fn update(&mut self, be: &B, gw: &B::Mat, gbv: &B::Mat, gbh: &B::Mat) -> Result<()> {
        be.axpby(self.lr, gw, self.decay, &mut self.fast.w)?;
        be.axpby(self.lr, gbv, self.decay, &mut self.fast.b_v)?;
        be.axpby(self.lr, gbh, self.decay, &mut self.fast.b_h)
    }
}
