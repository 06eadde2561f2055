//! PCA and ZCA whitening fitted on data.
//!
//! With covariance `C = U diag(λ) Uᵀ` (eigenvalues descending) and
//! `s_i = 1 / sqrt(λ_i + ε)`:
//! - PCA keeps the top `k` components: `y = diag(s_k) U_kᵀ (x - μ)`, `k`
//!   outputs (dimensionality reduction).
//! - ZCA rotates back: `y = U_k diag(s_k) U_kᵀ (x - μ)`, `d` outputs that stay
//!   in pixel space (whitened patches still look like patches), which is why
//!   the patch-model literature prefers it.
//!
//! `ε` regularises the small-variance directions (mostly noise) so they are
//! not blown up; whitened covariance is `λ/(λ+ε)` per component, so it is the
//! identity only where `λ ≫ ε`.

use nalgebra::{DMatrix, SymmetricEigen};

use crate::error::{Error, Result};
use crate::host::HostMat;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhitenKind {
    Pca,
    Zca,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WhitenConfig {
    pub kind: WhitenKind,
    /// Added to every eigenvalue before the inverse square root.
    pub epsilon: f64,
    /// Components kept (the top ones); `None` keeps all.
    pub components: Option<usize>,
}

impl WhitenConfig {
    /// PCA whitening to `components` dimensions (`None`: all).
    pub fn pca(components: Option<usize>, epsilon: f64) -> Self {
        WhitenConfig {
            kind: WhitenKind::Pca,
            epsilon,
            components,
        }
    }
    /// ZCA whitening with all components.
    pub fn zca(epsilon: f64) -> Self {
        WhitenConfig {
            kind: WhitenKind::Zca,
            epsilon,
            components: None,
        }
    }
}

/// A fitted whitening transform.
#[derive(Clone, Debug)]
pub struct Whitener {
    config: WhitenConfig,
    mean: Vec<f32>,
    eigenvalues: Vec<f64>,
    /// Output x input, row-major.
    forward: HostMat,
    /// Input x output: the inverse on the kept components.
    backward: HostMat,
}

/// Rows per block when accumulating the covariance, so memory stays
/// O(d^2 + block*d) whatever the number of examples.
const COV_BLOCK: usize = 4096;

/// The arguments of [`Whitener::fit`] checked; returns the number of
/// components kept.
fn check_fit(data: &HostMat, config: &WhitenConfig) -> Result<usize> {
    let (n, d) = data.shape();
    if n < 2 || d == 0 {
        return Err(Error::shape(
            "Whitener::fit",
            format!("needs at least 2 rows and 1 column, got {n}x{d}"),
        ));
    }
    let eps = config.epsilon;
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::value(
            "epsilon",
            format!("{eps}; must be finite and >= 0"),
        ));
    }
    let k = config.components.unwrap_or(d);
    if k == 0 || k > d {
        return Err(Error::value(
            "components",
            format!("{k}; must be between 1 and the dimension {d}"),
        ));
    }
    if let Some(i) = data.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::value(
            "whitening data",
            format!("non-finite value at row {}, column {}", i / d, i % d),
        ));
    }
    Ok(k)
}

/// The mean of the rows and their covariance (unbiased, n - 1), in f64,
/// exactly symmetric.
fn mean_and_covariance(data: &HostMat) -> (Vec<f64>, DMatrix<f64>) {
    let (n, d) = data.shape();
    let mut mean = vec![0f64; d];
    for r in 0..n {
        for (m, &v) in mean.iter_mut().zip(data.row(r)) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);

    let mut cov = DMatrix::<f64>::zeros(d, d);
    for start in (0..n).step_by(COV_BLOCK) {
        let m = COV_BLOCK.min(n - start);
        let block = DMatrix::<f64>::from_fn(d, m, |i, j| data.get(start + j, i) as f64 - mean[i]);
        cov.gemm(1.0, &block, &block.transpose(), 1.0);
    }
    cov /= (n - 1) as f64;
    // Exact symmetry keeps the eigen-solver from wandering on roundoff.
    let cov = (&cov + cov.transpose()) * 0.5;
    (mean, cov)
}

impl Whitener {
    /// Fits mean and covariance (unbiased, n - 1) of the rows of `data`.
    pub fn fit(data: &HostMat, config: &WhitenConfig) -> Result<Self> {
        let d = data.cols;
        let k = check_fit(data, config)?;
        let eps = config.epsilon;
        let (mean, cov) = mean_and_covariance(data);
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        // Roundoff can make zero-variance directions slightly negative.
        let eigenvalues: Vec<f64> = order.iter().map(|&i| eig.eigenvalues[i].max(0.0)).collect();
        let u = DMatrix::<f64>::from_fn(d, k, |r, c| eig.eigenvectors[(r, order[c])]);
        let scale: Vec<f64> = eigenvalues[..k]
            .iter()
            .map(|&l| 1.0 / (l + eps).sqrt())
            .collect();
        if let Some(i) = scale.iter().position(|s| !s.is_finite()) {
            return Err(Error::value(
                "epsilon",
                format!(
                    "component {i} has variance {:e}; with epsilon {eps} it cannot be \
                     whitened (use epsilon > 0 or fewer components)",
                    eigenvalues[i]
                ),
            ));
        }
        let us = DMatrix::<f64>::from_fn(d, k, |r, c| u[(r, c)] * scale[c]);
        let u_over_s = DMatrix::<f64>::from_fn(d, k, |r, c| u[(r, c)] / scale[c]);
        let (fwd, bwd) = match config.kind {
            WhitenKind::Pca => (us.transpose(), u_over_s),
            WhitenKind::Zca => (&us * u.transpose(), &u_over_s * u.transpose()),
        };
        Ok(Whitener {
            config: *config,
            mean: mean.iter().map(|&m| m as f32).collect(),
            eigenvalues,
            forward: to_host(&fwd),
            backward: to_host(&bwd),
        })
    }

    /// Whitens the rows of `x`.
    pub fn transform(&self, x: &HostMat) -> Result<HostMat> {
        if x.cols != self.input_dim() {
            return Err(Error::shape(
                "Whitener::transform",
                format!("fitted on {} columns, got {}", self.input_dim(), x.cols),
            ));
        }
        let centred: Vec<f32> = x
            .data
            .chunks_exact(x.cols.max(1))
            .flat_map(|row| row.iter().zip(&self.mean).map(|(v, m)| v - m))
            .collect();
        // A row-major n x d buffer is a column-major d x n matrix, so the
        // product W Xᵀ comes out as the row-major n x out result.
        let xt = DMatrix::from_vec(x.cols, x.rows, centred);
        let w = DMatrix::from_row_slice(self.forward.rows, self.forward.cols, &self.forward.data);
        let yt = w * xt;
        HostMat::new(x.rows, self.output_dim(), yt.data.into())
    }

    /// Maps whitened rows back to the input space (exact for all
    /// components; otherwise the reconstruction from the kept ones).
    pub fn inverse_transform(&self, y: &HostMat) -> Result<HostMat> {
        if y.cols != self.output_dim() {
            return Err(Error::shape(
                "Whitener::inverse_transform",
                format!(
                    "whitened rows have {} columns, got {}",
                    self.output_dim(),
                    y.cols
                ),
            ));
        }
        let yt = DMatrix::from_column_slice(y.cols, y.rows, &y.data);
        let b =
            DMatrix::from_row_slice(self.backward.rows, self.backward.cols, &self.backward.data);
        let mut xt = b * yt;
        for mut col in xt.column_iter_mut() {
            for (v, m) in col.iter_mut().zip(&self.mean) {
                *v += m;
            }
        }
        HostMat::new(y.rows, self.input_dim(), xt.data.into())
    }

    pub fn config(&self) -> &WhitenConfig {
        &self.config
    }
    pub fn input_dim(&self) -> usize {
        self.forward.cols
    }
    pub fn output_dim(&self) -> usize {
        self.forward.rows
    }
    /// The fitted mean, subtracted before whitening.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }
    /// All covariance eigenvalues, descending (also those not kept).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
    /// The whitening matrix, output x input: `y = W (x - mean)`.
    pub fn matrix(&self) -> &HostMat {
        &self.forward
    }
    /// The de-whitening matrix, input x output.
    pub fn inverse_matrix(&self) -> &HostMat {
        &self.backward
    }
}

fn to_host(m: &DMatrix<f64>) -> HostMat {
    HostMat::from_fn(m.nrows(), m.ncols(), |r, c| m[(r, c)] as f32)
}

/// ZCA whitening with `ε` relative to the data: fitted on `train` with
/// `ε = rel_eps · λ_max` (λ_max the largest covariance eigenvalue), applied
/// to both sets, then both scaled by one factor that gives the training
/// rows unit mean squared norm (the setting of the sparse-coding
/// literature's patch experiments). Returns the sets and the factor.
pub fn zca_relative_unit_norm(
    train: &HostMat,
    test: &HostMat,
    rel_eps: f64,
) -> Result<(HostMat, HostMat, f32)> {
    if !(rel_eps.is_finite() && rel_eps > 0.0) {
        return Err(Error::value(
            "whiten_epsilon",
            format!("{rel_eps} must be finite and > 0"),
        ));
    }
    let (_, cov) = mean_and_covariance(train);
    let lmax = SymmetricEigen::new(cov)
        .eigenvalues
        .iter()
        .fold(0.0f64, |a, &b| a.max(b));
    let w = Whitener::fit(
        train,
        &WhitenConfig::zca(rel_eps * lmax.max(f64::MIN_POSITIVE)),
    )?;
    let (mut a, mut b) = (w.transform(train)?, w.transform(test)?);
    let msq = a.data.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / a.rows.max(1) as f64;
    let s = if msq > 0.0 {
        (1.0 / msq.sqrt()) as f32
    } else {
        1.0
    };
    a.data.iter_mut().for_each(|v| *v *= s);
    b.data.iter_mut().for_each(|v| *v *= s);
    Ok((a, b, s))
}
