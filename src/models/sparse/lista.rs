//! LISTA (Gregor & LeCun 2010): ISTA unrolled into a T-step network whose
//! matrices are learned to reach the optimal codes of a fixed dictionary in
//! few steps.
//!
//! ```text
//! b   = x W_eᵀ                      W_e: k x d   (ISTA: D / L)
//! z_1 = h_θ(b)                      θ: 1 x k     (ISTA: λ / L for every unit)
//! z_t = h_θ(b + z_{t−1} S)          S: k x k     (ISTA: I − D Dᵀ / L), t = 2..T
//! loss = mean_rows ‖z_T − z*‖²      z*: the optimal codes
//! ```
//!
//! with `h_θ(c) = sign(c) max(|c| − θ, 0)`, written with the graph's own ops
//! (`|·|`, a row bias, ReLU, sign), so the gradient for θ comes from the one
//! mechanism, and `S`, read by every step, sums its gradient over the steps.
//! Started from the ISTA values, a T-step LISTA computes exactly the codes
//! of T ISTA iterations from zero; training can only improve on them.

use crate::autodiff::{Graph, Loss, Var};
use crate::backend::{Backend, Fused, Matrix, Trans, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::{in_file, Checkpoint, Parts, Persist, Tensor};
use std::path::Path;

/// The shape of a LISTA network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListaArch {
    /// Values per input row.
    pub dim: usize,
    /// Code units (the dictionary's atoms).
    pub atoms: usize,
    /// Unrolled steps T (at least 1).
    pub steps: usize,
}

/// The graph of one batch shape: its codes and its loss against the
/// target codes (input 1).
pub struct ListaGraph {
    pub graph: Graph,
    pub codes: Var,
    pub loss: Var,
}

/// `sign(c) ⊙ max(|c| − θ, 0)` with θ a 1 x cols row, from graph ops.
pub fn shrink_by(g: &mut Graph, c: Var, theta: Var) -> Result<Var> {
    let a = g.abs(c);
    let neg = g.map(Unary::Neg, theta);
    let shifted = g.add_row(a, neg)?;
    let mag = g.relu(shifted);
    let s = g.map(Unary::Sign, c);
    g.mul(mag, s)
}

impl ListaArch {
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::value(
                "model.steps",
                "LISTA needs T >= 1 unrolled steps (T = 0 computes no code)",
            ));
        }
        if self.dim == 0 || self.atoms == 0 {
            return Err(Error::shape(
                "LISTA",
                format!("{} inputs, {} atoms", self.dim, self.atoms),
            ));
        }
        Ok(())
    }

    /// Parameters in graph order: `W_e` (k x d), `S` (k x k), `theta` (1 x k).
    pub fn params(&self) -> [(&'static str, (usize, usize)); 3] {
        [
            ("W_e", (self.atoms, self.dim)),
            ("S", (self.atoms, self.atoms)),
            ("theta", (1, self.atoms)),
        ]
    }

    /// The network for batches of `rows` rows. Inputs: `x` (rows x d) and
    /// the target codes (rows x k).
    pub fn graph(&self, rows: usize) -> Result<ListaGraph> {
        self.validate()?;
        let mut g = Graph::new();
        let x = g.input("x", rows, self.dim);
        let target = g.input("z_star", rows, self.atoms);
        let [(we_n, we), (s_n, s), (t_n, t)] = self.params();
        let we = g.param(we_n, we.0, we.1);
        let s = g.param(s_n, s.0, s.1);
        let theta = g.param(t_n, t.0, t.1);
        let b = g.matmul(x, Trans::N, we, Trans::T)?;
        let mut z = shrink_by(&mut g, b, theta)?;
        for _ in 1..self.steps {
            let zs = g.matmul(z, Trans::N, s, Trans::N)?;
            let c = g.add(b, zs)?;
            z = shrink_by(&mut g, c, theta)?;
        }
        let loss = g.loss(Loss::SquaredError, z, target)?;
        Ok(ListaGraph {
            graph: g,
            codes: z,
            loss,
        })
    }

    /// The ISTA values of the parameters for `dict` (k x d), `λ` and the
    /// Lipschitz constant `lipschitz` of `D Dᵀ`.
    pub fn ista_params(&self, dict: &HostMat, lambda: f32, lipschitz: f32) -> Result<[HostMat; 3]> {
        if dict.shape() != (self.atoms, self.dim) {
            return Err(Error::shape(
                "LISTA from a dictionary",
                format!(
                    "dictionary {:?}, the network has {} atoms of {} values",
                    dict.shape(),
                    self.atoms,
                    self.dim
                ),
            ));
        }
        if !(lipschitz.is_finite() && lipschitz > 0.0) {
            return Err(Error::value(
                "lipschitz",
                format!("{lipschitz} must be > 0"),
            ));
        }
        let k = self.atoms;
        let inv = 1.0 / lipschitz;
        let we = HostMat::from_fn(k, self.dim, |i, c| dict.get(i, c) * inv);
        let mut s = HostMat::zeros(k, k);
        for i in 0..k {
            for j in 0..k {
                let gij: f32 = dict
                    .row(i)
                    .iter()
                    .zip(dict.row(j))
                    .map(|(a, b)| a * b)
                    .sum();
                s.data[i * k + j] = (i == j) as u8 as f32 - gij * inv;
            }
        }
        let theta = HostMat::from_fn(1, k, |_, _| lambda * inv);
        Ok([we, s, theta])
    }
}

/// A LISTA network on a backend.
pub struct Lista<B: Backend> {
    pub arch: ListaArch,
    /// `W_e`, `S`, `theta`.
    pub params: Vec<B::Mat>,
}

impl<B: Fused> Lista<B> {
    pub fn from_host(be: &B, arch: ListaArch, params: &[HostMat]) -> Result<Self> {
        arch.validate()?;
        super::check_params("LISTA", &arch.params(), params)?;
        let params = params.iter().map(|p| be.upload(p)).collect::<Result<_>>()?;
        Ok(Lista { arch, params })
    }

    pub fn bound(&self) -> Vec<&B::Mat> {
        self.params.iter().collect()
    }

    pub fn to_host(&self, be: &B) -> Result<Vec<HostMat>> {
        self.params.iter().map(|p| be.download(p)).collect()
    }

    /// The codes of every row of `x` (host), `chunk` rows per pass.
    pub fn encode(&self, be: &B, x: &HostMat, chunk: usize) -> Result<HostMat> {
        if x.cols != self.arch.dim {
            return Err(Error::shape(
                "LISTA input",
                format!(
                    "rows of {} values, the network reads {}",
                    x.cols, self.arch.dim
                ),
            ));
        }
        let arch = self.arch;
        super::forward_rows(be, &self.bound(), (x, chunk, arch.atoms), |rows| {
            let g = arch.graph(rows)?;
            Ok((g.graph, g.loss, g.codes))
        })
    }
}

/// `‖a − b‖² / ‖b‖²` over all rows: the code prediction error of the
/// learned-inference table.
pub fn relative_error(a: &HostMat, b: &HostMat) -> Result<f64> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            "code prediction error",
            format!("{:?} against {:?}", a.shape(), b.shape()),
        ));
    }
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.data.iter().zip(&b.data) {
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    Ok(num / den.max(f64::MIN_POSITIVE))
}

impl<B: Backend> Lista<B> {
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

/// A LISTA network in host memory with the dictionary it learned to code
/// for (kept so its codes can be scored by the dictionary's energy).
#[derive(Clone, Debug, PartialEq)]
pub struct ListaHost {
    pub steps: usize,
    /// `W_e` (k x d), `S` (k x k), `theta` (1 x k).
    pub params: [HostMat; 3],
    /// The dictionary (k x d) and its λ.
    pub dict: HostMat,
    pub lambda: f32,
}

impl ListaHost {
    pub fn arch(&self) -> ListaArch {
        ListaArch {
            dim: self.dict.cols,
            atoms: self.dict.rows,
            steps: self.steps,
        }
    }

    /// Finite values, shapes that agree, `steps ≥ 1`, a usable dictionary.
    pub fn validate(&self) -> Result<()> {
        let arch = self.arch();
        arch.validate()?;
        super::dict::check_dictionary(&self.dict, "dictionary D")?;
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(Error::value(
                "lambda",
                format!("{} must be finite and > 0", self.lambda),
            ));
        }
        super::check_params("LISTA", &arch.params(), &self.params)?;
        Ok(())
    }
}

impl Persist for ListaHost {
    const KIND: &'static str = "lista";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        let [we, s, theta] = &self.params;
        p.tensors.insert("W_e".into(), Tensor::matrix(we.clone()));
        p.tensors.insert("S".into(), Tensor::matrix(s.clone()));
        p.tensors
            .insert("theta".into(), Tensor::vector(theta.clone()));
        p.tensors
            .insert("D".into(), Tensor::matrix(self.dict.clone()));
        p.meta.insert("steps".into(), self.steps.to_string());
        p.meta.insert("lambda".into(), self.lambda.to_string());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let steps: usize = p
            .meta("steps", origin)?
            .parse()
            .map_err(|_| Error::format(origin, "metadata 'steps' is not a step count"))?;
        let lambda: f32 = p
            .meta("lambda", origin)?
            .parse()
            .map_err(|_| Error::format(origin, "metadata 'lambda' is not a number"))?;
        let host = ListaHost {
            steps,
            params: [
                p.tensor("W_e", 2, origin)?.clone(),
                p.tensor("S", 2, origin)?.clone(),
                p.tensor("theta", 1, origin)?.clone(),
            ],
            dict: p.tensor("D", 2, origin)?.clone(),
            lambda,
        };
        host.validate().map_err(|e| in_file(origin, e))?;
        Ok(host)
    }
}
