//! The CPU backend: host matrices, rayon for elementwise work and the `gemm`
//! crate's AVX-512/AVX2 microkernels for products. It is also the reference
//! twin that every WGSL kernel is tested against.

use super::*;
use rayon::prelude::*;

/// Below this many elements a loop runs on one thread: rayon's fork-join
/// costs more than it saves on small minibatch-sized vectors.
const PAR_MIN: usize = 1 << 14;
/// Elements per parallel chunk; a multiple of 4 so each chunk starts on a
/// Philox block boundary.
const CHUNK: usize = 1 << 13;

impl Matrix for HostMat {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Cpu {
    _private: (),
}

impl Cpu {
    pub fn new() -> Self {
        Cpu { _private: () }
    }
}

fn par_map(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if out.len() < PAR_MIN {
        f(0, out);
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(ci, chunk)| f(ci * CHUNK, chunk));
    }
}

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

/// `dst = alpha_dst * dst + beta * op(A) op(B)` through the gemm crate, with
/// transposes expressed as strides so nothing is copied.
#[allow(clippy::too_many_arguments)]
fn gemm_raw(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &HostMat,
    ta: Trans,
    b: &HostMat,
    tb: Trans,
    beta: f32,
    c: &mut HostMat,
    epilogue: Option<&Epilogue<'_>>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.data.iter_mut().for_each(|x| *x *= beta);
        if beta == 0.0 {
            c.data.iter_mut().for_each(|x| *x = 0.0);
        }
        if let Some(e) = epilogue {
            let c_ptr = SendPtr(c.data.as_mut_ptr());
            // SAFETY: the whole of C, owned by this call.
            e(c_ptr.0, 0, m, 0, n);
        }
        return;
    }
    // Row-major X (r x c): element (i, j) at i*c + j, so rs = c, cs = 1;
    // its transpose swaps the two strides.
    let (a_rs, a_cs) = match ta {
        Trans::N => (a.cols as isize, 1),
        Trans::T => (1, a.cols as isize),
    };
    let (b_rs, b_cs) = match tb {
        Trans::N => (b.cols as isize, 1),
        Trans::T => (1, b.cols as isize),
    };
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
type Epilogue<'a> = dyn Fn(*mut f32, usize, usize, usize, usize) + Sync + 'a;

/// A raw pointer that may cross to rayon workers; each worker writes a
/// disjoint block (see `gemm_raw`).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl Backend for Cpu {
    type Mat = HostMat;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<HostMat> {
        let n = rows.checked_mul(cols).ok_or_else(|| Error::Limit {
            what: format!("host matrix {rows}x{cols}"),
            requested: u64::MAX,
            limit: usize::MAX as u64,
        })?;
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Error::Limit {
            what: format!("host matrix {rows}x{cols} (bytes)"),
            requested: (n as u64).saturating_mul(4),
            limit: isize::MAX as u64,
        })?;
        v.resize(n, 0.0);
        Ok(HostMat {
            rows,
            cols,
            data: v,
        })
    }

    fn upload(&self, host: &HostMat) -> Result<HostMat> {
        HostMat::new(host.rows, host.cols, host.data.clone())
    }

    fn write(&self, dst: &mut HostMat, host: &HostMat) -> Result<()> {
        same_shape("write", dst.shape(), host.shape())?;
        dst.data.copy_from_slice(&host.data);
        Ok(())
    }

    fn download(&self, m: &HostMat) -> Result<HostMat> {
        Ok(m.clone())
    }

    fn fill(&self, m: &mut HostMat, value: f32) -> Result<()> {
        m.data.iter_mut().for_each(|x| *x = value);
        Ok(())
    }

    fn copy(&self, src: &HostMat, dst: &mut HostMat) -> Result<()> {
        same_shape("copy", src.shape(), dst.shape())?;
        dst.data.copy_from_slice(&src.data);
        Ok(())
    }

    fn gather_rows(&self, src: &HostMat, idx: &[u32], dst: &mut HostMat) -> Result<()> {
        gather_check("gather_rows", src.shape(), idx, dst.shape())?;
        let c = src.cols;
        for (r, &i) in idx.iter().enumerate() {
            let i = i as usize;
            dst.data[r * c..(r + 1) * c].copy_from_slice(&src.data[i * c..(i + 1) * c]);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn gemm(
        &self,
        alpha: f32,
        a: &HostMat,
        ta: Trans,
        b: &HostMat,
        tb: Trans,
        beta: f32,
        c: &mut HostMat,
    ) -> Result<()> {
        let (m, k, n) = gemm_dims("gemm", a.shape(), ta, b.shape(), tb, c.shape())?;
        gemm_raw(m, k, n, alpha, a, ta, b, tb, beta, c, None);
        Ok(())
    }

    fn add_row_vec(&self, m: &mut HostMat, v: &HostMat, alpha: f32) -> Result<()> {
        row_vec_shape("add_row_vec", m.shape(), v.shape())?;
        along_rows(m, v, |x, b| *x += alpha * b);
        Ok(())
    }

    fn add_col_vec(&self, m: &mut HostMat, v: &HostMat, alpha: f32) -> Result<()> {
        col_vec_shape("add_col_vec", m.shape(), v.shape())?;
        along_cols(m, v, |x, b| *x += alpha * b);
        Ok(())
    }

    fn mul_row_vec(&self, m: &mut HostMat, v: &HostMat) -> Result<()> {
        row_vec_shape("mul_row_vec", m.shape(), v.shape())?;
        along_rows(m, v, |x, s| *x *= s);
        Ok(())
    }

    fn mul_col_vec(&self, m: &mut HostMat, v: &HostMat) -> Result<()> {
        col_vec_shape("mul_col_vec", m.shape(), v.shape())?;
        along_cols(m, v, |x, s| *x *= s);
        Ok(())
    }

    fn col_sums(&self, x: &HostMat, alpha: f32, beta: f32, out: &mut HostMat) -> Result<()> {
        if out.shape() != (1, x.cols) {
            return Err(Error::shape(
                "col_sums",
                format!(
                    "a {}x{} input needs a 1x{} output, got {}x{}",
                    x.rows, x.cols, x.cols, out.rows, out.cols
                ),
            ));
        }
        // Accumulate in f64 so long columns (a whole data set) stay exact enough
        // to compare against the GPU's tree reduction.
        let mut acc = vec![0f64; x.cols];
        for r in 0..x.rows {
            for (a, v) in acc.iter_mut().zip(x.row(r)) {
                *a += *v as f64;
            }
        }
        for (o, a) in out.data.iter_mut().zip(acc) {
            *o = alpha * a as f32 + if beta == 0.0 { 0.0 } else { beta * *o };
        }
        Ok(())
    }

    fn bias_step(
        &self,
        a: &HostMat,
        alpha_a: f32,
        b: &HostMat,
        alpha_b: f32,
        mom: f32,
        step: &mut HostMat,
        param: &mut HostMat,
    ) -> Result<()> {
        bias_step_check(a.shape(), b.shape(), step.shape(), param.shape())?;
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

    fn row_sums(&self, x: &HostMat, alpha: f32, beta: f32, out: &mut HostMat) -> Result<()> {
        if out.shape() != (x.rows, 1) {
            return Err(Error::shape(
                "row_sums",
                format!(
                    "a {}x{} input needs a {}x1 output, got {}x{}",
                    x.rows, x.cols, x.rows, out.rows, out.cols
                ),
            ));
        }
        if x.cols == 0 {
            out.data
                .iter_mut()
                .for_each(|o| *o = if beta == 0.0 { 0.0 } else { beta * *o });
            return Ok(());
        }
        out.data
            .par_iter_mut()
            .zip(x.data.par_chunks(x.cols))
            .for_each(|(o, row)| {
                let s: f64 = row.iter().map(|&v| v as f64).sum();
                *o = alpha * s as f32 + if beta == 0.0 { 0.0 } else { beta * *o };
            });
        Ok(())
    }

    fn sum(&self, x: &HostMat) -> Result<f32> {
        Ok(x.data.par_iter().map(|&v| v as f64).sum::<f64>() as f32)
    }

    fn unary(&self, op: Unary, x: &HostMat, out: &mut HostMat) -> Result<()> {
        same_shape("unary", x.shape(), out.shape())?;
        par_map(&mut out.data, |start, o| {
            for (y, v) in o.iter_mut().zip(&x.data[start..]) {
                *y = op.eval(*v);
            }
        });
        Ok(())
    }

    fn unary_inplace(&self, op: Unary, x: &mut HostMat) -> Result<()> {
        par_map(&mut x.data, |_, o| {
            o.iter_mut().for_each(|y| *y = op.eval(*y))
        });
        Ok(())
    }

    fn binary(&self, op: Binary, a: &HostMat, b: &HostMat, out: &mut HostMat) -> Result<()> {
        same_shape("binary", a.shape(), b.shape())?;
        same_shape("binary", a.shape(), out.shape())?;
        par_map(&mut out.data, |s, o| {
            for ((y, p), q) in o.iter_mut().zip(&a.data[s..]).zip(&b.data[s..]) {
                *y = op.eval(*p, *q);
            }
        });
        Ok(())
    }

    fn binary_inplace(&self, op: Binary, a: &mut HostMat, b: &HostMat) -> Result<()> {
        same_shape("binary_inplace", a.shape(), b.shape())?;
        par_map(&mut a.data, |s, o| {
            for (y, q) in o.iter_mut().zip(&b.data[s..]) {
                *y = op.eval(*y, *q);
            }
        });
        Ok(())
    }

    fn affine(&self, x: &mut HostMat, alpha: f32, beta: f32) -> Result<()> {
        par_map(&mut x.data, |_, o| {
            o.iter_mut().for_each(|y| *y = alpha * *y + beta)
        });
        Ok(())
    }

    fn axpby(&self, alpha: f32, x: &HostMat, beta: f32, y: &mut HostMat) -> Result<()> {
        same_shape("axpby", x.shape(), y.shape())?;
        par_map(&mut y.data, |s, o| {
            for (y, v) in o.iter_mut().zip(&x.data[s..]) {
                *y = alpha * v + if beta == 0.0 { 0.0 } else { beta * *y };
            }
        });
        Ok(())
    }

    fn bernoulli(&self, p: &HostMat, out: &mut HostMat, rng: &mut RngStream) -> Result<()> {
        same_shape("bernoulli", p.shape(), out.shape())?;
        let draw = rng.next_draw();
        par_map(&mut out.data, |s, o| {
            draw.fill_uniform_at(s, o);
            for (y, q) in o.iter_mut().zip(&p.data[s..]) {
                *y = if *y < *q { 1.0 } else { 0.0 };
            }
        });
        Ok(())
    }

    fn gaussian(
        &self,
        mean: &HostMat,
        std: f32,
        out: &mut HostMat,
        rng: &mut RngStream,
    ) -> Result<()> {
        same_shape("gaussian", mean.shape(), out.shape())?;
        let draw = rng.next_draw();
        par_map(&mut out.data, |s, o| {
            for (j, (y, m)) in o.iter_mut().zip(&mean.data[s..]).enumerate() {
                *y = m + std * draw.normal(s + j);
            }
        });
        Ok(())
    }

    fn sigmoid_affine(
        &self,
        alpha: f32,
        a: &HostMat,
        ta: Trans,
        b: &HostMat,
        tb: Trans,
        bias: &HostMat,
        prob: &mut HostMat,
        sample: Option<&mut HostMat>,
        rng: &mut RngStream,
    ) -> Result<()> {
        let (m, k, n) = gemm_dims("sigmoid_affine", a.shape(), ta, b.shape(), tb, prob.shape())?;
        row_vec_shape("sigmoid_affine (bias)", prob.shape(), bias.shape())?;
        if let Some(s) = &sample {
            same_shape("sigmoid_affine (sample)", prob.shape(), s.shape())?;
        }
        if n == 0 || m == 0 {
            return Ok(());
        }
        let draw = sample.as_ref().map(|_| rng.next_draw());
        let s_ptr = sample.map(|s| SendPtr(s.data.as_mut_ptr()));
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
                        if at % 4 == 0 {
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
        gemm_raw(m, k, n, 1.0, a, ta, b, tb, 0.0, prob, Some(&epilogue));
        Ok(())
    }

    fn tempered_hidden(
        &self,
        x: &HostMat,
        b_h: &HostMat,
        beta0: f32,
        beta1: f32,
        linear_last: Option<f32>,
        lw: &mut HostMat,
        h: Option<&mut HostMat>,
        rng: &mut RngStream,
    ) -> Result<()> {
        tempered_hidden_check(
            x.shape(),
            b_h.shape(),
            lw.shape(),
            h.as_ref().map(|h| h.shape()),
        )?;
        let n = x.cols;
        if n == 0 {
            return Ok(());
        }
        let draw = h.is_some().then(|| rng.next_draw());
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

/// `f(M[r, c], v[c])` for every element (a row vector broadcast down).
fn along_rows(m: &mut HostMat, v: &HostMat, f: impl Fn(&mut f32, f32) + Sync) {
    if m.cols == 0 {
        return;
    }
    m.data.par_chunks_mut(m.cols).for_each(|row| {
        for (x, b) in row.iter_mut().zip(&v.data) {
            f(x, *b);
        }
    });
}

/// `f(M[r, c], v[r])` for every element (a column vector broadcast across).
fn along_cols(m: &mut HostMat, v: &HostMat, f: impl Fn(&mut f32, f32) + Sync) {
    if m.cols == 0 {
        return;
    }
    m.data
        .par_chunks_mut(m.cols)
        .zip(&v.data)
        .for_each(|(row, b)| row.iter_mut().for_each(|x| f(x, *b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &HostMat, ta: Trans, b: &HostMat, tb: Trans) -> HostMat {
        let a = if ta == Trans::T {
            a.transpose()
        } else {
            a.clone()
        };
        let b = if tb == Trans::T {
            b.transpose()
        } else {
            b.clone()
        };
        HostMat::from_fn(a.rows, b.cols, |i, j| {
            (0..a.cols)
                .map(|l| a.get(i, l) as f64 * b.get(l, j) as f64)
                .sum::<f64>() as f32
        })
    }

    fn rand_mat(rows: usize, cols: usize, seed: u64) -> HostMat {
        let d = RngStream::new(seed, 9).next_draw();
        HostMat::from_fn(rows, cols, |r, c| d.uniform(r * cols + c) * 2.0 - 1.0)
    }

    #[test]
    fn row_and_column_scales() {
        let cpu = Cpu::new();
        let mut m = HostMat::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        cpu.mul_row_vec(&mut m, &HostMat::new(1, 3, vec![1.0, 0.0, -2.0]).unwrap())
            .unwrap();
        assert_eq!(m.data, [1.0, 0.0, -6.0, 4.0, 0.0, -12.0]);
        cpu.mul_col_vec(&mut m, &HostMat::new(2, 1, vec![0.5, -1.0]).unwrap())
            .unwrap();
        assert_eq!(m.data, [0.5, 0.0, -3.0, -4.0, 0.0, 12.0]);
        assert!(cpu
            .mul_col_vec(&mut m, &HostMat::zeros(3, 1))
            .unwrap_err()
            .to_string()
            .contains("mul_col_vec"));
    }

    #[test]
    fn bias_step_is_momentum_on_two_column_sums() {
        let cpu = Cpu::new();
        let a = HostMat::new(2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = HostMat::new(1, 2, vec![10.0, -10.0]).unwrap();
        let mut step = HostMat::new(1, 2, vec![1.0, -1.0]).unwrap();
        let mut param = HostMat::new(1, 2, vec![5.0, 5.0]).unwrap();
        cpu.bias_step(&a, 0.5, &b, 0.1, 0.5, &mut step, &mut param)
            .unwrap();
        // step = 0.5 * [1, -1] + 0.5 * [4, 6] + 0.1 * [10, -10] = [3.5, 1.5]
        assert_eq!(step.data, [3.5, 1.5]);
        assert_eq!(param.data, [8.5, 6.5]);
    }

    #[test]
    fn gemm_all_transposes_against_naive() {
        let cpu = Cpu::new();
        for &(m, k, n) in &[(37, 53, 29), (1, 1, 1), (130, 70, 90), (3, 0, 4)] {
            for ta in [Trans::N, Trans::T] {
                for tb in [Trans::N, Trans::T] {
                    let a = rand_mat(ta.apply((m, k)).0, ta.apply((m, k)).1, 1);
                    let b = rand_mat(tb.apply((k, n)).0, tb.apply((k, n)).1, 2);
                    let c0 = rand_mat(m, n, 3);
                    let mut c = c0.clone();
                    cpu.gemm(0.5, &a, ta, &b, tb, 2.0, &mut c).unwrap();
                    let want = naive(&a, ta, &b, tb);
                    for i in 0..m * n {
                        let w = 0.5 * want.data[i] + 2.0 * c0.data[i];
                        assert!(
                            (c.data[i] - w).abs() < 1e-4 * (1.0 + w.abs()),
                            "{m}x{k}x{n} {ta:?}{tb:?}"
                        );
                    }
                    // beta = 0 must ignore whatever C held, NaN included.
                    let mut c = HostMat::from_fn(m, n, |_, _| f32::NAN);
                    cpu.gemm(1.0, &a, ta, &b, tb, 0.0, &mut c).unwrap();
                    assert!(c.max_abs_diff(&want).unwrap() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn gemm_shape_error_names_shapes() {
        let cpu = Cpu::new();
        let a = HostMat::zeros(3, 4);
        let b = HostMat::zeros(5, 2);
        let mut c = HostMat::zeros(3, 2);
        let e = cpu
            .gemm(1.0, &a, Trans::N, &b, Trans::N, 0.0, &mut c)
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("3x4") && msg.contains("5x2"), "{msg}");
    }

    #[test]
    fn bernoulli_follows_the_shared_stream() {
        let cpu = Cpu::new();
        let p = HostMat::from_fn(300, 70, |r, c| ((r * 7 + c) % 11) as f32 / 10.0);
        let mut s = HostMat::zeros(300, 70);
        let mut rng = RngStream::new(5, 1);
        let d = rng;
        cpu.bernoulli(&p, &mut s, &mut rng).unwrap();
        let draw = {
            let mut d = d;
            d.next_draw()
        };
        for i in 0..p.data.len() {
            let want = if draw.uniform(i) < p.data[i] {
                1.0
            } else {
                0.0
            };
            assert_eq!(s.data[i], want);
        }
        assert_eq!(rng.offset, 1);
    }

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

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-30);
        assert!((softplus(0.0) - 2f32.ln()).abs() < 1e-7);
    }
}
