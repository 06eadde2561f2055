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
//!
//! Gaussian visible units carry a variance per unit, σ_i² = e^{z_i}, fixed
//! or learned, in the parameterisation of Cho, Ilin & Raiko ("Improved
//! learning of Gaussian-Bernoulli restricted Boltzmann machines", ICANN 2011):
//!
//! ```text
//! E(v, h)  = Σ_i (v_i²/2 - v_i b_v,i)/σ_i² + q_h(h) - h·b_h - Σ_ij (v_i/σ_i²) W_ij h_j
//! p(v | h) = N(h Wᵀ + b_v, diag σ²),   p(h | v) from x = (v/σ²) W + b_h
//! ∂F/∂W = -(v/σ²)ᵀ E[h|v],   ∂F/∂b_v = -v/σ²,
//! ∂F/∂z_i = -(v_i²/2 - v_i μ_i)/σ_i²  with μ = E[h|v] Wᵀ + b_v
//! ```
//!
//! So everything that takes the visible layer as input sees `ṽ = v/σ²`: the
//! learning rules for W and b_v are the usual ones with ṽ in place of v
//! ([`Rbm::visible_stat`]), and the conditionals and energies use the cached
//! `diag(σ⁻²) W` and `b_v/σ²` ([`Variance`], kept current by
//! [`Rbm::refresh`]). With z = 0 this is the unit-variance model. Hidden
//! Gaussian units keep unit variance.

mod host;
pub(crate) mod persist;
mod sampling;
mod variance;

pub use host::{RbmHost, LOG_VAR_LIMIT};
pub use sampling::{GibbsOutput, GibbsRun};
pub use variance::Variance;

use crate::backend::{Backend, Binary, Fused, Matrix, Op, Sample};
use crate::energy::{Bipartite, FreeEnergy, LayerScratch, Scratch};
use crate::error::{Error, Result};
use crate::rng::RngStream;
use crate::units::{gaussian_per_unit, GroupOps, UnitKind};

/// An RBM whose parameters live on backend `B`.
///
/// ```
/// use ebmkit::prelude::*;
/// # fn main() -> ebmkit::Result<()> {
/// let be = Cpu::new();
/// // One visible and one hidden unit, coupled by w = 2: F(v) = -log(1 + e^{2v}).
/// let host = RbmHost::binary(HostMat::new(1, 1, vec![2.0])?, HostMat::zeros(1, 1), HostMat::zeros(1, 1));
/// let rbm = Rbm::from_host(&be, &host)?;
/// let v = HostMat::new(2, 1, vec![0.0, 1.0])?;
/// let f = ebmkit::estimate::free_energy(&be, &rbm, &v)?;
/// assert!((f[0] + 2f64.ln()).abs() < 1e-6);
/// assert!((f[1] + (1.0 + 2f64.exp()).ln()).abs() < 1e-5);
/// # Ok(())
/// # }
/// ```
///
/// After changing `w`, `b_v` or the log-variances of a Gaussian visible
/// layer, call [`refresh`](Self::refresh) (the optimiser does).
pub struct Rbm<B: Backend> {
    pub w: B::Mat,
    pub b_v: B::Mat,
    pub b_h: B::Mat,
    pub visible: UnitKind,
    pub hidden: UnitKind,
    /// Group matrices of softmax layers (None for other unit types).
    pub groups_v: Option<GroupOps<B>>,
    pub groups_h: Option<GroupOps<B>>,
    /// Gaussian visible units: their variances and the scaled parameters.
    pub var_v: Option<Variance<B>>,
    /// Multipliers of the total input of the hidden (`up`) and the visible
    /// (`down`) layer in both conditionals: 1, except for the RBMs that
    /// pretrain a deep Boltzmann machine, whose input from the side that
    /// will have no neighbour in the RBM is doubled
    /// ([`with_multipliers`](Self::with_multipliers)).
    pub up: f32,
    pub down: f32,
}

/// The group matrices a layer of `n` units of `kind` needs, if any.
fn groups<B: Backend>(be: &B, kind: UnitKind, n: usize) -> Result<Option<GroupOps<B>>> {
    match kind.group() {
        Some(k) => Ok(Some(GroupOps::new(be, n, k)?)),
        None => Ok(None),
    }
}

/// ∂F/∂θ averaged over rows (see [`Rbm::free_energy_grad`]).
pub struct FreeEnergyGrad<B: Backend> {
    pub w: B::Mat,
    pub b_v: B::Mat,
    pub b_h: B::Mat,
    /// ∂F/∂z for Gaussian visible units (z = log σ²).
    pub log_var: Option<B::Mat>,
}

impl<B: Fused> Rbm<B> {
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
        let mut rbm = Rbm {
            w,
            b_v: be.zeros(1, n_visible)?,
            b_h: be.zeros(1, n_hidden)?,
            visible,
            hidden,
            groups_v: groups(be, visible, n_visible)?,
            groups_h: groups(be, hidden, n_hidden)?,
            var_v: Variance::for_layer(be, visible, (n_visible, n_hidden), None)?,
            up: 1.0,
            down: 1.0,
        };
        rbm.refresh(be)?;
        Ok(rbm)
    }

    /// A model with all parameters zero and the unit types of `other`.
    pub fn zeros_like(be: &B, other: &Rbm<B>) -> Result<Self> {
        let (nv, nh) = (other.w.rows(), other.w.cols());
        let mut rbm = Rbm {
            w: be.zeros(nv, nh)?,
            b_v: be.zeros(1, nv)?,
            b_h: be.zeros(1, nh)?,
            visible: other.visible,
            hidden: other.hidden,
            groups_v: groups(be, other.visible, nv)?,
            groups_h: groups(be, other.hidden, nh)?,
            var_v: Variance::for_layer(be, other.visible, (nv, nh), None)?,
            up: other.up,
            down: other.down,
        };
        rbm.refresh(be)?;
        Ok(rbm)
    }

    pub fn from_host(be: &B, h: &RbmHost) -> Result<Self> {
        h.validate()?;
        let (nv, nh) = h.w.shape();
        let mut rbm = Rbm {
            w: be.upload(&h.w)?,
            b_v: be.upload(&h.b_v)?,
            b_h: be.upload(&h.b_h)?,
            visible: h.visible,
            hidden: h.hidden,
            groups_v: groups(be, h.visible, nv)?,
            groups_h: groups(be, h.hidden, nh)?,
            var_v: Variance::for_layer(be, h.visible, (nv, nh), h.log_var_v.as_ref())?,
            up: 1.0,
            down: 1.0,
        };
        rbm.refresh(be)?;
        Ok(rbm)
    }

    pub fn to_host(&self, be: &B) -> Result<RbmHost> {
        Ok(RbmHost {
            w: be.download(&self.w)?,
            b_v: be.download(&self.b_v)?,
            b_h: be.download(&self.b_h)?,
            visible: self.visible,
            hidden: self.hidden,
            log_var_v: match &self.var_v {
                Some(v) => Some(be.download(&v.log_var)?),
                None => None,
            },
        })
    }

    /// The model with the inputs of its hidden layer scaled by `up` and of
    /// its visible layer by `down`: p(h | v) = σ(up (v W + b_h)), p(v | h)
    /// = σ(down (h Wᵀ + b_v)). Salakhutdinov & Hinton (2009) pretrain a
    /// DBM's first RBM with `up = 2` and its last with `down = 2` (the
    /// middle ones of a deeper DBM with both, Salakhutdinov & Hinton 2012),
    /// standing in for the input the composed DBM's other neighbour will
    /// give; both layers must then be binary.
    pub fn with_multipliers(mut self, up: f32, down: f32) -> Result<Self> {
        for (what, m) in [("up", up), ("down", down)] {
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::value(
                    "rbm multipliers",
                    format!("{what} = {m}: must be positive"),
                ));
            }
        }
        if (up != 1.0 || down != 1.0) && !(self.visible.is_binary() && self.hidden.is_binary()) {
            return Err(Error::value(
                "rbm multipliers",
                format!(
                    "up = {up}, down = {down} on a {}-{} RBM: scaled inputs need binary units on both layers",
                    self.visible, self.hidden
                ),
            ));
        }
        self.up = up;
        self.down = down;
        Ok(self)
    }

    /// Recomputes what the visible variances derive (1/σ², σ, diag(σ⁻²) W,
    /// b_v/σ²) after `w`, `b_v` or the log-variances changed.
    pub fn refresh(&mut self, be: &B) -> Result<()> {
        match &mut self.var_v {
            Some(var) => var.refresh(be, &self.w, &self.b_v),
            None => Ok(()),
        }
    }

    /// The weights the visible layer meets as input: diag(σ⁻²) W, or W.
    pub fn w_in(&self) -> &B::Mat {
        self.var_v.as_ref().map_or(&self.w, |v| &v.w_in)
    }

    /// The visible biases paired with v in the energy: b_v/σ², or b_v.
    pub fn b_v_in(&self) -> &B::Mat {
        self.var_v.as_ref().map_or(&self.b_v, |v| &v.b_in)
    }

    /// `out = v/σ²` (a copy of v without variances): the statistic the
    /// gradients of W and b_v pair with the hidden means.
    pub fn visible_stat(&self, be: &B, v: &B::Mat, out: &mut B::Mat) -> Result<()> {
        be.copy(v, out)?;
        match &self.var_v {
            Some(var) => be.mul_row_vec(out, &var.prec),
            None => Ok(()),
        }
    }

    /// `out = alpha Σ_rows v ⊙ (v/2 - μ) + beta out` with μ = ph Wᵀ + b_v;
    /// times 1/σ² this is `-∂F/∂z` summed over the rows (see the module
    /// docs). `tmp` has the shape of `v`.
    pub fn log_var_stat(
        &self,
        be: &B,
        (v, ph): (&B::Mat, &B::Mat),
        tmp: &mut B::Mat,
        alpha: f32,
        beta: f32,
        out: &mut B::Mat,
    ) -> Result<()> {
        be.gemm(1.0, ph.n(), self.w.t(), 0.0, tmp)?;
        be.add_row_vec(tmp, &self.b_v, 1.0)?;
        be.axpby(0.5, v, -1.0, tmp)?;
        be.binary_inplace(Binary::Mul, tmp, v)?;
        be.col_sums(tmp, alpha, beta, out)
    }

    /// `self = a + b` parameter-wise (the fast-weights sampling model); the
    /// variances are `a`'s (fast weights do not touch them).
    pub fn set_sum(&mut self, be: &B, a: &Rbm<B>, b: &Rbm<B>) -> Result<()> {
        be.copy(&a.w, &mut self.w)?;
        be.binary_inplace(Binary::Add, &mut self.w, &b.w)?;
        be.copy(&a.b_v, &mut self.b_v)?;
        be.binary_inplace(Binary::Add, &mut self.b_v, &b.b_v)?;
        be.copy(&a.b_h, &mut self.b_h)?;
        be.binary_inplace(Binary::Add, &mut self.b_h, &b.b_h)?;
        if let (Some(dst), Some(src)) = (&mut self.var_v, &a.var_v) {
            be.copy(&src.log_var, &mut dst.log_var)?;
        }
        self.refresh(be)
    }

    /// The gradient of the mean free energy over the rows of `v`:
    /// `(∂F/∂W, ∂F/∂b_v, ∂F/∂b_h) = (-ṽᵀ E[h|v], -Σ ṽ, -Σ E[h|v]) / rows`
    /// with ṽ = v/σ², and `∂F/∂z` for Gaussian visible units.
    /// (Allocates; for tests and analysis, not for training loops.)
    pub fn free_energy_grad(&self, be: &B, v: &B::Mat) -> Result<FreeEnergyGrad<B>> {
        let n = v.rows();
        let (nv, nh) = (self.w.rows(), self.w.cols());
        let mut s = LayerScratch::new(be, n, nh)?;
        let mut ph = be.zeros(n, nh)?;
        self.hidden_given_visible(be, v, None, &mut ph, None, &mut s)?;
        let mut vt = be.zeros(n, nv)?;
        self.visible_stat(be, v, &mut vt)?;
        let scale = -1.0 / n as f32;
        let mut w = be.zeros(nv, nh)?;
        be.gemm(scale, vt.t(), ph.n(), 0.0, &mut w)?;
        let mut b_v = be.zeros(1, nv)?;
        be.col_sums(&vt, scale, 0.0, &mut b_v)?;
        let mut b_h = be.zeros(1, nh)?;
        be.col_sums(&ph, scale, 0.0, &mut b_h)?;
        let log_var = match &self.var_v {
            Some(var) => {
                let mut g = be.zeros(1, nv)?;
                self.log_var_stat(be, (v, &ph), &mut vt, scale, 0.0, &mut g)?;
                be.mul_row_vec(&mut g, &var.prec)?;
                Some(g)
            }
            None => None,
        };
        Ok(FreeEnergyGrad {
            w,
            b_v,
            b_h,
            log_var,
        })
    }

    /// The layer `h` meets `v` through: diag(σ⁻²) W, the hidden units.
    fn hidden_layer(&self) -> Layer<'_, B> {
        Layer {
            w: self.w_in().n(),
            units: self.hidden,
            bias: &self.b_h,
            groups: self.groups_h.as_ref(),
            sd: None,
            scale: self.up,
        }
    }

    /// The layer `v` meets `h` through: Wᵀ, the visible units (with their
    /// standard deviations when Gaussian).
    fn visible_layer(&self) -> Layer<'_, B> {
        Layer {
            w: self.w.t(),
            units: self.visible,
            bias: &self.b_v,
            groups: self.groups_v.as_ref(),
            sd: self.var_v.as_ref().map(|v| &v.sd),
            scale: self.down,
        }
    }

    /// `out = alpha Σ_i q_v(v_i)/σ_i² + beta out` per row (Gaussian visible
    /// units; nothing for the others). `tmp` has the shape of `v`.
    fn visible_base_energy(
        &self,
        be: &B,
        v: &B::Mat,
        tmp: &mut B::Mat,
        out: &mut B::Mat,
    ) -> Result<()> {
        if !self.visible.has_base_energy() {
            return Ok(());
        }
        self.visible.base_energy(be, v, tmp)?;
        if let Some(var) = &self.var_v {
            be.mul_row_vec(tmp, &var.prec)?;
        }
        be.row_sums(tmp, 1.0, 1.0, out)
    }

    /// The name of the first parameter whose sum is NaN or ±inf (a NaN or
    /// inf entry, or values so large that the model has diverged anyway):
    /// the check a training loop runs at epoch ends.
    pub fn first_non_finite(&self, be: &B) -> Result<Option<&'static str>> {
        for (name, m) in [("W", &self.w), ("b_v", &self.b_v), ("b_h", &self.b_h)] {
            if !be.sum(m)?.is_finite() {
                return Ok(Some(name));
            }
        }
        if let Some(var) = &self.var_v {
            if !be.sum(&var.log_var)?.is_finite() {
                return Ok(Some("log_var_v"));
            }
        }
        Ok(None)
    }
}

/// A layer being drawn given the other: the weights the other layer meets
/// (`W` or `Wᵀ`, as stored or scaled by the visible precisions), and the
/// drawn layer's units, biases, softmax groups and, for Gaussian units with
/// variances, their standard deviations.
struct Layer<'a, B: Backend> {
    w: Op<'a, B::Mat>,
    units: UnitKind,
    bias: &'a B::Mat,
    groups: Option<&'a GroupOps<B>>,
    sd: Option<&'a B::Mat>,
    /// The multiplier of the total input ([`Rbm::up`], [`Rbm::down`]).
    scale: f32,
}

/// Total input to a layer: `pre = x op(w) + bias`, times `beta` if given.
fn total_input<B: Backend>(
    be: &B,
    x: &B::Mat,
    layer: &Layer<'_, B>,
    beta: Option<&B::Mat>,
    pre: &mut B::Mat,
) -> Result<()> {
    be.gemm(1.0, x.n(), layer.w, 0.0, pre)?;
    be.add_row_vec(pre, layer.bias, 1.0)?;
    if let Some(b) = beta {
        be.mul_col_vec(pre, b)?;
    }
    Ok(())
}

/// One conditional of the bipartite energy, the same for both directions:
/// `x` is the other layer's state, `layer` the layer being drawn.
fn layer_given<B: Fused>(
    be: &B,
    x: &B::Mat,
    layer: Layer<'_, B>,
    beta: Option<&B::Mat>,
    mean: &mut B::Mat,
    sample: Option<Sample<'_, B::Mat>>,
    s: &mut LayerScratch<B>,
) -> Result<()> {
    if layer.units.is_binary() && beta.is_none() {
        // p(u = 1 | x) = σ(x W⁽ᵀ⁾ + b), sampled in the same pass.
        return be.sigmoid_affine(layer.scale, x.n(), layer.w, layer.bias, mean, sample);
    }
    if layer.scale != 1.0 {
        return Err(Error::value(
            "rbm multipliers",
            "a scaled input is defined for binary units at inverse temperature 1 only",
        ));
    }
    total_input(be, x, &layer, beta, &mut s.pre)?;
    if let Some(g) = layer.groups {
        g.mean(be, &s.pre, mean, &mut s.tmp)?;
        if let Some(Sample { out, rng }) = sample {
            g.sample(be, mean, out, &mut s.aux, &mut s.tmp, rng)?;
        }
        return Ok(());
    }
    layer.units.mean(be, &s.pre, mean)?;
    match (sample, layer.sd) {
        (Some(Sample { out, rng }), Some(sd)) => gaussian_per_unit(be, mean, sd, out, rng),
        (Some(Sample { out, rng }), None) => {
            layer.units.sample(be, &s.pre, mean, out, &mut s.aux, rng)
        }
        (None, _) => Ok(()),
    }
}

impl<B: Fused> FreeEnergy<B> for Rbm<B> {
    type Scratch = Scratch<B>;

    fn n_visible(&self) -> usize {
        self.w.rows()
    }

    fn free_energy_scratch(&self, be: &B, rows: usize) -> Result<Scratch<B>> {
        Scratch::new(be, rows, self.w.rows(), self.w.cols())
    }

    fn free_energy(&self, be: &B, v: &B::Mat, s: &mut Scratch<B>, out: &mut B::Mat) -> Result<()> {
        // x = ṽ W + b_h;  F = -Σ_j A_h(x_j) - ṽ·b_v + q_v(v)/σ²
        total_input(be, v, &self.hidden_layer(), None, &mut s.h.pre)?;
        match &self.groups_h {
            Some(g) => g.log_partition(be, &s.h.pre, &mut s.h.tmp, &mut s.h.aux)?,
            None => self.hidden.log_partition(be, &s.h.pre, &mut s.h.tmp)?,
        }
        be.row_sums(&s.h.tmp, -1.0, 0.0, out)?;
        be.gemm(-1.0, v.n(), self.b_v_in().t(), 1.0, out)?;
        self.visible_base_energy(be, v, &mut s.v.tmp, out)
    }
}

impl<B: Fused> Bipartite<B> for Rbm<B> {
    fn n_hidden(&self) -> usize {
        self.w.cols()
    }

    fn hidden_given_visible(
        &self,
        be: &B,
        v: &B::Mat,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
        s: &mut LayerScratch<B>,
    ) -> Result<()> {
        layer_given(be, v, self.hidden_layer(), beta, mean, sample, s)
    }

    fn visible_given_hidden(
        &self,
        be: &B,
        h: &B::Mat,
        beta: Option<&B::Mat>,
        mean: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
        s: &mut LayerScratch<B>,
    ) -> Result<()> {
        layer_given(be, h, self.visible_layer(), beta, mean, sample, s)
    }

    fn linear_energy(
        &self,
        be: &B,
        v: &B::Mat,
        h: &B::Mat,
        s: &mut Scratch<B>,
        out: &mut B::Mat,
    ) -> Result<()> {
        // -Σ_j (ṽ W)_j h_j
        be.gemm(1.0, v.n(), self.w_in().n(), 0.0, &mut s.h.pre)?;
        be.binary_inplace(Binary::Mul, &mut s.h.pre, h)?;
        be.row_sums(&s.h.pre, -1.0, 0.0, out)?;
        // - ṽ·b_v - h·b_h
        be.gemm(-1.0, v.n(), self.b_v_in().t(), 1.0, out)?;
        be.gemm(-1.0, h.n(), self.b_h.t(), 1.0, out)
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
        self.visible_base_energy(be, v, &mut s.v.tmp, out)?;
        if self.hidden.has_base_energy() {
            self.hidden.base_energy(be, h, &mut s.h.tmp)?;
            be.row_sums(&s.h.tmp, 1.0, 1.0, out)?;
        }
        Ok(())
    }
}
