//! The CPU backend: host matrices, rayon for elementwise work and the `gemm`
//! crate's AVX-512/AVX2 microkernels for products. It is also the reference
//! twin that every WGSL kernel is tested against.

mod fused;
mod gemm;

use super::*;
use gemm::gemm_raw;
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
        a: Op<'_, HostMat>,
        b: Op<'_, HostMat>,
        beta: f32,
        c: &mut HostMat,
    ) -> Result<()> {
        let dims = gemm_dims("gemm", a, b, c.shape())?;
        gemm_raw(dims, alpha, a, b, beta, c, None);
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
        sums_shape("col_sums", x.shape(), out.shape(), (1, x.cols))?;
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

    fn row_sums(&self, x: &HostMat, alpha: f32, beta: f32, out: &mut HostMat) -> Result<()> {
        sums_shape("row_sums", x.shape(), out.shape(), (x.rows, 1))?;
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

    fn row_max(&self, x: &HostMat, out: &mut HostMat) -> Result<()> {
        sums_shape("row_max", x.shape(), out.shape(), (x.rows, 1))?;
        for (r, o) in out.data.iter_mut().enumerate() {
            *o = row_max_arg(x.row(r)).0;
        }
        Ok(())
    }

    fn row_argmax(&self, x: &HostMat, out: &mut HostMat) -> Result<()> {
        sums_shape("row_argmax", x.shape(), out.shape(), (x.rows, 1))?;
        for (r, o) in out.data.iter_mut().enumerate() {
            *o = row_max_arg(x.row(r)).1 as f32;
        }
        Ok(())
    }

    fn shrink(&self, x: &HostMat, lambda: f32, out: &mut HostMat) -> Result<()> {
        same_shape("shrink", x.shape(), out.shape())?;
        par_map(&mut out.data, |start, o| {
            for (y, v) in o.iter_mut().zip(&x.data[start..]) {
                *y = shrink(*v, lambda);
            }
        });
        Ok(())
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
        let s = BiasStep {
            a: &a,
            b: &b,
            step: &mut step,
            param: &mut param,
        };
        cpu.bias_step(s, 0.5, 0.1, 0.5).unwrap();
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
                    let (oa, ob) = (Op { m: &a, t: ta }, Op { m: &b, t: tb });
                    cpu.gemm(0.5, oa, ob, 2.0, &mut c).unwrap();
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
                    cpu.gemm(1.0, oa, ob, 0.0, &mut c).unwrap();
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
        let e = cpu.gemm(1.0, a.n(), b.n(), 0.0, &mut c).unwrap_err();
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
    fn row_max_argmax_and_shrink_references() {
        assert_eq!(row_max_arg(&[1.0, 3.0, -2.0, 3.0]), (3.0, 1));
        assert_eq!(row_max_arg(&[-5.0, -7.0]), (-5.0, 0));
        assert_eq!(row_max_arg(&[f32::MIN, f32::MIN]), (f32::MIN, 0));
        assert_eq!(row_max_arg(&[]), (f32::MIN, 0));
        let got: Vec<f32> = [-3.0, -1.0, 0.5, 1.0, 4.0]
            .iter()
            .map(|&x| shrink(x, 1.0))
            .collect();
        assert_eq!(got, [-2.0, 0.0, 0.0, 0.0, 3.0]);
    }

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-30);
        assert!((softplus(0.0) - 2f32.ln()).abs() < 1e-7);
    }
}
