//! The graph a model states: inputs, parameters and the ops between them,
//! each node with its shape, checked as it is added.

use crate::backend::{Binary, Trans, Unary};
use crate::error::{Error, Result};

/// A node of a [`Graph`]; its value is a matrix of the node's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) usize);

/// Random corruption of a node's value, drawn afresh at every forward pass
/// from the run's Philox stream (the same masks on every backend).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
    /// Each entry is set to 0 with probability p (Vincent et al. 2008).
    Masking(f32),
    /// Each entry is set to 0 with probability p and the kept ones are
    /// scaled by 1 / (1 - p) (inverted dropout, Srivastava et al. 2014).
    Dropout(f32),
    /// Each entry is set, with probability p, to 0 or 1 with equal odds.
    SaltPepper(f32),
    /// N(0, σ²) added to every entry.
    Gaussian(f32),
}

/// The fused, numerically stable losses; each is a 1 x 1 node, averaged
/// over the rows (examples) and summed over the columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// `Σ_j softplus(z_j) - t_j z_j`: binary cross-entropy of targets `t`
    /// in [0, 1] against `sigmoid(z)`, from the logits `z`.
    SigmoidBce,
    /// `log Σ_j e^{z_j} - Σ_j t_j z_j`: cross-entropy of target
    /// distributions `t` (one-hot labels) against `softmax(z)`.
    SoftmaxXent,
    /// `Σ_j (p_j - t_j)²`.
    SquaredError,
}

/// What a node computes. Rows of a matrix are examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// The caller's data, bound at every pass (input `i` of the graph).
    Input(usize),
    /// A parameter, bound at every pass (parameter `i` of the graph).
    Param(usize),
    /// `op(a) op(b)`.
    MatMul {
        a: Var,
        ta: Trans,
        b: Var,
        tb: Trans,
    },
    /// `x + 1 v`, `v` 1 x cols: a bias on every row.
    AddRow { x: Var, v: Var },
    /// `x + v 1ᵀ`, `v` rows x 1.
    AddCol { x: Var, v: Var },
    /// `x ⊙ 1 v`, `v` 1 x cols.
    MulRow { x: Var, v: Var },
    /// `x ⊙ v 1ᵀ`, `v` rows x 1.
    MulCol { x: Var, v: Var },
    /// `f(x)` elementwise.
    Map { f: Unary, x: Var },
    /// `a op b` elementwise (Add, Sub or Mul).
    Zip { f: Binary, a: Var, b: Var },
    /// `alpha x + beta`.
    Affine { x: Var, alpha: f32, beta: f32 },
    /// The sum over the rows: 1 x cols.
    SumRows { x: Var },
    /// The sum over the columns: rows x 1.
    SumCols { x: Var },
    /// The sum of every entry: 1 x 1.
    Sum { x: Var },
    /// `sign(x) max(|x| - lambda, 0)`; its gradient is the subgradient
    /// `1[|x| > lambda]`.
    Shrink { x: Var, lambda: f32 },
    /// `x` corrupted by fresh noise.
    Noise { x: Var, noise: Noise },
    /// A loss of `a` (logits or predictions) against `b` (targets): 1 x 1.
    Loss { loss: Loss, a: Var, b: Var },
    /// `Σ_j KL(ρ ‖ ρ̂_j)` of the mean activations `ρ̂ = mean_rows(h)`, h in
    /// (0, 1): the sparsity penalty of a sparse auto-encoder. 1 x 1.
    KlSparsity { h: Var, rho: f32 },
}

impl Op {
    /// The nodes this one reads, in argument order.
    pub fn args(&self) -> Vec<Var> {
        use Op::*;
        match *self {
            Input(_) | Param(_) => vec![],
            MatMul { a, b, .. } | Zip { a, b, .. } | Loss { a, b, .. } => vec![a, b],
            AddRow { x, v } | AddCol { x, v } | MulRow { x, v } | MulCol { x, v } => vec![x, v],
            Map { x, .. }
            | Affine { x, .. }
            | SumRows { x }
            | SumCols { x }
            | Sum { x }
            | Shrink { x, .. }
            | Noise { x, .. } => vec![x],
            KlSparsity { h, .. } => vec![h],
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub op: Op,
    pub shape: (usize, usize),
}

/// A declared input or parameter: its name and shape, and for inputs
/// whether their gradient is wanted.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub name: String,
    pub shape: (usize, usize),
    pub grad: bool,
}

/// A computation stated once, as ops on matrices of fixed shapes; a
/// [`Plan`](super::Plan) runs it forward and backward on a backend.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) inputs: Vec<Leaf>,
    pub(crate) params: Vec<Leaf>,
}

fn shape_err(op: &'static str, detail: String) -> Error {
    Error::shape(op, detail)
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn shape(&self, v: Var) -> (usize, usize) {
        self.nodes[v.0].shape
    }

    /// The op of node `v`.
    pub fn op(&self, v: Var) -> Op {
        self.nodes[v.0].op
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn push(&mut self, op: Op, shape: (usize, usize)) -> Var {
        self.nodes.push(Node { op, shape });
        Var(self.nodes.len() - 1)
    }

    /// Data bound at every pass (no gradient).
    pub fn input(&mut self, name: &str, rows: usize, cols: usize) -> Var {
        self.leaf_input(name, (rows, cols), false)
    }

    /// Data whose gradient is wanted too (e.g. dF/dx for HMC).
    pub fn input_with_grad(&mut self, name: &str, rows: usize, cols: usize) -> Var {
        self.leaf_input(name, (rows, cols), true)
    }

    fn leaf_input(&mut self, name: &str, shape: (usize, usize), grad: bool) -> Var {
        self.inputs.push(Leaf {
            name: name.into(),
            shape,
            grad,
        });
        self.push(Op::Input(self.inputs.len() - 1), shape)
    }

    /// A parameter (its gradient is computed). A parameter read by several
    /// nodes (a tied decoder's Wᵀ, LISTA's S over its steps) accumulates
    /// the gradient of every use.
    pub fn param(&mut self, name: &str, rows: usize, cols: usize) -> Var {
        self.params.push(Leaf {
            name: name.into(),
            shape: (rows, cols),
            grad: true,
        });
        self.push(Op::Param(self.params.len() - 1), (rows, cols))
    }

    /// `op(a) op(b)`.
    pub fn matmul(&mut self, a: Var, ta: Trans, b: Var, tb: Trans) -> Result<Var> {
        let (m, k) = ta.apply(self.shape(a));
        let (k2, n) = tb.apply(self.shape(b));
        if k != k2 {
            return Err(shape_err(
                "matmul",
                format!("op(a) is {m}x{k}, op(b) is {k2}x{n}"),
            ));
        }
        Ok(self.push(Op::MatMul { a, ta, b, tb }, (m, n)))
    }

    fn broadcast(&mut self, op: Op, x: Var, v: Var, row: bool, name: &'static str) -> Result<Var> {
        let (r, c) = self.shape(x);
        let want = if row { (1, c) } else { (r, 1) };
        if self.shape(v) != want {
            let (a, b) = self.shape(v);
            return Err(shape_err(
                name,
                format!(
                    "a {r}x{c} node needs a {}x{} vector, got {a}x{b}",
                    want.0, want.1
                ),
            ));
        }
        Ok(self.push(op, (r, c)))
    }

    /// `x + 1 v`: `v` 1 x cols added to every row.
    pub fn add_row(&mut self, x: Var, v: Var) -> Result<Var> {
        self.broadcast(Op::AddRow { x, v }, x, v, true, "add_row")
    }
    /// `x + v 1ᵀ`: `v` rows x 1 added to every column.
    pub fn add_col(&mut self, x: Var, v: Var) -> Result<Var> {
        self.broadcast(Op::AddCol { x, v }, x, v, false, "add_col")
    }
    /// Every row of `x` times the 1 x cols `v`, elementwise.
    pub fn mul_row(&mut self, x: Var, v: Var) -> Result<Var> {
        self.broadcast(Op::MulRow { x, v }, x, v, true, "mul_row")
    }
    /// Every column of `x` times the rows x 1 `v`, elementwise.
    pub fn mul_col(&mut self, x: Var, v: Var) -> Result<Var> {
        self.broadcast(Op::MulCol { x, v }, x, v, false, "mul_col")
    }

    /// `f(x)` elementwise.
    pub fn map(&mut self, f: Unary, x: Var) -> Var {
        self.push(Op::Map { f, x }, self.shape(x))
    }
    pub fn sigmoid(&mut self, x: Var) -> Var {
        self.map(Unary::Sigmoid, x)
    }
    pub fn tanh(&mut self, x: Var) -> Var {
        self.map(Unary::Tanh, x)
    }
    pub fn relu(&mut self, x: Var) -> Var {
        self.map(Unary::Relu, x)
    }
    pub fn softplus(&mut self, x: Var) -> Var {
        self.map(Unary::Softplus, x)
    }
    pub fn exp(&mut self, x: Var) -> Var {
        self.map(Unary::Exp, x)
    }
    pub fn log(&mut self, x: Var) -> Var {
        self.map(Unary::Log, x)
    }
    pub fn square(&mut self, x: Var) -> Var {
        self.map(Unary::Square, x)
    }
    pub fn abs(&mut self, x: Var) -> Var {
        self.map(Unary::Abs, x)
    }

    fn zip(&mut self, f: Binary, a: Var, b: Var) -> Result<Var> {
        if self.shape(a) != self.shape(b) {
            let (x, y) = (self.shape(a), self.shape(b));
            return Err(shape_err(
                "elementwise",
                format!("{f:?} of {}x{} and {}x{}", x.0, x.1, y.0, y.1),
            ));
        }
        Ok(self.push(Op::Zip { f, a, b }, self.shape(a)))
    }
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.zip(Binary::Add, a, b)
    }
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.zip(Binary::Sub, a, b)
    }
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.zip(Binary::Mul, a, b)
    }

    /// `alpha x + beta`.
    pub fn affine(&mut self, x: Var, alpha: f32, beta: f32) -> Var {
        self.push(Op::Affine { x, alpha, beta }, self.shape(x))
    }
    pub fn scale(&mut self, x: Var, alpha: f32) -> Var {
        self.affine(x, alpha, 0.0)
    }

    /// The sum over the rows: 1 x cols.
    pub fn sum_rows(&mut self, x: Var) -> Var {
        let c = self.shape(x).1;
        self.push(Op::SumRows { x }, (1, c))
    }
    /// The sum over the columns: rows x 1.
    pub fn sum_cols(&mut self, x: Var) -> Var {
        let r = self.shape(x).0;
        self.push(Op::SumCols { x }, (r, 1))
    }
    /// The sum of every entry: 1 x 1.
    pub fn sum(&mut self, x: Var) -> Var {
        self.push(Op::Sum { x }, (1, 1))
    }

    /// Soft thresholding by `lambda >= 0`.
    pub fn shrink(&mut self, x: Var, lambda: f32) -> Result<Var> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(Error::value(
                "shrink",
                format!("lambda = {lambda} must be finite and >= 0"),
            ));
        }
        Ok(self.push(Op::Shrink { x, lambda }, self.shape(x)))
    }

    /// `x` corrupted by `noise`: a probability in [0, 1) for the masks, a
    /// σ > 0 for Gaussian noise.
    pub fn noise(&mut self, x: Var, noise: Noise) -> Result<Var> {
        let bad = match noise {
            Noise::Masking(p) | Noise::Dropout(p) | Noise::SaltPepper(p) => {
                (!(0.0..1.0).contains(&p)).then(|| format!("level {p} is not in [0, 1)"))
            }
            Noise::Gaussian(s) => {
                (!(s.is_finite() && s > 0.0)).then(|| format!("σ = {s} must be > 0"))
            }
        };
        if let Some(msg) = bad {
            return Err(Error::value(format!("{noise:?} noise"), msg));
        }
        Ok(self.push(Op::Noise { x, noise }, self.shape(x)))
    }

    /// `loss` of `a` against targets `b` of the same shape: 1 x 1.
    pub fn loss(&mut self, loss: Loss, a: Var, b: Var) -> Result<Var> {
        if self.shape(a) != self.shape(b) {
            let (x, y) = (self.shape(a), self.shape(b));
            return Err(shape_err(
                "loss",
                format!(
                    "{loss:?} of {}x{} predictions against {}x{} targets",
                    x.0, x.1, y.0, y.1
                ),
            ));
        }
        Ok(self.push(Op::Loss { loss, a, b }, (1, 1)))
    }

    /// The KL sparsity penalty of activations `h` towards the target mean
    /// activation `rho` in (0, 1): 1 x 1.
    pub fn kl_sparsity(&mut self, h: Var, rho: f32) -> Result<Var> {
        if !(rho > 0.0 && rho < 1.0) {
            return Err(Error::value(
                "kl_sparsity",
                format!("rho = {rho} is not in (0, 1)"),
            ));
        }
        Ok(self.push(Op::KlSparsity { h, rho }, (1, 1)))
    }
}

/// The nonlinearity of a layer of a network built on the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Sigmoid,
    Tanh,
    Relu,
    /// The identity.
    Linear,
}

impl Activation {
    /// `f(x)` as a node of `g`.
    pub fn apply(self, g: &mut Graph, x: Var) -> Var {
        match self {
            Activation::Sigmoid => g.sigmoid(x),
            Activation::Tanh => g.tanh(x),
            Activation::Relu => g.relu(x),
            Activation::Linear => x,
        }
    }

    /// `f'(pre)` as a node, from the layer's output `y = f(pre)` where that
    /// is how it is cheapest: `y (1 - y)`, `1 - y²`, `1[pre > 0]`, 1.
    pub fn derivative(self, g: &mut Graph, pre: Var, y: Var) -> Result<Var> {
        Ok(match self {
            Activation::Sigmoid => {
                let one_minus = g.affine(y, -1.0, 1.0);
                g.mul(y, one_minus)?
            }
            Activation::Tanh => {
                let sq = g.square(y);
                g.affine(sq, -1.0, 1.0)
            }
            Activation::Relu => g.map(Unary::Step, pre),
            Activation::Linear => {
                let z = g.scale(pre, 0.0);
                g.affine(z, 1.0, 1.0)
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Linear => "linear",
        }
    }

    /// Parses a name; `what` names the key in errors.
    pub fn parse(s: &str, what: &str) -> Result<Activation> {
        match s {
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            "linear" => Ok(Activation::Linear),
            other => Err(Error::value(
                what,
                format!("'{other}' is not one of sigmoid, tanh, relu, linear"),
            )),
        }
    }
}
