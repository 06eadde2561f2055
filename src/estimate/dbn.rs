//! The variational lower bound on log p(v) of a deep belief net
//! (Hinton, Osindero & Teh 2006; estimated as in Salakhutdinov & Murray
//! 2008, "On the quantitative analysis of deep belief networks"), with the
//! recognition pass Q of [`crate::models::dbn`] as the approximate
//! posterior:
//!
//! ```text
//! log p(v) ≥ E_Q[ Σ_{k=1}^{L-1} log p(hᵏ⁻¹ | hᵏ) − F_L(hᴸ⁻¹) ]
//!            + Σ_{k=1}^{L-1} E_Q[ H(Q(hᵏ | hᵏ⁻¹)) ] − log Z_L
//! ```
//!
//! (h⁰ = v; F_L and Z_L are the top RBM's free energy and partition
//! function). The expectation is a mean over `samples` draws of the
//! recognition pass per row; each layer's entropy given the state drawn
//! below it is taken exactly (Rao-Blackwellised: the same mean, a smaller
//! variance). With binary units, for logits a and states x:
//! `log Bern(x; σ(a)) = Σ x a − softplus(a)` and
//! `H(Bern(σ(a))) = Σ softplus(a) − σ(a) a`.

use crate::backend::{Binary, Fused, Matrix, Unary};
use crate::data::prepare::head;
use crate::data::EvalData;
use crate::energy::FreeEnergy;
use crate::error::{Error, Result};
use crate::estimate::rbm::{self as rbm_est, EvalOptions, LogLikelihood, Method, EVAL_STREAM};
use crate::estimate::BATCH_ROWS;
use crate::host::HostMat;
use crate::models::dbn::Dbn;
use crate::rng::RngStream;
use crate::units::UnitKind;

/// Draws of the recognition pass per row in `ebmkit eval` of a DBN.
pub const DEFAULT_SAMPLES: usize = 100;

/// Per row of `x`: the bound's estimate without its `− log Z_L`, from
/// `samples` recognition passes.
pub fn bound_terms<B: Fused>(
    be: &B,
    dbn: &Dbn<B>,
    x: &HostMat,
    samples: usize,
    rng: &mut RngStream,
) -> Result<Vec<f64>> {
    if samples == 0 {
        return Err(Error::value("samples", "the bound needs at least one draw"));
    }
    if dbn.rbms[0].visible != UnitKind::Bernoulli {
        return Err(Error::value(
            "dbn bound",
            format!(
                "needs binary visible units, the first RBM's are {}",
                dbn.rbms[0].visible
            ),
        ));
    }
    if x.cols != dbn.n_visible() {
        return Err(Error::shape(
            "dbn bound",
            format!("{} columns for {} visible units", x.cols, dbn.n_visible()),
        ));
    }
    let mut out = Vec::with_capacity(x.rows);
    for start in (0..x.rows).step_by(BATCH_ROWS) {
        let rows: Vec<usize> = (start..(start + BATCH_ROWS).min(x.rows)).collect();
        let v = be.upload(&x.select_rows(&rows)?)?;
        let mut pass = Pass::new(be, dbn, rows.len())?;
        for _ in 0..samples {
            pass.draw(be, dbn, &v, rng)?;
        }
        let sum = be.download(&pass.acc)?;
        out.extend(sum.data.iter().map(|&s| f64::from(s) / samples as f64));
    }
    Ok(out)
}

/// Buffers of recognition passes over one block of rows; `acc` sums each
/// row's terms over the passes. Q(h¹ | v) depends on the rows alone, so its
/// means and entropy are computed on the first pass and kept.
struct Pass<B: Fused> {
    /// Whether Q(h¹ | v) (`q[0]`, `ent[0]`) is computed.
    first_done: bool,
    /// H(Q(hᵏ | hᵏ⁻¹)) per row, for each directed layer.
    ent: Vec<B::Mat>,
    logits: Vec<B::Mat>,
    q: Vec<B::Mat>,
    states: Vec<B::Mat>,
    /// Logits of the layer below given the state above, and their softplus.
    a: Vec<B::Mat>,
    sp: Vec<B::Mat>,
    tmp: Vec<B::Mat>,
    fe: B::Mat,
    fe_scratch: crate::energy::Scratch<B>,
    acc: B::Mat,
}

impl<B: Fused> Pass<B> {
    fn new(be: &B, dbn: &Dbn<B>, n: usize) -> Result<Self> {
        let dir = dbn.directed();
        let by = |f: &dyn Fn(&crate::models::Rbm<B>) -> usize| -> Result<Vec<B::Mat>> {
            dir.iter().map(|r| be.zeros(n, f(r))).collect()
        };
        let top = dbn.top();
        Ok(Pass {
            first_done: false,
            ent: by(&|_| 1)?,
            logits: by(&|r| r.w.cols())?,
            q: by(&|r| r.w.cols())?,
            states: by(&|r| r.w.cols())?,
            tmp: by(&|r| r.w.cols())?,
            a: by(&|r| r.w.rows())?,
            sp: by(&|r| r.w.rows())?,
            fe: be.zeros(n, 1)?,
            fe_scratch: top.free_energy_scratch(be, n)?,
            acc: be.zeros(n, 1)?,
        })
    }

    /// One recognition pass from `v`, its terms added to `acc`.
    fn draw(&mut self, be: &B, dbn: &Dbn<B>, v: &B::Mat, rng: &mut RngStream) -> Result<()> {
        for (k, r) in dbn.directed().iter().enumerate() {
            let (lo, hi) = self.states.split_at_mut(k);
            let below = if k == 0 { v } else { &lo[k - 1] };
            let (x, q, t) = (&mut self.logits[k], &mut self.q[k], &mut self.tmp[k]);
            // Q(hᵏ | hᵏ⁻¹): logits, entropy, a state.
            let e = &mut self.ent[k];
            if k > 0 || !self.first_done {
                be.gemm(1.0, below.n(), r.w.n(), 0.0, x)?;
                be.add_row_vec(x, &r.b_h, 1.0)?;
                be.unary(Unary::Softplus, x, t)?;
                be.row_sums(t, 1.0, 0.0, e)?;
                be.unary(Unary::Sigmoid, x, q)?;
                be.binary(Binary::Mul, q, x, t)?;
                be.row_sums(t, -1.0, 1.0, e)?;
            }
            be.axpby(1.0, e, 1.0, &mut self.acc)?;
            let h = &mut hi[0];
            be.bernoulli(q, h, rng)?;
            // log p(hᵏ⁻¹ | hᵏ) = Σ hᵏ⁻¹ a − softplus(a), a = hᵏ W_kᵀ + b_v,k.
            let (a, sp) = (&mut self.a[k], &mut self.sp[k]);
            be.gemm(1.0, h.n(), r.w.t(), 0.0, a)?;
            be.add_row_vec(a, &r.b_v, 1.0)?;
            be.unary(Unary::Softplus, a, sp)?;
            be.binary_inplace(Binary::Mul, a, below)?;
            be.binary_inplace(Binary::Sub, a, sp)?;
            be.row_sums(a, 1.0, 1.0, &mut self.acc)?;
        }
        self.first_done = true;
        let top_state = &self.states[self.states.len() - 1];
        dbn.top()
            .free_energy(be, top_state, &mut self.fe_scratch, &mut self.fe)?;
        be.axpby(-1.0, &self.fe, 1.0, &mut self.acc)
    }
}

/// The bound on the test (and training) rows, for each estimate of the
/// top RBM's log Z: exact when the top RBM is small enough
/// ([`rbm_est::is_exact`]), else AIS and reverse AIS on the codes the
/// recognition pass gives the data (their means: the base rates of AIS,
/// and the starts of reverse AIS's chains).
pub fn evaluate<B: Fused>(
    be: &B,
    dbn: &Dbn<B>,
    data: &EvalData,
    opts: &EvalOptions,
    samples: usize,
) -> Result<Vec<LogLikelihood>> {
    let train = head(&data.train, rbm_est::EVAL_TRAIN_ROWS)?;
    let codes = |x: &HostMat| -> Result<HostMat> { be.download(&dbn.up(be, &be.upload(x)?)?) };
    let top_data = EvalData {
        test: codes(&data.test)?,
        train: codes(&train)?,
    };
    let log_zs = rbm_est::evaluate(be, &dbn.top().to_host(be)?, &top_data, None, opts)?;
    let mut rng = RngStream::new(opts.seed, EVAL_STREAM ^ 0xDB);
    let mean = |v: Vec<f64>| -> Result<f64> {
        if v.is_empty() {
            return Err(Error::value("eval data", "no rows to average over"));
        }
        Ok(v.iter().sum::<f64>() / v.len() as f64)
    };
    let test = mean(bound_terms(be, dbn, &data.test, samples, &mut rng)?)?;
    let train = mean(bound_terms(be, dbn, &train, samples, &mut rng)?)?;
    Ok(log_zs
        .into_iter()
        .map(|l| LogLikelihood {
            test: test - l.log_z,
            train: train - l.log_z,
            dims: dbn.n_visible(),
            per_dimension: false,
            ..l
        })
        .collect())
}

/// One line of the bound's report: the top RBM's log Z and where it came
/// from, then the bounds.
pub fn describe(l: &LogLikelihood) -> String {
    let how = match &l.method {
        Method::Exact => "exact".to_string(),
        Method::Ais(e) => format!(
            "by AIS, {} runs, {} temperatures, ESS {:.1}",
            e.runs(),
            e.temperatures,
            e.ess
        ),
        Method::ReverseAis(e) => format!("by reverse AIS, {} runs", e.runs()),
    };
    format!(
        "DBN variational lower bound, top RBM's log Z = {:.3} ({how}): mean log p(v) >= test {:.3}, train {:.3} nats",
        l.log_z, l.test, l.train
    )
}
