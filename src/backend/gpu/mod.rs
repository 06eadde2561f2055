//! The wgpu backend: f32 matrices in storage buffers, WGSL kernels from
//! `shaders/` (each with a CPU twin in `backend::cpu`).
//!
//! A GPU is fast here only if the host stays out of its way: the loops this
//! crate runs (block Gibbs sampling, annealing) issue many small kernels,
//! so the cost to beat is per dispatch, not per flop. Hence:
//! - Pipelines are compiled lazily, once per kernel (and per GEMM variant),
//!   and cached; bind groups are cached by (kernel layout, buffer ids) and
//!   dropped when a matrix they name is dropped.
//! - Every dispatch's parameters go into one slot of a CPU-side copy of a
//!   uniform ring and are bound with a dynamic offset. The ring is written
//!   with one `queue.write_buffer` just before its batch is submitted, so a
//!   slot is never reused inside an unsubmitted command buffer.
//! - Dispatches are recorded into one long compute pass and submitted every
//!   [`BATCH_OPS`] ops, or when a result is read back. Only `download`, `sum`,
//!   `sync` (and `philox_words`, `bench_gemm`) wait for the device.
//! - `gather_rows` indices go into a per-batch index arena written the same
//!   way as the ring.
//!
//! Grids larger than 65535 workgroups use a second grid dimension.
//!
//! The files follow what changes together: `device` (adapter, device,
//! memory), `recorder` (batching and the caches), `kernels` (what each WGSL
//! file expects), `gemm` (the tiled product and its plan), `ops` (the
//! [`Backend`](super::Backend) ops) and `fused` (the [`Fused`](super::Fused)
//! ops).

mod device;
mod fused;
mod gemm;
mod kernels;
mod ops;
mod recorder;

#[doc(hidden)]
pub use device::Guarded;
pub use device::{Gpu, GpuMat, GPU_API_ENV};
pub use recorder::BATCH_OPS;
