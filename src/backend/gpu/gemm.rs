//! Instantiation of the tiled GEMM template `shaders/gemm.wgsl`.
//!
//! Each variant fixes at compile time the tile (BM x BN x BK with TM x TN
//! outputs per thread, 256 threads), which operands are transposed, and
//! whether A, B and C are read as `vec4` (possible when the operand's stored
//! row length is a multiple of 4, so a 4-aligned vec4 is either wholly inside
//! the matrix or wholly outside) or as bounds-checked scalars. The inner
//! product, the global loads and the shared-memory stores are generated
//! fully unrolled so the accumulators stay in registers.

use std::fmt::Write as _;

use crate::backend::Trans;

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
            vc: n % 4 == 0,
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
    if (P.flags & 4u) != 0u {
        S[(zoff + e) >> 2u] = acc;
    } else if (P.flags & 1u) == 0u {
        var o = P.alpha * acc;
        if P.beta != 0.0 {
            o = o + P.beta * C[v];
        }
        C[v] = o;
    } else {
        let b = vec4<f32>(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]);
        let p = sigmoid(P.alpha * (acc + b));
        C[v] = p;
        if (P.flags & 2u) != 0u {
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
            if (P.flags & 4u) != 0u {
                S[zoff + e] = acc[j];
            } else if (P.flags & 1u) == 0u {
                var o = P.alpha * acc[j];
                if P.beta != 0.0 {
                    o = o + P.beta * C[e];
                }
                C[e] = o;
            } else {
                let p = 1.0 / (1.0 + exp(-(P.alpha * (acc[j] + bias[cj]))));
                C[e] = p;
                if (P.flags & 2u) != 0u {
                    S[e] = select(0.0, 1.0, uniform_at(e) < p);
                }
            }
        }
    }
}
"#;

/// The WGSL source of one variant (without the common / philox prelude).
pub fn source(template: &str, key: GemmKey) -> String {
    let (tm, tn, bk) = key.tile.dims();
    let (bm, bn) = (16 * tm, 16 * tn);
    let a = Operand {
        reg: "ra",
        shared: "As",
        global: "A",
        k_contig: !key.ta,
        vec: key.va,
        extent: bm,
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
        extent: bn,
        bk,
        origin: "n0",
        bound: "N",
    };
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
    let mut load = String::new();
    a.load(&mut load);
    b.load(&mut load);
    let mut store0 = String::new();
    a.store("0u", &mut store0);
    b.store("0u", &mut store0);
    let mut store = String::new();
    a.store("nxt", &mut store);
    b.store("nxt", &mut store);
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
        .replace("{{DECLS}}", &decls)
        .replace("{{LOAD}}", &load)
        .replace("{{STORE_SHARED_0}}", &store0)
        .replace("{{STORE_SHARED}}", &store)
        .replace("{{COMPUTE}}", &compute)
        .replace("{{EPILOGUE}}", &epi)
}
