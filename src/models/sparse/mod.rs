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

/// Checks parameters against their declared `(name, shape)` list: the
/// count, each shape, and (for what comes from a file) finite values.
pub(crate) fn check_params(
    what: &'static str,
    decl: &[(&'static str, (usize, usize))],
    params: &[HostMat],
) -> Result<()> {
    if params.len() != decl.len() {
        return Err(crate::error::Error::shape(
            what,
            format!("{} parameters, want {}", params.len(), decl.len()),
        ));
    }
    for ((name, shape), m) in decl.iter().zip(params) {
        if m.shape() != *shape {
            return Err(crate::error::Error::shape(
                what,
                format!("{name} is {:?}, want {shape:?}", m.shape()),
            ));
        }
        if m.data.iter().any(|v| !v.is_finite()) {
            return Err(crate::error::Error::value(
                *name,
                "holds a NaN or infinite value",
            ));
        }
    }
    Ok(())
}

/// The value of node `out` of a two-input graph (rows, a target that only
/// the loss reads) for every row of `x`, `chunk` rows per forward pass:
/// how PSD's encoder and LISTA code a data set. `graph(rows)` builds the
/// graph for a batch shape and names its loss and output nodes.
pub(crate) fn forward_rows<B: Fused>(
    be: &B,
    params: &[&B::Mat],
    (x, chunk, width): (&HostMat, usize, usize),
    graph: impl Fn(
        usize,
    ) -> Result<(
        crate::autodiff::Graph,
        crate::autodiff::Var,
        crate::autodiff::Var,
    )>,
) -> Result<HostMat> {
    use crate::autodiff::{Bindings, Plan};
    let mut out = HostMat::zeros(x.rows, width);
    let mut planned: Option<(usize, crate::autodiff::Var, Plan<B>, B::Mat)> = None;
    let mut start = 0;
    while start < x.rows {
        let rows = chunk.max(1).min(x.rows - start);
        if planned.as_ref().map(|p| p.0) != Some(rows) {
            let (g, loss, node) = graph(rows)?;
            let p = Plan::new(be, &g, loss, &[node])?;
            planned = Some((rows, node, p, be.zeros(rows, width)?));
        }
        let (_, node, p, zero) = planned.as_mut().expect("planned above");
        let xb = be.upload(&x.select_rows(&(start..start + rows).collect::<Vec<_>>())?)?;
        let inputs = [&xb, &*zero];
        // The graphs draw nothing: any stream will do.
        p.forward(
            be,
            &Bindings {
                params,
                inputs: &inputs,
            },
            &mut crate::rng::RngStream::new(0, 0),
        )?;
        let z = be.download(p.value(*node)?)?;
        out.data[start * width..(start + rows) * width].copy_from_slice(&z.data);
        start += rows;
    }
    Ok(out)
}
