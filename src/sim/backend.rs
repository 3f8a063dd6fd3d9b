//! Which engine integrates the lattice: the CPU engine (`eifield-model`) or
//! the GPU engine (`eifield-gpu`), chosen by `--backend cpu|gpu|auto` and
//! `--precision f64|f32`, behind one interface ([`FieldEngine`]) that the
//! simulation's systems use.
//!
//! `auto` takes the GPU when the lattice has at least [`AUTO_GPU_MIN_CELLS`]
//! cells and a hardware adapter with what the precision needs exists (f64
//! shaders unless `--precision f32`); a software adapter never counts for
//! `auto`, though `--backend gpu` runs on one.

use std::collections::VecDeque;
use std::sync::Arc;

use bevy::prelude::*;
use eifield_gpu::{
    ActivationTracker, CellWatch, ContextRequest, FiniteCheck, GpuContext, GpuEngine, PendingRead,
    PendingWatch, Precision,
};
use eifield_model::coupling::Coupler;
use eifield_model::per_cell::{Cells, PerCell};
use eifield_model::rhs::Coeffs;
use eifield_model::stepper::Method;
use eifield_model::stimulus::Inputs;
use eifield_model::{BlowUp, Engine, EngineOptions, FieldScene, Grid};

pub use eifield_gpu::run::AUTO_GPU_MIN_CELLS;

/// The `--backend` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The CPU engine (f64, bit for bit the same on every machine; f32 on request).
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
    /// Single precision (for exploration; check results in f64).
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
    /// The CPU engine in f32, with the f64 copies that readers see.
    CpuSingle(Box<SingleLattice>),
    /// The GPU engine and a copy of its state in CPU memory.
    Gpu(Box<GpuLattice>),
}

/// The CPU engine in f32 with f64 copies of its state, drive and
/// inhibitory drive (exact: every f32 is an f64), refreshed whenever the
/// engine changes them, so that readers always see the current state.
pub struct SingleLattice {
    /// The engine.
    pub engine: Engine<f32>,
    e: Vec<f64>,
    i: Vec<f64>,
    drive: Vec<f64>,
    h_in: PerCell<f64>,
}

impl SingleLattice {
    fn new(engine: Engine<f32>) -> Self {
        let mut lattice = Self {
            engine,
            e: Vec::new(),
            i: Vec::new(),
            drive: Vec::new(),
            h_in: PerCell::Each(Vec::new()),
        };
        lattice.refresh_state();
        lattice.refresh_drives();
        lattice
    }

    /// Copies E, I and the drive of the last segment.
    fn refresh_state(&mut self) {
        widen_into(&self.engine.e, &mut self.e);
        widen_into(&self.engine.i, &mut self.i);
        match self.engine.drive() {
            Cells::Each(drive) => widen_into(drive, &mut self.drive),
            drive => {
                self.drive.clear();
                self.drive.extend(drive.iter().map(f64::from));
            }
        }
    }

    /// Copies the inhibitory drive.
    fn refresh_drives(&mut self) {
        self.h_in = self.engine.h_in.map(f64::from);
    }
}

/// `to[k] = from[k]` as f64 (exact).
fn widen_into(from: &[f32], to: &mut Vec<f64>) {
    to.clear();
    to.extend(from.iter().map(|&v| f64::from(v)));
}

/// The GPU engine with the copy of the state that readers on the CPU see,
/// brought up to date by [`GpuLattice::sync`] (waiting for the GPU) or, in
/// the viewer, by [`GpuLattice::end_frame`] (collected when it has arrived).
pub struct GpuLattice {
    /// The engine.
    pub engine: GpuEngine,
    e: Vec<f64>,
    i: Vec<f64>,
    drive: Vec<f64>,
    /// Model time of the copy.
    copied_t: f64,
    /// Copies made so far.
    copies: u64,
    /// Whether the GPU state moved on since the last copy was made.
    stale: bool,
    /// What the viewer follows without waiting (`None`: runs and renders).
    live: Option<Box<LiveFollow>>,
}

/// E, I and stimulus of the followed cells after one tick.
#[derive(Clone, Debug)]
pub struct TickSamples {
    /// Model time.
    pub t: f64,
    /// The cells, in the order of the values (shared by many ticks).
    pub cells: Arc<Vec<usize>>,
    /// E per cell.
    pub e: Vec<f64>,
    /// I per cell.
    pub i: Vec<f64>,
    /// The time-varying part of the drive per cell (pulses, perturbations,
    /// noise), as the CPU engine's state reports it after the tick.
    pub stimulus: Vec<f64>,
}

/// A whole-state copy on its way back, with what the CPU knows of its time.
struct CopyInFlight {
    state: PendingRead,
    /// The state's bytes, once they arrived (before the activations).
    arrived: Option<Vec<Vec<u8>>>,
    activations: PendingRead,
    t: f64,
    drive: Vec<f64>,
}

/// Ticks of the followed cells on their way back, with the cells and the
/// stimuli the CPU computed for each tick.
type WatchInFlight = (PendingWatch, Arc<Vec<usize>>, Vec<Vec<f64>>);

/// What the viewer follows on the GPU without waiting for it: the followed
/// cells after every tick, the first activation times, a non-finite check
/// per frame and whole-state copies; each is collected frames later, when
/// it has arrived.
struct LiveFollow {
    watch: CellWatch,
    cells: Arc<Vec<usize>>,
    /// Stimuli of the followed cells at each tick recorded in `watch`.
    stimuli: Vec<Vec<f64>>,
    watches: VecDeque<WatchInFlight>,
    tracker: ActivationTracker,
    checks: VecDeque<FiniteCheck>,
    copy: Option<CopyInFlight>,
    /// Frames since the last copy was started.
    frames: usize,
    /// Whether a tick ran since the last non-finite check was sent.
    ticked: bool,
    arrived: Vec<TickSamples>,
    activations: Option<Vec<f64>>,
}

/// Ticks a cell watch holds between two frames before it is sent early.
const WATCH_SLOTS: usize = 64;

impl GpuLattice {
    /// Follows `engine`, whose state is `state` where the CPU found it (no
    /// readback then: a web page may not wait for one), else read back.
    fn new(engine: GpuEngine, state: Option<(Vec<f64>, Vec<f64>)>) -> Result<Self, String> {
        let mut lattice = Self {
            engine,
            e: Vec::new(),
            i: Vec::new(),
            drive: Vec::new(),
            copied_t: 0.0,
            copies: 0,
            stale: true,
            live: None,
        };
        match state {
            Some((e, i)) => {
                lattice.e = e;
                lattice.i = i;
                lattice.copied_t = lattice.engine.t;
                lattice.copies = 1;
                lattice.drive = lattice.drive_now();
                lattice.stale = false;
            }
            None => lattice.sync()?,
        }
        Ok(lattice)
    }

    /// Reads the state back if it changed since the last copy, waiting
    /// for the GPU.
    pub fn sync(&mut self) -> Result<(), String> {
        if !self.stale {
            return Ok(());
        }
        if let Some(live) = &mut self.live {
            // An older copy on its way must not replace this one.
            live.copy = None;
        }
        let (e, i) = self.engine.read_state().map_err(|e| e.to_string())?;
        self.e = e;
        self.i = i;
        self.copied_t = self.engine.t;
        self.copies += 1;
        self.drive = self.drive_now();
        self.stale = false;
        Ok(())
    }

    /// The drive in effect just after the current time, as the CPU engine's
    /// `refresh_drive` finds it.
    fn drive_now(&mut self) -> Vec<f64> {
        let instant = self.instant_after_now();
        let mut drive = Vec::new();
        self.engine.drive_at(instant, &mut drive);
        drive
    }

    /// The instant at which the CPU engine evaluates the drive it reports
    /// after integrating to the current time.
    fn instant_after_now(&self) -> f64 {
        let engine = &self.engine;
        let next = engine
            .inputs
            .next_change_after(engine.t)
            .min(engine.t + engine.dt);
        engine.t + 0.5 * (next - engine.t)
    }

    /// From now on, follows the state as the viewer needs, without waiting
    /// for the GPU: ticks no longer wait for the non-finite check, the
    /// first activation times (threshold `threshold`) are followed on the
    /// GPU, and [`GpuLattice::end_frame`] collects what arrived.
    pub fn follow_live(&mut self, threshold: f64) {
        self.live = Some(Box::new(LiveFollow {
            watch: CellWatch::new(&self.engine, &[], WATCH_SLOTS),
            cells: Arc::default(),
            stimuli: Vec::new(),
            watches: VecDeque::new(),
            tracker: ActivationTracker::new(&self.engine, threshold),
            checks: VecDeque::new(),
            copy: None,
            frames: 0,
            ticked: false,
            arrived: Vec::new(),
            activations: None,
        }));
    }

    /// Whether the state is followed live ([`GpuLattice::follow_live`]).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Follows these cells after every tick from now on (live only).
    pub fn set_followed(&mut self, cells: &[usize]) {
        let Some(live) = &mut self.live else {
            return;
        };
        if live.cells.as_slice() == cells {
            return;
        }
        live.send_watch();
        live.watch.set_cells(&self.engine, cells);
        live.cells = Arc::new(live.watch.cells().to_vec());
    }

    /// Forgets the activations so far and follows them from the state now.
    pub fn restart_activations(&mut self) {
        if let Some(live) = &mut self.live {
            let threshold = live.tracker.threshold();
            live.tracker = ActivationTracker::new(&self.engine, threshold);
            live.activations = None;
            if let Some(copy) = &mut live.copy {
                copy.activations = live.tracker.read_async();
            }
        }
    }

    /// After a tick, live: first activations, and the followed cells.
    fn after_tick(&mut self) {
        let instant = self.instant_after_now();
        let Some(live) = &mut self.live else {
            return;
        };
        live.tracker.observe(&self.engine);
        live.ticked = true;
        if live.cells.is_empty() {
            return;
        }
        if live.watch.is_full() {
            live.send_watch();
        }
        if live.watch.record(&self.engine) {
            let mut drive = Vec::with_capacity(live.cells.len());
            self.engine.drive_of_cells(instant, &live.cells, &mut drive);
            let h_ex = self.engine.h_ex();
            for (d, &k) in drive.iter_mut().zip(live.cells.iter()) {
                *d -= h_ex[k];
            }
            live.stimuli.push(drive);
        }
    }

    /// At the end of a frame, live: sends this frame's ticks of the
    /// followed cells and a non-finite check (if it had ticks), starts a
    /// whole-state copy every `every` frames (when none is on its way and
    /// the state moved), and collects whatever has arrived. True when a copy arrived (the
    /// view and [`GpuLattice::take_arrived`]'s ticks are then newer); a
    /// non-finite state found by a check is an error.
    pub fn end_frame(&mut self, every: usize) -> Result<bool, EngineStop> {
        let instant = self.instant_after_now();
        let Some(live) = &mut self.live else {
            return Ok(false);
        };
        live.send_watch();
        if std::mem::take(&mut live.ticked) {
            live.checks.push_back(self.engine.check_finite_async());
        }
        live.frames += 1;
        if live.frames >= every && live.copy.is_none() && self.stale {
            live.frames = 0;
            self.stale = false;
            let mut drive = Vec::new();
            self.engine.drive_at(instant, &mut drive);
            live.copy = Some(CopyInFlight {
                state: self.engine.read_state_async(),
                arrived: None,
                activations: live.tracker.read_async(),
                t: self.engine.t,
                drive,
            });
        }
        let failed = |e: eifield_gpu::GpuError| EngineStop::Failed(e.to_string());
        while let Some((pending, cells, stimuli)) = live.watches.front_mut() {
            let Some(ticks) = pending.try_take() else {
                break;
            };
            let cells = cells.clone();
            let stimuli = std::mem::take(stimuli);
            live.watches.pop_front();
            for (tick, stimulus) in ticks.map_err(failed)?.into_iter().zip(stimuli) {
                live.arrived.push(TickSamples {
                    t: tick.t,
                    cells: cells.clone(),
                    e: tick.e,
                    i: tick.i,
                    stimulus,
                });
            }
        }
        while let Some(check) = live.checks.front_mut() {
            let Some(outcome) = check.try_finish(&self.engine) else {
                break;
            };
            live.checks.pop_front();
            outcome.map_err(advance_stop)?;
        }
        let Some(copy) = live.copy.as_mut() else {
            return Ok(false);
        };
        if copy.arrived.is_none() {
            match copy.state.try_take() {
                None => return Ok(false),
                Some(state) => copy.arrived = Some(state.map_err(failed)?),
            }
        }
        // Sent right after the state: there by now, or in a frame.
        let Some(activations) = copy.activations.try_take() else {
            return Ok(false);
        };
        let Some(copy) = live.copy.take() else {
            return Ok(false);
        };
        let mut state = copy.arrived.unwrap_or_default();
        let precision = self.engine.precision();
        self.i = precision.decode(&state.pop().unwrap_or_default());
        self.e = precision.decode(&state.pop().unwrap_or_default());
        self.copied_t = copy.t;
        self.copies += 1;
        self.drive = copy.drive;
        let activations = activations.map_err(failed)?;
        live.activations = Some(live.tracker.decode(&activations.concat()));
        Ok(true)
    }

    /// The ticks of the followed cells that arrived since the last call,
    /// oldest first.
    pub fn take_arrived(&mut self) -> Vec<TickSamples> {
        self.live
            .as_mut()
            .map(|l| std::mem::take(&mut l.arrived))
            .unwrap_or_default()
    }

    /// The first activation times that arrived since the last call, if any
    /// (NaN: not yet activated).
    pub fn take_activations(&mut self) -> Option<Vec<f64>> {
        self.live.as_mut().and_then(|l| l.activations.take())
    }
}

impl LiveFollow {
    /// Sends the ticks recorded so far on their way back.
    fn send_watch(&mut self) {
        if let Some(pending) = self.watch.take() {
            let stimuli = std::mem::take(&mut self.stimuli);
            self.watches
                .push_back((pending, self.cells.clone(), stimuli));
        }
    }
}

fn advance_stop(e: eifield_gpu::AdvanceError) -> EngineStop {
    match e {
        eifield_gpu::AdvanceError::BlowUp(b) => EngineStop::BlowUp(b),
        eifield_gpu::AdvanceError::Gpu(e) => EngineStop::Failed(e.to_string()),
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
    /// How the GPU engine dispatches a step: `"fused"`, or `"per stage"`
    /// where the kernel's stencil is too wide for the fused step kernel
    /// (`None` on the CPU).
    pub gpu_step: Option<&'static str>,
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
            // Small lattices and general matrices stay on the CPU.
            BackendChoice::Auto if !eifield_gpu::run::auto_considers_gpu(scene) => false,
            // A device already in use (the renderer's) is the only candidate.
            BackendChoice::Auto => match gpu {
                Some(c) => {
                    !c.adapter.software
                        && (c.adapter.f64 || request.precision == Some(PrecisionChoice::F32))
                }
                None => {
                    let precision = request.precision.map(Precision::from);
                    eifield_gpu::run::auto_context(scene, precision).is_some_and(|c| {
                        *gpu = Some(c);
                        true
                    })
                }
            },
        };
        if !use_gpu {
            return match request.precision {
                Some(PrecisionChoice::F32) => Engine::<f32>::build(scene, cpu)
                    .map(|e| Self::CpuSingle(Box::new(SingleLattice::new(e)))),
                _ => Engine::from_scene(scene, cpu).map(|e| Self::Cpu(Box::new(e))),
            }
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
        let (engine, state) = GpuEngine::from_scene_with_state(&context, scene, precision)
            .map_err(|e| e.to_string())?;
        Ok(Self::Gpu(Box::new(GpuLattice::new(engine, state)?)))
    }

    /// The precision the engine computes (and a run records) in.
    pub fn precision(&self) -> Precision {
        match self {
            Self::Cpu(_) => Precision::F64,
            Self::CpuSingle(_) => Precision::F32,
            Self::Gpu(gpu) => gpu.engine.precision(),
        }
    }

    /// Which engine this is.
    pub fn info(&self) -> BackendInfo {
        match self {
            Self::Cpu(engine) => BackendInfo {
                backend: "cpu",
                adapter: format!("CPU ({} kernel)", engine.simd().name()),
                precision: "f64",
                gpu_step: None,
            },
            Self::CpuSingle(lattice) => BackendInfo {
                backend: "cpu",
                adapter: format!("CPU ({} kernel)", lattice.engine.simd().name()),
                precision: "f32",
                gpu_step: None,
            },
            Self::Gpu(gpu) => BackendInfo {
                backend: "gpu",
                adapter: gpu.engine.context().adapter.name.clone(),
                precision: gpu.engine.precision().name(),
                gpu_step: Some(if gpu.engine.per_stage() {
                    "per stage"
                } else {
                    "fused"
                }),
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
    pub drive: Cells<'a, f64>,
    /// Constant excitatory drive.
    pub h_ex: &'a [f64],
    /// Inhibitory drive.
    pub h_in: Cells<'a, f64>,
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
                h_in: engine.h_in.view(),
            },
            Self::CpuSingle(lattice) => EngineView {
                grid: lattice.engine.grid,
                t: lattice.engine.t,
                e: &lattice.e,
                i: &lattice.i,
                drive: (&lattice.drive).into(),
                h_ex: &lattice.engine.h_ex,
                h_in: lattice.h_in.view(),
            },
            Self::Gpu(gpu) => EngineView {
                grid: gpu.engine.grid,
                t: gpu.copied_t,
                e: &gpu.e,
                i: &gpu.i,
                drive: (&gpu.drive).into(),
                h_ex: gpu.engine.h_ex(),
                h_in: gpu.engine.h_in().into(),
            },
        }
    }

    /// How many copies of a GPU engine's state the CPU has seen (`None` on
    /// the CPU, whose state is always there): what changes when the copy does.
    pub fn copies(&self) -> Option<u64> {
        match self {
            Self::Cpu(_) | Self::CpuSingle(_) => None,
            Self::Gpu(g) => Some(g.copies),
        }
    }

    /// Brings the CPU copy of a GPU state up to date (nothing on the CPU).
    pub fn sync(&mut self) -> Result<(), String> {
        match self {
            Self::Cpu(_) | Self::CpuSingle(_) => Ok(()),
            Self::Gpu(gpu) => gpu.sync(),
        }
    }

    /// A GPU engine's E and I as they are after the work submitted so far,
    /// on their way back, with their precision; `None` on the CPU engines
    /// (whose state is read where it is).
    pub fn read_state_async(&self) -> Option<(PendingRead, Precision)> {
        match self {
            Self::Gpu(gpu) => Some((gpu.engine.read_state_async(), gpu.engine.precision())),
            Self::Cpu(_) | Self::CpuSingle(_) => None,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        match self {
            Self::Cpu(e) => e.steps,
            Self::CpuSingle(s) => s.engine.steps,
            Self::Gpu(g) => g.engine.steps,
        }
    }

    /// The right-hand side's constants.
    pub fn coeffs(&self) -> &Coeffs {
        match self {
            Self::Cpu(e) => &e.coeffs,
            Self::CpuSingle(s) => &s.engine.coeffs,
            Self::Gpu(g) => &g.engine.coeffs,
        }
    }

    /// The integration method.
    pub fn method(&self) -> Method {
        match self {
            Self::Cpu(e) => e.method(),
            Self::CpuSingle(s) => s.engine.method(),
            Self::Gpu(g) => g.engine.method(),
        }
    }

    /// The largest step.
    pub fn dt(&self) -> f64 {
        match self {
            Self::Cpu(e) => e.dt,
            Self::CpuSingle(s) => s.engine.dt,
            Self::Gpu(g) => g.engine.dt,
        }
    }

    /// CPU threads integrating (0 on the GPU).
    pub fn threads(&self) -> usize {
        match self {
            Self::Cpu(e) => e.threads(),
            Self::CpuSingle(s) => s.engine.threads(),
            Self::Gpu(_) => 0,
        }
    }

    /// The time-varying inputs (to add perturbations).
    pub fn inputs_mut(&mut self) -> &mut Inputs {
        match self {
            Self::Cpu(e) => &mut e.inputs,
            Self::CpuSingle(s) => &mut s.engine.inputs,
            Self::Gpu(g) => &mut g.engine.inputs,
        }
    }

    /// Applies the live-editable parts of a scene of the same shape at time
    /// `t`; a coupling this engine cannot run is refused (the rest applies).
    pub fn apply_scene(&mut self, scene: &FieldScene, t: f64) -> Result<(), String> {
        let (h_ex, h_in) = scene.cell_drives();
        let coupled = match self {
            Self::Cpu(engine) => engine.set_coupling(scene).map_err(|e| e.to_string()),
            Self::CpuSingle(s) => s.engine.set_coupling(scene).map_err(|e| e.to_string()),
            Self::Gpu(gpu) => gpu.engine.set_coupling(scene).map_err(|e| e.to_string()),
        };
        match self {
            Self::Cpu(engine) => {
                engine.h_ex = h_ex;
                engine.h_in = PerCell::new(h_in);
                engine.set_stimuli(scene);
                engine.set_noise(scene, t);
                engine.set_integrator(&scene.integrator);
            }
            Self::CpuSingle(lattice) => {
                let engine = &mut lattice.engine;
                engine.h_ex = h_ex;
                engine.h_in = PerCell::new(h_in.iter().map(|&v| v as f32).collect());
                engine.set_stimuli(scene);
                engine.set_noise(scene, t);
                engine.set_integrator(&scene.integrator);
                lattice.refresh_drives();
            }
            Self::Gpu(gpu) => {
                let engine = &mut gpu.engine;
                engine.set_drives(h_ex, h_in);
                engine.set_stimuli(scene);
                engine.set_noise(scene, t);
                engine.set_integrator(&scene.integrator);
                gpu.stale = true;
            }
        }
        coupled
    }

    /// The coupling the engine integrates with.
    pub fn coupler(&self) -> &Coupler {
        match self {
            Self::Cpu(e) => e.coupler(),
            Self::CpuSingle(s) => s.engine.coupler(),
            Self::Gpu(g) => g.engine.coupler(),
        }
    }

    /// Puts the engine where an uninterrupted run was at model time `t`
    /// after `steps` steps, with state `(e, i)` (a resumed run). Refused by
    /// the f32 CPU engine, whose compensated update carries more than E and
    /// I from step to step.
    pub fn resume_at(&mut self, e: &[f64], i: &[f64], t: f64, steps: u64) -> Result<(), String> {
        match self {
            Self::Cpu(engine) => {
                engine.e.copy_from_slice(e);
                engine.i.copy_from_slice(i);
                engine.t = t;
                engine.steps = steps;
                engine.inputs.drop_finished(t);
            }
            Self::CpuSingle(_) => {
                return Err("an f32 run cannot be resumed with the same bits; run it again".into());
            }
            // The GPU's f32 update is plain: E and I are all it carries.
            Self::Gpu(gpu) => {
                gpu.engine.write_state(e, i);
                gpu.engine.t = t;
                gpu.engine.steps = steps;
                gpu.engine.inputs.drop_finished(t);
                gpu.stale = true;
            }
        }
        Ok(())
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
            Self::CpuSingle(lattice) => {
                for &(k, e, i) in cells {
                    if k < lattice.engine.e.len() {
                        lattice.engine.e[k] = e as f32;
                        lattice.engine.i[k] = i as f32;
                    }
                }
                lattice.refresh_state();
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
            Self::CpuSingle(s) => s.engine.set_stencil(stencil),
            Self::Gpu(g) => g.engine.set_stencil(stencil),
        }
    }

    /// Integrates to `t_end`; stops on a blow-up or a GPU failure.
    pub fn advance_to(&mut self, t_end: f64) -> Result<(), EngineStop> {
        match self {
            Self::Cpu(e) => e.advance_to(t_end).map_err(EngineStop::BlowUp),
            Self::CpuSingle(s) => {
                let result = s.engine.advance_to(t_end).map_err(EngineStop::BlowUp);
                s.refresh_state();
                result
            }
            Self::Gpu(g) => {
                g.stale = true;
                if g.is_live() {
                    // The check comes back at the end of the frame.
                    g.engine.advance_unchecked(t_end);
                    g.after_tick();
                    Ok(())
                } else {
                    g.engine.advance_to(t_end).map_err(advance_stop)
                }
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
    let mut info = world.get_resource::<RenderAdapterInfo>()?.0.clone();
    info.name = adapter_label(&info);
    Some(GpuContext::from_device(
        device.wgpu_device().clone(),
        queue.clone(),
        &info,
    ))
}

/// The graphics interface of an adapter as people name it: "WebGPU",
/// "WebGL2", "Vulkan", "Metal", …
pub fn graphics_api(info: &eifield_gpu::wgpu::AdapterInfo) -> &'static str {
    use eifield_gpu::wgpu::Backend;
    match info.backend {
        Backend::BrowserWebGpu => "WebGPU",
        Backend::Gl if cfg!(target_arch = "wasm32") => "WebGL2",
        Backend::Gl => "OpenGL",
        Backend::Vulkan => "Vulkan",
        Backend::Metal => "Metal",
        Backend::Dx12 => "Direct3D 12",
        other => other.to_str(),
    }
}

/// An adapter's name, or what it is where the browser or the driver keeps
/// the name to itself ("the browser's WebGPU adapter").
pub fn adapter_label(info: &eifield_gpu::wgpu::AdapterInfo) -> String {
    match info.name.as_str() {
        "" if cfg!(target_arch = "wasm32") => {
            format!("the browser's {} adapter", graphics_api(info))
        }
        "" => format!("an unnamed {} adapter", graphics_api(info)),
        name => name.to_owned(),
    }
}
