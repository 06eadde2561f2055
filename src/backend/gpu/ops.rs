//! The core ops record and return: each is one dispatch (two for `sum`) of
//! a small kernel, and none waits for the device unless it must hand a
//! value to the host (`download`, `sum`, `sync`), so that a loop of them
//! runs at the rate it can be recorded, not at the rate of round trips.

use super::device::{Bind, Gpu, GpuMat, ID_PARTIALS, ID_TOTAL, SUM_GROUPS};
use super::kernels::{
    ElementwiseParams, GatherParams, Kernel, PhiloxWordsParams, ReduceParams, SampleParams, WG,
};
use crate::backend::{
    col_vec_shape, gather_check, gemm_dims, row_vec_shape, same_shape, sums_shape, Backend, Binary,
    Matrix, Op, Unary,
};
use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::{Draw, RngStream};

/// The parameters of an elementwise kernel over `len` elements.
fn ew(len: usize) -> ElementwiseParams {
    ElementwiseParams {
        len: len as u32,
        ..Default::default()
    }
}

impl Gpu {
    /// One of the row / column broadcasts of `v` over `m` (shapes checked by
    /// the caller); `alpha` scales the added vector, the products ignore it.
    fn broadcast(&self, kernel: Kernel, m: &mut GpuMat, v: &GpuMat, alpha: f32) -> Result<()> {
        let p = ElementwiseParams {
            cols: m.cols as u32,
            alpha,
            ..ew(m.len())
        };
        self.run(kernel, &[m.b(), v.b()], &p, m.len())
    }

    /// The raw Philox words of a draw as the WGSL generator produces them:
    /// element `i` is word `i % 4` of block `i / 4` (for the bit-exactness tests).
    pub fn philox_words(&self, draw: Draw, n: usize) -> Result<Vec<u32>> {
        let out = self.zeros(1, n)?;
        let p = PhiloxWordsParams {
            len: n as u32,
            draw: draw.into(),
        };
        self.run(Kernel::PhiloxWords, &[out.b()], &p, n.div_ceil(4))?;
        let bytes = self.read_back(&out.buf, out.offset, n as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

impl Backend for Gpu {
    type Mat = GpuMat;

    fn name(&self) -> String {
        format!("gpu: {} ({:?})", self.i.info.name, self.i.info.backend)
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<GpuMat> {
        self.alloc(rows, cols, None)
    }

    fn upload(&self, host: &HostMat) -> Result<GpuMat> {
        if host.data.len() != host.rows * host.cols {
            return Err(Error::shape(
                "upload",
                format!(
                    "{}x{} with {} values",
                    host.rows,
                    host.cols,
                    host.data.len()
                ),
            ));
        }
        self.alloc(host.rows, host.cols, Some(&host.data))
    }

    fn write(&self, dst: &mut GpuMat, host: &HostMat) -> Result<()> {
        same_shape("write", dst.shape(), host.shape())?;
        if host.data.is_empty() {
            return Ok(());
        }
        // Work already recorded must see the old contents: submit it first,
        // since queue.write_buffer lands before the next submit.
        let mut st = self.lock();
        self.flush(&mut st);
        self.i
            .queue
            .write_buffer(&dst.buf, dst.offset, bytemuck::cast_slice(&host.data));
        Ok(())
    }

    fn download(&self, m: &GpuMat) -> Result<HostMat> {
        let bytes = self.read_back(&m.buf, m.offset, m.len() as u64 * 4)?;
        HostMat::new(m.rows, m.cols, bytemuck::pod_collect_to_vec(&bytes))
    }

    fn fill(&self, m: &mut GpuMat, value: f32) -> Result<()> {
        let p = ElementwiseParams {
            value,
            ..ew(m.len())
        };
        self.run(Kernel::Fill, &[m.b()], &p, m.len())
    }

    fn copy(&self, src: &GpuMat, dst: &mut GpuMat) -> Result<()> {
        same_shape("copy", src.shape(), dst.shape())?;
        self.run(Kernel::Copy, &[src.b(), dst.b()], &ew(src.len()), src.len())
    }

    fn gather_rows(&self, src: &GpuMat, idx: &[u32], dst: &mut GpuMat) -> Result<()> {
        gather_check("gather_rows", src.shape(), idx, dst.shape())?;
        if dst.is_empty() {
            return Ok(());
        }
        let grid = self.grid((dst.len() as u64).div_ceil(WG))?;
        let mut st = self.lock();
        let (idx_buf, idx_id, start) = self.push_indices(&mut st, idx)?;
        let p = GatherParams {
            len: dst.len() as u32,
            cols: dst.cols as u32,
            first_index: start,
        };
        self.record(
            &mut st,
            Kernel::Gather,
            &[src.b(), Bind::whole(&idx_buf, idx_id), dst.b()],
            &p,
            grid,
        )
    }

    fn sync(&self) -> Result<()> {
        {
            let mut st = self.lock();
            self.flush(&mut st);
        }
        self.wait()
    }

    fn gemm(
        &self,
        alpha: f32,
        a: Op<'_, GpuMat>,
        b: Op<'_, GpuMat>,
        beta: f32,
        c: &mut GpuMat,
    ) -> Result<()> {
        let dims = gemm_dims("gemm", a, b, c.shape())?;
        self.gemm_impl(dims, (alpha, beta), a, b, c, None)
    }

    fn add_row_vec(&self, m: &mut GpuMat, v: &GpuMat, alpha: f32) -> Result<()> {
        row_vec_shape("add_row_vec", m.shape(), v.shape())?;
        self.broadcast(Kernel::AddRowVec, m, v, alpha)
    }

    fn add_col_vec(&self, m: &mut GpuMat, v: &GpuMat, alpha: f32) -> Result<()> {
        col_vec_shape("add_col_vec", m.shape(), v.shape())?;
        self.broadcast(Kernel::AddColVec, m, v, alpha)
    }

    fn mul_row_vec(&self, m: &mut GpuMat, v: &GpuMat) -> Result<()> {
        row_vec_shape("mul_row_vec", m.shape(), v.shape())?;
        self.broadcast(Kernel::MulRowVec, m, v, 1.0)
    }

    fn mul_col_vec(&self, m: &mut GpuMat, v: &GpuMat) -> Result<()> {
        col_vec_shape("mul_col_vec", m.shape(), v.shape())?;
        self.broadcast(Kernel::MulColVec, m, v, 1.0)
    }

    fn col_sums(&self, x: &GpuMat, alpha: f32, beta: f32, out: &mut GpuMat) -> Result<()> {
        sums_shape("col_sums", x.shape(), out.shape(), (1, x.cols))?;
        let p = ReduceParams {
            rows: x.rows as u32,
            cols: x.cols as u32,
            alpha,
            beta,
            ..Default::default()
        };
        let grid = self.grid((x.cols as u64).div_ceil(64))?;
        let mut st = self.lock();
        self.record(&mut st, Kernel::ColSums, &[x.b(), out.b()], &p, grid)
    }

    fn row_sums(&self, x: &GpuMat, alpha: f32, beta: f32, out: &mut GpuMat) -> Result<()> {
        sums_shape("row_sums", x.shape(), out.shape(), (x.rows, 1))?;
        let p = ReduceParams {
            rows: x.rows as u32,
            cols: x.cols as u32,
            alpha,
            beta,
            ..Default::default()
        };
        let grid = self.grid(x.rows as u64)?;
        let mut st = self.lock();
        self.record(&mut st, Kernel::RowSums, &[x.b(), out.b()], &p, grid)
    }

    fn sum(&self, x: &GpuMat) -> Result<f32> {
        if x.is_empty() {
            return Ok(0.0);
        }
        let groups = (x.len() as u64).div_ceil(WG).min(SUM_GROUPS);
        let len = |len: usize| ReduceParams {
            len: len as u32,
            ..Default::default()
        };
        let mut st = self.lock();
        {
            let partials = Bind::whole(&self.i.partials, ID_PARTIALS);
            self.record(
                &mut st,
                Kernel::SumPartial,
                &[x.b(), partials],
                &len(x.len()),
                (groups as u32, 1, 1),
            )?;
            self.record(
                &mut st,
                Kernel::SumPartial,
                &[partials, Bind::whole(&self.i.total, ID_TOTAL)],
                &len(groups as usize),
                (1, 1, 1),
            )?;
        }
        let bytes = self.read_back_locked(&mut st, &self.i.total, 0, 4)?;
        Ok(bytemuck::pod_read_unaligned::<f32>(&bytes[..4]))
    }

    fn row_max(&self, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        sums_shape("row_max", x.shape(), out.shape(), (x.rows, 1))?;
        self.row_reduce(Kernel::RowMax, x, out)
    }

    fn row_argmax(&self, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        sums_shape("row_argmax", x.shape(), out.shape(), (x.rows, 1))?;
        self.row_reduce(Kernel::RowArgmax, x, out)
    }

    fn shrink(&self, x: &GpuMat, lambda: f32, out: &mut GpuMat) -> Result<()> {
        same_shape("shrink", x.shape(), out.shape())?;
        let p = ElementwiseParams {
            alpha: lambda,
            ..ew(x.len())
        };
        self.run(Kernel::Shrink, &[x.b(), out.b()], &p, x.len())
    }

    fn unary(&self, op: Unary, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        same_shape("unary", x.shape(), out.shape())?;
        let p = ElementwiseParams {
            op: op as u32,
            ..ew(x.len())
        };
        self.run(Kernel::Unary, &[x.b(), out.b()], &p, x.len())
    }

    fn unary_inplace(&self, op: Unary, x: &mut GpuMat) -> Result<()> {
        let p = ElementwiseParams {
            op: op as u32,
            ..ew(x.len())
        };
        self.run(Kernel::UnaryInplace, &[x.b()], &p, x.len())
    }

    fn binary(&self, op: Binary, a: &GpuMat, b: &GpuMat, out: &mut GpuMat) -> Result<()> {
        same_shape("binary", a.shape(), b.shape())?;
        same_shape("binary", a.shape(), out.shape())?;
        let p = ElementwiseParams {
            op: op as u32,
            ..ew(a.len())
        };
        self.run(Kernel::Binary, &[a.b(), b.b(), out.b()], &p, a.len())
    }

    fn binary_inplace(&self, op: Binary, a: &mut GpuMat, b: &GpuMat) -> Result<()> {
        same_shape("binary_inplace", a.shape(), b.shape())?;
        let p = ElementwiseParams {
            op: op as u32,
            ..ew(a.len())
        };
        self.run(Kernel::BinaryInplace, &[a.b(), b.b()], &p, a.len())
    }

    fn affine(&self, x: &mut GpuMat, alpha: f32, beta: f32) -> Result<()> {
        let p = ElementwiseParams {
            alpha,
            beta,
            ..ew(x.len())
        };
        self.run(Kernel::Affine, &[x.b()], &p, x.len())
    }

    fn axpby(&self, alpha: f32, x: &GpuMat, beta: f32, y: &mut GpuMat) -> Result<()> {
        same_shape("axpby", x.shape(), y.shape())?;
        let p = ElementwiseParams {
            alpha,
            beta,
            ..ew(x.len())
        };
        self.run(Kernel::Axpby, &[x.b(), y.b()], &p, x.len())
    }

    fn bernoulli(&self, p: &GpuMat, out: &mut GpuMat, rng: &mut RngStream) -> Result<()> {
        same_shape("bernoulli", p.shape(), out.shape())?;
        let params = SampleParams {
            len: p.len() as u32,
            std_dev: 0.0,
            draw: rng.next_draw().into(),
        };
        self.run(
            Kernel::Bernoulli,
            &[p.b(), out.b()],
            &params,
            p.len().div_ceil(4),
        )
    }

    fn gaussian(
        &self,
        mean: &GpuMat,
        std: f32,
        out: &mut GpuMat,
        rng: &mut RngStream,
    ) -> Result<()> {
        same_shape("gaussian", mean.shape(), out.shape())?;
        let p = SampleParams {
            len: mean.len() as u32,
            std_dev: std,
            draw: rng.next_draw().into(),
        };
        self.run(
            Kernel::Gaussian,
            &[mean.b(), out.b()],
            &p,
            mean.len().div_ceil(2),
        )
    }
}

impl Gpu {
    /// A one-workgroup-per-row reduction of `x` into the rows x 1 `out`
    /// (shapes checked by the caller).
    fn row_reduce(&self, kernel: Kernel, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        let p = ReduceParams {
            rows: x.rows as u32,
            cols: x.cols as u32,
            ..Default::default()
        };
        let grid = self.grid(x.rows as u64)?;
        let mut st = self.lock();
        self.record(&mut st, kernel, &[x.b(), out.b()], &p, grid)
    }
}
