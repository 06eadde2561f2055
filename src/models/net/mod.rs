//! Feed-forward nets of dense layers: the supervised net a pretrained
//! stack is handed to (an MLP with a softmax output) and the deep
//! auto-encoder unrolled from an RBM stack (encoder and mirrored decoder,
//! sigmoid output), stated as a graph and differentiated by
//! [`crate::autodiff`].
//!
//! ```text
//! h₀ = x                                     (dropout on h_{k-1} while training)
//! h_k = f_k(h_{k-1} W_k + b_k)               W_k: n_{k-1} x n_k
//! softmax output:  L = log Σ_j e^{z_j} - Σ_j t_j z_j      z = logits, t one-hot
//! sigmoid output:  L = Σ_j softplus(z_j) - t_j z_j        t = x for a deep AE
//! linear output:   L = Σ_j (h_j - t_j)²            h = f(z), any activation
//! ```
//!
//! averaged over the rows of a batch. Parameters, in graph order: `W0`,
//! `b0`, `W1`, `b1`, ...

mod build;
mod host;
mod persist;

pub use build::{build, Layerwise, Pretrained};
pub use host::{Dense, NetHost, Output};
pub use persist::{export_torch, TorchManifest};

use crate::autodiff::{Activation, Bindings, Graph, Loss, Noise, Plan, Var};
use crate::backend::{Backend, Fused, Matrix, Trans};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// Glorot & Bengio's uniform initial weights, ±√(6 / (n_in + n_out)), four
/// times wider for sigmoid units (their slope at 0 is 1/4); N(0, std²)
/// when `std` is given.
pub fn initial_weights(
    (n_in, n_out): (usize, usize),
    act: Activation,
    std: Option<f32>,
    rng: &mut RngStream,
) -> HostMat {
    let d = rng.next_draw();
    match std {
        Some(s) => HostMat::from_fn(n_in, n_out, |i, j| s * d.normal(i * n_out + j)),
        None => {
            let wide = if act == Activation::Sigmoid { 4.0 } else { 1.0 };
            let a = wide * (6.0 / (n_in + n_out) as f32).sqrt();
            HostMat::from_fn(n_in, n_out, |i, j| {
                a * (2.0 * d.uniform(i * n_out + j) - 1.0)
            })
        }
    }
}

/// A net's graph for batches of fixed rows and the nodes a caller reads.
pub struct NetGraph {
    pub graph: Graph,
    pub loss: Var,
    /// The last layer's pre-activations (logits).
    pub logits: Var,
    /// The output: probabilities of a sigmoid output, else the logits.
    pub out: Var,
}

/// Dropout rates while training (0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dropout {
    pub input: f32,
    pub hidden: f32,
}

/// A net's parameters on backend `B`.
pub struct Net<B: Backend> {
    /// Per layer: its activation; the output's kind.
    pub acts: Vec<Activation>,
    pub output: Output,
    /// In graph order: W0, b0, W1, b1, ...
    pub params: Vec<B::Mat>,
}

impl<B: Backend> Net<B> {
    pub fn from_host(be: &B, h: &NetHost) -> Result<Self> {
        h.validate()?;
        let mut params = Vec::new();
        for l in &h.layers {
            params.push(be.upload(&l.w)?);
            params.push(be.upload(&l.b)?);
        }
        Ok(Net {
            acts: h.layers.iter().map(|l| l.act).collect(),
            output: h.output,
            params,
        })
    }

    pub fn to_host(&self, be: &B) -> Result<NetHost> {
        let mut layers = Vec::new();
        for (k, act) in self.acts.iter().enumerate() {
            layers.push(Dense {
                w: be.download(&self.params[2 * k])?,
                b: be.download(&self.params[2 * k + 1])?,
                act: *act,
            });
        }
        Ok(NetHost {
            layers,
            output: self.output,
        })
    }

    /// Layer widths, input first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.params[0].rows()];
        s.extend(self.params.iter().step_by(2).map(|w| w.cols()));
        s
    }

    /// The parameters' names and shapes, in graph order.
    pub fn param_shapes(&self) -> Vec<(String, (usize, usize))> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let name = format!("{}{}", if i % 2 == 0 { "W" } else { "b" }, i / 2);
                (name, m.shape())
            })
            .collect()
    }

    /// The graph of the loss of `rows` examples; inputs `x` (rows x
    /// n_in) and targets `t` (rows x n_out).
    pub fn graph(&self, rows: usize, dropout: Dropout) -> Result<NetGraph> {
        let sizes = self.sizes();
        let mut g = Graph::new();
        let x = g.input("x", rows, sizes[0]);
        let t = g.input("t", rows, sizes[sizes.len() - 1]);
        let mut h = x;
        let mut logits = x;
        for (k, act) in self.acts.iter().enumerate() {
            let rate = if k == 0 {
                dropout.input
            } else {
                dropout.hidden
            };
            if rate > 0.0 {
                h = g.noise(h, Noise::Dropout(rate))?;
            }
            let w = g.param(&format!("W{k}"), sizes[k], sizes[k + 1]);
            let b = g.param(&format!("b{k}"), 1, sizes[k + 1]);
            let hw = g.matmul(h, Trans::N, w, Trans::N)?;
            logits = g.add_row(hw, b)?;
            h = act.apply(&mut g, logits);
        }
        let loss = match self.output {
            Output::Softmax => g.loss(Loss::SoftmaxXent, logits, t)?,
            Output::Sigmoid => g.loss(Loss::SigmoidBce, logits, t)?,
            Output::Linear => g.loss(Loss::SquaredError, h, t)?,
        };
        Ok(NetGraph {
            graph: g,
            loss,
            logits,
            out: h,
        })
    }

    /// The parameters as the graph binds them.
    pub fn bound(&self) -> Vec<&B::Mat> {
        self.params.iter().collect()
    }

    /// The name of the first parameter that is NaN or infinite.
    pub fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        for ((name, _), m) in self.param_shapes().into_iter().zip(&self.params) {
            if !be.sum(m)?.is_finite() {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }
}

/// What [`Net::evaluate`] measures over a set of rows.
#[derive(Clone, Debug)]
pub struct Scores {
    /// The outputs (softmax: the logits), one row per example.
    pub out: HostMat,
    /// The loss per example.
    pub loss: f64,
    /// Softmax output: the fraction of rows whose arg-max is not the
    /// target's.
    pub error_rate: Option<f64>,
    /// Σ_j (out_j - t_j)² per example (sigmoid and linear outputs).
    pub squared_error: Option<f64>,
}

/// Rows per pass of [`Net::evaluate`]: bounds its buffers.
const CHUNK: usize = 500;

impl<B: Fused> Net<B> {
    /// The outputs on `x` (probabilities of a sigmoid output, else the
    /// last layer's values; logits for softmax), without dropout.
    pub fn forward(&self, be: &B, x: &HostMat) -> Result<HostMat> {
        Ok(self.run(be, x, None)?.out)
    }

    /// The net's outputs and loss on `x` against targets `t`, without
    /// dropout.
    pub fn evaluate(&self, be: &B, x: &HostMat, t: &HostMat) -> Result<Scores> {
        self.run(be, x, Some(t))
    }

    fn run(&self, be: &B, x: &HostMat, t: Option<&HostMat>) -> Result<Scores> {
        let sizes = self.sizes();
        let (n_in, n_out) = (sizes[0], sizes[sizes.len() - 1]);
        let (tr, tc) = t.map_or((x.rows, n_out), |t| t.shape());
        if x.cols != n_in || tc != n_out || x.rows != tr || x.rows == 0 {
            return Err(Error::shape(
                "net evaluation",
                format!(
                    "inputs {}x{} and targets {tr}x{tc} for a {n_in} -> {n_out} net",
                    x.rows, x.cols
                ),
            ));
        }
        let mut out = Vec::with_capacity(x.rows * n_out);
        let (mut loss, mut wrong, mut se) = (0.0f64, 0usize, 0.0f64);
        let mut plan: Option<(usize, NetGraph, Plan<B>)> = None;
        let params = self.bound();
        for start in (0..x.rows).step_by(CHUNK) {
            let rows = CHUNK.min(x.rows - start);
            if plan.as_ref().map(|p| p.0) != Some(rows) {
                let g = self.graph(rows, Dropout::default())?;
                let p = Plan::new(be, &g.graph, g.loss, &[g.out])?;
                plan = Some((rows, g, p));
            }
            let (_, g, p) = plan.as_mut().expect("planned above");
            let idx: Vec<usize> = (start..start + rows).collect();
            let xb = be.upload(&x.select_rows(&idx)?)?;
            // Without targets the loss is of zeros, and not reported.
            let tb = match t {
                Some(t) => t.select_rows(&idx)?,
                None => HostMat::zeros(rows, n_out),
            };
            let tdev = be.upload(&tb)?;
            let b = Bindings {
                params: &params,
                inputs: &[&xb, &tdev],
            };
            // No dropout: nothing is drawn.
            p.forward(be, &b, &mut RngStream::new(0, 0))?;
            loss += rows as f64 * be.download(p.loss_value()?)?.data[0] as f64;
            let o = be.download(p.value(g.out)?)?;
            for r in 0..rows {
                let (or, tr) = (o.row(r), tb.row(r));
                wrong += (argmax(or) != argmax(tr)) as usize;
                se += or
                    .iter()
                    .zip(tr)
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum::<f64>();
            }
            out.extend(o.data);
        }
        let n = x.rows as f64;
        let softmax = self.output == Output::Softmax;
        let known = t.is_some();
        Ok(Scores {
            out: HostMat::new(x.rows, n_out, out)?,
            loss: if known { loss / n } else { f64::NAN },
            error_rate: (softmax && known).then(|| wrong as f64 / n),
            squared_error: (!softmax && known).then(|| se / n),
        })
    }
}

/// The first index of the largest value.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// One-hot rows of `labels` among `classes`; a label out of range is an
/// error naming `what` and the row.
pub fn one_hot(labels: &[u8], classes: usize, what: &str) -> Result<HostMat> {
    if let Some(r) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(Error::value(
            what,
            format!("label {} at row {r} is not below {classes}", labels[r]),
        ));
    }
    Ok(HostMat::from_fn(labels.len(), classes, |r, c| {
        (labels[r] as usize == c) as u8 as f32
    }))
}
