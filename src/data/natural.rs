//! Whitened patches of natural photographs: the training data of the
//! image-patch recipes (Gaussian RBMs, gated MRFs, sparse coding).
//!
//! The photographs are the images of `<data>/images` (PNG or JPEG, sorted by
//! file name). Every fifth of them (the 5th, 10th, ...) is held out: test
//! patches come only from those, so a test log-likelihood measures
//! generalisation to new scenes, not to new crops of the same ones. Each
//! patch loses its mean (DC component); the whitening is fitted on the
//! training patches and applied to both sets.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

use super::{extract_patches, load_grey, PatchSpec, WhitenConfig, Whitener};

/// Philox stream of the patch positions ("PTCH"); test patches use the next.
pub const PATCH_STREAM: u32 = 0x5054_4348;

/// What to cut and how to whiten it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NaturalPatches {
    pub size: usize,
    pub train: usize,
    pub test: usize,
    /// None: DC removal only.
    pub whiten: Option<WhitenConfig>,
    pub seed: u64,
}

/// Training and test patches, one per row, and the fitted whitening.
pub struct PatchSet {
    pub train: HostMat,
    pub test: HostMat,
    pub whitener: Option<Whitener>,
    /// The photographs the two sets came from.
    pub train_images: Vec<PathBuf>,
    pub test_images: Vec<PathBuf>,
}

/// The PNG / JPEG files of `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        let ext = p
            .extension()
            .map(|x| x.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Cuts, centres and whitens patches of the photographs in `dir`.
pub fn natural_patches(dir: &Path, spec: &NaturalPatches) -> Result<PatchSet> {
    let files = image_files(dir)?;
    if files.len() < 5 {
        return Err(Error::value(
            "data.source = \"patches\"",
            format!(
                "{} holds {} PNG/JPEG images; need at least 5 (every fifth is held out)",
                dir.display(),
                files.len()
            ),
        ));
    }
    let (mut train_files, mut test_files) = (Vec::new(), Vec::new());
    for (i, f) in files.into_iter().enumerate() {
        if i % 5 == 4 {
            test_files.push(f);
        } else {
            train_files.push(f);
        }
    }
    let load = |fs: &[PathBuf]| -> Result<Vec<HostMat>> { fs.iter().map(load_grey).collect() };
    let cut = |imgs: &[HostMat], count: usize, stream: u32| -> Result<HostMat> {
        let ps = PatchSpec {
            count,
            size: spec.size,
            remove_mean: true,
        };
        extract_patches(imgs, &ps, &mut RngStream::new(spec.seed, stream))
    };
    let train = cut(&load(&train_files)?, spec.train, PATCH_STREAM)?;
    let test = cut(&load(&test_files)?, spec.test, PATCH_STREAM + 1)?;
    let (train, test, whitener) = match &spec.whiten {
        Some(cfg) => {
            let w = Whitener::fit(&train, cfg)?;
            (w.transform(&train)?, w.transform(&test)?, Some(w))
        }
        None => (train, test, None),
    };
    Ok(PatchSet {
        train,
        test,
        whitener,
        train_images: train_files,
        test_images: test_files,
    })
}
