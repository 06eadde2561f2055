//! Gradients written once: reverse-mode differentiation over backend
//! matrices.
//!
//! A model states its computation as a [`Graph`] of ops on matrices of
//! fixed shapes (every model here trains on fixed minibatch shapes), once;
//! a [`Plan`] lays the graph out on a backend (every value, gradient and
//! scratch buffer allocated once, GEMM + bias + sigmoid chains fused into
//! the backend's one-pass kernel) and then runs it forward and backward per
//! batch with no allocation and no read-back. Each op's backward rule is in
//! one place (`backward.rs`), so no model writes a chain rule of its own;
//! a parameter read by several nodes (a tied decoder's Wᵀ, LISTA's S over
//! its steps) accumulates the gradient of every use.
//!
//! The rules run unchanged on the f64 reference backend
//! ([`crate::backend::reference::F64`]), where [`check`] holds them to
//! central finite differences.
//!
//! What stays outside: the sampled gradients of the Boltzmann machines
//! (statistics, not derivatives of a computed loss), and loops with
//! data-dependent stops (ISTA to convergence, HMC step adaptation), which
//! drive a graph rather than live in one.
//!
//! ```
//! use ebmkit::autodiff::{Bindings, Graph, Loss, Plan};
//! use ebmkit::prelude::*;
//! # fn main() -> ebmkit::Result<()> {
//! // A logistic regression: loss = mean BCE(sigmoid(x w + b), t).
//! let mut g = Graph::new();
//! let x = g.input("x", 4, 3);
//! let t = g.input("t", 4, 1);
//! let w = g.param("w", 3, 1);
//! let b = g.param("b", 1, 1);
//! let xw = g.matmul(x, Trans::N, w, Trans::N)?;
//! let z = g.add_row(xw, b)?;
//! let loss = g.loss(Loss::SigmoidBce, z, t)?;
//!
//! let be = Cpu::new();
//! let mut plan = Plan::new(&be, &g, loss, &[])?;
//! let (xv, tv) = (HostMat::from_fn(4, 3, |r, c| (r + c) as f32), HostMat::zeros(4, 1));
//! let (wv, bv) = (HostMat::zeros(3, 1), HostMat::zeros(1, 1));
//! let binds = Bindings { params: &[&wv, &bv], inputs: &[&xv, &tv] };
//! plan.step(&be, &binds, &mut RngStream::new(1, 1))?;
//! // At w = 0 the loss is log 2 and ∂loss/∂b = mean(σ(0) - t) = 0.5.
//! assert!((be.download(plan.loss_value()?)?.data[0] - 2f32.ln()).abs() < 1e-6);
//! assert!((be.download(plan.param_grad(1)?)?.data[0] - 0.5).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```

mod backward;
pub mod check;
mod forward;
mod graph;
mod plan;

pub use graph::{Activation, Graph, Loss, Noise, Op, Var};
pub use plan::{param_grads, Bindings, Plan};
