//! Models assembled from units, energies, samplers and losses.
//!
//! - [`rbm`]: restricted Boltzmann machines with Bernoulli, Gaussian,
//!   noisy-ReLU or softmax units on either layer; Gaussian visible units may
//!   learn a variance per unit.
//! - [`autoencoder`]: denoising, contractive and sparse auto-encoders,
//!   trained by backpropagation through [`crate::autodiff`].
//!
//! [`AnyModel`] is what a checkpoint of any kind holds, through the one
//! loading path ([`crate::io::checkpoint::Checkpoint::model`]).

pub mod autoencoder;
pub mod rbm;

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::checkpoint::{Checkpoint, Persist};

pub use autoencoder::{AeHost, AutoEncoder};
pub use rbm::{Rbm, RbmHost};

/// A model of any kind, in host memory.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyModel {
    Rbm(RbmHost),
    Autoencoder(AeHost),
}

impl AnyModel {
    /// The model of a checkpoint, through its kind's validation hook.
    pub fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<AnyModel> {
        match ck.kind.as_str() {
            RbmHost::KIND => Ok(AnyModel::Rbm(ck.model(origin)?)),
            AeHost::KIND => Ok(AnyModel::Autoencoder(ck.model(origin)?)),
            other => Err(Error::format(
                origin,
                format!("model kind '{other}' is not one this version knows (rbm, autoencoder)"),
            )),
        }
    }

    /// Loads a checkpoint file and its model.
    pub fn load(path: &Path) -> Result<(AnyModel, Checkpoint)> {
        let ck = Checkpoint::load(path)?;
        Ok((AnyModel::from_checkpoint(&ck, path)?, ck))
    }
}
