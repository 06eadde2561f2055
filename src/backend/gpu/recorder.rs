//! Recording: per-dispatch overhead, not arithmetic, bounds the small
//! kernels that training and annealing loops issue by the million, so
//! dispatches are recorded into one long compute pass, their parameters go
//! into a CPU-side uniform ring written once per submit, and pipelines and
//! bind groups are made once and cached.

use super::device::{gpu_err, Bind, Gpu, FIRST_ID};
use super::kernels::{Kernel, KernelParams, Layout, Spec, PARAM_BYTES, WG};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

/// Dispatches per submitted command buffer (and parameter slots in the ring).
pub const BATCH_OPS: usize = 128;
/// Initial capacity (u32 indices) of the gather index arena.
const IDX_CAP: u64 = 1 << 16;
/// Bind groups kept before the cache is cleared wholesale.
const BIND_GROUP_CACHE_MAX: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BgKey {
    layout: Layout,
    ids: [u64; 8],
}

/// Mutable state behind one lock: the open command encoder and pass, the
/// parameter ring and index arena of the current batch, and the caches.
pub(super) struct State {
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
    pub splitk: Option<(wgpu::Buffer, u64, u64)>,
    /// Dispatches recorded since the backend was made.
    dispatches: u64,
}

impl State {
    /// An empty batch whose ring slots are `align` bytes apart.
    pub fn new(device: &wgpu::Device, align: u64) -> State {
        let idx_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ebmkit gather indices"),
            size: IDX_CAP * 4,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        State {
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
        }
    }
}

impl Gpu {
    /// Compute dispatches recorded so far: the unit of per-step overhead on
    /// a GPU (launch and barrier), so benches report it per step.
    pub fn dispatches(&self) -> u64 {
        self.lock().dispatches
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while recording leaves nothing half-written that matters
        // more than the panic itself; keep going with the state as it is.
        self.i.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the open pass, writes the batch's parameters and indices, submits.
    pub(super) fn flush(&self, st: &mut State) {
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
        let Spec { entry, layout, .. } = kernel.spec();
        let device = &self.i.device;
        let module = kernel.module();
        let module = st
            .modules
            .entry(module.key.clone())
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(&module.key),
                    source: wgpu::ShaderSource::Wgsl(module.source.into()),
                };
                if module.trusted {
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
            *slot = b.id;
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
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.buf,
                    offset: b.offset,
                    size: b.size,
                }),
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

    /// Records one dispatch of exactly `grid` workgroups, reading `params`
    /// (the parameter struct of the kernel's shader) from its ring slot.
    pub(super) fn record<P: KernelParams>(
        &self,
        st: &mut State,
        kernel: Kernel,
        bufs: &[Bind<'_>],
        params: &P,
        grid: (u32, u32, u32),
    ) -> Result<()> {
        let spec = kernel.spec();
        debug_assert_eq!(
            P::SHADER,
            spec.shader.file,
            "{kernel:?} is given another shader's parameters"
        );
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        self.purge_dead(st);
        let pipe = self.pipeline(st, kernel);
        let bg = self.bind_group(st, spec.layout, bufs);
        let off = st.slots * self.i.align as usize;
        let bytes = bytemuck::bytes_of(params);
        let slot = &mut st.ring_cpu[off..off + PARAM_BYTES as usize];
        slot[..bytes.len()].copy_from_slice(bytes);
        slot[bytes.len()..].fill(0);
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

    /// A grid of `groups` workgroups: (x, y) with x * y >= groups, laid out
    /// in 2D past the per-dimension limit.
    pub(super) fn grid(&self, groups: u64) -> Result<(u32, u32, u32)> {
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
    pub(super) fn run<P: KernelParams>(
        &self,
        kernel: Kernel,
        bufs: &[Bind<'_>],
        params: &P,
        items: usize,
    ) -> Result<()> {
        let grid = self.grid((items as u64).div_ceil(WG))?;
        let mut st = self.lock();
        self.record(&mut st, kernel, bufs, params, grid)
    }

    /// Copies `bytes` of `buf` from `offset` on to the host, waiting for
    /// all queued work.
    pub(super) fn read_back(&self, buf: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let mut st = self.lock();
        self.read_back_locked(&mut st, buf, offset, bytes)
    }

    /// `read_back` with the state already locked, so that what was recorded
    /// just before (the two passes of `sum` into the shared `total` buffer)
    /// is read before another thread can record over it.
    pub(super) fn read_back_locked(
        &self,
        st: &mut State,
        buf: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        if bytes == 0 {
            self.flush(st);
            self.wait()?;
            return Ok(Vec::new());
        }
        let rb = self.readback_buffer(st, bytes.next_multiple_of(16));
        self.encoder(st)
            .copy_buffer_to_buffer(buf, offset, &rb, 0, bytes);
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

    /// The staging buffer for read-backs, grown to at least `need` bytes.
    fn readback_buffer(&self, st: &mut State, need: u64) -> wgpu::Buffer {
        if st.readback.as_ref().is_none_or(|(_, size)| *size < need) {
            let rb = self.i.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ebmkit readback"),
                size: need,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            st.readback = Some((rb, need));
        }
        st.readback.as_ref().expect("readback buffer").0.clone()
    }

    /// Puts `idx` into the batch's index arena (flushing first if it or
    /// the next dispatch would not fit, growing the arena if needed), since
    /// the indices and the dispatch that reads them must land in the same
    /// batch; returns the arena, its id and where `idx` starts in it.
    pub(super) fn push_indices(
        &self,
        st: &mut State,
        idx: &[u32],
    ) -> Result<(wgpu::Buffer, u64, u32)> {
        if st.slots + 1 >= BATCH_OPS || (st.idx_cpu.len() + idx.len()) as u64 > st.idx_cap {
            self.flush(st);
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
            st.idx_id = self.next_id();
        }
        let start = st.idx_cpu.len() as u32;
        st.idx_cpu.extend_from_slice(idx);
        Ok((st.idx_buf.clone(), st.idx_id, start))
    }

    /// Waits for everything submitted, then reports any device error.
    pub(super) fn wait(&self) -> Result<()> {
        self.i
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(gpu_err)?;
        self.take_error()
    }
}
