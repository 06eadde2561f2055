//! Grey image loading, random patches and PCA / ZCA whitening on the shared
//! photographs.

use ebmkit::data::image::LUMA_601;
use ebmkit::data::{
    data_dir, extract_patches, load_grey, remove_row_means, PatchSpec, WhitenConfig, Whitener,
};
use ebmkit::{Error, HostMat, RngStream};

const NAMES: [&str; 10] = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "grass.png",
    "gravel.png",
    "moon.png",
    "motorcycle_left.png",
    "rocket.jpg",
];

fn images() -> Vec<HostMat> {
    NAMES
        .iter()
        .map(|n| load_grey(data_dir().join("images").join(n)).unwrap())
        .collect()
}

/// Covariance (n - 1) of the rows, in f64.
fn covariance(x: &HostMat) -> Vec<Vec<f64>> {
    let (n, d) = x.shape();
    let mut mean = vec![0f64; d];
    for r in 0..n {
        for (m, &v) in mean.iter_mut().zip(x.row(r)) {
            *m += v as f64 / n as f64;
        }
    }
    let mut c = vec![vec![0f64; d]; d];
    let mut z = vec![0f64; d];
    for r in 0..n {
        for (k, (zk, &v)) in z.iter_mut().zip(x.row(r)).enumerate() {
            *zk = v as f64 - mean[k];
        }
        for (ci, zi) in c.iter_mut().zip(&z) {
            for (cij, zj) in ci.iter_mut().zip(&z) {
                *cij += zi * zj;
            }
        }
    }
    let scale = 1.0 / (n - 1) as f64;
    c.iter_mut().flatten().for_each(|v| *v *= scale);
    c
}

fn max_dev_from_identity(c: &[Vec<f64>]) -> f64 {
    let mut m = 0f64;
    for (i, row) in c.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            m = m.max((v - if i == j { 1.0 } else { 0.0 }).abs());
        }
    }
    m
}

#[test]
fn loads_every_image_as_grey_in_unit_range() {
    for (n, m) in NAMES.iter().zip(images()) {
        assert!(m.rows >= 100 && m.cols >= 100, "{n}: {:?}", m.shape());
        assert!(m.data.iter().all(|v| (0.0..=1.0).contains(v)), "{n}");
        let mean = m.data.iter().sum::<f32>() / m.data.len() as f32;
        assert!(mean > 0.05 && mean < 0.95, "{n}: mean {mean}");
    }
}

#[test]
fn colour_uses_bt601_luma_and_grey_is_unchanged() {
    let p = data_dir().join("images/astronaut.png");
    let g = load_grey(&p).unwrap();
    let rgb = image::open(&p).unwrap().to_rgb8();
    assert_eq!(
        (g.rows, g.cols),
        (rgb.height() as usize, rgb.width() as usize)
    );
    for (x, y) in [(0, 0), (100, 200), (511, 511), (300, 50)] {
        let px = rgb.get_pixel(x, y);
        let want: f32 = (0..3).map(|k| LUMA_601[k] * px[k] as f32 / 255.0).sum();
        assert!((g.get(y as usize, x as usize) - want).abs() < 1e-5);
    }
    let p = data_dir().join("images/camera.png");
    let g = load_grey(&p).unwrap();
    let l = image::open(&p).unwrap().to_luma8();
    for (x, y) in [(0, 0), (17, 300), (400, 123)] {
        assert_eq!(
            g.get(y as usize, x as usize),
            l.get_pixel(x, y)[0] as f32 / 255.0
        );
    }
}

#[test]
fn bad_images_are_typed_errors() {
    let npy = data_dir().join("images/lfw_subset.npy");
    match load_grey(&npy) {
        Err(e @ Error::Format { .. }) => assert!(e.to_string().contains("lfw_subset.npy")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load_grey(data_dir().join("images/none.png")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn patches_are_windows_of_the_images_and_seeded() {
    // Pixel values encode (image, y, x), so each patch says where it came from.
    let imgs: Vec<HostMat> = (0..3)
        .map(|k| HostMat::from_fn(20 + 5 * k, 30, |y, x| (k * 10000 + y * 100 + x) as f32))
        .collect();
    let spec = PatchSpec {
        count: 500,
        size: 6,
        remove_mean: false,
    };
    let a = extract_patches(&imgs, &spec, &mut RngStream::new(5, 0)).unwrap();
    assert_eq!(a.shape(), (500, 36));
    let mut seen = [0usize; 3];
    for r in 0..a.rows {
        let p = a.row(r);
        let v0 = p[0] as usize;
        let (k, y0, x0) = (v0 / 10000, v0 % 10000 / 100, v0 % 100);
        seen[k] += 1;
        assert!(y0 + 6 <= imgs[k].rows && x0 + 6 <= 30);
        for dy in 0..6 {
            for dx in 0..6 {
                assert_eq!(p[dy * 6 + dx], imgs[k].get(y0 + dy, x0 + dx));
            }
        }
    }
    assert!(seen.iter().all(|&s| s > 100), "{seen:?}");
    assert_eq!(
        extract_patches(&imgs, &spec, &mut RngStream::new(5, 0)).unwrap(),
        a
    );
    assert_ne!(
        extract_patches(&imgs, &spec, &mut RngStream::new(6, 0)).unwrap(),
        a
    );
    // Mean removal.
    let spec_m = PatchSpec {
        remove_mean: true,
        ..spec
    };
    let m = extract_patches(&imgs, &spec_m, &mut RngStream::new(5, 0)).unwrap();
    let mut manual = a.clone();
    remove_row_means(&mut manual);
    assert_eq!(m, manual);
    for r in 0..m.rows {
        assert!(m.row(r).iter().sum::<f32>().abs() < 1e-2);
    }
    // Patches too big for every image, and size 0.
    let big = PatchSpec { size: 31, ..spec };
    assert!(matches!(
        extract_patches(&imgs, &big, &mut RngStream::new(0, 0)),
        Err(Error::Value { .. })
    ));
    let zero = PatchSpec { size: 0, ..spec };
    assert!(extract_patches(&imgs, &zero, &mut RngStream::new(0, 0)).is_err());
}

fn natural_patches(count: usize, remove_mean: bool) -> HostMat {
    let spec = PatchSpec {
        count,
        size: 8,
        remove_mean,
    };
    extract_patches(&images(), &spec, &mut RngStream::new(2024, 0)).unwrap()
}

#[test]
fn zca_whitened_patches_have_identity_covariance() {
    let x = natural_patches(20_000, false);
    // ε well below the smallest eigenvalue, so λ/(λ+ε) ≈ 1 everywhere.
    let w = Whitener::fit(&x, &WhitenConfig::zca(1e-9)).unwrap();
    let ev = w.eigenvalues();
    assert_eq!(ev.len(), 64);
    assert!(ev.windows(2).all(|p| p[0] >= p[1]));
    assert!(*ev.last().unwrap() > 1e-7, "{:e}", ev.last().unwrap());
    let y = w.transform(&x).unwrap();
    assert_eq!(y.shape(), (20_000, 64));
    let dev = max_dev_from_identity(&covariance(&y));
    assert!(dev < 1e-3, "ZCA covariance deviates by {dev}");
    // ZCA's matrix is symmetric, and the inverse restores the data.
    let m = w.matrix();
    for i in 0..64 {
        for j in 0..64 {
            let (a, b) = (m.get(i, j), m.get(j, i));
            assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "W[{i},{j}]");
        }
    }
    let back = w.inverse_transform(&y).unwrap();
    assert!(back.max_abs_diff(&x).unwrap() < 1e-4);
    // With a real regulariser the low-variance directions are damped, not
    // amplified: variance λ/(λ+ε) < 1.
    let w = Whitener::fit(&x, &WhitenConfig::zca(1e-3)).unwrap();
    let c = covariance(&w.transform(&x).unwrap());
    assert!((0..64).all(|i| c[i][i] < 1.0));
}

#[test]
fn pca_keeps_the_top_components() {
    let x = natural_patches(10_000, true);
    let w = Whitener::fit(&x, &WhitenConfig::pca(Some(20), 1e-9)).unwrap();
    assert_eq!((w.input_dim(), w.output_dim()), (64, 20));
    let y = w.transform(&x).unwrap();
    assert_eq!(y.shape(), (10_000, 20));
    assert!(max_dev_from_identity(&covariance(&y)) < 1e-3);
    // Reconstruction from 20 of 64 components keeps most of the variance.
    let r = w.inverse_transform(&y).unwrap();
    let resid: f64 = r
        .data
        .iter()
        .zip(&x.data)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let mean = w.mean();
    let total: f64 = (0..x.rows)
        .flat_map(|i| {
            x.row(i)
                .iter()
                .zip(mean)
                .map(|(v, m)| ((v - m) as f64).powi(2))
        })
        .sum();
    let kept: f64 = w.eigenvalues()[..20].iter().sum::<f64>() / w.eigenvalues().iter().sum::<f64>();
    assert!(kept > 0.9, "{kept}");
    let explained: f64 = 1.0 - resid / total;
    assert!((explained - kept).abs() < 1e-3, "{explained} vs {kept}");
    // Full PCA inverts exactly.
    let w = Whitener::fit(&x, &WhitenConfig::pca(None, 1e-6)).unwrap();
    let back = w.inverse_transform(&w.transform(&x).unwrap()).unwrap();
    assert!(back.max_abs_diff(&x).unwrap() < 1e-4);
}

#[test]
fn whitening_rejects_bad_input() {
    let x = HostMat::from_fn(50, 4, |r, c| ((r * 7 + c * 3) % 11) as f32);
    assert!(Whitener::fit(&HostMat::zeros(1, 4), &WhitenConfig::zca(1e-3)).is_err());
    assert!(Whitener::fit(&x, &WhitenConfig::zca(-1.0)).is_err());
    assert!(Whitener::fit(&x, &WhitenConfig::pca(Some(5), 1e-3)).is_err());
    assert!(Whitener::fit(&x, &WhitenConfig::pca(Some(0), 1e-3)).is_err());
    // A constant column has zero variance: fine with ε > 0, an error without.
    let c = HostMat::from_fn(50, 3, |r, c| if c == 2 { 1.0 } else { (r % 7 + c) as f32 });
    assert!(Whitener::fit(&c, &WhitenConfig::zca(1e-3)).is_ok());
    assert!(matches!(
        Whitener::fit(&c, &WhitenConfig::zca(0.0)),
        Err(Error::Value { .. })
    ));
    let mut nan = x.clone();
    nan.data[9] = f32::NAN;
    assert!(Whitener::fit(&nan, &WhitenConfig::zca(1e-3)).is_err());
    let w = Whitener::fit(&x, &WhitenConfig::pca(Some(2), 1e-3)).unwrap();
    assert!(matches!(
        w.transform(&HostMat::zeros(3, 5)),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        w.inverse_transform(&HostMat::zeros(3, 4)),
        Err(Error::Shape { .. })
    ));
}
