//! ebmkit: energy-based generative models on CPU and GPU.
//!
//! Every model is an energy function over visible data and latent units;
//! training shapes it (a loss strategy: CD, PCD, fast PCD, tempering), and
//! estimators measure it (exact log Z, AIS, reverse AIS). The arithmetic
//! goes through one [`Backend`]: the CPU ([`backend::cpu::Cpu`], rayon) or
//! any GPU ([`backend::gpu::Gpu`], wgpu + WGSL), chosen at run time with
//! [`AnyBackend`].
//!
//! Layers, bottom to top (arrows point down; `tests/architecture.rs` checks
//! them): [`error`] ← [`host`], [`rng`] ← [`backend`], [`data`], [`viz`] ←
//! [`units`] ← [`energy`] ← [`sample`], [`io`] ← [`models`] ← [`estimate`]
//! ← [`train`] ← the `ebmkit` binary (`src/cli/`).
//!
//! Train a model in a few lines, without a recipe file (the
//! [`prelude`] has the usual names; `examples/` has more):
//!
//! ```
//! use ebmkit::prelude::*;
//! use ebmkit::estimate::{mean_log_prob, rbm::exact};
//!
//! # fn main() -> ebmkit::Result<()> {
//! // 200 noisy copies of two 8-pixel patterns.
//! let d = RngStream::new(1, 1).next_draw();
//! let x = HostMat::from_fn(200, 8, |r, c| {
//!     let bit = (r % 2 == c % 2) as u8 as f32;
//!     if d.uniform(r * 8 + c) < 0.05 { 1.0 - bit } else { bit }
//! });
//! let be = Cpu::new();
//! let recipe = Recipe::new(RbmSpec::new(4))
//!     .method(Method::Cd)
//!     .epochs(20)
//!     .batch_size(20)
//!     .lr(0.1)
//!     .binarize(Binarize::None);
//! let mut trainer = RbmTrainer::new(&be, recipe, &x, None)?;
//! trainer.fit(&be, None, &mut |_, _| {}, &mut |_, _| {})?;
//!
//! // Four hidden units: log Z is a sum over 16 states.
//! let rbm = &trainer.objective.rbm;
//! let ll = mean_log_prob(&be, rbm, &x, exact::log_z(&be, rbm)?)?;
//! assert!(ll > -8.0 * 2f64.ln(), "better than coin flips: {ll}");
//! # Ok(())
//! # }
//! ```

#![warn(clippy::too_many_lines)]

pub mod autodiff;
pub mod backend;
pub mod bench;
pub mod data;
pub mod energy;
pub mod error;
pub mod estimate;
pub mod host;
pub mod io;
pub mod models;
pub mod rng;
pub mod sample;
pub mod train;
pub mod units;
pub mod viz;

pub use backend::{AnyBackend, Backend, Binary, Choice, Fused, Matrix, Op, Trans, Unary};
pub use error::{Error, Result};
pub use host::HostMat;
pub use rng::RngStream;

/// What most programs need: `use ebmkit::prelude::*;`.
pub mod prelude {
    pub use crate::autodiff::{Activation, Noise};
    pub use crate::backend::cpu::Cpu;
    pub use crate::backend::gpu::Gpu;
    pub use crate::backend::{
        AnyBackend, Backend, BiasStep, Binary, Fused, Matrix, Op, Sample, Tempered, Trans, Unary,
    };
    pub use crate::data::{Binarize, DataSource, Dataset, Mnist};
    pub use crate::energy::{Bipartite, FreeEnergy};
    pub use crate::error::{Error, Result};
    pub use crate::host::HostMat;
    pub use crate::io::checkpoint::Checkpoint;
    pub use crate::io::recipe::{AeSpec, Corruption, Method, Optimizer, RbmSpec, Recipe};
    pub use crate::models::autoencoder::{AeHost, AutoEncoder};
    pub use crate::models::rbm::{GibbsRun, Rbm, RbmHost};
    pub use crate::models::AnyModel;
    pub use crate::rng::RngStream;
    pub use crate::train::autoencoder::AeTrainer;
    pub use crate::train::rbm::RbmTrainer;
    pub use crate::train::{Objective, Trainer};
    pub use crate::units::UnitKind;
}
