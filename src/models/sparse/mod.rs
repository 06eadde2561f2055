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
pub mod infer;
pub mod lista;
pub mod psd;

pub use dict::{initial_dictionary, DictLearner, DictUpdate};
pub use infer::{
    encode_all, kkt_violation, lasso_objective, Algorithm, InferReport, Inference, Solver,
};
pub use lista::{Lista, ListaArch};
pub use psd::{PsdArch, PsdEncoder};
