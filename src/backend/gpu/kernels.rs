//! What the Rust side must agree on with each WGSL file: the entry points,
//! the bind-group layouts they are compiled against and the parameter
//! struct they read. A mismatch there is not a compile error on either side
//! (the uniform is raw bytes), so each kernel family's parameters are a
//! struct of their own with the field names the WGSL uses, and the tests
//! below hold the two declarations to the same fields in the same order.

use super::gemm::{self, GemmKey};
use crate::rng::Draw;
use std::collections::HashMap;

/// A WGSL file: its name under `shaders/`, its text, and whether it is
/// compiled after philox.wgsl (the kernels that draw).
pub(super) struct Shader {
    pub file: &'static str,
    pub text: &'static str,
    pub philox: bool,
}

macro_rules! shader {
    ($file:literal, $philox:expr) => {
        Shader {
            file: $file,
            text: include_str!(concat!("../../../shaders/", $file)),
            philox: $philox,
        }
    };
}

static COMMON: Shader = shader!("common.wgsl", false);
static PHILOX: Shader = shader!("philox.wgsl", false);
static ANNEAL: Shader = shader!("anneal.wgsl", true);
static BIAS_STEP: Shader = shader!("bias_step.wgsl", false);
static ELEMENTWISE: Shader = shader!("elementwise.wgsl", false);
static GATHER: Shader = shader!("gather.wgsl", false);
static SAMPLE: Shader = shader!("sample.wgsl", true);
static PHILOX_WORDS: Shader = shader!("philox_words.wgsl", true);
static REDUCE: Shader = shader!("reduce.wgsl", false);
static GEMM: Shader = shader!("gemm.wgsl", true);
static GEMM_SPLITK: Shader = shader!("gemm_splitk.wgsl", true);

/// The files with kernels (each binds one parameter struct as `P`).
#[cfg(test)]
const KERNEL_SHADERS: [&Shader; 9] = [
    &ANNEAL,
    &BIAS_STEP,
    &ELEMENTWISE,
    &GATHER,
    &SAMPLE,
    &PHILOX_WORDS,
    &REDUCE,
    &GEMM,
    &GEMM_SPLITK,
];

/// Threads per workgroup in every kernel.
pub(super) const WG: u64 = 256;
/// Bytes of one slot of the uniform ring: room for the largest parameter
/// struct (each is checked against it at compile time).
pub(super) const PARAM_BYTES: u64 = 64;

/// A kernel's parameter block: the bytes of one ring slot, mirrored field
/// for field by the WGSL struct `WGSL_NAME` that `SHADER` binds as `P`.
pub(super) trait KernelParams: bytemuck::Pod {
    const SHADER: &'static str;
    #[cfg(test)]
    const WGSL_NAME: &'static str;
    /// (name, Rust type) of each field, in order.
    #[cfg(test)]
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// Declares a parameter struct: `#[repr(C)]`, Pod, 4-byte fields only (so
/// the Rust and the WGSL uniform layout agree without padding), checked to
/// fit a ring slot; the unit tests below compare its fields with the WGSL.
macro_rules! params {
    ($(#[$doc:meta])* $name:ident in $file:literal {
        $($(#[$fdoc:meta])* $field:ident: $ty:ident,)*
    }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(super) struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }
        const _: () = assert!(std::mem::size_of::<$name>() <= PARAM_BYTES as usize);
        impl KernelParams for $name {
            const SHADER: &'static str = $file;
            #[cfg(test)]
            const WGSL_NAME: &'static str = stringify!($name);
            #[cfg(test)]
            const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), stringify!($ty)),)*];
        }
    };
}

/// A Philox draw as philox.wgsl reads it: in WGSL these are five plain
/// `u32` fields of the kernel's parameter struct (a nested struct would
/// need 16-byte alignment in the uniform address space); `repr(C)` with
/// 4-byte fields lays them out the same way in Rust.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct DrawWords {
    pub key0: u32,
    pub key1: u32,
    pub stream: u32,
    pub off_lo: u32,
    pub off_hi: u32,
}

impl DrawWords {
    #[cfg(test)]
    const FIELDS: [&'static str; 5] = ["key0", "key1", "stream", "off_lo", "off_hi"];
}

impl From<Draw> for DrawWords {
    fn from(d: Draw) -> DrawWords {
        DrawWords {
            key0: d.key[0],
            key1: d.key[1],
            stream: d.stream,
            off_lo: d.offset as u32,
            off_hi: (d.offset >> 32) as u32,
        }
    }
}

params! {
    /// elementwise.wgsl: maps, broadcasts, fill and copy.
    ElementwiseParams in "elementwise.wgsl" {
        len: u32,
        /// Columns (row / column vector broadcasts).
        cols: u32,
        /// `Unary` / `Binary` as u32.
        op: u32,
        alpha: f32,
        beta: f32,
        /// What `fill` writes.
        value: f32,
    }
}

params! {
    /// gather.wgsl: `gather_rows`.
    GatherParams in "gather.wgsl" {
        /// Elements of the destination.
        len: u32,
        cols: u32,
        /// Where this op's indices start in the batch's index arena.
        first_index: u32,
    }
}

params! {
    /// sample.wgsl: Bernoulli and Gaussian draws.
    SampleParams in "sample.wgsl" {
        len: u32,
        /// Standard deviation of the Gaussian.
        std_dev: f32,
        draw: DrawWords,
    }
}

params! {
    /// philox_words.wgsl: raw generator output.
    PhiloxWordsParams in "philox_words.wgsl" {
        len: u32,
        draw: DrawWords,
    }
}

params! {
    /// reduce.wgsl: column / row sums of a `rows x cols` matrix and the
    /// two passes of `sum` over `len` elements.
    ReduceParams in "reduce.wgsl" {
        rows: u32,
        cols: u32,
        len: u32,
        alpha: f32,
        beta: f32,
    }
}

params! {
    /// bias_step.wgsl: one momentum step of a bias, or two (v and h) in one
    /// dispatch.
    BiasStepParams in "bias_step.wgsl" {
        rows_a: u32,
        rows_b: u32,
        /// Columns of the (first) step.
        cols: u32,
        alpha_a: f32,
        alpha_b: f32,
        mom: f32,
        /// Paired step: columns of the second (h) step, and the workgroups
        /// of the first (v), which come first in the grid.
        cols_h: u32,
        groups_v: u32,
    }
}

params! {
    /// anneal.wgsl: the tempered hidden pass.
    TemperedParams in "anneal.wgsl" {
        rows: u32,
        cols: u32,
        beta0: f32,
        beta1: f32,
        /// Partial products of a split-K GEMM that make x (1: x itself).
        splits: u32,
        /// 1: draw the hidden sample.
        sample: u32,
        /// 1: the last column is a linear term; its sample entry is
        /// `linear_value`.
        linear_last: u32,
        linear_value: f32,
        draw: DrawWords,
    }
}

params! {
    /// gemm.wgsl: one pass of the tiled GEMM (or the first of split-K).
    GemmParams in "gemm.wgsl" {
        /// op(A) is m x k, op(B) k x n.
        m: u32,
        n: u32,
        k: u32,
        alpha: f32,
        beta: f32,
        /// The slice of k of each workgroup z (k itself without split-K).
        kc: u32,
        /// 1: the fused epilogue `C = sigmoid(alpha (A B + bias))`.
        sigmoid: u32,
        /// 1: also the Bernoulli sample of C.
        sample: u32,
        /// 1: the first pass of split-K: raw sums into the scratch.
        partial: u32,
        draw: DrawWords,
    }
}

params! {
    /// gemm_splitk.wgsl: the second pass of split-K.
    SplitKParams in "gemm_splitk.wgsl" {
        /// Elements of C (m n) and its columns.
        len: u32,
        cols: u32,
        /// Partial products to sum.
        splits: u32,
        alpha: f32,
        beta: f32,
        sigmoid: u32,
        sample: u32,
        draw: DrawWords,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kernel {
    Unary,
    UnaryInplace,
    Binary,
    BinaryInplace,
    Affine,
    Axpby,
    Fill,
    Copy,
    AddRowVec,
    AddColVec,
    MulRowVec,
    MulColVec,
    Shrink,
    Gather,
    Bernoulli,
    Gaussian,
    PhiloxWords,
    ColSums,
    BiasStep,
    BiasStepPair,
    RowSums,
    RowMax,
    RowArgmax,
    SumPartial,
    SplitKReduce,
    TemperedHidden,
    Gemm(GemmKey),
}

/// Bind group layouts: `Rw(n)`: the uniform ring + n read_write storage
/// buffers; `Gemm`: ring, A, B, bias (read-only), C, sample (read_write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Layout {
    Rw(u8),
    Gemm,
}

/// Where a kernel lives and how it is bound.
pub(super) struct Spec {
    pub shader: &'static Shader,
    pub entry: &'static str,
    pub layout: Layout,
}

/// A kernel's shader module as compiled: its cache key, the full WGSL
/// source, and whether wgpu's runtime bounds checks may be left out.
pub(super) struct Module {
    pub key: String,
    pub source: String,
    pub trusted: bool,
}

impl Kernel {
    pub fn spec(self) -> Spec {
        use Kernel::*;
        let spec = |shader, entry, n| Spec {
            shader,
            entry,
            layout: Layout::Rw(n),
        };
        match self {
            Unary => spec(&ELEMENTWISE, "unary", 2),
            UnaryInplace => spec(&ELEMENTWISE, "unary_inplace", 1),
            Binary => spec(&ELEMENTWISE, "binary", 3),
            BinaryInplace => spec(&ELEMENTWISE, "binary_inplace", 2),
            Affine => spec(&ELEMENTWISE, "affine", 1),
            Axpby => spec(&ELEMENTWISE, "axpby", 2),
            Fill => spec(&ELEMENTWISE, "fill", 1),
            Copy => spec(&ELEMENTWISE, "copy", 2),
            AddRowVec => spec(&ELEMENTWISE, "add_row_vec", 2),
            AddColVec => spec(&ELEMENTWISE, "add_col_vec", 2),
            MulRowVec => spec(&ELEMENTWISE, "mul_row_vec", 2),
            MulColVec => spec(&ELEMENTWISE, "mul_col_vec", 2),
            Shrink => spec(&ELEMENTWISE, "shrink", 2),
            Gather => spec(&GATHER, "gather_rows", 3),
            Bernoulli => spec(&SAMPLE, "bernoulli", 2),
            Gaussian => spec(&SAMPLE, "gaussian", 2),
            PhiloxWords => spec(&PHILOX_WORDS, "philox_words", 1),
            ColSums => spec(&REDUCE, "col_sums", 2),
            RowSums => spec(&REDUCE, "row_sums", 2),
            RowMax => spec(&REDUCE, "row_max", 2),
            RowArgmax => spec(&REDUCE, "row_argmax", 2),
            SumPartial => spec(&REDUCE, "sum_partial", 2),
            BiasStep => spec(&BIAS_STEP, "bias_step", 4),
            BiasStepPair => spec(&BIAS_STEP, "bias_step_pair", 8),
            SplitKReduce => spec(&GEMM_SPLITK, "splitk_reduce", 4),
            TemperedHidden => spec(&ANNEAL, "tempered_hidden", 4),
            Gemm(_) => Spec {
                shader: &GEMM,
                entry: "main",
                layout: Layout::Gemm,
            },
        }
    }

    /// The shader module this kernel's pipeline is made from: common.wgsl,
    /// philox.wgsl where the kernel draws, then the kernel's file (a GEMM
    /// variant's instantiation of the template).
    pub fn module(self) -> Module {
        let shader = self.spec().shader;
        let philox = if shader.philox { PHILOX.text } else { "" };
        let common = COMMON.text;
        match self {
            Kernel::Gemm(key) => Module {
                key: format!("gemm {key:?}"),
                source: format!("{common}\n{philox}\n{}", gemm::source(shader.text, key)),
                trusted: true,
            },
            _ => Module {
                key: shader.file.to_string(),
                source: format!("{common}\n{philox}\n{}", shader.text),
                trusted: false,
            },
        }
    }
}

/// The bind-group and pipeline layouts of every [`Layout`] the device
/// supports: eight storage buffers (the paired bias step) only where the
/// adapter allows them; `bias_steps` falls back to two dispatches.
pub(super) fn make_layouts(
    device: &wgpu::Device,
    limits: &wgpu::Limits,
) -> HashMap<Layout, (wgpu::BindGroupLayout, wgpu::PipelineLayout)> {
    let entry = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let uniform = wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(PARAM_BYTES),
        },
        count: None,
    };
    let mut layouts = HashMap::new();
    let mut make_layout = |key: Layout, entries: Vec<wgpu::BindGroupLayoutEntry>| {
        let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &entries,
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        layouts.insert(key, (bgl, pl));
    };
    let eight = limits.max_storage_buffers_per_shader_stage >= 8;
    for n in (1..=4u8).chain(eight.then_some(8)) {
        let mut e = vec![uniform];
        e.extend((1..=n as u32).map(|b| entry(b, false)));
        make_layout(Layout::Rw(n), e);
    }
    make_layout(
        Layout::Gemm,
        vec![
            uniform,
            entry(1, true),
            entry(2, true),
            entry(3, true),
            entry(4, false),
            entry(5, false),
        ],
    );
    layouts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with `//` comments removed.
    fn code(text: &str) -> String {
        text.lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// (name, type) of each member of `struct name` in a WGSL text.
    fn wgsl_struct(text: &str, name: &str) -> Vec<(String, String)> {
        let code = code(text);
        let open = format!("struct {name} {{");
        let start = code
            .find(&open)
            .unwrap_or_else(|| panic!("no `{open}` in the shader"));
        let body = &code[start + open.len()..];
        let body = &body[..body.find('}').expect("struct without `}`")];
        body.split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                let (n, t) = m.split_once(':').expect("member without a type");
                (n.trim().to_string(), t.trim().to_string())
            })
            .collect()
    }

    /// The fields of `P` as WGSL sees them: a `DrawWords` is its five u32s.
    fn rust_fields<P: KernelParams>() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for &(name, ty) in P::FIELDS {
            if ty == "DrawWords" {
                out.extend(DrawWords::FIELDS.map(|f| (f.to_string(), "u32".to_string())));
            } else {
                out.push((name.to_string(), ty.to_string()));
            }
        }
        out
    }

    /// The names `P.<name>` read in a WGSL text (comments excluded).
    fn reads(text: &str) -> Vec<String> {
        let code = code(text);
        let mut out = Vec::new();
        for (i, _) in code.match_indices("P.") {
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[i + 2..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push(rest[..end].to_string());
        }
        out
    }

    fn shader(file: &str) -> &'static Shader {
        KERNEL_SHADERS
            .iter()
            .find(|s| s.file == file)
            .unwrap_or_else(|| panic!("{file} is not a kernel shader"))
    }

    /// The WGSL struct of `P` has its fields in its order, it is what its
    /// shader binds as `P`, and the Rust struct has no padding.
    fn check<P: KernelParams>() -> &'static str {
        let text = shader(P::SHADER).text;
        let want = rust_fields::<P>();
        assert_eq!(
            wgsl_struct(text, P::WGSL_NAME),
            want,
            "{} in {}: WGSL vs Rust fields",
            P::WGSL_NAME,
            P::SHADER
        );
        let binding = format!("@group(0) @binding(0) var<uniform> P: {};", P::WGSL_NAME);
        assert!(
            code(text).contains(&binding),
            "{}: no `{binding}`",
            P::SHADER
        );
        assert_eq!(std::mem::size_of::<P>(), 4 * want.len(), "{}", P::WGSL_NAME);
        P::SHADER
    }

    #[test]
    fn parameter_structs_match_their_wgsl() {
        let files = [
            check::<ElementwiseParams>(),
            check::<GatherParams>(),
            check::<SampleParams>(),
            check::<PhiloxWordsParams>(),
            check::<ReduceParams>(),
            check::<BiasStepParams>(),
            check::<TemperedParams>(),
            check::<GemmParams>(),
            check::<SplitKParams>(),
        ];
        // One struct per kernel file, and every kernel file has one.
        for s in KERNEL_SHADERS {
            assert_eq!(
                files.iter().filter(|&&f| f == s.file).count(),
                1,
                "{}: parameter structs",
                s.file
            );
            assert_eq!(
                code(s.text).matches("var<uniform>").count(),
                1,
                "{}: uniform bindings",
                s.file
            );
        }
    }

    /// Every `P.x` a kernel reads is a field of its struct, and the draw
    /// fields philox.wgsl reads are in every struct compiled with it.
    #[test]
    fn kernels_read_only_their_own_fields() {
        let draw: Vec<String> = reads(PHILOX.text);
        assert!(!draw.is_empty());
        for f in &draw {
            assert!(
                DrawWords::FIELDS.contains(&f.as_str()),
                "philox.wgsl reads P.{f}"
            );
        }
        let gemm_sources = [false, true].map(|vc| {
            let key = GemmKey {
                tile: gemm::Tile::S,
                ta: false,
                tb: false,
                va: false,
                vb: false,
                vc,
            };
            gemm::source(GEMM.text, key)
        });
        for s in KERNEL_SHADERS {
            let name = code(s.text)
                .split("var<uniform> P:")
                .nth(1)
                .and_then(|r| r.split(';').next())
                .map(|t| t.trim().to_string())
                .expect("a parameter binding");
            let fields: Vec<String> = wgsl_struct(s.text, &name)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let mut texts = vec![s.text.to_string()];
            if s.file == GEMM.file {
                texts.extend(gemm_sources.iter().cloned());
            }
            let mut read: Vec<String> = texts.iter().flat_map(|t| reads(t)).collect();
            if s.philox {
                read.extend(draw.iter().cloned());
            }
            for f in read {
                assert!(fields.contains(&f), "{} reads P.{f}, not in {name}", s.file);
            }
        }
    }

    #[test]
    fn every_kernel_names_a_kernel_shader() {
        use Kernel::*;
        let key = GemmKey {
            tile: gemm::Tile::L,
            ta: true,
            tb: false,
            va: true,
            vb: false,
            vc: true,
        };
        for k in [
            Unary,
            UnaryInplace,
            Binary,
            BinaryInplace,
            Affine,
            Axpby,
            Fill,
            Copy,
            AddRowVec,
            AddColVec,
            MulRowVec,
            MulColVec,
            Shrink,
            Gather,
            Bernoulli,
            Gaussian,
            PhiloxWords,
            ColSums,
            BiasStep,
            BiasStepPair,
            RowSums,
            RowMax,
            RowArgmax,
            SumPartial,
            SplitKReduce,
            TemperedHidden,
            Gemm(key),
        ] {
            let spec = k.spec();
            let text = shader(spec.shader.file).text;
            assert!(
                code(text).contains(&format!("fn {}(", spec.entry)),
                "{k:?}: no entry point {} in {}",
                spec.entry,
                spec.shader.file
            );
            let module = k.module();
            assert_eq!(module.source.contains("fn draw_block("), spec.shader.philox);
        }
    }
}
