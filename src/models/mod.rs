//! Models assembled from units, energies, samplers and losses.
//!
//! - [`rbm`]: restricted Boltzmann machines with Bernoulli, Gaussian or
//!   noisy-ReLU units on either layer.

pub mod rbm;

pub use rbm::{Rbm, RbmHost};
