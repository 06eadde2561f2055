//! The device and its memory. An adapter is chosen once, with every limit it
//! has, because the limits (not the API) decide which shapes fit; matrices
//! are plain storage buffers, and ids rather than buffer handles key the
//! bind-group cache, so that dropping a matrix can evict its bind groups.
//! Since the GEMM kernels run without runtime bounds checks, tests can also
//! place a matrix between guard regions to catch what those checks would.

use super::gemm::Tile;
use super::kernels::{make_layouts, Layout, PARAM_BYTES};
use super::recorder::{State, BATCH_OPS};
use crate::backend::Matrix;
use crate::error::{Error, Result};
use crate::host::HostMat;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Workgroups of the first pass of `sum`.
pub(super) const SUM_GROUPS: u64 = 1024;

// Reserved buffer ids (matrices start above them; 1 would be the ring,
// which every bind group holds).
pub(super) const ID_PARTIALS: u64 = 2;
pub(super) const ID_TOTAL: u64 = 3;
pub(super) const ID_DUMMY_RO: u64 = 4;
pub(super) const ID_DUMMY_RW: u64 = 5;
pub(super) const FIRST_ID: u64 = 16;

/// A matrix in device memory: row-major f32, `rows * cols` values in a
/// storage buffer padded to 16 bytes (so it can be read as `vec4`).
pub struct GpuMat {
    pub(super) buf: wgpu::Buffer,
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// Where the matrix starts in `buf`, and the size of its binding
    /// (`None`: to the end of `buf`); only a guarded matrix
    /// ([`Gpu::upload_guarded`]) has an offset.
    pub(super) offset: u64,
    bind_size: Option<wgpu::BufferSize>,
    id: u64,
    graveyard: Arc<Mutex<Vec<u64>>>,
}

impl GpuMat {
    /// Unique for the lifetime of the backend; keys the bind-group cache.
    pub fn id(&self) -> u64 {
        self.id
    }
    pub(super) fn b(&self) -> Bind<'_> {
        Bind {
            buf: &self.buf,
            id: self.id,
            offset: self.offset,
            size: self.bind_size,
        }
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
        write!(f, "GpuMat({}x{}, id {})", self.rows, self.cols, self.id)?;
        if self.offset > 0 {
            write!(f, " at byte {} of {}", self.offset, self.buf.size())?;
        }
        Ok(())
    }
}

/// A buffer as bound: the buffer, its cache id and the bound range.
#[derive(Clone, Copy)]
pub(super) struct Bind<'a> {
    pub buf: &'a wgpu::Buffer,
    pub id: u64,
    pub offset: u64,
    pub size: Option<wgpu::BufferSize>,
}

impl<'a> Bind<'a> {
    /// All of `buf`.
    pub fn whole(buf: &'a wgpu::Buffer, id: u64) -> Bind<'a> {
        Bind {
            buf,
            id,
            offset: 0,
            size: None,
        }
    }
}

/// A matrix made by [`Gpu::upload_guarded`] as read back: the words of its
/// buffer before its first element, its values, and the words after its
/// last (for any other matrix, nothing before and the padding after).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Guarded {
    pub before: Vec<u32>,
    pub values: HostMat,
    pub after: Vec<u32>,
}

/// Guard regions of at least `words` words of `sentinel` on each side of a
/// matrix (without one, a matrix starts its buffer and fills it).
#[derive(Clone, Copy)]
struct Guard {
    words: usize,
    sentinel: u32,
}

/// The wgpu backend. All methods take `&self`; the recording state sits
/// behind a mutex, so a `Gpu` can be shared between threads.
pub struct Gpu {
    /// Boxed: a `Gpu` is moved around inside `AnyBackend` next to the tiny `Cpu`.
    pub(super) i: Box<Inner>,
}

pub(super) struct Inner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Bytes between two parameter slots of the ring.
    pub align: u64,
    pub ring: wgpu::Buffer,
    pub layouts: HashMap<Layout, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    /// 1024 partial sums + the final sum (`sum`).
    pub partials: wgpu::Buffer,
    pub total: wgpu::Buffer,
    /// Stand-ins for the unused bias / sample bindings of a plain GEMM.
    pub dummy_ro: wgpu::Buffer,
    pub dummy_rw: wgpu::Buffer,
    pub next_id: AtomicU64,
    pub graveyard: Arc<Mutex<Vec<u64>>>,
    pub error: ErrorSlot,
    pub tile_override: Mutex<Option<Tile>>,
    /// Split-K factor forced for benchmarks (1 = never split).
    pub split_override: Mutex<Option<usize>>,
    pub state: Mutex<State>,
}

impl Inner {
    /// The stand-ins as bound.
    pub fn dummy_ro(&self) -> Bind<'_> {
        Bind::whole(&self.dummy_ro, ID_DUMMY_RO)
    }
    pub fn dummy_rw(&self) -> Bind<'_> {
        Bind::whole(&self.dummy_rw, ID_DUMMY_RW)
    }
}

/// Where device errors raised outside an error scope wait to be reported.
type ErrorSlot = Arc<Mutex<Option<String>>>;

pub(super) fn gpu_err(e: impl std::fmt::Display) -> Error {
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

/// The environment variable that restricts the GPU backend to one graphics
/// API (`auto`, `vulkan`, `metal`, `dx12`, `gl`): adapters differ in their
/// compilers and transcendentals, and the tests must pass on each of them.
pub const GPU_API_ENV: &str = "EBMKIT_GPU_API";

const API_NAMES: [(wgpu::Backends, &str); 4] = [
    (wgpu::Backends::VULKAN, "vulkan"),
    (wgpu::Backends::METAL, "metal"),
    (wgpu::Backends::DX12, "dx12"),
    (wgpu::Backends::GL, "gl"),
];

fn api_names(b: wgpu::Backends) -> String {
    let names: Vec<&str> = API_NAMES
        .iter()
        .filter(|(f, _)| b.contains(*f))
        .map(|&(_, n)| n)
        .collect();
    names.join("/")
}

/// A value of `EBMKIT_GPU_API`: the API it names, `None` for `auto` or empty.
fn parse_api(value: &str) -> Result<Option<wgpu::Backends>> {
    let v = value.trim().to_ascii_lowercase();
    if v.is_empty() || v == "auto" {
        return Ok(None);
    }
    match API_NAMES.iter().find(|(_, n)| *n == v) {
        Some(&(b, _)) => Ok(Some(b)),
        None => Err(Error::value(
            GPU_API_ENV,
            format!(
                "'{}' is not one of auto, {}",
                value.trim(),
                api_names(wgpu::Backends::all()).replace('/', ", ")
            ),
        )),
    }
}

/// The sets of APIs to try, in order: `EBMKIT_GPU_API`, else wgpu's own
/// `WGPU_BACKEND`, else the native APIs first and GL only when they offer
/// nothing (probing GL is slow and noisy on headless machines).
fn api_tries() -> Result<Vec<wgpu::Backends>> {
    let chosen = match std::env::var(GPU_API_ENV) {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => String::new(),
        Err(e) => return Err(Error::value(GPU_API_ENV, e.to_string())),
    };
    if let Some(b) = parse_api(&chosen)? {
        return Ok(vec![b]);
    }
    Ok(match wgpu::Backends::from_env() {
        Some(b) => vec![b],
        None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::GL],
    })
}

/// The best adapter with compute shaders, from the APIs [`api_tries`] names.
fn pick_adapter() -> Result<wgpu::Adapter> {
    let tries = api_tries()?;
    let mut without_compute = Vec::new();
    for backends in &tries {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = *backends;
        desc.flags = wgpu::InstanceFlags::empty().with_env();
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(*backends));
        let (found, rest): (Vec<_>, Vec<_>) = adapters.into_iter().partition(|a| {
            let d = a.get_downlevel_capabilities();
            d.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        });
        without_compute.extend(rest.iter().map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        }));
        if let Some(a) = found.into_iter().max_by_key(|a| rank(&a.get_info())) {
            return Ok(a);
        }
    }
    let tried: Vec<String> = tries.iter().map(|&b| api_names(b)).collect();
    let others = if without_compute.is_empty() {
        String::new()
    } else {
        format!(
            "; found only adapters without compute shaders: {}",
            without_compute.join(", ")
        )
    };
    Err(Error::NoAdapter(format!(
        "none with compute shaders from {}{others} (on Linux without a GPU, install \
         Mesa's lavapipe for Vulkan: mesa-vulkan-drivers; or llvmpipe for GL: \
         libgl1-mesa-dri, libegl1; {GPU_API_ENV}=auto|vulkan|metal|dx12|gl \
         chooses the API)",
        tried.join(", then ")
    )))
}

/// A device with all of the adapter's limits; validation errors outside an
/// error scope land in the returned slot, for `sync` and read-backs to report.
fn open_device(
    adapter: &wgpu::Adapter,
    info: &wgpu::AdapterInfo,
    limits: &wgpu::Limits,
) -> Result<(wgpu::Device, wgpu::Queue, ErrorSlot)> {
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
    Ok((device, queue, error))
}

fn forced_from_env() -> (Option<Tile>, Option<usize>) {
    let tile = std::env::var("EBMKIT_GEMM_TILE")
        .ok()
        .and_then(|s| Tile::parse(&s));
    let split = std::env::var("EBMKIT_GEMM_SPLITK")
        .ok()
        .and_then(|s| s.parse().ok());
    (tile, split)
}

impl Gpu {
    /// The best adapter (discrete > integrated > virtual > software; Vulkan,
    /// Metal or DX12 before GL, or only the API [`GPU_API_ENV`] names), with
    /// a device that has all of its limits.
    pub fn new() -> Result<Gpu> {
        let adapter = pick_adapter()?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue, error) = open_device(&adapter, &info, &limits)?;
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
        let state = State::new(&device, align);
        let layouts = make_layouts(&device, &limits);
        let (tile_override, split_override) = forced_from_env();
        Ok(Gpu {
            i: Box::new(Inner {
                state: Mutex::new(state),
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
                split_override: Mutex::new(split_override),
            }),
        })
    }

    /// A software rasteriser (Mesa's lavapipe / llvmpipe): correct, but
    /// slower than the CPU backend, so `auto` does not pick it.
    pub fn is_software(&self) -> bool {
        self.i.info.device_type == wgpu::DeviceType::Cpu
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

    pub(super) fn take_error(&self) -> Result<()> {
        let mut slot = self.i.error.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Largest buffer this device can allocate and bind as storage.
    pub(super) fn max_bytes(&self) -> u64 {
        self.i
            .limits
            .max_buffer_size
            .min(self.i.limits.max_storage_buffer_binding_size)
    }

    /// A fresh id for a buffer the bind-group cache will see.
    pub(super) fn next_id(&self) -> u64 {
        self.i.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn alloc(&self, rows: usize, cols: usize, init: Option<&[f32]>) -> Result<GpuMat> {
        self.alloc_placed(rows, cols, init, None)
    }

    /// Test support (the GEMM out-of-bounds canary): `host` in a buffer of
    /// its own between two guard regions of at least `guard` words each,
    /// every word of which (and of the padding after the last element) is
    /// `sentinel`. The matrix is bound from its first element (an offset
    /// aligned to `min_storage_buffer_offset_alignment`) to the end of the
    /// trailing guard: a kernel that indexes past the matrix then reads or
    /// writes sentinels even on devices that clamp every access to the
    /// bound range (lavapipe does), and [`Gpu::read_guarded`] shows it.
    #[doc(hidden)]
    pub fn upload_guarded(&self, host: &HostMat, guard: usize, sentinel: u32) -> Result<GpuMat> {
        if host.data.len() != host.rows * host.cols {
            return Err(Error::shape(
                "upload_guarded",
                format!(
                    "{}x{} with {} values",
                    host.rows,
                    host.cols,
                    host.data.len()
                ),
            ));
        }
        let guard = Guard {
            words: guard,
            sentinel,
        };
        self.alloc_placed(host.rows, host.cols, Some(&host.data), Some(guard))
    }

    /// Test support: all of `m`'s buffer, split as [`Guarded`] (one read).
    #[doc(hidden)]
    pub fn read_guarded(&self, m: &GpuMat) -> Result<Guarded> {
        let bytes = self.read_back(&m.buf, 0, m.buf.size())?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        let (first, end) = ((m.offset / 4) as usize, (m.offset / 4) as usize + m.len());
        let values = words[first..end]
            .iter()
            .map(|&w| f32::from_bits(w))
            .collect();
        Ok(Guarded {
            before: words[..first].to_vec(),
            values: HostMat::new(m.rows, m.cols, values)?,
            after: words[end..].to_vec(),
        })
    }

    /// Bytes of the storage of a `rows x cols` matrix (at least one value,
    /// padded to 16 bytes), checked against the device's limits.
    fn matrix_bytes(&self, rows: usize, cols: usize) -> Result<u64> {
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
        Ok(bytes)
    }

    /// (buffer size, offset of the matrix, size of its binding) for a
    /// matrix of `bytes`, with or without a guard.
    fn layout(
        &self,
        bytes: u64,
        guard: Option<Guard>,
    ) -> Result<(u64, u64, Option<wgpu::BufferSize>)> {
        let Some(Guard { words, .. }) = guard else {
            return Ok((bytes, 0, None));
        };
        let align = (self.i.limits.min_storage_buffer_offset_alignment as u64).max(16);
        let lead = (words as u64 * 4).max(1).next_multiple_of(align);
        let bound = bytes + (words as u64 * 4).next_multiple_of(16);
        let total = lead + bound;
        if total > self.max_bytes() {
            return Err(Error::Limit {
                what: "guarded GPU matrix (bytes)".into(),
                requested: total,
                limit: self.max_bytes(),
            });
        }
        Ok((total, lead, wgpu::BufferSize::new(bound)))
    }

    fn alloc_placed(
        &self,
        rows: usize,
        cols: usize,
        init: Option<&[f32]>,
        guard: Option<Guard>,
    ) -> Result<GpuMat> {
        let (size, offset, bind_size) = self.layout(self.matrix_bytes(rows, cols)?, guard)?;
        let scope = self
            .i
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.i.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: init.is_some() || guard.is_some(),
        });
        if init.is_some() || guard.is_some() {
            {
                let mut view = buf.slice(..).get_mapped_range_mut().map_err(gpu_err)?;
                if let Some(Guard { sentinel, .. }) = guard {
                    let words = vec![sentinel; (size / 4) as usize];
                    view.slice(..).copy_from_slice(bytemuck::cast_slice(&words));
                }
                if let Some(data) = init {
                    let at = offset as usize;
                    view.slice(at..at + data.len() * 4)
                        .copy_from_slice(bytemuck::cast_slice(data));
                }
            }
            buf.unmap();
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "allocating a {rows}x{cols} matrix ({size} bytes): {e}"
            )));
        }
        Ok(GpuMat {
            buf,
            rows,
            cols,
            offset,
            bind_size,
            id: self.next_id(),
            graveyard: self.i.graveyard.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_api_values() {
        assert_eq!(parse_api("").unwrap(), None);
        assert_eq!(parse_api(" Auto ").unwrap(), None);
        assert_eq!(parse_api("gl").unwrap(), Some(wgpu::Backends::GL));
        assert_eq!(parse_api("Vulkan").unwrap(), Some(wgpu::Backends::VULKAN));
        let e = parse_api("metl").unwrap_err().to_string();
        assert!(
            e.contains(GPU_API_ENV)
                && e.contains("'metl'")
                && e.contains("auto, vulkan, metal, dx12, gl"),
            "{e}"
        );
    }
}
