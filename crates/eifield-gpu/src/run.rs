//! Runs on the GPU without a host app: the rule by which `auto` chooses the
//! GPU, and in-memory runs sampled as `eifield run --backend gpu` samples
//! (the same `advance_to` targets, so the same bits), for the Python package.

use eifield_model::FieldScene;
use eifield_model::sweep::{
    EngineReport, RunArrays, RunError, SampleStop, SampledEngine, sample_run,
};

use crate::context::{ContextRequest, GpuContext};
use crate::engine::{AdvanceError, GpuEngine};
use crate::shader::Precision;

/// Lattices smaller than this stay on the CPU under `auto`: below it, a
/// step is cheaper on the CPU than a dispatch and its readback.
pub const AUTO_GPU_MIN_CELLS: usize = 256 * 256;

/// Whether `auto` considers the GPU for `scene` at all: lattices of at
/// least [`AUTO_GPU_MIN_CELLS`] cells whose coupling the GPU runs (general
/// matrices run on the CPU only).
pub fn auto_considers_gpu(scene: &FieldScene) -> bool {
    scene.grid.len() >= AUTO_GPU_MIN_CELLS && !scene.coupling.kernel.is_matrix()
}

/// The GPU that `auto` runs `scene` on: a hardware adapter (never a
/// software one) with what `precision` needs (f64 shaders unless f32 is
/// asked for); `None` for the CPU.
pub fn auto_context(scene: &FieldScene, precision: Option<Precision>) -> Option<GpuContext> {
    if !auto_considers_gpu(scene) {
        return None;
    }
    GpuContext::open(ContextRequest {
        precision: Some(precision.unwrap_or(Precision::F64)),
        allow_software: false,
    })
    .ok()
}

impl SampledEngine for GpuEngine {
    fn advance_to(&mut self, t: f64) -> Result<(), SampleStop> {
        GpuEngine::advance_to(self, t).map_err(|e| match e {
            AdvanceError::BlowUp(b) => SampleStop::BlowUp(b),
            AdvanceError::Gpu(e) => SampleStop::Failed(e.to_string()),
        })
    }

    fn append_state(&mut self, e: &mut Vec<f64>, i: &mut Vec<f64>) -> Result<(), String> {
        let (state_e, state_i) = self.read_state().map_err(|e| e.to_string())?;
        e.extend_from_slice(&state_e);
        i.extend_from_slice(&state_i);
        Ok(())
    }

    fn report(&self) -> EngineReport {
        EngineReport {
            backend: "gpu",
            steps: self.steps,
            method: format!("{:?}", self.method()),
            dt: self.dt,
            threads: 0,
            simd: "",
            precision: self.precision(),
        }
    }
}

/// As [`run_to_arrays_checked`], without checks (a sweep's point).
pub fn run_to_arrays(
    ctx: &GpuContext,
    scene: &FieldScene,
    precision: Option<Precision>,
) -> Result<RunArrays, String> {
    let never = || Ok::<(), std::convert::Infallible>(());
    run_to_arrays_checked(ctx, scene, precision, never)
        .map(|(run, _)| run)
        .map_err(|e| match e {
            RunError::Scene(m) | RunError::Memory(m) | RunError::Failed(m) => m,
            RunError::Stopped(never) => match never {},
        })
}

/// In-memory runs of this process, one at a time: an engine waits for its
/// own readbacks by polling the device, which must not race another
/// engine's waits on the same device (a sweep's points from several threads).
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Integrates `scene` on `ctx` in `precision` (`None`: f64 where the
/// adapter has f64 shaders, else f32) into memory, sampled as
/// `eifield run --backend gpu` samples it, calling `check` between samples
/// (see [`sample_run`]). Also returns how the engine dispatched its steps
/// (`"fused"` or `"per stage"`). Runs from several threads take turns.
pub fn run_to_arrays_checked<E>(
    ctx: &GpuContext,
    scene: &FieldScene,
    precision: Option<Precision>,
    check: impl FnMut() -> Result<(), E>,
) -> Result<(RunArrays, &'static str), RunError<E>> {
    let _turn = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let precision = precision.unwrap_or_else(|| ctx.default_precision());
    let mut step = "fused";
    let build = || {
        let engine = GpuEngine::from_scene(ctx, scene, precision).map_err(|e| e.to_string())?;
        if engine.per_stage() {
            step = "per stage";
        }
        Ok(engine)
    };
    let run = sample_run(scene, build, check)?;
    Ok((run, step))
}
