//! Runs on the GPU without a host app: the rule by which `auto` chooses the
//! GPU, and in-memory runs sampled as `eifield run --backend gpu` samples
//! (the same `advance_to` targets, so the same bits), one at a time or many
//! in batches, for sweeps and the Python package.

use eifield_model::sweep::{
    EngineReport, RunArrays, RunError, SampleStop, SampledEngine, sample_run,
};

use eifield_model::{BlowUp, FieldScene, Grid};

use crate::context::{ContextRequest, GpuContext};
use crate::engine::{AdvanceError, GpuEngine, initial_state};
use crate::ensemble::{BatchKey, GpuEnsemble, max_members};
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

/// One scene's samples while its batch runs.
struct Recording {
    /// Its place in the batch.
    member: usize,
    samples: usize,
    rate: f64,
    /// The next sample to take.
    next: usize,
    e: Vec<f64>,
    i: Vec<f64>,
    blow_up: Option<BlowUp>,
}

impl Recording {
    /// The time of the next sample, if the run goes on.
    fn target(&self) -> Option<f64> {
        (self.blow_up.is_none() && self.next < self.samples).then(|| self.next as f64 / self.rate)
    }
}

/// The first non-finite value of a state (E before I, the smallest index
/// first, as both engines report it) as a blow-up at `time`.
fn first_non_finite(grid: Grid, time: f64, e: &[f64], i: &[f64]) -> Option<BlowUp> {
    [("E", e), ("I", i)]
        .into_iter()
        .find_map(|(variable, values)| {
            let k = values.iter().position(|v| !v.is_finite())?;
            let (row, col) = grid.position(k);
            Some(BlowUp {
                time,
                row,
                col,
                variable,
                value: values[k],
            })
        })
}

/// Integrates `scenes` on `ctx` in `precision` (`None`: f64 where the
/// adapter has f64 shaders, else f32) into memory, as [`run_to_arrays`]
/// does one at a time, with the same bits, but in batches
/// ([`GpuEnsemble`]): scenes of the same [`BatchKey`] share a batch, up to
/// `batch` members (at most what the device holds, [`max_members`]).
/// Returns one result per scene, in order; a scene that cannot start (no
/// rest state, say) fails alone. Runs from several threads take turns.
pub fn run_batch_to_arrays(
    ctx: &GpuContext,
    scenes: &[FieldScene],
    precision: Option<Precision>,
    batch: usize,
) -> Vec<Result<RunArrays, String>> {
    let _turn = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let precision = precision.unwrap_or_else(|| ctx.default_precision());
    let mut results: Vec<Option<Result<RunArrays, String>>> = scenes.iter().map(|_| None).collect();
    // Scenes grouped by what they must share, in order of first appearance.
    let mut groups: Vec<(BatchKey, Vec<usize>)> = Vec::new();
    for (k, scene) in scenes.iter().enumerate() {
        match BatchKey::of(scene) {
            Ok(key) => match groups.iter_mut().find(|(g, _)| *g == key) {
                Some((_, members)) => members.push(k),
                None => groups.push((key, vec![k])),
            },
            Err(e) => results[k] = Some(Err(e.to_string())),
        }
    }
    for (_, members) in groups {
        let cells = scenes[members[0]].grid.len();
        let size = batch.clamp(1, max_members(ctx, precision, cells));
        for chunk in members.chunks(size) {
            let chunk_scenes: Vec<&FieldScene> = chunk.iter().map(|&k| &scenes[k]).collect();
            for (&k, result) in chunk
                .iter()
                .zip(run_one_batch(ctx, &chunk_scenes, precision))
            {
                results[k] = Some(result);
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".into())))
        .collect()
}

/// Runs scenes of one [`BatchKey`] as one batch (see [`run_batch_to_arrays`]).
fn run_one_batch(
    ctx: &GpuContext,
    scenes: &[&FieldScene],
    precision: Precision,
) -> Vec<Result<RunArrays, String>> {
    let mut results: Vec<Result<RunArrays, String>> =
        scenes.iter().map(|_| Err("not run".into())).collect();
    let mut recordings = Vec::new();
    let mut states = Vec::new();
    let mut running = Vec::new();
    for (k, scene) in scenes.iter().enumerate() {
        let samples = scene.run.samples() as usize;
        let values = samples.saturating_mul(scene.grid.len());
        let (mut e, mut i) = (Vec::new(), Vec::new());
        if e.try_reserve_exact(values).is_err() || i.try_reserve_exact(values).is_err() {
            results[k] = Err(format!(
                "the run's output ({samples} samples of {} cells, E and I) would take {:.1} GB; \
                 shorten run.duration or lower run.sample_rate",
                scene.grid.len(),
                2.0 * values as f64 * 8.0 / 1e9
            ));
            continue;
        }
        match initial_state(scene) {
            Ok(state) => states.push(state),
            Err(error) => {
                results[k] = Err(error.to_string());
                continue;
            }
        }
        recordings.push(Recording {
            member: running.len(),
            samples,
            rate: scene.run.sample_rate,
            next: 0,
            e,
            i,
            blow_up: None,
        });
        running.push(k);
    }
    if running.is_empty() {
        return results;
    }
    let members: Vec<&FieldScene> = running.iter().map(|&k| scenes[k]).collect();
    let outcome = sample_batch(ctx, &members, &states, precision, &mut recordings);
    let ensemble = match outcome {
        Ok(ensemble) => ensemble,
        Err(error) => {
            for &k in &running {
                results[k] = Err(error.clone());
            }
            return results;
        }
    };
    for (recording, &k) in recordings.into_iter().zip(&running) {
        let scene = scenes[k];
        let done = recording.e.len() / scene.grid.len().max(1);
        results[k] = Ok(RunArrays {
            t: (0..done).map(|n| n as f64 / recording.rate).collect(),
            e: recording.e,
            i: recording.i,
            precision,
            backend: "gpu",
            blow_up: recording.blow_up,
            steps: ensemble.steps(recording.member),
            method: format!("{:?}", ensemble.method()),
            dt: scene.integrator.dt(),
            threads: 0,
            simd: "",
        });
    }
    results
}

/// Builds the batch and takes every recording's samples: each member
/// advances to its own next sample time, then the batch's state comes back
/// once and each member that got there keeps its sample (or, non-finite,
/// stops where it blew up).
fn sample_batch(
    ctx: &GpuContext,
    scenes: &[&FieldScene],
    states: &[(Vec<f64>, Vec<f64>)],
    precision: Precision,
    recordings: &mut [Recording],
) -> Result<GpuEnsemble, String> {
    let mut ensemble =
        GpuEnsemble::with_states(ctx, scenes, states, precision).map_err(|e| e.to_string())?;
    let grid = scenes[0].grid;
    // The initial state as the GPU holds it (rounded, in f32).
    let mut targets: Vec<Option<f64>> = recordings.iter().map(|_| Some(0.0)).collect();
    loop {
        ensemble.advance(&targets).map_err(|e| e.to_string())?;
        let batch_states = ensemble.read_states().map_err(|e| e.to_string())?;
        for (recording, target) in recordings.iter_mut().zip(&targets) {
            let Some(time) = *target else { continue };
            let (e, i) = &batch_states[recording.member];
            // As one lattice's run: the initial state is kept unchecked.
            let checked = (recording.next > 0)
                .then(|| first_non_finite(grid, time, e, i))
                .flatten();
            match checked {
                Some(blow_up) => {
                    recording.blow_up = Some(blow_up);
                    ensemble.stop(recording.member);
                }
                None => {
                    recording.e.extend_from_slice(e);
                    recording.i.extend_from_slice(i);
                    recording.next += 1;
                }
            }
        }
        targets = recordings.iter().map(Recording::target).collect();
        if targets.iter().all(Option::is_none) {
            return Ok(ensemble);
        }
    }
}
