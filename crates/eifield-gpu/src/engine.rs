//! The lattice engine on a GPU: the state, drives and constants live in
//! storage buffers, one dispatch advances the whole lattice by one step, and
//! the inputs (pulse trains, perturbations, pink noise) are the CPU engine's
//! own [`Inputs`], evaluated on the CPU once per segment between two input
//! changes, so both engines land on the same instants with the same steps.
//!
//! What crosses to the GPU per segment: the step's constants (under 128
//! bytes) and the drive of the cells whose drive changed (the stimulated
//! cells), or, with pink noise on, the whole drive (the CPU's noise samples,
//! so the series are the CPU engine's exactly). What comes back: eight bytes
//! after each [`GpuEngine::advance_to`] (the non-finite check, waited for; a
//! host that must not wait uses [`GpuEngine::advance_unchecked`] and
//! collects [`GpuEngine::check_finite_async`] later), and the state only
//! when asked ([`GpuEngine::read_state`], [`GpuEngine::read_state_async`],
//! [`GpuEngine::read_cells`], or a few cells per tick with
//! [`crate::CellWatch`]).

use eifield_model::coupling::Coupler;
use eifield_model::engine::{REST_CHECK_INTERVAL, REST_DT, REST_MAX_TIME, REST_TOLERANCE};
use eifield_model::rhs::Coeffs;
use eifield_model::stepper::Method;
use eifield_model::stimulus::{Inputs, TIME_EPS};
use eifield_model::{BlowUp, Boundary, Engine, EngineError, EngineOptions, FieldScene, Grid};

use crate::context::{GpuContext, GpuError};
use crate::readback::PendingRead;
use crate::shader::{self, Precision};

/// Steps encoded into one submission at most (bounds the command buffer).
const MAX_STEPS_PER_SUBMIT: u64 = 512;
/// Workgroups of the helper kernels at most (they stride over the rest).
const MAX_HELPER_GROUPS: u32 = 1024;
/// Invocations per helper workgroup (as in `util.wgsl`).
const HELPER_GROUP_SIZE: u32 = 256;
/// Lattices from this many cells relax to rest on the GPU (in f64); smaller
/// ones on the CPU, where a few hundred cells take milliseconds and the
/// GPU's round trip per convergence check would dominate.
pub const REST_ON_GPU_MIN_CELLS: usize = 256 * 256;
/// "No such cell" in the non-finite check.
const NONE: u32 = u32::MAX;

/// Bytes of one lattice's block of step constants (`Params` in
/// `step.wgsl`: four integers and sixteen reals, a multiple of 16 bytes as
/// uniform arrays need).
pub(crate) fn params_stride(precision: Precision) -> u64 {
    16 + 16 * precision.bytes() as u64
}

/// One lattice's block of step constants (see `Params` in `step.wgsl`) for
/// a step of length `h` with `method`; an inactive lattice keeps its state.
pub(crate) fn params_block(
    precision: Precision,
    method: Method,
    grid: Grid,
    coeffs: &Coeffs,
    h: f64,
    active: bool,
) -> Vec<u8> {
    let (a, w) = match method {
        Method::Rk4 => ([0.5 * h, 0.5 * h, h], h / 6.0),
        Method::Heun => ([h, 0.0, 0.0], 0.5 * h),
        Method::Euler => ([0.0; 3], h),
    };
    let c = coeffs;
    let periodic = u32::from(grid.boundary == Boundary::Periodic);
    let mut out = Vec::with_capacity(params_stride(precision) as usize);
    for v in [
        grid.rows as u32,
        grid.cols as u32,
        periodic,
        u32::from(active),
    ] {
        out.extend(v.to_le_bytes());
    }
    let reals = [
        a[0],
        a[1],
        a[2],
        w,
        c.tau_ex,
        c.tau_in,
        c.c2,
        c.c4,
        c.c_ee,
        c.c_ei,
        c.frac_ee,
        c.frac_ei,
        c.self_weight,
    ];
    out.extend(precision.encode(&reals));
    out.resize(params_stride(precision) as usize, 0);
    out
}

/// Advancing the GPU engine failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AdvanceError {
    /// The state became non-finite.
    #[error(transparent)]
    BlowUp(#[from] BlowUp),
    /// The GPU failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// Building the GPU engine failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// The initial state could not be found.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The GPU cannot hold or run the lattice.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The coupling cannot be built or does not run on the GPU.
    #[error("{0}")]
    Coupling(String),
    /// The scenes cannot be integrated as one batch.
    #[error("{0}")]
    Batch(String),
}

/// The coupling of a scene on `grid`, if the GPU engine runs it: every
/// stencil (those too wide for the fused step kernel run one dispatch per
/// stage); general matrices do not run on the GPU.
pub(crate) fn gpu_coupler(scene: &FieldScene, grid: Grid) -> Result<Coupler, BuildError> {
    let coupler =
        Coupler::build(&scene.coupling, grid).map_err(|e| BuildError::Coupling(e.to_string()))?;
    if coupler.is_matrix() {
        return Err(BuildError::Coupling(
            "invalid value for `coupling.kernel`: general Matrix couplings run on the CPU \
             engine only; use `--backend cpu`"
                .into(),
        ));
    }
    Ok(coupler)
}

/// A non-finite check on its way back from the GPU
/// ([`GpuEngine::check_finite_async`]).
pub struct FiniteCheck {
    read: PendingRead,
    /// Model time of the state checked.
    pub time: f64,
}

impl FiniteCheck {
    /// The outcome, if it has arrived (never waits). A blow-up names the
    /// time of the state checked, its first non-finite cell and the value
    /// that cell holds now (read from `engine`, waiting for the GPU).
    pub fn try_finish(&mut self, engine: &GpuEngine) -> Option<Result<(), AdvanceError>> {
        let bytes = self.read.try_take()?;
        Some(first_non_finite(engine, self.time, bytes))
    }

    /// The outcome, waiting for the GPU.
    pub fn wait(self, engine: &GpuEngine) -> Result<(), AdvanceError> {
        first_non_finite(engine, self.time, self.read.wait())
    }
}

/// The blow-up that the check kernel's output `bytes` reports, if any.
fn first_non_finite(
    engine: &GpuEngine,
    time: f64,
    bytes: Result<Vec<Vec<u8>>, GpuError>,
) -> Result<(), AdvanceError> {
    let bad: Vec<u32> = bytes?
        .pop()
        .map(|bytes| bytemuck::cast_slice(&bytes).to_vec())
        .unwrap_or_default();
    for (variable, &k) in ["E", "I"].iter().zip(&bad) {
        if k != NONE {
            let k = k as usize;
            let (e, i) = engine.read_cells(&[k])?;
            let value = if *variable == "E" { e[0] } else { i[0] };
            let (row, col) = engine.grid.position(k);
            return Err(BlowUp {
                time,
                row,
                col,
                variable,
                value,
            }
            .into());
        }
    }
    Ok(())
}

/// What the drive buffer on the GPU holds (of one lattice).
pub(crate) enum DriveOnGpu {
    /// Anything (a noise sample, or not written yet): rewrite it whole.
    Unknown,
    /// `h_ex`, except `cells`, which hold `values`.
    Plain { cells: Vec<usize>, values: Vec<f64> },
}

/// How one lattice's drive on the GPU must change to hold its value at a
/// time ([`drive_change`]): every cell to `whole` (a noise sample, or
/// `h_ex`) if given, then `cells` to `values`. Nothing, where it holds it
/// already.
#[derive(Default)]
pub(crate) struct DriveChange<'a> {
    pub(crate) whole: Option<&'a [f64]>,
    pub(crate) cells: Vec<usize>,
    pub(crate) values: Vec<f64>,
}

/// The change that brings a lattice's drive on the GPU (`on_gpu`) to its
/// value at `t`: the whole buffer with noise on (computed into
/// `host_drive`) or after a change of `h_ex`, else only the cells whose
/// drive changed. Updates `on_gpu` to what the GPU holds after it.
pub(crate) fn drive_change<'a>(
    inputs: &mut Inputs,
    h_ex: &'a [f64],
    on_gpu: &mut DriveOnGpu,
    host_drive: &'a mut Vec<f64>,
    t: f64,
) -> DriveChange<'a> {
    if inputs.noise.is_some() {
        host_drive.resize(h_ex.len(), 0.0);
        inputs.fill_drive(t, h_ex, host_drive);
        *on_gpu = DriveOnGpu::Unknown;
        return DriveChange {
            whole: Some(host_drive),
            ..DriveChange::default()
        };
    }
    *host_drive = Vec::new();
    let cells = inputs.driven_cells();
    let mut values = Vec::with_capacity(cells.len());
    inputs.drive_of_cells(t, h_ex, &cells, &mut values);
    let (mut write_cells, mut write_values) = (cells.clone(), values.clone());
    let whole = match &*on_gpu {
        DriveOnGpu::Unknown => Some(h_ex),
        DriveOnGpu::Plain {
            cells: old_cells,
            values: old_values,
        } => {
            if *old_cells == cells && *old_values == values {
                return DriveChange::default();
            }
            // Cells no longer driven go back to h_ex.
            for &k in old_cells {
                if cells.binary_search(&k).is_err() {
                    write_cells.push(k);
                    write_values.push(h_ex[k]);
                }
            }
            None
        }
    };
    let change = DriveChange {
        whole,
        cells: write_cells,
        values: write_values,
    };
    *on_gpu = DriveOnGpu::Plain { cells, values };
    change
}

/// The compute pipelines, built once per engine.
pub(crate) struct Pipelines {
    /// The tile side the step kernel loads (the one asked for, or a larger
    /// one where a wide stencil's halo needs it).
    tile: usize,
    /// Cells a step workgroup writes along a side.
    out_side: usize,
    /// The step kernel: one pipeline for the whole step (fused), or one per
    /// stage, dispatched in turn.
    step: Vec<wgpu::ComputePipeline>,
    scatter: wgpu::ComputePipeline,
    check: wgpu::ComputePipeline,
    residual: wgpu::ComputePipeline,
}

/// The buffers on the device (each holding every lattice of a batch, one
/// after the other).
pub(crate) struct Buffers {
    /// E, twice: a step reads one and writes the other.
    pub(crate) e: [wgpu::Buffer; 2],
    /// I, twice.
    pub(crate) i: [wgpu::Buffer; 2],
    pub(crate) drive: wgpu::Buffer,
    pub(crate) h_in: wgpu::Buffer,
    pub(crate) params: wgpu::Buffer,
    scatter: ScatterBuffers,
    check_counts: wgpu::Buffer,
    first_bad: wgpu::Buffer,
    /// Between the dispatches of a step run one per stage: two stage
    /// outputs and the accumulated slopes (each E then I).
    stages: Option<StageBuffers>,
}

/// Cells and values for the `scatter` kernel (grown as needed).
pub(crate) struct ScatterBuffers {
    cells: wgpu::Buffer,
    values: wgpu::Buffer,
    counts: wgpu::Buffer,
}

/// The buffers that carry a step from one stage's dispatch to the next.
struct StageBuffers {
    values: [wgpu::Buffer; 2],
    slopes: wgpu::Buffer,
}

impl Buffers {
    /// The buffers of `members` lattices of `state_bytes` each (E or I of
    /// one lattice) for `pipelines`, or why the device cannot hold them.
    pub(crate) fn new(
        ctx: &GpuContext,
        pipelines: &Pipelines,
        precision: Precision,
        state_bytes: u64,
        members: usize,
    ) -> Result<Self, GpuError> {
        let device = &ctx.device;
        let state_bytes = state_bytes * members as u64;
        // One dispatch per stage binds E and I of every cell as one buffer.
        let largest_binding = if pipelines.per_stage() {
            2 * state_bytes
        } else {
            state_bytes
        };
        let limits = device.limits();
        let limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if largest_binding > limit {
            return Err(GpuError::TooLarge {
                adapter: ctx.adapter.name.clone(),
                needed: largest_binding,
                limit,
            });
        }
        // Running out of device memory is an error to report, not a panic.
        let out_of_memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let storage = |label: &str| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: state_bytes.max(16),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let uniform = |label: &str, size: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let buffers = Self {
            e: [storage("E (a)"), storage("E (b)")],
            i: [storage("I (a)"), storage("I (b)")],
            drive: storage("drive"),
            h_in: storage("h_in"),
            params: uniform("step constants", params_stride(precision) * members as u64),
            scatter: ScatterBuffers {
                cells: scatter_buffer(device, "scatter cells", 64),
                values: scatter_buffer(device, "scatter values", 64),
                counts: uniform("scatter counts", 16),
            },
            check_counts: uniform("check counts", 16),
            first_bad: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("first non-finite cell"),
                size: 8,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            stages: pipelines
                .per_stage()
                .then(|| StageBuffers::new(device, state_bytes)),
        };
        // (In a web page nothing may wait for the GPU: there an out-of-memory
        // error reaches the device's handler instead.)
        let popped = out_of_memory.pop();
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(error) = futures_lite::future::block_on(popped) {
            return Err(GpuError::OutOfMemory {
                adapter: ctx.adapter.name.clone(),
                reason: error.to_string(),
            });
        }
        #[cfg(target_arch = "wasm32")]
        drop(popped);
        Ok(buffers)
    }

    /// The buffer a scatter writes into.
    fn target(&self, target: Target) -> &wgpu::Buffer {
        match target {
            Target::Drive => &self.drive,
            Target::E(k) => &self.e[k],
            Target::I(k) => &self.i[k],
        }
    }
}

impl StageBuffers {
    fn new(device: &wgpu::Device, state_bytes: u64) -> Self {
        let buffer = |label: &str| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (2 * state_bytes).max(16),
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        Self {
            values: [buffer("stage values (a)"), buffer("stage values (b)")],
            slopes: buffer("accumulated slopes"),
        }
    }
}

/// The lattice integrated on a GPU (see the module docs).
pub struct GpuEngine {
    ctx: GpuContext,
    precision: Precision,
    method: Method,
    /// Side of the tile a step workgroup loads.
    tile: usize,
    /// One dispatch per stage even where the fused step kernel would do.
    always_per_stage: bool,
    /// Lattice geometry (and the stencil integrated with).
    pub grid: Grid,
    /// The coupling (a stencil; its lattice is `grid`).
    coupler: Coupler,
    /// Right-hand-side constants (read at every segment).
    pub coeffs: Coeffs,
    /// Time-varying inputs, the CPU engine's.
    pub inputs: Inputs,
    /// Largest step.
    pub dt: f64,
    /// Model time.
    pub t: f64,
    /// Steps taken so far.
    pub steps: u64,
    h_ex: Vec<f64>,
    h_in: Vec<f64>,
    pipelines: Pipelines,
    buffers: Buffers,
    /// Which of the two state buffers holds the state.
    current: usize,
    /// The step kernel's bindings (one per pipeline) reading each state
    /// buffer.
    step_groups: [Vec<wgpu::BindGroup>; 2],
    drive_on_gpu: DriveOnGpu,
    /// The drive of every cell, on the CPU, while noise is on.
    host_drive: Vec<f64>,
}

pub(crate) fn method_of(spec: &eifield_model::scene::IntegratorSpec) -> Method {
    use eifield_model::scene::IntegratorSpec;
    match spec {
        IntegratorSpec::Rk4 { .. } => Method::Rk4,
        IntegratorSpec::Heun { .. } => Method::Heun,
        IntegratorSpec::Euler { .. } => Method::Euler,
    }
}

/// The state a scene starts from, as the CPU engine finds it (relaxing to
/// rest on the CPU when the scene asks for the rest state; the GPU engine
/// in f64 relaxes large lattices on the GPU instead,
/// [`GpuEngine::relax_to_rest`]).
pub fn initial_state(scene: &FieldScene) -> Result<(Vec<f64>, Vec<f64>), EngineError> {
    match scene.initial_arrays() {
        Some(state) => Ok(state),
        None => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let engine = Engine::from_scene(
                scene,
                EngineOptions {
                    threads,
                    simd: None,
                },
            )?;
            Ok((engine.e, engine.i))
        }
    }
}

impl GpuEngine {
    /// Builds the engine for a validated scene at t = 0 on `ctx`, in
    /// `precision` (f64 needs an adapter with f64 shaders).
    pub fn from_scene(
        ctx: &GpuContext,
        scene: &FieldScene,
        precision: Precision,
    ) -> Result<Self, BuildError> {
        Self::from_scene_with_state(ctx, scene, precision).map(|(engine, _)| engine)
    }

    /// As [`GpuEngine::from_scene`], with the state the engine holds now
    /// as the CPU found it (`E`, `I`; in f32, rounded as the GPU holds
    /// them), where it did: `None` where the GPU relaxed to rest itself.
    /// A reader then needs no readback before the first step.
    #[allow(clippy::type_complexity)]
    pub fn from_scene_with_state(
        ctx: &GpuContext,
        scene: &FieldScene,
        precision: Precision,
    ) -> Result<(Self, Option<(Vec<f64>, Vec<f64>)>), BuildError> {
        let rest_on_gpu = scene.initial_arrays().is_none()
            && precision == Precision::F64
            && scene.grid.len() >= REST_ON_GPU_MIN_CELLS;
        let (mut engine, state) = if rest_on_gpu {
            let zeros = vec![0.0; scene.grid.len()];
            let mut engine = Self::with_state(ctx, scene, precision, &zeros, &zeros)?;
            engine.relax_to_rest()?;
            (engine, None)
        } else {
            let (e, i) = initial_state(scene)?;
            let engine = Self::with_state(ctx, scene, precision, &e, &i)?;
            // f64 is held as given; f32 rounded, as uploaded.
            let held = |v: Vec<f64>| match precision {
                Precision::F64 => v,
                Precision::F32 => precision.decode(&precision.encode(&v)),
            };
            (engine, Some((held(e), held(i))))
        };
        engine.set_noise(scene, 0.0);
        Ok((engine, state))
    }

    /// As [`GpuEngine::from_scene`], starting from the state `(e, i)`
    /// instead of the scene's initial state.
    pub fn with_state(
        ctx: &GpuContext,
        scene: &FieldScene,
        precision: Precision,
        e: &[f64],
        i: &[f64],
    ) -> Result<Self, BuildError> {
        if let Some(message) = scene.unread_cell_array() {
            return Err(EngineError::UnreadArray(message).into());
        }
        let grid = scene.grid;
        let n = grid.len();
        if precision == Precision::F64 && !ctx.adapter.f64 {
            return Err(GpuError::NoF64 {
                found: ctx.adapter.name.clone(),
            }
            .into());
        }
        let state_bytes = (n * precision.bytes()) as u64;
        let method = method_of(&scene.integrator);
        let coupler = gpu_coupler(scene, grid)?;
        let device = &ctx.device;
        let pipelines = Pipelines::new(
            device,
            precision,
            method,
            shader::DEFAULT_TILE,
            &coupler,
            false,
            1,
        );
        let buffers = Buffers::new(ctx, &pipelines, precision, state_bytes, 1)?;
        let step_groups = [0, 1].map(|from| step_group(device, &pipelines, &buffers, from));
        let (h_ex, h_in) = scene.cell_drives();
        let mut engine = Self {
            ctx: ctx.clone(),
            precision,
            method,
            tile: shader::DEFAULT_TILE,
            always_per_stage: false,
            grid,
            coupler,
            coeffs: Coeffs::from_scene(scene),
            inputs: Inputs::default(),
            dt: scene.integrator.dt(),
            t: 0.0,
            steps: 0,
            h_ex,
            h_in,
            pipelines,
            buffers,
            current: 0,
            step_groups,
            drive_on_gpu: DriveOnGpu::Unknown,
            host_drive: Vec::new(),
        };
        engine.write_state(e, i);
        engine.upload(&engine.buffers.h_in, &engine.h_in);
        engine.set_stimuli(scene);
        Ok(engine)
    }

    /// The device and queue the engine runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The precision of the state and arithmetic.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The integration method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The constant excitatory drive per cell.
    pub fn h_ex(&self) -> &[f64] {
        &self.h_ex
    }

    /// The inhibitory drive per cell.
    pub fn h_in(&self) -> &[f64] {
        &self.h_in
    }

    /// The buffers holding E and I now (they swap at every step): what a
    /// renderer on the same device reads.
    pub fn state_buffers(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        (&self.buffers.e[self.current], &self.buffers.i[self.current])
    }

    /// The total excitatory drive `h_ex + s(t) + σ·p(t)` of every cell at
    /// time `t` (not before the noise's current block), computed on the CPU
    /// as the integration computes it, into `out`.
    pub fn drive_at(&mut self, t: f64, out: &mut Vec<f64>) {
        out.resize(self.grid.len(), 0.0);
        self.inputs.fill_drive(t, &self.h_ex, out);
    }

    /// The total excitatory drive of `cells` at time `t`, as
    /// [`GpuEngine::drive_at`] finds it for every cell, into `out`.
    pub fn drive_of_cells(&mut self, t: f64, cells: &[usize], out: &mut Vec<f64>) {
        self.inputs.drive_of_cells(t, &self.h_ex, cells, out);
    }

    /// Replaces the pulse trains with the scene's stimuli.
    pub fn set_stimuli(&mut self, scene: &FieldScene) {
        self.inputs.set_pulses(scene, self.grid.cols);
    }

    /// Replaces the noise with the scene's, its first block starting at `t`.
    pub fn set_noise(&mut self, scene: &FieldScene, t: f64) {
        self.inputs.set_noise(scene, self.grid.len(), t);
    }

    /// Replaces the constant drives (one value per cell each).
    pub fn set_drives(&mut self, h_ex: Vec<f64>, h_in: Vec<f64>) {
        self.h_ex = h_ex;
        self.h_in = h_in;
        self.upload(&self.buffers.h_in, &self.h_in);
        self.drive_on_gpu = DriveOnGpu::Unknown;
    }

    /// Replaces the integration method and step.
    pub fn set_integrator(&mut self, spec: &eifield_model::scene::IntegratorSpec) {
        let method = method_of(spec);
        if method != self.method {
            self.method = method;
            self.rebuild_pipelines();
        }
        self.dt = spec.dt();
    }

    /// The side of the tile a step workgroup loads (larger than the one
    /// asked for where a wide stencil's halo needs it).
    pub fn tile(&self) -> usize {
        self.pipelines.tile
    }

    /// Chooses the tile side (one of [`shader::TILES`]; others are refused
    /// with false). Results do not depend on it, only speed.
    pub fn set_tile(&mut self, tile: usize) -> bool {
        if !shader::TILES.contains(&tile) {
            return false;
        }
        if tile != self.tile {
            self.tile = tile;
            self.rebuild_pipelines();
        }
        true
    }

    /// Whether a step runs one dispatch per stage (a stencil too wide for
    /// the fused step kernel's tile, or asked for) rather than one fused
    /// dispatch.
    pub fn per_stage(&self) -> bool {
        self.pipelines.per_stage()
    }

    /// Runs every step one dispatch per stage even where the fused kernel
    /// would do (`true`; it gives the same bits, more slowly), or only
    /// where the stencil needs it (`false`, the default).
    pub fn set_always_per_stage(&mut self, on: bool) {
        if on != self.always_per_stage {
            self.always_per_stage = on;
            self.rebuild_pipelines();
        }
    }

    fn rebuild_pipelines(&mut self) {
        let device = &self.ctx.device;
        self.pipelines = Pipelines::new(
            device,
            self.precision,
            self.method,
            self.tile,
            &self.coupler,
            self.always_per_stage,
            1,
        );
        if self.pipelines.per_stage() && self.buffers.stages.is_none() {
            let state_bytes = (self.grid.len() * self.precision.bytes()) as u64;
            self.buffers.stages = Some(StageBuffers::new(device, state_bytes));
        }
        self.step_groups =
            [0, 1].map(|from| step_group(device, &self.pipelines, &self.buffers, from));
    }

    /// Replaces the coupling stencil by one of the same shape (its boundary
    /// may differ); false, changing nothing, when the shape differs.
    pub fn set_stencil(&mut self, stencil: Grid) -> bool {
        if (stencil.rows, stencil.cols) != (self.grid.rows, self.grid.cols) {
            return false;
        }
        self.grid = stencil;
        self.coupler.set_boundary(stencil.boundary);
        true
    }

    /// The coupling.
    pub fn coupler(&self) -> &Coupler {
        &self.coupler
    }

    /// Replaces the coupling constants and kernels by the scene's (a
    /// kernel change rebuilds the step kernel); refuses, changing nothing,
    /// a coupling the GPU does not run.
    pub fn set_coupling(&mut self, scene: &FieldScene) -> Result<(), BuildError> {
        let coupler = gpu_coupler(scene, self.grid)?;
        self.coeffs = Coeffs::from_scene(scene);
        if coupler != self.coupler {
            self.coupler = coupler;
            self.rebuild_pipelines();
        }
        Ok(())
    }

    /// Replaces the state with the lattice's rest state with all inputs
    /// off, as the CPU engine's `relax_to_rest` finds it: RK4 steps of
    /// [`REST_DT`] from E = I = 0 on the GPU until every |dE/dt|, |dI/dt| is
    /// below [`REST_TOLERANCE`], checked at the same times. The derivatives
    /// are the change of one Euler step of length 1, whose rounding
    /// (1e-16 of E) is far below the tolerance.
    pub fn relax_to_rest(&mut self) -> Result<(), BuildError> {
        let n = self.grid.len();
        let zeros = vec![0.0; n];
        self.write_state(&zeros, &zeros);
        self.upload(&self.buffers.drive, &self.h_ex);
        self.drive_on_gpu = DriveOnGpu::Unknown;
        let method = self.method;
        if method != Method::Rk4 {
            self.method = Method::Rk4;
            self.rebuild_pipelines();
        }
        let outcome = self.relax();
        if method != Method::Rk4 {
            self.method = method;
            self.rebuild_pipelines();
        }
        outcome
    }

    fn relax(&mut self) -> Result<(), BuildError> {
        let device = &self.ctx.device;
        let euler = Pipelines::new(
            device,
            self.precision,
            Method::Euler,
            self.tile,
            &self.coupler,
            false,
            1,
        );
        let euler_groups = [0, 1].map(|from| step_group(device, &euler, &self.buffers, from));
        let steps_per_check = (REST_CHECK_INTERVAL / REST_DT).round() as u64;
        let mut time = 0.0;
        loop {
            let residual = self.largest_derivative(&euler, &euler_groups)?;
            if residual < REST_TOLERANCE {
                return Ok(());
            }
            if !residual.is_finite() || time >= REST_MAX_TIME {
                return Err(EngineError::NoRest { residual, time }.into());
            }
            self.ctx
                .queue
                .write_buffer(&self.buffers.params, 0, &self.params_bytes(REST_DT));
            let mut encoder = self.encoder();
            self.encode_steps(&mut encoder, steps_per_check);
            self.ctx.queue.submit([encoder.finish()]);
            time += REST_CHECK_INTERVAL;
        }
    }

    /// The largest |dE/dt|, |dI/dt| of the state (∞ if any is not finite),
    /// waiting for the GPU: one Euler step of length 1 into the other state
    /// buffer, and the largest change per workgroup.
    fn largest_derivative(
        &self,
        euler: &Pipelines,
        euler_groups: &[Vec<wgpu::BindGroup>; 2],
    ) -> Result<f64, GpuError> {
        let queue = &self.ctx.queue;
        queue.write_buffer(
            &self.buffers.params,
            0,
            &self.params_bytes_for(Method::Euler, 1.0),
        );
        let n = self.grid.len() as u32;
        let groups = n.div_ceil(HELPER_GROUP_SIZE).clamp(1, MAX_HELPER_GROUPS);
        queue.write_buffer(
            &self.buffers.check_counts,
            0,
            bytemuck::cast_slice(&[n, groups * HELPER_GROUP_SIZE, 0, 0]),
        );
        let device = &self.ctx.device;
        let largest = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("largest change per workgroup"),
            size: u64::from(groups) * self.precision.bytes() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let layout = |k| self.pipelines.residual.get_bind_group_layout(k);
        let counts = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("residual counts"),
            layout: &layout(0),
            entries: &[entry(0, &self.buffers.check_counts)],
        });
        let (from, to) = (self.current, 1 - self.current);
        let states = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("residual states"),
            layout: &layout(1),
            entries: &[
                entry(3, &self.buffers.e[from]),
                entry(4, &self.buffers.i[from]),
                entry(5, &self.buffers.e[to]),
                entry(6, &self.buffers.i[to]),
                entry(7, &largest),
            ],
        });
        let out = euler.out_side as u32;
        let mut encoder = self.encoder();
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&euler.step[0]);
            pass.set_bind_group(0, &euler_groups[from][0], &[]);
            pass.dispatch_workgroups(
                (self.grid.cols as u32).div_ceil(out),
                (self.grid.rows as u32).div_ceil(out),
                1,
            );
            pass.set_pipeline(&self.pipelines.residual);
            pass.set_bind_group(0, &counts, &[]);
            pass.set_bind_group(1, &states, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        queue.submit([encoder.finish()]);
        let bytes = self.read_raw(&[(&largest, 0, largest.size())])?;
        let per_group = self.precision.decode(&bytes.concat());
        Ok(if per_group.iter().any(|&m| m < 0.0) {
            f64::INFINITY
        } else {
            per_group.into_iter().fold(0.0, f64::max)
        })
    }

    /// Replaces the whole state.
    pub fn write_state(&mut self, e: &[f64], i: &[f64]) {
        self.upload(&self.buffers.e[self.current], e);
        self.upload(&self.buffers.i[self.current], i);
    }

    /// Sets E and I of a few cells (`(index, e, i)`), leaving the others;
    /// indices outside the lattice are ignored.
    pub fn write_cells(&mut self, cells: &[(usize, f64, f64)]) {
        let n = self.grid.len();
        let cells: Vec<_> = cells.iter().copied().filter(|c| c.0 < n).collect();
        if cells.is_empty() {
            return;
        }
        let index: Vec<usize> = cells.iter().map(|c| c.0).collect();
        let e: Vec<f64> = cells.iter().map(|c| c.1).collect();
        let i: Vec<f64> = cells.iter().map(|c| c.2).collect();
        let mut encoder = self.encoder();
        let current = self.current;
        self.scatter_into(&mut encoder, &index, &e, Target::E(current));
        self.ctx.queue.submit([encoder.finish()]);
        let mut encoder = self.encoder();
        self.scatter_into(&mut encoder, &index, &i, Target::I(current));
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Integrates to `t_end` as the CPU engine does (same segments, same
    /// steps), then checks the state for non-finite values (waiting for the
    /// GPU).
    pub fn advance_to(&mut self, t_end: f64) -> Result<(), AdvanceError> {
        self.advance_unchecked(t_end);
        self.check_finite()
    }

    /// Integrates to `t_end` as [`GpuEngine::advance_to`] does, without
    /// checking the state and without waiting for the GPU: a host that
    /// checks later uses [`GpuEngine::check_finite_async`].
    pub fn advance_unchecked(&mut self, t_end: f64) {
        while self.t < t_end - TIME_EPS {
            let segment = self.inputs.segment(self.t, t_end, self.dt);
            let mut encoder = self.encoder();
            self.update_drive(&mut encoder, segment.mid);
            self.ctx
                .queue
                .write_buffer(&self.buffers.params, 0, &self.params_bytes(segment.h));
            let mut left = segment.steps;
            loop {
                let chunk = left.min(MAX_STEPS_PER_SUBMIT);
                self.encode_steps(&mut encoder, chunk);
                left -= chunk;
                self.ctx.queue.submit([encoder.finish()]);
                if left == 0 {
                    break;
                }
                encoder = self.encoder();
            }
            self.steps += segment.steps;
            self.t = segment.end;
            self.inputs.drop_finished(self.t);
        }
        if self.t < t_end {
            self.t = t_end;
        }
    }

    /// The first non-finite value of the state, if any (E before I, the
    /// smallest index first, as on the CPU), waiting for the GPU.
    pub fn check_finite(&self) -> Result<(), AdvanceError> {
        self.check_finite_async().wait(self)
    }

    /// Starts looking for a non-finite value in the state as it is after
    /// the work submitted so far; [`FiniteCheck::try_finish`] collects it.
    pub fn check_finite_async(&self) -> FiniteCheck {
        let n = self.grid.len() as u32;
        let groups = n.div_ceil(HELPER_GROUP_SIZE).clamp(1, MAX_HELPER_GROUPS);
        let queue = &self.ctx.queue;
        queue.write_buffer(
            &self.buffers.check_counts,
            0,
            bytemuck::cast_slice(&[n, groups * HELPER_GROUP_SIZE, 0, 0]),
        );
        queue.write_buffer(
            &self.buffers.first_bad,
            0,
            bytemuck::cast_slice(&[NONE, NONE]),
        );
        let layout0 = self.pipelines.check.get_bind_group_layout(0);
        let layout1 = self.pipelines.check.get_bind_group_layout(1);
        let device = &self.ctx.device;
        let counts = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("check counts"),
            layout: &layout0,
            entries: &[entry(0, &self.buffers.check_counts)],
        });
        let (e, i) = self.state_buffers();
        let state = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("check state"),
            layout: &layout1,
            entries: &[entry(0, e), entry(1, i), entry(2, &self.buffers.first_bad)],
        });
        let mut encoder = self.encoder();
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipelines.check);
            pass.set_bind_group(0, &counts, &[]);
            pass.set_bind_group(1, &state, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        self.ctx.queue.submit([encoder.finish()]);
        FiniteCheck {
            read: PendingRead::start(&self.ctx, &[(&self.buffers.first_bad, 0, 8)]),
            time: self.t,
        }
    }

    /// E and I of every cell as they are after the work submitted so far,
    /// on their way back (decode each range with [`Precision::decode`]).
    pub fn read_state_async(&self) -> PendingRead {
        let bytes = (self.grid.len() * self.precision.bytes()) as u64;
        let (e, i) = self.state_buffers();
        PendingRead::start(&self.ctx, &[(e, 0, bytes), (i, 0, bytes)])
    }

    /// E and I of every cell, read back from the GPU (as f64).
    pub fn read_state(&self) -> Result<(Vec<f64>, Vec<f64>), GpuError> {
        let bytes = (self.grid.len() * self.precision.bytes()) as u64;
        let (e, i) = self.state_buffers();
        let mut out = self.read_raw(&[(e, 0, bytes), (i, 0, bytes)])?;
        let i = self.precision.decode(&out.pop().unwrap_or_default());
        let e = self.precision.decode(&out.pop().unwrap_or_default());
        Ok((e, i))
    }

    /// E and I of the listed cells, read back from the GPU.
    pub fn read_cells(&self, cells: &[usize]) -> Result<(Vec<f64>, Vec<f64>), GpuError> {
        if let Some(&k) = cells.iter().find(|&&k| k >= self.grid.len()) {
            return Err(GpuError::Failed(format!(
                "cell {k} is outside the lattice of {} cells",
                self.grid.len()
            )));
        }
        let size = self.precision.bytes() as u64;
        let (e, i) = self.state_buffers();
        let ranges: Vec<_> = cells
            .iter()
            .flat_map(|&k| [(e, k as u64 * size, size), (i, k as u64 * size, size)])
            .collect();
        let out = self.read_raw(&ranges)?;
        let mut es = Vec::with_capacity(cells.len());
        let mut is = Vec::with_capacity(cells.len());
        for pair in out.chunks(2) {
            es.push(self.precision.decode(&pair[0])[0]);
            is.push(self.precision.decode(&pair[1])[0]);
        }
        Ok((es, is))
    }

    /// Waits until everything submitted so far has run (for timing).
    pub fn finish(&self) -> Result<(), GpuError> {
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Failed(e.to_string()))
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// Writes f64 values into a buffer in the engine's precision.
    fn upload(&self, buffer: &wgpu::Buffer, values: &[f64]) {
        self.ctx
            .queue
            .write_buffer(buffer, 0, &self.precision.encode(values));
    }

    /// The step's uniform block (see `Params` in `step.wgsl`).
    fn params_bytes(&self, h: f64) -> Vec<u8> {
        self.params_bytes_for(self.method, h)
    }

    /// As [`GpuEngine::params_bytes`], for another method.
    fn params_bytes_for(&self, method: Method, h: f64) -> Vec<u8> {
        params_block(self.precision, method, self.grid, &self.coeffs, h, true)
    }

    /// Brings the drive on the GPU to its value at `t` (see [`drive_change`]).
    fn update_drive(&mut self, encoder: &mut wgpu::CommandEncoder, t: f64) {
        let change = drive_change(
            &mut self.inputs,
            &self.h_ex,
            &mut self.drive_on_gpu,
            &mut self.host_drive,
            t,
        );
        let DriveChange {
            whole,
            cells,
            values,
        } = change;
        if let Some(whole) = whole {
            let bytes = self.precision.encode(whole);
            self.ctx.queue.write_buffer(&self.buffers.drive, 0, &bytes);
        }
        self.scatter_into(encoder, &cells, &values, Target::Drive);
    }

    /// Records `target[cells[j]] = values[j]`.
    fn scatter_into(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        cells: &[usize],
        values: &[f64],
        target: Target,
    ) {
        scatter(
            &self.ctx,
            self.precision,
            &self.pipelines,
            &mut self.buffers,
            encoder,
            cells,
            values,
            target,
        );
    }

    /// Records `steps` steps, swapping the state buffers after each.
    fn encode_steps(&mut self, encoder: &mut wgpu::CommandEncoder, steps: u64) {
        encode_steps(
            encoder,
            &self.pipelines,
            &self.step_groups,
            &mut self.current,
            self.grid,
            1,
            steps,
        );
    }

    /// Copies byte ranges `(buffer, offset, size)` back to the CPU, waiting
    /// for the GPU.
    fn read_raw(&self, ranges: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<Vec<u8>>, GpuError> {
        PendingRead::start(&self.ctx, ranges).wait()
    }
}

/// Records `steps` steps of `members` lattices of `grid`, swapping the
/// state buffers (`current`) after each: a step is one dispatch, or one per
/// stage in turn, with one layer of workgroups per lattice.
pub(crate) fn encode_steps(
    encoder: &mut wgpu::CommandEncoder,
    pipelines: &Pipelines,
    step_groups: &[Vec<wgpu::BindGroup>; 2],
    current: &mut usize,
    grid: Grid,
    members: usize,
    steps: u64,
) {
    let out = pipelines.out_side as u32;
    let x = (grid.cols as u32).div_ceil(out);
    let y = (grid.rows as u32).div_ceil(out);
    let step = &pipelines.step;
    let mut pass = encoder.begin_compute_pass(&Default::default());
    if let [fused] = step.as_slice() {
        pass.set_pipeline(fused);
    }
    for _ in 0..steps {
        for (stage, group) in step_groups[*current].iter().enumerate() {
            if step.len() > 1 {
                pass.set_pipeline(&step[stage]);
            }
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(x, y, members as u32);
        }
        *current ^= 1;
    }
}

/// Records `target[cells[j]] = values[j]` (indices into the whole buffer,
/// every lattice of a batch).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter(
    ctx: &GpuContext,
    precision: Precision,
    pipelines: &Pipelines,
    buffers: &mut Buffers,
    encoder: &mut wgpu::CommandEncoder,
    cells: &[usize],
    values: &[f64],
    target: Target,
) {
    if cells.is_empty() {
        return;
    }
    let device = &ctx.device;
    let value_bytes = precision.encode(values);
    if buffers.scatter.values.size() < value_bytes.len() as u64 {
        let size = (value_bytes.len() as u64).next_power_of_two();
        buffers.scatter.values = scatter_buffer(device, "scatter values", size);
        buffers.scatter.cells = scatter_buffer(device, "scatter cells", size);
    }
    let staging = &buffers.scatter;
    let index: Vec<u32> = cells.iter().map(|&k| k as u32).collect();
    let queue = &ctx.queue;
    queue.write_buffer(&staging.cells, 0, bytemuck::cast_slice(&index));
    queue.write_buffer(&staging.values, 0, &value_bytes);
    let n = cells.len() as u32;
    let groups = n.div_ceil(HELPER_GROUP_SIZE).clamp(1, MAX_HELPER_GROUPS);
    queue.write_buffer(
        &staging.counts,
        0,
        bytemuck::cast_slice(&[n, groups * HELPER_GROUP_SIZE, 0, 0]),
    );
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("scatter"),
        layout: &pipelines.scatter.get_bind_group_layout(0),
        entries: &[
            entry(0, &staging.counts),
            entry(1, &staging.cells),
            entry(2, &staging.values),
            entry(3, buffers.target(target)),
        ],
    });
    let mut pass = encoder.begin_compute_pass(&Default::default());
    pass.set_pipeline(&pipelines.scatter);
    pass.set_bind_group(0, &group, &[]);
    pass.dispatch_workgroups(groups, 1, 1);
}

/// Where a scatter writes.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    Drive,
    E(usize),
    I(usize),
}

fn scatter_buffer(device: &wgpu::Device, label: &str, size: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(64),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// The step kernel's bindings (one per pipeline) reading state buffer
/// `from` and writing the other (see [`shader::step_source`]); stage `s`
/// of a step run one dispatch per stage writes stage values `s mod 2` and
/// the next reads them.
pub(crate) fn step_group(
    device: &wgpu::Device,
    pipelines: &Pipelines,
    buffers: &Buffers,
    from: usize,
) -> Vec<wgpu::BindGroup> {
    let to = 1 - from;
    let last = pipelines.step.len() - 1;
    pipelines
        .step
        .iter()
        .enumerate()
        .map(|(stage, pipeline)| {
            let mut entries = vec![
                entry(0, &buffers.params),
                entry(1, &buffers.e[from]),
                entry(2, &buffers.i[from]),
                entry(5, &buffers.drive),
                entry(6, &buffers.h_in),
            ];
            if stage == last {
                entries.extend([entry(3, &buffers.e[to]), entry(4, &buffers.i[to])]);
            }
            if let Some(between) = buffers.stages.as_ref().filter(|_| last > 0) {
                if stage > 0 {
                    entries.push(entry(7, &between.values[(stage - 1) % 2]));
                }
                if stage < last {
                    entries.push(entry(8, &between.values[stage % 2]));
                }
                entries.push(entry(9, &between.slopes));
            }
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("step"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        })
        .collect()
}

impl Pipelines {
    /// The pipelines for `method` and `coupler` from a requested tile side:
    /// the fused step kernel where its halo fits a tile and
    /// `always_per_stage` is false, else one step kernel per stage.
    pub(crate) fn new(
        device: &wgpu::Device,
        precision: Precision,
        method: Method,
        tile: usize,
        coupler: &Coupler,
        always_per_stage: bool,
        members: usize,
    ) -> Self {
        let reach = coupler.reach();
        let (needed, fused_tile) = shader::step_plan(tile, method, reach);
        let (tile, stages) = if needed || (always_per_stage && method.stages() > 1) {
            let tile = shader::per_stage_tile(tile, reach);
            (
                tile,
                (0..method.stages()).map(shader::Stages::One).collect(),
            )
        } else {
            (fused_tile, vec![shader::Stages::Fused])
        };
        let out_side = shader::output_side(tile, stages[0].halo_stages(method) * reach);
        let module = |label: &str, source: String| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
        };
        let util = module("util", shader::util_source(precision));
        let pipeline = |module: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let step = stages
            .into_iter()
            .map(|stages| {
                let source = shader::step_source(precision, method, tile, coupler, stages, members);
                pipeline(&module("step", source), "step")
            })
            .collect();
        Self {
            tile,
            out_side,
            step,
            scatter: pipeline(&util, "scatter"),
            check: pipeline(&util, "check"),
            residual: pipeline(&util, "residual"),
        }
    }

    /// Whether a step runs one dispatch per stage.
    pub(crate) fn per_stage(&self) -> bool {
        self.step.len() > 1
    }
}
