//! The one training loop: epochs of minibatch updates on a data set
//! resident on the device, the recipe's learning-rate and momentum
//! schedules, epoch-end monitors, a finiteness check, periodic atomic
//! checkpoints, exact resume and progress callbacks, for any model whose
//! update is an [`Objective`].
//!
//! The recipe in [`Trainer::recipe`] is the single source of truth: the
//! schedules and the epoch count are read from it at every epoch, so a run
//! is extended by raising `recipe.train.epochs` (what `--epochs` does).
//! Per minibatch the loop gathers the rows on the device (binarising them
//! with one Bernoulli draw when the recipe says `stochastic`) and hands them
//! to the objective; nothing is allocated and nothing is read back until the
//! epoch ends.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::history::{CurveSpec, EpochRecord, History};
use crate::backend::Backend;
use crate::data::batch::Minibatches;
use crate::data::TrainingData;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::Recipe;
use crate::rng::RngStream;

/// The Philox stream of training draws ("TRAN").
pub const TRAIN_STREAM: u32 = 0x5452_414e;

/// The schedule values of one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// 0-based epoch being trained.
    pub epoch: u64,
    pub lr: f32,
    pub momentum: f32,
}

/// One minibatch: its rows and, for supervised objectives, their targets.
#[derive(Clone, Copy)]
pub struct Batch<'a, B: Backend> {
    pub x: &'a B::Mat,
    pub t: Option<&'a B::Mat>,
}

/// Rows of a data set with per-row targets where the objective needs them.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub x: &'a HostMat,
    pub t: Option<&'a HostMat>,
}

impl<'a> From<&'a HostMat> for Rows<'a> {
    fn from(x: &'a HostMat) -> Rows<'a> {
        Rows { x, t: None }
    }
}

/// What a model family trains by: one update on a batch, and what the loop
/// needs around it (monitors, divergence check, checkpoints, curves).
pub trait Objective<B: Backend>: Sized {
    /// A fresh model and its training state for `recipe`; `rng` is the
    /// run's training stream (weight initialisation, chain starts).
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, rng: &mut RngStream) -> Result<Self>;
    /// The model and training state of a checkpoint written by
    /// [`checkpoint`](Self::checkpoint); `origin` names it in errors.
    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self>;
    /// Checks a data set (`what` names it) against the model's inputs.
    fn check_data(recipe: &Recipe, x: &HostMat, what: &str) -> Result<()>;
    /// One update from a batch of training rows (and their targets).
    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()>;
    /// Whether training should stop before the recipe's last epoch (early
    /// stopping); checked after every epoch's monitors.
    fn done(&self) -> bool {
        false
    }
    /// The name of the first parameter that is NaN or infinite, if any.
    fn first_non_finite(&self, be: &B) -> Result<Option<String>>;
    /// Fills the epoch-end monitors of `rec`.
    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()>;
    /// The model and its training state (the loop adds the recipe, epoch,
    /// random stream and history).
    fn checkpoint(&self, be: &B) -> Result<Checkpoint>;
    /// One progress line for an epoch's record.
    fn describe(&self, rec: &EpochRecord) -> String;
    /// The plots of the curves, and the metric columns of `curves.csv`.
    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]);
}

/// The training set on the device, its minibatch order and the buffers of
/// one batch, with the monitors' fixed subsets.
pub struct Resident<B: Backend> {
    data: B::Mat,
    batches: Minibatches,
    idx: Vec<u32>,
    raw: B::Mat,
    batch: B::Mat,
    /// All training targets and the batch's, when supervised.
    targets: Option<(B::Mat, B::Mat)>,
    pub prepared: TrainingData,
}

impl<B: Backend> Resident<B> {
    fn new(be: &B, recipe: &Recipe, prepared: TrainingData) -> Result<Self> {
        let n = prepared.resident.rows;
        let bs = recipe.train.batch_size;
        if n < bs {
            return Err(Error::value(
                "train.batch_size",
                format!("{bs} is larger than the {n} training examples"),
            ));
        }
        let cols = prepared.resident.cols;
        let targets = match &prepared.targets {
            Some(t) => Some((be.upload(&t.resident)?, be.zeros(bs, t.resident.cols)?)),
            None => None,
        };
        Ok(Resident {
            data: be.upload(&prepared.resident)?,
            batches: Minibatches::new(n, bs, recipe.train.seed)?.drop_last(true),
            idx: vec![0; bs],
            raw: be.zeros(bs, cols)?,
            batch: be.zeros(bs, cols)?,
            targets,
            prepared,
        })
    }

    /// Training rows.
    pub fn len(&self) -> usize {
        self.batches.len()
    }
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
    /// Values per row.
    pub fn cols(&self) -> usize {
        self.prepared.resident.cols
    }
    pub fn batch_size(&self) -> usize {
        self.idx.len()
    }
    pub fn batches_per_epoch(&self) -> usize {
        self.batches.batches_per_epoch()
    }

    /// Rows `idx` of the resident set, binarised like a batch (one draw of
    /// `rng` when the recipe binarises per presentation): the starting
    /// states of persistent chains.
    pub fn rows(&self, be: &B, idx: &[u32], rng: &mut RngStream) -> Result<B::Mat> {
        let mut v0 = be.zeros(idx.len(), self.cols())?;
        be.gather_rows(&self.data, idx, &mut v0)?;
        if !self.prepared.stochastic {
            return Ok(v0);
        }
        let mut bin = be.zeros(idx.len(), self.cols())?;
        be.bernoulli(&v0, &mut bin, rng)?;
        Ok(bin)
    }

    /// Loads the batch of rows `order` (and their targets) into the batch
    /// buffers.
    fn load(&mut self, be: &B, order: &[usize], rng: &mut RngStream) -> Result<Batch<'_, B>> {
        for (d, &i) in self.idx.iter_mut().zip(order) {
            *d = i as u32;
        }
        if self.prepared.stochastic {
            be.gather_rows(&self.data, &self.idx, &mut self.raw)?;
            be.bernoulli(&self.raw, &mut self.batch, rng)?;
        } else {
            be.gather_rows(&self.data, &self.idx, &mut self.batch)?;
        }
        if let Some((all, t)) = &mut self.targets {
            be.gather_rows(all, &self.idx, t)?;
        }
        Ok(Batch {
            x: &self.batch,
            t: self.targets.as_ref().map(|(_, t)| t),
        })
    }
}

/// A training run: the recipe, the objective (model + training state), the
/// resident data, the epoch count, the random stream and the curves.
pub struct Trainer<B: Backend, O: Objective<B>> {
    /// The single source of truth for the schedules and the epoch count.
    pub recipe: Recipe,
    pub objective: O,
    /// Epochs completed.
    pub epoch: u64,
    pub rng: RngStream,
    pub history: History,
    data: Resident<B>,
}

impl<B: Backend, O: Objective<B>> Trainer<B, O> {
    /// A fresh run. `train` and `heldout` hold intensities / values, one
    /// example per row; `heldout` may be None (no held-out monitors then).
    pub fn new(be: &B, recipe: Recipe, train: &HostMat, heldout: Option<&HostMat>) -> Result<Self> {
        Self::new_supervised(be, recipe, train.into(), heldout.map(Rows::from))
    }

    /// A fresh run whose rows may carry targets (supervised objectives).
    pub fn new_supervised(
        be: &B,
        recipe: Recipe,
        train: Rows<'_>,
        heldout: Option<Rows<'_>>,
    ) -> Result<Self> {
        let mut rng = RngStream::new(recipe.train.seed, TRAIN_STREAM);
        let mut data = Self::prepare(be, &recipe, train, heldout)?;
        let objective = O::new(be, &recipe, &mut data, &mut rng)?;
        Ok(Trainer {
            recipe,
            objective,
            epoch: 0,
            rng,
            history: History::default(),
            data,
        })
    }

    /// Resumes from a checkpoint written by [`checkpoint`](Self::checkpoint)
    /// (`path` names it in errors). `recipe` is the checkpoint's recipe,
    /// possibly with more epochs.
    pub fn resume(
        be: &B,
        recipe: Recipe,
        ck: &Checkpoint,
        path: &Path,
        (train, heldout): (&HostMat, Option<&HostMat>),
    ) -> Result<Self> {
        Self::resume_supervised(
            be,
            recipe,
            ck,
            path,
            (train.into(), heldout.map(Rows::from)),
        )
    }

    /// [`resume`](Self::resume) for rows that may carry targets.
    pub fn resume_supervised(
        be: &B,
        recipe: Recipe,
        ck: &Checkpoint,
        path: &Path,
        (train, heldout): (Rows<'_>, Option<Rows<'_>>),
    ) -> Result<Self> {
        let data = Self::prepare(be, &recipe, train, heldout)?;
        let objective = O::resume(be, &recipe, ck, path, &data)?;
        Ok(Trainer {
            recipe,
            objective,
            epoch: ck.epoch,
            rng: ck.rng,
            history: History::from_json(&ck.history, path)?,
            data,
        })
    }

    fn prepare(
        be: &B,
        recipe: &Recipe,
        train: Rows<'_>,
        heldout: Option<Rows<'_>>,
    ) -> Result<Resident<B>> {
        recipe.validate()?;
        O::check_data(recipe, train.x, "training data")?;
        if let Some(h) = heldout {
            O::check_data(recipe, h.x, "held-out data")?;
            if h.x.cols != train.x.cols {
                return Err(Error::shape(
                    "held-out data",
                    format!(
                        "{} columns, the training data has {}",
                        h.x.cols, train.x.cols
                    ),
                ));
            }
        }
        let (n_train, rows) = (recipe.data.n_train, recipe.monitor.rows);
        let mut prepared = TrainingData::prepare(
            train.x,
            heldout.map(|h| h.x),
            (recipe.data.binarize, recipe.train.seed),
            n_train,
            rows,
        )?;
        if let Some(t) = train.t {
            let ht = heldout.and_then(|h| h.t);
            let counts = (
                train.x.rows,
                heldout.filter(|_| ht.is_some()).map(|h| h.x.rows),
            );
            prepared = prepared.with_targets((t, ht), counts, n_train, rows)?;
        }
        Resident::new(be, recipe, prepared)
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.data.batches_per_epoch()
    }

    /// Training rows in use.
    pub fn training_rows(&self) -> usize {
        self.data.len()
    }

    /// Runs one epoch; `progress(batch_index)` is called after each batch.
    /// A parameter that turns NaN or infinite is an [`Error::Diverged`].
    pub fn run_epoch(&mut self, be: &B, progress: &mut dyn FnMut(usize)) -> Result<EpochRecord> {
        let e = self.epoch as usize;
        let at = Step {
            epoch: self.epoch,
            lr: self.recipe.lr_at(e),
            momentum: self.recipe.momentum_at(e),
        };
        let t0 = Instant::now();
        // One permutation per epoch; full batches only (the buffers have
        // batch_size rows), so nothing is allocated per batch.
        let order = self.data.batches.permutation(self.epoch);
        let bs = self.data.batch_size();
        for (bi, batch) in order.chunks_exact(bs).enumerate() {
            let rows = self.data.load(be, batch, &mut self.rng)?;
            self.objective.step(be, rows, at, &mut self.rng)?;
            progress(bi);
        }
        be.sync()?;
        let seconds = t0.elapsed().as_secs_f64();
        self.epoch += 1;
        if let Some(param) = self.objective.first_non_finite(be)? {
            return Err(Error::Diverged {
                epoch: self.epoch,
                param,
                last_good: None,
            });
        }
        let mut rec = EpochRecord {
            epoch: self.epoch,
            lr: at.lr,
            seconds,
            ..Default::default()
        };
        self.objective.monitor(be, &mut rec)?;
        self.history.epochs.push(rec.clone());
        Ok(rec)
    }

    /// Everything needed to resume exactly.
    pub fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = self.objective.checkpoint(be)?;
        c.recipe = self.recipe.to_toml()?;
        c.epoch = self.epoch;
        c.rng = self.rng;
        c.history = self.history.to_json()?;
        Ok(c)
    }

    /// Trains until `recipe.train.epochs` epochs are completed, writing a
    /// checkpoint to `ckpt_path` every `monitor.checkpoint_every` epochs
    /// and at the end (also when there was nothing left to train). A
    /// divergence leaves the last good checkpoint in place and names it.
    /// `on_batch(epoch, batch)` follows every batch,
    /// `on_epoch(record, objective)` every epoch (the objective formats its
    /// record: [`Objective::describe`]).
    pub fn fit(
        &mut self,
        be: &B,
        ckpt_path: Option<&Path>,
        on_batch: &mut dyn FnMut(u64, usize),
        on_epoch: &mut dyn FnMut(&EpochRecord, &O),
    ) -> Result<()> {
        let mut last_good: Option<PathBuf> = None;
        let from = self.epoch;
        // (A run resumed after it stopped early stays stopped.)
        while self.epoch < self.recipe.train.epochs as u64 && !self.objective.done() {
            let e = self.epoch;
            let rec = match self.run_epoch(be, &mut |b| on_batch(e, b)) {
                Ok(r) => r,
                Err(Error::Diverged { epoch, param, .. }) => {
                    let kept = ckpt_path.filter(|p| p.exists()).map(Path::to_path_buf);
                    return Err(Error::Diverged {
                        epoch,
                        param,
                        last_good: last_good.or(kept),
                    });
                }
                Err(e) => return Err(e),
            };
            on_epoch(&rec, &self.objective);
            let stop = self.objective.done();
            if let Some(p) = ckpt_path {
                let every = self.recipe.monitor.checkpoint_every as u64;
                let last = self.epoch == self.recipe.train.epochs as u64;
                if self.epoch.is_multiple_of(every) || last || stop {
                    self.checkpoint(be)?.save(p)?;
                    last_good = Some(p.to_path_buf());
                }
            }
        }
        // A run resumed from a finished checkpoint trains nothing, yet its
        // checkpoint is what the caller reports and evaluates next.
        if let (Some(p), true) = (ckpt_path, self.epoch == from) {
            self.checkpoint(be)?.save(p)?;
        }
        Ok(())
    }

    /// Writes the curves of the run into `dir`; returns the files written.
    pub fn save_curves(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let (specs, columns) = self.objective.curves();
        super::history::save_curves(dir, &self.history, specs, columns)
    }

    /// Writes the curves into `dir` (created if need be) after training
    /// that ended with `trained`, also when it failed, since they show where
    /// it went. The training error comes first: a checkpoint that could not
    /// be written must not be reported as the plot that then failed beside
    /// it in the same folder.
    pub fn save_curves_after(&self, dir: &Path, trained: Result<()>) -> Result<Vec<PathBuf>> {
        let curves = std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(dir, e))
            .and_then(|()| self.save_curves(dir));
        trained?;
        curves
    }
}
