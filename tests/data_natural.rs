//! The natural-image patch data set of the patch recipes, on the real
//! photographs of the shared data folder.

use ebmkit::data::natural::{image_files, natural_patches, NaturalPatches};
use ebmkit::data::{data_dir, WhitenConfig};
use ebmkit::io::recipe::Recipe;
use std::path::Path;

fn spec(whiten: Option<WhitenConfig>) -> NaturalPatches {
    NaturalPatches {
        size: 8,
        train: 4000,
        test: 500,
        whiten,
        seed: 7,
    }
}

#[test]
fn every_fifth_photograph_is_held_out() {
    let dir = data_dir().join("images");
    let files = image_files(&dir).unwrap();
    assert_eq!(files.len(), 10, "{files:?}");
    let set = natural_patches(&dir, &spec(None)).unwrap();
    let names = |v: &[std::path::PathBuf]| -> Vec<String> {
        v.iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&set.test_images), ["coffee", "rocket"]);
    assert_eq!(set.train_images.len(), 8);
    assert_eq!(set.train.shape(), (4000, 64));
    assert_eq!(set.test.shape(), (500, 64));
    // DC removed: every patch sums to zero.
    for r in (0..set.train.rows).step_by(97) {
        let s: f64 = set.train.row(r).iter().map(|&x| x as f64).sum();
        assert!(s.abs() < 1e-4, "row {r} sums to {s}");
    }
    // Seeded: the same spec gives the same patches, another seed others.
    let again = natural_patches(&dir, &spec(None)).unwrap();
    assert_eq!(again.train, set.train);
    let other = natural_patches(
        &dir,
        &NaturalPatches {
            seed: 8,
            ..spec(None)
        },
    )
    .unwrap();
    assert_ne!(other.train, set.train);
}

/// Unbiased covariance (n - 1) of the rows of `x`, in f64.
fn covariance(x: &ebmkit::HostMat) -> Vec<Vec<f64>> {
    let (n, d) = x.shape();
    let mean: Vec<f64> = (0..d)
        .map(|c| (0..n).map(|r| x.get(r, c) as f64).sum::<f64>() / n as f64)
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for r in 0..n {
        let row = x.row(r);
        for i in 0..d {
            let a = row[i] as f64 - mean[i];
            for j in 0..d {
                cov[i][j] += a * (row[j] as f64 - mean[j]);
            }
        }
    }
    cov.iter_mut().flatten().for_each(|c| *c /= (n - 1) as f64);
    cov
}

#[test]
fn zca_fitted_on_training_patches_whitens_them() {
    // ZCA with ε maps covariance C to C_w = C (C + εI)^-1 (the two commute),
    // so C_w (C + εI) = C: checked on covariances computed here from the raw
    // and the whitened patches (the same positions: only the whitening differs).
    let dir = data_dir().join("images");
    let eps = 1e-3;
    let raw = natural_patches(&dir, &spec(None)).unwrap().train;
    let white = natural_patches(&dir, &spec(Some(WhitenConfig::zca(eps))))
        .unwrap()
        .train;
    let (c, cw) = (covariance(&raw), covariance(&white));
    let d = c.len();
    let scale = c.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut worst = 0.0f64;
    for (cw_i, c_i) in cw.iter().zip(&c) {
        for (j, &c_ij) in c_i.iter().enumerate() {
            let lhs: f64 = (0..d)
                .map(|k| cw_i[k] * (c[k][j] + if k == j { eps } else { 0.0 }))
                .sum();
            worst = worst.max((lhs - c_ij).abs());
        }
    }
    assert!(
        worst < 1e-3 * scale,
        "|C_w (C + εI) - C| = {worst}, |C| = {scale}"
    );
}

#[test]
fn patch_recipes_load_and_check_their_keys() {
    let r = Recipe::load(Path::new("models/grbm20-patches.toml")).unwrap();
    let mut small = r.clone();
    small.data.patches = 300;
    small.data.test_patches = 50;
    let d = small.data.load(None, small.train.seed).unwrap();
    assert_eq!((d.train.rows, d.test.rows, d.dim()), (300, 50, 64));
    assert_eq!(d.image_shape, (8, 8));
    // Binary visible units on whitened patches are refused, naming the key.
    let text = std::fs::read_to_string("models/grbm20-patches.toml")
        .unwrap()
        .replace("visible = \"gaussian\"", "visible = \"bernoulli\"")
        .replace("learn_variance = true", "learn_variance = false");
    let e = Recipe::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.visible"), "{e}");
    let text = std::fs::read_to_string("models/grbm20-patches.toml")
        .unwrap()
        .replace("whiten_epsilon = 0.01", "whiten_epsilon = 0.0");
    let e = Recipe::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("data.whiten_epsilon"), "{e}");
    // A folder with too few photographs is a typed error naming it.
    let tmp = std::env::temp_dir().join(format!("ebmkit-nopics-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let e = natural_patches(&tmp, &spec(None))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ebmkit-nopics"), "{e}");
    std::fs::remove_dir_all(&tmp).ok();
}
