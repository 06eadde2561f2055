//! `ebmkit train` of a stack recipe: every layer in turn (each with its
//! own checkpoint under `layers/`, so that `--resume` continues the layer
//! it stopped in), then the stack as one checkpoint and the first layer's
//! filters. Epochs print one line each, `--quiet` or not.

use super::train::{report, Setup, TrainArgs};
use ebmkit::backend::Fused;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::models::AnyModel;
use ebmkit::train::stack::{Progress, StackTrainer};
use ebmkit::viz::{receptive_fields, save_grid, zoom_for, Norm};

pub fn train<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let run = StackTrainer::new(s.recipe.clone(), s.out.join("layers"))?;
    let n = s.recipe.layers.len();
    eprintln!(
        "ebmkit train: {} on {}: a stack of {n} layers, {} examples",
        args.recipe.display(),
        be.name(),
        s.data.train.rows
    );
    let mut on_layer = |k: usize, r: &ebmkit::io::recipe::Recipe, from: u64| {
        eprintln!(
            "layer {k} of {n}: {} ({} hidden units), epochs {from}..{}",
            r.model.kind(),
            layer_width(r),
            r.train.epochs
        );
    };
    // One line per epoch (a stack has no single progress bar to fill).
    let mut on_epoch = |k: usize, _: &ebmkit::train::EpochRecord, line: String| {
        eprintln!("  [{k}] {line}");
    };
    let stack = run.fit(
        be,
        (&s.data.train, Some(s.heldout())),
        args.resume.is_some(),
        Progress {
            on_layer: &mut on_layer,
            on_epoch: &mut on_epoch,
        },
    )?;
    let mut ck = Checkpoint::of_model(&stack)?;
    ck.recipe = s.recipe.to_toml()?;
    ck.save(&s.ckpt)?;
    let first = AnyModel::Stack(stack).pretrained(false)?.encoders.remove(0);
    let shape = s.shape(first.w.rows);
    let filters = s.out.join("filters.png");
    let w = receptive_fields(&first.w, 100)?;
    save_grid(&filters, &w, shape, 10, Norm::PerTile, zoom_for(shape))?;
    let mut files = vec![s.ckpt.clone(), filters];
    files.extend((0..n).map(|k| run.layer_path(k)));
    report(&files);
    Ok(())
}

fn layer_width(r: &ebmkit::io::recipe::Recipe) -> usize {
    use ebmkit::io::recipe::ModelSpec;
    match &r.model {
        ModelSpec::Rbm(m) => m.n_hidden,
        ModelSpec::Autoencoder(m) => m.n_hidden,
        _ => 0,
    }
}
