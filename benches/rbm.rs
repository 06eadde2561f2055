//! One epoch of PCD-1 on the 60,000 MNIST digits (784 x 500, batch 100,
//! lr 0.05, no momentum or weight decay: scikit-learn's BernoulliRBM
//! settings), per backend, beside the peer in the same run:
//! `cargo bench --bench rbm`. The peer script is `$EBMKIT_BENCH/sklearn_rbm.py`
//! (default `../shared/bench`); it is skipped with a note when python3,
//! numpy or scikit-learn are missing. Set `EBMKIT_BENCH_PEER=0` to skip it.

use ebmkit::backend::{cpu::Cpu, gpu::Gpu, Backend, Fused};
use ebmkit::data::{data_dir, mnist::Mnist};
use ebmkit::io::recipe::Recipe;
use ebmkit::train::rbm::RbmTrainer as Trainer;
use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = r#"
description = "bench: PCD-1, scikit-learn BernoulliRBM settings"
[model]
n_hidden = 500
init_std = 0.01
[data]
source = "mnist"
binarize = "fixed"
[train]
method = "pcd"
k = 1
epochs = 4
batch_size = 100
lr = 0.05
seed = 0
[monitor]
rows = 100
"#;

fn ours<B: Fused>(be: &B, train: &ebmkit::HostMat) -> Vec<f64> {
    let recipe = Recipe::parse(RECIPE, Path::new("benches/rbm.rs")).expect("bench recipe");
    let mut t = Trainer::new(be, recipe, train, None).expect("trainer");
    (0..4)
        .map(|_| t.run_epoch(be, &mut |_| {}).expect("epoch").seconds)
        .collect()
}

/// GPU dispatches per minibatch of the bench recipe (epoch-end monitors
/// excluded): the per-step overhead a GPU pays in launches and barriers.
fn dispatches_per_batch(gpu: &Gpu, train: &ebmkit::HostMat) -> f64 {
    let recipe = Recipe::parse(RECIPE, Path::new("benches/rbm.rs")).expect("bench recipe");
    let mut t = Trainer::new(gpu, recipe, train, None).expect("trainer");
    let mut marks = Vec::new();
    t.run_epoch(gpu, &mut |_| marks.push(gpu.dispatches()))
        .expect("epoch");
    let n = marks.len();
    (marks[n - 1] - marks[0]) as f64 / (n - 1).max(1) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sklearn(images: &Path) -> Option<f64> {
    if std::env::var("EBMKIT_BENCH_PEER").as_deref() == Ok("0") {
        return None;
    }
    let dir = std::env::var_os("EBMKIT_BENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("../bench"));
    let out = Command::new("python3")
        .arg(dir.join("sklearn_rbm.py"))
        .args(["--train"])
        .arg(images)
        .args(["--hidden", "500", "--batch", "100", "--epochs", "3"])
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "sklearn peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let i = s.find("\"s_per_epoch_median\": ")? + 22;
    s[i..].trim().trim_end_matches('}').trim().parse().ok()
}

fn main() {
    let dir = data_dir();
    let mnist = Mnist::load(&dir).expect("MNIST (set EBMKIT_DATA)");
    let cpu = Cpu::new();
    let t_cpu = median(ours(&cpu, &mnist.train_images)[1..].to_vec());
    println!(
        "ebmkit {:<36} PCD-1 epoch: {:.3} s (median of epochs 2-4)",
        cpu.name(),
        t_cpu
    );
    let images = [
        "mnist/train-images-idx3-ubyte.gz",
        "train-images-idx3-ubyte.gz",
    ]
    .iter()
    .map(|p| dir.join(p))
    .find(|p| p.exists());
    match images.and_then(|p| sklearn(&p)) {
        Some(s) => println!(
            "sklearn BernoulliRBM                        PCD-1 epoch: {s:.3} s  -> ebmkit cpu / sklearn = {:.2}",
            t_cpu / s
        ),
        None => println!("sklearn BernoulliRBM: skipped"),
    }
    match Gpu::new() {
        Ok(gpu) if gpu.is_software() => println!("gpu: skipped (software adapter {})", gpu.name()),
        Ok(gpu) => {
            let t = median(ours(&gpu, &mnist.train_images)[1..].to_vec());
            println!(
                "ebmkit {:<36} PCD-1 epoch: {:.4} s (median of epochs 2-4)",
                gpu.name(),
                t
            );
            println!(
                "ebmkit {:<36} {:.2} dispatches per minibatch",
                gpu.name(),
                dispatches_per_batch(&gpu, &mnist.train_images)
            );
        }
        Err(e) => println!("gpu: skipped ({e})"),
    }
}
