//! The variances of a Gaussian visible layer, σ_i² = e^{z_i}, and what they
//! derive: everything that takes the visible layer as input sees `v/σ²`, so
//! the conditionals and energies use `diag(σ⁻²) W` and `b_v/σ²`, cached here
//! and kept current by [`Variance::refresh`] after `W`, `b_v` or `z` change.

use crate::backend::{Backend, Matrix, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::units::UnitKind;

/// z = log σ² of a Gaussian visible layer and the quantities it derives.
pub struct Variance<B: Backend> {
    /// z = log σ², 1 x n_visible: the parameter.
    pub log_var: B::Mat,
    /// Derived from `log_var`, `W` and `b_v` by [`refresh`](Self::refresh):
    /// 1/σ² (1 x n_visible and n_visible x 1), σ, diag(σ⁻²) W and b_v/σ².
    pub prec: B::Mat,
    prec_col: B::Mat,
    pub sd: B::Mat,
    pub w_in: B::Mat,
    pub b_in: B::Mat,
    one: B::Mat,
}

impl<B: Backend> Variance<B> {
    fn new(be: &B, log_var: B::Mat, nh: usize) -> Result<Self> {
        let nv = log_var.cols();
        Ok(Variance {
            log_var,
            prec: be.zeros(1, nv)?,
            prec_col: be.zeros(nv, 1)?,
            sd: be.zeros(1, nv)?,
            w_in: be.zeros(nv, nh)?,
            b_in: be.zeros(1, nv)?,
            one: be.upload(&HostMat::from_fn(1, 1, |_, _| 1.0))?,
        })
    }

    /// The variance block of a visible layer of `kind` units (Gaussian
    /// only), from log-variances `log_var` (zero, i.e. unit variance, if None).
    pub fn for_layer(
        be: &B,
        kind: UnitKind,
        (nv, nh): (usize, usize),
        log_var: Option<&HostMat>,
    ) -> Result<Option<Self>> {
        match (kind, log_var) {
            (UnitKind::Gaussian, Some(z)) => Ok(Some(Variance::new(be, be.upload(z)?, nh)?)),
            (UnitKind::Gaussian, None) => Ok(Some(Variance::new(be, be.zeros(1, nv)?, nh)?)),
            (_, None) => Ok(None),
            (k, Some(_)) => Err(Error::value(
                "log_var_v",
                format!("variances belong to Gaussian visible units, these are {k}"),
            )),
        }
    }

    /// Recomputes 1/σ², σ, diag(σ⁻²) W and b_v/σ² from z, `w` and `b_v`.
    pub fn refresh(&mut self, be: &B, w: &B::Mat, b_v: &B::Mat) -> Result<()> {
        be.copy(&self.log_var, &mut self.prec)?;
        be.affine(&mut self.prec, -1.0, 0.0)?;
        be.unary_inplace(Unary::Exp, &mut self.prec)?;
        be.copy(&self.log_var, &mut self.sd)?;
        be.affine(&mut self.sd, 0.5, 0.0)?;
        be.unary_inplace(Unary::Exp, &mut self.sd)?;
        // The column copy of 1/σ² (a 1 x 1 GEMM transposes it).
        be.gemm(1.0, self.prec.t(), self.one.n(), 0.0, &mut self.prec_col)?;
        be.copy(w, &mut self.w_in)?;
        be.mul_col_vec(&mut self.w_in, &self.prec_col)?;
        be.copy(b_v, &mut self.b_in)?;
        be.mul_row_vec(&mut self.b_in, &self.prec)
    }
}
