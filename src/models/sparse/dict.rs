//! Dictionary learning: per minibatch, infer the codes of the rows with
//! the current dictionary, then update the dictionary for those codes.
//!
//! Two updates:
//! - `Sgd`: one gradient step on `½‖X − Z D‖²` (mean over the rows), then
//!   every atom rescaled to unit norm (Olshausen & Field's scheme, as most
//!   sparse-coding code writes it);
//! - `Bcd`: the online block-coordinate update of Mairal, Bach, Ponce &
//!   Sapiro (2009), as scikit-learn's `MiniBatchDictionaryLearning` runs it:
//!   running statistics `A = Σ zᵀz`, `B = Σ xᵀz` with the same forgetting
//!   weights, then one pass over the atoms, `d_j += (b_j − D a_j) / A_jj`,
//!   projected onto the unit ball; an atom no code uses is re-drawn from a
//!   row of the batch.

use crate::backend::{Backend, Binary, Matrix, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

use super::infer::{InferReport, Inference, Solver};

/// How the dictionary follows the codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DictUpdate {
    /// A gradient step of this learning rate, then unit-norm atoms.
    Sgd { lr: f32 },
    /// Mairal et al.'s block-coordinate pass.
    Bcd,
}

/// The running statistics of the block-coordinate update.
struct Stats<B: Backend> {
    a: B::Mat,
    b: B::Mat,
}

/// A dictionary being learned, with its solver and buffers for batches of
/// one size.
pub struct DictLearner<B: Backend> {
    /// Atoms as rows (k x d).
    pub dict: B::Mat,
    pub solver: Solver<B>,
    pub codes: B::Mat,
    resid: B::Mat,
    norms: Norms<B>,
    stats: Option<Stats<B>>,
    /// Minibatches seen (the forgetting weights of `Bcd` depend on it).
    pub steps: u64,
}

impl<B: Backend> DictLearner<B> {
    /// Starts from `dict` (k x d, host) for batches of `rows` rows.
    pub fn new(be: &B, dict: &HostMat, rows: usize) -> Result<Self> {
        let d = be.upload(dict)?;
        let solver = Solver::new(be, &d, rows)?;
        Ok(DictLearner {
            codes: be.zeros(rows, dict.rows)?,
            resid: be.zeros(rows, dict.cols)?,
            norms: Norms::new(be, dict.shape())?,
            dict: d,
            solver,
            stats: None,
            steps: 0,
        })
    }

    /// One minibatch: codes by `inf`, then the update. Returns the
    /// inference's report. With `prior = (p, α)` (PSD) the codes minimise
    /// the energy with the prediction term `α‖z − p‖²`, starting from `p`.
    pub fn step(
        &mut self,
        be: &B,
        x: &B::Mat,
        inf: &Inference,
        update: DictUpdate,
        prior: Option<(&B::Mat, f32)>,
        rng: &mut RngStream,
    ) -> Result<InferReport> {
        if let Some((p, _)) = prior {
            be.copy(p, &mut self.codes)?;
        }
        let warm = prior.is_some();
        let rep = self
            .solver
            .solve(be, (&self.dict, x), &mut self.codes, inf, warm, prior)?;
        match update {
            DictUpdate::Sgd { lr } => self.sgd(be, x, lr)?,
            DictUpdate::Bcd => self.bcd(be, x, inf.nonneg, rng)?,
        }
        self.steps += 1;
        self.solver.set_dictionary(be, &self.dict)?;
        Ok(rep)
    }

    fn sgd(&mut self, be: &B, x: &B::Mat, lr: f32) -> Result<()> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::value(
                "train.lr",
                format!("{lr} must be finite and > 0"),
            ));
        }
        let n = x.rows() as f32;
        // D += (lr/n) Zᵀ (X − Z D)
        be.copy(x, &mut self.resid)?;
        be.gemm(-1.0, self.codes.n(), self.dict.n(), 1.0, &mut self.resid)?;
        be.gemm(lr / n, self.codes.t(), self.resid.n(), 1.0, &mut self.dict)?;
        self.norms.unit_rows(be, &mut self.dict)
    }

    fn bcd(&mut self, be: &B, x: &B::Mat, nonneg: bool, rng: &mut RngStream) -> Result<()> {
        let (k, d) = self.dict.shape();
        let bs = x.rows();
        if self.stats.is_none() {
            self.stats = Some(Stats {
                a: be.zeros(k, k)?,
                b: be.zeros(k, d)?,
            });
        }
        let st = self.stats.as_mut().expect("made above");
        // scikit-learn's forgetting weights (MiniBatchDictionaryLearning.
        // _update_inner_stats), so one pass matches its.
        let step = self.steps as f64;
        let bsf = bs as f64;
        let theta = if step < bsf - 1.0 {
            (step + 1.0) * bsf
        } else {
            bsf * bsf + step + 1.0 - bsf
        };
        let beta = ((theta + 1.0 - bsf) / (theta + 1.0)) as f32;
        let inv = 1.0 / bs as f32;
        be.gemm(inv, self.codes.t(), self.codes.n(), beta, &mut st.a)?;
        be.gemm(inv, self.codes.t(), x.n(), beta, &mut st.b)?;
        let a = be.download(&st.a)?;
        let b = be.download(&st.b)?;
        let mut dict = be.download(&self.dict)?;
        let mut rows: Option<HostMat> = None;
        let mut draw = rng.host_rng();
        for j in 0..k {
            let ajj = a.get(j, j);
            if ajj > 1e-6 {
                // d_j += (b_j − Σ_i A_ji d_i) / A_jj, with the atoms updated so far.
                let mut upd: Vec<f64> = b.row(j).iter().map(|&v| v as f64).collect();
                for i in 0..k {
                    let aji = a.get(j, i) as f64;
                    if aji != 0.0 {
                        for (u, &di) in upd.iter_mut().zip(dict.row(i)) {
                            *u -= aji * di as f64;
                        }
                    }
                }
                for (dj, u) in dict.row_mut(j).iter_mut().zip(upd) {
                    *dj += (u / ajj as f64) as f32;
                }
            } else {
                // No code uses this atom: a batch row with a little noise.
                if rows.is_none() {
                    rows = Some(be.download(x)?);
                }
                let xs = rows.as_ref().expect("read just above");
                use rand::RngExt;
                use rand_distr::{Distribution, Normal};
                let r = draw.random_range(0..xs.rows);
                let row = xs.row(r).to_vec();
                let mean = row.iter().sum::<f32>() / row.len() as f32;
                let sd = (row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()
                    / row.len() as f32)
                    .sqrt();
                let noise = Normal::new(0.0f32, 0.01 * if sd > 0.0 { sd } else { 1.0 })
                    .map_err(|e| Error::value("dictionary learning", e.to_string()))?;
                for (dj, v) in dict.row_mut(j).iter_mut().zip(row) {
                    *dj = v + noise.sample(&mut draw);
                }
            }
            let row = dict.row_mut(j);
            if nonneg {
                row.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 1.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        be.write(&mut self.dict, &dict)
    }

    /// The block-coordinate update's running statistics `A` (k x k) and
    /// `B` (k x d), once a step has made them.
    pub fn stats(&self, be: &B) -> Result<Option<(HostMat, HostMat)>> {
        match &self.stats {
            Some(st) => Ok(Some((be.download(&st.a)?, be.download(&st.b)?))),
            None => Ok(None),
        }
    }

    /// Restores the statistics of [`stats`](Self::stats) after `steps`
    /// minibatches (exact resume).
    pub fn set_stats(&mut self, be: &B, (a, b): (&HostMat, &HostMat), steps: u64) -> Result<()> {
        let (k, d) = self.dict.shape();
        if a.shape() != (k, k) || b.shape() != (k, d) {
            return Err(Error::shape(
                "dictionary statistics",
                format!(
                    "A {:?}, B {:?} for a {k}x{d} dictionary",
                    a.shape(),
                    b.shape()
                ),
            ));
        }
        self.stats = Some(Stats {
            a: be.upload(a)?,
            b: be.upload(b)?,
        });
        self.steps = steps;
        Ok(())
    }

    /// The dictionary in host memory.
    pub fn dictionary(&self, be: &B) -> Result<HostMat> {
        be.download(&self.dict)
    }
}

/// Scratch of [`Norms::unit_rows`], made once per dictionary shape.
struct Norms<B: Backend> {
    sq: B::Mat,
    norms: B::Mat,
    inv: B::Mat,
    ones: B::Mat,
    tiny: B::Mat,
}

impl<B: Backend> Norms<B> {
    fn new(be: &B, (k, d): (usize, usize)) -> Result<Self> {
        let mut ones = be.zeros(k, 1)?;
        be.fill(&mut ones, 1.0)?;
        let mut tiny = be.zeros(k, 1)?;
        be.fill(&mut tiny, f32::MIN_POSITIVE)?;
        Ok(Norms {
            sq: be.zeros(k, d)?,
            norms: be.zeros(k, 1)?,
            inv: be.zeros(k, 1)?,
            ones,
            tiny,
        })
    }

    /// Rescales every row of `m` to unit norm on the device, nothing read
    /// back (a zero row stays zero: its norm is floored before dividing).
    fn unit_rows(&mut self, be: &B, m: &mut B::Mat) -> Result<()> {
        be.unary(Unary::Square, m, &mut self.sq)?;
        be.row_sums(&self.sq, 1.0, 0.0, &mut self.norms)?;
        be.binary_inplace(Binary::Max, &mut self.norms, &self.tiny)?;
        be.unary_inplace(Unary::Sqrt, &mut self.norms)?;
        be.binary(Binary::Div, &self.ones, &self.norms, &mut self.inv)?;
        be.mul_col_vec(m, &self.inv)
    }
}

/// A starting dictionary of `atoms` rows of `data` drawn at random (without
/// replacement where there are enough), each scaled to unit norm; a zero
/// row is replaced by a random direction.
pub fn initial_dictionary(data: &HostMat, atoms: usize, rng: &mut RngStream) -> Result<HostMat> {
    if data.rows == 0 || data.cols == 0 || atoms == 0 {
        return Err(Error::shape(
            "initial dictionary",
            format!("{atoms} atoms from data {:?}", data.shape()),
        ));
    }
    use rand::RngExt;
    let mut draw = rng.host_rng();
    let mut order: Vec<usize> = (0..data.rows).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, draw.random_range(0..=i));
    }
    let d = rng.next_draw();
    let mut dict = HostMat::zeros(atoms, data.cols);
    for j in 0..atoms {
        let src = data.row(order[j % data.rows]);
        let row = dict.row_mut(j);
        row.copy_from_slice(src);
        let mut norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 || j >= data.rows {
            // Repeated rows (more atoms than rows) get their own direction.
            for (c, v) in row.iter_mut().enumerate() {
                *v += d.normal(j * data.cols + c) * if norm == 0.0 { 1.0 } else { 0.1 * norm };
            }
            norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        }
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Ok(dict)
}

/// Refuses a dictionary with a non-finite value or an all-zero atom,
/// naming the atom (`what` names the dictionary).
pub fn check_dictionary(dict: &HostMat, what: &str) -> Result<()> {
    for j in 0..dict.rows {
        let r = dict.row(j);
        if r.iter().any(|v| !v.is_finite()) {
            return Err(Error::value(
                what,
                format!("atom {j} holds a NaN or infinite value"),
            ));
        }
        if r.iter().all(|&v| v == 0.0) {
            return Err(Error::value(what, format!("atom {j} is all zeros")));
        }
    }
    Ok(())
}
