//! ebmkit: energy-based generative models on CPU and GPU.
//!
//! Layers, bottom to top (arrows point down): [`backend`] and [`rng`] ←
//! units ← energy ← samplers / losses ← models ← cli. [`data`] and [`host`]
//! sit beside the backend: they produce host matrices that are uploaded once.

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
    pub use crate::io::recipe::{Method, RbmSpec, Recipe};
    pub use crate::models::rbm::{GibbsRun, Rbm, RbmHost};
    pub use crate::models::AnyModel;
    pub use crate::rng::RngStream;
    pub use crate::train::{Objective, RbmTrainer, Trainer};
    pub use crate::units::UnitKind;
}
