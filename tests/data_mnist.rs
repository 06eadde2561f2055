//! The real MNIST files (through `data_dir()`) against the facts in
//! shared/data/README.md, and the embedded subset against them.

use std::sync::OnceLock;

use ebmkit::data::{data_dir, Mnist};

/// Loaded once per binary: decompressing 55 MB is the slow part.
fn full() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| {
        Mnist::load(data_dir()).unwrap_or_else(|e| panic!("real MNIST (set EBMKIT_DATA): {e}"))
    })
}

#[test]
fn shapes_and_pixel_range() {
    let m = full();
    assert_eq!(m.image_shape, (28, 28));
    assert_eq!(m.dim(), 784);
    assert_eq!(m.train_images.shape(), (60000, 784));
    assert_eq!(m.test_images.shape(), (10000, 784));
    assert_eq!(m.train_labels.len(), 60000);
    assert_eq!(m.test_labels.len(), 10000);
    for x in [&m.train_images, &m.test_images] {
        let lo = x.data.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = x.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!((lo, hi), (0.0, 1.0));
    }
}

#[test]
fn train_pixel_mean_is_33_318_of_255() {
    let x = &full().train_images;
    let mean = x.data.iter().map(|&v| v as f64).sum::<f64>() / x.data.len() as f64;
    assert!(
        (mean * 255.0 - 33.318).abs() < 5e-4,
        "mean {}",
        mean * 255.0
    );
}

#[test]
fn label_counts() {
    let m = full();
    let mut c = [0usize; 10];
    for &l in &m.train_labels {
        c[l as usize] += 1;
    }
    assert_eq!(
        c,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let mut t = [0usize; 10];
    for &l in &m.test_labels {
        t[l as usize] += 1;
    }
    assert_eq!(t.iter().sum::<usize>(), 10000);
    assert!(t.iter().all(|&n| n > 800));
}

#[test]
fn embedded_subset_is_the_head_of_the_full_set() {
    let s = Mnist::load_embedded().unwrap();
    let m = full();
    assert_eq!(s.image_shape, (28, 28));
    assert_eq!(s.train_images.shape(), (5000, 784));
    assert_eq!(s.test_images.shape(), (1000, 784));
    assert_eq!(s.train_images.data[..], m.train_images.data[..5000 * 784]);
    assert_eq!(s.train_labels[..], m.train_labels[..5000]);
    assert_eq!(s.test_images.data[..], m.test_images.data[..1000 * 784]);
    assert_eq!(s.test_labels[..], m.test_labels[..1000]);
    let size: u64 = std::fs::read_dir(Mnist::embedded_dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size < 2_000_000, "embedded subset is {size} bytes");
}

#[test]
fn loads_from_the_mnist_folder_itself() {
    let m = Mnist::load(data_dir().join("mnist")).unwrap();
    assert_eq!(m.test_images.shape(), (10000, 784));
    assert_eq!(m.test_labels[..], full().test_labels[..]);
}
