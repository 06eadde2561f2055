//! Samplers against the exact distribution of a tiny RBM (10 visible,
//! 8 hidden units, weights of moderate size): the empirical distribution of
//! v from long block-Gibbs runs and from parallel tempering must match p(v)
//! by enumeration of all 1024 states (KL < 0.01).

use ebmkit::backend::cpu::Cpu;
use ebmkit::models::rbm::{Rbm, RbmHost};
use ebmkit::sample::tempering::linear_betas;
use ebmkit::sample::{Chains, Tempering};
use ebmkit::units::UnitKind;
use ebmkit::{Backend, HostMat, RngStream};

const NV: usize = 10;
const NH: usize = 8;

fn tiny() -> RbmHost {
    let d = RngStream::new(77, 3).next_draw();
    RbmHost {
        w: HostMat::from_fn(NV, NH, |r, c| 1.0 * d.normal(r * NH + c)),
        b_v: HostMat::from_fn(1, NV, |_, c| 0.5 * d.normal(1000 + c)),
        b_h: HostMat::from_fn(1, NH, |_, c| 0.5 * d.normal(2000 + c)),
        visible: UnitKind::Bernoulli,
        hidden: UnitKind::Bernoulli,
        log_var_v: None,
    }
}

fn exact_p(h: &RbmHost) -> Vec<f64> {
    let lp: Vec<f64> = (0..1usize << NV)
        .map(|s| {
            let v: Vec<f32> = (0..NV).map(|i| ((s >> i) & 1) as f32).collect();
            -h.free_energy_host(&v)
        })
        .collect();
    let m = lp.iter().cloned().fold(f64::MIN, f64::max);
    let z: f64 = lp.iter().map(|x| (x - m).exp()).sum();
    lp.iter().map(|x| (x - m).exp() / z).collect()
}

fn count(v: &HostMat, rows: usize, hist: &mut [u64]) {
    for r in 0..rows {
        let s = v
            .row(r)
            .iter()
            .enumerate()
            .fold(0usize, |s, (i, &x)| s | ((x > 0.5) as usize) << i);
        hist[s] += 1;
    }
}

/// KL(empirical || exact).
fn kl(hist: &[u64], p: &[f64]) -> f64 {
    let n: u64 = hist.iter().sum();
    hist.iter()
        .zip(p)
        .filter(|(&c, _)| c > 0)
        .map(|(&c, &q)| {
            let e = c as f64 / n as f64;
            e * (e / q).ln()
        })
        .sum()
}

fn random_start(be: &Cpu, n: usize, rng: &mut RngStream) -> HostMat {
    let mut v = be.zeros(n, NV).unwrap();
    be.bernoulli(&HostMat::from_fn(n, NV, |_, _| 0.5), &mut v, rng)
        .unwrap();
    v
}

#[test]
fn block_gibbs_matches_exact_distribution() {
    let be = Cpu::new();
    let h = tiny();
    let p = exact_p(&h);
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let n = 2000;
    let mut rng = RngStream::new(1, 0);
    let mut chains = Chains::new(&be, n, NV, NH).unwrap();
    let v0 = random_start(&be, n, &mut rng);
    chains.start_from(&be, &rbm, &v0, &mut rng).unwrap();
    chains.sweep(&be, &rbm, 200, &mut rng).unwrap();
    let mut hist = vec![0u64; 1 << NV];
    for _ in 0..400 {
        chains.sweep(&be, &rbm, 1, &mut rng).unwrap();
        count(&chains.v, n, &mut hist);
    }
    let k = kl(&hist, &p);
    eprintln!("block Gibbs: KL(empirical || exact) = {k:.5}");
    assert!(k < 0.01, "KL {k}");
}

#[test]
fn parallel_tempering_matches_exact_distribution_and_swaps() {
    let be = Cpu::new();
    let h = tiny();
    let p = exact_p(&h);
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let n = 1000;
    let mut rng = RngStream::new(2, 0);
    let mut pt = Tempering::new(&be, linear_betas(5, 0.0), n, NV, NH).unwrap();
    let v0 = random_start(&be, n, &mut rng);
    pt.start_from(&be, &rbm, &v0, &mut rng).unwrap();
    for _ in 0..100 {
        pt.step(&be, &rbm, &mut rng).unwrap();
    }
    let mut hist = vec![0u64; 1 << NV];
    let mut v = be.zeros(n, NV).unwrap();
    let mut ph = be.zeros(n, NH).unwrap();
    for _ in 0..800 {
        pt.step(&be, &rbm, &mut rng).unwrap();
        pt.cold(&be, &mut v, &mut ph).unwrap();
        count(&v, n, &mut hist);
    }
    let k = kl(&hist, &p);
    let rates = pt.swap_rates(&be).unwrap();
    eprintln!("tempering: KL = {k:.5}, swap rates {rates:?}");
    assert!(k < 0.01, "KL {k}");
    assert_eq!(rates.len(), 4);
    assert!(rates.iter().all(|&r| r > 0.05 && r <= 1.0), "{rates:?}");
}

#[test]
fn tempering_hot_chains_follow_their_own_temperature() {
    // The β = 0 block of a binary RBM is uniform over v: mean 0.5 per unit.
    let be = Cpu::new();
    let h = tiny();
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let n = 2000;
    let mut rng = RngStream::new(3, 0);
    let mut pt = Tempering::new(&be, vec![1.0, 0.0], n, NV, NH).unwrap();
    let v0 = random_start(&be, n, &mut rng);
    pt.start_from(&be, &rbm, &v0, &mut rng).unwrap();
    // Sweeps only: no swaps, so each block samples its own p_β.
    for _ in 0..20 {
        pt.sweep(&be, &rbm, &mut rng).unwrap();
    }
    let mean: f64 = pt.v.data[n * NV..].iter().map(|&x| x as f64).sum::<f64>() / (n * NV) as f64;
    assert!((mean - 0.5).abs() < 0.02, "β = 0 mean {mean}");
}

#[test]
fn tempering_rejects_bad_temperatures() {
    let be = Cpu::new();
    assert!(Tempering::new(&be, vec![0.9, 0.5], 4, NV, NH).is_err());
    assert!(Tempering::new(&be, vec![1.0, 0.5, 0.7], 4, NV, NH).is_err());
    assert!(Tempering::new(&be, vec![1.0, 0.5], 0, NV, NH).is_err());
}

#[test]
fn softmax_visible_block_gibbs_matches_exact_distribution() {
    // 3 one-hot groups of 3 visible units (27 states), 2 softmax groups of
    // 3 hidden units: Gibbs with both layers categorical against p(v).
    let be = Cpu::new();
    let d = RngStream::new(78, 3).next_draw();
    let h = RbmHost {
        w: HostMat::from_fn(9, 6, |r, c| 1.2 * d.normal(r * 6 + c)),
        b_v: HostMat::from_fn(1, 9, |_, c| 0.5 * d.normal(1000 + c)),
        b_h: HostMat::from_fn(1, 6, |_, c| 0.5 * d.normal(2000 + c)),
        visible: UnitKind::Softmax { group: 3 },
        log_var_v: None,
        hidden: UnitKind::Softmax { group: 3 },
    };
    let states: Vec<Vec<f32>> = (0..27)
        .map(|s| {
            (0..9)
                .map(|i| ((s / 3usize.pow(i as u32 / 3)) % 3 == i % 3) as u8 as f32)
                .collect()
        })
        .collect();
    let lp: Vec<f64> = states.iter().map(|v| -h.free_energy_host(v)).collect();
    let m = lp.iter().cloned().fold(f64::MIN, f64::max);
    let z: f64 = lp.iter().map(|x| (x - m).exp()).sum();
    let p: Vec<f64> = lp.iter().map(|x| (x - m).exp() / z).collect();
    let rbm = Rbm::from_host(&be, &h).unwrap();
    let n = 1000;
    let mut rng = RngStream::new(4, 0);
    let mut chains = Chains::new(&be, n, 9, 6).unwrap();
    let v0 = HostMat::from_fn(n, 9, |r, c| (c % 3 == r % 3) as u8 as f32);
    chains.start_from(&be, &rbm, &v0, &mut rng).unwrap();
    chains.sweep(&be, &rbm, 50, &mut rng).unwrap();
    let mut hist = vec![0u64; 27];
    for _ in 0..300 {
        chains.sweep(&be, &rbm, 1, &mut rng).unwrap();
        for r in 0..n {
            let v = chains.v.row(r);
            let mut s = 0;
            for g in 0..3 {
                let k = (0..3)
                    .find(|&k| v[g * 3 + k] == 1.0)
                    .expect("one-hot group");
                assert_eq!(v[g * 3..g * 3 + 3].iter().sum::<f32>(), 1.0);
                s += k * 3usize.pow(g as u32);
            }
            hist[s] += 1;
        }
    }
    let k = kl(&hist, &p);
    eprintln!("softmax block Gibbs: KL = {k:.5}");
    assert!(k < 0.01, "KL {k}");
}
