//! Models assembled from units, energies, samplers and losses.
//!
//! - [`rbm`]: restricted Boltzmann machines with Bernoulli, Gaussian,
//!   noisy-ReLU or softmax units on either layer; Gaussian visible units may
//!   learn a variance per unit.
//! - [`autoencoder`]: denoising, contractive and sparse auto-encoders,
//!   trained by backpropagation through [`crate::autodiff`].
//! - [`stack`]: layers pretrained greedily (RBMs, auto-encoders), each on
//!   the codes of the one below.
//! - [`dbn`]: a stack of RBMs read as a deep belief net (top RBM, directed
//!   layers below): generation.
//! - [`net`]: feed-forward nets of dense layers (the MLP a pretrained
//!   stack is handed to, the unrolled deep auto-encoder) and their export
//!   in PyTorch's layout.
//!
//! [`AnyModel`] is what a checkpoint of any kind holds, through the one
//! loading path ([`crate::io::checkpoint::Checkpoint::model`]).

pub mod autoencoder;
pub mod dbm;
pub mod dbn;
pub mod net;
pub mod rbm;
pub mod sparse;
pub mod stack;

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::checkpoint::{Checkpoint, Persist};

pub use autoencoder::{AeHost, AutoEncoder};
pub use dbm::{Dbm, DbmHost};
pub use net::{Net, NetHost};
pub use rbm::{Rbm, RbmHost};
pub use sparse::{ListaHost, SparseHost};
pub use stack::StackHost;

/// A model of any kind, in host memory.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyModel {
    Rbm(RbmHost),
    Autoencoder(AeHost),
    Net(NetHost),
    Stack(StackHost),
    Dbm(DbmHost),
    Sparse(SparseHost),
    Lista(ListaHost),
}

impl AnyModel {
    /// The model of a checkpoint, through its kind's validation hook.
    pub fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<AnyModel> {
        match ck.kind.as_str() {
            RbmHost::KIND => Ok(AnyModel::Rbm(ck.model(origin)?)),
            AeHost::KIND => Ok(AnyModel::Autoencoder(ck.model(origin)?)),
            NetHost::KIND => Ok(AnyModel::Net(ck.model(origin)?)),
            StackHost::KIND => Ok(AnyModel::Stack(ck.model(origin)?)),
            DbmHost::KIND => Ok(AnyModel::Dbm(ck.model(origin)?)),
            SparseHost::KIND => Ok(AnyModel::Sparse(ck.model(origin)?)),
            ListaHost::KIND => Ok(AnyModel::Lista(ck.model(origin)?)),
            other => Err(Error::format(
                origin,
                format!(
                    "model kind '{other}' is not one this version knows (rbm, autoencoder, net, \
                     stack, dbm, sparse, lista)"
                ),
            )),
        }
    }

    /// The layers a net starts from when this model is its pretrained
    /// stack: encoders (and, for a deep auto-encoder, their decoders).
    pub fn pretrained(&self, with_decoders: bool) -> Result<net::Pretrained> {
        match self {
            AnyModel::Rbm(m) => net::Pretrained::of(&[m], with_decoders),
            AnyModel::Autoencoder(m) => net::Pretrained::of(&[m], with_decoders),
            AnyModel::Stack(s) => s.pretrained(with_decoders),
            AnyModel::Dbm(d) => {
                if with_decoders {
                    return Err(Error::value(
                        "pretrained net",
                        "a DBM has no decoders to unroll into a deep auto-encoder",
                    ));
                }
                Ok(net::Pretrained {
                    encoders: d.net_layers()?,
                    decoders: vec![],
                })
            }
            AnyModel::Lista(_) => Err(Error::value(
                "pretrained net",
                "a LISTA network is a recurrent code predictor, not a stack of dense layers",
            )),
            AnyModel::Sparse(m) => net::Pretrained::of(&[m], with_decoders),
            AnyModel::Net(n) => {
                if with_decoders {
                    return Err(Error::value(
                        "pretrained net",
                        "a net has no decoders to unroll: start a deep auto-encoder from a stack",
                    ));
                }
                // Its hidden layers; the output layer is made afresh.
                let k = n.layers.len().saturating_sub(1);
                Ok(net::Pretrained {
                    encoders: n.layers[..k].to_vec(),
                    decoders: vec![],
                })
            }
        }
    }

    /// The model as a feed-forward net: a net as it is, a layer-wise model
    /// or stack as its encoder layers (the features a supervised net would
    /// start from), with a sigmoid output when the top layer is sigmoid.
    pub fn as_net(&self) -> Result<NetHost> {
        if let AnyModel::Net(n) = self {
            return Ok(n.clone());
        }
        let layers = self.pretrained(false)?.encoders;
        let sigmoid = layers
            .last()
            .is_some_and(|l| l.act == crate::autodiff::Activation::Sigmoid);
        let net = NetHost {
            layers,
            output: if sigmoid {
                net::Output::Sigmoid
            } else {
                net::Output::Linear
            },
        };
        net.validate()?;
        Ok(net)
    }

    /// Loads a checkpoint file and its model.
    pub fn load(path: &Path) -> Result<(AnyModel, Checkpoint)> {
        let ck = Checkpoint::load(path)?;
        Ok((AnyModel::from_checkpoint(&ck, path)?, ck))
    }
}
