//! Training RBMs: loss strategies, the optimiser and the trainer.
//!
//! - [`loss::Negative`]: where the negative statistics come from — CD-k
//!   (chains restarted at the data), PCD-k (persistent chains), FPCD-k
//!   (persistent chains on fast weights), PT (parallel tempering, cold
//!   chains).
//! - [`optim::Sgd`]: SGD with momentum, L2 weight decay, a learning-rate
//!   schedule, an optional sparsity target on the hidden units and optional
//!   centering (Melchior et al. 2016).
//! - [`monitor`]: reconstruction error, stochastic pseudo-likelihood and the
//!   free-energy gap at epoch ends.
//! - [`trainer::Trainer`]: owns the resident data set, the model and every
//!   buffer; one epoch is a loop of GEMMs and elementwise kernels with no
//!   allocation and no read-back.

pub mod cli;
pub mod loss;
pub mod monitor;
pub mod optim;
pub mod trainer;

pub use monitor::{EpochRecord, History};
pub use trainer::Trainer;

use std::path::PathBuf;

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A parameter became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}: parameter {param} is NaN or infinite{}",
        match last_good { Some(p) => format!(" (last good checkpoint kept: {})", p.display()), None => String::new() }
    )]
    Diverged {
        epoch: u64,
        param: &'static str,
        last_good: Option<PathBuf>,
    },
    #[error(transparent)]
    Other(#[from] crate::Error),
}
