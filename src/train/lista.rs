//! Training LISTA: the [`Objective`] of `kind = "lista"` for the one
//! training loop. The rows come with their optimal codes as targets
//! ([`targets`] infers them once, before training); per minibatch one
//! forward and backward pass of the unrolled network's graph and one
//! optimiser step. The monitors report the code prediction error
//! `‖h_T − h*‖² / ‖h*‖²` and the energy gap on fixed training and held-out
//! subsets.

use std::path::Path;

use crate::backend::Fused;
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{ListaSpec, Recipe};
use crate::models::sparse::lista::relative_error;
use crate::models::sparse::{
    encode_all, lasso_objective, Inference, Lista, ListaArch, ListaHost, Solver, SparseHost,
};
use crate::models::AnyModel;
use crate::rng::RngStream;
use crate::train::backprop::Backprop;
use crate::train::fit::{Batch, Objective, Resident, Step, Trainer};
use crate::train::history::{CurveSpec, EpochRecord};
use crate::units::UnitKind;
use crate::viz::Color;

/// A training run of LISTA.
pub type ListaTrainer<B> = Trainer<B, ListaObjective<B>>;

/// The sparse-coding model a LISTA recipe names.
pub fn dictionary(spec: &ListaSpec) -> Result<SparseHost> {
    match AnyModel::load(&spec.dictionary)?.0 {
        AnyModel::Sparse(h) if h.nonneg => Err(Error::value(
            "model.dictionary",
            format!(
                "{} codes non-negatively; LISTA's shrinkage is the signed one",
                spec.dictionary.display()
            ),
        )),
        AnyModel::Sparse(h) => Ok(h),
        other => Err(Error::value(
            "model.dictionary",
            format!(
                "{} holds a {} model, not sparse coding (kind = \"sparse\")",
                spec.dictionary.display(),
                crate::models::AnyModel::kind(&other)
            ),
        )),
    }
}

/// The optimal codes of the rows of `x` for the recipe's dictionary: the
/// targets LISTA trains on.
pub fn targets<B: Fused>(be: &B, recipe: &Recipe, x: &HostMat) -> Result<HostMat> {
    let spec = recipe.lista()?;
    let host = dictionary(spec)?;
    if x.cols != host.dim() {
        return Err(Error::shape(
            "LISTA targets",
            format!(
                "rows of {} values; the atoms of {} have {}",
                x.cols,
                spec.dictionary.display(),
                host.dim()
            ),
        ));
    }
    let inf = Inference {
        nonneg: host.nonneg,
        ..Inference::converge(host.lambda, spec.target_tol, spec.target_iters)
    };
    let d = be.upload(&host.dict)?;
    let mut solver = Solver::new(be, &d, x.rows.clamp(1, 500))?;
    let (z, rep) = encode_all(be, &mut solver, &d, x, &inf)?;
    if let Some(w) = rep.warning(&inf) {
        eprintln!("warning: LISTA targets: {w}");
    }
    Ok(z)
}

/// A LISTA network with its planned graph, optimiser and monitors.
pub struct ListaObjective<B: Fused> {
    pub net: Lista<B>,
    bp: Backprop<B>,
    dict: HostMat,
    lambda: f32,
    /// (name, rows, their optimal codes, the codes' energy).
    probes: Vec<(&'static str, HostMat, HostMat, f64)>,
}

impl<B: Fused> ListaObjective<B> {
    fn assemble(be: &B, recipe: &Recipe, host: &ListaHost, data: &Resident<B>) -> Result<Self> {
        let arch = host.arch();
        if arch.dim != data.cols() {
            return Err(Error::shape(
                "LISTA",
                format!(
                    "the data have {} values per row, the dictionary {}",
                    data.cols(),
                    arch.dim
                ),
            ));
        }
        let t = data.prepared.targets.as_ref().ok_or_else(|| {
            Error::value(
                "LISTA",
                "it trains on the optimal codes of its rows: pass them as targets \
                 (ebmkit::train::lista::targets)",
            )
        })?;
        let g = arch.graph(data.batch_size())?;
        let bp = Backprop::new(be, &g.graph, (g.loss, &[]), &recipe.train)?;
        let p = &data.prepared;
        let energy =
            |x: &HostMat, z: &HostMat| lasso_objective(x, &host.dict, z, host.lambda as f64);
        let mut probes = vec![(
            "train",
            p.monitor_train.clone(),
            t.monitor_train.clone(),
            energy(&p.monitor_train, &t.monitor_train)?,
        )];
        if let (Some(h), Some(ht)) = (&p.monitor_heldout, &t.monitor_heldout) {
            probes.push(("heldout", h.clone(), ht.clone(), energy(h, ht)?));
        }
        Ok(ListaObjective {
            net: Lista::from_host(be, arch, &host.params)?,
            bp,
            dict: host.dict.clone(),
            lambda: host.lambda,
            probes,
        })
    }

    /// The network and its dictionary in host memory.
    pub fn to_host(&self, be: &B) -> Result<ListaHost> {
        let p = self.net.to_host(be)?;
        Ok(ListaHost {
            steps: self.net.arch.steps,
            params: [p[0].clone(), p[1].clone(), p[2].clone()],
            dict: self.dict.clone(),
            lambda: self.lambda,
        })
    }
}

impl<B: Fused> Objective<B> for ListaObjective<B> {
    fn new(be: &B, recipe: &Recipe, data: &mut Resident<B>, _rng: &mut RngStream) -> Result<Self> {
        let spec = recipe.lista()?;
        let sc = dictionary(spec)?;
        let d = be.upload(&sc.dict)?;
        let l = Solver::new(be, &d, 1)?.lipschitz();
        let arch = ListaArch {
            dim: sc.dim(),
            atoms: sc.atoms(),
            steps: spec.steps,
        };
        let host = ListaHost {
            steps: spec.steps,
            params: arch.ista_params(&sc.dict, sc.lambda, l)?,
            dict: sc.dict,
            lambda: sc.lambda,
        };
        Self::assemble(be, recipe, &host, data)
    }

    fn resume(
        be: &B,
        recipe: &Recipe,
        ck: &Checkpoint,
        origin: &Path,
        data: &Resident<B>,
    ) -> Result<Self> {
        let host: ListaHost = ck.model(origin)?;
        if host.steps != recipe.lista()?.steps {
            return Err(Error::format(
                origin,
                format!(
                    "the network has {} steps, the recipe asks for {}",
                    host.steps,
                    recipe.lista()?.steps
                ),
            ));
        }
        let mut o = Self::assemble(be, recipe, &host, data)?;
        o.bp.import(be, (ck, origin), ck.epoch * data.batches_per_epoch() as u64)?;
        Ok(o)
    }

    fn check_data(_recipe: &Recipe, x: &HostMat, what: &str) -> Result<()> {
        UnitKind::Gaussian.check_values(x, what)
    }

    fn step(&mut self, be: &B, batch: Batch<'_, B>, at: Step, rng: &mut RngStream) -> Result<()> {
        let t = batch
            .t
            .ok_or_else(|| Error::value("LISTA", "a batch came without its target codes"))?;
        self.bp.pass(be, &self.net.bound(), &[batch.x, t], rng)?;
        self.bp.note_loss(be)?;
        self.bp.update(be, &mut self.net.params, at)
    }

    fn first_non_finite(&self, be: &B) -> Result<Option<String>> {
        Ok(self.net.first_non_finite(be)?.map(str::to_string))
    }

    fn monitor(&mut self, be: &B, rec: &mut EpochRecord) -> Result<()> {
        rec.metrics
            .insert("loss".into(), self.bp.take_mean_loss(be)?);
        for (name, x, t, e_star) in &self.probes {
            let z = self.net.encode(be, x, 500)?;
            rec.metrics
                .insert(format!("error_{name}"), relative_error(&z, t)?);
            let e = lasso_objective(x, &self.dict, &z, self.lambda as f64)?;
            rec.metrics.insert(format!("gap_{name}"), e - e_star);
        }
        Ok(())
    }

    fn checkpoint(&self, be: &B) -> Result<Checkpoint> {
        let mut c = Checkpoint::of_model(&self.to_host(be)?)?;
        self.bp.export(be, &mut c)?;
        Ok(c)
    }

    fn describe(&self, r: &EpochRecord) -> String {
        let o = |k: &str| {
            r.metric(k)
                .map(|v| format!("{v:.5}"))
                .unwrap_or_else(|| "-".into())
        };
        format!(
            "epoch {} loss {} code error {} / {} energy gap {} / {} (train / held-out, {:.2} s)",
            r.epoch,
            o("loss"),
            o("error_train"),
            o("error_heldout"),
            o("gap_train"),
            o("gap_heldout"),
            r.seconds
        )
    }

    fn curves(&self) -> (&'static [CurveSpec], &'static [&'static str]) {
        (CURVES, COLUMNS)
    }
}

const COLUMNS: &[&str] = &[
    "loss",
    "error_train",
    "error_heldout",
    "gap_train",
    "gap_heldout",
];

const CURVES: &[CurveSpec] = &[CurveSpec {
    name: "code_error",
    title: "code prediction error ‖h_T − h*‖² / ‖h*‖²: train (blue), held-out (red)",
    y_desc: "relative squared error",
    lines: &[("error_train", Color::Blue), ("error_heldout", Color::Red)],
}];
