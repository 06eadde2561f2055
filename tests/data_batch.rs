//! Binarisation statistics and seeded minibatches.

use std::collections::HashSet;

use ebmkit::data::batch::gather_rows;
use ebmkit::data::{binarize_stochastic, binarize_threshold, Minibatches};
use ebmkit::{HostMat, RngStream};

#[test]
fn stochastic_binarization_has_the_right_rates() {
    // Probabilities 0, 0.1, ..., 1 in equal numbers.
    let n = 200_000;
    let x = HostMat::from_fn(n / 11 + 1, 11, |_, c| c as f32 / 10.0);
    let mut rng = RngStream::new(7, 0);
    let b = binarize_stochastic(&x, &mut rng).unwrap();
    assert_eq!(b.shape(), x.shape());
    assert!(b.data.iter().all(|&v| v == 0.0 || v == 1.0));
    for c in 0..11 {
        let p = c as f64 / 10.0;
        let ones = (0..b.rows).filter(|&r| b.get(r, c) == 1.0).count() as f64;
        let rate = ones / b.rows as f64;
        let sd = (p * (1.0 - p) / b.rows as f64).sqrt();
        assert!((rate - p).abs() <= 5.0 * sd + 1e-12, "p {p}: rate {rate}");
    }
    // Reproducible from the same stream state, fresh on the next draw.
    let again = binarize_stochastic(&x, &mut RngStream::new(7, 0)).unwrap();
    assert_eq!(again, b);
    let next = binarize_stochastic(&x, &mut rng).unwrap();
    assert_ne!(next, b);
}

#[test]
fn stochastic_binarization_follows_the_shared_rule() {
    // Element i is 1 exactly when uniform i of the draw is below x_i.
    let x = HostMat::from_fn(37, 53, |r, c| ((r * 53 + c) % 97) as f32 / 96.0);
    let mut rng = RngStream::new(3, 5);
    let draw = RngStream::new(3, 5).next_draw();
    let b = binarize_stochastic(&x, &mut rng).unwrap();
    for (i, (&v, &p)) in b.data.iter().zip(&x.data).enumerate() {
        assert_eq!(
            v,
            if draw.uniform(i) < p { 1.0 } else { 0.0 },
            "element {i}"
        );
    }
    assert_eq!(rng.offset, 1);
}

#[test]
fn threshold_binarization() {
    let x = HostMat::new(1, 5, vec![0.0, 0.49, 0.5, 0.51, 1.0]).unwrap();
    assert_eq!(
        binarize_threshold(&x, 0.5).data,
        vec![0.0, 0.0, 0.0, 1.0, 1.0]
    );
    assert_eq!(
        binarize_threshold(&x, 0.0).data,
        vec![0.0, 1.0, 1.0, 1.0, 1.0]
    );
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

#[test]
fn every_epoch_covers_every_example_once() {
    let mb = Minibatches::new(1003, 64, 11).unwrap();
    assert_eq!(mb.batches_per_epoch(), 16);
    for e in 0..5 {
        let batches: Vec<Vec<usize>> = mb.epoch(e).collect();
        assert_eq!(batches.len(), 16);
        assert!(batches[..15].iter().all(|b| b.len() == 64));
        assert_eq!(batches[15].len(), 1003 - 15 * 64);
        let all: Vec<usize> = batches.concat();
        assert_eq!(sorted(all), (0..1003).collect::<Vec<_>>());
    }
    // Dropping the partial batch.
    let mb = mb.drop_last(true);
    assert_eq!(mb.batches_per_epoch(), 15);
    let it = mb.epoch(0);
    assert_eq!(it.len(), 15);
    let batches: Vec<Vec<usize>> = it.collect();
    assert!(batches.iter().all(|b| b.len() == 64));
    assert_eq!(batches.concat().iter().collect::<HashSet<_>>().len(), 960);
    // A batch larger than the data.
    let small = Minibatches::new(5, 8, 0).unwrap();
    assert_eq!(small.epoch(0).count(), 1);
    assert_eq!(small.clone().drop_last(true).epoch(0).count(), 0);
    assert!(Minibatches::new(5, 0, 0).is_err());
    assert_eq!(Minibatches::new(0, 4, 0).unwrap().epoch(0).count(), 0);
}

#[test]
fn deterministic_per_seed_and_epoch() {
    let a = Minibatches::new(500, 32, 42).unwrap();
    let b = Minibatches::new(500, 32, 42).unwrap();
    let c = Minibatches::new(500, 32, 43).unwrap();
    assert_eq!(a.permutation(3), b.permutation(3));
    assert_ne!(a.permutation(3), c.permutation(3));
    assert_ne!(a.permutation(3), a.permutation(4));
    assert_ne!(a.permutation(0), (0..500).collect::<Vec<_>>());
    // The stateful walk matches random access, so resuming at epoch e is exact.
    let mut walk = a.clone();
    for e in 0..3 {
        let x: Vec<_> = walk.next_epoch().collect();
        let y: Vec<_> = a.epoch(e).collect();
        assert_eq!(x, y);
    }
}

#[test]
fn shuffles_are_uniform() {
    // Where example 0 lands, over many epochs: each of 10 slots ~ 1/10.
    let mb = Minibatches::new(10, 10, 1).unwrap();
    let epochs = 20_000;
    let mut count = [0usize; 10];
    let mut pair = 0usize; // how often 1 comes right after 0
    for e in 0..epochs {
        let p = mb.permutation(e);
        count[p.iter().position(|&i| i == 0).unwrap()] += 1;
        pair += p.windows(2).filter(|w| w == &[0, 1]).count();
    }
    let expect = epochs as f64 / 10.0;
    let chi2: f64 = count
        .iter()
        .map(|&c| (c as f64 - expect).powi(2) / expect)
        .sum();
    assert!(chi2 < 30.0, "positions {count:?}, chi2 {chi2}");
    // P(1 right after 0) = 9 / 90.
    let rate = pair as f64 / epochs as f64;
    assert!((rate - 0.1).abs() < 0.012, "{rate}");
}

#[test]
fn batches_as_matrices() {
    let data = HostMat::from_fn(10, 3, |r, c| (r * 10 + c) as f32);
    let mb = Minibatches::new(10, 4, 9).unwrap();
    let idx: Vec<Vec<usize>> = mb.epoch(2).collect();
    let mats: Vec<HostMat> = mb.matrices(2, &data).unwrap().collect();
    assert_eq!(mats.len(), 3);
    for (m, i) in mats.iter().zip(&idx) {
        assert_eq!(m, &data.select_rows(i).unwrap());
        assert_eq!(m, &gather_rows(&data, i));
    }
    assert!(mb.matrices(0, &HostMat::zeros(9, 3)).is_err());
}
