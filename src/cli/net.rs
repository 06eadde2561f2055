//! Nets in the CLI: `ebmkit train` of a `kind = "net"` recipe (with
//! `--init STACK`, or `ebmkit finetune STACK --recipe R`: the supervised
//! handoff), its closing test score, and `ebmkit eval` of a net.

use super::train::{report, train as run_training, Setup, TrainArgs};
use clap::Args;
use ebmkit::backend::Fused;
use ebmkit::data::{prepare::head, Dataset};
use ebmkit::io::recipe::Recipe;
use ebmkit::models::dbm::{Dbm, DbmHost, MeanField};
use ebmkit::models::net::{export_torch, one_hot, Net, NetHost, Output};
use ebmkit::models::AnyModel;
use ebmkit::train::net::NetTrainer;
use ebmkit::viz::{receptive_fields, save_grid, save_scatter, zoom_for, Norm};
use ebmkit::{Error, HostMat};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct FinetuneArgs {
    /// The pretrained checkpoint (rbm, autoencoder, stack or net) whose
    /// layers start the net.
    pub stack: PathBuf,
    /// The net recipe (`kind = "net"`).
    #[arg(long)]
    pub recipe: PathBuf,
    /// Data folder for `source = "mnist"` (default: $EBMKIT_DATA, else ../shared/data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output folder (default: out/<recipe name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train until this many epochs are completed (default: the recipe's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Resume from a checkpoint written by an earlier `finetune`.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress bar (one line per epoch instead).
    #[arg(long)]
    pub quiet: bool,
}

impl FinetuneArgs {
    pub fn train_args(&self) -> TrainArgs {
        TrainArgs {
            recipe: self.recipe.clone(),
            data: self.data.clone(),
            out: self.out.clone(),
            epochs: self.epochs,
            resume: self.resume.clone(),
            quiet: self.quiet,
            no_eval: false,
            init: Some(self.stack.clone()),
        }
    }
}

/// The test score of a net: error rate of a classifier, squared
/// reconstruction error of a deep auto-encoder.
pub fn test_line<B: Fused>(be: &B, host: &NetHost, data: &Dataset) -> ebmkit::Result<String> {
    let net = Net::from_host(be, host)?;
    let x = &data.test;
    let t = match host.output {
        Output::Softmax => {
            let labels = data
                .test_labels
                .as_ref()
                .ok_or_else(|| Error::value("data.source", "the test set has no labels"))?;
            let classes = host.sizes().last().copied().unwrap_or(0);
            one_hot(labels, classes, "test labels")?
        }
        _ => x.clone(),
    };
    let s = net.evaluate(be, x, &t)?;
    Ok(match s.error_rate {
        Some(e) => format!(
            "test: error {:.2} % ({} of {} digits), cross-entropy {:.4}",
            100.0 * e,
            (e * x.rows as f64).round(),
            x.rows,
            s.loss
        ),
        None => format!(
            "test: squared reconstruction error {:.3} per example, loss {:.3} ({} rows)",
            s.squared_error.unwrap_or(f64::NAN),
            s.loss,
            x.rows
        ),
    })
}

pub fn train<B: Fused>(be: &B, args: &TrainArgs, s: &Setup) -> ebmkit::Result<()> {
    let (trainer, curves) = run_training(be, args, s, |t: &NetTrainer<B>| {
        let spec = t.recipe.net().ok();
        let sizes: Vec<String> = t
            .objective
            .net
            .sizes()
            .iter()
            .map(|w| w.to_string())
            .collect();
        let from = spec
            .and_then(|n| n.init.as_ref())
            .map(|p| format!("from {}", p.display()))
            .unwrap_or_else(|| "randomly initialised".into());
        format!(
            "{} net {}, {from}, {:?}",
            sizes.join("-"),
            t.objective.net.output.name(),
            t.recipe.train.optimizer
        )
    })?;
    let o = &trainer.objective;
    let best = o.best(be)?;
    let best_path = s.out.join("best.safetensors");
    let manifest = export_torch(&best, &trainer.recipe.to_toml()?, &best_path)?;
    let mut files = vec![curves[0].clone(), best_path, manifest];
    let (h, wd) = s.data.image_shape;
    let shape = s.shape(best.sizes()[0].min(h * wd));
    let filters = s.out.join("filters.png");
    // A DBM's net also reads appended posteriors: its filters are the
    // weights from the data.
    let w0 = &best.layers[0].w;
    let w0 = match w0.rows > h * wd {
        true => w0.select_rows(&(0..h * wd).collect::<Vec<_>>())?,
        false => w0.clone(),
    };
    let w = receptive_fields(&w0, 100)?;
    save_grid(&filters, &w, shape, 10, Norm::PerTile, zoom_for(shape))?;
    files.push(filters);
    if best.output != Output::Softmax {
        files.push(reconstructions(be, &best, &s.data.test, shape, &s.out)?);
        files.extend(codes(be, &best, &s.data, &s.out)?);
    }
    files.extend_from_slice(&curves[1..]);
    report(&files);
    if let Some((epoch, _)) = o.best_epoch() {
        eprintln!("best validation epoch: {epoch} of {}", trainer.epoch);
    }
    if !args.no_eval {
        println!("{}", test_line(be, &best, &s.data)?);
    }
    Ok(())
}

/// Test inputs above their reconstructions, 30 of them.
fn reconstructions<B: Fused>(
    be: &B,
    net: &NetHost,
    test: &HostMat,
    shape: (usize, usize),
    out: &Path,
) -> ebmkit::Result<PathBuf> {
    let x = head(test, 30)?;
    let s = Net::from_host(be, net)?.evaluate(be, &x, &x)?;
    let bands = super::train::side_by_side(&x, None, &s.out, 10)?;
    let path = out.join("reconstructions.png");
    let unit = net.output == Output::Sigmoid;
    save_grid(
        &path,
        &bands,
        shape,
        10,
        Norm::for_values(unit),
        zoom_for(shape),
    )?;
    Ok(path)
}

/// For a deep auto-encoder with a 2-unit bottleneck, the codes of the
/// test digits coloured by label (`codes.png`).
fn codes<B: Fused>(
    be: &B,
    net: &NetHost,
    data: &Dataset,
    out: &Path,
) -> ebmkit::Result<Option<PathBuf>> {
    let half = net.layers.len() / 2;
    let (Some(labels), true) = (&data.test_labels, net.sizes()[half] == 2) else {
        return Ok(None);
    };
    let encoder = NetHost {
        layers: net.layers[..half].to_vec(),
        output: Output::Linear,
    };
    let z = Net::from_host(be, &encoder)?.forward(be, &data.test)?;
    let path = out.join("codes.png");
    save_scatter(&path, "2-D codes of the test digits, by label", &z, labels)?;
    Ok(Some(path))
}

/// Mean field for the posteriors a DBM's net reads beside the data.
const POSTERIOR_MF: MeanField = MeanField {
    iters: 50,
    tol: 1e-5,
    damping: 0.0,
};

/// The DBM a net recipe starts from, if its `init` is one.
fn dbm_init(recipe: &Recipe) -> ebmkit::Result<Option<DbmHost>> {
    let Some(path) = recipe.net().ok().and_then(|n| n.init.as_ref()) else {
        return Ok(None);
    };
    Ok(match AnyModel::load(path)?.0 {
        AnyModel::Dbm(h) => Some(h),
        _ => None,
    })
}

/// A net started from a DBM reads every row with the DBM's mean-field
/// posterior of h² appended (Salakhutdinov & Hinton 2009): the training,
/// validation and test rows of `s` are extended so, once.
pub(super) fn with_dbm_inputs<B: Fused>(be: &B, mut s: Setup) -> ebmkit::Result<Setup> {
    let Some(host) = dbm_init(&s.recipe)? else {
        return Ok(s);
    };
    let dbm = Dbm::from_host(be, &host)?;
    eprintln!("appending the DBM's mean-field posteriors of h2 to every row");
    s.data.train = dbm.with_posteriors(be, &s.data.train, POSTERIOR_MF)?;
    s.data.test = dbm.with_posteriors(be, &s.data.test, POSTERIOR_MF)?;
    if let Some(v) = &mut s.valid {
        v.x = dbm.with_posteriors(be, &v.x, POSTERIOR_MF)?;
    }
    Ok(s)
}

/// `ebmkit eval` of a net: its test score on its recipe's data (with a
/// DBM's posteriors appended when the net was started from one).
pub fn eval<B: Fused>(
    be: &B,
    host: &NetHost,
    recipe: &Recipe,
    dir: Option<&Path>,
) -> ebmkit::Result<()> {
    let mut data = recipe.data.load(dir, recipe.train.seed)?;
    if let Some(h) = dbm_init(recipe)? {
        data.test = Dbm::from_host(be, &h)?.with_posteriors(be, &data.test, POSTERIOR_MF)?;
    }
    if data.test.cols != host.sizes()[0] {
        return Err(Error::shape(
            "ebmkit eval",
            format!(
                "the net reads {} values per row, the data have {}",
                host.sizes()[0],
                data.test.cols
            ),
        ));
    }
    println!("{}", test_line(be, host, &data)?);
    Ok(())
}
