//! The RBM subcommands of the `ebmkit` binary (`train`, `sample`,
//! `viz filters`, `eval`), as library functions so experiments and tests
//! can call them too. Errors come back as display strings for the CLI.

use std::path::{Path, PathBuf};

use crate::backend::Fused;
use crate::data::binarize::{binarize_stochastic, binarize_threshold};
use crate::data::natural::{natural_patches, NaturalPatches};
use crate::data::{data_dir, Dataset, Mnist, WhitenConfig};
use crate::energy::Bipartite;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{Binarize, DataSource, Recipe, Whiten};
use crate::models::rbm::{Rbm, RbmHost};
use crate::rng::RngStream;
use crate::sample::Chains;
use crate::units::UnitKind;
use crate::viz::{save_curves, save_grid, Norm};

use super::trainer::{Trainer, HELDOUT_STREAM};
use super::{EpochRecord, TrainError};

/// The data a recipe names: the shipped MNIST subset, or from the data
/// folder `dir` (else `$EBMKIT_DATA`, else `../shared/data`) the full MNIST
/// or whitened patches of its photographs.
pub fn load_data(recipe: &Recipe, dir: Option<&Path>) -> Result<Dataset> {
    let d = &recipe.data;
    match d.source {
        DataSource::MnistSmall => Ok(Mnist::load_embedded()?.into()),
        DataSource::Mnist => Ok(match dir {
            Some(d) => Mnist::load(d)?,
            None => Mnist::load_default()?,
        }
        .into()),
        DataSource::Patches => {
            let root = dir.map(Path::to_path_buf).unwrap_or_else(data_dir);
            let whiten = match d.whiten {
                Whiten::Zca => Some(WhitenConfig::zca(d.whiten_epsilon)),
                Whiten::Pca => Some(WhitenConfig::pca(None, d.whiten_epsilon)),
                Whiten::None => None,
            };
            let spec = NaturalPatches {
                size: d.patch_size,
                train: d.patches,
                test: d.test_patches,
                whiten,
                seed: recipe.train.seed,
            };
            let set = natural_patches(&root.join("images"), &spec)?;
            // PCA-whitened rows are components, not pixels: drawn as strips.
            let shape = match d.whiten {
                Whiten::Pca => tile_shape(set.train.cols),
                _ => (d.patch_size, d.patch_size),
            };
            Ok(Dataset {
                train: set.train,
                test: set.test,
                image_shape: shape,
            })
        }
    }
}

/// A tile shape for `n` visible units: 28x28 for MNIST, else the most square
/// factorisation.
pub fn tile_shape(n: usize) -> (usize, usize) {
    let mut best = (1, n);
    let mut r = 1;
    while r * r <= n {
        if n % r == 0 {
            best = (r, n / r);
        }
        r += 1;
    }
    best
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub struct TrainArgs {
    pub recipe: PathBuf,
    pub data: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub epochs: Option<usize>,
    pub resume: Option<PathBuf>,
    pub quiet: bool,
    /// Skip the closing log-likelihood estimate.
    pub no_eval: bool,
}

fn describe(r: &EpochRecord) -> String {
    let o = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    let mut m = format!(
        "epoch {} recon {:.3} PL {} FE gap {} ({:.2} s)",
        r.epoch,
        r.recon_error,
        o(r.pseudo_ll),
        o(r.fe_gap),
        r.seconds
    );
    if !r.swap_rates.is_empty() {
        let rates: Vec<String> = r.swap_rates.iter().map(|x| format!("{x:.2}")).collect();
        m.push_str(&format!(" swaps [{}]", rates.join(" ")));
    }
    m
}

/// `ebmkit train`.
pub fn train<B: Fused>(be: &B, args: &TrainArgs) -> std::result::Result<(), String> {
    let mut recipe = Recipe::load(&args.recipe).map_err(s)?;
    if let Some(e) = args.epochs {
        if e == 0 {
            return Err("--epochs: must be at least 1".into());
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
    std::fs::create_dir_all(&out).map_err(|e| s(Error::io(&out, e)))?;
    let data = load_data(&recipe, args.data.as_deref()).map_err(s)?;
    let ckpt_path = out.join("model.safetensors");
    let mut trainer = match &args.resume {
        Some(p) => {
            let ck = Checkpoint::load(p).map_err(s)?;
            Trainer::resume(be, recipe.clone(), &ck, p, &data.train, Some(&data.test)).map_err(s)?
        }
        None => Trainer::new(be, recipe.clone(), &data.train, Some(&data.test)).map_err(s)?,
    };
    let epochs = recipe.train.epochs as u64;
    eprintln!(
        "ebmkit train: {} on {}: {} x {} {}-{} RBM, {:?}-{} , {} examples, {} batches/epoch, epochs {}..{}",
        args.recipe.display(),
        be.name(),
        trainer.rbm.n_visible(),
        trainer.rbm.n_hidden(),
        trainer.rbm.visible,
        trainer.rbm.hidden,
        recipe.train.method,
        recipe.train.k,
        recipe.data.n_train.unwrap_or(data.train.rows).min(data.train.rows),
        trainer.batches_per_epoch(),
        trainer.epoch,
        epochs
    );
    let nb = trainer.batches_per_epoch() as u64;
    let remaining = epochs.saturating_sub(trainer.epoch) * nb;
    let pb = if args.quiet {
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
    let start_epoch = trainer.epoch;
    let result = trainer.fit(
        be,
        epochs,
        Some(&ckpt_path),
        &mut |e, b| {
            let done = (e - start_epoch) * nb + b as u64 + 1;
            if done % 10 == 0 || done == remaining {
                pb.set_position(done);
            }
        },
        &mut |r| {
            let line = describe(r);
            pb.set_message(line.clone());
            if args.quiet {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        },
    );
    pb.finish_and_clear();
    let written = save_curves(&out, &trainer.history).map_err(s)?;
    match result {
        Err(TrainError::Diverged { .. }) | Err(TrainError::Other(_)) => {
            return Err(s(result.unwrap_err()));
        }
        Ok(()) => {}
    }
    let host = trainer.rbm.to_host(be).map_err(s)?;
    let shape = if host.n_visible() == data.dim() {
        data.image_shape
    } else {
        tile_shape(host.n_visible())
    };
    let filters = out.join("filters.png");
    save_filters(&host, shape, 100, &filters).map_err(s)?;
    let samples = out.join("samples.png");
    let mut rng = RngStream::new(recipe.train.seed ^ 0x5a5a, 0x5341_4d50);
    let pv = gibbs_samples(be, &trainer.rbm, None, 100, 1000, None, &mut rng).map_err(s)?;
    save_grid(
        &samples,
        &pv.last,
        shape,
        10,
        norm_for(host.visible),
        zoom_for(shape),
    )
    .map_err(s)?;
    eprintln!(
        "wrote {}, {}, {}, {}",
        ckpt_path.display(),
        filters.display(),
        samples.display(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let binary = host.visible == UnitKind::Bernoulli && host.hidden == UnitKind::Bernoulli;
    let gaussian = host.visible == UnitKind::Gaussian && host.hidden == UnitKind::Bernoulli;
    if !args.no_eval && (binary || gaussian) {
        // The number a user trains for: the test log-likelihood, bracketed by
        // AIS and reverse AIS (exact when a layer is small enough).
        eval(
            be,
            &EvalArgs {
                ckpt: ckpt_path.clone(),
                data: args.data.clone(),
                runs: crate::estimate::ais::DEFAULT_RUNS,
                betas: None,
                seed: EVAL_SEED,
            },
        )?;
    }
    Ok(())
}

/// The default seed of `ebmkit eval` (and of the estimate closing `train`).
pub const EVAL_SEED: u64 = 11;

/// Pixel zoom of grid pictures: 2 for MNIST digits, more for small patches
/// so that a tile is at least ~48 pixels across.
fn zoom_for((h, w): (usize, usize)) -> u32 {
    (48 / h.max(w).max(1)).max(2) as u32
}

fn norm_for(visible: UnitKind) -> Norm {
    if visible.is_binary() {
        Norm::Unit
    } else {
        Norm::PerTile
    }
}

/// Writes the first `n` receptive fields (columns of W), each stretched to
/// its own range.
pub fn save_filters(rbm: &RbmHost, shape: (usize, usize), n: usize, path: &Path) -> Result<()> {
    let wt = rbm.w.transpose();
    let n = n.clamp(1, wt.rows);
    let sel = wt.select_rows(&(0..n).collect::<Vec<_>>())?;
    save_grid(path, &sel, shape, 10, Norm::PerTile, zoom_for(shape))
}

/// Visible means after the last sweep, and the snapshots if asked for.
pub struct GibbsOutput {
    pub last: HostMat,
    /// Per snapshot, the visible means of every chain.
    pub snapshots: Vec<HostMat>,
}

/// Runs `n` block-Gibbs chains for `steps` sweeps from `start` (else random
/// bits) and returns the visible means of the last sweep.
pub fn gibbs_samples<B: Fused>(
    be: &B,
    rbm: &Rbm<B>,
    start: Option<&HostMat>,
    n: usize,
    steps: usize,
    every: Option<usize>,
    rng: &mut RngStream,
) -> Result<GibbsOutput> {
    let nv = rbm.n_visible();
    let mut chains = Chains::new(be, n, nv, rbm.n_hidden())?;
    let v0 = match start {
        Some(h) => be.upload(h)?,
        None => {
            let half = be.upload(&HostMat::from_fn(n, nv, |_, _| 0.5))?;
            let mut v = be.zeros(n, nv)?;
            if rbm.visible.is_binary() {
                be.bernoulli(&half, &mut v, rng)?;
            } else {
                let zero = be.zeros(n, nv)?;
                be.gaussian(&zero, 1.0, &mut v, rng)?;
            }
            v
        }
    };
    chains.start_from(be, rbm, &v0, rng)?;
    let mut snapshots = Vec::new();
    if every.is_some() {
        snapshots.push(be.download(&v0)?);
    }
    for step in 1..=steps {
        chains.sweep(be, rbm, 1, rng)?;
        if let Some(e) = every {
            if step % e == 0 {
                snapshots.push(be.download(&chains.pv)?);
            }
        }
    }
    Ok(GibbsOutput {
        last: be.download(&chains.pv)?,
        snapshots,
    })
}

pub struct SampleArgs {
    pub ckpt: PathBuf,
    pub steps: usize,
    pub n: usize,
    pub from_data: bool,
    pub data: Option<PathBuf>,
    pub chain_every: Option<usize>,
    pub seed: u64,
    pub out: PathBuf,
}

/// The recipe stored in a checkpoint (needed to find its data).
fn ckpt_recipe(ck: &Checkpoint, path: &Path) -> Result<Recipe> {
    if ck.recipe.trim().is_empty() {
        return Err(Error::format(
            path,
            "the checkpoint holds no recipe, so its data set is unknown",
        ));
    }
    Recipe::parse(&ck.recipe, path)
}

/// Test rows of the checkpoint's data, preprocessed as in training
/// (stochastic binarisation: one fixed draw).
fn test_rows(
    ck: &Checkpoint,
    path: &Path,
    dir: Option<&Path>,
    n: Option<usize>,
) -> Result<(HostMat, HostMat, (usize, usize))> {
    let recipe = ckpt_recipe(ck, path)?;
    let d = load_data(&recipe, dir)?;
    if d.dim() != ck.rbm.n_visible() {
        return Err(Error::format(
            path,
            format!(
                "the model has {} visible units, the data {} pixels",
                ck.rbm.n_visible(),
                d.dim()
            ),
        ));
    }
    let prep = |x: &HostMat, seed: u64| -> Result<HostMat> {
        Ok(match recipe.data.binarize {
            Binarize::None => x.clone(),
            Binarize::Threshold => binarize_threshold(x, 0.5),
            Binarize::Stochastic | Binarize::Fixed => {
                binarize_stochastic(x, &mut RngStream::new(seed, HELDOUT_STREAM))?
            }
        })
    };
    let cut = |x: &HostMat| -> Result<HostMat> {
        match n {
            Some(n) => x.select_rows(&(0..n.min(x.rows)).collect::<Vec<_>>()),
            None => Ok(x.clone()),
        }
    };
    let test = prep(&cut(&d.test)?, recipe.train.seed ^ 1)?;
    let train = prep(&cut(&d.train)?, recipe.train.seed)?;
    Ok((test, train, d.image_shape))
}

/// `ebmkit sample`.
pub fn sample<B: Fused>(be: &B, a: &SampleArgs) -> std::result::Result<(), String> {
    if a.n == 0 {
        return Err("--n: must be at least 1".into());
    }
    if a.chain_every == Some(0) {
        return Err("--chain-every: must be at least 1".into());
    }
    let ck = Checkpoint::load(&a.ckpt).map_err(s)?;
    let rbm = Rbm::from_host(be, &ck.rbm).map_err(s)?;
    let mut shape = tile_shape(ck.rbm.n_visible());
    let start = if a.from_data {
        let (test, _, sh) = test_rows(&ck, &a.ckpt, a.data.as_deref(), Some(a.n)).map_err(s)?;
        shape = sh;
        Some(HostMat::from_fn(a.n, test.cols, |r, c| {
            test.get(r % test.rows, c)
        }))
    } else {
        None
    };
    let mut rng = RngStream::new(a.seed, 0x5341_4d50);
    let g = gibbs_samples(
        be,
        &rbm,
        start.as_ref(),
        a.n,
        a.steps,
        a.chain_every,
        &mut rng,
    )
    .map_err(s)?;
    let norm = norm_for(ck.rbm.visible);
    match a.chain_every {
        Some(_) => {
            // One grid row per chain, one column per snapshot.
            let cols = g.snapshots.len();
            let nv = g.last.cols;
            let tiles = HostMat::from_fn(a.n * cols, nv, |t, c| {
                g.snapshots[t % cols].get(t / cols, c)
            });
            save_grid(&a.out, &tiles, shape, cols, norm, zoom_for(shape)).map_err(s)?;
        }
        None => save_grid(&a.out, &g.last, shape, 10, norm, zoom_for(shape)).map_err(s)?,
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// `ebmkit viz filters`.
pub fn filters(ckpt: &Path, out: &Path, n: usize) -> std::result::Result<(), String> {
    let ck = Checkpoint::load(ckpt).map_err(s)?;
    let shape = if ck.rbm.n_visible() == 784 {
        (28, 28)
    } else {
        tile_shape(ck.rbm.n_visible())
    };
    save_filters(&ck.rbm, shape, n, out).map_err(s)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

pub struct EvalArgs {
    pub ckpt: PathBuf,
    pub data: Option<PathBuf>,
    pub runs: usize,
    pub betas: Option<usize>,
    pub seed: u64,
}

/// `ebmkit eval`: average log-probability of the test (and training) data.
pub fn eval<B: Fused>(be: &B, a: &EvalArgs) -> std::result::Result<(), String> {
    use crate::estimate::{ais, exact, mean_log_prob};
    let ck = Checkpoint::load(&a.ckpt).map_err(s)?;
    if ck.rbm.visible == UnitKind::Gaussian && ck.rbm.hidden == UnitKind::Bernoulli {
        return eval_gaussian(be, &ck, a).map_err(s);
    }
    if ck.rbm.visible != UnitKind::Bernoulli || ck.rbm.hidden != UnitKind::Bernoulli {
        return Err(format!(
            "{}: eval handles binary and Gaussian-binary RBMs, this one is {}-{}",
            a.ckpt.display(),
            ck.rbm.visible,
            ck.rbm.hidden
        ));
    }
    if a.runs == 0 {
        return Err("--runs: must be at least 1".into());
    }
    let (test, train, _) = test_rows(&ck, &a.ckpt, a.data.as_deref(), None).map_err(s)?;
    let w = be.upload(&ck.rbm.w).map_err(s)?;
    let b_v = be.upload(&ck.rbm.b_v).map_err(s)?;
    let b_h = be.upload(&ck.rbm.b_h).map_err(s)?;
    let test_d = be.upload(&test).map_err(s)?;
    let train_sub = train
        .select_rows(&(0..train.rows.min(10_000)).collect::<Vec<_>>())
        .map_err(s)?;
    let train_d = be.upload(&train_sub).map_err(s)?;
    let (nv, nh) = ck.rbm.w.shape();
    let report = |label: &str, lz: f64| -> Result<()> {
        let lt = mean_log_prob(be, &w, &b_v, &b_h, &test_d, lz)?;
        let ltr = mean_log_prob(be, &w, &b_v, &b_h, &train_d, lz)?;
        println!("{label}: log Z = {lz:.3}; mean log p: test {lt:.3}, train {ltr:.3} nats");
        Ok(())
    };
    if nv.min(nh) <= exact::MAX_ENUMERATED {
        let lz = exact::log_z(be, &w, &b_v, &b_h).map_err(s)?;
        report("exact", lz).map_err(s)?;
        return Ok(());
    }
    let schedule = eval_schedule(a).map_err(s)?;
    let base = ais::BaseRate::from_host(&train).map_err(s)?;
    let mut rng = RngStream::new(a.seed, 0x4149_5321);
    let fwd = ais::forward(be, &w, &b_v, &b_h, &base, &schedule, a.runs, &mut rng).map_err(s)?;
    report(&forward_label(&fwd), fwd.log_z).map_err(s)?;
    // Reverse AIS from approximate model samples: the persistent chains if
    // the checkpoint has them, else long Gibbs runs from test digits.
    let init = match stored_chains(&ck, a.runs).map_err(s)? {
        Some(v) => v,
        None => {
            let rbm = Rbm::from_host(be, &ck.rbm).map_err(s)?;
            let start = HostMat::from_fn(a.runs, nv, |r, c| test.get(r % test.rows, c));
            let g =
                gibbs_samples(be, &rbm, Some(&start), a.runs, 1000, None, &mut rng).map_err(s)?;
            let mut v = be.zeros(a.runs, nv).map_err(s)?;
            be.bernoulli(&be.upload(&g.last).map_err(s)?, &mut v, &mut rng)
                .map_err(s)?;
            be.download(&v).map_err(s)?
        }
    };
    let init_d = be.upload(&init).map_err(s)?;
    let rev = ais::reverse(be, &w, &b_v, &b_h, &base, &schedule, &init_d, &mut rng).map_err(s)?;
    report(&reverse_label(&rev), rev.log_z).map_err(s)?;
    Ok(())
}

/// The temperatures of `eval`'s AIS: `--betas n` evenly spaced, else the
/// standard 14,500 of Salakhutdinov & Murray.
fn eval_schedule(a: &EvalArgs) -> Result<crate::estimate::ais::Schedule> {
    use crate::estimate::ais::Schedule;
    match a.betas {
        Some(n) => Schedule::linear(n),
        None => Ok(Schedule::standard()),
    }
}

/// Reverse AIS starts from the checkpoint's persistent chains, cycled to
/// `runs` rows, when it has them (PCD and FPCD checkpoints).
fn stored_chains(ck: &Checkpoint, runs: usize) -> Result<Option<HostMat>> {
    match ck.state.get("chain_v") {
        Some(v) if v.cols == ck.rbm.n_visible() && v.rows > 0 => {
            let rows: Vec<usize> = (0..runs).map(|r| r % v.rows).collect();
            Ok(Some(v.select_rows(&rows)?))
        }
        _ => Ok(None),
    }
}

/// How `eval` names a forward AIS estimate.
fn forward_label(e: &crate::estimate::AisEstimate) -> String {
    format!(
        "AIS ({} runs, {} temperatures, ESS {:.1}; log Z in [{:.3}, {:.3}])",
        e.runs(),
        e.temperatures,
        e.ess,
        e.log_z_lower,
        e.log_z_upper
    )
}

/// How `eval` names a reverse AIS estimate.
fn reverse_label(e: &crate::estimate::AisEstimate) -> String {
    format!(
        "reverse AIS ({} runs from approximate model samples; log Z in [{:.3}, {:.3}])",
        e.runs(),
        e.log_z_lower,
        e.log_z_upper
    )
}

/// Mean `-F(v)` of the rows of `x`, in batches (f64 sum).
fn mean_neg_free_energy<B: Fused>(be: &B, rbm: &Rbm<B>, x: &HostMat) -> Result<f64> {
    use crate::energy::Scratch;
    let rows = crate::estimate::BATCH_ROWS.min(x.rows.max(1));
    let mut sc = Scratch::new(be, rows, rbm.n_visible(), rbm.n_hidden())?;
    let mut f = be.zeros(rows, 1)?;
    let mut total = 0.0f64;
    for start in (0..x.rows).step_by(rows) {
        let idx: Vec<usize> = (start..(start + rows).min(x.rows)).collect();
        let mut part = x.select_rows(&idx)?;
        let n = part.rows;
        if n < rows {
            // Pad the last batch with copies of its first row; they are not counted.
            let first = part.row(0).to_vec();
            part = HostMat::from_fn(
                rows,
                x.cols,
                |r, c| if r < n { part.get(r, c) } else { first[c] },
            );
        }
        let xd = be.upload(&part)?;
        rbm.free_energy(be, &xd, &mut sc, &mut f)?;
        let fh = be.download(&f)?;
        total -= fh.data[..n].iter().map(|&v| v as f64).sum::<f64>();
    }
    Ok(total / x.rows.max(1) as f64)
}

/// `eval` of a Gaussian-visible, binary-hidden RBM: exact by enumerating
/// the hidden layer when it has at most 25 units, else AIS and reverse AIS
/// from a base model with the same variances and the training means.
fn eval_gaussian<B: Fused>(be: &B, ck: &Checkpoint, a: &EvalArgs) -> Result<()> {
    use crate::estimate::{ais, exact};
    let (test, train, _) = test_rows(ck, &a.ckpt, a.data.as_deref(), None)?;
    let rbm = Rbm::from_host(be, &ck.rbm)?;
    let var = rbm
        .var_v
        .as_ref()
        .ok_or_else(|| Error::value("eval", "a Gaussian-visible model without its variances"))?;
    let train_sub = train.select_rows(&(0..train.rows.min(10_000)).collect::<Vec<_>>())?;
    let ft = mean_neg_free_energy(be, &rbm, &test)?;
    let ftr = mean_neg_free_energy(be, &rbm, &train_sub)?;
    let d = test.cols as f64;
    let report = |label: &str, lz: f64| {
        let (lt, ltr) = (ft - lz, ftr - lz);
        println!(
            "{label}: log Z = {lz:.3}; mean log p: test {lt:.3}, train {ltr:.3} nats ({:.4} / {:.4} nats per dimension)",
            lt / d,
            ltr / d
        );
    };
    let (nv, nh) = (ck.rbm.n_visible(), ck.rbm.n_hidden());
    if nh <= exact::MAX_ENUMERATED {
        let lz = exact::log_z_gaussian_visible(be, &rbm.w, &rbm.b_v, &rbm.b_h, &var.log_var)?;
        report("exact", lz);
        return Ok(());
    }
    if a.runs == 0 {
        return Err(Error::value("--runs", "must be at least 1"));
    }
    let schedule = eval_schedule(a)?;
    let z = be.download(&var.log_var)?.data;
    let base = ais::GaussianBase::from_host(&train, &z)?;
    let mut rng = RngStream::new(a.seed, 0x4149_5321);
    let fwd = ais::forward(
        be, &rbm.w, &rbm.b_v, &rbm.b_h, &base, &schedule, a.runs, &mut rng,
    )?;
    report(&forward_label(&fwd), fwd.log_z);
    // Reverse AIS from the persistent chains, else 1000-step Gibbs chains from test rows.
    let init = match stored_chains(ck, a.runs)? {
        Some(v) => v,
        None => {
            let start = HostMat::from_fn(a.runs, nv, |r, c| test.get(r % test.rows, c));
            let mut chains = Chains::new(be, a.runs, nv, nh)?;
            chains.start_from(be, &rbm, &be.upload(&start)?, &mut rng)?;
            chains.sweep(be, &rbm, 1000, &mut rng)?;
            be.download(&chains.v)?
        }
    };
    let init_d = be.upload(&init)?;
    let rev = ais::reverse(
        be, &rbm.w, &rbm.b_v, &rbm.b_h, &base, &schedule, &init_d, &mut rng,
    )?;
    report(&reverse_label(&rev), rev.log_z);
    Ok(())
}
