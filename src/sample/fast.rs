//! Fast persistent contrastive divergence (Tieleman & Hinton 2009).
//!
//! The persistent chains sample from the model with parameters θ + θ_fast.
//! The fast parameters follow the same gradient as θ with their own (large)
//! learning rate and decay geometrically each update:
//! `θ_fast ← decay · θ_fast + lr_fast · g`, which pushes the chains away from
//! modes they have just visited and so speeds up mixing.

use crate::backend::{Backend, Fused};
use crate::error::Result;
use crate::models::rbm::Rbm;

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
