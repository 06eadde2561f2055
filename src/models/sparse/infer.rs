//! Batched lasso inference: ISTA and FISTA (Beck & Teboulle 2009) for a
//! whole minibatch at once, as GEMMs and elementwise ops on the backend.
//!
//! For rows `x` and a dictionary `D` (atoms as rows, k x d), each row's
//! code minimises
//!
//! ```text
//! f(z) = ½‖x − z D‖² + α‖z − p‖² + λ‖z‖₁        (α = 0 without a prediction p)
//! ```
//!
//! With `G = D Dᵀ` and `c = x Dᵀ + 2α p` precomputed, the smooth part's
//! gradient is `z G + 2α z − c`, Lipschitz with `L' = L + 2α`, `L` the largest
//! eigenvalue of `G`. One proximal-gradient step is then
//!
//! ```text
//! z ← shrink((1 − 2α/L') y + c/L' − y G/L',  λ/L')
//! ```
//!
//! (ISTA: `y = z`; FISTA: `y` the momentum point). Nothing is read back
//! between the checks that the stopping rules ask for.

use crate::backend::{Backend, Matrix, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;

/// Which proximal-gradient iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Iterative shrinkage-thresholding: monotone, O(1/t).
    Ista,
    /// ISTA with Nesterov momentum: O(1/t²), not monotone.
    Fista,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ista => "ista",
            Algorithm::Fista => "fista",
        }
    }
    pub fn parse(s: &str, what: &str) -> Result<Algorithm> {
        match s {
            "ista" => Ok(Algorithm::Ista),
            "fista" => Ok(Algorithm::Fista),
            other => Err(Error::value(
                what,
                format!("'{other}' is not an inference algorithm (ista, fista)"),
            )),
        }
    }
}

/// How codes are inferred and when the iteration stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inference {
    pub algorithm: Algorithm,
    /// The weight of the L1 penalty.
    pub lambda: f32,
    /// The iteration cap.
    pub max_iters: usize,
    /// Stop when the mean objective falls by less than this fraction of
    /// itself between two checks (0: not this rule).
    pub tol_objective: f64,
    /// Stop when the optimality residual is at most this (0: not this rule).
    pub tol_residual: f64,
    /// Iterations between checks of the stopping rules (each check reads
    /// back a few numbers).
    pub check_every: usize,
    /// Codes constrained to be non-negative.
    pub nonneg: bool,
    /// Compute the objective and residual at the end even when no rule
    /// needs them.
    pub report: bool,
}

impl Inference {
    /// `iters` iterations of `algorithm`, no checks, no read-back.
    pub fn fixed(algorithm: Algorithm, lambda: f32, iters: usize) -> Inference {
        Inference {
            algorithm,
            lambda,
            max_iters: iters,
            tol_objective: 0.0,
            tol_residual: 0.0,
            check_every: 10,
            nonneg: false,
            report: false,
        }
    }

    /// FISTA until the residual is at most `tol` (or `max_iters`).
    pub fn converge(lambda: f32, tol: f64, max_iters: usize) -> Inference {
        Inference {
            tol_residual: tol,
            report: true,
            ..Inference::fixed(Algorithm::Fista, lambda, max_iters)
        }
    }

    /// Rejects values that would make the iteration meaningless.
    pub fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(Error::value(
                "lambda",
                format!("{} must be finite and > 0", self.lambda),
            ));
        }
        for (name, v) in [
            ("tol_objective", self.tol_objective),
            ("tol_residual", self.tol_residual),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::value(name, format!("{v} must be finite and >= 0")));
            }
        }
        if self.check_every == 0 {
            return Err(Error::value("check_every", "must be at least 1"));
        }
        Ok(())
    }

    fn checks(&self) -> bool {
        self.tol_objective > 0.0 || self.tol_residual > 0.0
    }
}

/// How an inference ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InferReport {
    pub iters: usize,
    /// The mean objective per row, when it was computed.
    pub objective: Option<f64>,
    /// `L'·max|z − prox(z − ∇/L')|`, zero exactly at the optimum, when it
    /// was computed.
    pub residual: Option<f64>,
    /// Whether a stopping rule was met before the cap.
    pub converged: bool,
}

impl InferReport {
    /// The warning a caller prints when a tolerance was asked for and the
    /// cap came first.
    pub fn warning(&self, inf: &Inference) -> Option<String> {
        if !inf.checks() || self.converged {
            return None;
        }
        Some(format!(
            "sparse inference did not converge in {} iterations (residual {:.3e}, tol_residual \
             {:.1e}; objective {:.6}, tol_objective {:.1e}): raise max_iters or loosen the \
             tolerance",
            self.iters,
            self.residual.unwrap_or(f64::NAN),
            inf.tol_residual,
            self.objective.unwrap_or(f64::NAN),
            inf.tol_objective
        ))
    }
}

/// The largest eigenvalue of a symmetric positive semi-definite `g` (k x
/// k, host), by power iteration in f64 from `start` (updated to the
/// eigenvector, so a dictionary that changed a little converges in a few
/// steps).
pub fn largest_eigenvalue(g: &HostMat, start: &mut Vec<f64>) -> f64 {
    let k = g.rows;
    if start.len() != k || start.iter().all(|&v| v == 0.0) {
        // Not an eigenvector of anything in particular.
        *start = (0..k).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
    }
    let mut v = start.clone();
    let mut w = vec![0.0; k];
    let mut lambda = 0.0f64;
    for _ in 0..1000 {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        for (i, wi) in w.iter_mut().enumerate() {
            let row = g.row(i);
            *wi = row.iter().zip(&v).map(|(&a, &b)| a as f64 * b).sum();
        }
        // The Rayleigh quotient approaches the top eigenvalue from below.
        let next: f64 = w.iter().zip(&v).map(|(a, b)| a * b).sum();
        std::mem::swap(&mut v, &mut w);
        let done = (next - lambda).abs() <= 1e-9 * next.abs();
        lambda = next;
        if done {
            break;
        }
    }
    *start = v;
    lambda
}

/// The buffers and the Gram matrix of inference for batches of `rows` rows
/// against one dictionary; [`set_dictionary`](Solver::set_dictionary)
/// after the dictionary changes.
pub struct Solver<B: Backend> {
    rows: usize,
    atoms: usize,
    dim: usize,
    gram: B::Mat,
    lipschitz: f32,
    eigvec: Vec<f64>,
    /// `x Dᵀ + 2α p`.
    lin: B::Mat,
    y: B::Mat,
    zprev: B::Mat,
    u: B::Mat,
    r: B::Mat,
    col: B::Mat,
}

impl<B: Backend> Solver<B> {
    /// A solver for `rows` rows at a time against `dict` (k atoms x d).
    pub fn new(be: &B, dict: &B::Mat, rows: usize) -> Result<Self> {
        let (k, d) = dict.shape();
        if k == 0 || d == 0 || rows == 0 {
            return Err(Error::shape(
                "sparse inference",
                format!("a {k}x{d} dictionary for batches of {rows} rows"),
            ));
        }
        let mut s = Solver {
            rows,
            atoms: k,
            dim: d,
            gram: be.zeros(k, k)?,
            lipschitz: 0.0,
            eigvec: Vec::new(),
            lin: be.zeros(rows, k)?,
            y: be.zeros(rows, k)?,
            zprev: be.zeros(rows, k)?,
            u: be.zeros(rows, k)?,
            r: be.zeros(rows, d)?,
            col: be.zeros(rows, 1)?,
        };
        s.set_dictionary(be, dict)?;
        Ok(s)
    }

    /// Recomputes `G = D Dᵀ` and its largest eigenvalue; refuses an atom of
    /// zero norm (or a non-finite one), naming it.
    pub fn set_dictionary(&mut self, be: &B, dict: &B::Mat) -> Result<()> {
        self.check_dict(dict)?;
        be.gemm(1.0, dict.n(), dict.t(), 0.0, &mut self.gram)?;
        let g = be.download(&self.gram)?;
        for i in 0..self.atoms {
            let n2 = g.get(i, i);
            if !(n2.is_finite() && n2 > 0.0) {
                return Err(Error::value(
                    "dictionary",
                    format!(
                        "atom {i} has squared norm {n2}: every atom needs a finite, non-zero norm"
                    ),
                ));
            }
        }
        let l = largest_eigenvalue(&g, &mut self.eigvec);
        // The Rayleigh quotient is at most the eigenvalue: a hair above it
        // keeps the step inside the convergence bound at no visible cost.
        self.lipschitz = (l * (1.0 + 1e-4)) as f32;
        Ok(())
    }

    fn check_dict(&self, dict: &B::Mat) -> Result<()> {
        if dict.shape() != (self.atoms, self.dim) {
            return Err(Error::shape(
                "sparse inference",
                format!(
                    "dictionary {:?}, the solver was made for {}x{}",
                    dict.shape(),
                    self.atoms,
                    self.dim
                ),
            ));
        }
        Ok(())
    }

    /// `L`, the largest eigenvalue of `D Dᵀ` (a hair above).
    pub fn lipschitz(&self) -> f32 {
        self.lipschitz
    }
    /// `D Dᵀ` on the device.
    pub fn gram(&self) -> &B::Mat {
        &self.gram
    }
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn check_batch(&self, x: &B::Mat, z: &B::Mat, prior: Option<(&B::Mat, f32)>) -> Result<()> {
        if x.shape() != (self.rows, self.dim) {
            return Err(Error::shape(
                "sparse inference",
                format!(
                    "data {:?}: the dictionary's atoms have {} values and the batch {} rows",
                    x.shape(),
                    self.dim,
                    self.rows
                ),
            ));
        }
        if z.shape() != (self.rows, self.atoms) {
            return Err(Error::shape(
                "sparse inference",
                format!("codes {:?}, want {}x{}", z.shape(), self.rows, self.atoms),
            ));
        }
        if let Some((p, a)) = prior {
            if p.shape() != z.shape() {
                return Err(Error::shape(
                    "sparse inference",
                    format!("predicted codes {:?}, want {:?}", p.shape(), z.shape()),
                ));
            }
            if !(a.is_finite() && a >= 0.0) {
                return Err(Error::value(
                    "alpha",
                    format!("{a} must be finite and >= 0"),
                ));
            }
        }
        Ok(())
    }

    /// Infers the codes `z` of `x` against `dict` (the dictionary this solver
    /// holds the Gram matrix of). With `warm`, `z` is the starting point;
    /// else it starts at zero. `prior = (p, α)` adds `α‖z − p‖²` (PSD's
    /// prediction term).
    pub fn solve(
        &mut self,
        be: &B,
        (dict, x): (&B::Mat, &B::Mat),
        z: &mut B::Mat,
        inf: &Inference,
        warm: bool,
        prior: Option<(&B::Mat, f32)>,
    ) -> Result<InferReport> {
        inf.validate()?;
        self.check_dict(dict)?;
        self.check_batch(x, z, prior)?;
        let alpha = prior.map_or(0.0, |(_, a)| a);
        let lp = self.lipschitz + 2.0 * alpha;
        let theta = inf.lambda / lp;
        be.gemm(1.0, x.n(), dict.t(), 0.0, &mut self.lin)?;
        if let Some((p, a)) = prior {
            be.axpby(2.0 * a, p, 1.0, &mut self.lin)?;
        }
        if !warm {
            be.fill(z, 0.0)?;
        }
        let fista = inf.algorithm == Algorithm::Fista;
        if fista {
            be.copy(z, &mut self.y)?;
        }
        let mut t = 1.0f64;
        let mut last_obj: Option<f64> = None;
        let mut report = InferReport {
            iters: 0,
            objective: None,
            residual: None,
            converged: false,
        };
        for it in 1..=inf.max_iters {
            // u = (1 − 2α/L') y + c/L' − y G / L'
            let y = if fista { &self.y } else { &*z };
            be.copy(y, &mut self.u)?;
            be.axpby(1.0 / lp, &self.lin, 1.0 - 2.0 * alpha / lp, &mut self.u)?;
            be.gemm(-1.0 / lp, y.n(), self.gram.n(), 1.0, &mut self.u)?;
            if fista {
                std::mem::swap(z, &mut self.zprev);
            }
            prox(be, &mut self.u, theta, inf.nonneg, z)?;
            if fista {
                let t1 = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
                let beta = ((t - 1.0) / t1) as f32;
                t = t1;
                be.copy(z, &mut self.y)?;
                be.axpby(-beta, &self.zprev, 1.0 + beta, &mut self.y)?;
            }
            report.iters = it;
            if inf.checks() && (it % inf.check_every == 0 || it == inf.max_iters) {
                let mut stop = false;
                if inf.tol_residual > 0.0 {
                    let r = self.residual(be, z, (theta, lp, alpha), inf.nonneg)?;
                    report.residual = Some(r);
                    stop |= r <= inf.tol_residual;
                }
                if inf.tol_objective > 0.0 {
                    let f = self.objective(be, (dict, x), z, inf.lambda, prior)?;
                    report.objective = Some(f);
                    if let Some(prev) = last_obj {
                        stop |= (prev - f).abs() <= inf.tol_objective * f.abs().max(1e-30);
                    }
                    last_obj = Some(f);
                }
                if stop {
                    report.converged = true;
                    break;
                }
            }
        }
        if inf.report || inf.checks() {
            if report.objective.is_none() || inf.tol_objective == 0.0 {
                report.objective = Some(self.objective(be, (dict, x), z, inf.lambda, prior)?);
            }
            if report.residual.is_none() {
                report.residual = Some(self.residual(be, z, (theta, lp, alpha), inf.nonneg)?);
            }
        }
        Ok(report)
    }

    /// `L'·max|z − prox(z − ∇f(z)/L')|` (reads back one value per row).
    fn residual(
        &mut self,
        be: &B,
        z: &B::Mat,
        (theta, lp, alpha): (f32, f32, f32),
        nonneg: bool,
    ) -> Result<f64> {
        // u = ∇ = z G + 2α z − c
        be.copy(z, &mut self.u)?;
        be.gemm(1.0, z.n(), self.gram.n(), 2.0 * alpha, &mut self.u)?;
        be.axpby(-1.0, &self.lin, 1.0, &mut self.u)?;
        // zprev = z − ∇/L' (FISTA's previous point is not needed again
        // before it is overwritten), u = prox of it, then z − u.
        be.copy(z, &mut self.zprev)?;
        be.axpby(-1.0 / lp, &self.u, 1.0, &mut self.zprev)?;
        prox(be, &mut self.zprev, theta, nonneg, &mut self.u)?;
        be.axpby(1.0, z, -1.0, &mut self.u)?;
        be.unary_inplace(Unary::Abs, &mut self.u)?;
        be.row_max(&self.u, &mut self.col)?;
        let m = be.download(&self.col)?;
        let worst = m.data.iter().fold(0.0f32, |a, &b| a.max(b));
        Ok(worst as f64 * lp as f64)
    }

    /// The mean over rows of `½‖x − zD‖² + λ‖z‖₁ (+ α‖z − p‖²)`.
    pub fn objective(
        &mut self,
        be: &B,
        (dict, x): (&B::Mat, &B::Mat),
        z: &B::Mat,
        lambda: f32,
        prior: Option<(&B::Mat, f32)>,
    ) -> Result<f64> {
        self.check_batch(x, z, prior)?;
        be.copy(x, &mut self.r)?;
        be.gemm(-1.0, z.n(), dict.n(), 1.0, &mut self.r)?;
        be.unary_inplace(Unary::Square, &mut self.r)?;
        let rec = be.sum(&self.r)? as f64;
        be.unary(Unary::Abs, z, &mut self.u)?;
        let l1 = be.sum(&self.u)? as f64;
        let mut f = 0.5 * rec + lambda as f64 * l1;
        if let Some((p, a)) = prior {
            be.copy(z, &mut self.u)?;
            be.axpby(-1.0, p, 1.0, &mut self.u)?;
            be.unary_inplace(Unary::Square, &mut self.u)?;
            f += a as f64 * be.sum(&self.u)? as f64;
        }
        Ok(f / self.rows as f64)
    }
}

/// `out = shrink(u, θ)`, or `max(u − θ, 0)` for non-negative codes (`u` is
/// scratch).
fn prox<B: Backend>(
    be: &B,
    u: &mut B::Mat,
    theta: f32,
    nonneg: bool,
    out: &mut B::Mat,
) -> Result<()> {
    if nonneg {
        be.affine(u, 1.0, -theta)?;
        be.unary(Unary::Relu, u, out)
    } else {
        be.shrink(u, theta, out)
    }
}

/// The mean over rows of the lasso objective `½‖x − zD‖² + λ‖z‖₁`, in f64
/// on the host (an independent check of what the device computed).
pub fn lasso_objective(x: &HostMat, dict: &HostMat, z: &HostMat, lambda: f64) -> Result<f64> {
    check_host(x, dict, z)?;
    let mut total = 0.0;
    for r in 0..x.rows {
        let (xr, zr) = (x.row(r), z.row(r));
        let mut rec = 0.0;
        for (c, &xv) in xr.iter().enumerate() {
            let mut v = xv as f64;
            for (a, &zv) in zr.iter().enumerate() {
                v -= zv as f64 * dict.get(a, c) as f64;
            }
            rec += v * v;
        }
        let l1: f64 = zr.iter().map(|&v| (v as f64).abs()).sum();
        total += 0.5 * rec + lambda * l1;
    }
    Ok(total / x.rows.max(1) as f64)
}

/// How far codes are from the lasso's optimality (KKT) conditions, in f64:
/// with the correlations `c_i = d_iᵀ(x − zD)`, the largest of `|c_i − λ
/// sign z_i|` on the support and `max(|c_i| − λ, 0)` off it (for
/// non-negative codes, `max(c_i − λ, 0)` off it), over all rows and atoms.
pub fn kkt_violation(
    x: &HostMat,
    dict: &HostMat,
    z: &HostMat,
    lambda: f64,
    nonneg: bool,
) -> Result<f64> {
    check_host(x, dict, z)?;
    let mut worst = 0.0f64;
    for r in 0..x.rows {
        let zr = z.row(r);
        let resid: Vec<f64> = (0..x.cols)
            .map(|c| {
                x.get(r, c) as f64
                    - zr.iter()
                        .enumerate()
                        .map(|(a, &zv)| zv as f64 * dict.get(a, c) as f64)
                        .sum::<f64>()
            })
            .collect();
        for (a, &zv) in zr.iter().enumerate() {
            let c: f64 = dict
                .row(a)
                .iter()
                .zip(&resid)
                .map(|(&d, e)| d as f64 * e)
                .sum();
            let v = if zv != 0.0 {
                (c - lambda * (zv as f64).signum()).abs()
            } else if nonneg {
                (c - lambda).max(0.0)
            } else {
                (c.abs() - lambda).max(0.0)
            };
            worst = worst.max(v);
        }
    }
    Ok(worst)
}

fn check_host(x: &HostMat, dict: &HostMat, z: &HostMat) -> Result<()> {
    if x.cols != dict.cols || z.cols != dict.rows || z.rows != x.rows {
        return Err(Error::shape(
            "lasso objective",
            format!(
                "data {:?}, dictionary {:?}, codes {:?}",
                x.shape(),
                dict.shape(),
                z.shape()
            ),
        ));
    }
    Ok(())
}

/// Codes of every row of `x` (host), in batches of the solver's rows (the
/// last one padded with zero rows); returns the codes and the worst report.
pub fn encode_all<B: Backend>(
    be: &B,
    solver: &mut Solver<B>,
    dict: &B::Mat,
    x: &HostMat,
    inf: &Inference,
) -> Result<(HostMat, InferReport)> {
    let (n, bs, k) = (x.rows, solver.rows, solver.atoms);
    if x.cols != solver.dim {
        return Err(Error::shape(
            "sparse inference",
            format!(
                "data with {} values per row, the dictionary's atoms have {}",
                x.cols, solver.dim
            ),
        ));
    }
    let mut codes = HostMat::zeros(n, k);
    let mut xb = be.zeros(bs, x.cols)?;
    let mut zb = be.zeros(bs, k)?;
    let mut worst = InferReport {
        iters: 0,
        objective: None,
        residual: None,
        converged: true,
    };
    let mut start = 0;
    while start < n {
        let take = bs.min(n - start);
        let mut host = HostMat::zeros(bs, x.cols);
        host.data[..take * x.cols]
            .copy_from_slice(&x.data[start * x.cols..(start + take) * x.cols]);
        be.write(&mut xb, &host)?;
        let rep = solver.solve(be, (dict, &xb), &mut zb, inf, false, None)?;
        let z = be.download(&zb)?;
        codes.data[start * k..(start + take) * k].copy_from_slice(&z.data[..take * k]);
        worst.iters = worst.iters.max(rep.iters);
        worst.converged &= rep.converged || !inf.checks();
        worst.residual = match (worst.residual, rep.residual) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        start += take;
    }
    Ok((codes, worst))
}
