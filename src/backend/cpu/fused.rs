//! The CPU's fused kernels: the sampling epilogue on the GEMM blocks, the
//! bias step's two column sums, and the tempered hidden pass, each one pass
//! over memory (their compositions in core ops are in
//! [`crate::backend::fused::composed`]).

use super::gemm::{gemm_raw, SendPtr};
use super::Cpu;
use crate::backend::fused::{bias_step_check, sigmoid_affine_check, tempered_hidden_check};
use crate::backend::{sigmoid, softplus, BiasStep, Fused, Op, Sample, Tempered};
use crate::error::Result;
use crate::host::HostMat;
use rayon::prelude::*;

/// e^x for the fused sampling epilogues: Cody-Waite range reduction and a
/// degree-6 polynomial, written branch-free so a loop over it vectorises
/// (libm's `expf` does not). Relative error < 3e-7 on [-87, 88]; beyond that
/// it saturates to 0 / +inf like `expf`.
#[inline(always)]
fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.7);
    // Round to nearest by the 1.5 * 2^23 shifter (`f32::round` is a libm
    // call); the shifted value's low mantissa bits then hold n itself, so
    // 2^n is built with integer ops only (a saturating `as i32` would not
    // vectorise).
    const SHIFT: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let ni = t.to_bits().wrapping_sub(SHIFT.to_bits());
    p * f32::from_bits(ni.wrapping_add(127) << 23)
}

#[inline(always)]
fn sigmoid_fast(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

#[inline(always)]
fn sigmoid_bias_row_generic(x: &mut [f32], b: &[f32], alpha: f32) {
    for (x, b) in x.iter_mut().zip(b) {
        *x = sigmoid_fast(alpha * (*x + b));
    }
}

/// `x = sigmoid(alpha (x + b))`, compiled for the widest vectors the running
/// processor has: the crate is built for baseline x86-64 (SSE2), which
/// would leave three quarters of an AVX-512 unit idle here.
fn sigmoid_bias_row(x: &mut [f32], b: &[f32], alpha: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn v4(x: &mut [f32], b: &[f32], alpha: f32) {
            sigmoid_bias_row_generic(x, b, alpha)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn v3(x: &mut [f32], b: &[f32], alpha: f32) {
            sigmoid_bias_row_generic(x, b, alpha)
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { v4(x, b, alpha) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected.
            return unsafe { v3(x, b, alpha) };
        }
    }
    sigmoid_bias_row_generic(x, b, alpha)
}

impl Fused for Cpu {
    fn bias_step(
        &self,
        s: BiasStep<'_, HostMat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        bias_step_check(&s)?;
        let BiasStep { a, b, step, param } = s;
        let sums = |x: &HostMat| {
            let mut acc = vec![0f64; x.cols];
            for r in 0..x.rows {
                for (s, v) in acc.iter_mut().zip(x.row(r)) {
                    *s += *v as f64;
                }
            }
            acc
        };
        let (sa, sb) = (sums(a), sums(b));
        for (((st, p), x), y) in step.data.iter_mut().zip(&mut param.data).zip(sa).zip(sb) {
            *st = mom * *st + (alpha_a as f64 * x + alpha_b as f64 * y) as f32;
            *p += *st;
        }
        Ok(())
    }

    fn sigmoid_affine(
        &self,
        alpha: f32,
        a: Op<'_, HostMat>,
        b: Op<'_, HostMat>,
        bias: &HostMat,
        prob: &mut HostMat,
        sample: Option<Sample<'_, HostMat>>,
    ) -> Result<()> {
        sigmoid_epilogue(alpha, a, b, 0.0, bias, prob, sample)
    }

    fn sigmoid_affine_acc(
        &self,
        alpha: f32,
        a: Op<'_, HostMat>,
        b: Op<'_, HostMat>,
        bias: &HostMat,
        prob: &mut HostMat,
        sample: Option<Sample<'_, HostMat>>,
    ) -> Result<()> {
        sigmoid_epilogue(alpha, a, b, 1.0, bias, prob, sample)
    }

    fn tempered_hidden(
        &self,
        x: &HostMat,
        p: &Tempered<'_, HostMat>,
        lw: &mut HostMat,
        h: Option<Sample<'_, HostMat>>,
    ) -> Result<()> {
        tempered_hidden_check(x, p, lw, h.as_ref().map(|s| &*s.out))?;
        let n = x.cols;
        if n == 0 {
            return Ok(());
        }
        let Tempered {
            b_h,
            beta0,
            beta1,
            linear_last,
        } = *p;
        let (draw, h) = match h {
            Some(s) => (Some(s.rng.next_draw()), Some(s.out)),
            None => (None, None),
        };
        // Columns below `soft` are hidden units; the one above, if any, is linear.
        let soft = if linear_last.is_some() { n - 1 } else { n };
        let row = |r: usize, xr: &[f32], hr: Option<&mut [f32]>| -> f32 {
            let mut acc = 0f64;
            for (y, b) in xr[..soft].iter().zip(&b_h.data) {
                let y = y + b;
                acc += (softplus(beta1 * y) - softplus(beta0 * y)) as f64;
            }
            if linear_last.is_some() {
                acc += ((beta1 - beta0) * (xr[soft] + b_h.data[soft])) as f64;
            }
            if let (Some(hr), Some(d)) = (hr, &draw) {
                // Row starts need not fall on a Philox block boundary.
                for (j, (o, y)) in hr[..soft].iter_mut().zip(xr).enumerate() {
                    let p = sigmoid(beta1 * (y + b_h.data[j]));
                    *o = if d.uniform(r * n + j) < p { 1.0 } else { 0.0 };
                }
                if let Some(c) = linear_last {
                    hr[soft] = c;
                }
            }
            acc as f32
        };
        let sums: Vec<f32> = match h {
            Some(h) => x
                .data
                .par_chunks(n)
                .zip(h.data.par_chunks_mut(n))
                .enumerate()
                .map(|(r, (xr, hr))| row(r, xr, Some(hr)))
                .collect(),
            None => x
                .data
                .par_chunks(n)
                .enumerate()
                .map(|(r, xr)| row(r, xr, None))
                .collect(),
        };
        lw.data.iter_mut().zip(sums).for_each(|(l, s)| *l += s);
        Ok(())
    }
}

/// `prob = sigmoid(alpha (beta prob + op(A) op(B) + bias))` with the
/// Bernoulli draw, the bias and the sigmoid applied to each GEMM block.
fn sigmoid_epilogue(
    alpha: f32,
    a: Op<'_, HostMat>,
    b: Op<'_, HostMat>,
    beta: f32,
    bias: &HostMat,
    prob: &mut HostMat,
    sample: Option<Sample<'_, HostMat>>,
) -> Result<()> {
    let (m, k, n) = sigmoid_affine_check(a, b, bias, prob, sample.as_ref().map(|s| &*s.out))?;
    if n == 0 || m == 0 {
        return Ok(());
    }
    let (draw, s_ptr) = match sample {
        Some(s) => (
            Some(s.rng.next_draw()),
            Some(SendPtr(s.out.data.as_mut_ptr())),
        ),
        None => (None, None),
    };
    // Bias, sigmoid and the Bernoulli draw run on each GEMM block as soon
    // as it is computed, on the core that holds it in cache.
    let epilogue = move |c: *mut f32, i0: usize, i1: usize, j0: usize, j1: usize| {
        let w = j1 - j0;
        let mut u = [0f32; 256];
        for r in i0..i1 {
            // SAFETY: gemm_raw hands each block to exactly one thread and
            // [r*n + j0, r*n + j1) lies inside the m x n buffers.
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * n + j0), w) };
            sigmoid_bias_row(row, &bias.data[j0..j1], alpha);
            if let (Some(d), Some(sp)) = (&draw, s_ptr) {
                let srow = unsafe { std::slice::from_raw_parts_mut(sp.0.add(r * n + j0), w) };
                let start = r * n + j0;
                for (ci, (sc, pc)) in srow.chunks_mut(256).zip(row.chunks(256)).enumerate() {
                    let at = start + ci * 256;
                    let u = &mut u[..sc.len()];
                    if at.is_multiple_of(4) {
                        d.fill_uniform_at(at, u);
                    } else {
                        u.iter_mut()
                            .enumerate()
                            .for_each(|(j, x)| *x = d.uniform(at + j));
                    }
                    for ((y, q), v) in sc.iter_mut().zip(pc).zip(u.iter()) {
                        *y = if *v < *q { 1.0 } else { 0.0 };
                    }
                }
            }
        }
    };
    gemm_raw((m, k, n), 1.0, a, b, beta, prob, Some(&epilogue));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_sigmoid_are_accurate() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (e, want) = (exp_fast(x) as f64, (x as f64).exp());
            assert!(((e - want) / want).abs() < 5e-7, "exp({x}) = {e} vs {want}");
            let (s, want) = (sigmoid_fast(x) as f64, 1.0 / (1.0 + (-(x as f64)).exp()));
            assert!(
                (s - want).abs() <= 6e-7 * want,
                "sigmoid({x}) = {s} vs {want}"
            );
            x += 0.013;
        }
        assert_eq!(sigmoid_fast(-200.0), 0.0);
        assert_eq!(sigmoid_fast(200.0), 1.0);
        assert_eq!(exp_fast(-1000.0), exp_fast(-87.3));
    }
}
