//! Which engine integrates the lattice: the CPU engine (`eifield-model`) or
//! the GPU engine (`eifield-gpu`), chosen by `--backend cpu|gpu|auto` and
//! `--precision f64|f32`, behind one interface ([`FieldEngine`]) that the
//! simulation's systems use.
//!
//! `auto` takes the GPU when the lattice has at least [`AUTO_GPU_MIN_CELLS`]
//! cells and a hardware adapter with what the precision needs exists (f64
//! shaders unless `--precision f32`); a software adapter never counts for
//! `auto`, though `--backend gpu` runs on one.

use bevy::prelude::*;
use eifield_gpu::{ContextRequest, GpuContext, GpuEngine, Precision};
use eifield_model::rhs::Coeffs;
use eifield_model::stepper::Method;
use eifield_model::stimulus::Inputs;
use eifield_model::{BlowUp, Engine, EngineOptions, FieldScene, Grid};

/// Lattices smaller than this stay on the CPU under `--backend auto`: below
/// it, a step is cheaper on the CPU than a dispatch and its readback.
pub const AUTO_GPU_MIN_CELLS: usize = 256 * 256;

/// The `--backend` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The CPU engine (f64, bit for bit the same on every machine).
    Cpu,
    /// The GPU engine (a software adapter will do).
    Gpu,
    /// The GPU for large lattices when a hardware GPU exists, else the CPU.
    #[default]
    Auto,
}

/// The `--precision` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionChoice {
    /// Double precision.
    F64,
    /// Single precision (GPU only).
    F32,
}

impl From<PrecisionChoice> for Precision {
    fn from(p: PrecisionChoice) -> Self {
        match p {
            PrecisionChoice::F64 => Precision::F64,
            PrecisionChoice::F32 => Precision::F32,
        }
    }
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendRequest {
    /// Which engine.
    pub backend: BackendChoice,
    /// Which precision (`None`: f64 where the engine can).
    pub precision: Option<PrecisionChoice>,
}

/// The GPU device the lattice runs on, opened once per process (or the
/// viewer's render device).
#[derive(Resource, Clone)]
pub struct GpuDevice {
    /// The device and queue.
    pub context: GpuContext,
    /// Whether it is the renderer's own device, so that the surface can
    /// read the engine's buffers directly.
    pub renderer_shares_it: bool,
}

/// An engine of either kind.
pub enum FieldEngine {
    /// The CPU engine.
    Cpu(Box<Engine>),
    /// The GPU engine and a copy of its state in CPU memory.
    Gpu(Box<GpuLattice>),
}

/// The GPU engine with the copy of the state that readers on the CPU see,
/// brought up to date by [`GpuLattice::sync`].
pub struct GpuLattice {
    /// The engine.
    pub engine: GpuEngine,
    e: Vec<f64>,
    i: Vec<f64>,
    drive: Vec<f64>,
    /// Model time of the copy.
    copied_t: f64,
    /// Whether the GPU state moved on since the last sync.
    stale: bool,
}

impl GpuLattice {
    fn new(engine: GpuEngine) -> Result<Self, String> {
        let mut lattice = Self {
            engine,
            e: Vec::new(),
            i: Vec::new(),
            drive: Vec::new(),
            copied_t: 0.0,
            stale: true,
        };
        lattice.sync()?;
        Ok(lattice)
    }

    /// Reads the state back if it changed since the last call.
    pub fn sync(&mut self) -> Result<(), String> {
        if !self.stale {
            return Ok(());
        }
        let (e, i) = self.engine.read_state().map_err(|e| e.to_string())?;
        self.e = e;
        self.i = i;
        self.copied_t = self.engine.t;
        self.refresh_drive();
        self.stale = false;
        Ok(())
    }

    /// The drive in effect just after the current time, as the CPU engine's
    /// `refresh_drive` finds it.
    fn refresh_drive(&mut self) {
        let engine = &mut self.engine;
        let next = engine
            .inputs
            .next_change_after(engine.t)
            .min(engine.t + engine.dt);
        let instant = engine.t + 0.5 * (next - engine.t);
        engine.drive_at(instant, &mut self.drive);
    }
}

/// Which engine runs, and how: what a manifest and a benchmark line report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// The GPU adapter's name (the CPU engine: its SIMD kernel).
    pub adapter: String,
    /// `"f64"` or `"f32"`.
    pub precision: &'static str,
}

impl FieldEngine {
    /// Builds the engine `request` asks for, opening the GPU into `gpu` the
    /// first time one is needed.
    pub fn build(
        scene: &FieldScene,
        request: BackendRequest,
        cpu: EngineOptions,
        gpu: &mut Option<GpuContext>,
    ) -> Result<Self, String> {
        let use_gpu = match request.backend {
            BackendChoice::Cpu => false,
            BackendChoice::Gpu => true,
            BackendChoice::Auto if scene.grid.len() < AUTO_GPU_MIN_CELLS => false,
            // A device already in use (the renderer's) is the only candidate.
            BackendChoice::Auto => match gpu {
                Some(c) => {
                    !c.adapter.software
                        && (c.adapter.f64 || request.precision == Some(PrecisionChoice::F32))
                }
                None => {
                    open(request.precision.or(Some(PrecisionChoice::F64)), false).is_ok_and(|c| {
                        *gpu = Some(c);
                        true
                    })
                }
            },
        };
        if !use_gpu {
            if request.backend == BackendChoice::Cpu
                && request.precision == Some(PrecisionChoice::F32)
            {
                return Err(
                    "invalid value for `--precision`: f32 needs `--backend gpu` (the CPU engine \
                     computes in f64)"
                        .into(),
                );
            }
            return Engine::from_scene(scene, cpu)
                .map(|e| Self::Cpu(Box::new(e)))
                .map_err(|e| e.to_string());
        }
        let context = match gpu {
            Some(c) => c.clone(),
            None => {
                // With no precision asked: f64 where some adapter has it, else f32.
                let c = open(request.precision, true).map_err(|e| e.to_string())?;
                *gpu = Some(c.clone());
                c
            }
        };
        let precision = request
            .precision
            .map_or(context.default_precision(), Precision::from);
        let engine =
            GpuEngine::from_scene(&context, scene, precision).map_err(|e| e.to_string())?;
        Ok(Self::Gpu(Box::new(GpuLattice::new(engine)?)))
    }

    /// Which engine this is.
    pub fn info(&self) -> BackendInfo {
        match self {
            Self::Cpu(engine) => BackendInfo {
                backend: "cpu",
                adapter: format!("CPU ({} kernel)", engine.simd().name()),
                precision: "f64",
            },
            Self::Gpu(gpu) => BackendInfo {
                backend: "gpu",
                adapter: gpu.engine.context().adapter.name.clone(),
                precision: gpu.engine.precision().name(),
            },
        }
    }
}

fn open(
    precision: Option<PrecisionChoice>,
    allow_software: bool,
) -> Result<GpuContext, eifield_gpu::GpuError> {
    GpuContext::open(ContextRequest {
        precision: precision.map(Precision::from),
        allow_software,
    })
}

/// The state and settings every reader needs, whichever engine runs.
#[derive(Clone, Copy)]
pub struct EngineView<'a> {
    /// Lattice shape and the stencil last integrated with.
    pub grid: Grid,
    /// Model time of the state shown (for the GPU engine: of its copy).
    pub t: f64,
    /// E per cell.
    pub e: &'a [f64],
    /// I per cell.
    pub i: &'a [f64],
    /// Total excitatory drive.
    pub drive: &'a [f64],
    /// Constant excitatory drive.
    pub h_ex: &'a [f64],
    /// Inhibitory drive.
    pub h_in: &'a [f64],
}

impl FieldEngine {
    /// The state as readers on the CPU see it (for the GPU engine: as of the
    /// last [`FieldEngine::sync`]).
    pub fn view(&self) -> EngineView<'_> {
        match self {
            Self::Cpu(engine) => EngineView {
                grid: engine.grid,
                t: engine.t,
                e: &engine.e,
                i: &engine.i,
                drive: engine.drive(),
                h_ex: &engine.h_ex,
                h_in: &engine.h_in,
            },
            Self::Gpu(gpu) => EngineView {
                grid: gpu.engine.grid,
                t: gpu.copied_t,
                e: &gpu.e,
                i: &gpu.i,
                drive: &gpu.drive,
                h_ex: gpu.engine.h_ex(),
                h_in: gpu.engine.h_in(),
            },
        }
    }

    /// Brings the CPU copy of a GPU state up to date (nothing on the CPU).
    pub fn sync(&mut self) -> Result<(), String> {
        match self {
            Self::Cpu(_) => Ok(()),
            Self::Gpu(gpu) => gpu.sync(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        match self {
            Self::Cpu(e) => e.steps,
            Self::Gpu(g) => g.engine.steps,
        }
    }

    /// The right-hand side's constants.
    pub fn coeffs(&self) -> &Coeffs {
        match self {
            Self::Cpu(e) => &e.coeffs,
            Self::Gpu(g) => &g.engine.coeffs,
        }
    }

    /// The integration method.
    pub fn method(&self) -> Method {
        match self {
            Self::Cpu(e) => e.method(),
            Self::Gpu(g) => g.engine.method(),
        }
    }

    /// The largest step.
    pub fn dt(&self) -> f64 {
        match self {
            Self::Cpu(e) => e.dt,
            Self::Gpu(g) => g.engine.dt,
        }
    }

    /// CPU threads integrating (0 on the GPU).
    pub fn threads(&self) -> usize {
        match self {
            Self::Cpu(e) => e.threads(),
            Self::Gpu(_) => 0,
        }
    }

    /// The time-varying inputs (to add perturbations).
    pub fn inputs_mut(&mut self) -> &mut Inputs {
        match self {
            Self::Cpu(e) => &mut e.inputs,
            Self::Gpu(g) => &mut g.engine.inputs,
        }
    }

    /// Applies the live-editable parts of a scene of the same shape at time `t`.
    pub fn apply_scene(&mut self, scene: &FieldScene, t: f64) {
        let coeffs = Coeffs::from_scene(scene);
        let (h_ex, h_in) = scene.cell_drives();
        match self {
            Self::Cpu(engine) => {
                engine.coeffs = coeffs;
                engine.h_ex = h_ex;
                engine.h_in = h_in;
                engine.set_stimuli(scene);
                engine.set_noise(scene, t);
                engine.set_integrator(&scene.integrator);
            }
            Self::Gpu(gpu) => {
                let engine = &mut gpu.engine;
                engine.coeffs = coeffs;
                engine.set_drives(h_ex, h_in);
                engine.set_stimuli(scene);
                engine.set_noise(scene, t);
                engine.set_integrator(&scene.integrator);
                gpu.stale = true;
            }
        }
    }

    /// Sets E and I of some cells: `(index, e, i)`.
    pub fn write_cells(&mut self, cells: &[(usize, f64, f64)]) {
        match self {
            Self::Cpu(engine) => {
                for &(k, e, i) in cells {
                    if k < engine.e.len() {
                        engine.e[k] = e;
                        engine.i[k] = i;
                    }
                }
            }
            Self::Gpu(gpu) => {
                gpu.engine.write_cells(cells);
                gpu.stale = true;
            }
        }
    }

    /// Replaces the coupling stencil by one of the same shape; false if the shape differs.
    pub fn set_stencil(&mut self, stencil: Grid) -> bool {
        match self {
            Self::Cpu(e) => e.set_stencil(stencil),
            Self::Gpu(g) => g.engine.set_stencil(stencil),
        }
    }

    /// Integrates to `t_end`; stops on a blow-up or a GPU failure.
    pub fn advance_to(&mut self, t_end: f64) -> Result<(), EngineStop> {
        match self {
            Self::Cpu(e) => e.advance_to(t_end).map_err(EngineStop::BlowUp),
            Self::Gpu(g) => {
                g.stale = true;
                g.engine.advance_to(t_end).map_err(|e| match e {
                    eifield_gpu::AdvanceError::BlowUp(b) => EngineStop::BlowUp(b),
                    eifield_gpu::AdvanceError::Gpu(e) => EngineStop::Failed(e.to_string()),
                })
            }
        }
    }
}

/// Why the engine stopped integrating.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineStop {
    /// The state became non-finite.
    BlowUp(BlowUp),
    /// The device failed.
    Failed(String),
}

/// The renderer's device as a GPU context, once the render plugin has
/// created it (after `App::finish`).
pub fn renderer_context(world: &World) -> Option<GpuContext> {
    use bevy::render::renderer::{RenderAdapterInfo, RenderDevice, RenderQueue};
    let device = world.get_resource::<RenderDevice>()?;
    let queue: &eifield_gpu::wgpu::Queue = &world.get_resource::<RenderQueue>()?.0;
    let info = world.get_resource::<RenderAdapterInfo>()?;
    Some(GpuContext::from_device(
        device.wgpu_device().clone(),
        queue.clone(),
        &info.0,
    ))
}
