//! The backward rule of every op, written once: given the gradient `dy` of
//! a node, its contribution to the gradient of each argument that needs
//! one. The first contribution to a gradient in a pass overwrites it
//! (`beta = 0`), the others add (`beta = 1`), so a node read twice (a tied
//! decoder's Wᵀ) sums both.

use super::forward::val;
use super::graph::{Loss, Noise, Op, Var};
use super::plan::{Aux, Bindings, Plan};
use crate::backend::{Binary, Fused, Matrix, Op as Operand, Trans, Unary};
use crate::error::Result;

/// What a rule needs besides its own buffers: the values of the nodes
/// before it, and where their gradients go.
struct Ctx<'a, B: Fused> {
    be: &'a B,
    ops: &'a [Op],
    values: &'a [Option<B::Mat>],
    b: &'a Bindings<'a, B>,
    /// Gradients of the nodes before this one (None: not needed).
    grads: &'a mut [Option<B::Mat>],
    written: &'a mut [bool],
}

impl<'a, B: Fused> Ctx<'a, B> {
    fn v(&self, x: Var) -> Result<&'a B::Mat> {
        val::<B>(self.values, self.ops, self.b, x)
    }

    /// Adds to the gradient of `x` (if it needs one) what `f` writes with
    /// the given beta (0 for the first contribution of the pass, else 1).
    fn add(&mut self, x: Var, f: impl FnOnce(&B, &mut B::Mat, f32) -> Result<()>) -> Result<()> {
        let Some(g) = self.grads[x.0].as_mut() else {
            return Ok(());
        };
        let beta = if self.written[x.0] { 1.0 } else { 0.0 };
        self.written[x.0] = true;
        f(self.be, g, beta)
    }

    fn wants(&self, x: Var) -> bool {
        self.grads[x.0].is_some()
    }

    /// Adds `alpha t` to the gradient of `x`.
    fn add_scaled(&mut self, x: Var, alpha: f32, t: &B::Mat) -> Result<()> {
        self.add(x, |be, g, beta| be.axpby(alpha, t, beta, g))
    }

    /// Adds the broadcast of `r` (1 x cols) over the rows (`row`) or of the
    /// rows x 1 `r` over the columns to the gradient of `x`, times alpha.
    fn add_broadcast(&mut self, x: Var, r: &B::Mat, row: bool, alpha: f32) -> Result<()> {
        self.add(x, |be, g, beta| {
            if beta == 0.0 {
                be.fill(g, 0.0)?;
            }
            if row {
                be.add_row_vec(g, r, alpha)
            } else {
                be.add_col_vec(g, r, alpha)
            }
        })
    }
}

impl<B: Fused> Plan<B> {
    /// Runs the rules backward from the loss (its gradient is 1): after
    /// this, [`param_grad`](Self::param_grad) holds ∂loss/∂θ for every
    /// parameter. Call after [`forward`](Self::forward) with the same
    /// bindings.
    pub fn backward(&mut self, be: &B, b: &Bindings<'_, B>) -> Result<()> {
        self.check(b)?;
        let ops: Vec<Op> = self.graph.nodes.iter().map(|n| n.op).collect();
        self.written.iter_mut().for_each(|w| *w = false);
        let loss = self.loss.0;
        if let Some(g) = self.grads[loss].as_mut() {
            be.fill(g, 1.0)?;
        }
        for n in (0..=loss).rev() {
            let (lower, upper) = self.grads.split_at_mut(n);
            let Some(dy) = upper[0].as_ref() else {
                continue;
            };
            if !matches!(ops[n], Op::Input(_) | Op::Param(_)) && (n == loss || self.written[n]) {
                let ones = &self.ones;
                let one = |r: usize| &ones.iter().find(|(k, _)| *k == r).expect("ones").1;
                let mut cx = Ctx {
                    be,
                    ops: &ops,
                    values: &self.values,
                    b,
                    grads: lower,
                    written: &mut self.written[..n],
                };
                let y = self.values[n].as_ref();
                rule(&mut cx, ops[n], (dy, y), &mut self.aux[n], &one)?;
            }
        }
        Ok(())
    }
}

/// The backward rule of `op`, given its gradient `dy` and its value `y`.
fn rule<'o, B: Fused>(
    cx: &mut Ctx<'_, B>,
    op: Op,
    (dy, y): (&B::Mat, Option<&B::Mat>),
    aux: &mut Aux<B>,
    ones: &dyn Fn(usize) -> &'o B::Mat,
) -> Result<()> {
    match op {
        Op::Input(_) | Op::Param(_) => Ok(()),
        Op::MatMul { a, ta, b, tb } => matmul_rule(cx, (a, ta, b, tb), dy),
        Op::AddRow { x, v } | Op::AddCol { x, v } => {
            cx.add_scaled(x, 1.0, dy)?;
            let row = matches!(op, Op::AddRow { .. });
            cx.add(v, |be, g, beta| match row {
                true => be.col_sums(dy, 1.0, beta, g),
                false => be.row_sums(dy, 1.0, beta, g),
            })
        }
        Op::MulRow { x, v } | Op::MulCol { x, v } => {
            let row = matches!(op, Op::MulRow { .. });
            scale_rule(cx, (x, v, row), dy, &mut aux.t[0])
        }
        Op::Map { f, x } => map_rule(cx, (f, x), (dy, y), &mut aux.t[0]),
        Op::Zip { f, a, b } => zip_rule(cx, (f, a, b), dy, &mut aux.t[0]),
        Op::Affine { x, alpha, .. } => cx.add_scaled(x, alpha, dy),
        Op::SumRows { x } => cx.add_broadcast(x, dy, true, 1.0),
        Op::SumCols { x } => cx.add_broadcast(x, dy, false, 1.0),
        Op::Sum { x } => {
            // dy is 1 x 1: spread over a rows x 1 column, then over the columns.
            let r = cx.v(x).map(|m| m.rows()).unwrap_or(0);
            cx.be.gemm(1.0, ones(r).n(), dy.n(), 0.0, &mut aux.col[0])?;
            cx.add_broadcast(x, &aux.col[0], false, 1.0)
        }
        Op::Shrink { x, lambda } => {
            // The subgradient 1[|x| > λ].
            let t = &mut aux.t[0];
            cx.be.unary(Unary::Abs, cx.v(x)?, t)?;
            cx.be.affine(t, 1.0, -lambda)?;
            cx.be.unary_inplace(Unary::Step, t)?;
            cx.be.binary_inplace(Binary::Mul, t, dy)?;
            cx.add_scaled(x, 1.0, t)
        }
        Op::Noise { x, noise } => noise_rule(cx, (x, noise), dy, aux),
        Op::Loss { loss, a, b } => loss_rule(cx, (loss, a, b), dy, aux, ones),
        Op::KlSparsity { h, rho } => kl_rule(cx, (h, rho), dy, aux),
    }
}

/// `C = op(A) op(B)`: `dA' = dC op(B)ᵀ`, `dB' = op(A)ᵀ dC` for `A' = op(A)`.
fn matmul_rule<B: Fused>(
    cx: &mut Ctx<'_, B>,
    (a, ta, b, tb): (Var, Trans, Var, Trans),
    dy: &B::Mat,
) -> Result<()> {
    let flip = |t: Trans| if t == Trans::N { Trans::T } else { Trans::N };
    if cx.wants(a) {
        let bm = cx.v(b)?;
        cx.add(a, |be, g, beta| match ta {
            Trans::N => be.gemm(1.0, dy.n(), Operand { m: bm, t: flip(tb) }, beta, g),
            Trans::T => be.gemm(1.0, Operand { m: bm, t: tb }, dy.t(), beta, g),
        })?;
    }
    if cx.wants(b) {
        let am = cx.v(a)?;
        cx.add(b, |be, g, beta| match tb {
            Trans::N => be.gemm(1.0, Operand { m: am, t: flip(ta) }, dy.n(), beta, g),
            Trans::T => be.gemm(1.0, dy.t(), Operand { m: am, t: ta }, beta, g),
        })?;
    }
    Ok(())
}

/// `y = x ⊙ v` broadcast (a row or a column vector).
fn scale_rule<B: Fused>(
    cx: &mut Ctx<'_, B>,
    (x, v, row): (Var, Var, bool),
    dy: &B::Mat,
    t: &mut B::Mat,
) -> Result<()> {
    let be = cx.be;
    if cx.wants(x) {
        be.copy(dy, t)?;
        if row {
            be.mul_row_vec(t, cx.v(v)?)?;
        } else {
            be.mul_col_vec(t, cx.v(v)?)?;
        }
        cx.add_scaled(x, 1.0, t)?;
    }
    if cx.wants(v) {
        be.binary(Binary::Mul, dy, cx.v(x)?, t)?;
        cx.add(v, |be, g, beta| match row {
            true => be.col_sums(t, 1.0, beta, g),
            false => be.row_sums(t, 1.0, beta, g),
        })?;
    }
    Ok(())
}

/// `y = f(x)`: `dx = dy ⊙ f'(x)`, with f' from y where that is cheaper.
fn map_rule<B: Fused>(
    cx: &mut Ctx<'_, B>,
    (f, x): (Unary, Var),
    (dy, y): (&B::Mat, Option<&B::Mat>),
    t: &mut B::Mat,
) -> Result<()> {
    if !cx.wants(x) {
        return Ok(());
    }
    let be = cx.be;
    // A fused sigmoid's argument keeps no value: read x only where needed.
    let xv = || cx.v(x);
    let y = || y.ok_or_else(|| crate::Error::value("autodiff", "a mapped node without its value"));
    match f {
        Unary::Sigmoid => {
            be.copy(y()?, t)?;
            be.affine(t, -1.0, 1.0)?;
            be.binary_inplace(Binary::Mul, t, y()?)?;
        }
        Unary::Tanh => {
            be.unary(Unary::Square, y()?, t)?;
            be.affine(t, -1.0, 1.0)?;
        }
        Unary::Relu => be.unary(Unary::Step, xv()?, t)?,
        Unary::Softplus => be.unary(Unary::Sigmoid, xv()?, t)?,
        Unary::Exp => be.copy(y()?, t)?,
        Unary::Square => {
            be.copy(xv()?, t)?;
            be.affine(t, 2.0, 0.0)?;
        }
        Unary::Abs => be.unary(Unary::Sign, xv()?, t)?,
        Unary::Neg => be.fill(t, -1.0)?,
        Unary::Log => {
            be.binary(Binary::Div, dy, xv()?, t)?;
            return cx.add_scaled(x, 1.0, t);
        }
        Unary::Sqrt => {
            be.binary(Binary::Div, dy, y()?, t)?;
            return cx.add_scaled(x, 0.5, t);
        }
        // Piecewise constant: the gradient is zero wherever it exists.
        Unary::Step | Unary::Sign => return Ok(()),
        Unary::NreluLogPartition => unreachable!("refused when the plan is made"),
    }
    be.binary_inplace(Binary::Mul, t, dy)?;
    cx.add_scaled(x, 1.0, t)
}

fn zip_rule<B: Fused>(
    cx: &mut Ctx<'_, B>,
    (f, a, b): (Binary, Var, Var),
    dy: &B::Mat,
    t: &mut B::Mat,
) -> Result<()> {
    match f {
        Binary::Add => {
            cx.add_scaled(a, 1.0, dy)?;
            cx.add_scaled(b, 1.0, dy)
        }
        Binary::Sub => {
            cx.add_scaled(a, 1.0, dy)?;
            cx.add_scaled(b, -1.0, dy)
        }
        Binary::Mul => {
            for (this, other) in [(a, b), (b, a)] {
                if cx.wants(this) {
                    cx.be.binary(Binary::Mul, dy, cx.v(other)?, t)?;
                    cx.add_scaled(this, 1.0, t)?;
                }
            }
            Ok(())
        }
        other => Err(crate::Error::value(
            "autodiff",
            format!("{other:?} has no rule in the graph"),
        )),
    }
}

fn noise_rule<B: Fused>(
    cx: &mut Ctx<'_, B>,
    (x, noise): (Var, Noise),
    dy: &B::Mat,
    aux: &mut Aux<B>,
) -> Result<()> {
    if !cx.wants(x) {
        return Ok(());
    }
    let (scale, mask, tmp) = match noise {
        Noise::Gaussian(_) => return cx.add_scaled(x, 1.0, dy),
        Noise::Masking(_) => (1.0, 1, 2),
        Noise::Dropout(p) => (1.0 / (1.0 - p), 1, 2),
        Noise::SaltPepper(_) => (1.0, 1, 4),
    };
    let (lo, hi) = aux.t.split_at_mut(tmp);
    cx.be.binary(Binary::Mul, dy, &lo[mask], &mut hi[0])?;
    cx.add_scaled(x, scale, &hi[0])
}

/// The gradients of the fused losses. `dy` (1 x 1) is spread over a
/// column first, so a loss scaled by a later node gets its scale.
fn loss_rule<'o, B: Fused>(
    cx: &mut Ctx<'_, B>,
    (loss, a, b): (Loss, Var, Var),
    dy: &B::Mat,
    aux: &mut Aux<B>,
    ones: &dyn Fn(usize) -> &'o B::Mat,
) -> Result<()> {
    let be = cx.be;
    let (z, t) = (cx.v(a)?, cx.v(b)?);
    let inv_n = 1.0 / z.rows().max(1) as f32;
    // The column of dy: col[1] for the elementwise losses, col[4] (free
    // after the forward pass) for the softmax.
    let dl = if loss == Loss::SoftmaxXent { 4 } else { 1 };
    be.gemm(1.0, ones(z.rows()).n(), dy.n(), 0.0, &mut aux.col[dl])?;
    let (t0, t1) = aux.t.split_at_mut(1);
    let (t0, t1) = (&mut t0[0], &mut t1[0]);
    let dl = &aux.col[dl];
    // d/da, then d/db, as `alpha` times a node-shaped term.
    let (da, db) = match loss {
        Loss::SigmoidBce => {
            be.unary(Unary::Sigmoid, z, t1)?;
            be.binary_inplace(Binary::Sub, t1, t)?;
            be.copy(z, t0)?;
            ((inv_n, &mut *t1), (-inv_n, &mut *t0))
        }
        Loss::SquaredError => {
            be.binary(Binary::Sub, z, t, t1)?;
            be.copy(t1, t0)?;
            ((2.0 * inv_n, &mut *t1), (-2.0 * inv_n, &mut *t0))
        }
        Loss::SoftmaxXent => {
            // t0 holds softmax(z) from the forward pass; lse does not
            // depend on the targets.
            be.binary(Binary::Sub, t0, t, t1)?;
            be.copy(z, t0)?;
            ((inv_n, &mut *t1), (-inv_n, &mut *t0))
        }
    };
    for (v, (alpha, term)) in [(a, da), (b, db)] {
        if cx.wants(v) {
            be.mul_col_vec(term, dl)?;
            cx.add_scaled(v, alpha, term)?;
        }
    }
    Ok(())
}

/// `dρ̂_j = -ρ/ρ̂_j + (1-ρ)/(1-ρ̂_j) = (ρ̂_j - ρ) / (ρ̂_j (1 - ρ̂_j))`,
/// spread over the rows as `dρ̂ / n`.
fn kl_rule<B: Fused>(
    cx: &mut Ctx<'_, B>,
    (h, rho): (Var, f32),
    dy: &B::Mat,
    aux: &mut Aux<B>,
) -> Result<()> {
    if !cx.wants(h) {
        return Ok(());
    }
    let be = cx.be;
    let n = cx.v(h)?.rows().max(1);
    // The forward pass left ρ̂ in row[0]; rows 1 and 2 are free now.
    let [rh, d, q] = &mut aux.row[..] else {
        unreachable!("three rows")
    };
    be.copy(rh, d)?;
    be.affine(d, 1.0, -rho)?;
    be.copy(rh, q)?;
    be.affine(q, -1.0, 1.0)?;
    be.binary_inplace(Binary::Mul, q, rh)?;
    be.binary_inplace(Binary::Div, d, q)?;
    be.mul_col_vec(d, dy)?;
    let d = &*d;
    cx.add_broadcast(h, d, true, 1.0 / n as f32)
}
