//! The gradient check every model's graph can be put through: the rules
//! run on the f64 reference backend, and every parameter entry's gradient
//! is compared with the central difference `(L(θ + h) - L(θ - h)) / 2h` of
//! the loss computed in f64 too, so that a wrong term stands out from
//! rounding by many orders of magnitude.

use super::graph::{Graph, Op, Var};
use super::plan::{Bindings, Plan};
use crate::backend::reference::{Mat64, F64};
use crate::backend::Backend;
use crate::error::Result;
use crate::host::HostMat;
use crate::rng::RngStream;

/// The step of the central differences.
pub const STEP: f64 = 1e-6;

/// Gradients smaller than this count as this large in relative errors (an
/// entry whose true gradient is 0 is then held to an absolute error).
pub const FLOOR: f64 = 1e-6;

/// The outcome of [`check`].
#[derive(Clone, Debug)]
pub struct Report {
    /// The largest `|analytic - numeric| / max(|analytic|, |numeric|, FLOOR)`.
    pub max_rel_err: f64,
    /// Where it occurs: "param W[3, 1]" or "input x[0, 2]".
    pub worst: String,
    /// Entries compared.
    pub checked: usize,
}

/// The loss of one forward pass in f64; every pass draws the same noise.
fn loss_at(plan: &mut Plan<F64>, params: &[Mat64], inputs: &[Mat64], seed: u64) -> Result<f64> {
    let (p, i): (Vec<&Mat64>, Vec<&Mat64>) = (params.iter().collect(), inputs.iter().collect());
    let b = Bindings {
        params: &p,
        inputs: &i,
    };
    plan.forward(&F64, &b, &mut RngStream::new(seed, 0))?;
    Ok(plan.loss_value()?.data[0])
}

/// Checks the gradient of `loss` with respect to every parameter (and every
/// input declared with `input_with_grad`) of `graph` at the given values.
/// Noise nodes draw from `RngStream::new(seed, 0)` at every evaluation, so
/// the function differentiated is the same each time.
pub fn check(
    graph: &Graph,
    loss: Var,
    params: &[HostMat],
    inputs: &[HostMat],
    seed: u64,
) -> Result<Report> {
    let be = F64;
    let mut plan = Plan::new(&be, graph, loss, &[])?;
    let up = |m: &[HostMat]| m.iter().map(|x| be.upload(x)).collect::<Result<Vec<_>>>();
    let (mut pv, mut iv) = (up(params)?, up(inputs)?);
    loss_at(&mut plan, &pv, &iv, seed)?;
    {
        let (p, i): (Vec<&Mat64>, Vec<&Mat64>) = (pv.iter().collect(), iv.iter().collect());
        plan.backward(
            &be,
            &Bindings {
                params: &p,
                inputs: &i,
            },
        )?;
    }
    // The analytic gradients, by leaf (zero for a parameter the loss does
    // not read: the differences must find zero too).
    let mut analytic: Vec<(bool, usize, Vec<f64>)> = Vec::new();
    for node in &graph.nodes {
        match node.op {
            Op::Param(k) => {
                let g = match plan.param_grad(k) {
                    Ok(g) => g.data.clone(),
                    Err(_) => vec![0.0; pv[k].data.len()],
                };
                analytic.push((true, k, g))
            }
            Op::Input(k) if graph.inputs[k].grad => {
                analytic.push((false, k, plan.input_grad(k)?.data.clone()))
            }
            _ => {}
        }
    }
    let mut report = Report {
        max_rel_err: 0.0,
        worst: String::new(),
        checked: 0,
    };
    for (is_param, k, grad) in analytic {
        for (e, &a) in grad.iter().enumerate() {
            let leaf = if is_param { &mut pv[k] } else { &mut iv[k] };
            let orig = leaf.data[e];
            leaf.data[e] = orig + STEP;
            let up_l = loss_at(&mut plan, &pv, &iv, seed)?;
            let leaf = if is_param { &mut pv[k] } else { &mut iv[k] };
            leaf.data[e] = orig - STEP;
            let down_l = loss_at(&mut plan, &pv, &iv, seed)?;
            let leaf = if is_param { &mut pv[k] } else { &mut iv[k] };
            leaf.data[e] = orig;
            let num = (up_l - down_l) / (2.0 * STEP);
            let rel = (a - num).abs() / a.abs().max(num.abs()).max(FLOOR);
            report.checked += 1;
            if rel > report.max_rel_err {
                let (kind, l) = if is_param {
                    ("param", &graph.params[k])
                } else {
                    ("input", &graph.inputs[k])
                };
                let c = l.shape.1.max(1);
                report.max_rel_err = rel;
                report.worst = format!(
                    "{kind} {}[{}, {}]: analytic {a:.9e}, numeric {num:.9e}",
                    l.name,
                    e / c,
                    e % c
                );
            }
        }
    }
    Ok(report)
}
