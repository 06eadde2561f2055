//! A net's layers in host memory: what checkpoints and exports hold, what
//! nets are built from and what stacks unroll into.

use crate::autodiff::Activation;
use crate::error::{Error, Result};
use crate::host::HostMat;
pub use crate::io::recipe::Output;

/// One dense layer `h = f(x W + b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// n_in x n_out.
    pub w: HostMat,
    /// 1 x n_out.
    pub b: HostMat,
    pub act: Activation,
}

/// A feed-forward net in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct NetHost {
    pub layers: Vec<Dense>,
    pub output: Output,
}

impl NetHost {
    /// Layer widths, input first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.layers.first().map(|l| l.w.rows).into_iter().collect();
        s.extend(self.layers.iter().map(|l| l.w.cols));
        s
    }

    /// The one check of a net: at least one layer, widths that chain,
    /// biases of the layers' widths, the last activation the output's,
    /// every value finite. Errors name the layer.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::shape("net layers", msg));
        if self.layers.is_empty() {
            return bad("a net needs at least one layer".into());
        }
        for (k, l) in self.layers.iter().enumerate() {
            let (i, o) = l.w.shape();
            if i == 0 || o == 0 {
                return bad(format!("layer {k}: weights {i}x{o}"));
            }
            if l.b.shape() != (1, o) {
                return bad(format!(
                    "layer {k}: bias {}x{}, expected 1x{o}",
                    l.b.rows, l.b.cols
                ));
            }
            if k > 0 && self.layers[k - 1].w.cols != i {
                return bad(format!(
                    "layer {k} takes {i} inputs, layer {} gives {}",
                    k - 1,
                    self.layers[k - 1].w.cols
                ));
            }
            for (what, m) in [("weights", &l.w), ("bias", &l.b)] {
                if let Some(p) = m.data.iter().position(|x| !x.is_finite()) {
                    return Err(Error::value(
                        "net layers",
                        format!("layer {k}: {what} hold {} at entry {p}", m.data[p]),
                    ));
                }
            }
        }
        let last = self.layers[self.layers.len() - 1].act;
        // Squared error takes the last layer's values whatever its
        // activation; the two cross-entropies need their own.
        if self.output != Output::Linear && last != self.output.activation() {
            return Err(Error::value(
                "net layers",
                format!(
                    "the last layer is {} but a {} output needs {}",
                    last.name(),
                    self.output.name(),
                    self.output.activation().name()
                ),
            ));
        }
        Ok(())
    }
}
