//! Data loading and preparation: everything that turns files on disk into
//! [`HostMat`](crate::HostMat)s ready to upload once to a backend.
//!
//! - [`idx`]: the IDX format of MNIST (raw or gzip), reader and writer.
//! - [`mnist`]: the four MNIST files as one [`mnist::Mnist`], from the shared
//!   data folder ([`data_dir`]) or the small subset shipped in `data/`.
//! - [`npy`]: numpy `.npy` arrays (float32/float64/uint8) in, float32 out.
//! - [`binarize`]: stochastic and threshold binarisation of intensities.
//! - [`batch`]: seeded, reproducible shuffled minibatches.
//! - [`image`], [`patches`], [`whiten`]: grey images, random patches, PCA and
//!   ZCA whitening for the image-patch models; [`natural`] puts them together
//!   into the whitened natural-image patches the patch recipes train on.
//! - [`spec`]: the `[data]` section of a recipe and the loading of what it
//!   names; [`prepare`]: the one preparation path (fixed binarisations,
//!   row cuts, resident set and monitoring subsets) train and eval share.
//! - [`Dataset`]: what a recipe trains and is tested on.
//!
//! Readers never panic on bad input: a malformed file gives
//! [`Error::Format`](crate::Error::Format) naming the file and the fault.

use std::path::PathBuf;

pub mod batch;
pub mod binarize;
pub mod idx;
pub mod image;
pub mod mnist;
pub mod natural;
pub mod npy;
pub mod patches;
pub mod prepare;
pub mod spec;
pub mod whiten;

pub use batch::{EpochBatches, Minibatches};
pub use binarize::{binarize_stochastic, binarize_threshold};
pub use idx::IdxArray;
pub use image::load_grey;
pub use mnist::Mnist;
pub use npy::{read_npy, write_npy, NpyArray};
pub use patches::{extract_patches, remove_row_means, PatchSpec};
pub use prepare::{EvalData, Targets, TrainingData};
pub use spec::{Binarize, DataSource, DataSpec, Whiten};
pub use whiten::{zca_relative_unit_norm, WhitenConfig, WhitenKind, Whitener};

/// A training and a test set, one example per row, their class labels
/// where the source has them, and the shape each row is drawn as
/// (filters, samples).
pub struct Dataset {
    pub train: crate::HostMat,
    pub test: crate::HostMat,
    pub train_labels: Option<Vec<u8>>,
    pub test_labels: Option<Vec<u8>>,
    pub image_shape: (usize, usize),
}

impl Dataset {
    /// Values per example.
    pub fn dim(&self) -> usize {
        self.train.cols
    }

    /// Holds the last `n` training rows (and labels) out as a validation
    /// set: returns it, and keeps the rest as the training set.
    pub fn split_validation(&mut self, n: usize) -> crate::Result<Split> {
        let rows = self.train.rows;
        if n == 0 || n >= rows {
            return Err(crate::Error::value(
                "data.validation",
                format!("{n} validation rows out of {rows} training rows: need 0 < n < {rows}"),
            ));
        }
        let keep: Vec<usize> = (0..rows - n).collect();
        let held: Vec<usize> = (rows - n..rows).collect();
        let x = self.train.select_rows(&held)?;
        self.train = self.train.select_rows(&keep)?;
        let labels = self.train_labels.as_mut().map(|l| l.split_off(rows - n));
        Ok(Split { x, labels })
    }
}

/// Rows of a data set and their labels where known.
pub struct Split {
    pub x: crate::HostMat,
    pub labels: Option<Vec<u8>>,
}

impl From<Mnist> for Dataset {
    fn from(m: Mnist) -> Self {
        Dataset {
            train: m.train_images,
            test: m.test_images,
            train_labels: Some(m.train_labels),
            test_labels: Some(m.test_labels),
            image_shape: m.image_shape,
        }
    }
}

/// A tile shape for rows of `n` values: the most square factorisation
/// (28x28 for MNIST digits).
pub fn tile_shape(n: usize) -> (usize, usize) {
    let mut best = (1, n);
    let mut r = 1;
    while r * r <= n {
        if n.is_multiple_of(r) {
            best = (r, n / r);
        }
        r += 1;
    }
    best
}

/// The environment variable that points at the real data folder.
pub const DATA_ENV: &str = "EBMKIT_DATA";

/// Where the real data lives: `$EBMKIT_DATA` if set (and non-empty), else
/// `../shared/data` beside the crate root, the layout the project and its CI
/// share. The folder is not checked here, so callers can report which of
/// its files is missing.
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &std::path::Path) -> crate::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| crate::Error::io(path, e))
}

/// Writes a whole file, naming it in the error.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    std::fs::write(path, bytes).map_err(|e| crate::Error::io(path, e))
}
