//! Runs on the GPU without a host app: the rule by which `auto` chooses the
//! GPU, and in-memory runs sampled as `eifield run --backend gpu` samples
//! (the same `advance_to` targets, so the same bits), one at a time or many
//! in batches, for sweeps and the Python package.

use eifield_model::sweep::{
    EngineReport, RunArrays, RunError, SampleStop, SampledEngine, sample_run,
};

use eifield_model::{BlowUp, FieldScene};

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
    run_batch_to_arrays_watched(ctx, scenes, precision, batch, &mut |_| true)
}

/// As [`run_batch_to_arrays`], calling `watch` with the fraction of all
/// samples taken after each sample of a batch; when it returns false, the
/// scenes not finished yet fail with "stopped".
pub fn run_batch_to_arrays_watched(
    ctx: &GpuContext,
    scenes: &[FieldScene],
    precision: Option<Precision>,
    batch: usize,
    watch: &mut dyn FnMut(f64) -> bool,
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
    let total: usize = scenes.iter().map(|s| s.run.samples() as usize).sum();
    let mut taken = 0;
    let mut stopped = false;
    for (_, members) in groups {
        let cells = scenes[members[0]].grid.len();
        let size = batch.clamp(1, max_members(ctx, precision, cells));
        for chunk in members.chunks(size) {
            let chunk_scenes: Vec<&FieldScene> = chunk.iter().map(|&k| &scenes[k]).collect();
            let mut on_samples = |n: usize| {
                taken += n;
                stopped = stopped || !watch(taken as f64 / total.max(1) as f64);
                !stopped
            };
            for (&k, result) in chunk.iter().zip(run_one_batch(
                ctx,
                &chunk_scenes,
                precision,
                &mut on_samples,
            )) {
                results[k] = Some(result);
            }
            if stopped {
                break;
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("stopped".into())))
        .collect()
}

/// The members of a batch of lattices like `scene` that `ctx` and this
/// machine hold at once in `precision`: what the device holds
/// ([`max_members`]), and what a quarter of the memory this machine has
/// available holds of their samples (E and I of every sample, 16 bytes
/// per value); at least 1.
pub fn default_batch(ctx: &GpuContext, scene: &FieldScene, precision: Precision) -> usize {
    let cells = scene.grid.len();
    let per_member = (scene.run.samples() as usize)
        .saturating_mul(cells)
        .saturating_mul(16)
        .max(1);
    let host = available_memory().unwrap_or(8 << 30) / 4;
    max_members(ctx, precision, cells)
        .min((host / per_member as u64) as usize)
        .max(1)
}

/// How a sweep's points run on the GPU: `(points, members)` per batch for
/// points like `scene`, from the points asked for (`None`: as many as
/// [`default_batch`] members hold). A point is two lattices, its run and
/// its control, which share a batch.
pub fn sweep_batch(
    ctx: &GpuContext,
    scene: &FieldScene,
    precision: Precision,
    points: Option<usize>,
) -> (usize, usize) {
    let members = points.map_or_else(
        || default_batch(ctx, scene, precision),
        |points| points.saturating_mul(2),
    );
    ((members / 2).max(1), members)
}

/// Bytes of memory available to a new allocation (Linux's `MemAvailable`).
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs scenes of one [`BatchKey`] as one batch (see [`run_batch_to_arrays`]).
fn run_one_batch(
    ctx: &GpuContext,
    scenes: &[&FieldScene],
    precision: Precision,
    on_samples: &mut dyn FnMut(usize) -> bool,
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
    let outcome = sample_batch(
        ctx,
        &members,
        &states,
        precision,
        &mut recordings,
        on_samples,
    );
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
/// stops where it blew up). `on_samples` hears how many samples each round
/// took (or lost to a blow-up), and stops the batch by returning false.
fn sample_batch(
    ctx: &GpuContext,
    scenes: &[&FieldScene],
    states: &[(Vec<f64>, Vec<f64>)],
    precision: Precision,
    recordings: &mut [Recording],
    on_samples: &mut dyn FnMut(usize) -> bool,
) -> Result<GpuEnsemble, String> {
    let mut ensemble =
        GpuEnsemble::with_states(ctx, scenes, states, precision).map_err(|e| e.to_string())?;
    let grid = scenes[0].grid;
    // The initial state as the GPU holds it (rounded, in f32).
    let mut targets: Vec<Option<f64>> = recordings.iter().map(|_| Some(0.0)).collect();
    loop {
        ensemble.advance(&targets).map_err(|e| e.to_string())?;
        let batch_states = ensemble.read_states().map_err(|e| e.to_string())?;
        let mut taken = 0;
        for (recording, target) in recordings.iter_mut().zip(&targets) {
            let Some(time) = *target else { continue };
            taken += 1;
            let (e, i) = &batch_states[recording.member];
            // As one lattice's run: the initial state is kept unchecked.
            let checked = (recording.next > 0)
                .then(|| BlowUp::first_in(grid, time, e, i))
                .flatten();
            match checked {
                Some(blow_up) => {
                    recording.blow_up = Some(blow_up);
                    ensemble.stop(recording.member);
                    // The samples it will not take count as done.
                    taken += recording.samples - recording.next - 1;
                }
                None => {
                    recording.e.extend_from_slice(e);
                    recording.i.extend_from_slice(i);
                    recording.next += 1;
                }
            }
        }
        if !on_samples(taken) {
            return Err("stopped".into());
        }
        targets = recordings.iter().map(Recording::target).collect();
        if targets.iter().all(Option::is_none) {
            return Ok(ensemble);
        }
    }
}
