//! Fused kernels: several core ops in one pass, for the loops that run them
//! millions of times (block Gibbs sampling, the momentum step of training,
//! the tempered pass of annealing).
//!
//! Every method has a default composition in core [`Backend`] ops
//! ([`composed`]), so a backend without a fused kernel is still complete and
//! correct; the CPU and the GPU override each with one pass (and are tested
//! against the compositions). Random draws follow the core ops' rules: a
//! sample consumes one draw offset, and element `i` (row-major) of it takes
//! uniform `i` of that draw, so fused and composed paths draw the same bits
//! from the same probabilities.

use super::{
    col_vec_shape, gemm_dims, row_vec_shape, same_shape, Backend, Binary, Matrix, Op, Unary,
};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// Where a fused op puts a Bernoulli sample, and the stream it draws from
/// (one draw offset per call; none when no sample is asked for).
pub struct Sample<'a, M> {
    pub out: &'a mut M,
    pub rng: &'a mut RngStream,
}

/// One momentum step of a bias from the column sums of two statistics (the
/// positive and negative phase): `step = mom * step + alpha_a Σ_rows a +
/// alpha_b Σ_rows b`, then `param += step`. `a` and `b` share their column
/// count; `step` and `param` are 1 x cols.
pub struct BiasStep<'a, M> {
    pub a: &'a M,
    pub b: &'a M,
    pub step: &'a mut M,
    pub param: &'a mut M,
}

/// The hidden half of an annealing or tempering step over `x = v W`
/// (rows x nh), between inverse temperatures `beta0` and `beta1`: with
/// `y = x + b_h`, `lw[r] += Σ_j softplus(beta1 y_rj) - softplus(beta0 y_rj)`
/// (the change of log p*(v) with the hidden units summed out) and, if a
/// sample is asked for, `h = bernoulli(sigmoid(beta1 y))`.
///
/// With `linear_last = Some(c)` the last column of `x` is not a hidden unit
/// but a linear term carried along by the GEMM that made `x` (AIS puts
/// `v·(b_v - b_A)` there): it adds `(beta1 - beta0) y` to `lw`, and its `h`
/// entry is set to `c` (AIS passes `(1-β)/β`, so that the next GEMM with a
/// matching extra weight column adds the base-rate bias).
pub struct Tempered<'a, M> {
    /// 1 x nh.
    pub b_h: &'a M,
    pub beta0: f32,
    pub beta1: f32,
    pub linear_last: Option<f32>,
}

/// The fused ops, with default compositions in core ops.
pub trait Fused: Backend {
    /// `prob = sigmoid(alpha * (op(A) op(B) + bias))` with `bias` 1 x cols,
    /// and, if asked, `sample = bernoulli(prob)`: the conditional block Gibbs
    /// sampling lives on, in one pass.
    fn sigmoid_affine(
        &self,
        alpha: f32,
        a: Op<'_, Self::Mat>,
        b: Op<'_, Self::Mat>,
        bias: &Self::Mat,
        prob: &mut Self::Mat,
        sample: Option<Sample<'_, Self::Mat>>,
    ) -> Result<()> {
        composed::sigmoid_affine(self, alpha, a, b, bias, prob, sample)
    }

    /// `prob = sigmoid(alpha * (prob + op(A) op(B) + bias))`, and, if asked,
    /// `sample = bernoulli(prob)`: the conditional of a layer with two
    /// neighbours (a deep Boltzmann machine's inner layers), called after
    /// `prob` received the other neighbour's product or an input that stays
    /// fixed over the iterations of mean-field inference.
    fn sigmoid_affine_acc(
        &self,
        alpha: f32,
        a: Op<'_, Self::Mat>,
        b: Op<'_, Self::Mat>,
        bias: &Self::Mat,
        prob: &mut Self::Mat,
        sample: Option<Sample<'_, Self::Mat>>,
    ) -> Result<()> {
        composed::sigmoid_affine_acc(self, alpha, a, b, bias, prob, sample)
    }

    /// See [`BiasStep`]; `alpha_a` and `alpha_b` scale the two statistics.
    fn bias_step(
        &self,
        s: BiasStep<'_, Self::Mat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        composed::bias_step(self, s, alpha_a, alpha_b, mom)
    }

    /// [`bias_step`](Self::bias_step) for two layers at once with the same
    /// scales and momentum (on a GPU, one dispatch instead of two when the
    /// statistics of each phase share their row count).
    fn bias_steps(
        &self,
        v: BiasStep<'_, Self::Mat>,
        h: BiasStep<'_, Self::Mat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        self.bias_step(v, alpha_a, alpha_b, mom)?;
        self.bias_step(h, alpha_a, alpha_b, mom)
    }

    /// See [`Tempered`]; `lw` is rows x 1, the sample rows x nh (element
    /// index `r * nh + j`, as in [`Backend::bernoulli`]).
    fn tempered_hidden(
        &self,
        x: &Self::Mat,
        p: &Tempered<'_, Self::Mat>,
        lw: &mut Self::Mat,
        h: Option<Sample<'_, Self::Mat>>,
    ) -> Result<()> {
        composed::tempered_hidden(self, x, p, lw, h)
    }

    /// `x = v W`, then [`tempered_hidden`](Self::tempered_hidden) of `x`:
    /// the hidden half of an annealing step from the visible states. `x` is
    /// scratch, its contents afterwards unspecified (a GPU that splits the
    /// product over k sums the partial products in the tempered pass itself,
    /// in the reduction's order, instead of writing `x`).
    fn gemm_tempered_hidden(
        &self,
        v: &Self::Mat,
        w: &Self::Mat,
        x: &mut Self::Mat,
        p: &Tempered<'_, Self::Mat>,
        lw: &mut Self::Mat,
        h: Option<Sample<'_, Self::Mat>>,
    ) -> Result<()> {
        self.gemm(1.0, v.n(), w.n(), 0.0, x)?;
        self.tempered_hidden(x, p, lw, h)
    }
}

/// Shape checks shared by every `sigmoid_affine`; returns (m, k, n).
pub fn sigmoid_affine_check<M: Matrix>(
    a: Op<'_, M>,
    b: Op<'_, M>,
    bias: &M,
    prob: &M,
    sample: Option<&M>,
) -> Result<(usize, usize, usize)> {
    let dims = gemm_dims("sigmoid_affine", a, b, prob.shape())?;
    row_vec_shape("sigmoid_affine (bias)", prob.shape(), bias.shape())?;
    if let Some(s) = sample {
        same_shape("sigmoid_affine (sample)", prob.shape(), s.shape())?;
    }
    Ok(dims)
}

/// Shape checks shared by every `bias_step`.
pub fn bias_step_check<M: Matrix>(s: &BiasStep<'_, M>) -> Result<()> {
    let (a, b, step, param) = (s.a.shape(), s.b.shape(), s.step.shape(), s.param.shape());
    let n = a.1;
    if b.1 != n || step != (1, n) || param != (1, n) {
        return Err(Error::shape(
            "bias_step",
            format!(
                "statistics {}x{} and {}x{}, step {}x{}, parameter {}x{}: need equal column \
                 counts and 1x{n} step and parameter",
                a.0, a.1, b.0, b.1, step.0, step.1, param.0, param.1
            ),
        ));
    }
    Ok(())
}

/// Shape checks shared by every `tempered_hidden`.
pub fn tempered_hidden_check<M: Matrix>(
    x: &M,
    p: &Tempered<'_, M>,
    lw: &M,
    h: Option<&M>,
) -> Result<()> {
    row_vec_shape("tempered_hidden (b_h)", x.shape(), p.b_h.shape())?;
    col_vec_shape("tempered_hidden (lw)", x.shape(), lw.shape())?;
    if let Some(h) = h {
        same_shape("tempered_hidden (h)", x.shape(), h.shape())?;
    }
    Ok(())
}

/// The default compositions of the fused ops in core ops: what a backend
/// without fused kernels runs, and the reference the fused kernels are
/// tested against. They allocate their temporaries per call.
pub mod composed {
    use super::*;

    pub fn sigmoid_affine<B: Backend + ?Sized>(
        be: &B,
        alpha: f32,
        a: Op<'_, B::Mat>,
        b: Op<'_, B::Mat>,
        bias: &B::Mat,
        prob: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
    ) -> Result<()> {
        sigmoid_of_product(be, (alpha, 0.0), (a, b), bias, prob, sample)
    }

    pub fn sigmoid_affine_acc<B: Backend + ?Sized>(
        be: &B,
        alpha: f32,
        a: Op<'_, B::Mat>,
        b: Op<'_, B::Mat>,
        bias: &B::Mat,
        prob: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
    ) -> Result<()> {
        sigmoid_of_product(be, (alpha, 1.0), (a, b), bias, prob, sample)
    }

    /// `prob = sigmoid(alpha (beta prob + op(A) op(B) + bias))` and its
    /// sample: both sigmoid compositions, `beta` 0 or 1.
    fn sigmoid_of_product<B: Backend + ?Sized>(
        be: &B,
        (alpha, beta): (f32, f32),
        (a, b): (Op<'_, B::Mat>, Op<'_, B::Mat>),
        bias: &B::Mat,
        prob: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
    ) -> Result<()> {
        sigmoid_affine_check(a, b, bias, prob, sample.as_ref().map(|s| &*s.out))?;
        be.gemm(1.0, a, b, beta, prob)?;
        be.add_row_vec(prob, bias, 1.0)?;
        be.affine(prob, alpha, 0.0)?;
        be.unary_inplace(Unary::Sigmoid, prob)?;
        match sample {
            Some(s) => be.bernoulli(prob, s.out, s.rng),
            None => Ok(()),
        }
    }

    pub fn bias_step<B: Backend + ?Sized>(
        be: &B,
        s: BiasStep<'_, B::Mat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        bias_step_check(&s)?;
        be.col_sums(s.a, alpha_a, mom, s.step)?;
        be.col_sums(s.b, alpha_b, 1.0, s.step)?;
        be.axpby(1.0, s.step, 1.0, s.param)
    }

    pub fn tempered_hidden<B: Backend + ?Sized>(
        be: &B,
        x: &B::Mat,
        p: &Tempered<'_, B::Mat>,
        lw: &mut B::Mat,
        h: Option<Sample<'_, B::Mat>>,
    ) -> Result<()> {
        tempered_hidden_check(x, p, lw, h.as_ref().map(|s| &*s.out))?;
        let (rows, n) = x.shape();
        if n == 0 {
            return Ok(());
        }
        let soft = if p.linear_last.is_some() { n - 1 } else { n };
        // 1 on the hidden units, 0 on the linear column (if any).
        let hidden = be.upload(&HostMat::from_fn(1, n, |_, j| (j < soft) as u8 as f32))?;
        let linear = be.upload(&HostMat::from_fn(1, n, |_, j| (j >= soft) as u8 as f32))?;
        let mut y = be.zeros(rows, n)?;
        be.copy(x, &mut y)?;
        be.add_row_vec(&mut y, p.b_h, 1.0)?;
        let scaled_softplus = |beta: f32, out: &mut B::Mat| -> Result<()> {
            be.copy(&y, out)?;
            be.affine(out, beta, 0.0)?;
            be.unary_inplace(Unary::Softplus, out)
        };
        let mut d = be.zeros(rows, n)?;
        let mut t = be.zeros(rows, n)?;
        scaled_softplus(p.beta1, &mut d)?;
        scaled_softplus(p.beta0, &mut t)?;
        be.binary_inplace(Binary::Sub, &mut d, &t)?;
        be.mul_row_vec(&mut d, &hidden)?;
        if p.linear_last.is_some() {
            be.copy(&y, &mut t)?;
            be.affine(&mut t, p.beta1 - p.beta0, 0.0)?;
            be.mul_row_vec(&mut t, &linear)?;
            be.binary_inplace(Binary::Add, &mut d, &t)?;
        }
        be.row_sums(&d, 1.0, 1.0, lw)?;
        if let Some(s) = h {
            be.copy(&y, &mut t)?;
            be.affine(&mut t, p.beta1, 0.0)?;
            be.unary_inplace(Unary::Sigmoid, &mut t)?;
            be.bernoulli(&t, s.out, s.rng)?;
            if let Some(c) = p.linear_last {
                be.mul_row_vec(s.out, &hidden)?;
                be.add_row_vec(s.out, &linear, c)?;
            }
        }
        Ok(())
    }
}
