//! Deep belief nets (Hinton, Osindero & Teh 2006): a stack of RBMs read as
//! one generative model. With RBMs 1..L over layers h⁰ = v, h¹, …, hᴸ:
//!
//! ```text
//! p(v, h¹, …, hᴸ) = p(hᴸ⁻¹, hᴸ) · Π_{k=1}^{L-1} p(hᵏ⁻¹ | hᵏ)
//! p(hᴸ⁻¹, hᴸ)     = e^{-E_L(hᴸ⁻¹, hᴸ)} / Z_L              (the top RBM)
//! p(hᵏ⁻¹ | hᵏ)    = Π_i Bern(σ(hᵏ W_kᵀ + b_v,k)_i)         (directed, RBM k's weights)
//! Q(hᵏ | hᵏ⁻¹)    = Π_j Bern(σ(hᵏ⁻¹ W_k + b_h,k)_j)        (the recognition pass)
//! ```
//!
//! Generation runs block Gibbs in the top RBM, then one top-down pass
//! (states drawn at every hidden layer, the visible means shown). A stack
//! of RBMs trained greedily (`kind = "stack"`) is a DBN: [`Dbn::from_stack`].

use crate::backend::{Fused, Matrix};
use crate::energy::{Bipartite, LayerScratch};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::models::rbm::{GibbsOutput, GibbsRun, Rbm};
use crate::models::{AnyModel, RbmHost, StackHost};
use crate::rng::RngStream;
use crate::units::UnitKind;

/// A stack that is a DBN: at least two RBMs whose hidden layers are
/// binary below the top (each is the visible layer of the next, and the
/// directed layers draw binary states); returns its RBMs.
pub fn check(stack: &StackHost) -> Result<Vec<&RbmHost>> {
    stack.validate()?;
    if stack.layers.len() < 2 {
        return Err(Error::value(
            "dbn",
            "a deep belief net needs at least two RBM layers (one is an RBM)",
        ));
    }
    let mut rbms = Vec::new();
    for (k, l) in stack.layers.iter().enumerate() {
        let AnyModel::Rbm(h) = l else {
            return Err(Error::value(
                "dbn",
                format!(
                    "layer {k} is of kind {}; a DBN is a stack of RBMs",
                    l.kind()
                ),
            ));
        };
        let top = k + 1 == stack.layers.len();
        let binary_below = k == 0 || h.visible == UnitKind::Bernoulli;
        if !binary_below || (!top && h.hidden != UnitKind::Bernoulli) {
            return Err(Error::value(
                "dbn",
                format!(
                    "layer {k} is a {}-{} RBM; the layers of a DBN above the data are binary",
                    h.visible, h.hidden
                ),
            ));
        }
        rbms.push(h);
    }
    Ok(rbms)
}

/// A DBN on a backend: its RBMs, input side first (the last is the top).
pub struct Dbn<B: Fused> {
    pub rbms: Vec<Rbm<B>>,
}

impl<B: Fused> Dbn<B> {
    /// The DBN of a stack that passes [`check`].
    pub fn from_stack(be: &B, stack: &StackHost) -> Result<Self> {
        let rbms = check(stack)?
            .into_iter()
            .map(|h| Rbm::from_host(be, h))
            .collect::<Result<Vec<_>>>()?;
        Ok(Dbn { rbms })
    }

    /// The top RBM (its visible layer is hᴸ⁻¹).
    pub fn top(&self) -> &Rbm<B> {
        &self.rbms[self.rbms.len() - 1]
    }

    /// The directed layers below the top, input side first.
    pub fn directed(&self) -> &[Rbm<B>] {
        &self.rbms[..self.rbms.len() - 1]
    }

    pub fn n_visible(&self) -> usize {
        self.rbms[0].w.rows()
    }

    /// The recognition means of hᴸ⁻¹ (the top RBM's visible layer) for the
    /// rows of `x`: each layer's Q means fed to the next.
    pub fn up(&self, be: &B, x: &B::Mat) -> Result<B::Mat> {
        let mut h: Option<B::Mat> = None;
        for r in self.directed() {
            let mut q = be.zeros(x.rows(), r.w.cols())?;
            let input = h.as_ref().unwrap_or(x);
            be.sigmoid_affine(1.0, input.n(), r.w_in().n(), &r.b_h, &mut q, None)?;
            h = Some(q);
        }
        // A DBN has at least one directed layer.
        h.ok_or_else(|| Error::value("dbn", "no directed layer"))
    }

    /// One top-down pass from states `top` of hᴸ⁻¹: a state drawn at every
    /// hidden layer, the visible means (and a visible state) at the bottom.
    pub fn down(&self, be: &B, top: &B::Mat, rng: &mut RngStream) -> Result<(HostMat, HostMat)> {
        let n = top.rows();
        let mut state: Option<(B::Mat, B::Mat)> = None;
        for r in self.directed().iter().rev() {
            let nv = r.w.rows();
            let (mut p, mut s) = (be.zeros(n, nv)?, be.zeros(n, nv)?);
            let mut scratch = LayerScratch::new(be, n, nv)?;
            let h = state.as_ref().map_or(top, |(_, s)| s);
            r.visible_given_hidden(be, h, None, &mut p, None, &mut scratch)?;
            if r.visible.is_binary() {
                be.bernoulli(&p, &mut s, rng)?;
            } else {
                be.copy(&p, &mut s)?;
            }
            state = Some((p, s));
        }
        let (p, s) = state.ok_or_else(|| Error::value("dbn", "no directed layer"))?;
        Ok((be.download(&p)?, be.download(&s)?))
    }

    /// Samples as `run` says: block Gibbs in the top RBM (started at the
    /// recognition means of `run.start`'s rows, else at random states),
    /// each snapshot and the last state carried to the visible layer by
    /// [`down`](Self::down).
    pub fn sample(&self, be: &B, run: &GibbsRun<'_>, rng: &mut RngStream) -> Result<GibbsOutput> {
        let start = match run.start {
            Some(x) => {
                if x.cols != self.n_visible() {
                    return Err(Error::shape(
                        "DBN sampling start",
                        format!("{} columns for {} visible units", x.cols, self.n_visible()),
                    ));
                }
                Some(be.download(&self.up(be, &be.upload(x)?)?)?)
            }
            None => None,
        };
        let top_run = GibbsRun {
            start: start.as_ref(),
            ..*run
        };
        let g = self.top().gibbs(be, &top_run, rng)?;
        let mut snapshots = Vec::with_capacity(g.snapshots.len());
        for (i, s) in g.snapshots.iter().enumerate() {
            // The start is shown as the data it came from.
            if i == 0 {
                if let Some(x) = run.start {
                    snapshots.push(x.clone());
                    continue;
                }
            }
            let mut st = be.zeros(s.rows, s.cols)?;
            be.bernoulli(&be.upload(s)?, &mut st, rng)?;
            snapshots.push(self.down(be, &st, rng)?.0);
        }
        let (last, last_sample) = self.down(be, &be.upload(&g.last_sample)?, rng)?;
        Ok(GibbsOutput {
            last,
            last_sample,
            snapshots,
        })
    }
}
