//! Throughput measurements shared by `ebmkit bench` and `benches/`.
//! Timings are medians over repeated batches; the device is synchronised
//! before the clock is read, so queued GPU work is counted.

use crate::backend::{Backend, Matrix};
use crate::error::Result;
use crate::host::HostMat;
use crate::rng::RngStream;
use std::time::Instant;

/// A random matrix in [-1, 1): never time on zeros, which hide unwritten
/// outputs and can run faster than real data.
pub fn random_host(rows: usize, cols: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 0xbe).next_draw();
    let mut data = vec![0.0; rows * cols];
    d.fill_uniform(&mut data);
    data.iter_mut().for_each(|x| *x = 2.0 * *x - 1.0);
    HostMat { rows, cols, data }
}

/// Median seconds per `C = A B` of shape (m, k, n), with `reps` products per
/// timed batch and `batches` batches after a warm-up batch.
pub fn time_gemm<B: Backend>(
    be: &B,
    (m, k, n): (usize, usize, usize),
    reps: usize,
    batches: usize,
) -> Result<f64> {
    let a = be.upload(&random_host(m, k, 1))?;
    let b = be.upload(&random_host(k, n, 2))?;
    let mut c = be.zeros(m, n)?;
    let mut run = |r: usize| -> Result<f64> {
        let t = Instant::now();
        for _ in 0..r {
            be.gemm(1.0, a.n(), b.n(), 0.0, &mut c)?;
        }
        be.sync()?;
        Ok(t.elapsed().as_secs_f64() / r as f64)
    };
    run(reps.clamp(1, 3))?;
    let mut times = (0..batches.max(1))
        .map(|_| run(reps.max(1)))
        .collect::<Result<Vec<_>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// GFLOP/s of a product of shape (m, k, n) taking `secs`.
pub fn gflops((m, k, n): (usize, usize, usize), secs: f64) -> f64 {
    2.0 * m as f64 * k as f64 * n as f64 / secs / 1e9
}

/// Repetitions that make one timed batch last roughly `target` seconds on a
/// device doing about `guess_gflops`.
pub fn reps_for((m, k, n): (usize, usize, usize), guess_gflops: f64, target: f64) -> usize {
    let flop = 2.0 * m as f64 * k as f64 * n as f64;
    ((target * guess_gflops * 1e9 / flop) as usize).clamp(1, 10_000)
}
