//! An RBM's parameters in host memory: what checkpoints hold, what models
//! are built from, and f64 references of its free energy and conditionals
//! for tests and enumeration.

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::units::UnitKind;

/// The parameters of an RBM in host memory (checkpoints, tests, estimators).
#[derive(Clone, Debug, PartialEq)]
pub struct RbmHost {
    /// n_visible x n_hidden.
    pub w: HostMat,
    /// 1 x n_visible.
    pub b_v: HostMat,
    /// 1 x n_hidden.
    pub b_h: HostMat,
    pub visible: UnitKind,
    pub hidden: UnitKind,
    /// log σ² of Gaussian visible units, 1 x n_visible (None: unit variance).
    pub log_var_v: Option<HostMat>,
}

pub use crate::io::recipe::rbm::LOG_VAR_LIMIT;

/// A tensor's shape as a file would list it: `[n]` for a row vector.
fn listed(m: &HostMat) -> String {
    if m.rows == 1 {
        format!("[{}]", m.cols)
    } else {
        format!("[{}, {}]", m.rows, m.cols)
    }
}

impl RbmHost {
    /// A binary RBM (Bernoulli units on both layers) with these parameters.
    pub fn binary(w: HostMat, b_v: HostMat, b_h: HostMat) -> RbmHost {
        RbmHost {
            w,
            b_v,
            b_h,
            visible: UnitKind::Bernoulli,
            hidden: UnitKind::Bernoulli,
            log_var_v: None,
        }
    }

    pub fn n_visible(&self) -> usize {
        self.w.rows
    }
    pub fn n_hidden(&self) -> usize {
        self.w.cols
    }

    /// The one check of an RBM's tensors (models, checkpoints and
    /// estimators all go through it): non-empty layers, biases and
    /// log-variances of the layer sizes, variances only for Gaussian visible
    /// units, every value finite. Errors name the tensor.
    pub fn validate(&self) -> Result<()> {
        let (nv, nh) = self.w.shape();
        let bad = |msg: String| Err(Error::shape("RBM parameters", msg));
        if nv == 0 || nh == 0 {
            return bad(format!(
                "tensor 'W' has shape [{nv}, {nh}]: both layers need at least one unit"
            ));
        }
        for (name, t, n) in [("b_v", &self.b_v, nv), ("b_h", &self.b_h, nh)] {
            if t.shape() != (1, n) {
                return bad(format!(
                    "tensor '{name}' has shape {}, expected [{n}] (W is {nv}x{nh})",
                    listed(t)
                ));
            }
        }
        for (name, t) in [("W", &self.w), ("b_v", &self.b_v), ("b_h", &self.b_h)] {
            if let Some(i) = t.data.iter().position(|x| !x.is_finite()) {
                return Err(Error::value(
                    "RBM parameters",
                    format!(
                        "tensor '{name}' holds {} at [{}, {}]",
                        t.data[i],
                        i / t.cols.max(1),
                        i % t.cols.max(1)
                    ),
                ));
            }
        }
        if let Some(z) = &self.log_var_v {
            if self.visible != UnitKind::Gaussian {
                return Err(Error::value(
                    "RBM parameters",
                    format!(
                        "tensor 'log_var_v' is given but the visible units are {}",
                        self.visible
                    ),
                ));
            }
            if z.shape() != (1, nv) {
                return bad(format!(
                    "tensor 'log_var_v' has shape {}, expected [{nv}] (W is {nv}x{nh})",
                    listed(z)
                ));
            }
            if let Some(i) = z.data.iter().position(|x| !x.is_finite()) {
                return Err(Error::value(
                    "RBM parameters",
                    format!("tensor 'log_var_v' holds {} at [{i}]", z.data[i]),
                ));
            }
            if let Some(i) = z.data.iter().position(|x| x.abs() > LOG_VAR_LIMIT) {
                return Err(Error::value(
                    "RBM parameters",
                    format!(
                        "tensor 'log_var_v' holds {} at [{i}]: a log-variance must lie in \
                         [-{LOG_VAR_LIMIT}, {LOG_VAR_LIMIT}] (variances from about 1e-30 to 1e30)",
                        z.data[i]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The first `n` receptive fields (columns of W) as rows, to be drawn as
    /// images.
    pub fn filters(&self, n: usize) -> Result<HostMat> {
        crate::viz::receptive_fields(&self.w, n)
    }

    /// 1/σ_i² of visible unit `i` (1 unless Gaussian with a variance).
    pub fn precision_host(&self, i: usize) -> f64 {
        self.log_var_v
            .as_ref()
            .map_or(1.0, |z| (-(z.data[i] as f64)).exp())
    }

    /// Total input to hidden unit `j` for one visible row (f64).
    fn hidden_input(&self, v: &[f32], j: usize) -> f64 {
        let nh = self.w.cols;
        let mut x = self.b_h.data[j] as f64;
        for (i, &vi) in v.iter().enumerate() {
            x += vi as f64 * self.precision_host(i) * self.w.data[i * nh + j] as f64;
        }
        x
    }

    /// Host reference of F(v) for one row (f64), for tests and enumeration.
    pub fn free_energy_host(&self, v: &[f32]) -> f64 {
        let mut f = 0.0f64;
        for (i, &vi) in v.iter().enumerate() {
            let vi = vi as f64;
            let p = self.precision_host(i);
            if self.visible.has_base_energy() {
                f += 0.5 * p * vi * vi;
            }
            f -= p * vi * self.b_v.data[i] as f64;
        }
        let x: Vec<f64> = (0..self.w.cols).map(|j| self.hidden_input(v, j)).collect();
        f - self.hidden.log_partition_layer_host(&x)
    }

    /// Host reference of E[h | v] for one row.
    pub fn hidden_mean_host(&self, v: &[f32]) -> Vec<f64> {
        let x: Vec<f64> = (0..self.w.cols).map(|j| self.hidden_input(v, j)).collect();
        self.hidden.mean_layer_host(&x)
    }
}
