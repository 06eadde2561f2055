//! `ebmkit train` of a stack recipe: every layer in turn (each with its
//! own checkpoint under `layers/`, so that `--resume` continues the layer
//! it stopped in), then the stack as one checkpoint and the first layer's
//! filters, with each layer's curves under `layers/layer-k/`; a stack of
//! binary RBMs is a DBN, whose samples are drawn and whose variational
//! bound closes the run (unless `--no-eval`). A progress
//! bar per layer (one line per epoch with `--quiet`).

use super::train::{progress_bar, report, Setup, TrainArgs};
use ebmkit::backend::Fused;
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::models::dbn::Dbn;
use ebmkit::models::rbm::GibbsRun;
use ebmkit::models::AnyModel;
use ebmkit::train::stack::{LayerStart, Progress, StackTrainer};
use ebmkit::viz::{receptive_fields, save_grid, zoom_for, Norm};
use ebmkit::RngStream;

pub fn train<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let run = StackTrainer::new(s.recipe.clone(), s.out.join("layers"))?;
    let n = s.recipe.layers.len();
    eprintln!(
        "ebmkit train: {} on {}: a stack of {n} layers, {} examples",
        args.recipe.display(),
        be.name(),
        s.data.train.rows
    );
    let bar = std::cell::RefCell::new(indicatif::ProgressBar::hidden());
    // The layer's first epoch and batches per epoch, for the bar's position.
    let at = std::cell::Cell::new((0u64, 0usize));
    let mut on_layer = |l: LayerStart<'_>| {
        let r = l.recipe;
        eprintln!(
            "layer {} of {n}: {} ({} hidden units), epochs {}..{}",
            l.k,
            r.model.kind(),
            layer_width(r),
            l.from,
            r.train.epochs
        );
        let left = (r.train.epochs as u64).saturating_sub(l.from) * l.batches_per_epoch as u64;
        let pb = if args.quiet || left == 0 {
            indicatif::ProgressBar::hidden()
        } else {
            progress_bar(left)
        };
        bar.replace(pb).finish_and_clear();
        at.set((l.from, l.batches_per_epoch));
    };
    let mut on_batch = |e: u64, b: usize| {
        let (from, nb) = at.get();
        let done = (e - from) * nb as u64 + b as u64 + 1;
        if done.is_multiple_of(10) {
            bar.borrow().set_position(done);
        }
    };
    let mut on_epoch = |k: usize, _: &ebmkit::train::EpochRecord, line: String| {
        let pb = bar.borrow();
        pb.set_message(line.clone());
        if args.quiet || pb.is_hidden() {
            eprintln!("  [{k}] {line}");
        } else {
            pb.println(format!("  [{k}] {line}"));
        }
    };
    let stack = run.fit(
        be,
        (&s.data.train, Some(s.heldout())),
        args.resume.is_some(),
        Progress {
            on_layer: &mut on_layer,
            on_batch: &mut on_batch,
            on_epoch: &mut on_epoch,
        },
    );
    bar.borrow().finish_and_clear();
    finish(be, args, s, &run, stack?)
}

/// The stack's checkpoint, its pictures and (for a DBN of binary data) the
/// closing bound.
fn finish<B: Fused>(
    be: &B,
    args: &TrainArgs,
    s: &Setup,
    run: &StackTrainer,
    stack: ebmkit::models::StackHost,
) -> ebmkit::Result<()> {
    let n = stack.layers.len();
    let mut ck = Checkpoint::of_model(&stack)?;
    ck.recipe = s.recipe.to_toml()?;
    ck.save(&s.ckpt)?;
    // A stack of binary RBMs is a deep belief net: its samples and its bound
    // (any other stack is none, and has neither).
    let dbn = match ebmkit::models::dbn::check(&stack) {
        Ok(_) => Some(Dbn::from_stack(be, &stack)?),
        Err(_) => None,
    };
    let first = AnyModel::Stack(stack).pretrained(false)?.encoders.remove(0);
    let shape = s.shape(first.w.rows);
    let filters = s.out.join("filters.png");
    let w = receptive_fields(&first.w, 100)?;
    save_grid(&filters, &w, shape, 10, Norm::PerTile, zoom_for(shape))?;
    let mut files = vec![s.ckpt.clone(), filters];
    if let Some(dbn) = &dbn {
        files.push(dbn_samples(be, dbn, s, shape)?);
    }
    files.extend((0..n).map(|k| run.layer_path(k)));
    files.extend((0..n).map(|k| run.curves_dir(k).join("curves.csv")));
    report(&files);
    // The bound is a log-probability of binary data only.
    let binary = s.recipe.data.binarize != ebmkit::data::Binarize::None
        && dbn
            .as_ref()
            .is_some_and(|d| d.rbms[0].visible == ebmkit::units::UnitKind::Bernoulli);
    if binary && !args.no_eval {
        // The stack as trained, not what the file may hold by now.
        let model = AnyModel::from_checkpoint(&ck, &s.ckpt)?;
        let a = super::eval::EvalArgs::closing(s.ckpt.clone(), args.data.clone());
        super::eval::run_loaded(be, &a, model, &ck)?;
    }
    Ok(())
}

/// `samples.png`: 100 DBN samples, 1000 sweeps of the top RBM from random
/// states, then the top-down pass.
fn dbn_samples<B: Fused>(
    be: &B,
    dbn: &Dbn<B>,
    s: &Setup,
    shape: (usize, usize),
) -> ebmkit::Result<std::path::PathBuf> {
    let path = s.out.join("samples.png");
    let mut rng = RngStream::new(s.recipe.train.seed ^ 0x5a5a, super::train::SAMPLE_STREAM);
    let run = GibbsRun {
        start: None,
        chains: 100,
        steps: 1000,
        every: None,
    };
    let g = dbn.sample(be, &run, &mut rng)?;
    let norm = Norm::for_values(dbn.rbms[0].visible.is_binary());
    save_grid(&path, &g.last, shape, 10, norm, zoom_for(shape))?;
    Ok(path)
}

fn layer_width(r: &ebmkit::io::recipe::Recipe) -> usize {
    use ebmkit::io::recipe::ModelSpec;
    match &r.model {
        ModelSpec::Rbm(m) => m.n_hidden,
        ModelSpec::Autoencoder(m) => m.n_hidden,
        ModelSpec::Sparse(m) => m.atoms,
        _ => 0,
    }
}
