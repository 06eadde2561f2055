//! Optimisers of every model trained by backpropagation: SGD with momentum
//! (classical or Nesterov) and Adam, L2 weight decay, and clipping by the
//! global gradient norm. They follow PyTorch's definitions (`torch.optim`),
//! so a recipe and its PyTorch twin take the same steps:
//!
//! ```text
//! SGD:   d = g + λ θ;   b = μ b + d;   θ -= ε (Nesterov: d + μ b, else b)
//! Adam:  d = g + λ θ;   m = β₁ m + (1-β₁) d;   v = β₂ v + (1-β₂) d²
//!        θ -= (ε / (1-β₁ᵗ)) m / (√v / √(1-β₂ᵗ) + eps)
//! clip:  g *= min(1, c / ‖g‖)   with ‖g‖ over every parameter at once
//! ```
//!
//! Everything stays on the device: the clipping factor is computed there
//! and applied as a broadcast, so a step reads nothing back. The RBM's
//! sampled gradients have their own optimiser (`train::rbm::sgd`).

use std::path::Path;

use crate::backend::{Backend, Binary, Matrix, Unary};
use crate::error::{Error, Result};
use crate::io::checkpoint::Checkpoint;

/// Which update, with its constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// SGD with momentum μ (the recipe's momentum schedule), optionally
    /// Nesterov's.
    Sgd { nesterov: bool },
    /// Adam (Kingma & Ba 2015).
    Adam { beta1: f32, beta2: f32, eps: f32 },
}

/// An optimiser's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimConfig {
    pub rule: Rule,
    /// L2 weight decay λ, added to the gradient (of the parameters it is
    /// applied to: see [`Optimizer::new`]).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this (None: no clipping).
    pub clip_norm: Option<f32>,
}

/// One parameter's state: the momentum buffer (SGD) or the moments
/// (Adam), a temporary and whether weight decay applies to it.
struct Slot<B: Backend> {
    m: B::Mat,
    /// Adam: the second moment and a second temporary.
    v: Option<(B::Mat, B::Mat)>,
    tmp: B::Mat,
    decay: bool,
}

/// An optimiser of a fixed list of parameters (in the graph's order).
pub struct Optimizer<B: Backend> {
    cfg: OptimConfig,
    slots: Vec<Slot<B>>,
    /// Steps taken (Adam's bias corrections).
    pub steps: u64,
    /// Clipping: the squared norm, the factor (1 x 1) and its broadcast
    /// columns by row count.
    norm2: B::Mat,
    factor: B::Mat,
    clip_c: B::Mat,
    one: B::Mat,
    cols: Vec<(usize, B::Mat, B::Mat)>,
}

impl<B: Backend> Optimizer<B> {
    /// State for parameters of these shapes; weight decay applies where
    /// `decay[i]` (weights, usually not biases).
    pub fn new(
        be: &B,
        shapes: &[(usize, usize)],
        decay: &[bool],
        cfg: OptimConfig,
    ) -> Result<Self> {
        if shapes.len() != decay.len() {
            return Err(Error::value("optimiser", "one decay flag per parameter"));
        }
        let bad = |what: &str, v: f32| Err(Error::value("optimiser", format!("{what} = {v}")));
        if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
            return bad("weight decay", cfg.weight_decay);
        }
        if let Some(c) = cfg.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return bad("gradient clipping norm", c);
            }
        }
        if let Rule::Adam { beta1, beta2, eps } = cfg.rule {
            for (what, b) in [("beta1", beta1), ("beta2", beta2)] {
                if !(0.0..1.0).contains(&b) {
                    return bad(what, b);
                }
            }
            if !(eps.is_finite() && eps > 0.0) {
                return bad("eps", eps);
            }
        }
        let adam = matches!(cfg.rule, Rule::Adam { .. });
        let mut slots = Vec::new();
        let mut cols: Vec<(usize, B::Mat, B::Mat)> = Vec::new();
        for (&(r, c), &d) in shapes.iter().zip(decay) {
            slots.push(Slot {
                m: be.zeros(r, c)?,
                v: if adam {
                    Some((be.zeros(r, c)?, be.zeros(r, c)?))
                } else {
                    None
                },
                tmp: be.zeros(r, c)?,
                decay: d,
            });
            if !cols.iter().any(|(k, _, _)| *k == r) {
                let mut ones = be.zeros(r, 1)?;
                be.fill(&mut ones, 1.0)?;
                cols.push((r, ones, be.zeros(r, 1)?));
            }
        }
        let mut clip_c = be.zeros(1, 1)?;
        be.fill(&mut clip_c, cfg.clip_norm.unwrap_or(1.0))?;
        let mut one = be.zeros(1, 1)?;
        be.fill(&mut one, 1.0)?;
        Ok(Optimizer {
            cfg,
            slots,
            steps: 0,
            norm2: be.zeros(1, 1)?,
            factor: be.zeros(1, 1)?,
            clip_c,
            one,
            cols,
        })
    }

    /// One step with learning rate `lr` and (SGD) momentum `momentum`:
    /// `params[i]` moves along `-grads[i]`.
    pub fn step(
        &mut self,
        be: &B,
        params: &mut [&mut B::Mat],
        grads: &[&B::Mat],
        lr: f32,
        momentum: f32,
    ) -> Result<()> {
        if params.len() != self.slots.len() || grads.len() != self.slots.len() {
            return Err(Error::value(
                "optimiser",
                format!(
                    "built for {} parameters, given {} and {} gradients",
                    self.slots.len(),
                    params.len(),
                    grads.len()
                ),
            ));
        }
        self.steps += 1;
        if self.cfg.clip_norm.is_some() {
            self.clip_factor(be, grads)?;
        }
        for i in 0..self.slots.len() {
            self.direction(be, i, &*params[i], grads[i])?;
            let slot = &mut self.slots[i];
            match self.cfg.rule {
                Rule::Sgd { nesterov } => {
                    be.axpby(1.0, &slot.tmp, momentum, &mut slot.m)?;
                    if nesterov {
                        be.axpby(momentum, &slot.m, 1.0, &mut slot.tmp)?;
                        be.axpby(-lr, &slot.tmp, 1.0, params[i])?;
                    } else {
                        be.axpby(-lr, &slot.m, 1.0, params[i])?;
                    }
                }
                Rule::Adam { beta1, beta2, eps } => {
                    let t = self.steps as i32;
                    let (bc1, bc2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
                    let (v, q) = slot.v.as_mut().expect("Adam keeps its second moment");
                    be.axpby(1.0 - beta1, &slot.tmp, beta1, &mut slot.m)?;
                    be.unary_inplace(Unary::Square, &mut slot.tmp)?;
                    be.axpby(1.0 - beta2, &slot.tmp, beta2, v)?;
                    // q = m / (√v / √bc2 + eps), then θ -= (ε / bc1) q.
                    be.unary(Unary::Sqrt, v, &mut slot.tmp)?;
                    be.affine(&mut slot.tmp, 1.0 / bc2.sqrt(), eps)?;
                    be.binary(Binary::Div, &slot.m, &slot.tmp, q)?;
                    be.axpby(-lr / bc1, q, 1.0, params[i])?;
                }
            }
        }
        Ok(())
    }

    /// `tmp_i = (g_i + λ θ_i) * clip factor`: the descent direction before
    /// momentum or moments.
    fn direction(&mut self, be: &B, i: usize, theta: &B::Mat, g: &B::Mat) -> Result<()> {
        let wd = self.cfg.weight_decay;
        let slot = &mut self.slots[i];
        be.copy(g, &mut slot.tmp)?;
        if self.cfg.clip_norm.is_some() {
            let r = g.rows();
            let (_, _, col) = self.cols.iter().find(|(k, _, _)| *k == r).expect("planned");
            be.mul_col_vec(&mut slot.tmp, col)?;
        }
        if slot.decay && wd != 0.0 {
            be.axpby(wd, theta, 1.0, &mut slot.tmp)?;
        }
        Ok(())
    }

    /// The clipping factor `min(1, c / ‖g‖)` on the device, spread into
    /// every row count's column.
    fn clip_factor(&mut self, be: &B, grads: &[&B::Mat]) -> Result<()> {
        for (i, g) in grads.iter().enumerate() {
            let slot = &mut self.slots[i];
            be.unary(Unary::Square, g, &mut slot.tmp)?;
            let r = g.rows();
            let (_, _, col) = self
                .cols
                .iter_mut()
                .find(|(k, _, _)| *k == r)
                .expect("planned");
            be.row_sums(&slot.tmp, 1.0, 0.0, col)?;
            be.col_sums(col, 1.0, if i == 0 { 0.0 } else { 1.0 }, &mut self.norm2)?;
        }
        be.unary(Unary::Sqrt, &self.norm2, &mut self.factor)?;
        // factor = min(1, c / max(norm, tiny)): a zero gradient stays zero.
        be.affine(&mut self.factor, 1.0, 1e-30)?;
        be.binary(Binary::Div, &self.clip_c, &self.factor, &mut self.norm2)?;
        be.binary(Binary::Min, &self.norm2, &self.one, &mut self.factor)?;
        for (_, ones, col) in &mut self.cols {
            be.gemm(1.0, ones.n(), self.factor.n(), 0.0, col)?;
        }
        Ok(())
    }
}

impl<B: Backend> Optimizer<B> {
    /// Writes the momentum buffers (SGD) or moments (Adam) of the
    /// parameters `names` into the checkpoint's state as `opt.<name>.m`
    /// and `opt.<name>.v`. The step count is not stored: a run takes a
    /// fixed number of steps per epoch, so the caller derives it.
    pub fn export(&self, be: &B, names: &[&str], c: &mut Checkpoint) -> Result<()> {
        for (slot, name) in self.slots.iter().zip(names) {
            c.state
                .insert(format!("opt.{name}.m"), be.download(&slot.m)?);
            if let Some((v, _)) = &slot.v {
                c.state.insert(format!("opt.{name}.v"), be.download(v)?);
            }
        }
        Ok(())
    }

    /// Restores what [`export`](Self::export) wrote, after `steps` steps.
    pub fn import(
        &mut self,
        be: &B,
        names: &[&str],
        (ck, origin): (&Checkpoint, &Path),
        steps: u64,
    ) -> Result<()> {
        for (slot, name) in self.slots.iter_mut().zip(names) {
            let shape = slot.m.shape();
            be.write(
                &mut slot.m,
                ck.state_tensor(origin, &format!("opt.{name}.m"), shape)?,
            )?;
            if let Some((v, _)) = &mut slot.v {
                be.write(v, ck.state_tensor(origin, &format!("opt.{name}.v"), shape)?)?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}
