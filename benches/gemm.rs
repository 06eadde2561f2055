//! CPU GEMM against numpy/OpenBLAS, side by side in one run:
//! `cargo bench --bench gemm` (needs python3 with numpy; the peer is skipped
//! with a note if it is missing). Also times the GPU backend when present.

use ebmkit::backend::{cpu::Cpu, gpu::Gpu, Backend};
use ebmkit::bench::{gflops, reps_for, time_gemm};
use std::process::Command;

const SHAPES: [(usize, usize, usize); 3] = [(100, 784, 500), (784, 100, 500), (1000, 784, 500)];

fn numpy(shapes: &[(usize, usize, usize)]) -> Option<Vec<f64>> {
    let args: Vec<String> = shapes
        .iter()
        .map(|(m, k, n)| format!("{m}x{k}x{n}"))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/numpy_gemm.py");
    // Old-processor overrides of OpenBLAS slow a current numpy; benchmark it
    // as a user would run it.
    let out = Command::new("python3")
        .arg(script)
        .args(&args)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "numpy peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let i = l.find("\"gflops\": ")? + 10;
            l[i..].trim_end_matches('}').trim().parse().ok()
        })
        .collect()
}

fn main() {
    let cpu = Cpu::new();
    // Interleave: ours, numpy, ours again, so drift on a shared machine shows.
    let ours1: Vec<f64> = SHAPES
        .iter()
        .map(|&s| {
            gflops(
                s,
                time_gemm(&cpu, s, reps_for(s, 200.0, 0.05), 7).expect("cpu gemm"),
            )
        })
        .collect();
    let peer = numpy(&SHAPES);
    let ours2: Vec<f64> = SHAPES
        .iter()
        .map(|&s| {
            gflops(
                s,
                time_gemm(&cpu, s, reps_for(s, 200.0, 0.05), 7).expect("cpu gemm"),
            )
        })
        .collect();
    println!(
        "{:<16} {:>12} {:>12} {:>8}",
        "shape MxKxN", "ebmkit cpu", "numpy", "ratio"
    );
    for (i, s) in SHAPES.iter().enumerate() {
        // The slower of our two passes: a conservative ratio.
        let ours = ours1[i].min(ours2[i]);
        let np = peer.as_ref().map(|p| p[i]);
        println!(
            "{:<16} {:>9.1} GF {:>9} {:>8}",
            format!("{}x{}x{}", s.0, s.1, s.2),
            ours,
            np.map(|v| format!("{v:.1} GF"))
                .unwrap_or_else(|| "n/a".into()),
            np.map(|v| format!("{:.2}", ours / v))
                .unwrap_or_else(|| "n/a".into()),
        );
    }
    match Gpu::new() {
        // A software rasteriser would take minutes at 4096^3 and says nothing
        // about GPU speed.
        Ok(gpu) if gpu.is_software() => println!("gpu: skipped (software adapter {})", gpu.name()),
        Ok(gpu) => {
            for s in [(1024, 1024, 1024), (4096, 4096, 4096), (100, 784, 500)] {
                let secs = time_gemm(&gpu, s, reps_for(s, 10_000.0, 0.1), 7).expect("gpu gemm");
                println!(
                    "{}  {}x{}x{}: {:.1} GFLOP/s",
                    gpu.name(),
                    s.0,
                    s.1,
                    s.2,
                    gflops(s, secs)
                );
            }
        }
        Err(e) => println!("gpu: skipped ({e})"),
    }
}
