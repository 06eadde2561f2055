//! Samplers for two-layer energies ([`crate::energy::Bipartite`]).
//!
//! - [`gibbs::Chains`]: block Gibbs chains (v → h → v ...), used from data
//!   for CD-k and kept across updates for persistent CD (Tieleman 2008).
//! - [`fast::FastWeights`]: the fast-weights overlay of FPCD (Tieleman &
//!   Hinton 2009): chains sample from W + W_fast, the fast weights learn
//!   with a large rate and decay quickly.
//! - [`tempering::Tempering`]: parallel tempering (Desjardins et al. 2010):
//!   chains at inverse temperatures 1 = β_0 > ... > β_{T-1}, swaps between
//!   neighbours accepted by Metropolis, all on the device.
//!
//! Every sampler allocates its buffers once and reads nothing back.

pub mod fast;
pub mod gibbs;
pub mod tempering;

pub use fast::FastWeights;
pub use gibbs::Chains;
pub use tempering::Tempering;
