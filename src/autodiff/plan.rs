//! A graph planned on a backend for its fixed shapes: every value, gradient
//! and scratch buffer allocated once, the nodes the gradient must pass
//! through marked, and GEMM + bias + sigmoid chains fused into the
//! backend's one-pass kernel. A pass then allocates nothing and reads
//! nothing back.

use super::graph::{Graph, Loss, Noise, Op, Var};
use crate::backend::{Fused, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// The caller's matrices for one pass: the graph's parameters and inputs,
/// in the order they were declared.
pub struct Bindings<'a, B: Fused> {
    pub params: &'a [&'a B::Mat],
    pub inputs: &'a [&'a B::Mat],
}

/// Scratch of one node, by role.
pub(crate) struct Aux<B: Fused> {
    /// Node-shaped (or input-shaped) temporaries.
    pub t: Vec<B::Mat>,
    /// rows x 1 columns.
    pub col: Vec<B::Mat>,
    /// 1 x cols rows.
    pub row: Vec<B::Mat>,
}

/// A graph planned on backend `B`.
pub struct Plan<B: Fused> {
    pub(crate) graph: Graph,
    pub(crate) values: Vec<Option<B::Mat>>,
    pub(crate) grads: Vec<Option<B::Mat>>,
    pub(crate) aux: Vec<Aux<B>>,
    /// The forward of this (sigmoid) node is one fused GEMM + bias + sigmoid.
    pub(crate) fused: Vec<bool>,
    pub(crate) loss: Var,
    /// rows x 1 of ones for every row count the graph uses, by rows.
    pub(crate) ones: Vec<(usize, B::Mat)>,
    /// Whether a gradient buffer has been written in this backward pass
    /// (the first contribution overwrites, the others add).
    pub(crate) written: Vec<bool>,
}

fn internal(msg: String) -> Error {
    Error::value("autodiff", msg)
}

/// The nodes the loss depends on.
fn ancestors(g: &Graph, root: Var) -> Vec<bool> {
    let mut live = vec![false; g.nodes.len()];
    live[root.0] = true;
    for n in (0..=root.0).rev() {
        if live[n] {
            for a in g.nodes[n].op.args() {
                live[a.0] = true;
            }
        }
    }
    live
}

/// Whether the gradient reaches node n from a parameter (or an input that
/// asked for it), among the nodes the loss depends on.
fn needs_grad(g: &Graph, live: &[bool]) -> Vec<bool> {
    let mut need = vec![false; g.nodes.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        need[n] = live[n]
            && match node.op {
                Op::Param(_) => true,
                Op::Input(i) => g.inputs[i].grad,
                op => op.args().iter().any(|a| need[a.0]),
            };
    }
    need
}

/// Nodes whose forward is `sigmoid(add_row(matmul(a, b), bias))` with the
/// two inner nodes read by nothing else: one fused kernel computes it, and
/// the inner nodes keep no values (their backward needs none).
fn fusions(g: &Graph, keep: &[Var]) -> (Vec<bool>, Vec<bool>) {
    let n = g.nodes.len();
    let mut uses = vec![0usize; n];
    for node in &g.nodes {
        for a in node.op.args() {
            uses[a.0] += 1;
        }
    }
    let (mut fused, mut elided) = (vec![false; n], vec![false; n]);
    for (i, node) in g.nodes.iter().enumerate() {
        let Op::Map {
            f: Unary::Sigmoid,
            x,
        } = node.op
        else {
            continue;
        };
        let Op::AddRow { x: mm, .. } = g.nodes[x.0].op else {
            continue;
        };
        let Op::MatMul { .. } = g.nodes[mm.0].op else {
            continue;
        };
        let private = uses[x.0] == 1 && uses[mm.0] == 1;
        if private && !keep.contains(&x) && !keep.contains(&mm) {
            fused[i] = true;
            elided[x.0] = true;
            elided[mm.0] = true;
        }
    }
    (fused, elided)
}

/// What a backward rule is not defined for.
fn check_differentiable(g: &Graph, need: &[bool]) -> Result<()> {
    for (n, node) in g.nodes.iter().enumerate() {
        if let Op::Map { f, x } = node.op {
            if need[n] && need[x.0] && f == Unary::NreluLogPartition {
                return Err(internal(format!(
                    "node {n}: {f:?} has no gradient rule in the graph (a series)"
                )));
            }
        }
    }
    Ok(())
}

impl<B: Fused> Plan<B> {
    /// Plans `graph` for the gradient of `loss` (a 1 x 1 node). `keep` are
    /// nodes whose values the caller reads after a pass (reconstructions,
    /// codes); they are never fused away.
    pub fn new(be: &B, graph: &Graph, loss: Var, keep: &[Var]) -> Result<Plan<B>> {
        if loss.0 >= graph.nodes.len() || graph.shape(loss) != (1, 1) {
            return Err(internal(
                "the loss must be a 1 x 1 node of the graph".into(),
            ));
        }
        let live = ancestors(graph, loss);
        let need = needs_grad(graph, &live);
        check_differentiable(graph, &need)?;
        let (fused, elided) = fusions(graph, keep);
        let n = graph.nodes.len();
        let (mut values, mut grads, mut aux) = (Vec::new(), Vec::new(), Vec::new());
        for (i, node) in graph.nodes.iter().enumerate() {
            let (r, c) = node.shape;
            let leaf = matches!(node.op, Op::Input(_) | Op::Param(_));
            let value = !leaf && !elided[i] && (live[i] || keep.contains(&Var(i)));
            values.push(if value { Some(be.zeros(r, c)?) } else { None });
            grads.push(if need[i] { Some(be.zeros(r, c)?) } else { None });
            aux.push(scratch(be, graph, Var(i), need[i])?);
        }
        let mut ones: Vec<(usize, B::Mat)> = Vec::new();
        for node in &graph.nodes {
            let r = node.shape.0;
            if !ones.iter().any(|(k, _)| *k == r) {
                let mut m = be.zeros(r, 1)?;
                be.fill(&mut m, 1.0)?;
                ones.push((r, m));
            }
        }
        Ok(Plan {
            graph: graph.clone(),
            values,
            grads,
            aux,
            fused,
            loss,
            ones,
            written: vec![false; n],
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// How many nodes run as one fused GEMM + bias + sigmoid pass.
    pub fn fused_nodes(&self) -> usize {
        self.fused.iter().filter(|&&f| f).count()
    }

    /// Checks that the bindings match the graph's declarations.
    pub(crate) fn check(&self, b: &Bindings<'_, B>) -> Result<()> {
        use crate::backend::Matrix;
        let g = &self.graph;
        let kinds = [
            ("parameter", &g.params, b.params),
            ("input", &g.inputs, b.inputs),
        ];
        for (what, decl, given) in kinds {
            if decl.len() != given.len() {
                return Err(internal(format!(
                    "the graph has {} {what}s, {} were bound",
                    decl.len(),
                    given.len()
                )));
            }
            for (leaf, m) in decl.iter().zip(given.iter()) {
                if m.shape() != leaf.shape {
                    let ((r, c), (a, d)) = (leaf.shape, m.shape());
                    return Err(Error::shape(
                        "autodiff bindings",
                        format!(
                            "{what} '{}' is {r}x{c}, the bound matrix {a}x{d}",
                            leaf.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The value of `v` after a forward pass (not for inputs, parameters
    /// or nodes fused away: ask for those in `keep`).
    pub fn value(&self, v: Var) -> Result<&B::Mat> {
        self.values
            .get(v.0)
            .and_then(|x| x.as_ref())
            .ok_or_else(|| internal(format!("node {} keeps no value (pass it in `keep`)", v.0)))
    }

    /// The loss of the last forward pass, on the device (1 x 1).
    pub fn loss_value(&self) -> Result<&B::Mat> {
        self.value(self.loss)
    }

    /// The gradient of the loss with respect to parameter `i` (declaration
    /// order) after a backward pass.
    pub fn param_grad(&self, i: usize) -> Result<&B::Mat> {
        let node = self.graph.nodes.iter().position(|n| n.op == Op::Param(i));
        node.and_then(|n| self.grads[n].as_ref())
            .ok_or_else(|| internal(format!("parameter {i} takes no part in the loss")))
    }

    /// The gradient with respect to input `i`, declared with
    /// [`Graph::input_with_grad`](super::Graph::input_with_grad).
    pub fn input_grad(&self, i: usize) -> Result<&B::Mat> {
        let node = self.graph.nodes.iter().position(|n| n.op == Op::Input(i));
        node.and_then(|n| self.grads[n].as_ref()).ok_or_else(|| {
            internal(format!(
                "input {i} has no gradient (declare it with input_with_grad)"
            ))
        })
    }

    /// A forward and a backward pass: the loss and every gradient.
    pub fn step(&mut self, be: &B, b: &Bindings<'_, B>, rng: &mut RngStream) -> Result<()> {
        self.forward(be, b, rng)?;
        self.backward(be, b)
    }
}

/// The scratch node `v`'s forward and backward rules use.
fn scratch<B: Fused>(be: &B, g: &Graph, v: Var, grad: bool) -> Result<Aux<B>> {
    let (r, c) = g.shape(v);
    let z = |n: usize, shape: (usize, usize)| -> Result<Vec<B::Mat>> {
        (0..n).map(|_| be.zeros(shape.0, shape.1)).collect()
    };
    let (t, col, row) = match g.op(v) {
        Op::Map { .. } | Op::Zip { .. } | Op::Shrink { .. } if grad => (1, 0, 0),
        Op::MulRow { x, .. } | Op::MulCol { x, .. } if grad => {
            return Ok(Aux {
                t: z(1, g.shape(x))?,
                col: vec![],
                row: vec![],
            })
        }
        Op::Sum { x } => {
            return Ok(Aux {
                t: vec![],
                col: z(1, (g.shape(x).0, 1))?,
                row: vec![],
            })
        }
        Op::Noise { noise, .. } => {
            let mut t = z(noise_buffers(noise), (r, c))?;
            match noise {
                Noise::Masking(p) | Noise::Dropout(p) => be.fill(&mut t[0], 1.0 - p)?,
                Noise::SaltPepper(p) => {
                    be.fill(&mut t[0], p)?;
                    be.fill(&mut t[2], 0.5)?;
                }
                Noise::Gaussian(_) => {}
            }
            return Ok(Aux {
                t,
                col: vec![],
                row: vec![],
            });
        }
        Op::Loss { a, loss, .. } => {
            let (ar, ac) = g.shape(a);
            let cols = if loss == Loss::SoftmaxXent { 6 } else { 3 };
            return Ok(Aux {
                t: z(2, (ar, ac))?,
                col: z(cols, (ar, 1))?,
                row: vec![],
            });
        }
        Op::KlSparsity { h, .. } => {
            let hc = g.shape(h).1;
            return Ok(Aux {
                t: vec![],
                col: vec![],
                row: z(3, (1, hc))?,
            });
        }
        _ => (0, 0, 0),
    };
    Ok(Aux {
        t: z(t, (r, c))?,
        col: z(col, (r, 1))?,
        row: z(row, (1, c))?,
    })
}

/// Node-shaped buffers of a noise node. Masking and dropout: the keep
/// probability, the mask, a temporary. Salt and pepper: the corruption
/// probability, the kept entries (1 - mask), one half, the salt, a
/// temporary. Gaussian noise: none.
fn noise_buffers(noise: Noise) -> usize {
    match noise {
        Noise::Masking(_) | Noise::Dropout(_) => 3,
        Noise::SaltPepper(_) => 5,
        Noise::Gaussian(_) => 0,
    }
}

/// A host copy of every parameter gradient, in declaration order (for
/// tests and checks; reads back).
pub fn param_grads<B: Fused>(be: &B, plan: &Plan<B>) -> Result<Vec<HostMat>> {
    (0..plan.graph.params.len())
        .map(|i| be.download(plan.param_grad(i)?))
        .collect()
}
