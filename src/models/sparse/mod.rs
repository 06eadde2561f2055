//! Sparse coding, predictive sparse decomposition and LISTA: the energy
//! `E(x, z) = ½‖x − z D‖² + λ‖z‖₁` shaped by a sparsity constraint
//! (`../shared/DESIGN.md`), whose minimum over the code `z` is an
//! iterative inference.
//!
//! - [`infer`]: batched ISTA / FISTA on the backend, with stopping rules,
//!   warm starts and non-negative codes; host checks in f64 (the lasso
//!   objective and its KKT conditions).
//! - [`dict`]: dictionary learning (SGD with unit-norm atoms, or Mairal et
//!   al.'s online block-coordinate update).
//! - [`psd`]: PSD's encoder `F(x) = g ⊙ tanh(x Wᵀ + b)`.
//! - [`lista`]: the unrolled, learned ISTA.
//!
//! Rows are examples; a dictionary holds its atoms as rows (k x d, as
//! scikit-learn's `components_`), so a reconstruction is `z D`.
//!
//! ```
//! use ebmkit::models::sparse::{Inference, Solver};
//! use ebmkit::prelude::*;
//! # fn main() -> ebmkit::Result<()> {
//! let be = Cpu::new();
//! // Two orthonormal atoms: the lasso codes are the shrunk correlations.
//! let d = be.upload(&HostMat::new(2, 2, vec![1.0, 0.0, 0.0, 1.0])?)?;
//! let x = be.upload(&HostMat::new(1, 2, vec![0.5, -0.05])?)?;
//! let mut z = be.zeros(1, 2)?;
//! let mut solver = Solver::new(&be, &d, 1)?;
//! let rep = solver.solve(&be, (&d, &x), &mut z, &Inference::converge(0.1, 1e-6, 100), false, None)?;
//! assert!(rep.converged);
//! let z = be.download(&z)?;
//! assert!((z.data[0] - 0.4).abs() < 1e-5 && z.data[1] == 0.0);
//! # Ok(())
//! # }
//! ```

pub mod dict;
mod host;
pub mod infer;
pub mod lista;
pub mod psd;

pub use dict::{initial_dictionary, DictLearner, DictUpdate};
pub use host::SparseHost;
pub use infer::{
    encode_all, kkt_violation, lasso_objective, Algorithm, InferReport, Inference, Solver,
};
pub use lista::{Lista, ListaArch, ListaHost};
pub use psd::{PsdArch, PsdEncoder};

use crate::backend::Fused;
use crate::error::Result;
use crate::host::HostMat;

/// How well a model codes a data set: the mean energy of its optimal codes
/// (by `inf`), their fraction of non-zero entries, how the inference ended,
/// and under PSD the energy of the encoder's codes alone.
#[derive(Clone, Debug)]
pub struct Score {
    pub energy: f64,
    pub nonzero: f64,
    pub report: InferReport,
    pub encoder_energy: Option<f64>,
    /// The optimal codes.
    pub codes: HostMat,
}

/// Scores `host` on the rows of `x`.
pub fn score<B: Fused>(be: &B, host: &SparseHost, x: &HostMat, inf: &Inference) -> Result<Score> {
    host.validate()?;
    let d = be.upload(&host.dict)?;
    let mut solver = Solver::new(be, &d, x.rows.clamp(1, 500))?;
    let (codes, report) = encode_all(be, &mut solver, &d, x, inf)?;
    let lambda = host.lambda as f64;
    let energy = lasso_objective(x, &host.dict, &codes, lambda)?;
    let nonzero =
        codes.data.iter().filter(|&&v| v != 0.0).count() as f64 / codes.data.len().max(1) as f64;
    let encoder_energy = match &host.encoder {
        Some(p) => {
            let arch = PsdArch {
                dim: host.dim(),
                atoms: host.atoms(),
            };
            let enc = PsdEncoder::from_host(be, arch, p)?;
            Some(lasso_objective(
                x,
                &host.dict,
                &enc.predict(be, x, 500)?,
                lambda,
            )?)
        }
        None => None,
    };
    Ok(Score {
        energy,
        nonzero,
        report,
        encoder_energy,
        codes,
    })
}
