//! What every objective trained by backpropagation shares: its graph
//! planned for the batch shape, the recipe's optimiser over the graph's
//! parameters (weight decay on the weights, `W…`, not the biases), and the
//! batch losses summed on the device until the epoch's monitors read them.

use std::path::Path;

use crate::autodiff::{Bindings, Graph, Plan, Var};
use crate::backend::Fused;
use crate::error::Result;
use crate::io::checkpoint::Checkpoint;
use crate::io::recipe::{self, TrainSpec};
use crate::rng::RngStream;
use crate::train::fit::Step;
use crate::train::optim::{OptimConfig, Optimizer, Rule};

/// The optimiser a recipe's `[train]` section asks for.
pub fn optim_config(t: &TrainSpec) -> OptimConfig {
    let rule = match t.optimizer {
        recipe::Optimizer::Sgd => Rule::Sgd { nesterov: false },
        recipe::Optimizer::Nesterov => Rule::Sgd { nesterov: true },
        recipe::Optimizer::Adam => Rule::Adam {
            beta1: t.adam_beta1,
            beta2: t.adam_beta2,
            eps: t.adam_eps,
        },
    };
    OptimConfig {
        rule,
        weight_decay: t.weight_decay,
        clip_norm: t.clip_norm,
    }
}

/// A planned graph with its optimiser and the epoch's summed loss.
pub struct Backprop<B: Fused> {
    pub plan: Plan<B>,
    opt: Optimizer<B>,
    /// The parameters' names, in graph order (checkpoint keys).
    names: Vec<String>,
    loss_sum: B::Mat,
    batches: usize,
    /// Zero gradients of the parameters the loss does not read (a
    /// one-step LISTA's S): they stay where they are, decay aside.
    unused: Vec<Option<B::Mat>>,
}

impl<B: Fused> Backprop<B> {
    /// Plans `graph` for the gradient of `loss` (keeping `keep`) and an
    /// optimiser for its parameters as `train` configures it.
    pub fn new(
        be: &B,
        graph: &Graph,
        (loss, keep): (Var, &[Var]),
        train: &TrainSpec,
    ) -> Result<Self> {
        let plan = Plan::new(be, graph, loss, keep)?;
        let names: Vec<String> = graph.params.iter().map(|p| p.name.clone()).collect();
        let shapes: Vec<_> = graph.params.iter().map(|p| p.shape).collect();
        let decay: Vec<bool> = names.iter().map(|n| n.starts_with('W')).collect();
        let unused = (0..shapes.len())
            .map(|i| match plan.param_grad(i) {
                Ok(_) => Ok(None),
                Err(_) => be.zeros(shapes[i].0, shapes[i].1).map(Some),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Backprop {
            opt: Optimizer::new(be, &shapes, &decay, optim_config(train))?,
            unused,
            plan,
            names,
            loss_sum: be.zeros(1, 1)?,
            batches: 0,
        })
    }

    /// A forward and a backward pass.
    pub fn pass(
        &mut self,
        be: &B,
        params: &[&B::Mat],
        inputs: &[&B::Mat],
        rng: &mut RngStream,
    ) -> Result<()> {
        self.plan.step(be, &Bindings { params, inputs }, rng)
    }

    /// Adds the last pass's loss to the epoch's (one per batch).
    pub fn note_loss(&mut self, be: &B) -> Result<()> {
        be.axpby(1.0, self.plan.loss_value()?, 1.0, &mut self.loss_sum)?;
        self.batches += 1;
        Ok(())
    }

    /// One optimiser step along the last pass's gradients.
    pub fn update(&mut self, be: &B, params: &mut [B::Mat], at: Step) -> Result<()> {
        let grads = (0..params.len())
            .map(|i| match &self.unused[i] {
                Some(z) => Ok(z),
                None => self.plan.param_grad(i),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut p: Vec<&mut B::Mat> = params.iter_mut().collect();
        self.opt.step(be, &mut p, &grads, at.lr, at.momentum)
    }

    /// The parameters' names, in graph order (checkpoint keys).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One optimiser step along `grads`.
    pub fn update_with(
        &mut self,
        be: &B,
        params: &mut [B::Mat],
        grads: &[&B::Mat],
        at: Step,
    ) -> Result<()> {
        let mut p: Vec<&mut B::Mat> = params.iter_mut().collect();
        self.opt.step(be, &mut p, grads, at.lr, at.momentum)
    }

    /// The mean noted loss since the last call (reads back one number).
    pub fn take_mean_loss(&mut self, be: &B) -> Result<f64> {
        let sum = be.download(&self.loss_sum)?.data[0] as f64;
        let mean = sum / self.batches.max(1) as f64;
        be.fill(&mut self.loss_sum, 0.0)?;
        self.batches = 0;
        Ok(mean)
    }

    /// The optimiser's buffers into a checkpoint's state.
    pub fn export(&self, be: &B, c: &mut Checkpoint) -> Result<()> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        self.opt.export(be, &names, c)
    }

    /// The optimiser's buffers from a checkpoint after `steps` steps.
    pub fn import(&mut self, be: &B, (ck, origin): (&Checkpoint, &Path), steps: u64) -> Result<()> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        self.opt.import(be, &names, (ck, origin), steps)
    }
}
