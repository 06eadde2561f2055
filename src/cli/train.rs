//! `ebmkit train`: a recipe to a checkpoint, curves, filters, samples and
//! (for RBMs with binary hidden units) the closing test log-likelihood.

use clap::Args;
use ebmkit::backend::Fused;
use ebmkit::data::tile_shape;
use ebmkit::energy::{Bipartite, FreeEnergy};
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::rbm::GibbsRun;
use ebmkit::train::rbm::RbmTrainer;
use ebmkit::units::UnitKind;
use ebmkit::viz::{save_grid, zoom_for, Norm};
use ebmkit::{Error, RngStream};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    /// Data folder for `source = "mnist"` / "patches" (default: $EBMKIT_DATA, else ../shared/data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output folder (default: out/<recipe name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train until this many epochs are completed (default: the recipe's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Resume from a checkpoint written by `train`.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress bar (one line per epoch instead).
    #[arg(long)]
    pub quiet: bool,
    /// Skip the closing estimate of the test log-likelihood (AIS and
    /// reverse AIS, or exact for small models).
    #[arg(long)]
    pub no_eval: bool,
}

/// The Philox stream of the samples written after training ("SAMP").
const SAMPLE_STREAM: u32 = 0x5341_4d50;

pub fn run<B: Fused>(be: &B, args: &TrainArgs) -> ebmkit::Result<()> {
    let mut recipe = Recipe::load(&args.recipe)?;
    if let Some(e) = args.epochs {
        if e == 0 {
            return Err(Error::value("--epochs", "must be at least 1"));
        }
        recipe.train.epochs = e;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .recipe
            .file_stem()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        PathBuf::from("out").join(stem)
    });
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let data = recipe.data.load(args.data.as_deref(), recipe.train.seed)?;
    let ckpt_path = out.join("model.safetensors");
    let mut trainer = match &args.resume {
        Some(p) => {
            let ck = Checkpoint::load(p)?;
            RbmTrainer::resume(be, recipe.clone(), &ck, p, (&data.train, Some(&data.test)))?
        }
        None => RbmTrainer::new(be, recipe.clone(), &data.train, Some(&data.test))?,
    };
    let rbm = &trainer.objective.rbm;
    eprintln!(
        "ebmkit train: {} on {}: {} x {} {}-{} RBM, {:?}-{} , {} examples, {} batches/epoch, epochs {}..{}",
        args.recipe.display(),
        be.name(),
        rbm.n_visible(),
        rbm.n_hidden(),
        rbm.visible,
        rbm.hidden,
        recipe.train.method.unwrap_or(ebmkit::io::recipe::Method::Pcd),
        recipe.train.k,
        trainer.training_rows(),
        trainer.batches_per_epoch(),
        trainer.epoch,
        recipe.train.epochs
    );
    let result = fit_with_progress(be, &mut trainer, &ckpt_path, args.quiet);
    let written = trainer.save_curves(&out)?;
    result?;
    let host = trainer.objective.rbm.to_host(be)?;
    let shape = if host.n_visible() == data.dim() {
        data.image_shape
    } else {
        tile_shape(host.n_visible())
    };
    let mut files = vec![ckpt_path.clone()];
    files.extend(save_pictures(be, &trainer, &host, shape, &out)?);
    files.extend(written);
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    eprintln!("wrote {}", names.join(", "));
    let evaluable = host.hidden == UnitKind::Bernoulli
        && matches!(host.visible, UnitKind::Bernoulli | UnitKind::Gaussian);
    if !args.no_eval && evaluable {
        // The number a user trains for: the test log-likelihood, bracketed by
        // AIS and reverse AIS (exact when a layer is small enough).
        super::eval::run(
            be,
            &super::eval::EvalArgs::closing(ckpt_path, args.data.clone()),
        )?;
    }
    Ok(())
}

/// `filters.png` (the first 100 receptive fields) and `samples.png` (100
/// chains after 1000 Gibbs sweeps from random states) in `out`.
fn save_pictures<B: Fused>(
    be: &B,
    trainer: &RbmTrainer<B>,
    host: &ebmkit::models::RbmHost,
    shape: (usize, usize),
    out: &std::path::Path,
) -> ebmkit::Result<Vec<PathBuf>> {
    let filters = out.join("filters.png");
    save_grid(
        &filters,
        &host.filters(100)?,
        shape,
        10,
        Norm::PerTile,
        zoom_for(shape),
    )?;
    let samples = out.join("samples.png");
    let mut rng = RngStream::new(trainer.recipe.train.seed ^ 0x5a5a, SAMPLE_STREAM);
    let run = GibbsRun {
        start: None,
        chains: 100,
        steps: 1000,
        every: None,
    };
    let g = trainer.objective.rbm.gibbs(be, &run, &mut rng)?;
    let norm = Norm::for_values(host.visible.is_binary());
    save_grid(&samples, &g.last, shape, 10, norm, zoom_for(shape))?;
    Ok(vec![filters, samples])
}

/// Trains to the recipe's epoch count with a progress bar (or one line per
/// epoch when `quiet`), checkpointing into `ckpt`.
fn fit_with_progress<B: Fused>(
    be: &B,
    trainer: &mut RbmTrainer<B>,
    ckpt: &std::path::Path,
    quiet: bool,
) -> ebmkit::Result<()> {
    use ebmkit::train::Objective;
    let nb = trainer.batches_per_epoch() as u64;
    let start_epoch = trainer.epoch;
    let remaining = (trainer.recipe.train.epochs as u64).saturating_sub(start_epoch) * nb;
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(remaining)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} batches, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let result = trainer.fit(
        be,
        Some(ckpt),
        &mut |e, b| {
            let done = (e - start_epoch) * nb + b as u64 + 1;
            if done % 10 == 0 || done == remaining {
                pb.set_position(done);
            }
        },
        &mut |r, o| {
            let line = o.describe(r);
            pb.set_message(line.clone());
            if quiet {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        },
    );
    pb.finish_and_clear();
    result
}
