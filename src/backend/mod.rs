//! The compute interface every model is written against, and its two
//! implementations: [`cpu::Cpu`] (rayon + SIMD GEMM) and [`gpu::Gpu`] (wgpu,
//! WGSL kernels in `shaders/`).
//!
//! Matrices are f32, row-major, and live wherever the backend keeps them.
//! Operations are queued, not awaited: only `download`, `sum` and `sync` wait
//! for the device, so a training loop that reads nothing back never stalls.
//!
//! Random draws take a [`RngStream`]; each call consumes one draw offset, and
//! element `i` of the result depends only on (seed, stream, offset, i) (see
//! [`crate::rng`]), so both backends give the same samples.

pub mod cpu;
pub mod gpu;

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
}

impl Unary {
    pub const ALL: [Unary; 11] = [
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
}

/// The operations the models need. Shapes are checked on every call and a
/// mismatch is an [`Error::Shape`] naming the operation and the shapes.
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
    /// `C = alpha * op(A) * op(B) + beta * C`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        alpha: f32,
        a: &Self::Mat,
        ta: Trans,
        b: &Self::Mat,
        tb: Trans,
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
    /// One momentum step of a bias from the column sums of two statistics
    /// (the positive and negative phase), applied at once:
    /// `step = mom * step + alpha_a * Σ_rows A + alpha_b * Σ_rows B`, then
    /// `param += step`. `A` and `B` share their column count; `step` and
    /// `param` are 1 x cols. (Six dispatches of a training step in one.)
    #[allow(clippy::too_many_arguments)]
    fn bias_step(
        &self,
        a: &Self::Mat,
        alpha_a: f32,
        b: &Self::Mat,
        alpha_b: f32,
        mom: f32,
        step: &mut Self::Mat,
        param: &mut Self::Mat,
    ) -> Result<()>;
    /// [`bias_step`](Self::bias_step) for both layers of an RBM at once,
    /// with the same scales and momentum: the visible biases from `v.a` and
    /// `v.b`, the hidden ones from `h.a` and `h.b`. (On a GPU, one dispatch
    /// instead of two when the statistics of each phase share their row
    /// count.)
    fn bias_steps(
        &self,
        v: BiasStep<'_, Self::Mat>,
        h: BiasStep<'_, Self::Mat>,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
    ) -> Result<()> {
        self.bias_step(v.a, alpha_a, v.b, alpha_b, mom, v.step, v.param)?;
        self.bias_step(h.a, alpha_a, h.b, alpha_b, mom, h.step, h.param)
    }
    /// `out = alpha * (sum over columns of X) + beta * out`, `out` is rows x 1.
    fn row_sums(&self, x: &Self::Mat, alpha: f32, beta: f32, out: &mut Self::Mat) -> Result<()>;
    /// Sum of all elements (waits for the device).
    fn sum(&self, x: &Self::Mat) -> Result<f32>;

    // ---- elementwise ---------------------------------------------------
    fn unary(&self, op: Unary, x: &Self::Mat, out: &mut Self::Mat) -> Result<()>;
    fn unary_inplace(&self, op: Unary, x: &mut Self::Mat) -> Result<()>;
    /// `out = a op b`.
    fn binary(&self, op: Binary, a: &Self::Mat, b: &Self::Mat, out: &mut Self::Mat) -> Result<()>;
    /// `a = a op b`.
    fn binary_inplace(&self, op: Binary, a: &mut Self::Mat, b: &Self::Mat) -> Result<()>;
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
    /// The conditional Gibbs sampling lives on, in one pass:
    /// `prob = sigmoid(alpha * (op(A) op(B) + bias))` with `bias` 1 x cols,
    /// and, if `sample` is given, `sample = bernoulli(prob)`.
    #[allow(clippy::too_many_arguments)]
    fn sigmoid_affine(
        &self,
        alpha: f32,
        a: &Self::Mat,
        ta: Trans,
        b: &Self::Mat,
        tb: Trans,
        bias: &Self::Mat,
        prob: &mut Self::Mat,
        sample: Option<&mut Self::Mat>,
        rng: &mut RngStream,
    ) -> Result<()>;
    /// The hidden half of one annealing or tempering step, in one pass over
    /// `x = v W` (rows x nh): with `y = x + b_h` (`b_h` 1 x nh),
    /// `lw[r] += Σ_j softplus(beta1 y_rj) - softplus(beta0 y_rj)` (`lw` rows x 1:
    /// the change of log p*(v) between the two inverse temperatures, hidden
    /// units summed out) and, if `h` is given, `h = bernoulli(sigmoid(beta1 y))`
    /// (one draw, element index `r * nh + j`, as in [`Backend::bernoulli`]).
    ///
    /// With `linear_last = Some(c)` the last column of `x` is not a hidden
    /// unit but a linear term carried along by the GEMM that made `x` (AIS
    /// puts `v·(b_v - b_A)` there): it adds `(beta1 - beta0) y` to `lw`, and
    /// its `h` entry is set to `c` (AIS passes `(1-β)/β`, so that the next
    /// GEMM with a matching extra weight column adds the base-rate bias).
    /// One dispatch instead of three per annealing step.
    #[allow(clippy::too_many_arguments)]
    fn tempered_hidden(
        &self,
        x: &Self::Mat,
        b_h: &Self::Mat,
        beta0: f32,
        beta1: f32,
        linear_last: Option<f32>,
        lw: &mut Self::Mat,
        h: Option<&mut Self::Mat>,
        rng: &mut RngStream,
    ) -> Result<()>;
    /// `x = v W`, then [`tempered_hidden`](Self::tempered_hidden) of `x`: the
    /// hidden half of an annealing step from the visible states. `x` is
    /// scratch, its contents afterwards unspecified: when the GPU splits the
    /// product over k, the tempered pass sums the partial products itself
    /// (same order, same bits) instead of a reduction pass writing `x`.
    #[allow(clippy::too_many_arguments)]
    fn gemm_tempered_hidden(
        &self,
        v: &Self::Mat,
        w: &Self::Mat,
        x: &mut Self::Mat,
        b_h: &Self::Mat,
        beta0: f32,
        beta1: f32,
        linear_last: Option<f32>,
        lw: &mut Self::Mat,
        h: Option<&mut Self::Mat>,
        rng: &mut RngStream,
    ) -> Result<()> {
        self.gemm(1.0, v, Trans::N, w, Trans::N, 0.0, x)?;
        self.tempered_hidden(x, b_h, beta0, beta1, linear_last, lw, h, rng)
    }
}

/// One layer's part of [`Backend::bias_steps`]: the statistics of the two
/// phases (`a`, `b`), the momentum `step` and the bias `param`.
pub struct BiasStep<'a, M> {
    pub a: &'a M,
    pub b: &'a M,
    pub step: &'a mut M,
    pub param: &'a mut M,
}

/// Shape checks shared by the backends' `bias_step`.
pub fn bias_step_check(
    a: (usize, usize),
    b: (usize, usize),
    step: (usize, usize),
    param: (usize, usize),
) -> Result<()> {
    let n = a.1;
    if b.1 != n || step != (1, n) || param != (1, n) {
        return Err(Error::shape(
            "bias_step",
            format!(
                "statistics {}x{} and {}x{}, step {}x{}, parameter {}x{}: need equal column \
                 counts and 1x{n} step and parameter",
                a.0, a.1, b.0, b.1, step.0, step.1, param.0, param.1
            ),
        ));
    }
    Ok(())
}

/// Shape checks shared by the backends' `tempered_hidden`.
pub fn tempered_hidden_check(
    x: (usize, usize),
    b_h: (usize, usize),
    lw: (usize, usize),
    h: Option<(usize, usize)>,
) -> Result<()> {
    row_vec_shape("tempered_hidden (b_h)", x, b_h)?;
    col_vec_shape("tempered_hidden (lw)", x, lw)?;
    if let Some(h) = h {
        same_shape("tempered_hidden (h)", x, h)?;
    }
    Ok(())
}

/// Checks the shapes of `C = op(A) op(B)` and returns (m, k, n).
pub fn gemm_dims(
    op: &'static str,
    a: (usize, usize),
    ta: Trans,
    b: (usize, usize),
    tb: Trans,
    c: (usize, usize),
) -> Result<(usize, usize, usize)> {
    let (m, k) = ta.apply(a);
    let (k2, n) = tb.apply(b);
    if k != k2 || c != (m, n) {
        return Err(Error::shape(
            op,
            format!(
                "op(A) is {m}x{k} (A {}x{} {ta:?}), op(B) is {k2}x{n} (B {}x{} {tb:?}), C is {}x{}",
                a.0, a.1, b.0, b.1, c.0, c.1
            ),
        ));
    }
    Ok((m, k, n))
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

/// Which backend to run on.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// The best hardware GPU adapter if one is found, else the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl std::str::FromStr for Choice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Choice::Auto),
            "cpu" => Ok(Choice::Cpu),
            "gpu" => Ok(Choice::Gpu),
            other => Err(Error::value(
                "backend",
                format!("'{other}' is not one of auto, cpu, gpu"),
            )),
        }
    }
}

/// The environment variable that forces a backend when no flag is given.
pub const BACKEND_ENV: &str = "EBMKIT_BACKEND";

/// A backend chosen at run time. Model code is generic; the CLI dispatches
/// through [`with_backend!`](crate::with_backend).
pub enum AnyBackend {
    Cpu(cpu::Cpu),
    Gpu(gpu::Gpu),
}

impl AnyBackend {
    /// `choice` from a flag, else `EBMKIT_BACKEND`, else auto. Auto falls back
    /// to the CPU, saying so once on stderr, when no GPU adapter exists.
    pub fn select(choice: Option<Choice>) -> Result<AnyBackend> {
        let choice = match choice {
            Some(c) => c,
            None => match std::env::var(BACKEND_ENV) {
                Ok(s) => s.parse()?,
                Err(_) => Choice::Auto,
            },
        };
        match choice {
            Choice::Cpu => Ok(AnyBackend::Cpu(cpu::Cpu::new())),
            Choice::Gpu => Ok(AnyBackend::Gpu(gpu::Gpu::new()?)),
            Choice::Auto => match gpu::Gpu::new() {
                Ok(g) if g.is_software() => {
                    eprintln!(
                        "ebmkit: only a software GPU adapter ({}); running on the CPU backend \
                         (--backend gpu forces it)",
                        g.name()
                    );
                    Ok(AnyBackend::Cpu(cpu::Cpu::new()))
                }
                Ok(g) => Ok(AnyBackend::Gpu(g)),
                Err(e) => {
                    eprintln!("ebmkit: {e}; running on the CPU backend");
                    Ok(AnyBackend::Cpu(cpu::Cpu::new()))
                }
            },
        }
    }
    pub fn name(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => b.name(),
            AnyBackend::Gpu(b) => b.name(),
        }
    }
}

/// Runs a generic expression with `$b` bound to the concrete backend.
#[macro_export]
macro_rules! with_backend {
    ($any:expr, |$b:ident| $body:expr) => {
        match $any {
            $crate::backend::AnyBackend::Cpu($b) => $body,
            $crate::backend::AnyBackend::Gpu($b) => $body,
        }
    };
}
