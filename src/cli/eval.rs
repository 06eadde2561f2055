//! `ebmkit eval`: for an RBM the mean log-probability of the test (and
//! training) data of a checkpoint's own data set, prepared as its training
//! run saw it; for an auto-encoder the reconstruction error of both; for a
//! stack of RBMs the DBN's variational lower bound on it.

use clap::Args;
use ebmkit::autodiff::Activation;
use ebmkit::backend::Fused;
use ebmkit::data::EvalData;
use ebmkit::estimate::rbm::{evaluate, EvalOptions, EVAL_SEED};
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::dbn::Dbn;
use ebmkit::models::{AeHost, AnyModel, AutoEncoder, RbmHost};
use ebmkit::{Error, RngStream};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EvalArgs {
    pub ckpt: PathBuf,
    /// Data folder for the full MNIST or the photographs (when the
    /// checkpoint's recipe uses them).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// AIS runs.
    #[arg(long, default_value_t = ebmkit::estimate::rbm::ais::DEFAULT_RUNS)]
    pub runs: usize,
    /// AIS intermediate distributions (the standard 14,500 schedule if
    /// omitted; for a DBM, 20,000 in the same three stages, and n given
    /// keeps those stages' shares).
    #[arg(long)]
    pub betas: Option<usize>,
    #[arg(long, default_value_t = EVAL_SEED)]
    pub seed: u64,
    /// DBNs: recognition passes per row for the bound's expectation.
    #[arg(long, default_value_t = ebmkit::estimate::dbn::DEFAULT_SAMPLES)]
    pub samples: usize,
}

impl EvalArgs {
    /// The evaluation that closes `ebmkit train`: the defaults.
    pub fn closing(ckpt: PathBuf, data: Option<PathBuf>) -> EvalArgs {
        let d = EvalOptions::default();
        EvalArgs {
            ckpt,
            data,
            runs: d.runs,
            betas: d.betas,
            seed: d.seed,
            samples: ebmkit::estimate::dbn::DEFAULT_SAMPLES,
        }
    }
}

/// The recipe stored in a checkpoint (it names the data set).
pub(super) fn stored_recipe(ck: &Checkpoint, path: &Path) -> ebmkit::Result<Recipe> {
    if ck.recipe.trim().is_empty() {
        return Err(Error::format(
            path,
            "the checkpoint holds no recipe, so its data set is unknown",
        ));
    }
    Recipe::parse(&ck.recipe, path)
}

/// The checkpoint's data as its training run saw them, the first `n` rows
/// of each split (all if None), and the shape of a row as an image.
pub fn checkpoint_data(
    ck: &Checkpoint,
    path: &Path,
    dir: Option<&Path>,
    n: Option<usize>,
) -> ebmkit::Result<(EvalData, (usize, usize))> {
    let recipe = stored_recipe(ck, path)?;
    let d = recipe.data.load(dir, recipe.train.seed)?;
    let how = (recipe.data.binarize, recipe.train.seed);
    Ok((EvalData::prepare(&d.train, &d.test, how, n)?, d.image_shape))
}

/// An error unless rows of the checkpoint's data have `n` values.
fn check_width(a: &EvalArgs, data: &EvalData, n: usize) -> ebmkit::Result<()> {
    if data.test.cols != n {
        return Err(Error::format(
            &a.ckpt,
            format!(
                "the model has {n} visible units, the data {} values per row",
                data.test.cols
            ),
        ));
    }
    Ok(())
}

pub fn run<B: Fused>(be: &B, a: &EvalArgs) -> ebmkit::Result<()> {
    let (model, ck) = AnyModel::load(&a.ckpt)?;
    run_loaded(be, a, model, &ck)
}

/// The evaluation of a model already in memory with its checkpoint
/// (`a.ckpt` names it in errors): what closes `ebmkit train`, which scores
/// the model it trained rather than whatever the file holds by then.
pub fn run_loaded<B: Fused>(
    be: &B,
    a: &EvalArgs,
    model: AnyModel,
    ck: &Checkpoint,
) -> ebmkit::Result<()> {
    if let AnyModel::Stack(s) = &model {
        // Only a DBN has a test score of its own.
        ebmkit::models::dbn::check(s).map_err(|e| {
            Error::value(
                "ebmkit eval",
                format!(
                    "{}: {e}; a stack that is not a DBN has no test score of its own: fine-tune it (ebmkit finetune) or evaluate one layer (layers/layer-k.safetensors)",
                    a.ckpt.display()
                ),
            )
        })?;
    }
    if let AnyModel::Net(host) = &model {
        // A net's score needs the labels, which EvalData does not carry.
        let recipe = stored_recipe(ck, &a.ckpt)?;
        return super::net::eval(be, host, &recipe, a.data.as_deref());
    }
    let (data, _) = checkpoint_data(ck, &a.ckpt, a.data.as_deref(), None)?;
    match model {
        AnyModel::Rbm(host) => rbm(be, a, &host, ck, &data),
        AnyModel::Autoencoder(host) => autoencoder(be, a, &host, &data),
        AnyModel::Stack(s) => dbn(be, a, &s, &data),
        AnyModel::Dbm(host) => dbm(be, a, &host, ck, &data),
        AnyModel::Sparse(host) => sparse(be, a, &host, ck, &data),
        AnyModel::Lista(host) => lista(be, a, &host, ck, &data),
        AnyModel::Net(_) => unreachable!("handled above"),
    }
}

/// The reconstruction error and loss of clean test and training rows.
fn autoencoder<B: Fused>(
    be: &B,
    a: &EvalArgs,
    host: &AeHost,
    data: &EvalData,
) -> ebmkit::Result<()> {
    check_width(a, data, host.arch.n_visible)?;
    let ae = AutoEncoder::from_host(be, host)?;
    let loss = match host.arch.decoder {
        Activation::Sigmoid => "cross-entropy",
        _ => "squared error",
    };
    for (name, x) in [("test", &data.test), ("train", &data.train)] {
        // Clean inputs: nothing is drawn.
        let r = ae.reconstruct(be, x, None, &mut RngStream::new(a.seed, 0))?;
        println!(
            "{name}: squared reconstruction error {:.3} per example, {loss} {:.3} ({} rows)",
            r.squared_error, r.loss, x.rows
        );
    }
    Ok(())
}

/// The test log-likelihood: exact, or AIS and reverse AIS.
fn rbm<B: Fused>(
    be: &B,
    a: &EvalArgs,
    host: &RbmHost,
    ck: &Checkpoint,
    data: &EvalData,
) -> ebmkit::Result<()> {
    check_width(a, data, host.n_visible())?;
    let opts = EvalOptions {
        runs: a.runs,
        betas: a.betas,
        seed: a.seed,
    };
    let chains = ck.state.get("chain_v");
    if let Some(c) = chains {
        // They start reverse AIS: a NaN among them is a NaN upper bound.
        ebmkit::io::checkpoint::finite(&a.ckpt, "state.chain_v", c, 2)?;
    }
    for line in evaluate(be, host, data, chains, &opts)? {
        println!("{line}");
    }
    Ok(())
}

/// The DBN's lower bound on the mean test (and training) log-probability,
/// for each estimate of the top RBM's log Z.
fn dbn<B: Fused>(
    be: &B,
    a: &EvalArgs,
    stack: &ebmkit::models::StackHost,
    data: &EvalData,
) -> ebmkit::Result<()> {
    let dbn = Dbn::from_stack(be, stack)?;
    check_width(a, data, dbn.n_visible())?;
    if let Some(v) = data.test.data.iter().find(|&&v| v != 0.0 && v != 1.0) {
        return Err(Error::format(
            &a.ckpt,
            format!("the DBN bound is for binary data; the recipe's data (data.binarize) gives values such as {v}"),
        ));
    }
    let opts = EvalOptions {
        runs: a.runs,
        betas: a.betas,
        seed: a.seed,
    };
    for l in ebmkit::estimate::dbn::evaluate(be, &dbn, data, &opts, a.samples)? {
        println!("{}", ebmkit::estimate::dbn::describe(&l));
    }
    Ok(())
}

/// The DBM's variational bound with its log Z (exact or AIS).
fn dbm<B: Fused>(
    be: &B,
    a: &EvalArgs,
    host: &ebmkit::models::DbmHost,
    ck: &Checkpoint,
    data: &EvalData,
) -> ebmkit::Result<()> {
    use ebmkit::estimate::dbm as est;
    let dbm = ebmkit::models::Dbm::from_host(be, host)?;
    check_width(a, data, host.widths()[0])?;
    if let Some(v) = data.test.data.iter().find(|&&v| v != 0.0 && v != 1.0) {
        return Err(Error::format(
            &a.ckpt,
            format!("the DBM bound is for binary data; the recipe's data (data.binarize) gives values such as {v}"),
        ));
    }
    let schedule = match a.betas {
        None => est::default_schedule(),
        Some(n) if n >= 40 => {
            ebmkit::estimate::Schedule::three_stage(n / 20, n / 5, n - n / 20 - n / 5)?
        }
        Some(n) => ebmkit::estimate::Schedule::linear(n)?,
    };
    let opts = est::DbmEvalOptions {
        runs: a.runs,
        schedule,
        reverse_from: particles(ck, &a.ckpt, &host.widths(), a.runs)?,
        seed: a.seed,
        mean_field: est::EVAL_MEAN_FIELD,
    };
    let (lls, mf) = est::evaluate(be, &dbm, data, &opts)?;
    if mf.unconverged > 0 {
        eprintln!(
            "warning: mean field stopped at its cap of {} sweeps in {} of {} blocks of rows \
             (largest mean change in the last sweep {:.2e}, tolerance {:.0e})",
            opts.mean_field.iters, mf.unconverged, mf.blocks, mf.max_residual, opts.mean_field.tol
        );
    }
    for l in &lls {
        println!("{}", est::describe(l));
    }
    Ok(())
}

/// A DBM checkpoint's persistent particles (`chains.s_l`), cycled to `runs`
/// rows: the reverse-AIS starts; None when it has none.
fn particles(
    ck: &Checkpoint,
    path: &Path,
    widths: &[usize],
    runs: usize,
) -> ebmkit::Result<Option<Vec<ebmkit::HostMat>>> {
    let Some(first) = ck.state.get("chains.s_0") else {
        return Ok(None);
    };
    let rows = first.rows;
    let mut out = Vec::new();
    for (l, &n) in widths.iter().enumerate() {
        let s = ck.state_tensor(path, &format!("chains.s_{l}"), (rows, n))?;
        let idx: Vec<usize> = (0..runs).map(|r| r % rows.max(1)).collect();
        out.push(s.select_rows(&idx)?);
    }
    Ok(Some(out))
}

/// The energy `½‖x − zD‖² + λ‖z‖₁` of the optimal codes of test and
/// training rows (inference as the recipe's `eval_tol` / `eval_iters` say),
/// and under PSD that of the encoder's codes alone.
fn sparse<B: Fused>(
    be: &B,
    a: &EvalArgs,
    host: &ebmkit::models::SparseHost,
    ck: &Checkpoint,
    data: &EvalData,
) -> ebmkit::Result<()> {
    check_width(a, data, host.dim())?;
    let recipe = stored_recipe(ck, &a.ckpt)?;
    let inf = ebmkit::train::sparse::eval_inference(recipe.sparse()?);
    for (name, x) in [("test", &data.test), ("train", &data.train)] {
        let s = ebmkit::models::sparse::score(be, host, x, &inf)?;
        if let Some(w) = s.report.warning(&inf) {
            eprintln!("warning ({name}): {w}");
        }
        let enc = s
            .encoder_energy
            .map(|e| format!("; PSD encoder's codes alone: {e:.5}"))
            .unwrap_or_default();
        println!(
            "{name}: energy of the optimal codes {:.5} per example ({:.1} % non-zero, residual {:.1e}){enc} ({} rows)",
            s.energy,
            100.0 * s.nonzero,
            s.report.residual.unwrap_or(f64::NAN),
            x.rows
        );
    }
    Ok(())
}

/// A LISTA network's codes of the test and training rows against the
/// optimal codes of its dictionary (inferred as its recipe's `target_tol`
/// says): the code prediction error and the energy gap.
fn lista<B: Fused>(
    be: &B,
    a: &EvalArgs,
    host: &ebmkit::models::ListaHost,
    ck: &Checkpoint,
    data: &EvalData,
) -> ebmkit::Result<()> {
    use ebmkit::models::sparse::{lasso_objective, lista::relative_error, Inference, Lista};
    check_width(a, data, host.dict.cols)?;
    let recipe = stored_recipe(ck, &a.ckpt)?;
    let spec = recipe.lista()?;
    let sc = ebmkit::models::SparseHost {
        dict: host.dict.clone(),
        lambda: host.lambda,
        nonneg: false,
        encoder: None,
    };
    let inf = Inference::converge(host.lambda, spec.target_tol, spec.target_iters);
    let net = Lista::from_host(be, host.arch(), &host.params)?;
    for (name, x) in [("test", &data.test), ("train", &data.train)] {
        let opt = ebmkit::models::sparse::score(be, &sc, x, &inf)?;
        let z = net.encode(be, x, 500)?;
        let e = lasso_objective(x, &host.dict, &z, host.lambda as f64)?;
        println!(
            "{name}: LISTA ({} steps) code prediction error {:.5}, energy {:.5} against the optimum's {:.5} (gap {:.5}) ({} rows)",
            host.steps,
            relative_error(&z, &opt.codes)?,
            e,
            opt.energy,
            e - opt.energy,
            x.rows
        );
    }
    Ok(())
}
