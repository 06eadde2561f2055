//! Stochastic gradient ascent on the log-likelihood with momentum.
//!
//! With positive statistics `(v⁺, p⁺ = E[h | v⁺])` over `n⁺` rows and
//! negative ones `(v⁻, p⁻)` over `n⁻` rows:
//!
//! ```text
//! g_W   = v⁺ᵀ p⁺ / n⁺ - v⁻ᵀ p⁻ / n⁻
//! g_b_v = mean(v⁺) - mean(v⁻)
//! g_b_h = mean(p⁺) - mean(p⁻) - c (q - t)         (sparsity, optional)
//! Δ     = μ Δ + ε (g - λ_wd W)                     (weight decay on W only)
//! θ     = θ + Δ
//! ```
//!
//! `q` is a running average of the hidden activations on the data and `t`
//! the target (as in Lee, Ekanadham & Ng 2008, the penalty acts on the
//! hidden biases).
//!
//! Centering (Melchior, Fischer & Wiskott, JMLR 2016): with offsets `μ_v`
//! (sliding mean of the data) and `λ_h` (sliding mean of p⁺), the centered
//! gradient expressed for the ordinary parameters is
//!
//! ```text
//! g_W   = <(v - μ_v)ᵀ (h - λ_h)>⁺ - <(v - μ_v)ᵀ (h - λ_h)>⁻
//! g_b_v = mean(v⁺) - mean(v⁻) - λ_h g_Wᵀ
//! g_b_h = mean(p⁺) - mean(p⁻) - μ_v g_W
//! ```
//!
//! The weights keep their momentum as the previous weights `W_prev`
//! (Δ = W - W_prev), so the whole update is one elementwise pass and the
//! gradient GEMMs accumulating into the new weights:
//!
//! ```text
//! W_new = (1 + μ - ε λ_wd) W - μ W_prev + ε g_W,   then W_prev ← W
//! ```
//!
//! (the buffers are swapped, not copied). Without centering and fast
//! weights, the two GEMMs of `g_W` write straight into `W_new` (beta = 1).
//! When the recipe has no momentum at any epoch, `W_prev` is never needed:
//! the first GEMM scales `W` by `1 - ε λ_wd` through its beta and both
//! accumulate into `W` itself, which saves a full pass over the weights
//! (and a dispatch on the GPU) per update.
//!
//! Gaussian visible units with variances σ² = e^z (see
//! [`crate::models::rbm`]): every `v` above is read as `ṽ = v/σ²`, and when
//! the variances are learned
//!
//! ```text
//! g_z = (1/σ²) ⊙ (mean⁺ v ⊙ (v/2 - μ) - mean⁻ v ⊙ (v/2 - μ)),  μ = p Wᵀ + b_v
//! Δ_z = μ Δ_z + ε κ g_z,   z ← max(z + Δ_z, log σ²_min)
//! ```
//!
//! with κ the recipe's `variance_lr_factor`; the floor keeps a variance from
//! collapsing onto a pixel the hidden units reconstruct exactly.

use super::negative::FastWeights;
use crate::backend::{Backend, BiasStep, Binary, Fused, Matrix};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::models::rbm::Rbm;

pub struct Centering<B: Backend> {
    pub mu_v: B::Mat,
    pub lambda_h: B::Mat,
    pub rate: f32,
}

pub struct Sparsity<B: Backend> {
    pub q_h: B::Mat,
    pub target: f32,
    pub cost: f32,
    pub decay: f32,
}

/// Learned visible variances: the step on z = log σ² and its momentum.
pub struct VarianceStep<B: Backend> {
    pub dz: B::Mat,
    g: B::Mat,
    pub lr_factor: f32,
    /// log σ²_min in every column: the floor of z.
    floor: B::Mat,
}

/// Scaled visible statistics ṽ = v/σ² of both phases, and the z step.
struct Scaled<B: Backend> {
    vp: B::Mat,
    vn: B::Mat,
    learn: Option<VarianceStep<B>>,
}

/// The momentum of the parameters: the weights before the last update
/// (Δ = W - W_prev) and the last bias steps.
pub struct Momentum<B: Backend> {
    pub w_prev: B::Mat,
    pub db_v: B::Mat,
    pub db_h: B::Mat,
    /// The update writes `W` in place; `w_prev` is left untouched.
    in_place: bool,
}

/// Explicit gradients (ascent directions) of W, b_v and b_h.
pub struct Grads<B: Backend> {
    pub w: B::Mat,
    pub b_v: B::Mat,
    pub b_h: B::Mat,
}

/// The learning rate, momentum and weight decay of one update.
#[derive(Clone, Copy)]
struct Rate {
    lr: f32,
    mom: f32,
    weight_decay: f32,
}

pub struct Sgd<B: Backend> {
    pub momentum: Momentum<B>,
    /// Explicit gradients, when centering or fast weights need them.
    grads: Option<Grads<B>>,
    pub weight_decay: f32,
    pub sparsity: Option<Sparsity<B>>,
    pub centering: Option<Centering<B>>,
    scaled: Option<Scaled<B>>,
}

/// The statistics one update uses.
pub struct Stats<'a, B: Fused> {
    pub v_pos: &'a B::Mat,
    pub h_pos: &'a B::Mat,
    pub v_neg: &'a B::Mat,
    pub h_neg: &'a B::Mat,
}

/// Options of [`Sgd::new`].
pub struct SgdConfig {
    pub weight_decay: f32,
    /// (target, cost, decay)
    pub sparsity: Option<(f32, f32, f32)>,
    /// (initial μ_v, rate)
    pub centering: Option<(Vec<f32>, f32)>,
    /// Keep the gradient in its own buffers (fast weights need it).
    pub explicit: bool,
    /// Gaussian visible units with variances (see [`VarianceConfig`]).
    pub variance: Option<VarianceConfig>,
    /// The momentum is zero at every step there can be
    /// ([`crate::io::recipe::Recipe::momentum_free`]): `W_prev` need not be
    /// kept, and a step with momentum is refused.
    pub momentum_free: bool,
}

/// What the optimiser needs for Gaussian visible units with variances.
pub struct VarianceConfig {
    /// Rows of the positive and negative statistics.
    pub n_pos: usize,
    pub n_neg: usize,
    /// Learned variances: (learning-rate factor, smallest log σ²).
    pub learn: Option<(f32, f32)>,
}

impl<B: Fused> Sgd<B> {
    /// `w` are the initial weights (the momentum starts at zero).
    pub fn new(be: &B, w: &B::Mat, cfg: SgdConfig) -> Result<Self> {
        let (nv, nh) = (w.rows(), w.cols());
        let mut w_prev = be.zeros(nv, nh)?;
        be.copy(w, &mut w_prev)?;
        let sparsity = match cfg.sparsity {
            Some((target, cost, decay)) => {
                let mut q_h = be.zeros(1, nh)?;
                be.fill(&mut q_h, target)?;
                Some(Sparsity {
                    q_h,
                    target,
                    cost,
                    decay,
                })
            }
            None => None,
        };
        let centering = match cfg.centering {
            Some((mu, rate)) => {
                let mut lambda_h = be.zeros(1, nh)?;
                be.fill(&mut lambda_h, 0.5)?;
                Some(Centering {
                    mu_v: be.upload(&HostMat::new(1, nv, mu)?)?,
                    lambda_h,
                    rate,
                })
            }
            None => None,
        };
        let grads = if cfg.explicit || centering.is_some() {
            Some(Grads {
                w: be.zeros(nv, nh)?,
                b_v: be.zeros(1, nv)?,
                b_h: be.zeros(1, nh)?,
            })
        } else {
            None
        };
        let scaled = match cfg.variance {
            Some(vc) => Some(Scaled {
                vp: be.zeros(vc.n_pos, nv)?,
                vn: be.zeros(vc.n_neg, nv)?,
                learn: match vc.learn {
                    Some((lr_factor, min_log_var)) => {
                        let mut floor = be.zeros(1, nv)?;
                        be.fill(&mut floor, min_log_var)?;
                        Some(VarianceStep {
                            dz: be.zeros(1, nv)?,
                            g: be.zeros(1, nv)?,
                            lr_factor,
                            floor,
                        })
                    }
                    None => None,
                },
            }),
            None => None,
        };
        let in_place = cfg.momentum_free && grads.is_none();
        Ok(Sgd {
            momentum: Momentum {
                w_prev,
                db_v: be.zeros(1, nv)?,
                db_h: be.zeros(1, nh)?,
                in_place,
            },
            scaled,
            grads,
            weight_decay: cfg.weight_decay,
            sparsity,
            centering,
        })
    }

    /// One update of `rbm` (and of the fast weights, if given) with learning
    /// rate `lr` and momentum `mom`.
    pub fn step(
        &mut self,
        be: &B,
        rbm: &mut Rbm<B>,
        s: Stats<'_, B>,
        lr: f32,
        mom: f32,
        fast: Option<&mut FastWeights<B>>,
    ) -> Result<()> {
        if self.momentum.in_place && mom != 0.0 {
            // The in-place update keeps no previous weights, so it cannot
            // take a momentum step; the recipe said momentum-free.
            return Err(Error::value(
                "train.momentum",
                format!(
                    "{mom} asked of an optimiser built momentum-free (the recipe had no \
                     momentum at any epoch, so the weights are updated in place); build the \
                     trainer from a recipe with the momentum"
                ),
            ));
        }
        let (v_pos, v_neg) = scale_visible(be, rbm, &mut self.scaled, &s)?;
        let st = Stats { v_pos, v_neg, ..s };
        if let Some(sp) = &mut self.sparsity {
            // q ← decay q + (1 - decay) mean(p⁺)
            let np = s.h_pos.rows() as f32;
            be.col_sums(s.h_pos, (1.0 - sp.decay) / np, sp.decay, &mut sp.q_h)?;
        }
        let rate = Rate {
            lr,
            mom,
            weight_decay: self.weight_decay,
        };
        match &mut self.grads {
            None => self
                .momentum
                .fused(be, rbm, &st, self.sparsity.as_ref(), rate)?,
            Some(g) => {
                g.compute(be, &st, self.centering.as_mut(), self.sparsity.as_ref())?;
                self.momentum.apply(be, rbm, g, rate)?;
                if let Some(f) = fast {
                    f.update(be, &g.w, &g.b_v, &g.b_h)?;
                }
            }
        }
        if !self.momentum.in_place {
            // w_prev now holds the new weights: swap, so that it holds the old.
            std::mem::swap(&mut rbm.w, &mut self.momentum.w_prev);
        }
        let step = self.scaled.as_mut().and_then(|sc| sc.learn.as_mut());
        if let (Some(st), Some(var)) = (step, &mut rbm.var_v) {
            be.axpby(lr * st.lr_factor, &st.g, mom, &mut st.dz)?;
            let z = &mut var.log_var;
            be.axpby(1.0, &st.dz, 1.0, z)?;
            // z ← max(z, z_min), exact where z is above the floor.
            be.binary_inplace(Binary::Max, z, &st.floor)?;
        }
        rbm.refresh(be)
    }

    /// The variance step (momentum of z), when the variances are learned.
    pub fn variance_step(&mut self) -> Option<&mut VarianceStep<B>> {
        self.scaled.as_mut().and_then(|sc| sc.learn.as_mut())
    }
    pub fn variance_step_ref(&self) -> Option<&VarianceStep<B>> {
        self.scaled.as_ref().and_then(|sc| sc.learn.as_ref())
    }

    /// The weights before the last update, given the current ones `w`. An
    /// in-place optimiser keeps none; its momentum is zero, so `w` serves.
    pub fn prev_weights<'a>(&'a self, w: &'a B::Mat) -> &'a B::Mat {
        if self.momentum.in_place {
            w
        } else {
            &self.momentum.w_prev
        }
    }
}

/// For Gaussian visible units with variances: the visible statistics as
/// ṽ = v/σ² (what W and b_v pair with), after the z gradient is taken
/// while the parameters are still the current ones. Else the statistics as
/// they are.
fn scale_visible<'a, B: Fused>(
    be: &B,
    rbm: &Rbm<B>,
    scaled: &'a mut Option<Scaled<B>>,
    s: &Stats<'a, B>,
) -> Result<(&'a B::Mat, &'a B::Mat)> {
    let (Some(sc), Some(var)) = (scaled.as_mut(), &rbm.var_v) else {
        return Ok((s.v_pos, s.v_neg));
    };
    let np = s.v_pos.rows() as f32;
    let nn = s.v_neg.rows() as f32;
    if let Some(st) = &mut sc.learn {
        let (pos, neg) = ((s.v_pos, s.h_pos), (s.v_neg, s.h_neg));
        rbm.log_var_stat(be, pos, &mut sc.vp, 1.0 / np, 0.0, &mut st.g)?;
        rbm.log_var_stat(be, neg, &mut sc.vn, -1.0 / nn, 1.0, &mut st.g)?;
        be.mul_row_vec(&mut st.g, &var.prec)?;
    }
    rbm.visible_stat(be, s.v_pos, &mut sc.vp)?;
    rbm.visible_stat(be, s.v_neg, &mut sc.vn)?;
    Ok((&sc.vp, &sc.vn))
}

impl<B: Fused> Momentum<B> {
    /// The update without explicit gradients:
    /// `W_new = (1 + μ - ε λ) W - μ W_prev + ε g`, g accumulated by the two
    /// gradient GEMMs straight into W_new (in place: into W, scaled by the
    /// first GEMM's beta); then the bias steps, both layers in one pass
    /// unless a sparsity term joins the hidden one.
    fn fused(
        &mut self,
        be: &B,
        rbm: &mut Rbm<B>,
        s: &Stats<'_, B>,
        sparsity: Option<&Sparsity<B>>,
        r: Rate,
    ) -> Result<()> {
        let (np, nn) = (s.v_pos.rows() as f32, s.v_neg.rows() as f32);
        let (lr, mom) = (r.lr, r.mom);
        let keep = 1.0 + mom - lr * r.weight_decay;
        let (w_new, beta) = if self.in_place {
            (&mut rbm.w, keep)
        } else {
            be.axpby(keep, &rbm.w, -mom, &mut self.w_prev)?;
            (&mut self.w_prev, 1.0)
        };
        be.gemm(lr / np, s.v_pos.t(), s.h_pos.n(), beta, w_new)?;
        be.gemm(-lr / nn, s.v_neg.t(), s.h_neg.n(), 1.0, w_new)?;
        let bv = BiasStep {
            a: s.v_pos,
            b: s.v_neg,
            step: &mut self.db_v,
            param: &mut rbm.b_v,
        };
        match sparsity {
            None => {
                let bh = BiasStep {
                    a: s.h_pos,
                    b: s.h_neg,
                    step: &mut self.db_h,
                    param: &mut rbm.b_h,
                };
                be.bias_steps(bv, bh, lr / np, -lr / nn, mom)
            }
            Some(sp) => {
                be.bias_step(bv, lr / np, -lr / nn, mom)?;
                be.col_sums(s.h_pos, lr / np, mom, &mut self.db_h)?;
                be.col_sums(s.h_neg, -lr / nn, 1.0, &mut self.db_h)?;
                be.axpby(-lr * sp.cost, &sp.q_h, 1.0, &mut self.db_h)?;
                be.affine(&mut self.db_h, 1.0, lr * sp.cost * sp.target)?;
                be.axpby(1.0, &self.db_h, 1.0, &mut rbm.b_h)
            }
        }
    }

    /// The momentum step from explicit gradients.
    fn apply(&mut self, be: &B, rbm: &mut Rbm<B>, g: &Grads<B>, r: Rate) -> Result<()> {
        let keep = 1.0 + r.mom - r.lr * r.weight_decay;
        be.axpby(keep, &rbm.w, -r.mom, &mut self.w_prev)?;
        be.axpby(r.lr, &g.w, 1.0, &mut self.w_prev)?;
        be.axpby(r.lr, &g.b_v, r.mom, &mut self.db_v)?;
        be.axpby(r.lr, &g.b_h, r.mom, &mut self.db_h)?;
        be.axpby(1.0, &self.db_v, 1.0, &mut rbm.b_v)?;
        be.axpby(1.0, &self.db_h, 1.0, &mut rbm.b_h)
    }
}

impl<B: Fused> Grads<B> {
    /// The gradients from the statistics, centred and with the sparsity
    /// term when asked.
    fn compute(
        &mut self,
        be: &B,
        s: &Stats<'_, B>,
        centering: Option<&mut Centering<B>>,
        sparsity: Option<&Sparsity<B>>,
    ) -> Result<()> {
        let (np, nn) = (s.v_pos.rows() as f32, s.v_neg.rows() as f32);
        let (gw, gbv, gbh) = (&mut self.w, &mut self.b_v, &mut self.b_h);
        be.gemm(1.0 / np, s.v_pos.t(), s.h_pos.n(), 0.0, gw)?;
        be.gemm(-1.0 / nn, s.v_neg.t(), s.h_neg.n(), 1.0, gw)?;
        be.col_sums(s.v_pos, 1.0 / np, 0.0, gbv)?;
        be.col_sums(s.v_neg, -1.0 / nn, 1.0, gbv)?;
        be.col_sums(s.h_pos, 1.0 / np, 0.0, gbh)?;
        be.col_sums(s.h_neg, -1.0 / nn, 1.0, gbh)?;
        if let Some(c) = centering {
            // mean (v - μ)ᵀ(h - λ) = mean vᵀh - μᵀ mean h - (mean v)ᵀ λ + μᵀλ,
            // so the difference of the phases is the plain one less two
            // outer products of the mean differences (gbv, gbh so far):
            // g_W = Δ<vᵀh> - μᵀ Δh̄ - Δv̄ᵀ λ. Two rank-1 GEMMs instead of
            // four centred copies of the statistics.
            be.gemm(-1.0, c.mu_v.t(), gbh.n(), 1.0, gw)?;
            be.gemm(-1.0, gbv.t(), c.lambda_h.n(), 1.0, gw)?;
            // g_b_v -= λ g_Wᵀ,  g_b_h -= μ g_W
            be.gemm(-1.0, c.lambda_h.n(), gw.t(), 1.0, gbv)?;
            be.gemm(-1.0, c.mu_v.n(), gw.n(), 1.0, gbh)?;
            // The offsets slide towards the data means.
            be.col_sums(s.v_pos, c.rate / np, 1.0 - c.rate, &mut c.mu_v)?;
            be.col_sums(s.h_pos, c.rate / np, 1.0 - c.rate, &mut c.lambda_h)?;
        }
        if let Some(sp) = sparsity {
            be.axpby(-sp.cost, &sp.q_h, 1.0, gbh)?;
            be.affine(gbh, 1.0, sp.cost * sp.target)?;
        }
        Ok(())
    }
}
