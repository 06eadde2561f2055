//! One epoch of deep Boltzmann machine training on the 60,000 MNIST digits
//! (784-500-1000, exactly 10 mean-field sweeps and one Gibbs sweep of 100
//! persistent particles per batch of 100, momentum and weight decay), per
//! backend, beside a plain PyTorch loop of the same algorithm in the same
//! run: `cargo bench --bench dbm`. The peer is `benches/torch_dbm.py` (2
//! threads on the CPU; CUDA when a GPU is there); it is skipped with a note
//! when python3 or torch is missing, or with `EBMKIT_BENCH_PEER=0`.
//! `cargo bench --bench dbm -- gpu` (or `cpu`) measures one backend only.

use ebmkit::backend::{cpu::Cpu, gpu::Gpu, Backend, Fused};
use ebmkit::data::{data_dir, mnist::Mnist};
use ebmkit::io::recipe::Recipe;
use ebmkit::train::dbm::DbmTrainer;
use std::path::Path;

mod common;
use common::{median, mnist_images, run_peer};

const RECIPE: &str = r#"
description = "bench: DBM training, the PyTorch peer's settings"
[model]
kind = "dbm"
hidden = [500, 1000]
mf_iters = 10
[data]
binarize = "fixed"
[train]
method = "pcd"
k = 1
chains = 100
epochs = 3
batch_size = 100
lr = 0.001
momentum = 0.9
weight_decay = 0.0002
seed = 0
[monitor]
rows = 100
"#;

fn ours<B: Fused>(be: &B, train: &ebmkit::HostMat) -> Vec<f64> {
    let recipe = Recipe::parse(RECIPE, Path::new("benches/dbm.rs")).expect("bench recipe");
    let mut t = DbmTrainer::new(be, recipe, train, None).expect("trainer");
    (0..3)
        .map(|_| t.run_epoch(be, &mut |_| {}).expect("epoch").seconds)
        .collect()
}

/// The peer's median epoch and GEMM rate, or None with the reason printed.
fn torch(images: &Path, device: &str) -> Option<(f64, f64, String)> {
    let args = [
        &images.to_string_lossy(),
        "--epochs",
        "3",
        "--device",
        device,
        "--threads",
        "2",
    ];
    let keys = ["s_per_epoch_median", "gemm_100x1000x500_gflops"];
    let (v, peer) = run_peer("torch_dbm.py", &args, &keys)?;
    Some((v[0], v[1], peer))
}

fn pair<B: Fused>(be: &B, train: &ebmkit::HostMat, images: Option<&Path>, device: &str) {
    let t = median(ours(be, train)[1..].to_vec());
    println!(
        "ebmkit {:<36} DBM epoch: {t:.3} s (median of epochs 2-3)",
        be.name()
    );
    match images.and_then(|p| torch(p, device)) {
        Some((s, g, peer)) => println!(
            "{peer:<43} DBM epoch: {s:.3} s (GEMM 100x1000x500 {g:.0} GFLOP/s)  -> ebmkit {device} / torch = {:.2}",
            t / s
        ),
        None => println!("torch {device} peer: skipped"),
    }
}

fn main() {
    let dir = data_dir();
    let mnist = Mnist::load(&dir).expect("MNIST (set EBMKIT_DATA)");
    let images = mnist_images(&dir);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let named = |b: &str| args.iter().any(|a| a == b);
    let all = !named("cpu") && !named("gpu");
    if all || named("cpu") {
        pair(&Cpu::new(), &mnist.train_images, images.as_deref(), "cpu");
    }
    if all || named("gpu") {
        match Gpu::new() {
            Ok(g) if g.is_software() => println!("gpu: skipped (software adapter {})", g.name()),
            Ok(g) => pair(&g, &mnist.train_images, images.as_deref(), "cuda"),
            Err(e) => println!("gpu: skipped ({e})"),
        }
    }
}
