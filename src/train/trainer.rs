//! The training loop: model + loss strategy + optimiser on a resident data set.
//!
//! Per minibatch (PCD-1, binary units): gather the rows on the device,
//! binarise them (one Bernoulli pass), `p⁺ = σ(v W + b_h)` (fused GEMM),
//! one Gibbs sweep of the persistent chains (two fused GEMMs), and the
//! update (two GEMMs into the new weights). Five GEMMs, no allocation,
//! nothing read back; the epoch ends with the monitors and a finiteness
//! check of the parameters.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::{Backend, Fused};
use crate::data::batch::Minibatches;
use crate::data::binarize::{binarize_stochastic, binarize_threshold};
use crate::energy::{Bipartite, LayerScratch};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{Binarize, Method, Recipe};
use crate::models::rbm::{first_non_finite, Rbm};
use crate::rng::RngStream;
use crate::sample::tempering::linear_betas;
use crate::sample::{Chains, FastWeights, Tempering};
use crate::units::UnitKind;

use super::loss::Negative;
use super::monitor::{EpochRecord, History, Monitor};
use super::optim::{Sgd, SgdConfig, Stats, VarianceConfig};
use super::TrainError;

/// The Philox stream of training draws ("TRAN").
pub const TRAIN_STREAM: u32 = 0x5452_414e;
/// The stream of the fixed binarisation of monitoring subsets ("HELD").
pub const HELDOUT_STREAM: u32 = 0x4845_4c44;

pub struct Trainer<B: Backend> {
    pub recipe: Recipe,
    pub rbm: Rbm<B>,
    /// Epochs completed.
    pub epoch: u64,
    pub rng: RngStream,
    pub history: History,
    data: B::Mat,
    batches: Minibatches,
    idx: Vec<u32>,
    batch_raw: B::Mat,
    batch: B::Mat,
    pos_ph: B::Mat,
    sh: LayerScratch<B>,
    neg: Negative<B>,
    opt: Sgd<B>,
    monitor: Monitor<B>,
    stochastic: bool,
}

/// Checks data for the visible units: finite everywhere, in [0, 1] for
/// Bernoulli units. `what` names the data set in errors.
pub fn check_data(x: &HostMat, visible: UnitKind, what: &str) -> Result<()> {
    for (i, &v) in x.data.iter().enumerate() {
        let (r, c) = (i / x.cols.max(1), i % x.cols.max(1));
        if !v.is_finite() {
            return Err(Error::value(
                what,
                format!("value {v} at row {r}, column {c} is not finite"),
            ));
        }
        let unit_range = matches!(visible, UnitKind::Bernoulli | UnitKind::Softmax { .. });
        if unit_range && !(0.0..=1.0).contains(&v) {
            return Err(Error::value(
                what,
                format!(
                    "value {v} at row {r}, column {c} is outside [0, 1] ({visible} visible units)"
                ),
            ));
        }
    }
    Ok(())
}

/// Applies the recipe's fixed preprocessing (threshold binarisation, or one
/// stochastic draw for monitoring subsets).
fn preprocess_fixed(x: &HostMat, how: Binarize, seed: u64) -> Result<HostMat> {
    Ok(match how {
        Binarize::None => x.clone(),
        Binarize::Threshold => binarize_threshold(x, 0.5),
        Binarize::Stochastic | Binarize::Fixed => {
            binarize_stochastic(x, &mut RngStream::new(seed, HELDOUT_STREAM))?
        }
    })
}

impl<B: Fused> Trainer<B> {
    /// A fresh run. `train` and `heldout` hold intensities / values, one
    /// example per row; `heldout` may be None (no free-energy gap then).
    pub fn new(be: &B, recipe: Recipe, train: &HostMat, heldout: Option<&HostMat>) -> Result<Self> {
        recipe.validate()?;
        let vis = recipe.visible_units()?;
        let hid = recipe.hidden_units()?;
        let mut rng = RngStream::new(recipe.train.seed, TRAIN_STREAM);
        let nv = train.cols;
        let rbm = Rbm::new(
            be,
            nv,
            recipe.model.n_hidden,
            vis,
            hid,
            recipe.model.init_std,
            &mut rng,
        )?;
        let mut t = Self::assemble(be, recipe, rbm, rng, train, heldout)?;
        // Visible biases from the data means (Hinton's guide, §8).
        if t.recipe.model.visible_bias_from_data {
            let mean = column_means(train);
            let b: Vec<f32> = match vis {
                UnitKind::Bernoulli => mean
                    .iter()
                    .map(|&p| {
                        let p = p.clamp(1e-3, 1.0 - 1e-3);
                        (p / (1.0 - p)).ln()
                    })
                    .collect(),
                // log p: the softmax's natural parameters up to a constant.
                UnitKind::Softmax { .. } => mean.iter().map(|&p| p.max(1e-3).ln()).collect(),
                _ => mean,
            };
            be.write(&mut t.rbm.b_v, &HostMat::new(1, nv, b)?)?;
        }
        if let Some(var) = &mut t.rbm.var_v {
            let z = t.recipe.model.init_variance.ln();
            be.fill(&mut var.log_var, z)?;
        }
        t.rbm.refresh(be)?;
        t.start_chains(be)?;
        Ok(t)
    }

    /// Resumes from a checkpoint written by [`checkpoint`](Self::checkpoint).
    /// `recipe` is the checkpoint's recipe, possibly with more epochs.
    pub fn resume(
        be: &B,
        recipe: Recipe,
        ckpt: &Checkpoint,
        ckpt_path: &Path,
        train: &HostMat,
        heldout: Option<&HostMat>,
    ) -> Result<Self> {
        recipe.validate()?;
        if ckpt.rbm.n_visible() != train.cols {
            return Err(Error::format(
                ckpt_path,
                format!(
                    "the model has {} visible units, the data {} columns",
                    ckpt.rbm.n_visible(),
                    train.cols
                ),
            ));
        }
        if ckpt.rbm.n_hidden() != recipe.model.n_hidden {
            return Err(Error::format(
                ckpt_path,
                format!(
                    "the model has {} hidden units, the recipe says {}",
                    ckpt.rbm.n_hidden(),
                    recipe.model.n_hidden
                ),
            ));
        }
        let rbm = Rbm::from_host(be, &ckpt.rbm)?;
        let mut t = Self::assemble(be, recipe, rbm, ckpt.rng, train, heldout)?;
        t.epoch = ckpt.epoch;
        t.history = History::from_json(&ckpt.history);
        t.import_state(be, ckpt, ckpt_path)?;
        Ok(t)
    }

    fn assemble(
        be: &B,
        recipe: Recipe,
        rbm: Rbm<B>,
        rng: RngStream,
        train: &HostMat,
        heldout: Option<&HostMat>,
    ) -> Result<Self> {
        let vis = rbm.visible;
        let nv = rbm.n_visible();
        let nh = rbm.n_hidden();
        check_data(train, vis, "training data")?;
        if let Some(h) = heldout {
            check_data(h, vis, "held-out data")?;
            if h.cols != nv {
                return Err(Error::shape(
                    "held-out data",
                    format!("{} columns, the training data has {nv}", h.cols),
                ));
            }
        }
        let n_train = recipe.data.n_train.unwrap_or(train.rows).min(train.rows);
        let bs = recipe.train.batch_size;
        if n_train < bs {
            return Err(Error::value(
                "train.batch_size",
                format!("{bs} is larger than the {n_train} training examples"),
            ));
        }
        let stochastic = recipe.data.binarize == Binarize::Stochastic;
        // The resident data set: intensities when binarised per batch,
        // else the fixed preprocessing.
        let train_used = if n_train < train.rows {
            train.select_rows(&(0..n_train).collect::<Vec<_>>())?
        } else {
            train.clone()
        };
        let resident = match recipe.data.binarize {
            Binarize::Threshold | Binarize::Fixed => {
                preprocess_fixed(&train_used, recipe.data.binarize, recipe.train.seed)?
            }
            _ => train_used,
        };
        let data = be.upload(&resident)?;
        let batches = Minibatches::new(n_train, bs, recipe.train.seed)?.drop_last(true);

        let mrows = recipe.monitor.rows.min(n_train);
        let mon_train = preprocess_fixed(
            &resident.select_rows(&(0..mrows).collect::<Vec<_>>())?,
            if stochastic {
                Binarize::Stochastic
            } else {
                Binarize::None
            },
            recipe.train.seed,
        )?;
        let mon_held = match heldout {
            Some(h) => {
                let n = h.rows.min(mrows);
                Some(preprocess_fixed(
                    &h.select_rows(&(0..n).collect::<Vec<_>>())?,
                    recipe.data.binarize,
                    recipe.train.seed ^ 1,
                )?)
            }
            None => None,
        };
        let monitor = Monitor::new(be, &mon_train, mon_held.as_ref(), nh)?;

        let t = &recipe.train;
        let nc = recipe.chains();
        let neg = match t.method {
            Method::Cd => Negative::Cd {
                chains: Chains::new(be, bs, nv, nh)?,
                k: t.k,
            },
            Method::Pcd => Negative::Pcd {
                chains: Chains::new(be, nc, nv, nh)?,
                k: t.k,
            },
            Method::Fpcd => Negative::Fpcd {
                chains: Chains::new(be, nc, nv, nh)?,
                k: t.k,
                fast: FastWeights::new(be, &rbm, t.fast_lr, t.fast_decay)?,
            },
            Method::Pt => Negative::Pt {
                pt: Tempering::new(be, linear_betas(t.temperatures, t.beta_min), nc, nv, nh)?,
                k: t.k,
                v: be.zeros(nc, nv)?,
                ph: be.zeros(nc, nh)?,
            },
        };
        let centering = if t.centering {
            Some((column_means(&resident), t.centering_rate))
        } else {
            None
        };
        let opt = Sgd::new(
            be,
            &rbm.w,
            SgdConfig {
                weight_decay: t.weight_decay,
                sparsity: t
                    .sparsity_target
                    .map(|s| (s, t.sparsity_cost, t.sparsity_decay)),
                centering,
                explicit: t.method == Method::Fpcd,
                momentum_free: (0..t.epochs).all(|e| recipe.momentum_at(e) == 0.0),
                variance: rbm.var_v.as_ref().map(|_| {
                    let m = &recipe.model;
                    let learn = m
                        .learn_variance
                        .then(|| (t.variance_lr_factor, m.min_variance.ln()));
                    VarianceConfig {
                        n_pos: bs,
                        n_neg: nc,
                        learn,
                    }
                }),
            },
        )?;
        Ok(Trainer {
            batch_raw: be.zeros(bs, nv)?,
            batch: be.zeros(bs, nv)?,
            pos_ph: be.zeros(bs, nh)?,
            sh: LayerScratch::new(be, bs, nh)?,
            idx: vec![0; bs],
            recipe,
            rbm,
            epoch: 0,
            rng,
            history: History::default(),
            data,
            batches,
            neg,
            opt,
            monitor,
            stochastic,
        })
    }

    /// Rows `idx` of the resident data, binarised like a batch.
    fn start_rows(&mut self, be: &B, idx: &[u32]) -> Result<B::Mat> {
        let mut v0 = be.zeros(idx.len(), self.rbm.n_visible())?;
        be.gather_rows(&self.data, idx, &mut v0)?;
        if self.stochastic {
            let mut bin = be.zeros(idx.len(), self.rbm.n_visible())?;
            be.bernoulli(&v0, &mut bin, &mut self.rng)?;
            return Ok(bin);
        }
        Ok(v0)
    }

    /// Persistent chains start at (binarised) training rows.
    fn start_chains(&mut self, be: &B) -> Result<()> {
        let n_train = self.batches.len();
        let start = |rows: usize| -> Vec<u32> { (0..rows).map(|r| (r % n_train) as u32).collect() };
        let (nc, n_pt) = match &self.neg {
            Negative::Cd { .. } => return Ok(()),
            Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => (chains.rows(), 0),
            Negative::Pt { pt, .. } => (0, pt.n),
        };
        let v0 = self.start_rows(be, &start(nc.max(n_pt)))?;
        match &mut self.neg {
            Negative::Cd { .. } => Ok(()),
            Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => {
                chains.start_from(be, &self.rbm, &v0, &mut self.rng)
            }
            Negative::Pt { pt, .. } => pt.start_from(be, &self.rbm, &v0, &mut self.rng),
        }
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.batches.batches_per_epoch()
    }

    /// One minibatch update with rows `idx` of the resident data.
    fn update(&mut self, be: &B, lr: f32, mom: f32) -> Result<()> {
        if self.stochastic {
            be.gather_rows(&self.data, &self.idx, &mut self.batch_raw)?;
            be.bernoulli(&self.batch_raw, &mut self.batch, &mut self.rng)?;
        } else {
            be.gather_rows(&self.data, &self.idx, &mut self.batch)?;
        }
        // Positive phase: p⁺ = E[h | v⁺] (and, for CD, the chains' first h).
        let h0 = self.neg.cd_hidden();
        self.rbm.hidden_given_visible(
            be,
            &self.batch,
            None,
            &mut self.pos_ph,
            h0,
            &mut self.sh,
            &mut self.rng,
        )?;
        // Negative phase.
        self.neg.run(be, &self.rbm, &mut self.rng)?;
        let Trainer {
            neg,
            opt,
            rbm,
            batch,
            pos_ph,
            ..
        } = self;
        let (v_neg, h_neg, fast) = match neg {
            Negative::Cd { chains, .. } | Negative::Pcd { chains, .. } => {
                (&chains.v, &chains.ph, None)
            }
            Negative::Fpcd { chains, fast, .. } => (&chains.v, &chains.ph, Some(fast)),
            Negative::Pt { v, ph, .. } => (&*v, &*ph, None),
        };
        let stats = Stats {
            v_pos: batch,
            h_pos: pos_ph,
            v_neg,
            h_neg,
        };
        opt.step(be, rbm, stats, lr, mom, fast)
    }

    /// Runs one epoch; `progress(batch_index)` is called after each batch.
    pub fn run_epoch(
        &mut self,
        be: &B,
        progress: &mut dyn FnMut(usize),
    ) -> std::result::Result<EpochRecord, TrainError> {
        let e = self.epoch as usize;
        let lr = self.recipe.lr_at(e);
        let mom = self.recipe.momentum_at(e);
        let t0 = Instant::now();
        // One permutation per epoch; full batches only (the buffers have
        // batch_size rows), so nothing is allocated per batch.
        let order = self.batches.permutation(self.epoch);
        let bs = self.idx.len();
        for (bi, batch) in order.chunks_exact(bs).enumerate() {
            for (d, &i) in self.idx.iter_mut().zip(batch) {
                *d = i as u32;
            }
            self.update(be, lr, mom)?;
            progress(bi);
        }
        be.sync()?;
        let seconds = t0.elapsed().as_secs_f64();
        self.epoch += 1;
        if let Some(param) = first_non_finite(be, &self.rbm)? {
            return Err(TrainError::Diverged {
                epoch: self.epoch,
                param,
                last_good: None,
            });
        }
        let mut rec = EpochRecord {
            epoch: self.epoch,
            lr,
            seconds,
            ..Default::default()
        };
        self.monitor.evaluate(be, &self.rbm, self.epoch, &mut rec)?;
        if let Negative::Pt { pt, .. } = &self.neg {
            rec.swap_rates = pt.swap_rates(be)?;
        }
        self.history.epochs.push(rec.clone());
        Ok(rec)
    }

    /// Everything needed to resume exactly.
    pub fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(self.rbm.to_host(be)?);
        c.recipe = self.recipe.to_toml();
        c.epoch = self.epoch;
        c.rng = self.rng;
        c.history = self.history.to_json();
        let s = &mut c.state;
        s.insert(
            "W_prev".into(),
            be.download(self.opt.prev_weights(&self.rbm.w))?,
        );
        s.insert("db_v".into(), be.download(&self.opt.db_v)?);
        s.insert("db_h".into(), be.download(&self.opt.db_h)?);
        if let Some(sp) = &self.opt.sparsity {
            s.insert("q_h".into(), be.download(&sp.q_h)?);
        }
        if let Some(st) = self.opt.variance_step_ref() {
            s.insert("dlog_var_v".into(), be.download(&st.dz)?);
        }
        if let Some(ce) = &self.opt.centering {
            s.insert("mu_v".into(), be.download(&ce.mu_v)?);
            s.insert("lambda_h".into(), be.download(&ce.lambda_h)?);
        }
        match &self.neg {
            Negative::Cd { .. } => {}
            Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => {
                s.insert("chain_v".into(), be.download(&chains.v)?);
                s.insert("chain_h".into(), be.download(&chains.h)?);
            }
            Negative::Pt { pt, .. } => {
                let (v, h) = pt.state(be)?;
                s.insert("pt_v".into(), v);
                s.insert("pt_h".into(), h);
                s.insert(
                    "pt_phase".into(),
                    HostMat::new(1, 1, vec![pt.phase() as f32])?,
                );
            }
        }
        if let Negative::Fpcd { fast, .. } = &self.neg {
            s.insert("fast_W".into(), be.download(&fast.fast.w)?);
            s.insert("fast_b_v".into(), be.download(&fast.fast.b_v)?);
            s.insert("fast_b_h".into(), be.download(&fast.fast.b_h)?);
        }
        Ok(c)
    }

    fn import_state(&mut self, be: &B, c: &Checkpoint, path: &Path) -> Result<()> {
        let nv = self.rbm.n_visible();
        let nh = self.rbm.n_hidden();
        be.write(
            &mut self.opt.w_prev,
            c.state_tensor(path, "W_prev", (nv, nh))?,
        )?;
        be.write(&mut self.opt.db_v, c.state_tensor(path, "db_v", (1, nv))?)?;
        be.write(&mut self.opt.db_h, c.state_tensor(path, "db_h", (1, nh))?)?;
        if let Some(sp) = &mut self.opt.sparsity {
            be.write(&mut sp.q_h, c.state_tensor(path, "q_h", (1, nh))?)?;
        }
        if let Some(st) = self.opt.variance_step() {
            be.write(&mut st.dz, c.state_tensor(path, "dlog_var_v", (1, nv))?)?;
        }
        if let Some(ce) = &mut self.opt.centering {
            be.write(&mut ce.mu_v, c.state_tensor(path, "mu_v", (1, nv))?)?;
            be.write(&mut ce.lambda_h, c.state_tensor(path, "lambda_h", (1, nh))?)?;
        }
        match &mut self.neg {
            Negative::Cd { .. } => {}
            Negative::Pcd { chains, .. } | Negative::Fpcd { chains, .. } => {
                let nc = chains.rows();
                be.write(&mut chains.v, c.state_tensor(path, "chain_v", (nc, nv))?)?;
                be.write(&mut chains.h, c.state_tensor(path, "chain_h", (nc, nh))?)?;
            }
            Negative::Pt { pt, .. } => {
                let r = pt.temperatures() * pt.n;
                let v = c.state_tensor(path, "pt_v", (r, nv))?;
                let h = c.state_tensor(path, "pt_h", (r, nh))?;
                pt.set_state(be, v, h)?;
                let ph = c.state_tensor(path, "pt_phase", (1, 1))?;
                pt.set_phase(ph.data[0] as usize);
            }
        }
        if let Negative::Fpcd { fast, .. } = &mut self.neg {
            be.write(&mut fast.fast.w, c.state_tensor(path, "fast_W", (nv, nh))?)?;
            be.write(
                &mut fast.fast.b_v,
                c.state_tensor(path, "fast_b_v", (1, nv))?,
            )?;
            be.write(
                &mut fast.fast.b_h,
                c.state_tensor(path, "fast_b_h", (1, nh))?,
            )?;
        }
        Ok(())
    }

    /// Trains until `epochs` epochs are completed, writing a checkpoint to
    /// `ckpt_path` every `monitor.checkpoint_every` epochs and at the end.
    /// A divergence leaves the last good checkpoint in place and names it.
    pub fn fit(
        &mut self,
        be: &B,
        epochs: u64,
        ckpt_path: Option<&Path>,
        on_batch: &mut dyn FnMut(u64, usize),
        on_epoch: &mut dyn FnMut(&EpochRecord),
    ) -> std::result::Result<(), TrainError> {
        let mut last_good: Option<PathBuf> = None;
        while self.epoch < epochs {
            let e = self.epoch;
            let rec = match self.run_epoch(be, &mut |b| on_batch(e, b)) {
                Ok(r) => r,
                Err(TrainError::Diverged { epoch, param, .. }) => {
                    return Err(TrainError::Diverged {
                        epoch,
                        param,
                        last_good: last_good
                            .or_else(|| ckpt_path.filter(|p| p.exists()).map(|p| p.to_path_buf())),
                    })
                }
                Err(e) => return Err(e),
            };
            on_epoch(&rec);
            if let Some(p) = ckpt_path {
                let every = self.recipe.monitor.checkpoint_every as u64;
                if self.epoch % every == 0 || self.epoch == epochs {
                    self.checkpoint(be)?.save(p)?;
                    last_good = Some(p.to_path_buf());
                }
            }
        }
        Ok(())
    }
}

/// Column means of a host matrix (f64 accumulation).
pub fn column_means(x: &HostMat) -> Vec<f32> {
    let mut acc = vec![0f64; x.cols];
    for r in 0..x.rows {
        for (a, v) in acc.iter_mut().zip(x.row(r)) {
            *a += *v as f64;
        }
    }
    acc.iter()
        .map(|a| (a / x.rows.max(1) as f64) as f32)
        .collect()
}
