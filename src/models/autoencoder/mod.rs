//! Auto-encoders: denoising (Vincent et al. 2008, 2010), contractive
//! (Rifai et al. 2011) and sparse, tied or untied, stated as a graph and
//! differentiated by [`crate::autodiff`] (no rule of their own).
//!
//! ```text
//! x̃ = corrupt(x)                          masking, salt-and-pepper or Gaussian noise
//! h = f(x̃ W + b_h)                        encoder: sigmoid / tanh / relu / linear
//! z = h W_dᵀ + b_v                        W_d = W when tied, else its own n_visible x n_hidden
//! L = rec(z, x)                           sigmoid decoder: Σ softplus(z) - x z (cross-entropy)
//!                                         linear decoder: Σ (z - x)² (squared error)
//!   + λ Σ_j f'(pre_j)² Σ_i W_ij²          contractive: ‖∂h/∂x‖²_F
//!   + β Σ_j KL(ρ ‖ mean h_j)              sparse (KL on the mean activations)
//!   + γ Σ_j |h_j|                         sparse (L1 on the codes)
//! ```
//!
//! every term averaged over the rows of a batch. Parameters, in graph
//! order: `W`, (`W_dec`), `b_h`, `b_v`; inputs `x` (encoded) and `t` (the
//! reconstruction's target: `x` itself, or in walkback training the data
//! row whose chain sample `x` is).

mod host;
mod persist;

pub use host::AeHost;

use crate::autodiff::{Activation, Graph, Loss, Noise, Var};
use crate::backend::{Backend, Matrix, Trans};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::recipe::AeSpec;
use crate::models::net::initial_weights;
use crate::rng::RngStream;

/// The shape of an auto-encoder: its layer sizes and nonlinearities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    pub n_visible: usize,
    pub n_hidden: usize,
    pub encoder: Activation,
    /// Sigmoid (cross-entropy) or linear (squared error).
    pub decoder: Activation,
    pub tied: bool,
}

/// What the training loss adds to the reconstruction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Penalties {
    pub noise: Option<Noise>,
    pub contractive: f32,
    /// (target ρ, weight β) of the KL sparsity penalty.
    pub sparsity: Option<(f32, f32)>,
    pub l1: f32,
}

impl Penalties {
    pub fn from_spec(s: &AeSpec) -> Penalties {
        Penalties {
            noise: s.corruption(),
            contractive: s.contractive,
            sparsity: s.sparsity_target.map(|t| (t, s.sparsity_cost)),
            l1: s.l1,
        }
    }
}

/// An auto-encoder's graph for batches of fixed rows, and the nodes a
/// caller reads: the loss, the reconstruction (the decoder's output, not
/// its logits) and the codes.
pub struct AeGraph {
    pub graph: Graph,
    pub loss: Var,
    pub recon: Var,
    pub code: Var,
    /// The squared reconstruction error per example (1 x 1), beside the loss.
    pub squared_error: Var,
    /// The corrupted input, when there is noise.
    pub corrupted: Option<Var>,
}

impl Arch {
    pub fn from_spec(n_visible: usize, s: &AeSpec) -> Arch {
        Arch {
            n_visible,
            n_hidden: s.n_hidden,
            encoder: s.encoder,
            decoder: s.decoder,
            tied: s.tied,
        }
    }

    /// The parameters' names and shapes, in graph order.
    pub fn params(&self) -> Vec<(&'static str, (usize, usize))> {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let mut p = vec![("W", (nv, nh))];
        if !self.tied {
            p.push(("W_dec", (nv, nh)));
        }
        p.push(("b_h", (1, nh)));
        p.push(("b_v", (1, nv)));
        p
    }

    /// The graph of the training loss of `rows` examples.
    pub fn graph(&self, rows: usize, pen: &Penalties) -> Result<AeGraph> {
        let mut g = Graph::new();
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let x = g.input("x", rows, nv);
        // The targets: the inputs themselves, except in walkback training,
        // where the input is a sample of the model's chain started at them.
        let t = g.input("t", rows, nv);
        let w = g.param("W", nv, nh);
        let w_dec = if self.tied {
            w
        } else {
            g.param("W_dec", nv, nh)
        };
        let b_h = g.param("b_h", 1, nh);
        let b_v = g.param("b_v", 1, nv);
        let corrupted = match pen.noise {
            Some(n) => Some(g.noise(x, n)?),
            None => None,
        };
        let xin = corrupted.unwrap_or(x);
        let xw = g.matmul(xin, Trans::N, w, Trans::N)?;
        let pre = g.add_row(xw, b_h)?;
        let h = self.encoder.apply(&mut g, pre);
        let back = g.matmul(h, Trans::N, w_dec, Trans::T)?;
        let z = g.add_row(back, b_v)?;
        let (rec_loss, recon) = match self.decoder {
            Activation::Sigmoid => (Loss::SigmoidBce, g.sigmoid(z)),
            _ => (Loss::SquaredError, z),
        };
        let mut loss = g.loss(rec_loss, z, t)?;
        if pen.contractive > 0.0 {
            let pc = contractive(
                &mut g,
                self.encoder,
                (pre, h, w),
                pen.contractive / rows as f32,
            )?;
            loss = g.add(loss, pc)?;
        }
        if let Some((rho, beta)) = pen.sparsity {
            let kl = g.kl_sparsity(h, rho)?;
            let kl = g.scale(kl, beta);
            loss = g.add(loss, kl)?;
        }
        if pen.l1 > 0.0 {
            let a = g.abs(h);
            let s = g.sum(a);
            let s = g.scale(s, pen.l1 / rows as f32);
            loss = g.add(loss, s)?;
        }
        let squared_error = g.loss(Loss::SquaredError, recon, t)?;
        Ok(AeGraph {
            graph: g,
            loss,
            recon,
            code: h,
            squared_error,
            corrupted,
        })
    }
}

/// `scale Σ_rj f'(pre_rj)² Σ_i W_ij²`: the squared Frobenius norm of the
/// encoder's Jacobian, summed over the rows and scaled.
fn contractive(
    g: &mut Graph,
    f: Activation,
    (pre, h, w): (Var, Var, Var),
    scale: f32,
) -> Result<Var> {
    if f == Activation::Relu {
        return Err(Error::value(
            "model.contractive",
            "ReLU units have a piecewise constant Jacobian: use sigmoid, tanh or linear",
        ));
    }
    let d = f.derivative(g, pre, h)?;
    let d2 = g.square(d);
    let w2 = g.square(w);
    let col = g.sum_rows(w2);
    let per = g.mul_row(d2, col)?;
    let s = g.sum(per);
    Ok(g.scale(s, scale))
}

/// An auto-encoder's parameters on backend `B`.
pub struct AutoEncoder<B: Backend> {
    pub arch: Arch,
    /// In graph order: W, (W_dec), b_h, b_v.
    pub params: Vec<B::Mat>,
}

impl<B: Backend> AutoEncoder<B> {
    /// Fresh weights ([`initial_weights`]: N(0, init_std²), else Glorot
    /// uniform, four times wider for sigmoid units) and zero biases, drawn
    /// from `rng`.
    pub fn new(be: &B, arch: Arch, init_std: Option<f32>, rng: &mut RngStream) -> Result<Self> {
        if arch.n_visible == 0 || arch.n_hidden == 0 {
            return Err(Error::value(
                "autoencoder size",
                format!(
                    "{} visible x {} hidden: both must be at least 1",
                    arch.n_visible, arch.n_hidden
                ),
            ));
        }
        let mut params = Vec::new();
        for (name, shape) in arch.params() {
            let m = if name.starts_with('W') {
                be.upload(&initial_weights(shape, arch.encoder, init_std, rng))?
            } else {
                be.zeros(shape.0, shape.1)?
            };
            params.push(m);
        }
        Ok(AutoEncoder { arch, params })
    }

    pub fn from_host(be: &B, h: &AeHost) -> Result<Self> {
        h.validate()?;
        let params = h
            .params
            .iter()
            .map(|m| be.upload(m))
            .collect::<Result<Vec<_>>>()?;
        Ok(AutoEncoder {
            arch: h.arch,
            params,
        })
    }

    pub fn to_host(&self, be: &B) -> Result<AeHost> {
        Ok(AeHost {
            arch: self.arch,
            params: self
                .params
                .iter()
                .map(|m| be.download(m))
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// The parameters as the graph binds them.
    pub fn bound(&self) -> Vec<&B::Mat> {
        self.params.iter().collect()
    }

    /// The name of the first parameter that is NaN or infinite.
    pub fn first_non_finite(&self, be: &B) -> Result<Option<&'static str>> {
        for ((name, _), m) in self.arch.params().into_iter().zip(&self.params) {
            if !be.sum(m)?.is_finite() {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Rows of the input the model reads (n_visible columns).
    pub fn check_input(&self, x: &B::Mat) -> Result<()> {
        if x.cols() != self.arch.n_visible {
            return Err(Error::shape(
                "autoencoder input",
                format!(
                    "{} values per row, the model has {}",
                    x.cols(),
                    self.arch.n_visible
                ),
            ));
        }
        Ok(())
    }
}

/// What [`AutoEncoder::reconstruct`] returns for a set of rows.
#[derive(Clone, Debug)]
pub struct Reconstruction {
    /// The encoder's input, when corrupted.
    pub corrupted: Option<HostMat>,
    /// The decoder's output (probabilities for a sigmoid decoder).
    pub recon: HostMat,
    /// The hidden codes.
    pub code: HostMat,
    /// Σ_i (recon_i - x_i)² per example.
    pub squared_error: f64,
    /// The reconstruction loss per example: cross-entropy (sigmoid decoder)
    /// or squared error (linear decoder).
    pub loss: f64,
}

/// Rows per pass of [`AutoEncoder::reconstruct`]: bounds its buffers.
const CHUNK: usize = 500;

impl<B: crate::backend::Fused> AutoEncoder<B> {
    /// Encodes and decodes `x` (one example per row), corrupted by `noise`
    /// drawn from `rng` when given; no penalty enters `loss`.
    pub fn reconstruct(
        &self,
        be: &B,
        x: &HostMat,
        noise: Option<Noise>,
        rng: &mut RngStream,
    ) -> Result<Reconstruction> {
        use crate::autodiff::{Bindings, Plan};
        if x.cols != self.arch.n_visible || x.rows == 0 {
            return Err(Error::shape(
                "autoencoder input",
                format!(
                    "{} rows of {} values, the model reads rows of {}",
                    x.rows, x.cols, self.arch.n_visible
                ),
            ));
        }
        let pen = Penalties {
            noise,
            ..Default::default()
        };
        let (mut recon, mut code) = (Vec::new(), Vec::new());
        let mut corrupted = noise.map(|_| Vec::new());
        let (mut se, mut loss) = (0.0f64, 0.0f64);
        let mut plan: Option<(usize, AeGraph, Plan<B>)> = None;
        let params = self.bound();
        for start in (0..x.rows).step_by(CHUNK) {
            let rows = CHUNK.min(x.rows - start);
            if plan.as_ref().map(|p| p.0) != Some(rows) {
                let g = self.arch.graph(rows, &pen)?;
                let mut keep = vec![g.squared_error, g.recon, g.code];
                keep.extend(g.corrupted);
                let p = Plan::new(be, &g.graph, g.loss, &keep)?;
                plan = Some((rows, g, p));
            }
            let (_, g, p) = plan.as_mut().expect("planned above");
            let xb = be.upload(&x.select_rows(&(start..start + rows).collect::<Vec<_>>())?)?;
            p.forward(
                be,
                &Bindings {
                    params: &params,
                    inputs: &[&xb, &xb],
                },
                rng,
            )?;
            let w = rows as f64;
            se += w * be.download(p.value(g.squared_error)?)?.data[0] as f64;
            loss += w * be.download(p.loss_value()?)?.data[0] as f64;
            recon.extend(be.download(p.value(g.recon)?)?.data);
            code.extend(be.download(p.value(g.code)?)?.data);
            if let (Some(c), Some(v)) = (&mut corrupted, g.corrupted) {
                c.extend(be.download(p.value(v)?)?.data);
            }
        }
        let (n, nv, nh) = (x.rows, self.arch.n_visible, self.arch.n_hidden);
        Ok(Reconstruction {
            corrupted: corrupted.map(|c| HostMat::new(n, nv, c)).transpose()?,
            recon: HostMat::new(n, nv, recon)?,
            code: HostMat::new(n, nh, code)?,
            squared_error: se / n as f64,
            loss: loss / n as f64,
        })
    }
}

/// A run of the generalized-DAE Markov chain (Bengio, Yao, Alain &
/// Vincent 2013): `x̃ ~ C(x̃ | x)` with the model's corruption, then
/// `x ~ P(x | x̃)`, the reconstruction distribution: Bernoulli with the
/// sigmoid decoder's probabilities, or N(r(x̃), σ²) for a linear decoder
/// trained with Gaussian corruption of the same σ (the chain is then
/// Langevin dynamics with step 2σ² on the density the DAE learned, Alain
/// & Bengio 2014).
pub struct DaeChain<'a> {
    /// One chain per row.
    pub start: &'a HostMat,
    pub steps: usize,
    /// Also keep the states every this many steps.
    pub every: Option<usize>,
}

/// What a chain run returns: the last states and the snapshots.
pub struct ChainStates {
    pub last: HostMat,
    pub snapshots: Vec<HostMat>,
}

impl<B: crate::backend::Fused> AutoEncoder<B> {
    /// Runs the generalized-DAE chain with the corruption `noise` (the one
    /// the model was trained with), all on the device; draws from `rng`.
    pub fn sample_chain(
        &self,
        be: &B,
        run: &DaeChain<'_>,
        noise: Noise,
        rng: &mut RngStream,
    ) -> Result<ChainStates> {
        use crate::autodiff::{Bindings, Plan};
        let sigma = match (self.arch.decoder, noise) {
            (Activation::Sigmoid, _) => None,
            (_, Noise::Gaussian(s)) => Some(s),
            _ => {
                return Err(Error::value(
                    "DAE sampling",
                    "a linear decoder's reconstruction distribution is N(r, σ²) with the σ of Gaussian corruption: train it with noise = \"gaussian\"",
                ))
            }
        };
        let x0 = run.start;
        if x0.cols != self.arch.n_visible || x0.rows == 0 {
            return Err(Error::shape(
                "DAE sampling",
                format!(
                    "{} chains of {} values for a model of {}",
                    x0.rows, x0.cols, self.arch.n_visible
                ),
            ));
        }
        let pen = Penalties {
            noise: Some(noise),
            ..Default::default()
        };
        let g = self.arch.graph(x0.rows, &pen)?;
        let mut plan = Plan::new(be, &g.graph, g.loss, &[g.recon])?;
        let mut x = be.upload(x0)?;
        let mut next = be.zeros(x0.rows, x0.cols)?;
        let params = self.bound();
        let mut snapshots = Vec::new();
        for step in 1..=run.steps {
            plan.forward(
                be,
                &Bindings {
                    params: &params,
                    inputs: &[&x, &x],
                },
                rng,
            )?;
            let r = plan.value(g.recon)?;
            match sigma {
                None => be.bernoulli(r, &mut next, rng)?,
                Some(s) => be.gaussian(r, s, &mut next, rng)?,
            }
            std::mem::swap(&mut x, &mut next);
            if run.every.is_some_and(|e| step % e == 0) {
                snapshots.push(be.download(&x)?);
            }
        }
        Ok(ChainStates {
            last: be.download(&x)?,
            snapshots,
        })
    }
}
