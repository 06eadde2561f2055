//! MNIST (LeCun, Cortes and Burges) from its four customary IDX files.

use std::io;
use std::path::{Path, PathBuf};

use super::idx::{read_images, read_labels, IdxArray};
use crate::error::{Error, Result};
use crate::host::HostMat;

/// The customary file stems, in the order train images, train labels, test
/// images, test labels. Each may be raw or carry a `.gz` suffix.
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Images as rows of pixels scaled to [0, 1], labels as digits 0-9.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train_images: HostMat,
    pub train_labels: Vec<u8>,
    pub test_images: HostMat,
    pub test_labels: Vec<u8>,
    /// (rows, cols) of one image: (28, 28) for MNIST.
    pub image_shape: (usize, usize),
}

/// The first of `stem.gz` and `stem` that exists in `dir`.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn load_pair(images: &Path, labels: &Path) -> Result<(IdxArray, Vec<u8>)> {
    let img = read_images(images)?;
    let lab = read_labels(labels)?;
    if img.len() != lab.len() {
        return Err(Error::format(
            labels,
            format!(
                "{} labels for the {} images of {}",
                lab.len(),
                img.len(),
                images.display()
            ),
        ));
    }
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(Error::format(
            labels,
            format!("label {l} at index {i} is not a digit 0-9"),
        ));
    }
    Ok((img, lab.data))
}

impl Mnist {
    /// Loads the four files from `dir/mnist/` if they are all there, else
    /// from `dir` itself.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let candidates = [dir.join("mnist"), dir.to_path_buf()];
        let found = candidates.iter().find_map(|d| {
            FILE_NAMES
                .iter()
                .map(|s| find_file(d, s))
                .collect::<Option<Vec<_>>>()
        });
        let Some(paths) = found else {
            return Err(Error::io(
                dir,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "MNIST files {} (raw or .gz) not found here or in its mnist/ folder \
                         (set {} to the data folder)",
                        FILE_NAMES.join(", "),
                        super::DATA_ENV
                    ),
                ),
            ));
        };
        let (train, train_labels) = load_pair(&paths[0], &paths[1])?;
        let (test, test_labels) = load_pair(&paths[2], &paths[3])?;
        if train.dims[1..] != test.dims[1..] {
            return Err(Error::format(
                &paths[2],
                format!(
                    "test images are {}x{}, training images {}x{}",
                    test.dims[1], test.dims[2], train.dims[1], train.dims[2]
                ),
            ));
        }
        Ok(Mnist {
            image_shape: (train.dims[1], train.dims[2]),
            train_images: train.to_unit_mat(),
            train_labels,
            test_images: test.to_unit_mat(),
            test_labels,
        })
    }

    /// The subset shipped with the crate: the first 5000 training and first
    /// 1000 test digits (made by `examples/make_subset.rs`).
    pub fn embedded_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist-small")
    }

    /// Loads the shipped subset.
    pub fn load_embedded() -> Result<Self> {
        Self::load(Self::embedded_dir())
    }

    /// Loads the full set from [`data_dir`](super::data_dir).
    pub fn load_default() -> Result<Self> {
        Self::load(super::data_dir())
    }

    /// Number of pixels per image.
    pub fn dim(&self) -> usize {
        self.image_shape.0 * self.image_shape.1
    }
}
