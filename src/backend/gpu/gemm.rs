//! One hand-tiled template (`shaders/gemm.wgsl`) instantiated per variant,
//! because no single tiling serves both the RBM's small products and large
//! ones: the tile follows the output size, and a product of few output tiles
//! but a long k is split over k (split-K) so that the device fills up.
//!
//! Each variant fixes at compile time the tile (BM x BN x BK with TM x TN
//! outputs per thread, 256 threads), which operands are transposed, and
//! whether A, B and C are read as `vec4` (possible when the operand's stored
//! row length is a multiple of 4, so a 4-aligned vec4 is either wholly inside
//! the matrix or wholly outside) or as bounds-checked scalars. The inner
//! product, the global loads and the shared-memory stores are generated
//! fully unrolled so the accumulators stay in registers.

use std::fmt::Write as _;
use std::time::Instant;

use super::device::{Bind, Gpu, GpuMat};
use super::kernels::{GemmParams, Kernel, SplitKParams, WG};
use super::recorder::State;
use crate::backend::{Backend, Matrix, Op, Trans};
use crate::error::{Error, Result};
use crate::rng::Draw;

/// Split-K: aim for this many workgroups, give each at least this much of k,
/// split at most this many ways, and use at most this much scratch.
/// (Measured on an H100: 100x784x500 takes 40 us unsplit, 15 us split 8 ways;
/// 256x4096x256 200 us unsplit, 35 us split 8 ways.)
const SPLITK_TARGET_GROUPS: usize = 128;
const SPLITK_MIN_K: usize = 96;
const SPLITK_MAX: usize = 16;
const SPLITK_MAX_BYTES: u64 = 256 << 20;

/// Block-tile shapes. `BM = 16 TM`, `BN = 16 TN` (16 x 16 threads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    /// 128 x 128 x 8, 8 x 8 per thread: large products.
    L,
    /// 128 x 128 x 16, 8 x 8 per thread: fewer barriers, twice the shared memory.
    L16,
    /// 64 x 128 x 16, 4 x 8 per thread: medium products (1024^3 on big GPUs).
    M,
    /// 64 x 64 x 16, 4 x 4 per thread: small products (RBM minibatches).
    S,
}

impl Tile {
    /// (TM, TN, BK)
    pub fn dims(self) -> (u32, u32, u32) {
        match self {
            Tile::L => (8, 8, 8),
            Tile::L16 => (8, 8, 16),
            Tile::M => (4, 8, 16),
            Tile::S => (4, 4, 16),
        }
    }
    pub fn bm(self) -> u32 {
        16 * self.dims().0
    }
    pub fn bn(self) -> u32 {
        16 * self.dims().1
    }
    pub fn parse(s: &str) -> Option<Tile> {
        match s.to_ascii_uppercase().as_str() {
            "L" => Some(Tile::L),
            "L16" => Some(Tile::L16),
            "M" => Some(Tile::M),
            "S" => Some(Tile::S),
            _ => None,
        }
    }
    /// The tile for an m x n output: the largest one that still gives enough
    /// workgroups to fill a big GPU (about two per streaming multiprocessor on
    /// a 132-SM H100); small products take the small tile.
    pub fn choose(m: usize, n: usize) -> Tile {
        let tiles = |t: Tile| m.div_ceil(t.bm() as usize) * n.div_ceil(t.bn() as usize);
        if tiles(Tile::L) >= 256 {
            Tile::L
        } else if tiles(Tile::M) >= 128 {
            Tile::M
        } else {
            Tile::S
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmKey {
    pub tile: Tile,
    pub ta: bool,
    pub tb: bool,
    /// vec4 loads of A / B, vec4 access of C (and the sample matrix).
    pub va: bool,
    pub vb: bool,
    pub vc: bool,
}

impl GemmKey {
    pub fn new(tile: Tile, ta: Trans, tb: Trans, m: usize, k: usize, n: usize) -> GemmKey {
        let ta = ta == Trans::T;
        let tb = tb == Trans::T;
        // Stored row length of A: k (A is m x k) or m (A is k x m).
        let a_ld = if ta { m } else { k };
        let b_ld = if tb { k } else { n };
        GemmKey {
            tile,
            ta,
            tb,
            va: a_ld % 4 == 0,
            vb: b_ld % 4 == 0,
            vc: n.is_multiple_of(4),
        }
    }
}

const SWZ: [&str; 4] = ["x", "y", "z", "w"];

/// One operand's global -> register -> shared path.
struct Operand {
    /// Register prefix ("ra" / "rb"), shared array ("As" / "Bs"), global array.
    reg: &'static str,
    shared: &'static str,
    global: &'static str,
    /// The tile is stored contiguous along k in global memory (A not
    /// transposed, B transposed): it is transposed on its way to shared memory.
    k_contig: bool,
    vec: bool,
    /// Extent of the tile along the non-k dimension (BM or BN).
    extent: u32,
    bk: u32,
    /// WGSL expressions: origin and bound of the non-k dimension.
    origin: &'static str,
    bound: &'static str,
}

impl Operand {
    fn units(&self) -> u32 {
        self.extent * self.bk / 1024
    }
    /// (row-in-tile, col-in-tile) expressions of vec4 unit `l` of this thread,
    /// in stored orientation: rows along the stored-major dimension.
    fn unit_pos(&self, l: u32) -> String {
        let per_row = if self.k_contig {
            self.bk / 4
        } else {
            self.extent / 4
        };
        format!(
            "let v = lid + {}u; let r = v / {per_row}u; let q = (v % {per_row}u) * 4u;",
            256 * l
        )
    }
    /// Global coordinates (row, col, row bound, col bound, leading dim).
    fn coords(&self) -> (String, String, &'static str, &'static str, &'static str) {
        if self.k_contig {
            // Stored rows: the non-k dimension; columns: k.
            (
                format!("{} + r", self.origin),
                "k0 + q".to_string(),
                self.bound,
                "KE",
                "K",
            )
        } else {
            // Stored rows: k; columns: the non-k dimension.
            (
                "k0 + r".to_string(),
                format!("{} + q", self.origin),
                "KE",
                self.bound,
                self.bound,
            )
        }
    }
    fn load(&self, out: &mut String) {
        for l in 0..self.units() {
            let (gr, gc, rb, cb, ld) = self.coords();
            let reg = format!("{}{l}", self.reg);
            let _ = writeln!(out, "        {{ {}", self.unit_pos(l));
            let _ = writeln!(out, "        let gr = {gr}; let gc = {gc};");
            let _ = writeln!(out, "        {reg} = vec4<f32>(0.0);");
            if self.vec {
                let _ = writeln!(
                    out,
                    "        if gr < {rb} && gc < {cb} {{ {reg} = {}[(gr * {ld} + gc) / 4u]; }}",
                    self.global
                );
            } else {
                let _ = writeln!(out, "        if gr < {rb} {{ let base = gr * {ld} + gc;");
                for (j, s) in SWZ.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "            if gc + {j}u < {cb} {{ {reg}.{s} = {}[base + {j}u]; }}",
                        self.global
                    );
                }
                let _ = writeln!(out, "        }}");
            }
            let _ = writeln!(out, "        }}");
        }
    }
    /// Registers -> shared buffer `buf` (a WGSL u32 expression).
    fn store(&self, buf: &str, out: &mut String) {
        let size = self.bk * self.extent; // floats per buffer
        for l in 0..self.units() {
            let reg = format!("{}{l}", self.reg);
            let _ = writeln!(out, "        {{ {}", self.unit_pos(l));
            let _ = writeln!(out, "        let sb = ({buf}) * {size}u;");
            if self.k_contig {
                // r: non-k index, q: k index -> shared [k][non-k], transposed.
                for (j, s) in SWZ.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "        {{ let e = sb + (q + {j}u) * {}u + r; {}[e >> 2u][e & 3u] = {reg}.{s}; }}",
                        self.extent, self.shared
                    );
                }
            } else {
                let _ = writeln!(
                    out,
                    "        {}[(sb + r * {}u + q) >> 2u] = {reg};",
                    self.shared, self.extent
                );
            }
            let _ = writeln!(out, "        }}");
        }
    }
}

const STORE4_VEC: &str = r#"
// Epilogue for 4 consecutive outputs (row, col..col+4); C is read as vec4
// (N % 4 == 0, col % 4 == 0, so the 4 outputs are one Philox block).
fn store4(row: u32, col: u32, zoff: u32, acc: vec4<f32>) {
    if row >= P.m || col >= P.n {
        return;
    }
    let e = row * P.n + col;
    let v = e >> 2u;
    if P.partial != 0u {
        S[(zoff + e) >> 2u] = acc;
    } else if P.sigmoid == 0u {
        var o = P.alpha * acc;
        if P.beta != 0.0 {
            o = o + P.beta * C[v];
        }
        C[v] = o;
    } else {
        var t = acc + vec4<f32>(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]);
        if P.beta != 0.0 {
            t = t + P.beta * C[v];
        }
        let p = sigmoid4(P.alpha * t);
        C[v] = p;
        if P.sample != 0u {
            let w = draw_block(v);
            let u = vec4<f32>(unit01(w.x), unit01(w.y), unit01(w.z), unit01(w.w));
            S[v] = select(vec4<f32>(0.0), vec4<f32>(1.0), u < p);
        }
    }
}
"#;

const STORE4_SCALAR: &str = r#"
// Epilogue for up to 4 consecutive outputs (row, col..col+4), bounds-checked.
fn store4(row: u32, col: u32, zoff: u32, acc: vec4<f32>) {
    if row >= P.m {
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let cj = col + j;
        if cj < P.n {
            let e = row * P.n + cj;
            if P.partial != 0u {
                S[zoff + e] = acc[j];
            } else if P.sigmoid == 0u {
                var o = P.alpha * acc[j];
                if P.beta != 0.0 {
                    o = o + P.beta * C[e];
                }
                C[e] = o;
            } else {
                var t = acc[j] + bias[cj];
                if P.beta != 0.0 {
                    t = t + P.beta * C[e];
                }
                let p = sigmoid(P.alpha * t);
                C[e] = p;
                if P.sample != 0u {
                    S[e] = select(0.0, 1.0, uniform_at(e) < p);
                }
            }
        }
    }
}
"#;

/// The two operands of a variant: A (m x k, or k x m stored) and B.
fn operands(key: GemmKey) -> (Operand, Operand) {
    let (tm, tn, bk) = key.tile.dims();
    let a = Operand {
        reg: "ra",
        shared: "As",
        global: "A",
        k_contig: !key.ta,
        vec: key.va,
        extent: 16 * tm,
        bk,
        origin: "m0",
        bound: "M",
    };
    let b = Operand {
        reg: "rb",
        shared: "Bs",
        global: "B",
        k_contig: key.tb,
        vec: key.vb,
        extent: 16 * tn,
        bk,
        origin: "n0",
        bound: "N",
    };
    (a, b)
}

/// `{{DECLS}}`: the load registers of both operands and the accumulators.
fn decls(a: &Operand, b: &Operand, (tm, tn): (u32, u32)) -> String {
    let mut decls = String::new();
    for l in 0..a.units() {
        let _ = writeln!(decls, "    var ra{l}: vec4<f32>;");
    }
    for l in 0..b.units() {
        let _ = writeln!(decls, "    var rb{l}: vec4<f32>;");
    }
    for r in 0..tm {
        for h in 0..tn / 4 {
            let _ = writeln!(decls, "    var c{r}_{h} = vec4<f32>(0.0);");
        }
    }
    decls
}

/// `{{COMPUTE}}`: one k-step of the block tile, fully unrolled.
fn compute(tile: Tile) -> String {
    let (tm, tn, bk) = tile.dims();
    let (bm, bn) = (tile.bm(), tile.bn());
    let mut compute = String::new();
    for p in 0..bk {
        let _ = writeln!(compute, "        {{");
        for g in 0..tm / 4 {
            let _ = writeln!(
                compute,
                "        let a{g} = As[abase + {}u + ty];",
                p * bm / 4 + g * 16
            );
        }
        for h in 0..tn / 4 {
            let _ = writeln!(
                compute,
                "        let b{h} = Bs[bbase + {}u + tx];",
                p * bn / 4 + h * 16
            );
        }
        for g in 0..tm / 4 {
            for (i, s) in SWZ.iter().enumerate() {
                let r = g * 4 + i as u32;
                for h in 0..tn / 4 {
                    let _ = writeln!(
                        compute,
                        "        c{r}_{h} = fma(vec4<f32>(a{g}.{s}), b{h}, c{r}_{h});"
                    );
                }
            }
        }
        let _ = writeln!(compute, "        }}");
    }
    compute
}

/// `{{EPILOGUE}}`: every accumulator through `store4`.
fn epilogue((tm, tn): (u32, u32)) -> String {
    let mut epi = String::new();
    for g in 0..tm / 4 {
        for i in 0..4 {
            let r = g * 4 + i;
            for h in 0..tn / 4 {
                let _ = writeln!(
                    epi,
                    "    store4(m0 + {}u + ty * 4u, n0 + {}u + tx * 4u, zoff, c{r}_{h});",
                    g * 64 + i,
                    h * 64
                );
            }
        }
    }
    epi
}

/// The WGSL source of one variant (without the common / philox prelude).
pub fn source(template: &str, key: GemmKey) -> String {
    let (tm, tn, bk) = key.tile.dims();
    let (bm, bn) = (key.tile.bm(), key.tile.bn());
    let (a, b) = operands(key);
    let mut load = String::new();
    a.load(&mut load);
    b.load(&mut load);
    let mut store0 = String::new();
    a.store("0u", &mut store0);
    b.store("0u", &mut store0);
    let mut store = String::new();
    a.store("nxt", &mut store);
    b.store("nxt", &mut store);
    let ty = |v: bool| if v { "vec4<f32>" } else { "f32" };
    template
        .replace("{{A_TYPE}}", ty(key.va))
        .replace("{{B_TYPE}}", ty(key.vb))
        .replace("{{C_TYPE}}", ty(key.vc))
        .replace("{{BM}}", &bm.to_string())
        .replace("{{BN}}", &bn.to_string())
        .replace("{{BK}}", &bk.to_string())
        .replace("{{AS_LEN}}", &(2 * bk * bm / 4).to_string())
        .replace("{{BS_LEN}}", &(2 * bk * bn / 4).to_string())
        .replace(
            "{{STORE4}}",
            if key.vc { STORE4_VEC } else { STORE4_SCALAR },
        )
        .replace("{{DECLS}}", &decls(&a, &b, (tm, tn)))
        .replace("{{LOAD}}", &load)
        .replace("{{STORE_SHARED_0}}", &store0)
        .replace("{{STORE_SHARED}}", &store)
        .replace("{{COMPUTE}}", &compute(key.tile))
        .replace("{{EPILOGUE}}", &epilogue((tm, tn)))
}

/// The fused epilogue of a GEMM: the bias of the sigmoid and, if asked,
/// the sample matrix with its draw.
pub(super) struct GemmEpilogue<'a> {
    pub bias: &'a GpuMat,
    pub sample: Option<(&'a GpuMat, Draw)>,
}

/// See [`Gpu::gemm_plan`].
pub(super) struct GemmPlan {
    key: GemmKey,
    grid: (u32, u32),
    pub splits: usize,
    /// The length of each slice of k.
    kc: usize,
}

impl Gpu {
    /// Forces the GEMM block tile ("L" 128x128x8, "L16" 128x128x16,
    /// "M" 64x128x16, "S" 64x64x16) or, with `None`, restores the automatic
    /// choice by output size. For benchmarks and tests; the environment
    /// variable `EBMKIT_GEMM_TILE` sets the same at start-up.
    pub fn force_gemm_tile(&self, tile: Option<&str>) -> Result<()> {
        let t = match tile {
            None => None,
            Some(s) => Some(Tile::parse(s).ok_or_else(|| {
                Error::value("gemm tile", format!("'{s}' is not one of L, L16, M, S"))
            })?),
        };
        *self
            .i
            .tile_override
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }

    /// Forces the split-K factor of every GEMM (1: never split) or, with
    /// `None`, restores the automatic choice. For benchmarks and tests; the
    /// environment variable `EBMKIT_GEMM_SPLITK` sets the same at start-up.
    pub fn force_gemm_split(&self, splits: Option<usize>) {
        *self
            .i
            .split_override
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = splits;
    }

    /// Seconds per `m x k` by `k x n` GEMM: a few warm-up products, then
    /// `reps` products queued back to back with one wait at the end.
    pub fn bench_gemm(&self, m: usize, k: usize, n: usize, reps: usize) -> Result<f64> {
        let mut a = self.zeros(m, k)?;
        let mut b = self.zeros(k, n)?;
        let mut c = self.zeros(m, n)?;
        self.fill(&mut a, 0.5)?;
        self.fill(&mut b, 0.25)?;
        for _ in 0..3 {
            self.gemm(1.0, a.n(), b.n(), 0.0, &mut c)?;
        }
        self.sync()?;
        let reps = reps.max(1);
        let t = Instant::now();
        for _ in 0..reps {
            self.gemm(1.0, a.n(), b.n(), 0.0, &mut c)?;
        }
        self.sync()?;
        Ok(t.elapsed().as_secs_f64() / reps as f64)
    }

    /// How an `m x k` by `k x n` product is laid out: the block tile, the
    /// grid of output tiles and the split of `k` (1: one pass).
    pub(super) fn gemm_plan(
        &self,
        (m, k, n): (usize, usize, usize),
        ta: Trans,
        tb: Trans,
    ) -> Result<GemmPlan> {
        let forced = *self
            .i
            .tile_override
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let tile = forced.unwrap_or_else(|| Tile::choose(m, n));
        let key = GemmKey::new(tile, ta, tb, m, k, n);
        let gx = n.div_ceil(tile.bn() as usize) as u64;
        let gy = m.div_ceil(tile.bm() as usize) as u64;
        let max = self.i.limits.max_compute_workgroups_per_dimension as u64;
        if gx > max || gy > max {
            return Err(Error::Limit {
                what: format!("GEMM tiles per dimension for a {m}x{n} output"),
                requested: gx.max(gy),
                limit: max,
            });
        }
        let (splits, kc) = self.split_k((m, k, n), tile, (gx * gy) as usize);
        Ok(GemmPlan {
            key,
            grid: (gx as u32, gy as u32),
            splits,
            kc,
        })
    }

    /// (splits, length of each slice of k) for a product of `tiles` output
    /// tiles: few output tiles and a long k split k across workgroups (grid
    /// z) so the device fills up, then the partial products are reduced.
    fn split_k(
        &self,
        (m, k, n): (usize, usize, usize),
        tile: Tile,
        tiles: usize,
    ) -> (usize, usize) {
        let bk = tile.dims().2 as usize;
        let forced = *self
            .i
            .split_override
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let want = forced.unwrap_or_else(|| {
            if tiles >= SPLITK_TARGET_GROUPS / 2 {
                1
            } else {
                SPLITK_TARGET_GROUPS
                    .div_ceil(tiles)
                    .min(k / SPLITK_MIN_K)
                    .min(SPLITK_MAX)
            }
        });
        let (splits, kc) = if want > 1 && k > bk {
            let kc = k.div_ceil(want).next_multiple_of(bk);
            (k.div_ceil(kc), kc)
        } else {
            (1, k)
        };
        let part_bytes = (splits * m * n * 4) as u64;
        let max = self.i.limits.max_compute_workgroups_per_dimension as u64;
        if splits > 1
            && part_bytes <= SPLITK_MAX_BYTES.min(self.max_bytes())
            && splits as u64 <= max
        {
            (splits, kc)
        } else {
            (1, k)
        }
    }

    /// The split-K scratch, grown to at least `bytes`.
    fn splitk_scratch(&self, st: &mut State, bytes: u64) -> (wgpu::Buffer, u64) {
        if st.splitk.as_ref().is_none_or(|sk| sk.2 < bytes) {
            let size = bytes.next_power_of_two().min(self.max_bytes());
            let buf = self.i.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ebmkit split-K partials"),
                size,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            st.splitk = Some((buf, self.next_id(), size));
        }
        let (buf, id, _) = st.splitk.clone().expect("split-K scratch");
        (buf, id)
    }

    /// Records the first pass of a split-K product (`plan.splits > 1`): the
    /// partial products `A_z B_z` of each slice z of k, unscaled, into the
    /// scratch as `splits` consecutive m x n blocks, which it returns.
    pub(super) fn gemm_partials(
        &self,
        st: &mut State,
        plan: &GemmPlan,
        (m, k, n): (usize, usize, usize),
        a: &GpuMat,
        b: &GpuMat,
    ) -> Result<(wgpu::Buffer, u64)> {
        let (part, part_id) = self.splitk_scratch(st, (plan.splits * m * n * 4) as u64);
        let p = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            alpha: 1.0,
            kc: plan.kc as u32,
            partial: 1,
            ..Default::default()
        };
        // `partial` sends the tiles to the binding of the sample matrix;
        // C is bound only to fill the layout.
        self.record(
            st,
            Kernel::Gemm(plan.key),
            &[
                a.b(),
                b.b(),
                self.i.dummy_ro(),
                self.i.dummy_rw(),
                Bind::whole(&part, part_id),
            ],
            &p,
            (plan.grid.0, plan.grid.1, plan.splits as u32),
        )?;
        Ok((part, part_id))
    }

    /// `C = alpha op(A) op(B) + beta C`, or with an `epilogue` the fused
    /// `C = sigmoid(alpha (op(A) op(B) + bias + beta C))` and its optional
    /// sample (C is read only when beta is not 0).
    pub(super) fn gemm_impl(
        &self,
        (m, k, n): (usize, usize, usize),
        (alpha, beta): (f32, f32),
        a: Op<'_, GpuMat>,
        b: Op<'_, GpuMat>,
        c: &GpuMat,
        epilogue: Option<GemmEpilogue<'_>>,
    ) -> Result<()> {
        if m == 0 || n == 0 {
            return Ok(());
        }
        let plan = self.gemm_plan((m, k, n), a.t, b.t)?;
        let (a, b) = (a.m, b.m);
        let (bias, sample) = match epilogue {
            Some(e) => (Some(e.bias), e.sample),
            None => (None, None),
        };
        let p = GemmParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            alpha,
            beta,
            kc: plan.kc as u32,
            sigmoid: bias.is_some() as u32,
            sample: sample.is_some() as u32,
            partial: 0,
            draw: sample.map(|(_, d)| d.into()).unwrap_or_default(),
        };
        let s = sample.map_or(self.i.dummy_rw(), |(s, _)| s.b());
        let bias = bias.map_or(self.i.dummy_ro(), |v| v.b());
        let mut st = self.lock();
        if plan.splits == 1 {
            return self.record(
                &mut st,
                Kernel::Gemm(plan.key),
                &[a.b(), b.b(), bias, c.b(), s],
                &p,
                (plan.grid.0, plan.grid.1, 1),
            );
        }
        let (part, part_id) = self.gemm_partials(&mut st, &plan, (m, k, n), a, b)?;
        let reduce = SplitKParams {
            len: (m * n) as u32,
            cols: n as u32,
            splits: plan.splits as u32,
            alpha,
            beta,
            sigmoid: p.sigmoid,
            sample: p.sample,
            draw: p.draw,
        };
        let grid = self.grid(((m * n) as u64).div_ceil(4 * WG))?;
        self.record(
            &mut st,
            Kernel::SplitKReduce,
            &[Bind::whole(&part, part_id), bias, c.b(), s],
            &reduce,
            grid,
        )
    }
}
