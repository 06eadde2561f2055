//! `ebmkit eval`: the mean log-probability of the test (and training) data
//! of a checkpoint's own data set, prepared as its training run saw it.

use clap::Args;
use ebmkit::backend::Fused;
use ebmkit::data::EvalData;
use ebmkit::estimate::rbm::{evaluate, EvalOptions, EVAL_SEED};
use ebmkit::io::checkpoint::Checkpoint;
use ebmkit::io::recipe::Recipe;
use ebmkit::models::AnyModel;
use ebmkit::Error;
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
    /// AIS intermediate distributions (the standard 14,500 schedule if omitted).
    #[arg(long)]
    pub betas: Option<usize>,
    #[arg(long, default_value_t = EVAL_SEED)]
    pub seed: u64,
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
        }
    }
}

/// The recipe stored in a checkpoint (it names the data set).
fn stored_recipe(ck: &Checkpoint, path: &Path) -> ebmkit::Result<Recipe> {
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

pub fn run<B: Fused>(be: &B, a: &EvalArgs) -> ebmkit::Result<()> {
    let (AnyModel::Rbm(host), ck) = AnyModel::load(&a.ckpt)?;
    let (data, _) = checkpoint_data(&ck, &a.ckpt, a.data.as_deref(), None)?;
    if data.test.cols != host.n_visible() {
        return Err(Error::format(
            &a.ckpt,
            format!(
                "the model has {} visible units, the data {} values per row",
                host.n_visible(),
                data.test.cols
            ),
        ));
    }
    let opts = EvalOptions {
        runs: a.runs,
        betas: a.betas,
        seed: a.seed,
    };
    for line in evaluate(be, &host, &data, ck.state.get("chain_v"), &opts)? {
        println!("{line}");
    }
    Ok(())
}
