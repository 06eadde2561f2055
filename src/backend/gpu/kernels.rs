//! What the Rust side must agree on with each WGSL file: the entry points,
//! the bind-group layouts they are compiled against and the parameter block
//! they read. Kept in one place so a kernel's contract is read in one place.

use super::gemm::{self, GemmKey};
use crate::rng::Draw;
use std::collections::HashMap;

const COMMON_WGSL: &str = include_str!("../../../shaders/common.wgsl");
const PHILOX_WGSL: &str = include_str!("../../../shaders/philox.wgsl");
const ANNEAL_WGSL: &str = include_str!("../../../shaders/anneal.wgsl");
const ELEMENTWISE_WGSL: &str = include_str!("../../../shaders/elementwise.wgsl");
const GATHER_WGSL: &str = include_str!("../../../shaders/gather.wgsl");
const SAMPLE_WGSL: &str = include_str!("../../../shaders/sample.wgsl");
const PHILOX_WORDS_WGSL: &str = include_str!("../../../shaders/philox_words.wgsl");
const REDUCE_WGSL: &str = include_str!("../../../shaders/reduce.wgsl");
const GEMM_WGSL: &str = include_str!("../../../shaders/gemm.wgsl");
const GEMM_SPLITK_WGSL: &str = include_str!("../../../shaders/gemm_splitk.wgsl");

/// Threads per workgroup in every kernel.
pub(super) const WG: u64 = 256;
/// Bytes of one parameter block (`Params` / `struct Params` in common.wgsl).
pub(super) const PARAM_BYTES: u64 = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub len: u32,
    pub alpha: f32,
    pub beta: f32,
    pub op: u32,
    pub flags: u32,
    pub key0: u32,
    pub key1: u32,
    pub stream: u32,
    pub off_lo: u32,
    pub off_hi: u32,
    pub aux0: u32,
    pub aux1: u32,
    pub aux2: u32,
}

impl Params {
    pub fn len(len: usize) -> Params {
        Params {
            len: len as u32,
            ..Default::default()
        }
    }
    pub fn draw(mut self, d: Draw) -> Params {
        self.key0 = d.key[0];
        self.key1 = d.key[1];
        self.stream = d.stream;
        self.off_lo = d.offset as u32;
        self.off_hi = (d.offset >> 32) as u32;
        self
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
    Gather,
    Bernoulli,
    Gaussian,
    PhiloxWords,
    ColSums,
    BiasStep,
    BiasStepPair,
    RowSums,
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

/// A kernel's shader module as compiled: its cache key, the full WGSL
/// source, and whether wgpu's runtime bounds checks may be left out.
pub(super) struct Module {
    pub key: String,
    pub source: String,
    pub trusted: bool,
}

impl Kernel {
    /// (module name, WGSL body after common.wgsl, entry point, layout)
    pub fn spec(self) -> (&'static str, &'static str, &'static str, Layout) {
        use Kernel::*;
        let ew = |entry, n| ("elementwise", ELEMENTWISE_WGSL, entry, Layout::Rw(n));
        let reduce = |entry, n| ("reduce", REDUCE_WGSL, entry, Layout::Rw(n));
        match self {
            Unary => ew("unary", 2),
            UnaryInplace => ew("unary_inplace", 1),
            Binary => ew("binary", 3),
            BinaryInplace => ew("binary_inplace", 2),
            Affine => ew("affine", 1),
            Axpby => ew("axpby", 2),
            Fill => ew("fill", 1),
            Copy => ew("copy", 2),
            AddRowVec => ew("add_row_vec", 2),
            AddColVec => ew("add_col_vec", 2),
            MulRowVec => ew("mul_row_vec", 2),
            MulColVec => ew("mul_col_vec", 2),
            Gather => ("gather", GATHER_WGSL, "gather_rows", Layout::Rw(3)),
            Bernoulli => ("sample", SAMPLE_WGSL, "bernoulli", Layout::Rw(2)),
            Gaussian => ("sample", SAMPLE_WGSL, "gaussian", Layout::Rw(2)),
            PhiloxWords => (
                "philox_words",
                PHILOX_WORDS_WGSL,
                "philox_words",
                Layout::Rw(1),
            ),
            ColSums => reduce("col_sums", 2),
            BiasStep => reduce("bias_step", 4),
            BiasStepPair => reduce("bias_step_pair", 8),
            RowSums => reduce("row_sums", 2),
            SumPartial => reduce("sum_partial", 2),
            SplitKReduce => (
                "gemm_splitk",
                GEMM_SPLITK_WGSL,
                "splitk_reduce",
                Layout::Rw(4),
            ),
            TemperedHidden => ("anneal", ANNEAL_WGSL, "tempered_hidden", Layout::Rw(4)),
            Gemm(_) => ("gemm", GEMM_WGSL, "main", Layout::Gemm),
        }
    }

    /// The shader module this kernel's pipeline is made from.
    pub fn module(self) -> Module {
        let (name, body, _, _) = self.spec();
        match self {
            Kernel::Gemm(key) => Module {
                key: format!("gemm {key:?}"),
                source: format!(
                    "{COMMON_WGSL}\n{PHILOX_WGSL}\n{}",
                    gemm::source(GEMM_WGSL, key)
                ),
                trusted: true,
            },
            _ => {
                let philox = if matches!(name, "sample" | "philox_words" | "gemm_splitk" | "anneal")
                {
                    PHILOX_WGSL
                } else {
                    ""
                };
                Module {
                    key: name.to_string(),
                    source: format!("{COMMON_WGSL}\n{philox}\n{body}"),
                    trusted: false,
                }
            }
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
