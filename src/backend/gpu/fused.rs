//! Why the fused ops have kernels of their own here: each replaces two to
//! eight dispatches of its composition in core ops, in loops that run it
//! once per Gibbs step or per temperature, and on a GPU those loops are
//! bound by dispatch count, not arithmetic. So the sigmoid and its sample
//! ride on the GEMM's epilogue, both layers' bias steps share a dispatch,
//! and the tempered pass sums a split-K product's partials itself rather
//! than wait for the reduction pass.

use super::device::{Bind, Gpu, GpuMat};
use super::gemm::GemmEpilogue;
use super::kernels::{BiasStepParams, Kernel, Layout, TemperedParams};
use super::recorder::State;
use crate::backend::fused::{bias_step_check, sigmoid_affine_check, tempered_hidden_check};
use crate::backend::Backend;
use crate::backend::{gemm_dims, BiasStep, Fused, Matrix, Op, Sample, Tempered};
use crate::error::Result;
use crate::rng::Draw;

impl Fused for Gpu {
    fn sigmoid_affine(
        &self,
        alpha: f32,
        a: Op<'_, GpuMat>,
        b: Op<'_, GpuMat>,
        bias: &GpuMat,
        prob: &mut GpuMat,
        sample: Option<Sample<'_, GpuMat>>,
    ) -> Result<()> {
        self.sigmoid_gemm((alpha, 0.0), (a, b), bias, prob, sample)
    }

    fn sigmoid_affine_acc(
        &self,
        alpha: f32,
        a: Op<'_, GpuMat>,
        b: Op<'_, GpuMat>,
        bias: &GpuMat,
        prob: &mut GpuMat,
        sample: Option<Sample<'_, GpuMat>>,
    ) -> Result<()> {
        // The epilogue adds the product to what prob holds.
        self.sigmoid_gemm((alpha, 1.0), (a, b), bias, prob, sample)
    }

    fn bias_step(
        &self,
        s: BiasStep<'_, GpuMat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        bias_step_check(&s)?;
        let BiasStep { a, b, step, param } = s;
        let p = BiasStepParams {
            rows_a: a.rows as u32,
            rows_b: b.rows as u32,
            cols: a.cols as u32,
            alpha_a,
            alpha_b,
            mom,
            ..Default::default()
        };
        let grid = self.grid((a.cols as u64).div_ceil(64))?;
        let mut st = self.lock();
        self.record(
            &mut st,
            Kernel::BiasStep,
            &[a.b(), b.b(), step.b(), param.b()],
            &p,
            grid,
        )
    }

    fn bias_steps(
        &self,
        v: BiasStep<'_, GpuMat>,
        h: BiasStep<'_, GpuMat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        bias_step_check(&v)?;
        bias_step_check(&h)?;
        let paired = self.i.layouts.contains_key(&Layout::Rw(8))
            && v.a.rows == h.a.rows
            && v.b.rows == h.b.rows
            && v.a.cols > 0
            && h.a.cols > 0;
        if !paired {
            self.bias_step(v, alpha_a, alpha_b, mom)?;
            return self.bias_step(h, alpha_a, alpha_b, mom);
        }
        let v_groups = (v.a.cols as u64).div_ceil(64);
        let p = BiasStepParams {
            rows_a: v.a.rows as u32,
            rows_b: v.b.rows as u32,
            cols: v.a.cols as u32,
            alpha_a,
            alpha_b,
            mom,
            cols_h: h.a.cols as u32,
            groups_v: v_groups as u32,
        };
        let grid = self.grid(v_groups + (h.a.cols as u64).div_ceil(64))?;
        let mut st = self.lock();
        self.record(
            &mut st,
            Kernel::BiasStepPair,
            &[
                v.a.b(),
                v.b.b(),
                v.step.b(),
                v.param.b(),
                h.a.b(),
                h.b.b(),
                h.step.b(),
                h.param.b(),
            ],
            &p,
            grid,
        )
    }

    fn tempered_hidden(
        &self,
        x: &GpuMat,
        p: &Tempered<'_, GpuMat>,
        lw: &mut GpuMat,
        h: Option<Sample<'_, GpuMat>>,
    ) -> Result<()> {
        tempered_hidden_check(x, p, lw, h.as_ref().map(|s| &*s.out))?;
        let h = h.map(|s| (&*s.out, s.rng.next_draw()));
        let input = TemperedInput {
            x: x.b(),
            splits: 1,
            shape: x.shape(),
        };
        let mut st = self.lock();
        self.record_tempered(&mut st, input, p, lw, h)
    }

    fn gemm_tempered_hidden(
        &self,
        v: &GpuMat,
        w: &GpuMat,
        x: &mut GpuMat,
        p: &Tempered<'_, GpuMat>,
        lw: &mut GpuMat,
        h: Option<Sample<'_, GpuMat>>,
    ) -> Result<()> {
        let dims = gemm_dims("gemm_tempered_hidden", v.n(), w.n(), x.shape())?;
        tempered_hidden_check(x, p, lw, h.as_ref().map(|s| &*s.out))?;
        let plan = self.gemm_plan(dims, v.n().t, w.n().t)?;
        if plan.splits == 1 || dims.1 == 0 {
            self.gemm(1.0, v.n(), w.n(), 0.0, x)?;
            return self.tempered_hidden(x, p, lw, h);
        }
        // Drawn before recording, in the order the two-op path draws.
        let h = h.map(|s| (&*s.out, s.rng.next_draw()));
        let mut st = self.lock();
        let (part, part_id) = self.gemm_partials(&mut st, &plan, dims, v, w)?;
        let input = TemperedInput {
            x: Bind::whole(&part, part_id),
            splits: plan.splits,
            shape: x.shape(),
        };
        self.record_tempered(&mut st, input, p, lw, h)
    }
}

impl Gpu {
    /// Records the tempered hidden pass over `x` (rows x cols), given as
    /// `splits` consecutive partial products to be summed (1: `x` itself).
    fn record_tempered(
        &self,
        st: &mut State,
        x: TemperedInput<'_>,
        p: &Tempered<'_, GpuMat>,
        lw: &mut GpuMat,
        h: Option<(&GpuMat, Draw)>,
    ) -> Result<()> {
        let (rows, cols) = x.shape;
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let params = TemperedParams {
            rows: rows as u32,
            cols: cols as u32,
            beta0: p.beta0,
            beta1: p.beta1,
            splits: x.splits as u32,
            sample: h.is_some() as u32,
            linear_last: p.linear_last.is_some() as u32,
            linear_value: p.linear_last.unwrap_or(0.0),
            draw: h.map(|(_, d)| d.into()).unwrap_or_default(),
        };
        let grid = self.grid(rows as u64)?;
        let h = h.map_or(self.i.dummy_rw(), |(h, _)| h.b());
        self.record(
            st,
            Kernel::TemperedHidden,
            &[x.x, p.b_h.b(), lw.b(), h],
            &params,
            grid,
        )
    }
}

/// What the tempered pass reads: `x` (rows x cols) itself (`splits` = 1)
/// or the `splits` partial products of a split-K GEMM that make it.
struct TemperedInput<'a> {
    x: Bind<'a>,
    splits: usize,
    shape: (usize, usize),
}

impl Gpu {
    /// Both sigmoid ops: the GEMM with its sigmoid epilogue, reading C
    /// only when `beta` is not 0.
    fn sigmoid_gemm(
        &self,
        (alpha, beta): (f32, f32),
        (a, b): (Op<'_, GpuMat>, Op<'_, GpuMat>),
        bias: &GpuMat,
        prob: &mut GpuMat,
        sample: Option<Sample<'_, GpuMat>>,
    ) -> Result<()> {
        let dims = sigmoid_affine_check(a, b, bias, prob, sample.as_ref().map(|s| &*s.out))?;
        // Like the CPU twin: a draw is consumed only when sampling.
        let sample = sample.map(|s| (&*s.out, s.rng.next_draw()));
        let epilogue = GemmEpilogue { bias, sample };
        self.gemm_impl(dims, (alpha, beta), a, b, prob, Some(epilogue))
    }
}
