//! Training: the one loop every model family runs ([`fit`]), the records
//! and curves it keeps ([`history`]), and each family's [`fit::Objective`]
//! (one update on a batch, its monitors and its checkpointed state).
//!
//! - [`fit::Trainer`]: owns the recipe (the one source of truth for the
//!   schedules and the epoch count), the resident data set, the objective
//!   and the random stream; one epoch is a loop of device ops with no
//!   allocation and no read-back, then the monitors, a finiteness check and
//!   the periodic atomic checkpoint.
//! - [`optim`]: SGD (momentum, Nesterov), Adam, weight decay and gradient
//!   clipping for every model trained by backpropagation.
//! - [`backprop`]: what every backprop objective shares: the planned
//!   graph, the optimiser, the epoch's loss summed on the device.
//! - [`autoencoder`]: the auto-encoders' objective: a graph's gradient
//!   and one of the optimisers above.
//! - [`net`]: the feed-forward nets' objective (fine-tuning), with model
//!   selection on a validation set and early stopping.
//! - [`stack`]: greedy layer-wise pretraining, each layer by its kind's
//!   objective on the codes of the layers below.
//! - [`rbm`]: the RBM's objective: loss strategies (CD, PCD, FPCD, PT), SGD
//!   with momentum, weight decay, sparsity and centering, and monitors.

pub mod autoencoder;
pub mod backprop;
pub mod dbm;
pub mod fit;
pub mod history;
pub mod lista;
pub mod net;
pub mod optim;
pub mod rbm;
pub mod sparse;
pub mod stack;

pub use fit::{Objective, Step, Trainer};
pub use history::{EpochRecord, History};
