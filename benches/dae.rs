//! One epoch of a denoising auto-encoder on the 60,000 MNIST digits
//! (784 x 1000, tied weights, sigmoid, 25 % masking noise, cross-entropy,
//! plain SGD at lr 0.1, batch 100), per backend, beside a plain PyTorch
//! loop of the same model in the same run: `cargo bench --bench dae`. The
//! peer is `benches/torch_dae.py` (2 threads on the CPU; CUDA when a GPU
//! is there); it is skipped with a note when python3 or torch is missing.
//! Set `EBMKIT_BENCH_PEER=0` to skip it. `cargo bench --bench dae -- gpu`
//! (or `cpu`) measures one backend only.

use ebmkit::backend::{cpu::Cpu, gpu::Gpu, Backend, Fused};
use ebmkit::data::{data_dir, mnist::Mnist};
use ebmkit::io::recipe::Recipe;
use ebmkit::train::autoencoder::AeTrainer;
use std::path::Path;

mod common;
use common::{median, mnist_images, run_peer};

const RECIPE: &str = r#"
description = "bench: denoising auto-encoder, the PyTorch peer's settings"
[model]
kind = "autoencoder"
n_hidden = 1000
encoder = "sigmoid"
decoder = "sigmoid"
tied = true
noise = "masking"
noise_level = 0.25
[data]
binarize = "none"
[train]
epochs = 4
batch_size = 100
lr = 0.1
seed = 0
[monitor]
rows = 100
"#;

fn ours<B: Fused>(be: &B, train: &ebmkit::HostMat) -> Vec<f64> {
    let recipe = Recipe::parse(RECIPE, Path::new("benches/dae.rs")).expect("bench recipe");
    let mut t = AeTrainer::new(be, recipe, train, None).expect("trainer");
    (0..4)
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
    let keys = ["s_per_epoch_median", "gemm_100x784x1000_gflops"];
    let (v, peer) = run_peer("torch_dae.py", &args, &keys)?;
    Some((v[0], v[1], peer))
}

fn main() {
    let dir = data_dir();
    let mnist = Mnist::load(&dir).expect("MNIST (set EBMKIT_DATA)");
    let images = mnist_images(&dir);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let named = |b: &str| args.iter().any(|a| a == b);
    let all = !named("cpu") && !named("gpu");
    if all || named("cpu") {
        cpu_pair(&mnist.train_images, images.as_deref());
    }
    if all || named("gpu") {
        gpu_pair(&mnist.train_images, images.as_deref());
    }
}

fn cpu_pair(train: &ebmkit::HostMat, images: Option<&Path>) {
    let cpu = Cpu::new();
    let t_cpu = median(ours(&cpu, train)[1..].to_vec());
    println!(
        "ebmkit {:<36} DAE epoch: {t_cpu:.3} s (median of epochs 2-4)",
        cpu.name()
    );
    match images.and_then(|p| torch(p, "cpu")) {
        Some((s, g, peer)) => println!(
            "{peer:<43} DAE epoch: {s:.3} s (GEMM 100x784x1000 {g:.0} GFLOP/s)  -> ebmkit cpu / torch = {:.2}",
            t_cpu / s
        ),
        None => println!("torch cpu peer: skipped"),
    }
}

fn gpu_pair(train: &ebmkit::HostMat, images: Option<&Path>) {
    match Gpu::new() {
        Ok(gpu) if gpu.is_software() => println!("gpu: skipped (software adapter {})", gpu.name()),
        Ok(gpu) => {
            let t = median(ours(&gpu, train)[1..].to_vec());
            println!(
                "ebmkit {:<36} DAE epoch: {t:.4} s (median of epochs 2-4)",
                gpu.name()
            );
            match images.and_then(|p| torch(p, "cuda")) {
                Some((s, g, peer)) => println!(
                    "{peer:<43} DAE epoch: {s:.4} s (GEMM {g:.0} GFLOP/s)  -> ebmkit gpu / torch = {:.2}",
                    t / s
                ),
                None => println!("torch cuda peer: skipped"),
            }
        }
        Err(e) => println!("gpu: skipped ({e})"),
    }
}
