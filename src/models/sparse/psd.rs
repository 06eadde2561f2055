//! Predictive sparse decomposition (Kavukcuoglu, Ranzato & LeCun 2008):
//! sparse coding with an encoder trained to predict the codes, so that at
//! test time a code is one pass.
//!
//! ```text
//! E(x, z) = ½‖x − z D‖² + λ‖z‖₁ + α‖z − F(x)‖²
//! F(x)    = g ⊙ tanh(x Wᵀ + b)            W: k x d, b and the gain g: 1 x k
//! ```
//!
//! Training alternates, per minibatch: the codes minimising E from
//! `z = F(x)` (ISTA / FISTA with the prediction term,
//! [`super::Solver::solve`] with a prior), a dictionary update for those
//! codes ([`super::DictLearner`]), and a gradient step of the encoder on
//! `mean_rows ‖F(x) − z‖²` through [`crate::autodiff`].

use crate::autodiff::{Graph, Loss, Var};
use crate::backend::{Backend, Fused, Matrix, Trans};
use crate::error::{Error, Result};
use crate::host::HostMat;

/// The encoder's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsdArch {
    pub dim: usize,
    pub atoms: usize,
}

/// The encoder's graph for one batch shape: its prediction and the loss
/// against the inferred codes (input 1).
pub struct PsdGraph {
    pub graph: Graph,
    pub prediction: Var,
    pub loss: Var,
}

impl PsdArch {
    /// Encoder parameters in graph order: `W_enc` (k x d), `b_enc`, `gain` (1 x k).
    pub fn params(&self) -> [(&'static str, (usize, usize)); 3] {
        [
            ("W_enc", (self.atoms, self.dim)),
            ("b_enc", (1, self.atoms)),
            ("gain", (1, self.atoms)),
        ]
    }

    /// `F(x)` for batches of `rows` rows. Inputs: `x` and the codes `z`.
    pub fn graph(&self, rows: usize) -> Result<PsdGraph> {
        if self.dim == 0 || self.atoms == 0 || rows == 0 {
            return Err(Error::shape(
                "PSD encoder",
                format!("{} inputs, {} atoms, {rows} rows", self.dim, self.atoms),
            ));
        }
        let mut g = Graph::new();
        let x = g.input("x", rows, self.dim);
        let z = g.input("z", rows, self.atoms);
        let [(wn, ws), (bn, bs), (gn, gs)] = self.params();
        let w = g.param(wn, ws.0, ws.1);
        let b = g.param(bn, bs.0, bs.1);
        let gain = g.param(gn, gs.0, gs.1);
        let pre = g.matmul(x, Trans::N, w, Trans::T)?;
        let pre = g.add_row(pre, b)?;
        let h = g.tanh(pre);
        let prediction = g.mul_row(h, gain)?;
        let loss = g.loss(Loss::SquaredError, prediction, z)?;
        Ok(PsdGraph {
            graph: g,
            prediction,
            loss,
        })
    }

    /// A starting encoder: `W = D` (so `x Wᵀ` correlates with the atoms),
    /// zero biases and gains `gain` (small: a prediction near zero is the
    /// safe first guess of a sparse code).
    pub fn initial(&self, dict: &HostMat, gain: f32) -> Result<[HostMat; 3]> {
        if dict.shape() != (self.atoms, self.dim) {
            return Err(Error::shape(
                "PSD encoder",
                format!(
                    "dictionary {:?}, want {}x{}",
                    dict.shape(),
                    self.atoms,
                    self.dim
                ),
            ));
        }
        Ok([
            dict.clone(),
            HostMat::zeros(1, self.atoms),
            HostMat::from_fn(1, self.atoms, |_, _| gain),
        ])
    }
}

/// The encoder `F` on a backend.
pub struct PsdEncoder<B: Backend> {
    pub arch: PsdArch,
    pub params: Vec<B::Mat>,
}

impl<B: Fused> PsdEncoder<B> {
    pub fn from_host(be: &B, arch: PsdArch, params: &[HostMat]) -> Result<Self> {
        super::check_params("PSD encoder", &arch.params(), params)?;
        let params = params.iter().map(|p| be.upload(p)).collect::<Result<_>>()?;
        Ok(PsdEncoder { arch, params })
    }

    pub fn bound(&self) -> Vec<&B::Mat> {
        self.params.iter().collect()
    }

    pub fn to_host(&self, be: &B) -> Result<Vec<HostMat>> {
        self.params.iter().map(|p| be.download(p)).collect()
    }

    /// `F(x)` for every row of `x`, `chunk` rows per pass.
    pub fn predict(&self, be: &B, x: &HostMat, chunk: usize) -> Result<HostMat> {
        if x.cols != self.arch.dim {
            return Err(Error::shape(
                "PSD input",
                format!(
                    "rows of {} values, the encoder reads {}",
                    x.cols, self.arch.dim
                ),
            ));
        }
        let arch = self.arch;
        super::forward_rows(be, &self.bound(), (x, chunk, arch.atoms), |rows| {
            let g = arch.graph(rows)?;
            Ok((g.graph, g.loss, g.prediction))
        })
    }

    /// The name of the first parameter that is NaN or infinite.
    pub fn first_non_finite(&self, be: &B) -> Result<Option<&'static str>> {
        for ((name, _), m) in self.arch.params().into_iter().zip(&self.params) {
            if !be.sum(m)?.is_finite() {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    pub fn shapes(&self) -> Vec<(usize, usize)> {
        self.params.iter().map(|m| m.shape()).collect()
    }
}
