//! What a recipe says about its data (the `[data]` section), and loading
//! it: the shipped MNIST subset, the full MNIST or whitened patches of
//! photographs from the data folder. Without a source the data come from
//! the caller, in memory.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::natural::{natural_patches, NaturalPatches};
use super::{data_dir, tile_shape, Dataset, Mnist, WhitenConfig};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// The full MNIST from the data folder (`--data`, `$EBMKIT_DATA`, `../shared/data`).
    Mnist,
    /// The 5000/1000-digit subset shipped in `data/mnist-small`.
    MnistSmall,
    /// Whitened patches of the photographs in `<data>/images`
    /// (see [`crate::data::natural`]).
    Patches,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whiten {
    /// Zero-phase whitening: patches stay in pixel space.
    Zca,
    /// PCA whitening, all components.
    Pca,
    /// ZCA with ε = `whiten_epsilon` times the largest covariance
    /// eigenvalue, then one scale that gives the training patches unit mean
    /// squared norm (the setting of the sparse-coding experiments).
    #[serde(rename = "zca-relative")]
    ZcaRelative,
    /// DC removal only.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// Each pixel is 1 with probability its intensity, drawn afresh each
    /// time a digit is presented (monitoring subsets: one fixed draw).
    Stochastic,
    /// One stochastic draw when the data is loaded, kept for the whole run
    /// (the fixed binarised MNIST of Salakhutdinov & Murray 2008); no random
    /// numbers are spent on the data during training.
    Fixed,
    /// Pixel > 0.5.
    Threshold,
    /// Values as they are.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Where the data come from; absent when they are passed in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DataSource>,
    /// Absent from a recipe file: the model kind's default
    /// (`ModelSpec::default_binarize`: stochastic for RBMs, none for
    /// auto-encoders).
    #[serde(default = "default_binarize")]
    pub binarize: Binarize,
    /// Use only the first `n_train` training examples.
    #[serde(default)]
    pub n_train: Option<usize>,
    /// Hold the last `validation` training examples out as a validation
    /// set (model selection and early stopping of supervised nets; MNIST:
    /// 10,000, leaving 50,000 to train on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
    /// Patches: side in pixels, training and test counts, whitening and its
    /// ε (added to the covariance eigenvalues of the intensities in [0, 1]).
    #[serde(default = "default_patch_size")]
    pub patch_size: usize,
    #[serde(default = "default_patches")]
    pub patches: usize,
    #[serde(default = "default_test_patches")]
    pub test_patches: usize,
    #[serde(default = "default_whiten")]
    pub whiten: Whiten,
    #[serde(default = "default_whiten_epsilon")]
    pub whiten_epsilon: f64,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            source: None,
            binarize: default_binarize(),
            n_train: None,
            validation: None,
            patch_size: default_patch_size(),
            patches: default_patches(),
            test_patches: default_test_patches(),
            whiten: default_whiten(),
            whiten_epsilon: default_whiten_epsilon(),
        }
    }
}

fn default_binarize() -> Binarize {
    Binarize::Stochastic
}
fn default_patch_size() -> usize {
    8
}
fn default_patches() -> usize {
    50_000
}
fn default_test_patches() -> usize {
    10_000
}
fn default_whiten() -> Whiten {
    Whiten::Zca
}
fn default_whiten_epsilon() -> f64 {
    1e-3
}

impl DataSpec {
    /// Rejects impossible values, naming the key.
    pub fn validate(&self, batch_size: usize) -> Result<()> {
        if let Some(n) = self.n_train {
            if n < batch_size {
                return Err(Error::value(
                    "data.n_train",
                    format!("{n} examples is less than one batch of {batch_size}"),
                ));
            }
        }
        if self.source == Some(DataSource::Patches) {
            for (key, v) in [
                ("data.patch_size", self.patch_size),
                ("data.patches", self.patches),
                ("data.test_patches", self.test_patches),
            ] {
                if v == 0 {
                    return Err(Error::value(key, "must be at least 1"));
                }
            }
            if !(self.whiten_epsilon.is_finite() && self.whiten_epsilon > 0.0) {
                return Err(Error::value(
                    "data.whiten_epsilon",
                    format!("{} must be finite and > 0", self.whiten_epsilon),
                ));
            }
        }
        Ok(())
    }

    /// The data this section names: the shipped MNIST subset, or from the
    /// data folder `dir` (else `$EBMKIT_DATA`, else `../shared/data`) the
    /// full MNIST or whitened patches of its photographs. `seed` places the
    /// patches.
    pub fn load(&self, dir: Option<&Path>, seed: u64) -> Result<Dataset> {
        let source = self.source.ok_or_else(|| {
            Error::value(
                "data.source",
                "the recipe names no data source (in-memory data are passed through the library)",
            )
        })?;
        match source {
            DataSource::MnistSmall => Ok(Mnist::load_embedded()?.into()),
            DataSource::Mnist => Ok(match dir {
                Some(d) => Mnist::load(d)?,
                None => Mnist::load_default()?,
            }
            .into()),
            DataSource::Patches => self.load_patches(dir, seed),
        }
    }

    fn load_patches(&self, dir: Option<&Path>, seed: u64) -> Result<Dataset> {
        let root = dir.map(Path::to_path_buf).unwrap_or_else(data_dir);
        let whiten = match self.whiten {
            Whiten::Zca => Some(WhitenConfig::zca(self.whiten_epsilon)),
            Whiten::ZcaRelative => None,
            Whiten::Pca => Some(WhitenConfig::pca(None, self.whiten_epsilon)),
            Whiten::None => None,
        };
        let spec = NaturalPatches {
            size: self.patch_size,
            train: self.patches,
            test: self.test_patches,
            whiten,
            seed,
        };
        let mut set = natural_patches(&root.join("images"), &spec)?;
        if self.whiten == Whiten::ZcaRelative {
            let (train, test, _) =
                super::zca_relative_unit_norm(&set.train, &set.test, self.whiten_epsilon)?;
            (set.train, set.test) = (train, test);
        }
        // PCA-whitened rows are components, not pixels: drawn as strips.
        let shape = match self.whiten {
            Whiten::Pca => tile_shape(set.train.cols),
            _ => (self.patch_size, self.patch_size),
        };
        Ok(Dataset {
            train: set.train,
            test: set.test,
            train_labels: None,
            test_labels: None,
            image_shape: shape,
        })
    }
}
