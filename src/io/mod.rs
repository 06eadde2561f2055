//! Files a training run reads and writes.
//!
//! - [`recipe`]: TOML recipes (model + data + hyper-parameters), validated.
//! - [`checkpoint`]: safetensors checkpoints with everything needed to
//!   resume training exactly, written atomically.
//! - [`outdir`]: a training run's output folder, locked for the run.

pub mod checkpoint;
pub mod outdir;
pub mod recipe;

pub use checkpoint::Checkpoint;
pub use recipe::Recipe;
