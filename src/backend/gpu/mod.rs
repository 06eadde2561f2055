//! The wgpu backend: f32 matrices in storage buffers, WGSL kernels from
//! `shaders/` (each with a CPU twin in `backend::cpu`).
//!
//! How work reaches the device:
//! - Pipelines are compiled lazily, once per kernel (and per GEMM variant),
//!   and cached; bind groups are cached by (kernel layout, buffer ids) and
//!   dropped when a matrix they name is dropped.
//! - Every dispatch's parameters go into one 256-byte slot of a CPU-side copy
//!   of a uniform ring and are bound with a dynamic offset. The ring is written
//!   with one `queue.write_buffer` just before its batch is submitted, so a
//!   slot is never reused inside an unsubmitted command buffer.
//! - Dispatches are recorded into one long compute pass and submitted every
//!   [`BATCH_OPS`] ops, or when a result is read back. Only `download`, `sum`,
//!   `sync` (and `philox_words`, `bench_gemm`) wait for the device.
//! - `gather_rows` indices go into a per-batch index arena written the same
//!   way as the ring.
//!
//! Grids larger than 65535 workgroups use a second grid dimension.

mod fused;
mod gemm;

use super::*;
use crate::rng::Draw;
use gemm::{GemmKey, Tile};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

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
const WG: u64 = 256;
/// Bytes of one parameter block (`Params` / `struct Params` in common.wgsl).
const PARAM_BYTES: u64 = 64;
/// Dispatches per submitted command buffer (and parameter slots in the ring).
pub const BATCH_OPS: usize = 128;
/// Initial capacity (u32 indices) of the gather index arena.
const IDX_CAP: u64 = 1 << 16;
/// Workgroups of the first pass of `sum`.
const SUM_GROUPS: u64 = 1024;
/// Split-K: aim for this many workgroups, give each at least this much of k,
/// split at most this many ways, and use at most this much scratch.
/// (Measured on an H100: 100x784x500 takes 40 us unsplit, 15 us split 8 ways;
/// 256x4096x256 200 us unsplit, 35 us split 8 ways.)
const SPLITK_TARGET_GROUPS: usize = 128;
const SPLITK_MIN_K: usize = 96;
const SPLITK_MAX: usize = 16;
const SPLITK_MAX_BYTES: u64 = 256 << 20;
/// Bind groups kept before the cache is cleared wholesale.
const BIND_GROUP_CACHE_MAX: usize = 8192;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    len: u32,
    alpha: f32,
    beta: f32,
    op: u32,
    flags: u32,
    key0: u32,
    key1: u32,
    stream: u32,
    off_lo: u32,
    off_hi: u32,
    aux0: u32,
    aux1: u32,
    aux2: u32,
}

impl Params {
    fn len(len: usize) -> Params {
        Params {
            len: len as u32,
            ..Default::default()
        }
    }
    fn draw(mut self, d: Draw) -> Params {
        self.key0 = d.key[0];
        self.key1 = d.key[1];
        self.stream = d.stream;
        self.off_lo = d.offset as u32;
        self.off_hi = (d.offset >> 32) as u32;
        self
    }
}

/// A matrix in device memory: row-major f32, `rows * cols` values in a
/// storage buffer padded to 16 bytes (so it can be read as `vec4`).
pub struct GpuMat {
    buf: wgpu::Buffer,
    rows: usize,
    cols: usize,
    id: u64,
    graveyard: Arc<Mutex<Vec<u64>>>,
}

impl GpuMat {
    /// Unique for the lifetime of the backend; keys the bind-group cache.
    pub fn id(&self) -> u64 {
        self.id
    }
    fn b(&self) -> Bind<'_> {
        Bind(&self.buf, self.id)
    }
}

impl Drop for GpuMat {
    fn drop(&mut self) {
        if let Ok(mut g) = self.graveyard.lock() {
            g.push(self.id);
        }
    }
}

impl Matrix for GpuMat {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

impl std::fmt::Debug for GpuMat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuMat({}x{}, id {})", self.rows, self.cols, self.id)
    }
}

/// A buffer as bound: the buffer and its cache id.
#[derive(Clone, Copy)]
struct Bind<'a>(&'a wgpu::Buffer, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kernel {
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
enum Layout {
    Rw(u8),
    Gemm,
}

impl Kernel {
    /// (module name, WGSL body after common.wgsl, entry point, layout)
    fn spec(self) -> (&'static str, &'static str, &'static str, Layout) {
        use Kernel::*;
        match self {
            Unary => ("elementwise", ELEMENTWISE_WGSL, "unary", Layout::Rw(2)),
            UnaryInplace => (
                "elementwise",
                ELEMENTWISE_WGSL,
                "unary_inplace",
                Layout::Rw(1),
            ),
            Binary => ("elementwise", ELEMENTWISE_WGSL, "binary", Layout::Rw(3)),
            BinaryInplace => (
                "elementwise",
                ELEMENTWISE_WGSL,
                "binary_inplace",
                Layout::Rw(2),
            ),
            Affine => ("elementwise", ELEMENTWISE_WGSL, "affine", Layout::Rw(1)),
            Axpby => ("elementwise", ELEMENTWISE_WGSL, "axpby", Layout::Rw(2)),
            Fill => ("elementwise", ELEMENTWISE_WGSL, "fill", Layout::Rw(1)),
            Copy => ("elementwise", ELEMENTWISE_WGSL, "copy", Layout::Rw(2)),
            AddRowVec => (
                "elementwise",
                ELEMENTWISE_WGSL,
                "add_row_vec",
                Layout::Rw(2),
            ),
            AddColVec => (
                "elementwise",
                ELEMENTWISE_WGSL,
                "add_col_vec",
                Layout::Rw(2),
            ),
            MulRowVec => (
                "elementwise",
                ELEMENTWISE_WGSL,
                "mul_row_vec",
                Layout::Rw(2),
            ),
            MulColVec => (
                "elementwise",
                ELEMENTWISE_WGSL,
                "mul_col_vec",
                Layout::Rw(2),
            ),
            Gather => ("gather", GATHER_WGSL, "gather_rows", Layout::Rw(3)),
            Bernoulli => ("sample", SAMPLE_WGSL, "bernoulli", Layout::Rw(2)),
            Gaussian => ("sample", SAMPLE_WGSL, "gaussian", Layout::Rw(2)),
            PhiloxWords => (
                "philox_words",
                PHILOX_WORDS_WGSL,
                "philox_words",
                Layout::Rw(1),
            ),
            ColSums => ("reduce", REDUCE_WGSL, "col_sums", Layout::Rw(2)),
            BiasStep => ("reduce", REDUCE_WGSL, "bias_step", Layout::Rw(4)),
            BiasStepPair => ("reduce", REDUCE_WGSL, "bias_step_pair", Layout::Rw(8)),
            RowSums => ("reduce", REDUCE_WGSL, "row_sums", Layout::Rw(2)),
            SumPartial => ("reduce", REDUCE_WGSL, "sum_partial", Layout::Rw(2)),
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BgKey {
    layout: Layout,
    ids: [u64; 8],
}

/// Mutable state behind one lock: the open command encoder and pass, the
/// parameter ring and index arena of the current batch, and the caches.
struct State {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    /// Parameter slots used in the current batch.
    slots: usize,
    ring_cpu: Vec<u8>,
    idx_cpu: Vec<u32>,
    idx_buf: wgpu::Buffer,
    idx_id: u64,
    idx_cap: u64,
    modules: HashMap<String, wgpu::ShaderModule>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    bind_groups: HashMap<BgKey, wgpu::BindGroup>,
    readback: Option<(wgpu::Buffer, u64)>,
    /// Split-K partial products: (buffer, id, bytes).
    splitk: Option<(wgpu::Buffer, u64, u64)>,
    /// Dispatches recorded since the backend was made.
    dispatches: u64,
}

/// The wgpu backend. All methods take `&self`; the recording state sits
/// behind a mutex, so a `Gpu` can be shared between threads.
pub struct Gpu {
    /// Boxed: a `Gpu` is moved around inside `AnyBackend` next to the tiny `Cpu`.
    i: Box<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    align: u64,
    ring: wgpu::Buffer,
    layouts: HashMap<Layout, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    /// 1024 partial sums + the final sum (`sum`).
    partials: wgpu::Buffer,
    total: wgpu::Buffer,
    /// Stand-ins for the unused bias / sample bindings of a plain GEMM.
    dummy_ro: wgpu::Buffer,
    dummy_rw: wgpu::Buffer,
    next_id: AtomicU64,
    graveyard: Arc<Mutex<Vec<u64>>>,
    error: Arc<Mutex<Option<String>>>,
    tile_override: Mutex<Option<Tile>>,
    /// Split-K factor forced for benchmarks (1 = never split).
    split_override: Mutex<Option<usize>>,
    state: Mutex<State>,
}

// Reserved buffer ids (matrices start above them; 1 would be the ring,
// which every bind group holds).
const ID_PARTIALS: u64 = 2;
const ID_TOTAL: u64 = 3;
const ID_DUMMY_RO: u64 = 4;
const ID_DUMMY_RW: u64 = 5;
const FIRST_ID: u64 = 16;

fn gpu_err(e: impl std::fmt::Display) -> Error {
    Error::Gpu(e.to_string())
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (ty, api)
}

impl Gpu {
    /// The best adapter (discrete > integrated > virtual > software; Vulkan,
    /// Metal or DX12 before GL), with a device that has all of its limits.
    pub fn new() -> Result<Gpu> {
        // WGPU_BACKEND overrides; otherwise the native APIs first and GL only
        // when they offer nothing (probing GL is slow and noisy on headless
        // machines).
        let tries = match wgpu::Backends::from_env() {
            Some(b) => vec![b],
            None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::GL],
        };
        let mut found = None;
        for backends in &tries {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
            desc.backends = *backends;
            desc.flags = wgpu::InstanceFlags::empty().with_env();
            let instance = wgpu::Instance::new(desc);
            let adapters = pollster::block_on(instance.enumerate_adapters(*backends));
            found = adapters
                .into_iter()
                .filter(|a| {
                    let d = a.get_downlevel_capabilities();
                    d.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
                })
                .max_by_key(|a| rank(&a.get_info()));
            if found.is_some() {
                break;
            }
        }
        let adapter = found.ok_or_else(|| {
            Error::NoAdapter(format!(
                "no adapter with compute shaders among the {tries:?} backends \
                 (on Linux without a GPU, install Mesa's lavapipe: mesa-vulkan-drivers)"
            ))
        })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ebmkit"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::NoAdapter(format!("{} ({:?}): {e}", info.name, info.backend)))?;
        let error = Arc::new(Mutex::new(None::<String>));
        {
            let error = error.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                if let Ok(mut slot) = error.lock() {
                    slot.get_or_insert_with(|| e.to_string());
                }
            }));
        }
        let align = (limits.min_uniform_buffer_offset_alignment as u64).max(PARAM_BYTES);
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let mk = |label: &str, size: u64, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let ring = mk(
            "ebmkit params ring",
            align * BATCH_OPS as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let partials = mk("ebmkit partial sums", SUM_GROUPS * 4, storage);
        let total = mk("ebmkit sum", 16, storage);
        let dummy_ro = mk("ebmkit dummy ro", 16, storage);
        let dummy_rw = mk("ebmkit dummy rw", 16, storage);
        let idx_buf = mk("ebmkit gather indices", IDX_CAP * 4, storage);

        let mut layouts = HashMap::new();
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
        // Eight storage buffers (the paired bias step) only where the
        // adapter allows them; `bias_steps` falls back to two dispatches.
        let rw_max = if limits.max_storage_buffers_per_shader_stage >= 8 {
            8
        } else {
            4
        };
        for n in (1..=4u8).chain((rw_max == 8).then_some(8)) {
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
        let tile_override = std::env::var("EBMKIT_GEMM_TILE")
            .ok()
            .and_then(|s| Tile::parse(&s));
        Ok(Gpu {
            i: Box::new(Inner {
                state: Mutex::new(State {
                    encoder: None,
                    pass: None,
                    slots: 0,
                    ring_cpu: vec![0; (align as usize) * BATCH_OPS],
                    idx_cpu: Vec::new(),
                    idx_buf,
                    idx_id: FIRST_ID,
                    idx_cap: IDX_CAP,
                    modules: HashMap::new(),
                    pipelines: HashMap::new(),
                    bind_groups: HashMap::new(),
                    readback: None,
                    splitk: None,
                    dispatches: 0,
                }),
                device,
                queue,
                info,
                limits,
                align,
                ring,
                layouts,
                partials,
                total,
                dummy_ro,
                dummy_rw,
                next_id: AtomicU64::new(FIRST_ID + 1),
                graveyard: Arc::new(Mutex::new(Vec::new())),
                error,
                tile_override: Mutex::new(tile_override),
                split_override: Mutex::new(
                    std::env::var("EBMKIT_GEMM_SPLITK")
                        .ok()
                        .and_then(|s| s.parse().ok()),
                ),
            }),
        })
    }

    /// A software rasteriser (Mesa's lavapipe / llvmpipe): correct, but
    /// slower than the CPU backend, so `auto` does not pick it.
    pub fn is_software(&self) -> bool {
        self.i.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Compute dispatches recorded so far: the unit of per-step overhead on
    /// a GPU (launch and barrier), so benches report it per step.
    pub fn dispatches(&self) -> u64 {
        self.lock().dispatches
    }

    /// Adapter, API, driver and the limits that bound what fits.
    pub fn info(&self) -> String {
        let i = &self.i.info;
        let l = &self.i.limits;
        format!(
            "adapter: {} ({:?}, {:?})\ndriver: {} {}\n\
             max_buffer_size: {}\nmax_storage_buffer_binding_size: {}\n\
             max_compute_workgroup_storage_size: {}\n\
             max_compute_invocations_per_workgroup: {}\n\
             max_compute_workgroups_per_dimension: {}",
            i.name,
            i.device_type,
            i.backend,
            i.driver,
            i.driver_info,
            l.max_buffer_size,
            l.max_storage_buffer_binding_size,
            l.max_compute_workgroup_storage_size,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while recording leaves nothing half-written that matters
        // more than the panic itself; keep going with the state as it is.
        self.i.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_error(&self) -> Result<()> {
        let mut slot = self.i.error.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Largest buffer this device can allocate and bind as storage.
    fn max_bytes(&self) -> u64 {
        self.i
            .limits
            .max_buffer_size
            .min(self.i.limits.max_storage_buffer_binding_size)
    }

    fn alloc(&self, rows: usize, cols: usize, init: Option<&[f32]>) -> Result<GpuMat> {
        let limit = self.max_bytes();
        let what = || {
            format!(
                "GPU matrix {rows}x{cols} (bytes; limit = min(max_buffer_size, \
                 max_storage_buffer_binding_size) of {})",
                self.i.info.name
            )
        };
        let len = rows.checked_mul(cols).ok_or_else(|| Error::Limit {
            what: what(),
            requested: u64::MAX,
            limit,
        })?;
        let bytes = (len.max(1) as u64)
            .checked_mul(4)
            .map(|b| b.next_multiple_of(16))
            .unwrap_or(u64::MAX);
        if bytes > limit || len > u32::MAX as usize {
            return Err(Error::Limit {
                what: what(),
                requested: bytes,
                limit,
            });
        }
        let scope = self
            .i
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.i.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: init.is_some(),
        });
        if let Some(data) = init {
            {
                let mut view = buf.slice(..).get_mapped_range_mut().map_err(gpu_err)?;
                view.slice(..data.len() * 4)
                    .copy_from_slice(bytemuck::cast_slice(data));
            }
            buf.unmap();
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "allocating a {rows}x{cols} matrix ({bytes} bytes): {e}"
            )));
        }
        Ok(GpuMat {
            buf,
            rows,
            cols,
            id: self.i.next_id.fetch_add(1, Ordering::Relaxed),
            graveyard: self.i.graveyard.clone(),
        })
    }

    // ---- recording -----------------------------------------------------

    /// Ends the open pass, writes the batch's parameters and indices, submits.
    fn flush(&self, st: &mut State) {
        st.pass = None;
        if let Some(enc) = st.encoder.take() {
            if st.slots > 0 {
                let used = st.slots * self.i.align as usize;
                self.i
                    .queue
                    .write_buffer(&self.i.ring, 0, &st.ring_cpu[..used]);
            }
            if !st.idx_cpu.is_empty() {
                self.i
                    .queue
                    .write_buffer(&st.idx_buf, 0, bytemuck::cast_slice(&st.idx_cpu));
            }
            self.i.queue.submit([enc.finish()]);
        }
        st.slots = 0;
        st.idx_cpu.clear();
    }

    fn encoder<'s>(&self, st: &'s mut State) -> &'s mut wgpu::CommandEncoder {
        st.pass = None;
        st.encoder.get_or_insert_with(|| {
            self.i
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    fn pipeline(&self, st: &mut State, kernel: Kernel) -> wgpu::ComputePipeline {
        if let Some(p) = st.pipelines.get(&kernel) {
            return p.clone();
        }
        let (name, body, entry, layout) = kernel.spec();
        let (module_key, source, trusted) = match kernel {
            Kernel::Gemm(key) => (
                format!("gemm {key:?}"),
                format!(
                    "{COMMON_WGSL}\n{PHILOX_WGSL}\n{}",
                    gemm::source(GEMM_WGSL, key)
                ),
                true,
            ),
            _ => {
                let philox = if matches!(name, "sample" | "philox_words" | "gemm_splitk" | "anneal")
                {
                    PHILOX_WGSL
                } else {
                    ""
                };
                (
                    name.to_string(),
                    format!("{COMMON_WGSL}\n{philox}\n{body}"),
                    false,
                )
            }
        };
        let device = &self.i.device;
        let module = st
            .modules
            .entry(module_key.clone())
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(&module_key),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                };
                if trusted {
                    // SAFETY: the GEMM kernels check every global index against
                    // the matrix dimensions by hand (see gemm.rs), so the
                    // runtime bounds checks wgpu would add are redundant; they
                    // cost registers and instructions in the inner loop.
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    device.create_shader_module(desc)
                }
            })
            .clone();
        let pipe = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&self.i.layouts[&layout].1),
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        st.pipelines.insert(kernel, pipe.clone());
        pipe
    }

    fn purge_dead(&self, st: &mut State) {
        let dead: Vec<u64> = {
            let mut g = self.i.graveyard.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_empty() {
                return;
            }
            std::mem::take(&mut *g)
        };
        let dead: HashSet<u64> = dead.into_iter().collect();
        st.bind_groups
            .retain(|k, _| !k.ids.iter().any(|id| dead.contains(id)));
    }

    fn bind_group(&self, st: &mut State, layout: Layout, bufs: &[Bind<'_>]) -> wgpu::BindGroup {
        let mut ids = [0u64; 8];
        for (slot, b) in ids.iter_mut().zip(bufs) {
            *slot = b.1;
        }
        let key = BgKey { layout, ids };
        if let Some(bg) = st.bind_groups.get(&key) {
            return bg.clone();
        }
        if st.bind_groups.len() >= BIND_GROUP_CACHE_MAX {
            st.bind_groups.clear();
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.i.ring,
                offset: 0,
                size: wgpu::BufferSize::new(PARAM_BYTES),
            }),
        }];
        for (i, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.0.as_entire_binding(),
            });
        }
        let bg = self.i.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.i.layouts[&layout].0,
            entries: &entries,
        });
        st.bind_groups.insert(key, bg.clone());
        bg
    }

    /// Records one dispatch of `groups` workgroups (laid out in 2D past the
    /// per-dimension limit) or, for GEMM, exactly `grid`.
    fn record(
        &self,
        st: &mut State,
        kernel: Kernel,
        bufs: &[Bind<'_>],
        params: Params,
        grid: (u32, u32, u32),
    ) -> Result<()> {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        self.purge_dead(st);
        let pipe = self.pipeline(st, kernel);
        let bg = self.bind_group(st, kernel.spec().3, bufs);
        let off = st.slots * self.i.align as usize;
        st.ring_cpu[off..off + PARAM_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&params));
        st.slots += 1;
        if st.pass.is_none() {
            let enc = self.encoder(st);
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                })
                .forget_lifetime();
            st.pass = Some(pass);
        }
        let pass = st.pass.as_mut().expect("pass was just opened");
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &bg, &[off as u32]);
        pass.dispatch_workgroups(grid.0, grid.1, grid.2);
        st.dispatches += 1;
        if st.slots >= BATCH_OPS {
            self.flush(st);
        }
        Ok(())
    }

    /// A grid of `groups` workgroups: (x, y) with x * y >= groups.
    fn grid(&self, groups: u64) -> Result<(u32, u32, u32)> {
        let max = self.i.limits.max_compute_workgroups_per_dimension as u64;
        if groups == 0 {
            return Ok((0, 0, 0));
        }
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::Limit {
                what: "workgroups of one dispatch".into(),
                requested: groups,
                limit: max * max,
            });
        }
        Ok((x as u32, y as u32, 1))
    }

    /// An elementwise-style kernel over `items` work items (one per thread).
    fn run(&self, kernel: Kernel, bufs: &[Bind<'_>], params: Params, items: usize) -> Result<()> {
        let grid = self.grid((items as u64).div_ceil(WG))?;
        let mut st = self.lock();
        self.record(&mut st, kernel, bufs, params, grid)
    }

    /// Copies `bytes` of `buf` to the host, waiting for all queued work.
    fn read_back(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let mut st = self.lock();
        self.read_back_locked(&mut st, buf, bytes)
    }

    /// `read_back` with the state already locked, so that what was recorded
    /// just before (the two passes of `sum` into the shared `total` buffer)
    /// is read before another thread can record over it.
    fn read_back_locked(&self, st: &mut State, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            self.flush(st);
            self.i
                .device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(gpu_err)?;
            self.take_error()?;
            return Ok(Vec::new());
        }
        let need = bytes.next_multiple_of(16);
        if st.readback.as_ref().is_none_or(|(_, size)| *size < need) {
            let rb = self.i.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ebmkit readback"),
                size: need,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            st.readback = Some((rb, need));
        }
        let rb = st.readback.as_ref().expect("readback buffer").0.clone();
        self.encoder(st)
            .copy_buffer_to_buffer(buf, 0, &rb, 0, bytes);
        self.flush(st);
        let slice = rb.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.i
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(gpu_err)?;
        let mapped = rx
            .recv()
            .map_err(|_| Error::Gpu("readback callback never ran".into()))?;
        mapped.map_err(gpu_err)?;
        let out = slice.get_mapped_range().map(|v| v.to_vec());
        rb.unmap();
        self.take_error()?;
        out.map_err(gpu_err)
    }

    /// The raw Philox words of a draw as the WGSL generator produces them:
    /// element `i` is word `i % 4` of block `i / 4` (for the bit-exactness tests).
    pub fn philox_words(&self, draw: Draw, n: usize) -> Result<Vec<u32>> {
        let out = self.zeros(1, n)?;
        self.run(
            Kernel::PhiloxWords,
            &[out.b()],
            Params::len(n).draw(draw),
            n.div_ceil(4),
        )?;
        let bytes = self.read_back(&out.buf, n as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

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
    fn gemm_plan(
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
        // Few output tiles and a long k: split k across workgroups (grid z)
        // so the device fills up, then reduce the partial products.
        let tiles = (gx * gy) as usize;
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
        let splits = if splits > 1
            && part_bytes <= SPLITK_MAX_BYTES.min(self.max_bytes())
            && splits as u64 <= max
        {
            splits
        } else {
            1
        };
        Ok(GemmPlan {
            key,
            grid: (gx as u32, gy as u32),
            splits,
            kc: if splits > 1 { kc } else { k },
        })
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
            st.splitk = Some((buf, self.i.next_id.fetch_add(1, Ordering::Relaxed), size));
        }
        let (buf, id, _) = st.splitk.clone().expect("split-K scratch");
        (buf, id)
    }

    /// Records the first pass of a split-K product (`plan.splits > 1`): the
    /// partial products `A_z B_z` of each slice z of k, unscaled, into the
    /// scratch as `splits` consecutive m x n blocks, which it returns.
    fn gemm_partials(
        &self,
        st: &mut State,
        plan: &GemmPlan,
        (m, k, n): (usize, usize, usize),
        a: &GpuMat,
        b: &GpuMat,
    ) -> Result<(wgpu::Buffer, u64)> {
        let (part, part_id) = self.splitk_scratch(st, (plan.splits * m * n * 4) as u64);
        let p = Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            len: (m * n) as u32,
            alpha: 1.0,
            aux0: plan.kc as u32,
            aux1: plan.splits as u32,
            flags: 4,
            ..Default::default()
        };
        let dummy_ro = Bind(&self.i.dummy_ro, ID_DUMMY_RO);
        // Flag 4 sends the tiles to the binding of the sample matrix;
        // C is bound only to fill the layout.
        self.record(
            st,
            Kernel::Gemm(plan.key),
            &[
                a.b(),
                b.b(),
                dummy_ro,
                Bind(&self.i.dummy_rw, ID_DUMMY_RW),
                Bind(&part, part_id),
            ],
            p,
            (plan.grid.0, plan.grid.1, plan.splits as u32),
        )?;
        Ok((part, part_id))
    }

    /// `C = alpha op(A) op(B) + beta C`, or with an `epilogue` the fused
    /// `C = sigmoid(alpha (op(A) op(B) + bias))` and its optional sample.
    fn gemm_impl(
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
        let (ta, tb) = (a.t, b.t);
        let (a, b) = (a.m, b.m);
        let (bias, sample) = match epilogue {
            Some(e) => (Some(e.bias), e.sample),
            None => (None, None),
        };
        let plan = self.gemm_plan((m, k, n), ta, tb)?;
        let mut p = Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            len: (m * n) as u32,
            alpha,
            beta,
            aux0: plan.kc as u32,
            aux1: plan.splits as u32,
            ..Default::default()
        };
        if bias.is_some() {
            p.flags |= 1;
        }
        let dummy_rw = Bind(&self.i.dummy_rw, ID_DUMMY_RW);
        let dummy_ro = Bind(&self.i.dummy_ro, ID_DUMMY_RO);
        let s = match sample {
            Some((s, d)) => {
                p.flags |= 2;
                p = p.draw(d);
                s.b()
            }
            None => dummy_rw,
        };
        let bias = bias.map_or(dummy_ro, |v| v.b());
        let mut st = self.lock();
        if plan.splits == 1 {
            return self.record(
                &mut st,
                Kernel::Gemm(plan.key),
                &[a.b(), b.b(), bias, c.b(), s],
                p,
                (plan.grid.0, plan.grid.1, 1),
            );
        }
        let (part, part_id) = self.gemm_partials(&mut st, &plan, (m, k, n), a, b)?;
        let grid = self.grid(((m * n) as u64).div_ceil(4 * WG))?;
        self.record(
            &mut st,
            Kernel::SplitKReduce,
            &[Bind(&part, part_id), bias, c.b(), s],
            p,
            grid,
        )
    }

    /// One of the row / column broadcasts of `v` over `m` (shapes checked by
    /// the caller); `alpha` scales the added vector, the products ignore it.
    fn broadcast(&self, kernel: Kernel, m: &mut GpuMat, v: &GpuMat, alpha: f32) -> Result<()> {
        let p = Params {
            n: m.cols as u32,
            alpha,
            ..Params::len(m.len())
        };
        self.run(kernel, &[m.b(), v.b()], p, m.len())
    }

    /// Records the tempered hidden pass over `x` (rows x cols), given as
    /// `splits` consecutive partial products to be summed (1: `x` itself).
    fn record_tempered(
        &self,
        st: &mut State,
        x: TemperedInput<'_>,
        p: &Tempered<'_, GpuMat>,
        lw: &mut GpuMat,
        h: Option<(&GpuMat, Draw)>,
    ) -> Result<()> {
        let (rows, cols) = x.shape;
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let mut params = Params {
            m: rows as u32,
            n: cols as u32,
            alpha: p.beta0,
            beta: p.beta1,
            aux1: x.splits as u32,
            ..Default::default()
        };
        if let Some((_, d)) = h {
            params = params.draw(d);
            params.flags = 1;
        }
        if let Some(c) = p.linear_last {
            params.flags |= 2;
            params.aux2 = c.to_bits();
        }
        let grid = self.grid(rows as u64)?;
        let dummy = Bind(&self.i.dummy_rw, ID_DUMMY_RW);
        let h = h.map(|(h, _)| h.b()).unwrap_or(dummy);
        self.record(
            st,
            Kernel::TemperedHidden,
            &[x.x, p.b_h.b(), lw.b(), h],
            params,
            grid,
        )
    }
}

/// What the tempered pass reads: `x` (rows x cols) itself (`splits` = 1)
/// or the `splits` partial products of a split-K GEMM that make it.
struct TemperedInput<'a> {
    x: Bind<'a>,
    splits: usize,
    shape: (usize, usize),
}

/// The fused epilogue of a GEMM: the bias of the sigmoid and, if asked,
/// the sample matrix with its draw.
struct GemmEpilogue<'a> {
    bias: &'a GpuMat,
    sample: Option<(&'a GpuMat, Draw)>,
}

/// See [`Gpu::gemm_plan`].
struct GemmPlan {
    key: GemmKey,
    grid: (u32, u32),
    splits: usize,
    /// The length of each slice of k.
    kc: usize,
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
            .write_buffer(&dst.buf, 0, bytemuck::cast_slice(&host.data));
        Ok(())
    }

    fn download(&self, m: &GpuMat) -> Result<HostMat> {
        let bytes = self.read_back(&m.buf, m.len() as u64 * 4)?;
        HostMat::new(m.rows, m.cols, bytemuck::pod_collect_to_vec(&bytes))
    }

    fn fill(&self, m: &mut GpuMat, value: f32) -> Result<()> {
        let p = Params {
            alpha: value,
            ..Params::len(m.len())
        };
        self.run(Kernel::Fill, &[m.b()], p, m.len())
    }

    fn copy(&self, src: &GpuMat, dst: &mut GpuMat) -> Result<()> {
        same_shape("copy", src.shape(), dst.shape())?;
        self.run(
            Kernel::Copy,
            &[src.b(), dst.b()],
            Params::len(src.len()),
            src.len(),
        )
    }

    fn gather_rows(&self, src: &GpuMat, idx: &[u32], dst: &mut GpuMat) -> Result<()> {
        gather_check("gather_rows", src.shape(), idx, dst.shape())?;
        if dst.is_empty() {
            return Ok(());
        }
        let grid = self.grid((dst.len() as u64).div_ceil(WG))?;
        let mut st = self.lock();
        // Indices and the dispatch must land in the same batch.
        if st.slots + 1 >= BATCH_OPS || (st.idx_cpu.len() + idx.len()) as u64 > st.idx_cap {
            self.flush(&mut st);
        }
        if idx.len() as u64 > st.idx_cap {
            let cap = (idx.len() as u64).next_power_of_two();
            if cap * 4 > self.max_bytes() {
                return Err(Error::Limit {
                    what: "gather_rows indices (bytes)".into(),
                    requested: cap * 4,
                    limit: self.max_bytes(),
                });
            }
            st.idx_buf = self.i.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ebmkit gather indices"),
                size: cap * 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            st.idx_cap = cap;
            st.idx_id = self.i.next_id.fetch_add(1, Ordering::Relaxed);
        }
        let start = st.idx_cpu.len() as u32;
        st.idx_cpu.extend_from_slice(idx);
        let p = Params {
            n: dst.cols as u32,
            aux0: start,
            ..Params::len(dst.len())
        };
        let idx_buf = st.idx_buf.clone();
        let idx_id = st.idx_id;
        self.record(
            &mut st,
            Kernel::Gather,
            &[src.b(), Bind(&idx_buf, idx_id), dst.b()],
            p,
            grid,
        )
    }

    fn sync(&self) -> Result<()> {
        {
            let mut st = self.lock();
            self.flush(&mut st);
        }
        self.i
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(gpu_err)?;
        self.take_error()
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
        if out.shape() != (1, x.cols) {
            return Err(Error::shape(
                "col_sums",
                format!(
                    "a {}x{} input needs a 1x{} output, got {}x{}",
                    x.rows, x.cols, x.cols, out.rows, out.cols
                ),
            ));
        }
        let p = Params {
            m: x.rows as u32,
            n: x.cols as u32,
            alpha,
            beta,
            ..Default::default()
        };
        let grid = self.grid((x.cols as u64).div_ceil(64))?;
        let mut st = self.lock();
        self.record(&mut st, Kernel::ColSums, &[x.b(), out.b()], p, grid)
    }

    fn row_sums(&self, x: &GpuMat, alpha: f32, beta: f32, out: &mut GpuMat) -> Result<()> {
        if out.shape() != (x.rows, 1) {
            return Err(Error::shape(
                "row_sums",
                format!(
                    "a {}x{} input needs a {}x1 output, got {}x{}",
                    x.rows, x.cols, x.rows, out.rows, out.cols
                ),
            ));
        }
        let p = Params {
            m: x.rows as u32,
            n: x.cols as u32,
            alpha,
            beta,
            ..Default::default()
        };
        let grid = self.grid(x.rows as u64)?;
        let mut st = self.lock();
        self.record(&mut st, Kernel::RowSums, &[x.b(), out.b()], p, grid)
    }

    fn sum(&self, x: &GpuMat) -> Result<f32> {
        if x.is_empty() {
            return Ok(0.0);
        }
        let groups = (x.len() as u64).div_ceil(WG).min(SUM_GROUPS);
        let mut st = self.lock();
        {
            let partials = Bind(&self.i.partials, ID_PARTIALS);
            self.record(
                &mut st,
                Kernel::SumPartial,
                &[x.b(), partials],
                Params::len(x.len()),
                (groups as u32, 1, 1),
            )?;
            self.record(
                &mut st,
                Kernel::SumPartial,
                &[partials, Bind(&self.i.total, ID_TOTAL)],
                Params::len(groups as usize),
                (1, 1, 1),
            )?;
        }
        let bytes = self.read_back_locked(&mut st, &self.i.total, 4)?;
        Ok(bytemuck::pod_read_unaligned::<f32>(&bytes[..4]))
    }

    fn unary(&self, op: Unary, x: &GpuMat, out: &mut GpuMat) -> Result<()> {
        same_shape("unary", x.shape(), out.shape())?;
        let p = Params {
            op: op as u32,
            ..Params::len(x.len())
        };
        self.run(Kernel::Unary, &[x.b(), out.b()], p, x.len())
    }

    fn unary_inplace(&self, op: Unary, x: &mut GpuMat) -> Result<()> {
        let p = Params {
            op: op as u32,
            ..Params::len(x.len())
        };
        self.run(Kernel::UnaryInplace, &[x.b()], p, x.len())
    }

    fn binary(&self, op: Binary, a: &GpuMat, b: &GpuMat, out: &mut GpuMat) -> Result<()> {
        same_shape("binary", a.shape(), b.shape())?;
        same_shape("binary", a.shape(), out.shape())?;
        let p = Params {
            op: op as u32,
            ..Params::len(a.len())
        };
        self.run(Kernel::Binary, &[a.b(), b.b(), out.b()], p, a.len())
    }

    fn binary_inplace(&self, op: Binary, a: &mut GpuMat, b: &GpuMat) -> Result<()> {
        same_shape("binary_inplace", a.shape(), b.shape())?;
        let p = Params {
            op: op as u32,
            ..Params::len(a.len())
        };
        self.run(Kernel::BinaryInplace, &[a.b(), b.b()], p, a.len())
    }

    fn affine(&self, x: &mut GpuMat, alpha: f32, beta: f32) -> Result<()> {
        let p = Params {
            alpha,
            beta,
            ..Params::len(x.len())
        };
        self.run(Kernel::Affine, &[x.b()], p, x.len())
    }

    fn axpby(&self, alpha: f32, x: &GpuMat, beta: f32, y: &mut GpuMat) -> Result<()> {
        same_shape("axpby", x.shape(), y.shape())?;
        let p = Params {
            alpha,
            beta,
            ..Params::len(x.len())
        };
        self.run(Kernel::Axpby, &[x.b(), y.b()], p, x.len())
    }

    fn bernoulli(&self, p: &GpuMat, out: &mut GpuMat, rng: &mut RngStream) -> Result<()> {
        same_shape("bernoulli", p.shape(), out.shape())?;
        let draw = rng.next_draw();
        self.run(
            Kernel::Bernoulli,
            &[p.b(), out.b()],
            Params::len(p.len()).draw(draw),
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
        let draw = rng.next_draw();
        let p = Params {
            alpha: std,
            ..Params::len(mean.len()).draw(draw)
        };
        self.run(
            Kernel::Gaussian,
            &[mean.b(), out.b()],
            p,
            mean.len().div_ceil(2),
        )
    }
}
