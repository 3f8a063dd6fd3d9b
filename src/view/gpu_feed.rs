//! The surface fed straight from the GPU engine: when the lattice runs on
//! the render device, the main world copies the shown state buffer (E or I,
//! f64 or f32) on the GPU into a snapshot after the frame's ticks, and a
//! compute pass in the render world converts that snapshot into the f32
//! field buffer the surface shader reads, so the drawn field never goes
//! through the CPU. The snapshots rotate through [`SNAPSHOT_SLOTS`] buffers:
//! the render world draws a frame while the main world already integrates
//! the next, and must not see the state move under it.

use bevy::prelude::*;
use bevy::render::extract_resource::{ExtractResource, ExtractResourcePlugin};
use bevy::render::render_asset::RenderAssets;
use bevy::render::renderer::{RenderDevice, RenderQueue};
use bevy::render::storage::{GpuShaderBuffer, ShaderBuffer};
use bevy::render::{Render, RenderApp, RenderSystems};
use eifield_gpu::{GpuContext, Precision, wgpu};

/// What the surface shows when it is fed from the GPU: the state buffer of
/// the shown field and the surface's field buffer (`None`: fed from the CPU).
#[derive(Resource, ExtractResource, Clone, Default)]
pub struct GpuSurfaceFeed(pub Option<FeedSource>);

/// Snapshot buffers in rotation (the render world works at most one frame
/// behind the main world; one more for safety).
pub const SNAPSHOT_SLOTS: usize = 3;

/// One conversion: `cells` values of `precision` from `state` into the f32
/// buffer of `target`.
#[derive(Clone)]
pub struct FeedSource {
    /// A snapshot of the shown field, taken after the frame's ticks.
    pub state: wgpu::Buffer,
    /// Its element type.
    pub precision: Precision,
    /// Values to convert.
    pub cells: u32,
    /// The surface material's field buffer.
    pub target: AssetId<ShaderBuffer>,
}

/// The snapshot buffers of the main world.
#[derive(Resource, Default)]
pub struct Snapshots {
    slots: Vec<wgpu::Buffer>,
    next: usize,
}

impl Snapshots {
    /// Copies the first `bytes` of `state` into the next snapshot buffer, on
    /// the GPU (submitted after every step already submitted), and returns it.
    pub fn take(&mut self, ctx: &GpuContext, state: &wgpu::Buffer, bytes: u64) -> wgpu::Buffer {
        if self.slots.first().is_none_or(|b| b.size() != bytes) {
            self.slots = (0..SNAPSHOT_SLOTS)
                .map(|_| {
                    ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("surface field snapshot"),
                        size: bytes,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })
                .collect();
            self.next = 0;
        }
        let slot = self.slots[self.next].clone();
        self.next = (self.next + 1) % SNAPSHOT_SLOTS;
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("surface field snapshot"),
            });
        encoder.copy_buffer_to_buffer(state, 0, &slot, 0, bytes);
        ctx.queue.submit([encoder.finish()]);
        slot
    }
}

/// Invocations per workgroup of the conversion (as in its WGSL).
const GROUP_SIZE: u32 = 256;
/// Workgroups of the conversion at most (it strides over the rest).
const MAX_GROUPS: u32 = 4096;

/// Adds the render-world conversion.
pub struct GpuFeedPlugin;

impl Plugin for GpuFeedPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<GpuSurfaceFeed>()
            .init_resource::<Snapshots>()
            .add_plugins(ExtractResourcePlugin::<GpuSurfaceFeed>::default());
        if let Some(render_app) = app.get_sub_app_mut(RenderApp) {
            render_app.add_systems(
                Render,
                convert_field.in_set(RenderSystems::PrepareBindGroups),
            );
        }
    }
}

/// The conversion kernel for one precision.
fn kernel_source(precision: Precision) -> String {
    format!(
        "@group(0) @binding(0) var<storage, read> state: array<{real}>;
@group(0) @binding(1) var<storage, read_write> field: array<f32>;
@group(0) @binding(2) var<uniform> counts: vec4<u32>;

@compute @workgroup_size({GROUP_SIZE}, 1, 1)
fn convert(@builtin(global_invocation_id) id: vec3<u32>) {{
    for (var k = id.x; k < counts.x; k += counts.y) {{
        field[k] = f32(state[k]);
    }}
}}
",
        real = precision.name()
    )
}

/// The pipelines built so far, per precision.
#[derive(Default)]
struct Pipelines(Vec<(Precision, wgpu::ComputePipeline)>);

/// Converts the shown state into the surface's field buffer, before the
/// frame is drawn (its submission precedes the render graph's).
fn convert_field(
    feed: Option<Res<GpuSurfaceFeed>>,
    buffers: Res<RenderAssets<GpuShaderBuffer>>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    mut pipelines: Local<Pipelines>,
) {
    let Some(source) = feed.as_ref().and_then(|f| f.0.as_ref()) else {
        return;
    };
    let Some(target) = buffers.get(source.target) else {
        return;
    };
    // A field buffer of another size belongs to a surface being replaced.
    if target.buffer.size() < u64::from(source.cells) * 4 {
        return;
    }
    let device = device.wgpu_device();
    let pipeline = match pipelines.0.iter().find(|(p, _)| *p == source.precision) {
        Some((_, pipeline)) => pipeline.clone(),
        None => {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("surface field from the GPU state"),
                source: wgpu::ShaderSource::Wgsl(kernel_source(source.precision).into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("surface field from the GPU state"),
                layout: None,
                module: &module,
                entry_point: Some("convert"),
                compilation_options: Default::default(),
                cache: None,
            });
            pipelines.0.push((source.precision, pipeline.clone()));
            pipeline
        }
    };
    let groups = source.cells.div_ceil(GROUP_SIZE).clamp(1, MAX_GROUPS);
    let counts = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("surface field counts"),
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(
        &counts,
        0,
        bytemuck::cast_slice(&[source.cells, groups * GROUP_SIZE, 0, 0]),
    );
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("surface field from the GPU state"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: source.state.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: (*target.buffer).as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: counts.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("surface field from the GPU state"),
    });
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(groups, 1, 1);
    }
    queue.submit([encoder.finish()]);
}
