//! Restricted Boltzmann machines (Smolensky 1986; Hinton 2002).
//!
//! ```text
//! E(v, h) = q_v(v) + q_h(h) - v·b_v - h·b_h - v W hᵀ
//! p(h | v) = Π_j p_h(h_j | x_j),  x = v W + b_h
//! p(v | h) = Π_i p_v(v_i | y_i),  y = h Wᵀ + b_v
//! F(v)     = q_v(v) - v·b_v - Σ_j A_h(x_j)
//! ```
//!
//! `W` is n_visible x n_hidden, `b_v` is 1 x n_visible, `b_h` is 1 x n_hidden,
//! all on the backend. Unit types come from [`crate::units`]; binary hidden or
//! visible layers at β = 1 use the fused `sigmoid_affine` kernel
//! (GEMM + bias + sigmoid + Bernoulli in one pass).

use crate::backend::{Backend, Binary, Matrix, Trans};
use crate::energy::{Bipartite, LayerScratch, Scratch};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;
use crate::units::{GroupOps, UnitKind};

/// An RBM whose parameters live on backend `B`.
pub struct Rbm<B: Backend> {
    pub w: B::Mat,
    pub b_v: B::Mat,
    pub b_h: B::Mat,
    pub visible: UnitKind,
    pub hidden: UnitKind,
    /// Group matrices of softmax layers (None for other unit types).
    pub groups_v: Option<GroupOps<B>>,
    pub groups_h: Option<GroupOps<B>>,
}

/// The group matrices a layer of `n` units of `kind` needs, if any.
fn groups<B: Backend>(be: &B, kind: UnitKind, n: usize) -> Result<Option<GroupOps<B>>> {
    match kind.group() {
        Some(k) => Ok(Some(GroupOps::new(be, n, k)?)),
        None => Ok(None),
    }
}

/// The parameters of an RBM in host memory (checkpoints, tests, estimators).
#[derive(Clone, Debug, PartialEq)]
pub struct RbmHost {
    pub w: HostMat,
    pub b_v: HostMat,
    pub b_h: HostMat,
    pub visible: UnitKind,
    pub hidden: UnitKind,
}

impl RbmHost {
    pub fn n_visible(&self) -> usize {
        self.w.rows
    }
    pub fn n_hidden(&self) -> usize {
        self.w.cols
    }
    /// Checks that the three tensors fit together.
    pub fn validate(&self) -> Result<()> {
        let (nv, nh) = self.w.shape();
        if nv == 0 || nh == 0 {
            return Err(Error::shape(
                "RbmHost",
                format!("W is {nv}x{nh}: empty layer"),
            ));
        }
        if self.b_v.shape() != (1, nv) {
            return Err(Error::shape(
                "RbmHost",
                format!("b_v is {:?}, W is {nv}x{nh}: need 1x{nv}", self.b_v.shape()),
            ));
        }
        if self.b_h.shape() != (1, nh) {
            return Err(Error::shape(
                "RbmHost",
                format!("b_h is {:?}, W is {nv}x{nh}: need 1x{nh}", self.b_h.shape()),
            ));
        }
        Ok(())
    }

    /// Total input to hidden unit `j` for one visible row (f64).
    fn hidden_input(&self, v: &[f32], j: usize) -> f64 {
        let nh = self.w.cols;
        let mut x = self.b_h.data[j] as f64;
        for (i, &vi) in v.iter().enumerate() {
            x += vi as f64 * self.w.data[i * nh + j] as f64;
        }
        x
    }

    /// Host reference of F(v) for one row (f64), for tests and enumeration.
    pub fn free_energy_host(&self, v: &[f32]) -> f64 {
        let mut f = 0.0f64;
        for (i, &vi) in v.iter().enumerate() {
            let vi = vi as f64;
            if self.visible.has_base_energy() {
                f += 0.5 * vi * vi;
            }
            f -= vi * self.b_v.data[i] as f64;
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

impl<B: Backend> Rbm<B> {
    /// Weights ~ N(0, init_std²), biases zero.
    pub fn new(
        be: &B,
        n_visible: usize,
        n_hidden: usize,
        visible: UnitKind,
        hidden: UnitKind,
        init_std: f32,
        rng: &mut RngStream,
    ) -> Result<Self> {
        if n_visible == 0 || n_hidden == 0 {
            return Err(Error::value(
                "rbm size",
                format!("{n_visible} visible x {n_hidden} hidden: both must be at least 1"),
            ));
        }
        let zeros = be.zeros(n_visible, n_hidden)?;
        let mut w = be.zeros(n_visible, n_hidden)?;
        be.gaussian(&zeros, init_std, &mut w, rng)?;
        Ok(Rbm {
            w,
            b_v: be.zeros(1, n_visible)?,
            b_h: be.zeros(1, n_hidden)?,
            visible,
            hidden,
            groups_v: groups(be, visible, n_visible)?,
            groups_h: groups(be, hidden, n_hidden)?,
        })
    }

    /// A model with all parameters zero and the unit types of `other`.
    pub fn zeros_like(be: &B, other: &Rbm<B>) -> Result<Self> {
        Ok(Rbm {
            w: be.zeros(other.w.rows(), other.w.cols())?,
            b_v: be.zeros(1, other.w.rows())?,
            b_h: be.zeros(1, other.w.cols())?,
            visible: other.visible,
            hidden: other.hidden,
            groups_v: groups(be, other.visible, other.w.rows())?,
            groups_h: groups(be, other.hidden, other.w.cols())?,
        })
    }

    pub fn from_host(be: &B, h: &RbmHost) -> Result<Self> {
        h.validate()?;
        Ok(Rbm {
            w: be.upload(&h.w)?,
            b_v: be.upload(&h.b_v)?,
            b_h: be.upload(&h.b_h)?,
            visible: h.visible,
            hidden: h.hidden,
            groups_v: groups(be, h.visible, h.w.rows)?,
            groups_h: groups(be, h.hidden, h.w.cols)?,
        })
    }

    pub fn to_host(&self, be: &B) -> Result<RbmHost> {
        Ok(RbmHost {
            w: be.download(&self.w)?,
            b_v: be.download(&self.b_v)?,
            b_h: be.download(&self.b_h)?,
            visible: self.visible,
            hidden: self.hidden,
        })
    }

    /// `self = a + b` parameter-wise (the fast-weights sampling model).
    pub fn set_sum(&mut self, be: &B, a: &Rbm<B>, b: &Rbm<B>) -> Result<()> {
        be.copy(&a.w, &mut self.w)?;
        be.binary_inplace(Binary::Add, &mut self.w, &b.w)?;
        be.copy(&a.b_v, &mut self.b_v)?;
        be.binary_inplace(Binary::Add, &mut self.b_v, &b.b_v)?;
        be.copy(&a.b_h, &mut self.b_h)?;
        be.binary_inplace(Binary::Add, &mut self.b_h, &b.b_h)
    }

    /// The gradient of the mean free energy over the rows of `v`:
    /// `(∂F/∂W, ∂F/∂b_v, ∂F/∂b_h) = (-vᵀ E[h|v], -Σ v, -Σ E[h|v]) / rows`.
    /// (Allocates; for tests and analysis, not for training loops.)
    pub fn free_energy_grad(&self, be: &B, v: &B::Mat) -> Result<(B::Mat, B::Mat, B::Mat)> {
        let n = v.rows();
        let (nv, nh) = (self.w.rows(), self.w.cols());
        let mut s = LayerScratch::new(be, n, nh)?;
        let mut ph = be.zeros(n, nh)?;
        let mut rng = RngStream::new(0, 0);
        self.hidden_given_visible(be, v, None, &mut ph, None, &mut s, &mut rng)?;
        let scale = -1.0 / n as f32;
        let mut gw = be.zeros(nv, nh)?;
        be.gemm(scale, v, Trans::T, &ph, Trans::N, 0.0, &mut gw)?;
        let mut gbv = be.zeros(1, nv)?;
        be.col_sums(v, scale, 0.0, &mut gbv)?;
        let mut gbh = be.zeros(1, nh)?;
        be.col_sums(&ph, scale, 0.0, &mut gbh)?;
        Ok((gw, gbv, gbh))
    }

    /// Total input to one layer: `pre = (x op(W) + bias)`, times `beta` if given.
    fn total_input(
        &self,
        be: &B,
        x: &B::Mat,
        tw: Trans,
        bias: &B::Mat,
        beta: Option<&B::Mat>,
        pre: &mut B::Mat,
    ) -> Result<()> {
        be.gemm(1.0, x, Trans::N, &self.w, tw, 0.0, pre)?;
        be.add_row_vec(pre, bias, 1.0)?;
        if let Some(b) = beta {
            be.mul_col_vec(pre, b)?;
        }
        Ok(())
    }

    /// One conditional of the bipartite energy, the same for both directions:
    /// `x` is the other layer, `tw` says whether it meets `W` or `Wᵀ`, and
    /// `units`, `bias`, `groups` belong to the layer being drawn.
    #[allow(clippy::too_many_arguments)]
    fn layer_given(
        &self,
        be: &B,
        x: &B::Mat,
        tw: Trans,
        units: UnitKind,
        bias: &B::Mat,
        groups: Option<&GroupOps<B>>,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<&mut B::Mat>,
        s: &mut LayerScratch<B>,
        rng: &mut RngStream,
    ) -> Result<()> {
        if units.is_binary() && beta.is_none() {
            // p(u = 1 | x) = σ(x W⁽ᵀ⁾ + b), sampled in the same pass.
            return be.sigmoid_affine(1.0, x, Trans::N, &self.w, tw, bias, mean, sample, rng);
        }
        self.total_input(be, x, tw, bias, beta, &mut s.pre)?;
        if let Some(g) = groups {
            g.mean(be, &s.pre, mean, &mut s.tmp)?;
            if let Some(out) = sample {
                g.sample(be, mean, out, &mut s.aux, &mut s.tmp, rng)?;
            }
            return Ok(());
        }
        units.mean(be, &s.pre, mean)?;
        if let Some(out) = sample {
            units.sample(be, &s.pre, mean, out, &mut s.aux, rng)?;
        }
        Ok(())
    }
}

impl<B: Backend> Bipartite<B> for Rbm<B> {
    fn n_visible(&self) -> usize {
        self.w.rows()
    }
    fn n_hidden(&self) -> usize {
        self.w.cols()
    }

    fn hidden_given_visible(
        &self,
        be: &B,
        v: &B::Mat,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<&mut B::Mat>,
        s: &mut LayerScratch<B>,
        rng: &mut RngStream,
    ) -> Result<()> {
        let (units, groups) = (self.hidden, self.groups_h.as_ref());
        self.layer_given(
            be,
            v,
            Trans::N,
            units,
            &self.b_h,
            groups,
            beta,
            mean,
            sample,
            s,
            rng,
        )
    }

    fn visible_given_hidden(
        &self,
        be: &B,
        h: &B::Mat,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<&mut B::Mat>,
        s: &mut LayerScratch<B>,
        rng: &mut RngStream,
    ) -> Result<()> {
        let (units, groups) = (self.visible, self.groups_v.as_ref());
        self.layer_given(
            be,
            h,
            Trans::T,
            units,
            &self.b_v,
            groups,
            beta,
            mean,
            sample,
            s,
            rng,
        )
    }

    fn linear_energy(
        &self,
        be: &B,
        v: &B::Mat,
        h: &B::Mat,
        s: &mut Scratch<B>,
        out: &mut B::Mat,
    ) -> Result<()> {
        // -Σ_j (v W)_j h_j
        be.gemm(1.0, v, Trans::N, &self.w, Trans::N, 0.0, &mut s.h.pre)?;
        be.binary_inplace(Binary::Mul, &mut s.h.pre, h)?;
        be.row_sums(&s.h.pre, -1.0, 0.0, out)?;
        // - v·b_v - h·b_h
        be.gemm(-1.0, v, Trans::N, &self.b_v, Trans::T, 1.0, out)?;
        be.gemm(-1.0, h, Trans::N, &self.b_h, Trans::T, 1.0, out)
    }

    fn energy(
        &self,
        be: &B,
        v: &B::Mat,
        h: &B::Mat,
        s: &mut Scratch<B>,
        out: &mut B::Mat,
    ) -> Result<()> {
        self.linear_energy(be, v, h, s, out)?;
        if self.visible.has_base_energy() {
            self.visible.base_energy(be, v, &mut s.v.tmp)?;
            be.row_sums(&s.v.tmp, 1.0, 1.0, out)?;
        }
        if self.hidden.has_base_energy() {
            self.hidden.base_energy(be, h, &mut s.h.tmp)?;
            be.row_sums(&s.h.tmp, 1.0, 1.0, out)?;
        }
        Ok(())
    }

    fn free_energy(&self, be: &B, v: &B::Mat, s: &mut Scratch<B>, out: &mut B::Mat) -> Result<()> {
        // x = v W + b_h;  F = -Σ_j A_h(x_j) - v·b_v + q_v(v)
        self.total_input(be, v, Trans::N, &self.b_h, None, &mut s.h.pre)?;
        match &self.groups_h {
            Some(g) => g.log_partition(be, &s.h.pre, &mut s.h.tmp, &mut s.h.aux)?,
            None => self.hidden.log_partition(be, &s.h.pre, &mut s.h.tmp)?,
        }
        be.row_sums(&s.h.tmp, -1.0, 0.0, out)?;
        be.gemm(-1.0, v, Trans::N, &self.b_v, Trans::T, 1.0, out)?;
        if self.visible.has_base_energy() {
            self.visible.base_energy(be, v, &mut s.v.tmp)?;
            be.row_sums(&s.v.tmp, 1.0, 1.0, out)?;
        }
        Ok(())
    }
}

/// The check every training loop runs at epoch ends: the name of the first
/// parameter whose sum is NaN or ±inf (a NaN or inf entry, or values so large
/// that the model has diverged anyway).
pub fn first_non_finite<B: Backend>(be: &B, rbm: &Rbm<B>) -> Result<Option<&'static str>> {
    for (name, m) in [("W", &rbm.w), ("b_v", &rbm.b_v), ("b_h", &rbm.b_h)] {
        if !be.sum(m)?.is_finite() {
            return Ok(Some(name));
        }
    }
    Ok(None)
}
