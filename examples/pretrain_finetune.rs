//! The supervised handoff through the library alone: pretrain a denoising
//! auto-encoder on the digits shipped with ebmkit (images only), start a
//! 784-256-10 classifier from its encoder, fine-tune it with the last 1,000
//! training digits as the validation set (the best epoch is kept), print
//! the test error, and export the net in PyTorch's `nn.Sequential` layout
//! (`clf.safetensors` + `clf.json`; README, "In PyTorch").
//!
//! `cargo run --release --example pretrain_finetune [OUT_DIR]`

use ebmkit::io::recipe::NetSpec;
use ebmkit::models::net::{export_torch, one_hot, Net};
use ebmkit::prelude::*;
use ebmkit::train::fit::Rows;
use ebmkit::train::net::NetTrainer;
use std::path::PathBuf;

fn main() -> ebmkit::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "out/examples/handoff".into()),
    );
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let be = Cpu::new();
    let mut data = Dataset::from(Mnist::load_embedded()?);
    let valid = data.split_validation(1000)?;

    // 1. Pretraining sees the images alone.
    let mut dae = AeSpec::new(256);
    dae.noise = Corruption::Masking;
    dae.noise_level = 0.25;
    let mut recipe = Recipe::new(dae).epochs(5).lr(0.002);
    recipe.train.optimizer = Optimizer::Adam;
    let mut ae = AeTrainer::new(&be, recipe, &data.train, Some(&valid.x))?;
    ae.fit(&be, None, &mut |_, _| {}, &mut |_, _| {})?;
    let pretrained = out.join("dae.safetensors");
    ae.checkpoint(&be)?.save(&pretrained)?;

    // 2. The classifier's hidden layer is the auto-encoder's encoder.
    let mut spec = NetSpec::classifier(&[], 10);
    spec.init = Some(pretrained);
    spec.patience = Some(5);
    let recipe = Recipe::new(spec).epochs(20).batch_size(20).lr(0.1);
    let labels = |l: &Option<Vec<u8>>, what| one_hot(l.as_deref().unwrap_or(&[]), 10, what);
    let (t, vt) = (
        labels(&data.train_labels, "train labels")?,
        labels(&valid.labels, "validation labels")?,
    );
    let train = Rows {
        x: &data.train,
        t: Some(&t),
    };
    let held = Rows {
        x: &valid.x,
        t: Some(&vt),
    };
    let mut clf = NetTrainer::new_supervised(&be, recipe, train, Some(held))?;
    clf.fit(&be, None, &mut |_, _| {}, &mut |rec, o| {
        println!("{}", o.describe(rec))
    })?;

    // 3. The best validation epoch, scored once on the test digits.
    let best = clf.objective.best(&be)?;
    let tt = labels(&data.test_labels, "test labels")?;
    let s = Net::from_host(&be, &best)?.evaluate(&be, &data.test, &tt)?;
    let e = s.error_rate.unwrap_or(f64::NAN);
    println!("test error {:.2} % of {} digits", 100.0 * e, data.test.rows);
    let path = out.join("clf.safetensors");
    let manifest = export_torch(&best, &clf.recipe.to_toml()?, &path)?;
    println!("wrote {} and {}", path.display(), manifest.display());
    Ok(())
}
