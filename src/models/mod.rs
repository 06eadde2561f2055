//! Models assembled from units, energies, samplers and losses.
//!
//! - [`rbm`]: restricted Boltzmann machines with Bernoulli, Gaussian,
//!   noisy-ReLU or softmax units on either layer; Gaussian visible units may
//!   learn a variance per unit.

pub mod rbm;

pub use rbm::{Rbm, RbmHost};
