//! The natural-image patch data set of the patch recipes, on the real
//! photographs of the shared data folder.

use ebmkit::data::natural::{image_files, natural_patches, NaturalPatches};
use ebmkit::data::{data_dir, WhitenConfig};
use ebmkit::io::recipe::Recipe;
use ebmkit::train::cli::load_data;
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

#[test]
fn zca_fitted_on_training_patches_whitens_them() {
    let dir = data_dir().join("images");
    let eps = 1e-3;
    let set = natural_patches(&dir, &spec(Some(WhitenConfig::zca(eps)))).unwrap();
    let w = set.whitener.as_ref().unwrap();
    // Whitened training variance along each eigenvector is λ/(λ+ε); the
    // mean over pixels of the whitened variance is their average.
    let lam = w.eigenvalues();
    let want: f64 = lam.iter().map(|&l| l / (l + eps)).sum::<f64>() / lam.len() as f64;
    let x = &set.train;
    let got: f64 = (0..x.cols)
        .map(|c| {
            let m = (0..x.rows).map(|r| x.get(r, c) as f64).sum::<f64>() / x.rows as f64;
            (0..x.rows)
                .map(|r| (x.get(r, c) as f64 - m).powi(2))
                .sum::<f64>()
                / (x.rows - 1) as f64
        })
        .sum::<f64>()
        / x.cols as f64;
    assert!(
        (got - want).abs() < 1e-3,
        "mean whitened variance {got} vs {want}"
    );
}

#[test]
fn patch_recipes_load_and_check_their_keys() {
    let r = Recipe::load(Path::new("models/grbm20-patches.toml")).unwrap();
    let mut small = r.clone();
    small.data.patches = 300;
    small.data.test_patches = 50;
    let d = load_data(&small, None).unwrap();
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
