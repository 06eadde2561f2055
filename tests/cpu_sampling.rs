//! Statistical checks of the CPU backend's samplers against their exact
//! distributions (the GPU twins are checked in tests/gpu_vs_cpu.rs, and equal
//! to these bit for bit where the arithmetic allows).

use ebmkit::backend::{cpu::Cpu, Backend};
use ebmkit::{HostMat, RngStream};

const N: usize = 200_000;

fn normal_cdf(x: f64) -> f64 {
    // Abramowitz & Stegun 7.1.26 on erf: |error| < 1.5e-7, far below the KS
    // critical value used here (1.63 / sqrt(N) ~ 3.6e-3).
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-z * z).exp();
    let erf = if x >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

#[test]
fn gaussian_mean_variance_and_ks() {
    let cpu = Cpu::new();
    let mean = HostMat::from_fn(400, N / 400, |_, _| 1.5);
    let mut out = cpu.zeros(400, N / 400).unwrap();
    let mut rng = RngStream::new(2024, 7);
    cpu.gaussian(&mean, 2.0, &mut out, &mut rng).unwrap();
    let z: Vec<f64> = out.data.iter().map(|&x| (x as f64 - 1.5) / 2.0).collect();
    let m = z.iter().sum::<f64>() / N as f64;
    let v = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (N - 1) as f64;
    // Standard errors: 1/sqrt(N) ~ 2.2e-3 for the mean, sqrt(2/N) ~ 3.2e-3 for the variance.
    assert!(m.abs() < 5.0 * 2.3e-3, "mean {m}");
    assert!((v - 1.0).abs() < 5.0 * 3.2e-3, "variance {v}");
    let mut s = z.clone();
    s.sort_by(f64::total_cmp);
    let d = s
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = normal_cdf(x);
            (f - i as f64 / N as f64)
                .abs()
                .max(((i + 1) as f64 / N as f64 - f).abs())
        })
        .fold(0.0, f64::max);
    // KS critical value at the 1% level: 1.63 / sqrt(N).
    assert!(d < 1.63 / (N as f64).sqrt(), "KS statistic {d}");
}

#[test]
fn bernoulli_frequencies_chi_square() {
    let cpu = Cpu::new();
    // Ten probability levels, N/10 draws each.
    let levels = [0.0f32, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.95, 1.0];
    let p = HostMat::from_fn(10, N / 10, |r, _| levels[r]);
    let mut out = cpu.zeros(10, N / 10).unwrap();
    let mut rng = RngStream::new(99, 0);
    cpu.bernoulli(&p, &mut out, &mut rng).unwrap();
    let n = (N / 10) as f64;
    let mut chi2 = 0.0;
    let mut dof = 0;
    for (r, &q) in levels.iter().enumerate() {
        let ones: f64 = out.row(r).iter().map(|&x| x as f64).sum();
        assert!(out.row(r).iter().all(|&x| x == 0.0 || x == 1.0));
        let q = q as f64;
        if q == 0.0 || q == 1.0 {
            assert_eq!(ones, q * n, "p = {q} must be deterministic");
            continue;
        }
        let e1 = q * n;
        let e0 = (1.0 - q) * n;
        chi2 += (ones - e1).powi(2) / e1 + ((n - ones) - e0).powi(2) / e0;
        dof += 1;
    }
    // 8 degrees of freedom: the 0.1% critical value is 26.1.
    assert_eq!(dof, 8);
    assert!(chi2 < 26.1, "chi-square {chi2}");
}

#[test]
fn uniform_words_chi_square_over_256_bins() {
    let mut rng = RngStream::new(5, 11);
    let d = rng.next_draw();
    let mut bins = [0f64; 256];
    for i in 0..N {
        bins[(d.uniform(i) * 256.0) as usize] += 1.0;
    }
    let e = N as f64 / 256.0;
    let chi2: f64 = bins.iter().map(|b| (b - e).powi(2) / e).sum();
    // 255 degrees of freedom: the 0.1% critical value is about 330.5.
    assert!(chi2 < 330.5, "chi-square {chi2}");
}

#[test]
fn same_seed_same_samples_and_streams_are_independent() {
    let cpu = Cpu::new();
    let p = HostMat::from_fn(50, 50, |_, _| 0.5);
    let run = |seed, stream| {
        let mut out = cpu.zeros(50, 50).unwrap();
        cpu.bernoulli(&p, &mut out, &mut RngStream::new(seed, stream))
            .unwrap();
        out
    };
    assert_eq!(run(1, 0), run(1, 0));
    let a = run(1, 0);
    let b = run(1, 1);
    let agree = a.data.iter().zip(&b.data).filter(|(x, y)| x == y).count();
    // Independent fair coins agree on about half of 2,500 elements (sd 25).
    assert!((1100..1400).contains(&agree), "{agree} of 2500 agree");
}
