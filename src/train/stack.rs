//! Greedy layer-wise pretraining: each layer of a stack recipe trained by
//! its own kind's objective on the codes of the layers below, with its own
//! resumable checkpoint (`layer-k.safetensors` in the run's folder); the
//! stack is the layers together ([`StackHost`]).
//!
//! Layer k's training rows are layer k-1's encoder means of layer k-1's
//! rows (with `codes = "samples"` binarised afresh at every presentation);
//! held-out rows are encoded the same way for the monitors.

use std::path::{Path, PathBuf};

use crate::backend::Fused;
use crate::data::prepare::head;
use crate::error::Result;
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{DbmLayer, ModelSpec, Recipe};
use crate::models::net::{Net, NetHost, Output};
use crate::models::{AnyModel, StackHost};
use crate::train::autoencoder::AeObjective;
use crate::train::fit::{Objective, Trainer};
use crate::train::history::EpochRecord;
use crate::train::rbm::RbmObjective;

/// A layer of a stack starting its training.
pub struct LayerStart<'a> {
    /// Its index in the stack.
    pub k: usize,
    /// Its recipe (the stack's `[train]` with the layer's keys over it).
    pub recipe: &'a Recipe,
    /// The epoch it starts from (its epoch count when it is already done).
    pub from: u64,
    /// Minibatches per epoch (0 when there is nothing left to train).
    pub batches_per_epoch: usize,
}

/// What a stack run reports as it goes: a layer starting, every minibatch
/// (epoch, batch index), and every epoch's line.
pub struct Progress<'a> {
    pub on_layer: &'a mut dyn FnMut(LayerStart<'_>),
    pub on_batch: &'a mut dyn FnMut(u64, usize),
    pub on_epoch: &'a mut dyn FnMut(usize, &EpochRecord, String),
}

/// A stack recipe's run: the recipe and the folder of the layers'
/// checkpoints.
pub struct StackTrainer {
    pub recipe: Recipe,
    pub dir: PathBuf,
}

impl StackTrainer {
    /// A run of `recipe` (kind stack) keeping layer checkpoints in `dir`.
    pub fn new(recipe: Recipe, dir: impl Into<PathBuf>) -> Result<StackTrainer> {
        recipe.validate()?;
        recipe.stack()?;
        Ok(StackTrainer {
            recipe,
            dir: dir.into(),
        })
    }

    /// Layer `k`'s checkpoint.
    pub fn layer_path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("layer-{k}.safetensors"))
    }

    /// The folder of layer `k`'s training curves (CSV and PNG).
    pub fn curves_dir(&self, k: usize) -> PathBuf {
        self.dir.join(format!("layer-{k}"))
    }

    /// Trains every layer in turn on `train` (held-out rows `heldout` for
    /// the monitors). With `resume`, a layer whose checkpoint exists
    /// continues from it (a finished one is kept as it is); without, every
    /// layer starts afresh.
    pub fn fit<B: Fused>(
        &self,
        be: &B,
        (train, heldout): (&HostMat, Option<&HostMat>),
        resume: bool,
        mut progress: Progress<'_>,
    ) -> Result<StackHost> {
        std::fs::create_dir_all(&self.dir).map_err(|e| crate::Error::io(&self.dir, e))?;
        // Later layers see the rows layer 0 trains on.
        let mut x = head(train, self.recipe.data.n_train.unwrap_or(train.rows))?;
        let mut held = heldout.cloned();
        let mut layers = Vec::new();
        for k in 0..self.recipe.layers.len() {
            let r = self.recipe.layer(k)?;
            let path = self.layer_path(k);
            let curves = self.curves_dir(k);
            let rows = (if k == 0 { train } else { &x }, held.as_ref());
            let go = Layer {
                k,
                path: &path,
                curves: &curves,
                resume,
                rows,
            };
            // A DBM's first and middle RBMs pass their doubled-input
            // means up, as they were trained.
            let up = match &r.model {
                ModelSpec::Rbm(m) => DbmLayer::multipliers(m.dbm_layer).0,
                _ => 1.0,
            };
            let model = match &r.model {
                ModelSpec::Rbm(_) => go.fit::<B, RbmObjective<B>>(be, r, &mut progress)?,
                ModelSpec::Sparse(_) => {
                    go.fit::<B, crate::train::sparse::SparseObjective<B>>(be, r, &mut progress)?
                }
                _ => go.fit::<B, AeObjective<B>>(be, r, &mut progress)?,
            };
            if k + 1 < self.recipe.layers.len() {
                x = encode(be, &model, &x, up)?;
                held = held.map(|h| encode(be, &model, &h, up)).transpose()?;
            }
            layers.push(model);
        }
        Ok(StackHost { layers })
    }
}

/// The means of a layer-wise model's hidden units for the rows of `x`,
/// their total input multiplied by `scale` (1 but for the RBMs that
/// pretrain a DBM, see [`DbmLayer`]).
pub fn encode<B: Fused>(be: &B, model: &AnyModel, x: &HostMat, scale: f32) -> Result<HostMat> {
    let mut layer = model.layerwise()?.encoder()?;
    if scale != 1.0 {
        layer.w.data.iter_mut().for_each(|w| *w *= scale);
        layer.b.data.iter_mut().for_each(|b| *b *= scale);
    }
    let net = NetHost {
        layers: vec![layer],
        output: Output::Linear,
    };
    Net::from_host(be, &net)?.forward(be, x)
}

/// One layer's training: where it checkpoints and writes its curves,
/// whether it resumes, its rows.
struct Layer<'a> {
    k: usize,
    path: &'a Path,
    curves: &'a Path,
    resume: bool,
    rows: (&'a HostMat, Option<&'a HostMat>),
}

impl Layer<'_> {
    fn fit<B: Fused, O: Objective<B>>(
        &self,
        be: &B,
        recipe: Recipe,
        progress: &mut Progress<'_>,
    ) -> Result<AnyModel> {
        let (k, path) = (self.k, self.path);
        let epochs = recipe.train.epochs as u64;
        let mut t = if self.resume && path.exists() {
            let ck = Checkpoint::load(path)?;
            if ck.epoch >= epochs {
                (progress.on_layer)(LayerStart {
                    k,
                    recipe: &recipe,
                    from: ck.epoch,
                    batches_per_epoch: 0,
                });
                return AnyModel::from_checkpoint(&ck, path);
            }
            Trainer::<B, O>::resume(be, recipe, &ck, path, self.rows)?
        } else {
            Trainer::<B, O>::new(be, recipe, self.rows.0, self.rows.1)?
        };
        (progress.on_layer)(LayerStart {
            k,
            recipe: &t.recipe,
            from: t.epoch,
            batches_per_epoch: t.batches_per_epoch(),
        });
        let on_batch = &mut *progress.on_batch;
        let on_epoch = &mut *progress.on_epoch;
        let fitted = t.fit(be, Some(path), &mut |e, b| on_batch(e, b), &mut |r, o| {
            on_epoch(k, r, o.describe(r))
        });
        t.save_curves_after(self.curves, fitted)?;
        Ok(AnyModel::load(path)?.0)
    }
}
