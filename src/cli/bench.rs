//! `ebmkit bench gemm`: GFLOP/s of fp32 products per backend and shape.

use clap::Subcommand;
use ebmkit::backend::{cpu::Cpu, gpu::Gpu, Backend, Choice};
use ebmkit::{bench, Error};

#[derive(Subcommand)]
pub enum BenchWhat {
    /// GFLOP/s of fp32 C = A B per backend and shape.
    Gemm {
        /// Shapes as MxKxN, comma separated.
        #[arg(long, default_value = "100x784x500,784x100x500,1000x784x500")]
        shapes: String,
        /// Timed batches (the median is reported).
        #[arg(long, default_value_t = 7)]
        batches: usize,
    },
}

fn parse_shapes(s: &str) -> ebmkit::Result<Vec<(usize, usize, usize)>> {
    s.split(',')
        .map(|t| {
            let v: Vec<&str> = t.trim().split('x').collect();
            let p = |x: &str| {
                x.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Error::value(
                        "--shapes",
                        format!("shape '{t}': '{x}' is not a positive integer"),
                    )
                })
            };
            match v.as_slice() {
                [m, k, n] => Ok((p(m)?, p(k)?, p(n)?)),
                _ => Err(Error::value(
                    "--shapes",
                    format!("shape '{t}' is not of the form MxKxN"),
                )),
            }
        })
        .collect()
}

fn bench_gemm<B: Backend>(
    be: &B,
    shapes: &[(usize, usize, usize)],
    batches: usize,
    guess: f64,
) -> ebmkit::Result<()> {
    for &s in shapes {
        let reps = bench::reps_for(s, guess, 0.05);
        let secs = bench::time_gemm(be, s, reps, batches)?;
        println!(
            "{:<40} {:>5}x{:<5}x{:>5}  {:>10.1} GFLOP/s  ({:.3} ms)",
            be.name(),
            s.0,
            s.1,
            s.2,
            bench::gflops(s, secs),
            secs * 1e3
        );
    }
    Ok(())
}

pub fn run(what: &BenchWhat, backend: Option<Choice>) -> ebmkit::Result<()> {
    let BenchWhat::Gemm { shapes, batches } = what;
    let shapes = parse_shapes(shapes)?;
    let want_cpu = matches!(backend, None | Some(Choice::Auto) | Some(Choice::Cpu));
    let want_gpu = matches!(backend, None | Some(Choice::Auto) | Some(Choice::Gpu));
    if want_cpu {
        bench_gemm(&Cpu::new(), &shapes, *batches, 200.0)?;
    }
    if want_gpu {
        match Gpu::new() {
            Ok(g) => bench_gemm(&g, &shapes, *batches, 5000.0)?,
            Err(e) if backend != Some(Choice::Gpu) => println!("gpu: skipped ({e})"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
