//! Deep Boltzmann machines (Salakhutdinov & Hinton, AISTATS 2009): binary
//! layers h⁰ = v, h¹, …, hᴸ, each coupled only to its neighbours.
//!
//! ```text
//! E(h⁰, …, hᴸ) = - Σ_l hˡ·b_l - Σ_{k<L} hᵏ W_k (hᵏ⁺¹)ᵀ
//! p(hˡ = 1 | rest) = σ(hˡ⁻¹ W_{l-1} + hˡ⁺¹ W_lᵀ + b_l)          (absent neighbours drop out)
//! mean field:  μ_l ← σ(μ_{l-1} W_{l-1} + μ_{l+1} W_lᵀ + b_l),    μ_0 = v
//! ```
//!
//! Given the odd layers the even ones are independent (and the reverse),
//! so a Gibbs sweep is two block steps: every odd layer given its even
//! neighbours, then every even layer given the odd ones; and the even
//! layers sum out of the energy in closed form, which is what the exact
//! enumeration and AIS of `estimate::dbm` use.
//!
//! `W_k` is n_k x n_{k+1}, `b_l` is 1 x n_l. A DBM is pretrained by a stack
//! of RBMs whose inputs are doubled where the composed model will have a
//! second neighbour ([`crate::io::recipe::DbmLayer`]) and composed by
//! [`DbmHost::from_stack`].

use std::path::Path;

use crate::backend::{Binary, Fused, Matrix, Sample, Unary};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::{in_file, Checkpoint, Parts, Persist, Tensor};
use crate::io::recipe::{DbmLayer, Recipe};
use crate::models::{AnyModel, StackHost};
use crate::rng::RngStream;
use crate::units::UnitKind;

/// A DBM's parameters in host memory: `w[k]` couples layers k and k+1,
/// `b[l]` is layer l's bias (`b[0]` the visible one).
#[derive(Clone, Debug, PartialEq)]
pub struct DbmHost {
    pub w: Vec<HostMat>,
    pub b: Vec<HostMat>,
}

impl DbmHost {
    /// The layer widths, visible first.
    pub fn widths(&self) -> Vec<usize> {
        self.b.iter().map(|b| b.cols).collect()
    }

    /// The number of hidden layers.
    pub fn depth(&self) -> usize {
        self.w.len()
    }

    /// At least one hidden layer, the weights chaining the widths, every
    /// value finite.
    pub fn validate(&self) -> Result<()> {
        if self.w.is_empty() || self.b.len() != self.w.len() + 1 {
            return Err(Error::shape(
                "dbm",
                format!(
                    "{} weight matrices and {} bias vectors: a DBM of L hidden layers has L \
                     and L + 1, L ≥ 1",
                    self.w.len(),
                    self.b.len()
                ),
            ));
        }
        for (l, b) in self.b.iter().enumerate() {
            if b.rows != 1 || b.cols == 0 {
                return Err(Error::shape(
                    "dbm",
                    format!("b_{l} is {}x{}, not a non-empty row", b.rows, b.cols),
                ));
            }
        }
        for (k, w) in self.w.iter().enumerate() {
            let want = (self.b[k].cols, self.b[k + 1].cols);
            if w.shape() != want {
                return Err(Error::shape(
                    "dbm",
                    format!(
                        "W_{k} is {}x{}; layers {k} and {} have {} and {} units",
                        w.rows,
                        w.cols,
                        k + 1,
                        want.0,
                        want.1
                    ),
                ));
            }
        }
        let named = self
            .w
            .iter()
            .enumerate()
            .map(|(k, m)| (format!("W_{k}"), m))
            .chain(
                self.b
                    .iter()
                    .enumerate()
                    .map(|(l, m)| (format!("b_{l}"), m)),
            );
        for (name, m) in named {
            if let Some(i) = m.data.iter().position(|x| !x.is_finite()) {
                return Err(Error::value(
                    "dbm",
                    format!("{name} holds {} at element {i}", m.data[i]),
                ));
            }
        }
        Ok(())
    }

    /// The DBM a stack of binary RBMs pretrained it for: the weights as
    /// they are, those of the middle RBMs (and their biases) halved, since
    /// they were trained with both inputs doubled (Salakhutdinov & Hinton
    /// 2012); a layer shared by two RBMs takes the mean of its two biases,
    /// as in Salakhutdinov's DBM code. With `recipe` (the stack's own), the
    /// RBMs must have been pretrained in the roles their place gives them
    /// (first, middle, last).
    pub fn from_stack(stack: &StackHost, recipe: Option<&Recipe>) -> Result<DbmHost> {
        stack.validate()?;
        let n = stack.layers.len();
        let mut rbms = Vec::with_capacity(n);
        for (k, l) in stack.layers.iter().enumerate() {
            let AnyModel::Rbm(r) = l else {
                return Err(Error::value(
                    "dbm",
                    format!("layer {k} is a {}; a DBM is composed of RBMs", l.kind()),
                ));
            };
            if r.visible != UnitKind::Bernoulli || r.hidden != UnitKind::Bernoulli {
                return Err(Error::value(
                    "dbm",
                    format!(
                        "layer {k} is a {}-{} RBM; a DBM's units are binary",
                        r.visible, r.hidden
                    ),
                ));
            }
            rbms.push(r);
        }
        if let Some(r) = recipe {
            check_roles(r, n)?;
        }
        let halve = |k: usize, m: &HostMat| -> HostMat {
            let f = if n > 2 && k > 0 && k + 1 < n {
                0.5
            } else {
                1.0
            };
            HostMat {
                data: m.data.iter().map(|x| x * f).collect(),
                ..m.clone()
            }
        };
        let mut w = Vec::with_capacity(n);
        let mut b = vec![rbms[0].b_v.clone()];
        for (k, r) in rbms.iter().enumerate() {
            w.push(halve(k, &r.w));
            let hb = halve(k, &r.b_h);
            let above = rbms.get(k + 1).map(|up| halve(k + 1, &up.b_v));
            b.push(match above {
                Some(vb) => HostMat {
                    data: hb
                        .data
                        .iter()
                        .zip(&vb.data)
                        .map(|(x, y)| 0.5 * (x + y))
                        .collect(),
                    ..hb
                },
                None => hb,
            });
        }
        let dbm = DbmHost { w, b };
        dbm.validate()?;
        Ok(dbm)
    }
}

/// The roles a stack's recipe gave its RBMs, against the roles their
/// places in an `n`-layer DBM ask for.
fn check_roles(r: &Recipe, n: usize) -> Result<()> {
    for k in 0..n {
        let want = match (k, n) {
            (_, 1) => None,
            (0, _) => Some(DbmLayer::First),
            (k, n) if k + 1 == n => Some(DbmLayer::Last),
            _ => Some(DbmLayer::Middle),
        };
        let got = r.layer(k)?.rbm()?.dbm_layer;
        if got != want {
            let name = |d: Option<DbmLayer>| match d {
                None => "none".to_string(),
                Some(d) => format!("\"{}\"", format!("{d:?}").to_lowercase()),
            };
            return Err(Error::value(
                "dbm",
                format!(
                    "layer {k} of the stack was pretrained with dbm_layer = {}; as layer {k} of \
                     {n} it needs {}",
                    name(got),
                    name(want)
                ),
            ));
        }
    }
    Ok(())
}

impl Persist for DbmHost {
    const KIND: &'static str = "dbm";

    fn to_parts(&self) -> Result<Parts> {
        self.validate()?;
        let mut p = Parts::default();
        for (k, w) in self.w.iter().enumerate() {
            p.tensors
                .insert(format!("W_{k}"), Tensor::matrix(w.clone()));
        }
        for (l, b) in self.b.iter().enumerate() {
            p.tensors
                .insert(format!("b_{l}"), Tensor::vector(b.clone()));
        }
        p.meta
            .insert("hidden_layers".into(), self.depth().to_string());
        Ok(p)
    }

    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self> {
        let p = &ck.model;
        let n: usize = p
            .meta("hidden_layers", origin)?
            .parse()
            .map_err(|_| Error::format(origin, "metadata 'hidden_layers' is not a layer count"))?;
        if n == 0 || n > 64 {
            return Err(Error::format(
                origin,
                format!("metadata 'hidden_layers' = {n}: a DBM has 1 to 64 hidden layers"),
            ));
        }
        let w = (0..n)
            .map(|k| Ok(p.tensor(&format!("W_{k}"), 2, origin)?.clone()))
            .collect::<Result<Vec<_>>>()?;
        let b = (0..=n)
            .map(|l| Ok(p.tensor(&format!("b_{l}"), 1, origin)?.clone()))
            .collect::<Result<Vec<_>>>()?;
        let host = DbmHost { w, b };
        host.validate().map_err(|e| in_file(origin, e))?;
        Ok(host)
    }
}

/// A DBM on a backend.
pub struct Dbm<B: Fused> {
    pub w: Vec<B::Mat>,
    pub b: Vec<B::Mat>,
}

/// Options of mean-field inference: at most `iters` sweeps over the hidden
/// layers (bottom to top), stopping early once the mean absolute change of
/// the means in a sweep is below `tol` (`tol = 0`: exactly `iters` sweeps,
/// and nothing is read back), each update damped as μ ← (1-d) μ_new + d μ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanField {
    pub iters: usize,
    pub tol: f32,
    pub damping: f32,
}

impl MeanField {
    pub fn check(&self) -> Result<()> {
        if self.iters == 0 {
            return Err(Error::value("mean field", "iters must be at least 1"));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(Error::value(
                "mean field",
                format!("tol = {}: must be finite, ≥ 0", self.tol),
            ));
        }
        if !(0.0..1.0).contains(&self.damping) {
            return Err(Error::value(
                "mean field",
                format!("damping = {}: must be in [0, 1)", self.damping),
            ));
        }
        Ok(())
    }
}

/// What one mean-field run did: the sweeps taken and, when a tolerance was
/// given, the last sweep's mean absolute change (`converged` when it is
/// below the tolerance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MfReport {
    pub sweeps: usize,
    pub residual: Option<f32>,
    pub converged: bool,
}

/// Mean-field state for a batch of `rows` rows: `mu[0]` holds the clamped
/// data, `mu[l]` layer l's means; the product v W_0 (fixed while v is) and
/// one spare buffer per layer, for damping and the residual.
pub struct MfState<B: Fused> {
    pub mu: Vec<B::Mat>,
    x0: B::Mat,
    spare: Vec<B::Mat>,
}

/// A batch of states of every layer (persistent chains, AIS particles):
/// `s[l]` the states, `p[l]` the probabilities they were drawn from.
pub struct Particles<B: Fused> {
    pub s: Vec<B::Mat>,
    pub p: Vec<B::Mat>,
}

/// Layer l's neighbours in `x` and the layer itself, borrowed apart.
fn around<M>(x: &mut [M], l: usize) -> (Option<&M>, &mut M, Option<&M>) {
    let (lo, rest) = x.split_at_mut(l);
    let (mid, hi) = rest.split_at_mut(1);
    (lo.last(), &mut mid[0], hi.first())
}

impl<B: Fused> Dbm<B> {
    pub fn from_host(be: &B, h: &DbmHost) -> Result<Self> {
        h.validate()?;
        Ok(Dbm {
            w: h.w.iter().map(|m| be.upload(m)).collect::<Result<_>>()?,
            b: h.b.iter().map(|m| be.upload(m)).collect::<Result<_>>()?,
        })
    }

    pub fn to_host(&self, be: &B) -> Result<DbmHost> {
        Ok(DbmHost {
            w: self
                .w
                .iter()
                .map(|m| be.download(m))
                .collect::<Result<_>>()?,
            b: self
                .b
                .iter()
                .map(|m| be.download(m))
                .collect::<Result<_>>()?,
        })
    }

    /// Hidden layers.
    pub fn depth(&self) -> usize {
        self.w.len()
    }

    /// Layer widths, visible first.
    pub fn widths(&self) -> Vec<usize> {
        self.b.iter().map(|b| b.cols()).collect()
    }

    /// `rows` rows of zeros in every layer.
    pub fn layers(&self, be: &B, rows: usize) -> Result<Vec<B::Mat>> {
        self.widths().iter().map(|&n| be.zeros(rows, n)).collect()
    }

    /// `prob = p(hˡ = 1 | below, above)` (σ of the total input times
    /// `beta`), and a sample of it if asked: the one conditional every
    /// sampler and mean-field sweep of the DBM runs.
    pub fn layer_given(
        &self,
        be: &B,
        l: usize,
        (below, above): (Option<&B::Mat>, Option<&B::Mat>),
        beta: f32,
        prob: &mut B::Mat,
        sample: Option<Sample<'_, B::Mat>>,
    ) -> Result<()> {
        let b = &self.b[l];
        match (below, above) {
            (Some(x), Some(y)) => {
                be.gemm(1.0, y.n(), self.w[l].t(), 0.0, prob)?;
                be.sigmoid_affine_acc(beta, x.n(), self.w[l - 1].n(), b, prob, sample)
            }
            (Some(x), None) => be.sigmoid_affine(beta, x.n(), self.w[l - 1].n(), b, prob, sample),
            (None, Some(y)) => be.sigmoid_affine(beta, y.n(), self.w[l].t(), b, prob, sample),
            (None, None) => Err(Error::value("dbm", "a layer with no neighbours")),
        }
    }

    /// One block Gibbs sweep of `x` at inverse temperature 1: every odd
    /// layer given its even neighbours, then every even layer (the visible
    /// one included) given the odd ones.
    pub fn gibbs_sweep(&self, be: &B, x: &mut Particles<B>, rng: &mut RngStream) -> Result<()> {
        for parity in [1, 0] {
            for l in (parity..=self.depth()).step_by(2) {
                let (below, s, above) = around(&mut x.s, l);
                let sample = Some(Sample { out: s, rng });
                self.layer_given(be, l, (below, above), 1.0, &mut x.p[l], sample)?;
            }
        }
        Ok(())
    }

    /// Chains of `rows` rows, every layer zero.
    pub fn particles(&self, be: &B, rows: usize) -> Result<Particles<B>> {
        Ok(Particles {
            s: self.layers(be, rows)?,
            p: self.layers(be, rows)?,
        })
    }

    /// Starts chains at the rows of `v`: the hidden layers drawn from the
    /// doubled bottom-up pass that starts mean field.
    pub fn start_particles(
        &self,
        be: &B,
        v: &B::Mat,
        x: &mut Particles<B>,
        rng: &mut RngStream,
    ) -> Result<()> {
        be.copy(v, &mut x.s[0])?;
        for l in 1..=self.depth() {
            let scale = if l < self.depth() { 2.0 } else { 1.0 };
            let (below, s, _) = around(&mut x.s, l);
            let below = below.ok_or_else(|| Error::value("dbm", "no layer below"))?;
            let sample = Some(Sample { out: s, rng });
            be.sigmoid_affine(
                scale,
                below.n(),
                self.w[l - 1].n(),
                &self.b[l],
                &mut x.p[l],
                sample,
            )?;
        }
        Ok(())
    }

    /// Mean-field state for batches of `rows` rows.
    pub fn mf_state(&self, be: &B, rows: usize) -> Result<MfState<B>> {
        let n1 = self.b[1].cols();
        Ok(MfState {
            mu: self.layers(be, rows)?,
            x0: be.zeros(rows, n1)?,
            spare: self.layers(be, rows)?,
        })
    }

    /// μ_l = σ(m_l (μ_{l-1} W_{l-1} + b_l)) bottom to top, m_l = 2 below the
    /// top layer and 1 at it: the recognition pass of the doubled RBMs the
    /// DBM was pretrained as, which is where mean field starts.
    /// Layer 1 reuses the product v W_0 already in `st.x0`.
    fn mf_start(&self, be: &B, st: &mut MfState<B>) -> Result<()> {
        for l in 1..=self.depth() {
            let scale = if l < self.depth() { 2.0 } else { 1.0 };
            let (below, mu, _) = around(&mut st.mu, l);
            let below = below.ok_or_else(|| Error::value("dbm", "no layer below"))?;
            if l == 1 {
                be.copy(&st.x0, mu)?;
                be.add_row_vec(mu, &self.b[1], 1.0)?;
                be.affine(mu, scale, 0.0)?;
                be.unary_inplace(Unary::Sigmoid, mu)?;
                continue;
            }
            be.sigmoid_affine(scale, below.n(), self.w[l - 1].n(), &self.b[l], mu, None)?;
        }
        Ok(())
    }

    /// Mean-field posterior means of the hidden layers for the rows of `v`,
    /// into `st.mu` (see [`MeanField`]). With `warm`, the sweeps start from
    /// the means already in `st` (for the same rows); else from
    /// the doubled bottom-up pass (σ(2(μ_{l-1} W + b)) below the top).
    pub fn mean_field(
        &self,
        be: &B,
        v: &B::Mat,
        st: &mut MfState<B>,
        cfg: MeanField,
        warm: bool,
    ) -> Result<MfReport> {
        cfg.check()?;
        let depth = self.depth();
        be.copy(v, &mut st.mu[0])?;
        be.gemm(1.0, v.n(), self.w[0].n(), 0.0, &mut st.x0)?;
        if !warm {
            self.mf_start(be, st)?;
        }
        let in_place = cfg.damping == 0.0 && cfg.tol == 0.0;
        let count: usize = self.b[1..].iter().map(|b| b.cols()).sum::<usize>() * v.rows();
        let mut report = MfReport {
            sweeps: 0,
            residual: None,
            converged: false,
        };
        for _ in 0..cfg.iters {
            let mut change = 0f64;
            for l in 1..=depth {
                let (below, mu, above) = around(&mut st.mu, l);
                let new = if in_place { &mut *mu } else { &mut st.spare[l] };
                match above {
                    // The bottom-up product of layer 1 stays v W_0.
                    Some(a) if l == 1 => {
                        be.copy(&st.x0, new)?;
                        be.sigmoid_affine_acc(1.0, a.n(), self.w[1].t(), &self.b[1], new, None)?;
                    }
                    _ => self.layer_given(be, l, (below, above), 1.0, new, None)?,
                }
                if in_place {
                    continue;
                }
                let new = &mut st.spare[l];
                if cfg.damping > 0.0 {
                    be.axpby(cfg.damping, mu, 1.0 - cfg.damping, new)?;
                }
                if cfg.tol > 0.0 {
                    // spare = |new - μ|, summed, then μ = new (a swap).
                    std::mem::swap(mu, new);
                    be.binary_inplace(Binary::Sub, new, mu)?;
                    be.unary_inplace(Unary::Abs, new)?;
                    change += be.sum(new)? as f64;
                } else {
                    std::mem::swap(mu, new);
                }
            }
            report.sweeps += 1;
            if cfg.tol > 0.0 {
                let r = (change / count.max(1) as f64) as f32;
                report.residual = Some(r);
                if r < cfg.tol {
                    report.converged = true;
                    break;
                }
            }
        }
        Ok(report)
    }
}

impl<B: Fused> Dbm<B> {
    /// Samples as `run` says: block Gibbs sweeps of every layer, started at
    /// the rows of `run.start` (else at fair random bits), the hidden
    /// layers drawn by the doubled bottom-up pass; snapshots of the visible
    /// probabilities every `run.every` sweeps.
    pub fn sample(
        &self,
        be: &B,
        run: &crate::models::rbm::GibbsRun<'_>,
        rng: &mut RngStream,
    ) -> Result<crate::models::rbm::GibbsOutput> {
        let nv = self.widths()[0];
        if run.chains == 0 || run.every == Some(0) {
            return Err(Error::value(
                "sampling",
                "needs at least one chain and a snapshot interval of at least 1",
            ));
        }
        let v0 = match run.start {
            Some(h) if h.shape() == (run.chains, nv) => be.upload(h)?,
            Some(h) => {
                return Err(Error::shape(
                    "sampling start",
                    format!(
                        "{}x{} start states for {} chains of {nv} visible units",
                        h.rows, h.cols, run.chains
                    ),
                ))
            }
            None => {
                let half = be.upload(&HostMat::from_fn(run.chains, nv, |_, _| 0.5))?;
                let mut v = be.zeros(run.chains, nv)?;
                be.bernoulli(&half, &mut v, rng)?;
                v
            }
        };
        let mut x = self.particles(be, run.chains)?;
        self.start_particles(be, &v0, &mut x, rng)?;
        let mut snapshots = Vec::new();
        if run.every.is_some() {
            snapshots.push(be.download(&v0)?);
        }
        for step in 1..=run.steps {
            self.gibbs_sweep(be, &mut x, rng)?;
            if run.every.is_some_and(|e| step % e == 0) {
                snapshots.push(be.download(&x.p[0])?);
            }
        }
        Ok(crate::models::rbm::GibbsOutput {
            last: be.download(&x.p[0])?,
            last_sample: be.download(&x.s[0])?,
            snapshots,
        })
    }
}

impl DbmHost {
    /// The layers of the net a DBM with at least two hidden layers
    /// initialises (Salakhutdinov & Hinton 2009, §4): its input is the data
    /// with the mean-field posterior of h² appended ([`Dbm::with_posteriors`]),
    /// so the first layer takes `[W_0; W_1ᵀ]` and b_1, the stand-in for the
    /// top-down input h¹ gets in the DBM; every layer above takes W_l and
    /// b_{l+1}. All sigmoid.
    pub fn net_layers(&self) -> Result<Vec<crate::models::net::Dense>> {
        self.validate()?;
        if self.depth() < 2 {
            return Err(Error::value(
                "dbm",
                "a DBM of one hidden layer is an RBM: hand the RBM itself to the net",
            ));
        }
        let (n0, n1, n2) = (self.b[0].cols, self.b[1].cols, self.b[2].cols);
        let w1t = HostMat::from_fn(n2, n1, |r, c| self.w[1].get(c, r));
        let mut first = self.w[0].data.clone();
        first.extend_from_slice(&w1t.data);
        let sigmoid = crate::autodiff::Activation::Sigmoid;
        let mut layers = vec![crate::models::net::Dense {
            w: HostMat::new(n0 + n2, n1, first)?,
            b: self.b[1].clone(),
            act: sigmoid,
        }];
        for k in 1..self.depth() {
            layers.push(crate::models::net::Dense {
                w: self.w[k].clone(),
                b: self.b[k + 1].clone(),
                act: sigmoid,
            });
        }
        Ok(layers)
    }
}

impl<B: Fused> Dbm<B> {
    /// The rows of `x` with the mean-field posterior means of h² appended:
    /// the input of the net [`DbmHost::net_layers`] builds.
    pub fn with_posteriors(&self, be: &B, x: &HostMat, cfg: MeanField) -> Result<HostMat> {
        let widths = self.widths();
        if self.depth() < 2 || x.cols != widths[0] {
            return Err(Error::shape(
                "dbm posteriors",
                format!(
                    "{} columns for a DBM of widths {widths:?} (needs two hidden layers)",
                    x.cols
                ),
            ));
        }
        let (n0, n2) = (widths[0], widths[2]);
        let mut out = Vec::with_capacity(x.rows * (n0 + n2));
        // Blocks of rows keep the mean-field buffers a few MB.
        const BLOCK: usize = 1000;
        for start in (0..x.rows).step_by(BLOCK) {
            let rows: Vec<usize> = (start..(start + BLOCK).min(x.rows)).collect();
            let block = x.select_rows(&rows)?;
            let mut st = self.mf_state(be, rows.len())?;
            self.mean_field(be, &be.upload(&block)?, &mut st, cfg, false)?;
            let q = be.download(&st.mu[2])?;
            for r in 0..rows.len() {
                out.extend_from_slice(block.row(r));
                out.extend_from_slice(q.row(r));
            }
        }
        HostMat::new(x.rows, n0 + n2, out)
    }
}
