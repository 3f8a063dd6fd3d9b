//! Parameter sweeps: a sweep file (RON) names a base scene and axes of
//! parameter values; the points are the product of the axes, numbered with
//! the last axis varying fastest. Each point is run headless (and, for the
//! table, against its control without stimuli) into one row: the axes'
//! values, how the run stopped, the extent of induction, the wave speed and
//! the activation counts. The command line and the Python package both run
//! points through [`run_point`], so their tables are the same.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::analysis::{self, Summary};
use crate::coupling::Coupler;
use crate::engine::{BlowUp, Engine, EngineOptions};
use crate::real::{Precision, Real};
use crate::scene::{
    FieldScene, Heterogeneity, Initial, InvalidField, Noise, SceneError, SceneSource,
};

/// The most points a sweep may have.
pub const MAX_POINTS: u64 = 10_000_000;

/// A sweep file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The base scene: a path relative to the sweep file, or a built-in name.
    pub base: String,
    /// The axes; the points are their product, the last axis varying fastest.
    pub axes: Vec<Axis>,
    /// How each point's seeds are chosen.
    #[serde(default)]
    pub seeds: SeedRule,
    /// The threshold of E an activation crosses upward (default 1.0).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The engine's precision (default `F64`; `F32` for exploration).
    #[serde(default, skip_serializing_if = "Precision::is_f64")]
    pub precision: Precision,
}

fn default_threshold() -> f64 {
    1.0
}

impl SweepSpec {
    /// The spec as RON text, readable by [`Sweep::from_ron_str`].
    pub fn to_ron_string(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .extensions(ron::extensions::Extensions::IMPLICIT_SOME)
            .struct_names(false);
        ron::ser::to_string_pretty(self, config).expect("a sweep always serialises")
    }
}

/// One axis: a scene parameter and its values (a list, or a range).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The parameter, by its scene name (`coupling.frac_ee`).
    pub param: String,
    /// The values, listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
    /// The values as `start + k·step` for `k = 0 … round((stop − start)/step)`
    /// (each rounded to 12 significant digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}

/// A range of values, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The first value.
    pub start: f64,
    /// The last value (reached when `stop − start` is a whole number of steps).
    pub stop: f64,
    /// The distance between values.
    pub step: f64,
}

/// How each point's seeds are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedRule {
    /// Every point uses the base scene's seeds.
    #[default]
    Same,
    /// Each seed of the base scene (heterogeneity, initial state, noise) plus
    /// the point's index (wrapping).
    PerPoint,
}

/// Why a sweep cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file could not be read, or the text is malformed.
    #[error("{0}")]
    Scene(#[from] SceneError),
    /// A value of the sweep is out of range.
    #[error("{origin}: invalid value for `{field}`: {message}")]
    Invalid {
        /// The sweep file.
        origin: String,
        /// The field, e.g. `axes[1].range.step`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A sweep ready to run: its spec, its base scene and the axes' values.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The spec as written.
    pub spec: SweepSpec,
    /// The base scene, loaded.
    pub base: FieldScene,
    /// Each axis's values.
    pub values: Vec<Vec<f64>>,
    /// Where the sweep came from (for messages).
    pub origin: String,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRow {
    /// The point's number.
    pub index: u64,
    /// `(parameter, value)` of each axis, in axis order.
    pub values: Vec<(String, f64)>,
    /// `completed`; `blow_up` (the analysis then covers the samples before
    /// it); `failed` when the point's scene could not be run (see `error`).
    pub stop: String,
    /// Why the point could not be run (e.g. no rest state to start from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The spread measured against the control.
    pub summary: Summary,
    /// Wall time of the point (both runs and the analysis).
    pub wall_time_s: f64,
    /// The engine that ran the point: `"cpu"` or `"gpu"` (rows written
    /// before engines were recorded: the CPU's).
    #[serde(default = "cpu")]
    pub backend: String,
    /// Its precision, `"f64"` or `"f32"`.
    #[serde(default = "f64_name")]
    pub precision: String,
}

fn cpu() -> String {
    "cpu".into()
}

fn f64_name() -> String {
    Precision::F64.name().into()
}

/// A point's run: the samples of E and I and how the run stopped.
pub struct RunArrays {
    /// Sample times.
    pub t: Vec<f64>,
    /// E, `samples × cells` (an f32 run's values, widened exactly).
    pub e: Vec<f64>,
    /// I, `samples × cells`.
    pub i: Vec<f64>,
    /// The precision the engine computed in.
    pub precision: Precision,
    /// The engine: `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// The blow-up that stopped the run, if any.
    pub blow_up: Option<BlowUp>,
    /// Steps taken.
    pub steps: u64,
    /// The integration method.
    pub method: String,
    /// The largest step.
    pub dt: f64,
    /// Engine threads.
    pub threads: usize,
    /// SIMD kernel.
    pub simd: &'static str,
}

/// `v` rounded to 12 significant digits, so that a range's values read as
/// written (`-6.3`, not `-6.300000000000001`).
fn twelve_digits(v: f64) -> f64 {
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// Cell-steps integrated between two calls of a run's `check` (about 50 ms
/// on one core).
pub const CHECK_CELL_STEPS: f64 = 3e6;

/// Why an in-memory run did not give its samples.
#[derive(Debug)]
pub enum RunError<E> {
    /// The scene could not be run (e.g. it has no rest state to start from).
    Scene(String),
    /// Its samples do not fit in memory.
    Memory(String),
    /// The engine failed while it ran (a GPU that was lost, say).
    Failed(String),
    /// `check` stopped it.
    Stopped(E),
}

/// Why an engine stopped before a sample.
#[derive(Debug)]
pub enum SampleStop {
    /// The state became non-finite: the run ends with the samples before.
    BlowUp(BlowUp),
    /// The engine failed.
    Failed(String),
}

/// An engine that [`sample_run`] samples: the CPU engine in either
/// precision here, the GPU engine in its own crate.
pub trait SampledEngine {
    /// Integrates to model time `t`.
    fn advance_to(&mut self, t: f64) -> Result<(), SampleStop>;
    /// Appends the current E and I (as f64, exact for f32 values).
    fn append_state(&mut self, e: &mut Vec<f64>, i: &mut Vec<f64>) -> Result<(), String>;
    /// What the run reports of the engine.
    fn report(&self) -> EngineReport;
}

/// What a run reports of its engine (see [`RunArrays`]).
pub struct EngineReport {
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// Steps taken.
    pub steps: u64,
    /// The integration method.
    pub method: String,
    /// The largest step.
    pub dt: f64,
    /// Engine threads (0 on a GPU).
    pub threads: usize,
    /// SIMD kernel (empty on a GPU).
    pub simd: &'static str,
    /// The precision computed in.
    pub precision: Precision,
}

impl<T: Real> SampledEngine for Engine<T> {
    fn advance_to(&mut self, t: f64) -> Result<(), SampleStop> {
        Engine::advance_to(self, t).map_err(SampleStop::BlowUp)
    }

    fn append_state(&mut self, e: &mut Vec<f64>, i: &mut Vec<f64>) -> Result<(), String> {
        e.extend(self.e.iter().map(|x| x.to_f64()));
        i.extend(self.i.iter().map(|x| x.to_f64()));
        Ok(())
    }

    fn report(&self) -> EngineReport {
        EngineReport {
            backend: "cpu",
            steps: self.steps,
            method: format!("{:?}", self.method()),
            dt: self.dt,
            threads: self.threads(),
            simd: self.simd().name(),
            precision: T::PRECISION,
        }
    }
}

/// Integrates a scene into memory, sample by sample, as `eifield run` does
/// (the same `advance_to` targets, so the same bits). Scenes with events are
/// not replayed here.
pub fn run_to_arrays(
    scene: &FieldScene,
    threads: usize,
    precision: Precision,
) -> Result<RunArrays, String> {
    let never = || Ok::<(), std::convert::Infallible>(());
    run_to_arrays_checked(scene, threads, precision, never).map_err(|e| match e {
        RunError::Scene(m) | RunError::Memory(m) | RunError::Failed(m) => m,
        RunError::Stopped(never) => match never {},
    })
}

/// As [`run_to_arrays`], calling `check` between samples about every
/// [`CHECK_CELL_STEPS`] cell-steps; an error from it stops the run. The
/// memory for every sample is reserved before the engine is built.
pub fn run_to_arrays_checked<E>(
    scene: &FieldScene,
    threads: usize,
    precision: Precision,
    check: impl FnMut() -> Result<(), E>,
) -> Result<RunArrays, RunError<E>> {
    let options = EngineOptions {
        threads,
        simd: None,
    };
    let built = |e: crate::EngineError| e.to_string();
    match precision {
        Precision::F64 => sample_run(
            scene,
            || Engine::<f64>::build(scene, options).map_err(built),
            check,
        ),
        Precision::F32 => sample_run(
            scene,
            || Engine::<f32>::build(scene, options).map_err(built),
            check,
        ),
    }
}

/// The sampling loop of every in-memory run: reserves the memory for every
/// sample of `scene`, builds the engine with `build` (an error is the
/// scene's), then samples it at the scene's rate with the `advance_to`
/// targets of `eifield run`, calling `check` about every
/// [`CHECK_CELL_STEPS`] cell-steps.
pub fn sample_run<S: SampledEngine, E>(
    scene: &FieldScene,
    build: impl FnOnce() -> Result<S, String>,
    mut check: impl FnMut() -> Result<(), E>,
) -> Result<RunArrays, RunError<E>> {
    let samples = scene.run.samples() as usize;
    let rate = scene.run.sample_rate;
    let cells = scene.grid.len();
    let values = samples.saturating_mul(cells);
    let (mut e, mut i) = (Vec::new(), Vec::new());
    if e.try_reserve_exact(values).is_err() || i.try_reserve_exact(values).is_err() {
        return Err(RunError::Memory(format!(
            "the run's output ({samples} samples of {cells} cells, E and I) would take {:.1} GB; \
             shorten run.duration or lower run.sample_rate",
            2.0 * values as f64 * 8.0 / 1e9
        )));
    }
    let mut engine = build().map_err(RunError::Scene)?;
    let steps_per_sample = (1.0 / (rate * scene.integrator.dt())).ceil().max(1.0);
    let chunk = ((CHECK_CELL_STEPS / (cells as f64 * steps_per_sample)).floor() as usize).max(1);
    engine
        .append_state(&mut e, &mut i)
        .map_err(RunError::Failed)?;
    let mut blow_up = None;
    for j in 1..samples {
        match engine.advance_to(j as f64 / rate) {
            Ok(()) => {}
            Err(SampleStop::BlowUp(b)) => {
                blow_up = Some(b);
                break;
            }
            Err(SampleStop::Failed(message)) => return Err(RunError::Failed(message)),
        }
        engine
            .append_state(&mut e, &mut i)
            .map_err(RunError::Failed)?;
        if j % chunk == 0 {
            check().map_err(RunError::Stopped)?;
        }
    }
    let done = e.len() / cells.max(1);
    let report = engine.report();
    Ok(RunArrays {
        t: (0..done).map(|n| n as f64 / rate).collect(),
        e,
        i,
        precision: report.precision,
        backend: report.backend,
        blow_up,
        steps: report.steps,
        method: report.method,
        dt: report.dt,
        threads: report.threads,
        simd: report.simd,
    })
}

impl Sweep {
    /// Reads a sweep file; its base scene is resolved relative to the file.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SceneError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_ron_str(&text, &path.display().to_string(), path.parent())
    }

    /// Parses a sweep; a relative base path is taken from `folder`.
    pub fn from_ron_str(
        text: &str,
        origin: &str,
        folder: Option<&Path>,
    ) -> Result<Self, SweepError> {
        let spec = Self::parse_spec(text, origin)?;
        let in_folder = folder.map_or_else(|| PathBuf::from(&spec.base), |f| f.join(&spec.base));
        let source = if in_folder.exists() {
            SceneSource::File(in_folder)
        } else {
            SceneSource::resolve(Path::new(&spec.base))
        };
        let base = source.load()?;
        Self::new(spec, base, origin)
    }

    /// A sweep of `base` (already loaded) along the spec's axes; every value
    /// is checked to give a valid scene.
    pub fn new(spec: SweepSpec, base: FieldScene, origin: &str) -> Result<Self, SweepError> {
        let invalid = |field: String, message: String| SweepError::Invalid {
            origin: origin.to_owned(),
            field,
            message,
        };
        if base.events.is_some() {
            return Err(invalid(
                "base".into(),
                "the base scene has a session's events; sweeps run scenes without events".into(),
            ));
        }
        if !(spec.threshold.is_finite()) {
            return Err(invalid(
                "threshold".into(),
                format!("must be a finite number (got {})", spec.threshold),
            ));
        }
        if spec.axes.is_empty() {
            return Err(invalid("axes".into(), "give at least one axis".into()));
        }
        let mut values = Vec::with_capacity(spec.axes.len());
        let mut points: u64 = 1;
        for (k, axis) in spec.axes.iter().enumerate() {
            let at = |f: &str| format!("axes[{k}].{f}");
            let list = match (&axis.values, &axis.range) {
                (Some(list), None) => list.clone(),
                (None, Some(r)) => {
                    if !(r.start.is_finite()
                        && r.stop.is_finite()
                        && r.step.is_finite()
                        && r.step != 0.0)
                    {
                        return Err(invalid(
                            at("range"),
                            "start, stop and step must be finite numbers, step ≠ 0".into(),
                        ));
                    }
                    let count = ((r.stop - r.start) / r.step).round();
                    if !(0.0..MAX_POINTS as f64).contains(&count) {
                        return Err(invalid(
                            at("range"),
                            format!(
                                "from {} to {} by {} is not a range of at most {MAX_POINTS} values",
                                r.start, r.stop, r.step
                            ),
                        ));
                    }
                    (0..=count as u64)
                        .map(|j| twelve_digits(r.start + j as f64 * r.step))
                        .collect()
                }
                _ => {
                    return Err(invalid(
                        at("values"),
                        "give either `values` or `range` (one of them)".into(),
                    ));
                }
            };
            if list.is_empty() {
                return Err(invalid(
                    at("values"),
                    "an axis needs at least one value".into(),
                ));
            }
            // Every value must give a valid scene.
            for (j, &value) in list.iter().enumerate() {
                let mut scene = base.clone();
                scene
                    .set_param(&axis.param, value)
                    .and_then(|_| scene.validate())
                    .map_err(|e: InvalidField| {
                        invalid(
                            at(&format!("values[{j}]")),
                            format!("{} = {value}: {e}", axis.param),
                        )
                    })?;
            }
            points = points.saturating_mul(list.len() as u64);
            values.push(list);
        }
        if points > MAX_POINTS {
            return Err(invalid(
                "axes".into(),
                format!("{points} points is more than {MAX_POINTS}"),
            ));
        }
        Ok(Self {
            spec,
            base,
            values,
            origin: origin.to_owned(),
        })
    }

    /// Parses the spec alone (its base is not loaded).
    pub fn parse_spec(text: &str, origin: &str) -> Result<SweepSpec, SweepError> {
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| {
                SweepError::Scene(SceneError::Parse {
                    origin: origin.to_owned(),
                    line: e.span.start.line,
                    col: e.span.start.col,
                    message: e.code.to_string(),
                })
            })
    }

    /// The number of points.
    pub fn points(&self) -> u64 {
        self.values.iter().map(|v| v.len() as u64).product()
    }

    /// The axes' values at point `index` (the last axis varying fastest).
    pub fn point_values(&self, index: u64) -> Vec<(String, f64)> {
        let mut rest = index;
        let mut out = vec![(String::new(), 0.0); self.values.len()];
        for (k, list) in self.values.iter().enumerate().rev() {
            let n = list.len() as u64;
            out[k] = (self.spec.axes[k].param.clone(), list[(rest % n) as usize]);
            rest /= n;
        }
        out
    }

    /// The scene of point `index`.
    pub fn point_scene(&self, index: u64) -> Result<FieldScene, String> {
        if index >= self.points() {
            return Err(format!(
                "point {index} does not exist: the sweep has {} points (0 to {})",
                self.points(),
                self.points() - 1
            ));
        }
        let mut scene = self.base.clone();
        for (param, value) in self.point_values(index) {
            scene.set_param(&param, value).map_err(|e| e.to_string())?;
        }
        if self.spec.seeds == SeedRule::PerPoint {
            if let Heterogeneity::Random { seed, .. } = &mut scene.drive.heterogeneity {
                *seed = seed.wrapping_add(index);
            }
            if let Initial::Random { seed, .. } = &mut scene.initial {
                *seed = seed.wrapping_add(index);
            }
            if let Noise::Pink { seed, .. } = &mut scene.noise {
                *seed = seed.wrapping_add(index);
            }
        }
        scene.validate().map_err(|e| e.to_string())?;
        Ok(scene)
    }
}

/// Runs point `index`: the scene, its control without stimuli, and the
/// analysis, on the CPU engine with `threads` threads. Also returns the
/// run's arrays (for `--keep runs`).
pub fn run_point(
    sweep: &Sweep,
    index: u64,
    threads: usize,
) -> Result<(PointRow, FieldScene, RunArrays), String> {
    let precision = sweep.spec.precision;
    run_point_with(sweep, index, &|scene| {
        ("cpu", run_to_arrays(scene, threads, precision))
    })
}

/// Runs one scene of a point (the point's, or its control) into memory in
/// the sweep's precision, and names the engine it chose (`"cpu"`, `"gpu"`).
pub type PointRunner<'a> =
    &'a (dyn Fn(&FieldScene) -> (&'static str, Result<RunArrays, String>) + Sync);

/// As [`run_point`], each run by `runner` (the GPU engine, say).
pub fn run_point_with(
    sweep: &Sweep,
    index: u64,
    runner: PointRunner<'_>,
) -> Result<(PointRow, FieldScene, RunArrays), String> {
    let started = Instant::now();
    let scene = sweep.point_scene(index)?;
    let control_scene = control_of(&scene);
    let (backend, run) = runner(&scene);
    let runs = run.and_then(|run| runner(&control_scene).1.map(|control| (run, control)));
    point_outcome(
        sweep,
        index,
        scene,
        backend,
        runs,
        started.elapsed().as_secs_f64(),
    )
}

/// Runs scenes together (the GPU's batches): one result per scene, in
/// order, each naming the engine that ran it.
pub type BatchRunner<'a> =
    &'a (dyn Fn(&[FieldScene]) -> Vec<(&'static str, Result<RunArrays, String>)> + Sync);

/// As [`run_point_with`] for the points `indices`, whose scenes and
/// controls `runner` runs all at once; each row's wall time is its share
/// of the whole.
pub fn run_points_with(
    sweep: &Sweep,
    indices: &[u64],
    runner: BatchRunner<'_>,
) -> Result<Vec<(PointRow, FieldScene, RunArrays)>, String> {
    let started = Instant::now();
    let mut scenes = Vec::with_capacity(2 * indices.len());
    for &index in indices {
        let scene = sweep.point_scene(index)?;
        let control = control_of(&scene);
        scenes.extend([scene, control]);
    }
    let mut results = runner(&scenes).into_iter();
    let mut runs = Vec::with_capacity(indices.len());
    for _ in indices {
        let missing = || ("cpu", Err("the runner gave no result".to_string()));
        let (backend, run) = results.next().unwrap_or_else(missing);
        let (_, control) = results.next().unwrap_or_else(missing);
        runs.push((
            backend,
            run.and_then(|run| control.map(|control| (run, control))),
        ));
    }
    let share = started.elapsed().as_secs_f64() / indices.len().max(1) as f64;
    let mut scenes = scenes.into_iter().step_by(2);
    indices
        .iter()
        .zip(runs)
        .map(|(&index, (backend, runs))| {
            let scene = scenes.next().expect("one scene per point");
            point_outcome(sweep, index, scene, backend, runs, share)
        })
        .collect()
}

/// A point's scene without its stimuli: its control.
fn control_of(scene: &FieldScene) -> FieldScene {
    let mut control = scene.clone();
    control.stimuli = Some(Vec::new());
    control
}

/// A point's row from its run and its control's (or why they failed).
fn point_outcome(
    sweep: &Sweep,
    index: u64,
    scene: FieldScene,
    backend: &'static str,
    runs: Result<(RunArrays, RunArrays), String>,
    wall_time_s: f64,
) -> Result<(PointRow, FieldScene, RunArrays), String> {
    let precision = sweep.spec.precision;
    let (run, control) = match runs {
        Ok(runs) => runs,
        Err(error) => {
            // A point that cannot run (no rest state, say) is a row too.
            let row = PointRow {
                index,
                values: sweep.point_values(index),
                stop: "failed".into(),
                error: Some(error),
                summary: Summary::of(
                    &analysis::spread(
                        &Coupler::nearest(scene.grid),
                        &[],
                        (&[], &[]),
                        (&[], &[]),
                        sweep.spec.threshold,
                    ),
                    sweep.spec.threshold,
                ),
                wall_time_s,
                backend: backend.into(),
                precision: precision.name().into(),
            };
            let empty = RunArrays {
                t: Vec::new(),
                e: Vec::new(),
                i: Vec::new(),
                precision,
                backend,
                blow_up: None,
                steps: 0,
                method: format!("{:?}", scene.integrator),
                dt: scene.integrator.dt(),
                threads: 0,
                simd: "",
            };
            return Ok((row, scene, empty));
        }
    };
    let coupler = Coupler::build(&scene.coupling, scene.grid).map_err(|e| e.to_string())?;
    let spread = analysis::spread(
        &coupler,
        &scene.stimulated_cells(),
        (&run.e, &run.t),
        (&control.e, &control.t),
        sweep.spec.threshold,
    );
    let row = PointRow {
        index,
        values: sweep.point_values(index),
        stop: if run.blow_up.is_some() {
            "blow_up"
        } else {
            "completed"
        }
        .into(),
        error: run.blow_up.as_ref().map(|b| b.to_string()),
        summary: Summary::of(&spread, sweep.spec.threshold),
        wall_time_s,
        backend: run.backend.into(),
        precision: run.precision.name().into(),
    };
    Ok((row, scene, run))
}

/// The CSV table's header: `index`, the axes' parameters, then the results.
pub fn csv_header(sweep: &Sweep) -> String {
    let mut columns = vec!["index".to_owned()];
    columns.extend(sweep.spec.axes.iter().map(|a| a.param.clone()));
    columns.extend(
        [
            "stop",
            "extent",
            "speed",
            "r2",
            "cells_induced",
            "activations_driven",
            "activations_control",
        ]
        .map(String::from),
    );
    columns.join(",")
}

/// One CSV line of a row (empty fields where a value is missing).
pub fn csv_line(row: &PointRow) -> String {
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v}"));
    let mut fields = vec![row.index.to_string()];
    fields.extend(row.values.iter().map(|(_, v)| format!("{v}")));
    let s = &row.summary;
    fields.extend([
        row.stop.clone(),
        opt(s.extent),
        opt(s.speed),
        opt(s.r2),
        s.cells_induced.to_string(),
        s.activations_driven.to_string(),
        s.activations_control.to_string(),
    ]);
    fields.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"(
        base: "seed_notebook",
        axes: [
            (param: "coupling.frac_ee", values: [0.2, 0.3, 0.4]),
            (param: "drive.h_ex", range: (start: -6.4, stop: -5.9, step: 0.05)),
        ],
        seeds: Same,
    )"#;

    #[test]
    fn points_are_the_product_with_the_last_axis_fastest() {
        let sweep = Sweep::from_ron_str(SPEC, "sweep.ron", None).unwrap();
        assert_eq!(
            sweep.values[1].len(),
            11,
            "both ends of the range are included"
        );
        assert_eq!(sweep.points(), 33);
        let p = sweep.point_values(12);
        assert_eq!(p[0], ("coupling.frac_ee".to_owned(), 0.3));
        assert_eq!(p[1].1, -6.35, "range values read as written");
        let scene = sweep.point_scene(12).unwrap();
        assert_eq!(scene.coupling.frac_ee, 0.3);
        assert!(sweep.point_scene(33).unwrap_err().contains("33 points"));
    }

    #[test]
    fn per_point_seeds_follow_the_index() {
        let spec = SPEC
            .replace("seeds: Same", "seeds: PerPoint")
            .replace("\"seed_notebook\"", "\"snic\"");
        let sweep = Sweep::from_ron_str(&spec, "sweep.ron", None).unwrap();
        let seed = |k| match sweep.point_scene(k).unwrap().drive.heterogeneity {
            Heterogeneity::Random { seed, .. } => seed,
            _ => unreachable!(),
        };
        assert_eq!(seed(5), seed(0) + 5);
    }

    #[test]
    fn bad_sweeps_name_the_field() {
        let bad = |text: &str| {
            Sweep::from_ron_str(text, "s.ron", None)
                .unwrap_err()
                .to_string()
        };
        let e = bad(&SPEC.replace("coupling.frac_ee", "coupling.nope"));
        assert!(
            e.contains("axes[0].values[0]") && e.contains("unknown parameter"),
            "{e}"
        );
        let e = bad(&SPEC.replace("step: 0.05", "step: 0.0"));
        assert!(e.contains("axes[1].range"), "{e}");
        let e = bad(&SPEC.replace("[0.2, 0.3, 0.4]", "[0.2, -1e300]"));
        assert!(e.contains("axes[0].values[1]"), "{e}");
        let e = bad(&SPEC.replace(
            "values: [0.2, 0.3, 0.4]",
            "values: [0.2], range: (start: 0.0, stop: 1.0, step: 0.5)",
        ));
        assert!(e.contains("axes[0].values"), "{e}");
    }
}
