//! An auto-encoder's parameters in host memory: what checkpoints hold and
//! what models are built from.

use super::Arch;
use crate::error::{Error, Result};
use crate::host::HostMat;

/// The parameters of an auto-encoder in host memory, in graph order
/// (`W`, (`W_dec`), `b_h`, `b_v`; see [`Arch::params`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AeHost {
    pub arch: Arch,
    pub params: Vec<HostMat>,
}

impl AeHost {
    /// The parameter `name` (`W`, `W_dec`, `b_h`, `b_v`).
    pub fn param(&self, name: &str) -> Option<&HostMat> {
        self.arch
            .params()
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| &self.params[i])
    }

    /// The decoder's weights, n_visible x n_hidden (`W` when tied).
    pub fn decoder_weights(&self) -> &HostMat {
        self.param("W_dec").unwrap_or(&self.params[0])
    }

    /// The one check of an auto-encoder's tensors: non-empty layers, every
    /// tensor of the shape its architecture implies, every value finite.
    /// Errors name the tensor.
    pub fn validate(&self) -> Result<()> {
        let a = &self.arch;
        if a.n_visible == 0 || a.n_hidden == 0 {
            return Err(Error::shape(
                "autoencoder parameters",
                format!(
                    "{} visible x {} hidden: both layers need at least one unit",
                    a.n_visible, a.n_hidden
                ),
            ));
        }
        let want = a.params();
        if want.len() != self.params.len() {
            return Err(Error::shape(
                "autoencoder parameters",
                format!(
                    "{} tensors for a {} auto-encoder, which has {}",
                    self.params.len(),
                    if a.tied { "tied" } else { "untied" },
                    want.len()
                ),
            ));
        }
        for ((name, shape), m) in want.iter().zip(&self.params) {
            if m.shape() != *shape {
                return Err(Error::shape(
                    "autoencoder parameters",
                    format!(
                        "tensor '{name}' is {}x{}, expected {}x{} ({} visible, {} hidden)",
                        m.rows, m.cols, shape.0, shape.1, a.n_visible, a.n_hidden
                    ),
                ));
            }
            if let Some(i) = m.data.iter().position(|x| !x.is_finite()) {
                return Err(Error::value(
                    "autoencoder parameters",
                    format!(
                        "tensor '{name}' holds {} at [{}, {}]",
                        m.data[i],
                        i / m.cols.max(1),
                        i % m.cols.max(1)
                    ),
                ));
            }
        }
        Ok(())
    }
}
