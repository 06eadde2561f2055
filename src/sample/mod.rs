//! Samplers for two-layer energies ([`crate::energy::Bipartite`]).
//!
//! - [`gibbs::Chains`]: block Gibbs chains (v → h → v ...), used from data
//!   for CD-k and kept across updates for persistent CD (Tieleman 2008).
//! - [`tempering::Tempering`]: parallel tempering (Desjardins et al. 2010):
//!   chains at inverse temperatures 1 = β_0 > ... > β_{T-1}, swaps between
//!   neighbours accepted by Metropolis, all on the device.
//!
//! Every sampler allocates its buffers once and reads nothing back. (The
//! fast-weights chains of FPCD sample a model that training keeps beside
//! the real one, so they live with the negative phases in `train::rbm`.)

pub mod gibbs;
pub mod tempering;

pub use gibbs::Chains;
pub use tempering::Tempering;
