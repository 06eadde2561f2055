//! Timing of one PCD-1 epoch on MNIST-sized shapes (784 x 500, batch 100,
//! 600 batches) on the CPU backend, with a per-stage breakdown. Ignored by
//! default (it measures, it does not check): run with
//! `cargo test --release --test rbm_speed -- --ignored --nocapture`.

use ebmkit::backend::cpu::Cpu;
use ebmkit::{Backend, HostMat, RngStream, Trans};
use std::time::Instant;

#[test]
#[ignore]
fn pcd1_epoch_breakdown() {
    let be = Cpu::new();
    let (nv, nh, bs, nb) = (784, 500, 100, 600);
    let mut rng = RngStream::new(1, 2);
    let data = be
        .upload(&HostMat::from_fn(6000, nv, |r, c| {
            ((r * 31 + c * 7) % 13) as f32 / 13.0
        }))
        .unwrap();
    let w = be
        .upload(&HostMat::from_fn(nv, nh, |r, c| {
            ((r + c) % 7) as f32 * 0.001
        }))
        .unwrap();
    let b_v = be.zeros(1, nv).unwrap();
    let b_h = be.zeros(1, nh).unwrap();
    let mut raw = be.zeros(bs, nv).unwrap();
    let mut v = be.zeros(bs, nv).unwrap();
    let mut ph = be.zeros(bs, nh).unwrap();
    let mut h = be.zeros(bs, nh).unwrap();
    let mut pv = be.zeros(bs, nv).unwrap();
    let mut vk = be.zeros(bs, nv).unwrap();
    let mut phk = be.zeros(bs, nh).unwrap();
    let mut dw = be.zeros(nv, nh).unwrap();
    let idx: Vec<u32> = (0..bs as u32).map(|i| i * 7).collect();
    let mut t = [0f64; 6];
    let total = Instant::now();
    for _ in 0..nb {
        let s = Instant::now();
        be.gather_rows(&data, &idx, &mut raw).unwrap();
        be.bernoulli(&raw, &mut v, &mut rng).unwrap();
        t[0] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        be.sigmoid_affine(
            1.0,
            &v,
            Trans::N,
            &w,
            Trans::N,
            &b_h,
            &mut ph,
            None,
            &mut rng,
        )
        .unwrap();
        t[1] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        be.sigmoid_affine(
            1.0,
            &h,
            Trans::N,
            &w,
            Trans::T,
            &b_v,
            &mut pv,
            Some(&mut vk),
            &mut rng,
        )
        .unwrap();
        t[2] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        be.sigmoid_affine(
            1.0,
            &vk,
            Trans::N,
            &w,
            Trans::N,
            &b_h,
            &mut phk,
            Some(&mut h),
            &mut rng,
        )
        .unwrap();
        t[3] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        be.gemm(0.1, &v, Trans::T, &ph, Trans::N, 0.5, &mut dw)
            .unwrap();
        be.gemm(-0.1, &vk, Trans::T, &phk, Trans::N, 1.0, &mut dw)
            .unwrap();
        t[4] += s.elapsed().as_secs_f64();
        let s = Instant::now();
        be.axpby(1.0, &dw, 1.0, &mut raw.clone()).ok();
        t[5] += s.elapsed().as_secs_f64();
    }
    eprintln!(
        "total {:.3} s: batch+binarise {:.3}, pos {:.3}, v|h+sample {:.3}, h|v+sample {:.3}, grad gemms {:.3}",
        total.elapsed().as_secs_f64(),
        t[0],
        t[1],
        t[2],
        t[3],
        t[4]
    );
}
