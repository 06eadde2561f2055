//! Row-major f32 matrices in host memory: what data loaders produce, what is
//! uploaded to a backend and what comes back from it.

use crate::error::{Error, Result};

/// ```
/// use ebmkit::HostMat;
/// let m = HostMat::from_fn(2, 3, |r, c| (10 * r + c) as f32);
/// assert_eq!(m.row(1), &[10.0, 11.0, 12.0]);
/// assert_eq!(m.transpose().shape(), (3, 2));
/// assert!(HostMat::new(2, 2, vec![1.0; 3]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HostMat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl HostMat {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::shape(
                "HostMat::new",
                format!(
                    "{rows}x{cols} needs {} values, got {}",
                    rows * cols,
                    data.len()
                ),
            ));
        }
        Ok(HostMat { rows, cols, data })
    }
    pub fn zeros(rows: usize, cols: usize) -> Self {
        HostMat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        HostMat { rows, cols, data }
    }
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }
    /// Rows `idx` gathered into a new matrix (minibatches, subsets).
    pub fn select_rows(&self, idx: &[usize]) -> Result<HostMat> {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            if i >= self.rows {
                return Err(Error::shape(
                    "HostMat::select_rows",
                    format!("row {i} out of range for {} rows", self.rows),
                ));
            }
            data.extend_from_slice(self.row(i));
        }
        Ok(HostMat {
            rows: idx.len(),
            cols: self.cols,
            data,
        })
    }
    pub fn transpose(&self) -> HostMat {
        HostMat::from_fn(self.cols, self.rows, |r, c| self.get(c, r))
    }
    /// The mean of each column over the rows (f64 sums; zeros without rows).
    pub fn column_means(&self) -> Vec<f32> {
        let mut acc = vec![0f64; self.cols];
        for r in 0..self.rows {
            for (a, v) in acc.iter_mut().zip(self.row(r)) {
                *a += *v as f64;
            }
        }
        acc.iter()
            .map(|a| (a / self.rows.max(1) as f64) as f32)
            .collect()
    }

    /// Largest absolute elementwise difference; `None` if shapes differ.
    pub fn max_abs_diff(&self, other: &HostMat) -> Option<f32> {
        if self.shape() != other.shape() {
            return None;
        }
        Some(
            self.data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max),
        )
    }
}
