//! Training sparse coding and PSD: the [`Objective`] of `kind = "sparse"`
//! for the one training loop.
//!
//! Per minibatch (nothing read back): under PSD the encoder's prediction
//! `F(x)`; the codes, `iters` iterations from zero (from `F(x)` under PSD,
//! with the prediction term); the dictionary update
//! ([`crate::models::sparse::DictLearner`]); under PSD one optimiser step of
//! the encoder toward the codes, through [`crate::autodiff`]. At the epoch's
//! end the monitors infer the codes of fixed training and held-out subsets
//! to the recipe's `eval_tol` and report the mean energy there (and, under
//! PSD, the energy of the encoder's codes alone).

use std::path::Path;

use crate::autodiff::Bindings;
use crate::backend::Fused;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{Recipe, SparseSpec};
use crate::models::sparse::psd::PsdGraph;
use crate::models::sparse::{
    initial_dictionary, score, Algorithm, DictLearner, DictUpdate, Inference, PsdArch, PsdEncoder,
    SparseHost,
};
use crate::rng::RngStream;
use crate::train::backprop::Backprop;
use crate::train::fit::{Batch, Objective, Resident, Step, Trainer};
use crate::train::history::{CurveSpec, EpochRecord};
use crate::units::UnitKind;
use crate::viz::Color;

/// A training run of sparse coding or PSD.
pub type SparseTrainer<B> = Trainer<B, SparseObjective<B>>;

/// PSD's encoder with its planned graph and optimiser.
struct Psd<B: Fused> {
    enc: PsdEncoder<B>,
    bp: Backprop<B>,
    g: PsdGraph,
    zeros: B::Mat,
    pred: B::Mat,
}

/// A dictionary being learned (and PSD's encoder), with its monitors.
pub struct SparseObjective<B: Fused> {
    pub learner: DictLearner<B>,
    spec: SparseSpec,
    inf: Inference,
    update: DictUpdate,
    psd: Option<Psd<B>>,
    probes: Vec<(&'static str, HostMat)>,
}

/// The inference of the monitors and of `ebmkit encode`.
pub fn eval_inference(spec: &SparseSpec) -> Inference {
    Inference {
        nonneg: spec.nonneg,
        ..Inference::converge(spec.lambda, spec.eval_tol, spec.eval_iters)
    }
}

impl<B: Fused> SparseObjective<B> {
    fn assemble(be: &B, recipe: &Recipe, host: &SparseHost, data: &Resident<B>) -> Result<Self> {
        let spec = recipe.sparse()?.clone();
        let bs = data.batch_size();
        let learner = DictLearner::new(be, &host.dict, bs)?;
        let inf = Inference {
            nonneg: spec.nonneg,
            ..Inference::fixed(
                Algorithm::parse(&spec.algorithm, "model.algorithm")?,
                spec.lambda,
                spec.iters,
            )
        };
        let update = match spec.update.as_str() {
            "sgd" => DictUpdate::Sgd { lr: spec.dict_lr },
            _ => DictUpdate::Bcd,
        };
        let psd = match &host.encoder {
            None => None,
            Some(params) => {
                let arch = PsdArch {
                    dim: host.dim(),
                    atoms: host.atoms(),
                };
                let g = arch.graph(bs)?;
                let bp = Backprop::new(be, &g.graph, (g.loss, &[g.prediction]), &recipe.train)?;
                Some(Psd {
                    enc: PsdEncoder::from_host(be, arch, params)?,
                    bp,
                    g,
                    zeros: be.zeros(bs, host.atoms())?,
                    pred: be.zeros(bs, host.atoms())?,
                })
            }
        };
        let p = &data.prepared;
        let mut probes = vec![("train", p.monitor_train.clone())];
        if let Some(h) = &p.monitor_heldout {
            probes.push(("heldout", h.clone()));
        }
        Ok(SparseObjective {
            learner,
            spec,
            inf,
            update,
            psd,
            probes,
        })
    }

    /// The model in host memory.
    pub fn to_host(&self, be: &B) -> Result<SparseHost> {
        let encoder = match &self.psd {
            Some(p) => {
                let v = p.enc.to_host(be)?;
                Some([v[0].clone(), v[1].clone(), v[2].clone()])
            }
            None => None,
        };
        Ok(SparseHost {
            dict: self.learner.dictionary(be)?,
            lambda: self.spec.lambda,
            nonneg: self.spec.nonneg,
            encoder,
        })
    }
}

impl<B: Fused> Objective<B> for SparseObjective<B> {
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, rng: &mut RngStream) -> Result<Self> {
        let spec = recipe.sparse()?;
        let dict = initial_dictionary(&data.prepared.resident, spec.atoms, rng)?;
        let encoder = match spec.psd() {
            true => Some(
                PsdArch {
                    dim: dict.cols,
                    atoms: dict.rows,
                }
                .initial(&dict, spec.init_gain)?,
            ),
            false => None,
        };
        let host = SparseHost {
            dict,
            lambda: spec.lambda,
            nonneg: spec.nonneg,
            encoder,
        };
        Self::assemble(be, recipe, &host, data)
    }

    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self> {
        let host: SparseHost = ck.model(origin)?;
        let spec = recipe.sparse()?;
        if host.atoms() != spec.atoms
            || host.dim() != data.cols()
            || host.encoder.is_some() != spec.psd()
        {
            return Err(Error::format(
                origin,
                format!(
                    "the model has {} atoms of {} values{}; the recipe and data ask for {} atoms of {}{}",
                    host.atoms(),
                    host.dim(),
                    if host.encoder.is_some() { " and an encoder" } else { "" },
                    spec.atoms,
                    data.cols(),
                    if spec.psd() { " and an encoder" } else { "" },
                ),
            ));
        }
        let mut o = Self::assemble(be, recipe, &host, data)?;
        let steps = ck.epoch * data.batches_per_epoch() as u64;
        if o.update == DictUpdate::Bcd && steps > 0 {
            let (k, d) = (host.atoms(), host.dim());
            let a = ck.state_tensor(origin, "bcd.A", (k, k))?;
            let b = ck.state_tensor(origin, "bcd.B", (k, d))?;
            o.learner.set_stats(be, (a, b), steps)?;
        } else {
            o.learner.steps = steps;
        }
        if let Some(p) = &mut o.psd {
            p.bp.import(be, (ck, origin), steps)?;
        }
        Ok(o)
    }

    fn check_data(_recipe: &Recipe, x: &HostMat, what: &str) -> Result<()> {
        if x.rows == 0 || x.cols == 0 {
            return Err(Error::value(what, format!("{:?}: no values", x.shape())));
        }
        UnitKind::Gaussian.check_values(x, what)
    }

    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()> {
        let x = batch.x;
        match &mut self.psd {
            None => {
                self.learner
                    .step(be, x, &self.inf, self.update, None, rng)?;
            }
            Some(p) => {
                let params = p.enc.bound();
                p.bp.plan.forward(
                    be,
                    &Bindings {
                        params: &params,
                        inputs: &[x, &p.zeros],
                    },
                    rng,
                )?;
                be.copy(p.bp.plan.value(p.g.prediction)?, &mut p.pred)?;
                let prior = Some((&p.pred, self.spec.alpha));
                self.learner
                    .step(be, x, &self.inf, self.update, prior, rng)?;
                p.bp.pass(be, &params, &[x, &self.learner.codes], rng)?;
                p.bp.note_loss(be)?;
                p.bp.update(be, &mut p.enc.params, at)?;
            }
        }
        Ok(())
    }

    fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        if !be.sum(&self.learner.dict)?.is_finite() {
            return Ok(Some("D".into()));
        }
        if let Some(p) = &self.psd {
            return Ok(p.enc.first_non_finite(be)?.map(str::to_string));
        }
        Ok(None)
    }

    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()> {
        let host = self.to_host(be)?;
        let inf = eval_inference(&self.spec);
        if let Some(p) = &mut self.psd {
            rec.metrics.insert("loss".into(), p.bp.take_mean_loss(be)?);
        }
        for (name, x) in &self.probes {
            let s = score(be, &host, x, &inf)?;
            if let Some(w) = s.report.warning(&inf) {
                eprintln!("warning: epoch {} monitor ({name}): {w}", rec.epoch);
            }
            rec.metrics.insert(format!("energy_{name}"), s.energy);
            rec.metrics.insert(format!("nonzero_{name}"), s.nonzero);
            if let Some(e) = s.encoder_energy {
                rec.metrics.insert(format!("psd_energy_{name}"), e);
            }
        }
        Ok(())
    }

    fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(&self.to_host(be)?)?;
        if let Some((a, b)) = self.learner.stats(be)? {
            c.state.insert("bcd.A".into(), a);
            c.state.insert("bcd.B".into(), b);
        }
        if let Some(p) = &self.psd {
            p.bp.export(be, &mut c)?;
        }
        Ok(c)
    }

    fn describe(&self, r: &EpochRecord) -> String {
        let o = |k: &str, p: usize| {
            r.metric(k)
                .map(|v| format!("{v:.p$}"))
                .unwrap_or_else(|| "-".into())
        };
        let mut m = format!(
            "epoch {} energy {} / {} non-zero {} / {}",
            r.epoch,
            o("energy_train", 5),
            o("energy_heldout", 5),
            o("nonzero_train", 3),
            o("nonzero_heldout", 3)
        );
        if r.metric("psd_energy_train").is_some() {
            m.push_str(&format!(
                " encoder energy {} / {} loss {}",
                o("psd_energy_train", 5),
                o("psd_energy_heldout", 5),
                o("loss", 5)
            ));
        }
        m.push_str(&format!(" (train / held-out, {:.2} s)", r.seconds));
        m
    }

    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]) {
        (CURVES, COLUMNS)
    }
}

const COLUMNS: &[&str] = &[
    "energy_train",
    "energy_heldout",
    "nonzero_train",
    "nonzero_heldout",
    "psd_energy_train",
    "psd_energy_heldout",
    "loss",
];

const CURVES: &[CurveSpec] = &[
    CurveSpec {
        name: "energy",
        title: "energy of the optimal codes: train (blue), held-out (red)",
        y_desc: "½‖x − zD‖² + λ‖z‖₁ per example",
        lines: &[
            ("energy_train", Color::Blue),
            ("energy_heldout", Color::Red),
        ],
    },
    CurveSpec {
        name: "encoder_energy",
        title: "energy of PSD's predicted codes F(x): train (blue), held-out (red)",
        y_desc: "per example",
        lines: &[
            ("psd_energy_train", Color::Blue),
            ("psd_energy_heldout", Color::Red),
        ],
    },
];
