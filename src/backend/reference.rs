//! A reference backend in f64: every core op in plain loops, and the fused
//! ops as their default compositions. It exists to check gradients: the
//! gradient graph runs its forward and backward rules on it unchanged, so
//! central finite differences in f64 can hold those rules to 1e-6 where an
//! f32 check could not tell a wrong term from rounding. Random draws take
//! the same Philox uniforms as the other backends, so masks and samples
//! agree with them element for element.
//!
//! Not for speed: single-threaded, no blocking.

use super::{
    col_vec_shape, gather_check, gemm_dims, row_vec_shape, same_shape, sums_shape, Backend, Binary,
    Fused, Matrix, Op, Trans, Unary,
};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// A row-major f64 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat64 {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Mat64 {
    fn at(&self, t: Trans, i: usize, j: usize) -> f64 {
        match t {
            Trans::N => self.data[i * self.cols + j],
            Trans::T => self.data[j * self.cols + i],
        }
    }
}

impl Matrix for Mat64 {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

/// The f64 reference backend.
#[derive(Clone, Debug, Default)]
pub struct F64;

impl F64 {
    /// A matrix of f64 values (uploads from f32 lose nothing, but a
    /// gradient check perturbs values by less than an f32 ulp).
    pub fn from_f64(&self, rows: usize, cols: usize, data: Vec<f64>) -> Result<Mat64> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::shape(
                "F64::from_f64",
                format!(
                    "{rows}x{cols} needs {} values, got {}",
                    rows * cols,
                    data.len()
                ),
            ));
        }
        Ok(Mat64 { rows, cols, data })
    }
}

fn map(out: &mut Mat64, f: impl Fn(usize) -> f64) {
    for (i, y) in out.data.iter_mut().enumerate() {
        *y = f(i);
    }
}

fn unary64(op: Unary, x: f64) -> f64 {
    match op {
        Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Unary::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        Unary::Exp => x.exp(),
        Unary::Log => x.ln(),
        Unary::Tanh => x.tanh(),
        Unary::Relu => x.max(0.0),
        Unary::Square => x * x,
        Unary::Sqrt => x.sqrt(),
        Unary::Neg => -x,
        Unary::Abs => x.abs(),
        // Summed directly until the terms vanish in f64.
        Unary::NreluLogPartition => (1..)
            .map(|i| unary64(Unary::Softplus, x - i as f64 + 0.5))
            .take_while(|&t| t > 1e-18)
            .sum(),
        Unary::Step => (x > 0.0) as u8 as f64,
        Unary::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
    }
}

fn binary64(op: Binary, a: f64, b: f64) -> f64 {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Max => a.max(b),
        Binary::Min => a.min(b),
    }
}

impl Backend for F64 {
    type Mat = Mat64;

    fn name(&self) -> String {
        "reference (f64)".into()
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<Mat64> {
        Ok(Mat64 {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        })
    }
    fn upload(&self, host: &HostMat) -> Result<Mat64> {
        let data = host.data.iter().map(|&x| x as f64).collect();
        self.from_f64(host.rows, host.cols, data)
    }
    fn write(&self, dst: &mut Mat64, host: &HostMat) -> Result<()> {
        same_shape("write", dst.shape(), host.shape())?;
        map(dst, |i| host.data[i] as f64);
        Ok(())
    }
    fn download(&self, m: &Mat64) -> Result<HostMat> {
        HostMat::new(m.rows, m.cols, m.data.iter().map(|&x| x as f32).collect())
    }
    fn fill(&self, m: &mut Mat64, value: f32) -> Result<()> {
        m.data.iter_mut().for_each(|x| *x = value as f64);
        Ok(())
    }
    fn copy(&self, src: &Mat64, dst: &mut Mat64) -> Result<()> {
        same_shape("copy", src.shape(), dst.shape())?;
        dst.data.copy_from_slice(&src.data);
        Ok(())
    }
    fn gather_rows(&self, src: &Mat64, idx: &[u32], dst: &mut Mat64) -> Result<()> {
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
        a: Op<'_, Mat64>,
        b: Op<'_, Mat64>,
        beta: f32,
        c: &mut Mat64,
    ) -> Result<()> {
        let (m, k, n) = gemm_dims("gemm", a, b, c.shape())?;
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|l| a.m.at(a.t, i, l) * b.m.at(b.t, l, j)).sum();
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c.data[i * n + j]
                };
                c.data[i * n + j] = alpha as f64 * s + old;
            }
        }
        Ok(())
    }
    fn add_row_vec(&self, m: &mut Mat64, v: &Mat64, alpha: f32) -> Result<()> {
        row_vec_shape("add_row_vec", m.shape(), v.shape())?;
        let c = m.cols;
        m.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x += alpha as f64 * v.data[i % c]);
        Ok(())
    }
    fn add_col_vec(&self, m: &mut Mat64, v: &Mat64, alpha: f32) -> Result<()> {
        col_vec_shape("add_col_vec", m.shape(), v.shape())?;
        let c = m.cols.max(1);
        m.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x += alpha as f64 * v.data[i / c]);
        Ok(())
    }
    fn mul_row_vec(&self, m: &mut Mat64, v: &Mat64) -> Result<()> {
        row_vec_shape("mul_row_vec", m.shape(), v.shape())?;
        let c = m.cols;
        m.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x *= v.data[i % c]);
        Ok(())
    }
    fn mul_col_vec(&self, m: &mut Mat64, v: &Mat64) -> Result<()> {
        col_vec_shape("mul_col_vec", m.shape(), v.shape())?;
        let c = m.cols.max(1);
        m.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x *= v.data[i / c]);
        Ok(())
    }
    fn col_sums(&self, x: &Mat64, alpha: f32, beta: f32, out: &mut Mat64) -> Result<()> {
        sums_shape("col_sums", x.shape(), out.shape(), (1, x.cols))?;
        for c in 0..x.cols {
            let s: f64 = (0..x.rows).map(|r| x.data[r * x.cols + c]).sum();
            let old = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * out.data[c]
            };
            out.data[c] = alpha as f64 * s + old;
        }
        Ok(())
    }
    fn row_sums(&self, x: &Mat64, alpha: f32, beta: f32, out: &mut Mat64) -> Result<()> {
        sums_shape("row_sums", x.shape(), out.shape(), (x.rows, 1))?;
        for r in 0..x.rows {
            let s: f64 = x.data[r * x.cols..(r + 1) * x.cols].iter().sum();
            let old = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * out.data[r]
            };
            out.data[r] = alpha as f64 * s + old;
        }
        Ok(())
    }
    fn sum(&self, x: &Mat64) -> Result<f32> {
        Ok(x.data.iter().sum::<f64>() as f32)
    }
    fn row_max(&self, x: &Mat64, out: &mut Mat64) -> Result<()> {
        sums_shape("row_max", x.shape(), out.shape(), (x.rows, 1))?;
        for r in 0..x.rows {
            let row = &x.data[r * x.cols..(r + 1) * x.cols];
            out.data[r] = row.iter().cloned().fold(f32::MIN as f64, f64::max);
        }
        Ok(())
    }
    fn row_argmax(&self, x: &Mat64, out: &mut Mat64) -> Result<()> {
        sums_shape("row_argmax", x.shape(), out.shape(), (x.rows, 1))?;
        for r in 0..x.rows {
            let row = &x.data[r * x.cols..(r + 1) * x.cols];
            let mut best = 0;
            for (c, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = c;
                }
            }
            out.data[r] = best as f64;
        }
        Ok(())
    }
    fn unary(&self, op: Unary, x: &Mat64, out: &mut Mat64) -> Result<()> {
        same_shape("unary", x.shape(), out.shape())?;
        map(out, |i| unary64(op, x.data[i]));
        Ok(())
    }
    fn unary_inplace(&self, op: Unary, x: &mut Mat64) -> Result<()> {
        x.data.iter_mut().for_each(|v| *v = unary64(op, *v));
        Ok(())
    }
    fn binary(&self, op: Binary, a: &Mat64, b: &Mat64, out: &mut Mat64) -> Result<()> {
        same_shape("binary", a.shape(), b.shape())?;
        same_shape("binary", a.shape(), out.shape())?;
        map(out, |i| binary64(op, a.data[i], b.data[i]));
        Ok(())
    }
    fn binary_inplace(&self, op: Binary, a: &mut Mat64, b: &Mat64) -> Result<()> {
        same_shape("binary_inplace", a.shape(), b.shape())?;
        for (x, y) in a.data.iter_mut().zip(&b.data) {
            *x = binary64(op, *x, *y);
        }
        Ok(())
    }
    fn shrink(&self, x: &Mat64, lambda: f32, out: &mut Mat64) -> Result<()> {
        same_shape("shrink", x.shape(), out.shape())?;
        map(out, |i| {
            let v = x.data[i];
            let m = (v.abs() - lambda as f64).max(0.0);
            if v < 0.0 {
                -m
            } else {
                m
            }
        });
        Ok(())
    }
    fn affine(&self, x: &mut Mat64, alpha: f32, beta: f32) -> Result<()> {
        x.data
            .iter_mut()
            .for_each(|v| *v = alpha as f64 * *v + beta as f64);
        Ok(())
    }
    fn axpby(&self, alpha: f32, x: &Mat64, beta: f32, y: &mut Mat64) -> Result<()> {
        same_shape("axpby", x.shape(), y.shape())?;
        for (o, v) in y.data.iter_mut().zip(&x.data) {
            let old = if beta == 0.0 { 0.0 } else { beta as f64 * *o };
            *o = alpha as f64 * v + old;
        }
        Ok(())
    }
    fn bernoulli(&self, p: &Mat64, out: &mut Mat64, rng: &mut RngStream) -> Result<()> {
        same_shape("bernoulli", p.shape(), out.shape())?;
        let d = rng.next_draw();
        map(out, |i| ((d.uniform(i) as f64) < p.data[i]) as u8 as f64);
        Ok(())
    }
    fn gaussian(&self, mean: &Mat64, std: f32, out: &mut Mat64, rng: &mut RngStream) -> Result<()> {
        same_shape("gaussian", mean.shape(), out.shape())?;
        let d = rng.next_draw();
        map(out, |i| mean.data[i] + std as f64 * d.normal(i) as f64);
        Ok(())
    }
}

impl Fused for F64 {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::Cpu;

    /// Every core op against the CPU backend on the same f32 inputs.
    #[test]
    fn agrees_with_the_cpu_backend() {
        let (cpu, r) = (Cpu::new(), F64);
        let d = RngStream::new(3, 3).next_draw();
        let host = |rows: usize, cols: usize, off: usize| {
            HostMat::from_fn(rows, cols, |i, j| 2.0 * d.uniform(off + i * cols + j) - 1.0)
        };
        let (a, b, v) = (host(5, 7, 0), host(7, 4, 100), host(1, 4, 200));
        let close = |x: &HostMat, y: &HostMat, what: &str| {
            assert!(x.max_abs_diff(y).unwrap() < 1e-5, "{what}: {x:?} vs {y:?}");
        };
        let (ac, bc) = (a.clone(), b.clone());
        let (ar, br) = (r.upload(&a).unwrap(), r.upload(&b).unwrap());
        let mut cc = HostMat::zeros(5, 4);
        let mut cr = r.zeros(5, 4).unwrap();
        cpu.gemm(0.5, ac.n(), bc.n(), 0.0, &mut cc).unwrap();
        r.gemm(0.5, ar.n(), br.n(), 0.0, &mut cr).unwrap();
        close(&cc, &r.download(&cr).unwrap(), "gemm");
        cpu.add_row_vec(&mut cc, &v, 2.0).unwrap();
        r.add_row_vec(&mut cr, &r.upload(&v).unwrap(), 2.0).unwrap();
        close(&cc, &r.download(&cr).unwrap(), "add_row_vec");
        for op in Unary::ALL {
            let x = host(3, 5, 300);
            let x = if matches!(op, Unary::Log | Unary::Sqrt) {
                HostMat::from_fn(3, 5, |i, j| x.get(i, j).abs() + 0.1)
            } else {
                x
            };
            let mut want = x.clone();
            cpu.unary_inplace(op, &mut want).unwrap();
            let mut got = r.upload(&x).unwrap();
            r.unary_inplace(op, &mut got).unwrap();
            close(&want, &r.download(&got).unwrap(), &format!("{op:?}"));
        }
        let mut sc = HostMat::zeros(5, 1);
        let mut sr = r.zeros(5, 1).unwrap();
        for argmax in [false, true] {
            if argmax {
                cpu.row_argmax(&a, &mut sc).unwrap();
                r.row_argmax(&ar, &mut sr).unwrap();
            } else {
                cpu.row_max(&a, &mut sc).unwrap();
                r.row_max(&ar, &mut sr).unwrap();
            }
            close(&sc, &r.download(&sr).unwrap(), "row max / argmax");
        }
        let mut bern_c = HostMat::zeros(5, 7);
        let mut bern_r = r.zeros(5, 7).unwrap();
        let p = HostMat::from_fn(5, 7, |i, j| ((i * 7 + j) % 10) as f32 / 10.0);
        cpu.bernoulli(&p, &mut bern_c, &mut RngStream::new(9, 9))
            .unwrap();
        r.bernoulli(
            &r.upload(&p).unwrap(),
            &mut bern_r,
            &mut RngStream::new(9, 9),
        )
        .unwrap();
        assert_eq!(
            bern_c,
            r.download(&bern_r).unwrap(),
            "the same Bernoulli bits"
        );
        let bad = r.gemm(1.0, ar.n(), ar.n(), 0.0, &mut cr).unwrap_err();
        assert!(bad.to_string().contains("5x7"), "{bad}");
    }
}
