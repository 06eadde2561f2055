//! The `ebmkit` command line: a thin wrapper over the library.

use clap::{Parser, Subcommand};
use ebmkit::backend::{cpu::Cpu, gpu::Gpu, AnyBackend, Backend, Choice};
use ebmkit::bench;
use std::path::PathBuf;
use std::process::ExitCode;

use ebmkit::train::cli as rbm_cli;

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
    /// Train an RBM from a recipe (models/*.toml); writes the checkpoint,
    /// curves, samples and filters to the output folder.
    Train {
        /// The recipe (TOML).
        recipe: PathBuf,
        /// Data folder for `source = "mnist"` (default: $EBMKIT_DATA, else ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output folder (default: out/<recipe name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Train until this many epochs are completed (default: the recipe's).
        #[arg(long)]
        epochs: Option<usize>,
        /// Resume from a checkpoint written by `train`.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// No progress bar (one line per epoch instead).
        #[arg(long)]
        quiet: bool,
        /// Skip the closing estimate of the test log-likelihood (AIS and
        /// reverse AIS, or exact for small models).
        #[arg(long)]
        no_eval: bool,
    },
    /// Draw samples from a trained RBM by block Gibbs sampling, as a PNG grid.
    Sample {
        /// A checkpoint written by `train`.
        ckpt: PathBuf,
        /// Gibbs sweeps.
        #[arg(long, default_value_t = 1000)]
        steps: usize,
        /// Number of chains.
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Start the chains at (binarised) test digits instead of random bits.
        #[arg(long)]
        from_data: bool,
        /// Data folder when --from-data needs the full MNIST.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also draw every s-th sweep: one row of the grid per chain.
        #[arg(long)]
        chain_every: Option<usize>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Pictures of a trained model.
    Viz {
        #[command(subcommand)]
        what: VizWhat,
    },
    /// Log-likelihood of a binary RBM: exact log Z for small models, else
    /// AIS (a stochastic lower bound) and reverse AIS (an upper bound).
    Eval {
        ckpt: PathBuf,
        /// Data folder for the full MNIST (when the checkpoint's recipe uses it).
        #[arg(long)]
        data: Option<PathBuf>,
        /// AIS runs.
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// AIS intermediate distributions (the standard 14,500 schedule if omitted).
        #[arg(long)]
        betas: Option<usize>,
        #[arg(long, default_value_t = ebmkit::train::cli::EVAL_SEED)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum VizWhat {
    /// Receptive fields (columns of W), each normalised to its own range.
    Filters {
        ckpt: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// How many filters (the first n hidden units).
        #[arg(long, default_value_t = 100)]
        n: usize,
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
    let backend = cli.backend;
    let any = || AnyBackend::select(backend).map_err(|e| e.to_string());
    match cli.cmd {
        Cmd::Train {
            recipe,
            data,
            out,
            epochs,
            resume,
            quiet,
            no_eval,
        } => {
            let args = rbm_cli::TrainArgs {
                recipe,
                data,
                out,
                epochs,
                resume,
                quiet,
                no_eval,
            };
            ebmkit::with_backend!(any()?, |be| rbm_cli::train(&be, &args))
        }
        Cmd::Sample {
            ckpt,
            steps,
            n,
            from_data,
            data,
            chain_every,
            seed,
            out,
        } => {
            let args = rbm_cli::SampleArgs {
                ckpt,
                steps,
                n,
                from_data,
                data,
                chain_every,
                seed,
                out,
            };
            ebmkit::with_backend!(any()?, |be| rbm_cli::sample(&be, &args))
        }
        Cmd::Viz {
            what: VizWhat::Filters { ckpt, out, n },
        } => rbm_cli::filters(&ckpt, &out, n),
        Cmd::Eval {
            ckpt,
            data,
            runs,
            betas,
            seed,
        } => {
            let args = rbm_cli::EvalArgs {
                ckpt,
                data,
                runs,
                betas,
                seed,
            };
            ebmkit::with_backend!(any()?, |be| rbm_cli::eval(&be, &args))
        }
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
