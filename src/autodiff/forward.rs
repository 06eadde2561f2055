//! The forward rule of every op, in backend ops, into the node's planned
//! buffer.

use super::graph::{Loss, Noise, Op, Var};
use super::plan::{Aux, Bindings, Plan};
use crate::backend::{Binary, Fused, Matrix, Unary};
use crate::error::{Error, Result};
use crate::rng::RngStream;

/// The value of `v`: bound by the caller (inputs, parameters) or planned.
pub(crate) fn val<'a, B: Fused>(
    plan_values: &'a [Option<B::Mat>],
    ops: &[Op],
    b: &'a Bindings<'a, B>,
    v: Var,
) -> Result<&'a B::Mat> {
    match ops[v.0] {
        Op::Input(i) => Ok(b.inputs[i]),
        Op::Param(i) => Ok(b.params[i]),
        _ => plan_values[v.0]
            .as_ref()
            .ok_or_else(|| Error::value("autodiff", format!("node {} has no value", v.0))),
    }
}

impl<B: Fused> Plan<B> {
    /// Runs the graph forward: every planned value, the loss included.
    /// Noise nodes draw from `rng` in node order.
    pub fn forward(&mut self, be: &B, b: &Bindings<'_, B>, rng: &mut RngStream) -> Result<()> {
        self.check(b)?;
        let ops: Vec<Op> = self.graph.nodes.iter().map(|n| n.op).collect();
        for (n, &op) in ops.iter().enumerate() {
            if self.values[n].is_none() {
                continue;
            }
            let (before, rest) = self.values.split_at_mut(n);
            let y = rest[0].as_mut().expect("checked above");
            let v = |x: Var| val::<B>(before, &ops, b, x);
            let aux = &mut self.aux[n];
            if self.fused[n] {
                fused_sigmoid(be, &ops, n, &v, y)?;
                continue;
            }
            match op {
                Op::Input(_) | Op::Param(_) => {}
                Op::Noise { x, noise } => noise_forward(be, v(x)?, noise, aux, y, rng)?,
                Op::Loss { loss, a, b: t } => {
                    let rows = v(a)?.rows();
                    let ones = &self.ones.iter().find(|(r, _)| *r == rows).expect("ones").1;
                    loss_forward(be, loss, (v(a)?, v(t)?), aux, ones, y)?
                }
                Op::KlSparsity { h, rho } => kl_forward(be, v(h)?, rho, aux, y)?,
                _ => simple_forward(be, op, &v, aux, y)?,
            }
        }
        Ok(())
    }
}

/// `sigmoid(op(a) op(b) + bias)` in one pass for a fused node `n`.
fn fused_sigmoid<'a, B: Fused>(
    be: &B,
    ops: &[Op],
    n: usize,
    v: &dyn Fn(Var) -> Result<&'a B::Mat>,
    y: &mut B::Mat,
) -> Result<()> {
    let Op::Map { x: pre, .. } = ops[n] else {
        unreachable!("only sigmoid nodes are fused")
    };
    let Op::AddRow { x: mm, v: bias } = ops[pre.0] else {
        unreachable!("a fused sigmoid reads a bias add")
    };
    let Op::MatMul { a, ta, b, tb } = ops[mm.0] else {
        unreachable!("a fused bias add reads a product")
    };
    let (a, b) = (
        crate::backend::Op { m: v(a)?, t: ta },
        crate::backend::Op { m: v(b)?, t: tb },
    );
    be.sigmoid_affine(1.0, a, b, v(bias)?, y, None)
}

/// The ops whose forward is one or two backend calls.
fn simple_forward<'a, B: Fused>(
    be: &B,
    op: Op,
    v: &dyn Fn(Var) -> Result<&'a B::Mat>,
    aux: &mut Aux<B>,
    y: &mut B::Mat,
) -> Result<()> {
    use crate::backend::Op as Operand;
    match op {
        Op::MatMul { a, ta, b, tb } => {
            let (a, b) = (Operand { m: v(a)?, t: ta }, Operand { m: v(b)?, t: tb });
            be.gemm(1.0, a, b, 0.0, y)
        }
        Op::AddRow { x, v: r } => copy_then(be, v(x)?, y, |y| be.add_row_vec(y, v(r)?, 1.0)),
        Op::AddCol { x, v: c } => copy_then(be, v(x)?, y, |y| be.add_col_vec(y, v(c)?, 1.0)),
        Op::MulRow { x, v: r } => copy_then(be, v(x)?, y, |y| be.mul_row_vec(y, v(r)?)),
        Op::MulCol { x, v: c } => copy_then(be, v(x)?, y, |y| be.mul_col_vec(y, v(c)?)),
        Op::Map { f, x } => be.unary(f, v(x)?, y),
        Op::Zip { f, a, b } => be.binary(f, v(a)?, v(b)?, y),
        Op::Affine { x, alpha, beta } => copy_then(be, v(x)?, y, |y| be.affine(y, alpha, beta)),
        Op::SumRows { x } => be.col_sums(v(x)?, 1.0, 0.0, y),
        Op::SumCols { x } => be.row_sums(v(x)?, 1.0, 0.0, y),
        Op::Sum { x } => {
            be.row_sums(v(x)?, 1.0, 0.0, &mut aux.col[0])?;
            be.col_sums(&aux.col[0], 1.0, 0.0, y)
        }
        Op::Shrink { x, lambda } => be.shrink(v(x)?, lambda, y),
        Op::Input(_)
        | Op::Param(_)
        | Op::Noise { .. }
        | Op::Loss { .. }
        | Op::KlSparsity { .. } => {
            unreachable!("handled by the caller")
        }
    }
}

fn copy_then<B: Fused>(
    be: &B,
    x: &B::Mat,
    y: &mut B::Mat,
    f: impl FnOnce(&mut B::Mat) -> Result<()>,
) -> Result<()> {
    be.copy(x, y)?;
    f(y)
}

/// Fresh corruption of `x` (buffers: see `noise_buffers`).
fn noise_forward<B: Fused>(
    be: &B,
    x: &B::Mat,
    noise: Noise,
    aux: &mut Aux<B>,
    y: &mut B::Mat,
    rng: &mut RngStream,
) -> Result<()> {
    let t = &mut aux.t;
    match noise {
        Noise::Masking(_) | Noise::Dropout(_) => {
            let (probs, rest) = t.split_at_mut(1);
            be.bernoulli(&probs[0], &mut rest[0], rng)?;
            be.binary(Binary::Mul, x, &rest[0], y)?;
            if let Noise::Dropout(p) = noise {
                be.affine(y, 1.0 / (1.0 - p), 0.0)?;
            }
            Ok(())
        }
        Noise::SaltPepper(_) => {
            let [probs, keep, half, salt, _] = &mut t[..] else {
                unreachable!("five buffers")
            };
            be.bernoulli(probs, keep, rng)?;
            be.bernoulli(half, salt, rng)?;
            // salt on the corrupted entries, then keep = 1 - mask.
            be.binary_inplace(Binary::Mul, salt, keep)?;
            be.affine(keep, -1.0, 1.0)?;
            be.binary(Binary::Mul, x, keep, y)?;
            be.binary_inplace(Binary::Add, y, salt)
        }
        Noise::Gaussian(s) => be.gaussian(x, s, y, rng),
    }
}

/// The fused losses (buffers: two of the predictions' shape, and columns).
fn loss_forward<B: Fused>(
    be: &B,
    loss: Loss,
    (z, t): (&B::Mat, &B::Mat),
    aux: &mut Aux<B>,
    ones: &B::Mat,
    y: &mut B::Mat,
) -> Result<()> {
    let inv_n = 1.0 / z.rows().max(1) as f32;
    let (t0, t1) = aux.t.split_at_mut(1);
    let (t0, t1) = (&mut t0[0], &mut t1[0]);
    let col = &mut aux.col;
    match loss {
        Loss::SigmoidBce => {
            be.unary(Unary::Softplus, z, t0)?;
            be.binary(Binary::Mul, t, z, t1)?;
            be.binary_inplace(Binary::Sub, t0, t1)?;
        }
        Loss::SquaredError => {
            be.binary(Binary::Sub, z, t, t1)?;
            be.unary(Unary::Square, t1, t0)?;
        }
        Loss::SoftmaxXent => {
            let [m, se, lse, recip, tz, per_row] = &mut col[..] else {
                unreachable!("six columns")
            };
            // t0 = softmax(z) (kept for the backward pass), lse = log Σ e^z.
            be.row_max(z, m)?;
            be.copy(z, t0)?;
            be.add_col_vec(t0, m, -1.0)?;
            be.unary_inplace(Unary::Exp, t0)?;
            be.row_sums(t0, 1.0, 0.0, se)?;
            be.unary(Unary::Log, se, lse)?;
            be.binary_inplace(Binary::Add, lse, m)?;
            be.binary(Binary::Div, ones, se, recip)?;
            be.mul_col_vec(t0, recip)?;
            be.binary(Binary::Mul, t, z, t1)?;
            be.row_sums(t1, 1.0, 0.0, tz)?;
            be.binary(Binary::Sub, lse, tz, per_row)?;
            return be.col_sums(per_row, inv_n, 0.0, y);
        }
    }
    be.row_sums(t0, 1.0, 0.0, &mut col[0])?;
    be.col_sums(&col[0], inv_n, 0.0, y)
}

/// `Σ_j ρ log(ρ/ρ̂_j) + (1-ρ) log((1-ρ)/(1-ρ̂_j))`, `ρ̂ = mean_rows(h)`.
fn kl_forward<B: Fused>(
    be: &B,
    h: &B::Mat,
    rho: f32,
    aux: &mut Aux<B>,
    y: &mut B::Mat,
) -> Result<()> {
    let [rh, l1, l2] = &mut aux.row[..] else {
        unreachable!("three rows")
    };
    let (n, c) = h.shape();
    be.col_sums(h, 1.0 / n.max(1) as f32, 0.0, rh)?;
    be.unary(Unary::Log, rh, l1)?;
    be.copy(rh, l2)?;
    be.affine(l2, -1.0, 1.0)?;
    be.unary_inplace(Unary::Log, l2)?;
    be.row_sums(l1, -rho, 0.0, y)?;
    be.row_sums(l2, -(1.0 - rho), 1.0, y)?;
    let (r, q) = (rho as f64, 1.0 - rho as f64);
    let k = c as f64 * (r * r.ln() + q * q.ln());
    be.affine(y, 1.0, k as f32)
}
