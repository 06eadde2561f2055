//! The `ebmkit` command line: a thin wrapper over the library.

use clap::{Parser, Subcommand};
use ebmkit::backend::{cpu::Cpu, gpu::Gpu, Backend, Choice};
use ebmkit::bench;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ebmkit",
    version,
    about = "Energy-based generative models on CPU and GPU"
)]
struct Cli {
    /// Backend: auto (best GPU, else CPU), cpu or gpu. Default: $EBMKIT_BACKEND, else auto.
    #[arg(long, global = true, value_enum)]
    backend: Option<Choice>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Version, backends and the GPU adapter found.
    Info,
    /// Throughput measurements.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
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

fn parse_shapes(s: &str) -> Result<Vec<(usize, usize, usize)>, String> {
    s.split(',')
        .map(|t| {
            let v: Vec<&str> = t.trim().split('x').collect();
            let p = |x: &str| {
                x.parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("shape '{t}': '{x}' is not a positive integer"))
            };
            match v.as_slice() {
                [m, k, n] => Ok((p(m)?, p(k)?, p(n)?)),
                _ => Err(format!("shape '{t}' is not of the form MxKxN")),
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

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Info => {
            println!("ebmkit {}", env!("CARGO_PKG_VERSION"));
            println!(
                "backends: cpu (rayon, {} threads), gpu (wgpu)",
                rayon::current_num_threads()
            );
            match Gpu::new() {
                Ok(g) => println!("{}", g.info()),
                Err(e) => println!("gpu: none ({e}); the CPU backend will be used"),
            }
            Ok(())
        }
        Cmd::Bench {
            what: BenchWhat::Gemm { shapes, batches },
        } => {
            let shapes = parse_shapes(&shapes)?;
            let want_cpu = matches!(cli.backend, None | Some(Choice::Auto) | Some(Choice::Cpu));
            let want_gpu = matches!(cli.backend, None | Some(Choice::Auto) | Some(Choice::Gpu));
            if want_cpu {
                bench_gemm(&Cpu::new(), &shapes, batches, 200.0).map_err(|e| e.to_string())?;
            }
            if want_gpu {
                match Gpu::new() {
                    Ok(g) => bench_gemm(&g, &shapes, batches, 5000.0).map_err(|e| e.to_string())?,
                    Err(e) if cli.backend != Some(Choice::Gpu) => println!("gpu: skipped ({e})"),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ebmkit: error: {e}");
            ExitCode::FAILURE
        }
    }
}
