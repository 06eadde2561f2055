//! Train a binary RBM on the MNIST digits shipped with ebmkit, through the
//! library alone (no recipe file), and save it as a checkpoint that PyTorch
//! can read (`safetensors.torch.load_file`) and `ebmkit eval` / `sample`
//! can use.
//!
//! `cargo run --release --example train_rbm [OUT.safetensors]`

use ebmkit::prelude::*;

fn main() -> ebmkit::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "out/examples/rbm64.safetensors".into());
    let be = Cpu::new();
    let mnist = Mnist::load_embedded()?;

    // 64 binary hidden units, PCD-1 with 100 persistent chains, 5 epochs.
    let recipe = Recipe::new(RbmSpec::new(64))
        .method(Method::Pcd)
        .persistent_chains(100)
        .epochs(5)
        .lr(0.05)
        .momentum(0.5)
        .source(DataSource::MnistSmall);
    let mut trainer = RbmTrainer::new(&be, recipe, &mnist.train_images, Some(&mnist.test_images))?;
    trainer.fit(&be, None, &mut |_, _| {}, &mut |rec, o| {
        println!("{}", o.describe(rec))
    })?;

    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    trainer.checkpoint(&be)?.save(&out)?;
    let last = &trainer.history.epochs[trainer.history.epochs.len() - 1];
    println!(
        "wrote {out}: reconstruction error {:.2}, pseudo-log-likelihood {:.2} nats",
        last.metric("recon_error").unwrap_or(f64::NAN),
        last.metric("pseudo_ll").unwrap_or(f64::NAN)
    );
    Ok(())
}
