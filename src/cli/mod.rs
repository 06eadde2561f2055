//! The subcommands of the `ebmkit` binary, each a thin wrapper over the
//! library: argument parsing, files and printing here, everything else in
//! `ebmkit::*`.

mod bench;
mod encode;
mod eval;
mod export;
mod info;
mod net;
mod sample;
mod stack;
mod train;
mod viz;

use clap::{Parser, Subcommand};
use ebmkit::backend::{AnyBackend, Choice};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ebmkit",
    version,
    about = "Energy-based generative models on CPU and GPU"
)]
struct Cli {
    /// Backend: auto (best GPU, else CPU), cpu or gpu. Default: $EBMKIT_BACKEND, else auto.
    #[arg(long, global = true)]
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
        what: bench::BenchWhat,
    },
    /// Train a model from a recipe (models/*.toml); writes the checkpoint,
    /// curves, samples and filters to the output folder.
    Train(train::TrainArgs),
    /// Fine-tune a net (`kind = "net"` recipe) whose hidden layers start
    /// from a pretrained checkpoint; writes the best validation epoch's net
    /// in PyTorch's layout and prints its test score.
    Finetune(net::FinetuneArgs),
    /// Draw samples as a PNG grid: block Gibbs for an RBM, the generalized-DAE
    /// chain (corrupt, then sample the reconstruction) for a denoising AE.
    Sample(sample::SampleArgs),
    /// Pictures of a trained model.
    Viz {
        #[command(subcommand)]
        what: viz::VizWhat,
    },
    /// Log-likelihood of an RBM: exact log Z for small models, else AIS (a
    /// stochastic lower bound) and reverse AIS (an upper bound).
    Eval(eval::EvalArgs),
    /// The codes of a data set as .npy: a sparse-coding model's optimal
    /// codes (or PSD's encoder's), any other model's top features.
    Encode(encode::EncodeArgs),
    /// Write a checkpoint's layers for other frameworks: safetensors in
    /// PyTorch's nn.Sequential layout (0.weight, 0.bias, 2.weight, ...) and a
    /// JSON manifest of the activations.
    Export(export::ExportArgs),
}

fn run(cli: Cli) -> ebmkit::Result<()> {
    let backend = cli.backend;
    let any = || AnyBackend::select(backend);
    match cli.cmd {
        Cmd::Train(a) => ebmkit::with_backend!(any()?, |be| train::run(&be, &a)),
        Cmd::Finetune(a) => {
            let t = a.train_args();
            ebmkit::with_backend!(any()?, |be| train::run(&be, &t))
        }
        Cmd::Sample(a) => ebmkit::with_backend!(any()?, |be| sample::run(&be, &a)),
        Cmd::Eval(a) => ebmkit::with_backend!(any()?, |be| eval::run(&be, &a)),
        Cmd::Encode(a) => ebmkit::with_backend!(any()?, |be| encode::run(&be, &a)),
        Cmd::Viz { what } => viz::run(&what),
        Cmd::Export(a) => export::run(&a),
        Cmd::Info => info::run(),
        Cmd::Bench { what } => bench::run(&what, backend),
    }
}

/// Mesa's window-system code prints "XDG_RUNTIME_DIR is invalid or not set"
/// on every adapter probe when the variable is missing (headless machines,
/// containers, CI); ebmkit draws nothing on screen, so a private folder of
/// our own keeps that line away from the user.
fn quiet_mesa() {
    let set = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty());
    if set {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("ebmkit-runtime-{user}"));
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // Before any thread starts: nothing else reads the environment yet.
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

pub fn main() -> ExitCode {
    quiet_mesa();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ebmkit: error: {e}");
            ExitCode::FAILURE
        }
    }
}
