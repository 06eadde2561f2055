//! The compute interface every model is written against, and its two
//! implementations: [`cpu::Cpu`] (rayon + SIMD GEMM) and [`gpu::Gpu`] (wgpu,
//! WGSL kernels in `shaders/`).
//!
//! - [`Backend`]: the core ops every model family needs (memory, GEMM with
//!   either operand transposed, row / column broadcasts, elementwise maps,
//!   reductions, Bernoulli / Gaussian draws).
//! - [`Fused`]: an extension trait of fused kernels that hot loops live on
//!   (GEMM + bias + sigmoid + Bernoulli, the momentum step of a bias, the
//!   tempered hidden pass of annealing). Each has a default composition in
//!   core ops ([`fused::composed`]), so a new backend needs only [`Backend`];
//!   the CPU and the GPU override every one with a single pass.
//! - [`any`]: the backend chosen at run time ([`AnyBackend`], [`Choice`]).
//!
//! Matrices are f32, row-major, and live wherever the backend keeps them.
//! Operations are queued, not awaited: only `download`, `sum` and `sync` wait
//! for the device, so a training loop that reads nothing back never stalls.
//!
//! Random draws take a [`RngStream`]; each call consumes one draw offset, and
//! element `i` of the result depends only on (seed, stream, offset, i) (see
//! [`crate::rng`]), so both backends give the same samples.

pub mod any;
pub mod cpu;
pub mod fused;
pub mod gpu;
pub mod reference;

pub use any::{AnyBackend, Choice, BACKEND_ENV};
pub use fused::{BiasStep, Fused, Sample, Tempered};

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

/// Whether an operand enters a product as stored (`N`) or transposed (`T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trans {
    N,
    T,
}

impl Trans {
    /// Rows and columns of `op(X)` for a stored `rows x cols` matrix.
    pub fn apply(self, (rows, cols): (usize, usize)) -> (usize, usize) {
        match self {
            Trans::N => (rows, cols),
            Trans::T => (cols, rows),
        }
    }
}

/// `op(X)`: a matrix as it enters a product, as stored or transposed
/// ([`Matrix::n`], [`Matrix::t`]).
#[derive(Debug)]
pub struct Op<'a, M> {
    pub m: &'a M,
    pub t: Trans,
}

impl<M> Clone for Op<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Op<'_, M> {}

impl<M: Matrix> Op<'_, M> {
    /// Rows and columns of `op(X)`.
    pub fn shape(&self) -> (usize, usize) {
        self.t.apply(self.m.shape())
    }
}

/// Elementwise functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    Sigmoid,
    /// log(1 + e^x), computed without overflow.
    Softplus,
    Exp,
    Log,
    Tanh,
    Relu,
    Square,
    Sqrt,
    Neg,
    Abs,
    /// `Σ_{i≥1} softplus(x - i + ½)`: the log-partition of a noisy
    /// rectified linear unit, summed to f32 precision (see [`nrelu_log_partition`]).
    NreluLogPartition,
    /// 1 for x > 0, else 0: the derivative of ReLU.
    Step,
    /// -1, 0 or 1.
    Sign,
}

impl Unary {
    pub const ALL: [Unary; 13] = [
        Unary::Sigmoid,
        Unary::Softplus,
        Unary::Exp,
        Unary::Log,
        Unary::Tanh,
        Unary::Relu,
        Unary::Square,
        Unary::Sqrt,
        Unary::Neg,
        Unary::Abs,
        Unary::NreluLogPartition,
        Unary::Step,
        Unary::Sign,
    ];
    /// The reference definition; the CPU backend uses it and the WGSL kernels
    /// are tested against it.
    #[inline(always)]
    pub fn eval(self, x: f32) -> f32 {
        match self {
            Unary::Sigmoid => sigmoid(x),
            Unary::Softplus => softplus(x),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Tanh => x.tanh(),
            Unary::Relu => x.max(0.0),
            Unary::Square => x * x,
            Unary::Sqrt => x.sqrt(),
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::NreluLogPartition => nrelu_log_partition(x),
            Unary::Step => (x > 0.0) as u8 as f32,
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
}

/// Elementwise functions of two arguments of the same shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

impl Binary {
    pub const ALL: [Binary; 6] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    #[inline(always)]
    pub fn eval(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Max => a.max(b),
            Binary::Min => a.min(b),
        }
    }
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    // max(x,0) + log1p(exp(-|x|)) never overflows and keeps precision for large |x|.
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Soft thresholding: `sign(x) max(|x| - lambda, 0)` (the reference of
/// [`Backend::shrink`]).
#[inline(always)]
pub fn shrink(x: f32, lambda: f32) -> f32 {
    let m = (x.abs() - lambda).max(0.0);
    if x < 0.0 {
        -m
    } else {
        m
    }
}

/// The maximum of a row and the first column holding it (`(f32::MIN, 0)`
/// for an empty row): the reference of [`Backend::row_max`] and
/// [`Backend::row_argmax`].
pub fn row_max_arg(row: &[f32]) -> (f32, usize) {
    let mut best = (f32::MIN, 0);
    for (c, &v) in row.iter().enumerate() {
        if c == 0 || v > best.0 {
            best = (v, c);
        }
    }
    best
}

/// Terms kept on each side of the kink by [`nrelu_log_partition`]: the first
/// one dropped is below e^-20 ≈ 2e-9 of a term of order one.
pub const NRELU_TAIL_TERMS: usize = 20;

/// `L(x) = Σ_{i≥1} softplus(x - i + ½)`, the log-partition of an infinite
/// sum of binary units with shared input and biases offset by -½, -1½, ...
/// (Nair & Hinton 2010). The series converges, so it is summed exactly rather
/// than truncated at a fixed count: with `n = max(0, ⌊x + ½⌋)` the terms
/// `y_i = x - i + ½` are non-negative for `i ≤ n`, and
/// `softplus(y) = max(y, 0) + log1p(e^-|y|)` splits the sum into the closed
/// form `Σ_{i≤n} y_i = n (x - n/2)` plus `log1p(e^-|y_i|)` terms that decay
/// geometrically away from the kink (`|y_i| = f + k` below it, `1 - f + k`
/// above it, `f = x + ½ - n`).
#[inline]
pub fn nrelu_log_partition(x: f32) -> f32 {
    let n = (x + 0.5).floor().max(0.0);
    let f = x + 0.5 - n;
    let below = (n as usize).min(NRELU_TAIL_TERMS);
    let mut tail = 0.0f32;
    for k in 0..NRELU_TAIL_TERMS {
        let k = k as f32;
        tail += (-(1.0 - f + k)).exp().ln_1p();
    }
    for k in 0..below {
        tail += (-(f + k as f32)).exp().ln_1p();
    }
    n * (x - 0.5 * n) + tail
}

/// What a backend matrix must tell about itself without the backend.
pub trait Matrix: Send + Sync {
    fn shape(&self) -> (usize, usize);
    fn rows(&self) -> usize {
        self.shape().0
    }
    fn cols(&self) -> usize {
        self.shape().1
    }
    fn len(&self) -> usize {
        self.rows() * self.cols()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The matrix as stored, as a GEMM operand.
    fn n(&self) -> Op<'_, Self>
    where
        Self: Sized,
    {
        Op {
            m: self,
            t: Trans::N,
        }
    }
    /// The matrix transposed, as a GEMM operand.
    fn t(&self) -> Op<'_, Self>
    where
        Self: Sized,
    {
        Op {
            m: self,
            t: Trans::T,
        }
    }
}

/// The core operations every model needs. Shapes are checked on every call
/// and a mismatch is an [`Error::Shape`] naming the operation and the shapes.
///
/// ```
/// use ebmkit::prelude::*;
/// # fn main() -> ebmkit::Result<()> {
/// let be = Cpu::new();
/// let a = be.upload(&HostMat::from_fn(2, 3, |r, c| (r + c) as f32))?;
/// let mut c = be.zeros(2, 2)?;
/// // C = A Aᵀ: operands say how they enter the product.
/// be.gemm(1.0, a.n(), a.t(), 0.0, &mut c)?;
/// assert_eq!(be.download(&c)?.data, vec![5.0, 8.0, 8.0, 14.0]);
/// assert!(be.gemm(1.0, a.n(), a.n(), 0.0, &mut c).is_err());
/// # Ok(())
/// # }
/// ```
pub trait Backend: Send + Sync + 'static {
    type Mat: Matrix;

    /// A short human-readable description ("cpu (2 threads)", "gpu: NVIDIA H100 (Vulkan)").
    fn name(&self) -> String;

    // ---- memory --------------------------------------------------------
    fn zeros(&self, rows: usize, cols: usize) -> Result<Self::Mat>;
    fn upload(&self, host: &HostMat) -> Result<Self::Mat>;
    /// Overwrites an existing matrix of the same shape (no allocation).
    fn write(&self, dst: &mut Self::Mat, host: &HostMat) -> Result<()>;
    /// Waits for queued work and copies the matrix to the host.
    fn download(&self, m: &Self::Mat) -> Result<HostMat>;
    fn fill(&self, m: &mut Self::Mat, value: f32) -> Result<()>;
    /// `dst = src` (same shape).
    fn copy(&self, src: &Self::Mat, dst: &mut Self::Mat) -> Result<()>;
    /// `dst[i, :] = src[idx[i], :]`: a minibatch from a resident data set.
    fn gather_rows(&self, src: &Self::Mat, idx: &[u32], dst: &mut Self::Mat) -> Result<()>;
    /// Blocks until all queued work is done.
    fn sync(&self) -> Result<()>;

    // ---- linear algebra ------------------------------------------------
    /// `C = alpha * op(A) * op(B) + beta * C`; with `beta = 0` the old
    /// contents of C are never read (NaN included).
    fn gemm(
        &self,
        alpha: f32,
        a: Op<'_, Self::Mat>,
        b: Op<'_, Self::Mat>,
        beta: f32,
        c: &mut Self::Mat,
    ) -> Result<()>;
    /// `M[r, c] += alpha * v[c]`, `v` is 1 x cols (a bias on every row).
    fn add_row_vec(&self, m: &mut Self::Mat, v: &Self::Mat, alpha: f32) -> Result<()>;
    /// `M[r, c] += alpha * v[r]`, `v` is rows x 1.
    fn add_col_vec(&self, m: &mut Self::Mat, v: &Self::Mat, alpha: f32) -> Result<()>;
    /// `M[r, c] *= v[c]`, `v` is 1 x cols (a per-column scale).
    fn mul_row_vec(&self, m: &mut Self::Mat, v: &Self::Mat) -> Result<()>;
    /// `M[r, c] *= v[r]`, `v` is rows x 1 (a per-row scale: masks, temperatures).
    fn mul_col_vec(&self, m: &mut Self::Mat, v: &Self::Mat) -> Result<()>;
    /// `out = alpha * (sum over rows of X) + beta * out`, `out` is 1 x cols.
    fn col_sums(&self, x: &Self::Mat, alpha: f32, beta: f32, out: &mut Self::Mat) -> Result<()>;
    /// `out = alpha * (sum over columns of X) + beta * out`, `out` is rows x 1.
    fn row_sums(&self, x: &Self::Mat, alpha: f32, beta: f32, out: &mut Self::Mat) -> Result<()>;
    /// Sum of all elements (waits for the device).
    fn sum(&self, x: &Self::Mat) -> Result<f32>;
    /// `out[r] = max_c x[r, c]`, `out` is rows x 1 (`f32::MIN` for an empty
    /// row): the shift of a stable log-sum-exp.
    fn row_max(&self, x: &Self::Mat, out: &mut Self::Mat) -> Result<()>;
    /// `out[r]` = the column of the largest entry of row `r` (the first of
    /// equal ones) as a float, `out` is rows x 1: a classifier's decision.
    fn row_argmax(&self, x: &Self::Mat, out: &mut Self::Mat) -> Result<()>;

    // ---- elementwise ---------------------------------------------------
    fn unary(&self, op: Unary, x: &Self::Mat, out: &mut Self::Mat) -> Result<()>;
    fn unary_inplace(&self, op: Unary, x: &mut Self::Mat) -> Result<()>;
    /// `out = a op b`.
    fn binary(&self, op: Binary, a: &Self::Mat, b: &Self::Mat, out: &mut Self::Mat) -> Result<()>;
    /// `a = a op b`.
    fn binary_inplace(&self, op: Binary, a: &mut Self::Mat, b: &Self::Mat) -> Result<()>;
    /// `out = sign(x) max(|x| - lambda, 0)`: soft thresholding, the
    /// proximal step of an L1 penalty (ISTA, LISTA, sparse codes).
    fn shrink(&self, x: &Self::Mat, lambda: f32, out: &mut Self::Mat) -> Result<()>;
    /// `x = alpha * x + beta` (scale and shift).
    fn affine(&self, x: &mut Self::Mat, alpha: f32, beta: f32) -> Result<()>;
    /// `y = alpha * x + beta * y`.
    fn axpby(&self, alpha: f32, x: &Self::Mat, beta: f32, y: &mut Self::Mat) -> Result<()>;

    // ---- sampling ------------------------------------------------------
    /// `out[i] = 1 if u_i < p[i] else 0`.
    fn bernoulli(&self, p: &Self::Mat, out: &mut Self::Mat, rng: &mut RngStream) -> Result<()>;
    /// `out[i] = mean[i] + std * z_i`, `z_i` standard normal.
    fn gaussian(
        &self,
        mean: &Self::Mat,
        std: f32,
        out: &mut Self::Mat,
        rng: &mut RngStream,
    ) -> Result<()>;
}

/// Checks the shapes of `C = op(A) op(B)` and returns (m, k, n).
pub fn gemm_dims<M: Matrix>(
    op: &'static str,
    a: Op<'_, M>,
    b: Op<'_, M>,
    c: (usize, usize),
) -> Result<(usize, usize, usize)> {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    if k != k2 || c != (m, n) {
        let (sa, sb) = (a.m.shape(), b.m.shape());
        return Err(Error::shape(
            op,
            format!(
                "op(A) is {m}x{k} (A {}x{} {:?}), op(B) is {k2}x{n} (B {}x{} {:?}), C is {}x{}",
                sa.0, sa.1, a.t, sb.0, sb.1, b.t, c.0, c.1
            ),
        ));
    }
    Ok((m, k, n))
}

/// Checks the output of a row or column reduction of `x` against `want`.
pub fn sums_shape(
    op: &'static str,
    x: (usize, usize),
    out: (usize, usize),
    want: (usize, usize),
) -> Result<()> {
    if out != want {
        return Err(Error::shape(
            op,
            format!(
                "a {}x{} input needs a {}x{} output, got {}x{}",
                x.0, x.1, want.0, want.1, out.0, out.1
            ),
        ));
    }
    Ok(())
}

pub fn same_shape(op: &'static str, a: (usize, usize), b: (usize, usize)) -> Result<()> {
    if a != b {
        return Err(Error::shape(
            op,
            format!("{}x{} vs {}x{}", a.0, a.1, b.0, b.1),
        ));
    }
    Ok(())
}

pub fn row_vec_shape(op: &'static str, m: (usize, usize), v: (usize, usize)) -> Result<()> {
    if v != (1, m.1) {
        return Err(Error::shape(
            op,
            format!(
                "expected a 1x{} row vector for a {}x{} matrix, got {}x{}",
                m.1, m.0, m.1, v.0, v.1
            ),
        ));
    }
    Ok(())
}

pub fn col_vec_shape(op: &'static str, m: (usize, usize), v: (usize, usize)) -> Result<()> {
    if v != (m.0, 1) {
        return Err(Error::shape(
            op,
            format!(
                "expected a {}x1 column vector for a {}x{} matrix, got {}x{}",
                m.0, m.0, m.1, v.0, v.1
            ),
        ));
    }
    Ok(())
}

pub fn gather_check(
    op: &'static str,
    src: (usize, usize),
    idx: &[u32],
    dst: (usize, usize),
) -> Result<()> {
    if dst != (idx.len(), src.1) {
        return Err(Error::shape(
            op,
            format!(
                "{} indices into a {}x{} source need a {}x{} destination, got {}x{}",
                idx.len(),
                src.0,
                src.1,
                idx.len(),
                src.1,
                dst.0,
                dst.1
            ),
        ));
    }
    if let Some(&bad) = idx.iter().find(|&&i| i as usize >= src.0) {
        return Err(Error::shape(
            op,
            format!("row index {bad} out of range for {} rows", src.0),
        ));
    }
    Ok(())
}
