//! Train a denoising auto-encoder on the MNIST digits shipped with ebmkit,
//! through the library alone, print its clean test reconstruction error
//! and save it as a checkpoint (`ebmkit eval` / `viz filters` read it).
//!
//! `cargo run --release --example train_autoencoder [OUT.safetensors]`

use ebmkit::prelude::*;

fn main() -> ebmkit::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "out/examples/dae100.safetensors".into());
    let be = Cpu::new();
    let mnist = Mnist::load_embedded()?;

    // 100 tied sigmoid units, 25 % masking noise, cross-entropy, Adam.
    let mut dae = AeSpec::new(100);
    dae.noise = Corruption::Masking;
    dae.noise_level = 0.25;
    let mut recipe = Recipe::new(dae)
        .epochs(5)
        .lr(0.002)
        .source(DataSource::MnistSmall);
    recipe.train.optimizer = Optimizer::Adam;
    let mut trainer = AeTrainer::new(&be, recipe, &mnist.train_images, Some(&mnist.test_images))?;
    trainer.fit(&be, None, &mut |_, _| {}, &mut |rec, o| {
        println!("{}", o.describe(rec))
    })?;

    // The clean reconstructions of the test digits.
    let ae = &trainer.objective.ae;
    let r = ae.reconstruct(&be, &mnist.test_images, None, &mut RngStream::new(0, 0))?;
    println!(
        "test: squared error {:.2}, cross-entropy {:.2} nats per digit",
        r.squared_error, r.loss
    );
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    trainer.checkpoint(&be)?.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
