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
use crate::io::recipe::{ModelSpec, Recipe};
use crate::models::net::{Net, NetHost, Output};
use crate::models::{AnyModel, StackHost};
use crate::train::autoencoder::AeObjective;
use crate::train::fit::{Objective, Trainer};
use crate::train::history::EpochRecord;
use crate::train::rbm::RbmObjective;

/// What a stack run reports as it goes: a layer starting (index, its
/// recipe, the epoch it starts from), and every epoch's line.
pub struct Progress<'a> {
    pub on_layer: &'a mut dyn FnMut(usize, &Recipe, u64),
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

    /// Trains every layer in turn on `train` (held-out rows `heldout` for
    /// the monitors). With `resume`, a layer whose checkpoint exists
    /// continues from it (a finished one is kept as it is); without, every
    /// layer starts afresh.
    pub fn fit<B: Fused>(
        &self,
        be: &B,
        (train, heldout): (&HostMat, Option<&HostMat>),
        resume: bool,
        progress: Progress<'_>,
    ) -> Result<StackHost> {
        std::fs::create_dir_all(&self.dir).map_err(|e| crate::Error::io(&self.dir, e))?;
        // Later layers see the rows layer 0 trains on.
        let mut x = head(train, self.recipe.data.n_train.unwrap_or(train.rows))?;
        let mut held = heldout.cloned();
        let mut layers = Vec::new();
        for k in 0..self.recipe.layers.len() {
            let r = self.recipe.layer(k)?;
            let path = self.layer_path(k);
            let rows = (if k == 0 { train } else { &x }, held.as_ref());
            let go = Layer {
                k,
                path: &path,
                resume,
                rows,
            };
            let model = match &r.model {
                ModelSpec::Rbm(_) => go.fit::<B, RbmObjective<B>>(
                    be,
                    r,
                    &mut *progress.on_layer,
                    &mut *progress.on_epoch,
                )?,
                _ => go.fit::<B, AeObjective<B>>(
                    be,
                    r,
                    &mut *progress.on_layer,
                    &mut *progress.on_epoch,
                )?,
            };
            if k + 1 < self.recipe.layers.len() {
                x = encode(be, &model, &x)?;
                held = held.map(|h| encode(be, &model, &h)).transpose()?;
            }
            layers.push(model);
        }
        Ok(StackHost { layers })
    }
}

/// The means of a layer-wise model's hidden units for the rows of `x`.
pub fn encode<B: Fused>(be: &B, model: &AnyModel, x: &HostMat) -> Result<HostMat> {
    let layer = model.layerwise()?.encoder()?;
    let net = NetHost {
        layers: vec![layer],
        output: Output::Linear,
    };
    Net::from_host(be, &net)?.forward(be, x)
}

/// One layer's training: where it checkpoints, whether it resumes, its rows.
struct Layer<'a> {
    k: usize,
    path: &'a Path,
    resume: bool,
    rows: (&'a HostMat, Option<&'a HostMat>),
}

impl Layer<'_> {
    fn fit<B: Fused, O: Objective<B>>(
        &self,
        be: &B,
        recipe: Recipe,
        on_layer: &mut dyn FnMut(usize, &Recipe, u64),
        on_epoch: &mut dyn FnMut(usize, &EpochRecord, String),
    ) -> Result<AnyModel> {
        let (k, path) = (self.k, self.path);
        let epochs = recipe.train.epochs as u64;
        if self.resume && path.exists() {
            let ck = Checkpoint::load(path)?;
            if ck.epoch >= epochs {
                on_layer(k, &recipe, ck.epoch);
                return AnyModel::from_checkpoint(&ck, path);
            }
            let mut t = Trainer::<B, O>::resume(be, recipe, &ck, path, self.rows)?;
            on_layer(k, &t.recipe, t.epoch);
            t.fit(be, Some(path), &mut |_, _| {}, &mut |r, o| {
                on_epoch(k, r, o.describe(r))
            })?;
        } else {
            let mut t = Trainer::<B, O>::new(be, recipe, self.rows.0, self.rows.1)?;
            on_layer(k, &t.recipe, 0);
            t.fit(be, Some(path), &mut |_, _| {}, &mut |r, o| {
                on_epoch(k, r, o.describe(r))
            })?;
        }
        Ok(AnyModel::load(path)?.0)
    }
}
