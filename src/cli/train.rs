//! `ebmkit train`: a recipe to a checkpoint, curves and pictures, then the
//! closing evaluation: for RBMs (binary hidden units) filters, samples and
//! the test log-likelihood; for auto-encoders filters, test inputs beside
//! their corrupted versions and reconstructions, and the test
//! reconstruction error.

use clap::Args;
use ebmkit::backend::Fused;
use ebmkit::data::tile_shape;
use ebmkit::data::Split;
use ebmkit::energy::{Bipartite, FreeEnergy};
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::{ModelSpec, Recipe};
use ebmkit::models::net::one_hot;
use ebmkit::models::rbm::GibbsRun;
use ebmkit::models::AnyModel;
use ebmkit::train::autoencoder::AeTrainer;
use ebmkit::train::fit::Rows;
use ebmkit::train::rbm::RbmTrainer;
use ebmkit::train::{Objective, Trainer};
use ebmkit::units::UnitKind;
use ebmkit::viz::{receptive_fields, save_grid, zoom_for, Norm};
use ebmkit::{Error, HostMat, RngStream};
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
    /// Train until this many epochs are completed (default: the recipe's;
    /// for a stack, every layer's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Resume from a checkpoint written by `train`.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress bar (one line per epoch instead).
    #[arg(long)]
    pub quiet: bool,
    /// Skip the closing evaluation on the test set (for RBMs the AIS and
    /// reverse AIS estimate of the log-likelihood).
    #[arg(long)]
    pub no_eval: bool,
    /// Nets: start the hidden layers from this pretrained checkpoint (an
    /// rbm, autoencoder, stack or net); DBMs: compose the DBM from this
    /// pretraining stack of RBMs. Overrides the recipe's `init`.
    #[arg(long)]
    pub init: Option<PathBuf>,
}

/// The Philox stream of the samples written after training ("SAMP").
pub(super) const SAMPLE_STREAM: u32 = 0x5341_4d50;

/// What every run needs before its kind is known: the recipe (with
/// `--epochs` and `--init` applied), the output folder, the data (with the
/// validation split held out of the training set when the recipe asks),
/// the targets of supervised nets and the checkpoint path.
pub(super) struct Setup {
    pub recipe: Recipe,
    pub out: PathBuf,
    pub data: ebmkit::data::Dataset,
    pub valid: Option<Split>,
    /// One-hot labels of the training and held-out rows (classifiers).
    pub targets: Option<(HostMat, HostMat)>,
    pub ckpt: PathBuf,
    /// The folder's lock, held for the run.
    _out_lock: ebmkit::io::outdir::OutDir,
}

impl Setup {
    fn new(args: &TrainArgs) -> ebmkit::Result<Setup> {
        let mut recipe = Recipe::load(&args.recipe)?;
        if let Some(e) = args.epochs {
            if e == 0 {
                return Err(Error::value("--epochs", "must be at least 1"));
            }
            recipe.train.epochs = e;
            // A stack's layers each train to the count.
            for l in &mut recipe.layers {
                l.train.epochs = e;
            }
        }
        if let Some(init) = &args.init {
            match &mut recipe.model {
                ModelSpec::Dbm(m) => m.init = Some(init.clone()),
                _ => recipe.net_mut()?.init = Some(init.clone()),
            }
        }
        let out = args.out.clone().unwrap_or_else(|| {
            let stem = args
                .recipe
                .file_stem()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
            PathBuf::from("out").join(stem)
        });
        // Claimed before anything is read, so that a second run into the
        // folder fails at once.
        let out_lock = ebmkit::io::outdir::OutDir::claim(&out)?;
        let mut data = recipe.data.load(args.data.as_deref(), recipe.train.seed)?;
        let valid = match recipe.data.validation {
            Some(n) => Some(data.split_validation(n)?),
            None => None,
        };
        let targets = match recipe.net() {
            Ok(n) if !n.autoencoder => Some(Self::one_hot(&data, valid.as_ref(), n.classes)?),
            _ => None,
        };
        let ckpt = out.join("model.safetensors");
        Ok(Setup {
            recipe,
            out,
            data,
            valid,
            targets,
            ckpt,
            _out_lock: out_lock,
        })
    }

    /// One-hot labels of the training and held-out rows.
    fn one_hot(
        data: &ebmkit::data::Dataset,
        valid: Option<&Split>,
        classes: usize,
    ) -> ebmkit::Result<(HostMat, HostMat)> {
        let missing = || Error::value("data.source", "a classifier needs labelled data (MNIST)");
        let train = data.train_labels.as_ref().ok_or_else(missing)?;
        let held = match valid {
            Some(v) => v.labels.as_ref(),
            None => data.test_labels.as_ref(),
        }
        .ok_or_else(missing)?;
        Ok((
            one_hot(train, classes, "training labels")?,
            one_hot(held, classes, "held-out labels")?,
        ))
    }

    /// The held-out rows the monitors see: the validation split if the
    /// recipe holds one out, else the test set.
    pub fn heldout(&self) -> &HostMat {
        self.valid.as_ref().map_or(&self.data.test, |v| &v.x)
    }

    /// The tile shape of a row of `n` values.
    pub fn shape(&self, n: usize) -> (usize, usize) {
        let (h, w) = self.data.image_shape;
        if n == h * w {
            self.data.image_shape
        } else {
            tile_shape(n)
        }
    }
}

pub fn run<B: Fused>(be: &B, args: &TrainArgs) -> ebmkit::Result<()> {
    let mut s = super::net::with_dbm_inputs(be, Setup::new(args)?)?;
    if matches!(s.recipe.model, ModelSpec::Lista(_)) {
        // LISTA regresses the optimal codes of its rows: inferred once here.
        let t = ebmkit::train::lista::targets(be, &s.recipe, &s.data.train)?;
        let h = ebmkit::train::lista::targets(be, &s.recipe, s.heldout())?;
        s.targets = Some((t, h));
    }
    match &s.recipe.model {
        ModelSpec::Rbm(_) => rbm(be, args, &s),
        ModelSpec::Autoencoder(_) => autoencoder(be, args, &s),
        ModelSpec::Net(_) => super::net::train(be, args, &s),
        ModelSpec::Stack(_) => super::stack::train(be, args, &s),
        ModelSpec::Dbm(_) => dbm(be, args, &s),
        ModelSpec::Sparse(_) => sparse(be, args, &s),
        ModelSpec::Lista(_) => lista(be, args, &s),
    }
}

/// LISTA: trained on the optimal codes, then the closing evaluation (the
/// code prediction error and energy gap of the test rows).
fn lista<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let (trainer, curves) = train(be, args, s, |t: &ebmkit::train::lista::ListaTrainer<B>| {
        let a = t.objective.net.arch;
        format!(
            "LISTA, {} steps, {} atoms of {} values, started at ISTA",
            a.steps, a.atoms, a.dim
        )
    })?;
    report(&curves);
    if !args.no_eval {
        closing_eval(be, args, s, &trainer)?;
    }
    Ok(())
}

/// Sparse coding or PSD: the dictionary's atoms (and the encoder's
/// filters) as pictures, then the closing evaluation (the test energy of
/// optimal codes, and of the encoder's).
fn sparse<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let (trainer, curves) = train(
        be,
        args,
        s,
        |t: &ebmkit::train::sparse::SparseTrainer<B>| {
            let m = t.recipe.sparse().ok();
            match m {
            Some(m) => format!(
                "sparse coding, {} atoms, λ = {}, {} {} iterations per batch, {} dictionary update{}",
                m.atoms,
                m.lambda,
                m.algorithm,
                m.iters,
                m.update,
                if m.psd() {
                    format!(", PSD encoder (α = {})", m.alpha)
                } else {
                    String::new()
                }
            ),
            None => "sparse coding".into(),
        }
        },
    )?;
    let host = trainer.objective.to_host(be)?;
    let shape = s.shape(host.dim());
    let mut files = vec![curves[0].clone()];
    let atoms = s.out.join("dictionary.png");
    let n = host.atoms().min(256);
    let tiles = host.dict.select_rows(&(0..n).collect::<Vec<_>>())?;
    save_grid(
        &atoms,
        &tiles,
        shape,
        16,
        Norm::PerTileSymmetric,
        zoom_for(shape),
    )?;
    files.push(atoms);
    if let Some([w, _, _]) = &host.encoder {
        let enc = s.out.join("filters.png");
        let tiles = w.select_rows(&(0..n).collect::<Vec<_>>())?;
        save_grid(
            &enc,
            &tiles,
            shape,
            16,
            Norm::PerTileSymmetric,
            zoom_for(shape),
        )?;
        files.push(enc);
    }
    files.extend_from_slice(&curves[1..]);
    report(&files);
    if !args.no_eval {
        closing_eval(be, args, s, &trainer)?;
    }
    Ok(())
}

/// A DBM: filters of the first layer, samples after 1000 sweeps of 100
/// chains, then the closing evaluation (the mean-field bound with log Z by
/// AIS, or exact when small).
fn dbm<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let (trainer, curves) = train(be, args, s, |t: &ebmkit::train::dbm::DbmTrainer<B>| {
        let w: Vec<String> = t
            .objective
            .dbm
            .widths()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let spec = t.recipe.dbm().ok();
        let from = spec
            .and_then(|m| m.init.as_ref())
            .map(|p| format!("composed from {}", p.display()))
            .unwrap_or_else(|| "randomly initialised".into());
        format!(
            "{} DBM, {from}, PCD-{} with {} particles, {} mean-field sweeps",
            w.join("-"),
            t.recipe.train.k,
            ebmkit::backend::Matrix::rows(&t.objective.particles.s[0]),
            spec.map_or(0, |m| m.mf_iters),
        )
    })?;
    let host = trainer.objective.dbm.to_host(be)?;
    let shape = s.shape(host.widths()[0]);
    let mut files = vec![curves[0].clone()];
    let filters = s.out.join("filters.png");
    let w = receptive_fields(&host.w[0], 100)?;
    save_grid(&filters, &w, shape, 10, Norm::PerTile, zoom_for(shape))?;
    files.push(filters);
    let samples = s.out.join("samples.png");
    let (run, mut rng) = closing_samples(&trainer.recipe);
    let g = trainer.objective.dbm.sample(be, &run, &mut rng)?;
    save_grid(
        &samples,
        &g.last,
        shape,
        10,
        Norm::for_values(true),
        zoom_for(shape),
    )?;
    files.push(samples);
    files.extend_from_slice(&curves[1..]);
    report(&files);
    if !args.no_eval {
        closing_eval(be, args, s, &trainer)?;
    }
    Ok(())
}

/// A fresh or resumed run of objective `O`, trained with progress to the
/// recipe's epoch count, its curves written (also when training failed).
pub(super) fn train<B: Fused, O: Objective<B>>(
    be: &B,
    args: &TrainArgs,
    s: &Setup,
    banner: impl Fn(&Trainer<B, O>) -> String,
) -> ebmkit::Result<(Trainer<B, O>, Vec<PathBuf>)> {
    let recipe = s.recipe.clone();
    let (tt, ht) = match &s.targets {
        Some((t, h)) => (Some(t), Some(h)),
        None => (None, None),
    };
    let train = Rows {
        x: &s.data.train,
        t: tt,
    };
    // A net selects its best epoch on what it monitors: never the test set.
    let select = matches!(s.recipe.model, ModelSpec::Net(_));
    let held = (!select || s.valid.is_some()).then(|| Rows {
        x: s.heldout(),
        t: ht,
    });
    let mut trainer = match &args.resume {
        Some(p) => {
            let ck = Checkpoint::load(p)?;
            Trainer::resume_supervised(be, recipe, &ck, p, (train, held))?
        }
        None => Trainer::new_supervised(be, recipe, train, held)?,
    };
    eprintln!(
        "ebmkit train: {} on {}: {}, {} examples, {} batches/epoch, epochs {}..{}",
        args.recipe.display(),
        be.name(),
        banner(&trainer),
        trainer.training_rows(),
        trainer.batches_per_epoch(),
        trainer.epoch,
        trainer.recipe.train.epochs
    );
    let result = fit_with_progress(be, &mut trainer, &s.ckpt, args.quiet);
    let mut files = vec![s.ckpt.clone()];
    files.extend(trainer.save_curves_after(&s.out, result)?);
    Ok((trainer, files))
}

/// The closing evaluation of the model as training left it in memory: the
/// file may have been replaced by then (the folder's lock keeps other
/// ebmkit runs out, not every writer).
fn closing_eval<B: Fused, O: Objective<B>>(
    be: &B,
    args: &TrainArgs,
    s: &Setup,
    trainer: &Trainer<B, O>,
) -> ebmkit::Result<()> {
    let ck = trainer.checkpoint(be)?;
    let model = AnyModel::from_checkpoint(&ck, &s.ckpt)?;
    let a = super::eval::EvalArgs::closing(s.ckpt.clone(), args.data.clone());
    super::eval::run_loaded(be, &a, model, &ck)
}

pub(super) fn report(files: &[PathBuf]) {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    eprintln!("wrote {}", names.join(", "));
}

fn rbm<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let (trainer, curves) = train(be, args, s, |t: &RbmTrainer<B>| {
        let rbm = &t.objective.rbm;
        let r = &t.recipe.train;
        format!(
            "{} x {} {}-{} RBM, {:?}-{} ",
            rbm.n_visible(),
            rbm.n_hidden(),
            rbm.visible,
            rbm.hidden,
            r.method.unwrap_or(ebmkit::io::recipe::Method::Pcd),
            r.k,
        )
    })?;
    let host = trainer.objective.rbm.to_host(be)?;
    let shape = s.shape(host.n_visible());
    let mut files = vec![curves[0].clone()];
    files.extend(save_pictures(be, &trainer, &host, shape, &s.out)?);
    files.extend_from_slice(&curves[1..]);
    report(&files);
    let evaluable = host.hidden == UnitKind::Bernoulli
        && matches!(host.visible, UnitKind::Bernoulli | UnitKind::Gaussian);
    if !args.no_eval && evaluable {
        // The number a user trains for: the test log-likelihood, bracketed by
        // AIS and reverse AIS (exact when a layer is small enough).
        closing_eval(be, args, s, &trainer)?;
    }
    Ok(())
}

fn autoencoder<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let (trainer, curves) = train(be, args, s, |t: &AeTrainer<B>| {
        let a = &t.objective.ae.arch;
        let spec = t.recipe.autoencoder().ok();
        let noise = spec
            .and_then(|m| m.corruption())
            .map(|n| format!(", {n:?} noise"))
            .unwrap_or_default();
        format!(
            "{} x {} {} {}-{} auto-encoder{noise}, {:?}",
            a.n_visible,
            a.n_hidden,
            if a.tied { "tied" } else { "untied" },
            a.encoder.name(),
            a.decoder.name(),
            t.recipe.train.optimizer,
        )
    })?;
    let ae = &trainer.objective.ae;
    let host = ae.to_host(be)?;
    let shape = s.shape(host.arch.n_visible);
    let mut files = vec![curves[0].clone()];
    let filters = s.out.join("filters.png");
    let w = receptive_fields(&host.params[0], 100)?;
    save_grid(&filters, &w, shape, 10, Norm::PerTile, zoom_for(shape))?;
    files.push(filters);
    let recon = s.out.join("reconstructions.png");
    let noise = trainer.recipe.autoencoder()?.corruption();
    let test = ebmkit::data::prepare::head(&s.data.test, 30)?;
    let mut rng = RngStream::new(trainer.recipe.train.seed ^ 0x5a5a, SAMPLE_STREAM);
    let r = ae.reconstruct(be, &test, noise, &mut rng)?;
    let bands = side_by_side(&test, r.corrupted.as_ref(), &r.recon, 10)?;
    let unit = host.arch.decoder == ebmkit::autodiff::Activation::Sigmoid;
    save_grid(
        &recon,
        &bands,
        shape,
        10,
        Norm::for_values(unit),
        zoom_for(shape),
    )?;
    files.push(recon);
    files.extend_from_slice(&curves[1..]);
    report(&files);
    if !args.no_eval {
        closing_eval(be, args, s, &trainer)?;
    }
    Ok(())
}

/// Rows of `per` examples: the inputs, the corrupted inputs (when there
/// are), the reconstructions, then the next `per` examples.
pub fn side_by_side(
    x: &HostMat,
    corrupted: Option<&HostMat>,
    recon: &HostMat,
    per: usize,
) -> ebmkit::Result<HostMat> {
    let mut bands: Vec<&HostMat> = vec![x];
    bands.extend(corrupted);
    bands.push(recon);
    let mut data = Vec::new();
    let mut rows = 0;
    for start in (0..x.rows).step_by(per) {
        for b in &bands {
            for r in start..(start + per).min(x.rows) {
                data.extend_from_slice(b.row(r));
                rows += 1;
            }
        }
    }
    HostMat::new(rows, x.cols, data)
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
    let (run, mut rng) = closing_samples(&trainer.recipe);
    let g = trainer.objective.rbm.gibbs(be, &run, &mut rng)?;
    let norm = Norm::for_values(host.visible.is_binary());
    save_grid(&samples, &g.last, shape, 10, norm, zoom_for(shape))?;
    Ok(vec![filters, samples])
}

/// The chains `samples.png` shows after training (100 chains, 1000 sweeps
/// from random states) and their stream, the same for every model kind.
fn closing_samples(recipe: &ebmkit::io::recipe::Recipe) -> (GibbsRun<'static>, RngStream) {
    let run = GibbsRun {
        start: None,
        chains: 100,
        steps: 1000,
        every: None,
    };
    (
        run,
        RngStream::new(recipe.train.seed ^ 0x5a5a, SAMPLE_STREAM),
    )
}

/// A bar over `batches` minibatches, the last epoch's line beside it.
pub fn progress_bar(batches: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(batches);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} batches, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb
}

/// Trains to the recipe's epoch count with a progress bar (or one line per
/// epoch when `quiet`), checkpointing into `ckpt`.
fn fit_with_progress<B: Fused, O: Objective<B>>(
    be: &B,
    trainer: &mut Trainer<B, O>,
    ckpt: &std::path::Path,
    quiet: bool,
) -> ebmkit::Result<()> {
    let nb = trainer.batches_per_epoch() as u64;
    let start_epoch = trainer.epoch;
    let remaining = (trainer.recipe.train.epochs as u64).saturating_sub(start_epoch) * nb;
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(remaining)
    };
    let result = trainer.fit(
        be,
        Some(ckpt),
        &mut |e, b| {
            let done = (e - start_epoch) * nb + b as u64 + 1;
            if done.is_multiple_of(10) || done == remaining {
                pb.set_position(done);
            }
        },
        &mut |r, o| {
            let line = o.describe(r);
            pb.set_message(line.clone());
            // A bar that draws nothing (stderr not a terminal) prints nothing.
            if quiet || pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        },
    );
    pb.finish_and_clear();
    result
}
