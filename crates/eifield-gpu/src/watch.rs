//! Following the state between readbacks, on the GPU: a [`CellWatch`]
//! gathers E and I of a few cells after each tick into slots of a sample
//! buffer, read back in one copy later; an [`ActivationTracker`] records the
//! first time each cell's E crosses a threshold upward, tick by tick (the
//! live activation map). Neither waits for the GPU.

use crate::context::{GpuContext, GpuError};
use crate::engine::GpuEngine;
use crate::readback::PendingRead;
use crate::shader::{self, Precision};

/// Invocations per workgroup of `gather` (as in `watch.wgsl`).
const GATHER_GROUP_SIZE: u32 = 64;
/// Invocations per workgroup of `activate` (as in `watch.wgsl`).
const ACTIVATE_GROUP_SIZE: u32 = 256;
/// Workgroups of either kernel at most (they stride over the rest).
const MAX_GROUPS: u32 = 1024;
/// Bytes of `activate`'s uniform block (40 in f64).
const CROSSING_BYTES: u64 = 64;
/// `first_time` of a cell not yet activated.
const NOT_YET: f64 = -1.0;

fn compute_pipeline(ctx: &GpuContext, precision: Precision, entry: &str) -> wgpu::ComputePipeline {
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("watch"),
            source: wgpu::ShaderSource::Wgsl(shader::watch_source(precision).into()),
        });
    ctx.device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
}

fn buffer(ctx: &GpuContext, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(16),
        usage,
        mapped_at_creation: false,
    })
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// Submits one dispatch of `groups` workgroups of `pipeline` with `entries`
/// as its bind group 0 (after the queue's pending buffer writes).
fn dispatch(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    entries: &[wgpu::BindGroupEntry<'_>],
    groups: u32,
) {
    let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries,
    });
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(groups, 1, 1);
    }
    ctx.queue.submit([encoder.finish()]);
}

/// E and I of some cells after each recorded tick (see the module docs).
pub struct CellWatch {
    ctx: GpuContext,
    precision: Precision,
    pipeline: wgpu::ComputePipeline,
    cells: Vec<usize>,
    index: wgpu::Buffer,
    samples: wgpu::Buffer,
    counts: wgpu::Buffer,
    slots: usize,
    /// Model time of each slot recorded since the last take.
    times: Vec<f64>,
}

impl CellWatch {
    /// Watches `cells` (indices on the engine's lattice; others are
    /// dropped) with room for `slots` ticks between two takes.
    pub fn new(engine: &GpuEngine, cells: &[usize], slots: usize) -> Self {
        let ctx = engine.context().clone();
        let precision = engine.precision();
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let mut watch = Self {
            pipeline: compute_pipeline(&ctx, precision, "gather"),
            index: buffer(&ctx, "watched cells", 16, storage),
            samples: buffer(&ctx, "watched samples", 16, storage),
            counts: buffer(
                &ctx,
                "watch counts",
                16,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            ctx,
            precision,
            cells: Vec::new(),
            slots: slots.max(1),
            times: Vec::new(),
        };
        watch.set_cells(engine, cells);
        watch
    }

    /// The watched cells.
    pub fn cells(&self) -> &[usize] {
        &self.cells
    }

    /// Watches other cells from now on; ticks recorded and not yet taken
    /// are dropped (take them first).
    pub fn set_cells(&mut self, engine: &GpuEngine, cells: &[usize]) {
        let n = engine.grid.len();
        self.cells = cells.iter().copied().filter(|&k| k < n).collect();
        self.times.clear();
        let index: Vec<u32> = self.cells.iter().map(|&k| k as u32).collect();
        let index_bytes = (index.len() * 4) as u64;
        let sample_bytes = (self.slots * 2 * self.cells.len() * self.precision.bytes()) as u64;
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        if self.index.size() < index_bytes {
            self.index = buffer(&self.ctx, "watched cells", index_bytes, storage);
        }
        if self.samples.size() < sample_bytes {
            self.samples = buffer(
                &self.ctx,
                "watched samples",
                sample_bytes,
                storage | wgpu::BufferUsages::COPY_SRC,
            );
        }
        if !index.is_empty() {
            self.ctx
                .queue
                .write_buffer(&self.index, 0, bytemuck::cast_slice(&index));
        }
    }

    /// Whether every slot holds a tick not yet taken.
    pub fn is_full(&self) -> bool {
        self.times.len() >= self.slots
    }

    /// Ticks recorded since the last take.
    pub fn recorded(&self) -> usize {
        self.times.len()
    }

    /// Gathers E and I of the watched cells as the engine's state is after
    /// the work submitted so far, stamped with the engine's time. False,
    /// recording nothing, when the watch is full (take it first) or empty.
    pub fn record(&mut self, engine: &GpuEngine) -> bool {
        if self.is_full() || self.cells.is_empty() {
            return false;
        }
        let n = self.cells.len() as u32;
        let groups = n.div_ceil(GATHER_GROUP_SIZE).clamp(1, MAX_GROUPS);
        let offset = (self.times.len() * 2 * self.cells.len()) as u32;
        let queue = &self.ctx.queue;
        // Applied at the start of the submission below, after the earlier ones.
        queue.write_buffer(
            &self.counts,
            0,
            bytemuck::cast_slice(&[n, groups * GATHER_GROUP_SIZE, offset, 0]),
        );
        let (e, i) = engine.state_buffers();
        dispatch(
            &self.ctx,
            &self.pipeline,
            &[
                entry(0, &self.counts),
                entry(1, &self.index),
                entry(2, e),
                entry(3, i),
                entry(4, &self.samples),
            ],
            groups,
        );
        self.times.push(engine.t);
        true
    }

    /// Starts copying the ticks recorded so far back to the CPU; the watch
    /// is empty again (later records land after the copy on the queue).
    /// `None` when nothing was recorded.
    pub fn take(&mut self) -> Option<PendingWatch> {
        if self.times.is_empty() {
            return None;
        }
        let bytes = (self.times.len() * 2 * self.cells.len() * self.precision.bytes()) as u64;
        let read = PendingRead::start(&self.ctx, &[(&self.samples, 0, bytes)]);
        Some(PendingWatch {
            read,
            cells: self.cells.clone(),
            times: std::mem::take(&mut self.times),
            precision: self.precision,
        })
    }
}

/// E and I of the watched cells at one recorded tick.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedTick {
    /// Model time.
    pub t: f64,
    /// E of each watched cell, in the watch's order.
    pub e: Vec<f64>,
    /// I of each watched cell.
    pub i: Vec<f64>,
}

/// Recorded ticks on their way back ([`CellWatch::take`]).
pub struct PendingWatch {
    read: PendingRead,
    cells: Vec<usize>,
    times: Vec<f64>,
    precision: Precision,
}

impl PendingWatch {
    /// The cells the ticks hold, in order.
    pub fn cells(&self) -> &[usize] {
        &self.cells
    }

    /// The ticks, oldest first, if they have arrived (never waits).
    pub fn try_take(&mut self) -> Option<Result<Vec<WatchedTick>, GpuError>> {
        let bytes = self.read.try_take()?;
        Some(bytes.map(|b| self.ticks(&b)))
    }

    /// The ticks, oldest first, waiting for the GPU.
    pub fn wait(self) -> Result<Vec<WatchedTick>, GpuError> {
        let bytes = PendingRead::wait(self.read)?;
        Ok(Self::split(
            &self.precision.decode(&bytes.concat()),
            &self.times,
            self.cells.len(),
        ))
    }

    fn ticks(&self, bytes: &[Vec<u8>]) -> Vec<WatchedTick> {
        Self::split(
            &self.precision.decode(&bytes.concat()),
            &self.times,
            self.cells.len(),
        )
    }

    fn split(values: &[f64], times: &[f64], cells: usize) -> Vec<WatchedTick> {
        times
            .iter()
            .zip(values.chunks_exact(2 * cells))
            .map(|(&t, slot)| WatchedTick {
                t,
                e: slot.iter().step_by(2).copied().collect(),
                i: slot.iter().skip(1).step_by(2).copied().collect(),
            })
            .collect()
    }
}

/// The first upward crossing of a threshold by each cell's E, followed on
/// the GPU (see the module docs): the crossing time is interpolated
/// linearly between the two observed states, as the CPU's activation map does.
pub struct ActivationTracker {
    ctx: GpuContext,
    precision: Precision,
    pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    before: wgpu::Buffer,
    first: wgpu::Buffer,
    cells: usize,
    threshold: f64,
    /// Model time of the state in `before`.
    t: f64,
}

impl ActivationTracker {
    /// Follows first activations from the engine's state now (no cell
    /// activated yet).
    pub fn new(engine: &GpuEngine, threshold: f64) -> Self {
        let ctx = engine.context().clone();
        let precision = engine.precision();
        let cells = engine.grid.len();
        let bytes = (cells * precision.bytes()) as u64;
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let tracker = Self {
            pipeline: compute_pipeline(&ctx, precision, "activate"),
            params: buffer(
                &ctx,
                "activation constants",
                CROSSING_BYTES,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            before: buffer(&ctx, "E at the last observation", bytes, storage),
            first: buffer(&ctx, "first activation times", bytes, storage),
            ctx,
            precision,
            cells,
            threshold,
            t: engine.t,
        };
        let mut encoder =
            tracker
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("activation start"),
                });
        encoder.copy_buffer_to_buffer(engine.state_buffers().0, 0, &tracker.before, 0, bytes);
        tracker
            .ctx
            .queue
            .write_buffer(&tracker.first, 0, &precision.encode(&vec![NOT_YET; cells]));
        tracker.ctx.queue.submit([encoder.finish()]);
        tracker
    }

    /// The threshold E crosses upward.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Takes the engine's state now into account (nothing if its time is
    /// not later than the last observation's, or its lattice another one).
    pub fn observe(&mut self, engine: &GpuEngine) {
        if engine.t <= self.t || engine.grid.len() != self.cells {
            return;
        }
        let n = self.cells as u32;
        let groups = n.div_ceil(ACTIVATE_GROUP_SIZE).clamp(1, MAX_GROUPS);
        let mut params = Vec::with_capacity(CROSSING_BYTES as usize);
        for v in [n, groups * ACTIVATE_GROUP_SIZE, 0, 0] {
            params.extend(v.to_le_bytes());
        }
        params.extend(self.precision.encode(&[self.t, engine.t, self.threshold]));
        params.resize(CROSSING_BYTES as usize, 0);
        self.ctx.queue.write_buffer(&self.params, 0, &params);
        dispatch(
            &self.ctx,
            &self.pipeline,
            &[
                entry(5, &self.params),
                entry(6, engine.state_buffers().0),
                entry(7, &self.before),
                entry(8, &self.first),
            ],
            groups,
        );
        self.t = engine.t;
    }

    /// Starts copying the first activation times back (decode them with
    /// [`ActivationTracker::decode`]).
    pub fn read_async(&self) -> PendingRead {
        let bytes = (self.cells * self.precision.bytes()) as u64;
        PendingRead::start(&self.ctx, &[(&self.first, 0, bytes)])
    }

    /// First activation time per cell from the bytes of a
    /// [`ActivationTracker::read_async`] (NaN: not yet).
    pub fn decode(&self, bytes: &[u8]) -> Vec<f64> {
        self.precision
            .decode(bytes)
            .into_iter()
            .map(|t| if t < 0.0 { f64::NAN } else { t })
            .collect()
    }
}
