//! Products on the CPU through the `gemm` crate's AVX-512/AVX2 microkernels:
//! one single-threaded product per core on a disjoint block of C, with an
//! optional epilogue run on each block while it is still in that core's
//! cache (the fused sampling kernels live on it).

use super::super::{Op, Trans};
use crate::host::HostMat;
use rayon::prelude::*;

/// `dst = alpha_dst * dst + beta * op(A) op(B)` through the gemm crate, with
/// transposes expressed as strides so nothing is copied.
pub(super) fn gemm_raw(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: Op<'_, HostMat>,
    b: Op<'_, HostMat>,
    beta: f32,
    c: &mut HostMat,
    epilogue: Option<&Epilogue<'_>>,
) {
    let (ta, tb) = (a.t, b.t);
    let (a, b) = (a.m, b.m);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        return empty_product(c, beta, (m, n), epilogue);
    }
    let (a_rs, a_cs) = strides(ta, a.cols);
    let (b_rs, b_cs) = strides(tb, b.cols);
    let threads = rayon::current_num_threads();
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let a_ptr = SendPtr(a.data.as_ptr() as *mut f32);
    let b_ptr = SendPtr(b.data.as_ptr() as *mut f32);
    let c_ptr = SendPtr(c.data.as_mut_ptr());
    // One single-threaded gemm per thread on a disjoint block of C, split
    // along the longer side of C. Measured on the reference shapes
    // (100x784x500 etc.) this beats the gemm crate's own rayon split, which
    // leaves a core idle when m is ~100 (see README, "CPU GEMM").
    let parts = if flops < 4e6 { 1 } else { threads.max(1) };
    let block = |i0: usize, i1: usize, j0: usize, j1: usize| {
        let (a_ptr, b_ptr, c_ptr) = (a_ptr, b_ptr, c_ptr);
        // SAFETY: the shapes were checked by `gemm_dims`; the pointers and
        // strides describe in-bounds row-major storage of exactly those shapes;
        // the blocks [i0,i1) x [j0,j1) of C are disjoint between calls, and C
        // does not alias A or B (distinct borrows).
        unsafe {
            gemm::gemm(
                i1 - i0,
                j1 - j0,
                k,
                c_ptr.0.add(i0 * n + j0),
                1,
                n as isize,
                beta != 0.0,
                a_ptr.0.offset(i0 as isize * a_rs),
                a_cs,
                a_rs,
                b_ptr.0.offset(j0 as isize * b_cs),
                b_cs,
                b_rs,
                beta,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
            // While the block is still in this core's cache.
            if let Some(e) = epilogue {
                e(c_ptr.0, i0, i1, j0, j1);
            }
        }
    };
    split(m, n, parts, &block);
}

/// C = beta C (with its epilogue) when the inner dimension is 0.
fn empty_product(
    c: &mut HostMat,
    beta: f32,
    (m, n): (usize, usize),
    epilogue: Option<&Epilogue<'_>>,
) {
    c.data.iter_mut().for_each(|x| *x *= beta);
    if beta == 0.0 {
        c.data.iter_mut().for_each(|x| *x = 0.0);
    }
    if let Some(e) = epilogue {
        let c_ptr = SendPtr(c.data.as_mut_ptr());
        // SAFETY: the whole of C, owned by this call.
        e(c_ptr.0, 0, m, 0, n);
    }
}

/// Row-major X (r x c): element (i, j) at i*c + j, so rs = c, cs = 1; its
/// transpose swaps the two strides.
fn strides(t: Trans, cols: usize) -> (isize, isize) {
    match t {
        Trans::N => (cols as isize, 1),
        Trans::T => (1, cols as isize),
    }
}

/// Runs `block(i0, i1, j0, j1)` over `parts` disjoint blocks of an m x n C,
/// split along its longer side, in parallel.
fn split(m: usize, n: usize, parts: usize, block: &(dyn Fn(usize, usize, usize, usize) + Sync)) {
    if parts == 1 {
        block(0, m, 0, n);
    } else if n >= m {
        // Column blocks aligned to 16 floats: one AVX-512 register.
        let step = n.div_ceil(parts).div_ceil(16) * 16;
        (0..n.div_ceil(step))
            .into_par_iter()
            .for_each(|p| block(0, m, p * step, ((p + 1) * step).min(n)));
    } else {
        let step = m.div_ceil(parts);
        (0..m.div_ceil(step))
            .into_par_iter()
            .for_each(|p| block(p * step, ((p + 1) * step).min(m), 0, n));
    }
}

/// Work applied to block [i0, i1) x [j0, j1) of a freshly computed C (row
/// stride n), on the thread that computed it. Unsafe to call: the caller
/// guarantees the block is in bounds and no other thread touches it.
pub(super) type Epilogue<'a> = dyn Fn(*mut f32, usize, usize, usize, usize) + Sync + 'a;

/// A raw pointer that may cross to rayon workers; each worker writes a
/// disjoint block (see `gemm_raw`).
#[derive(Clone, Copy)]
pub(super) struct SendPtr(pub(super) *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
