//! The probes plugin: time series of chosen cells (E, I and the stimulus they
//! receive), a raster (kymograph) of E over the last few units of time, and
//! the live activation map (first activation times since the last load).
//! On the CPU they read the state after every tick; with a GPU engine in the
//! viewer the GPU gathers the cells they watch after every tick and follows
//! the activation times itself, and they take what arrived once per frame.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bevy::prelude::*;

use eifield_model::Grid;
use eifield_model::analysis::line_cells;
use eifield_model::scene::Stimulus;

use crate::sim::backend::FieldEngine;
use crate::sim::{ActiveScene, Lattice, Neighbours, SimSystems};

/// Model time kept in the probe histories and the raster.
pub const HISTORY_SPAN: f64 = 20.0;
/// Most time columns kept in the raster.
pub const RASTER_COLUMNS: usize = 600;
/// Lattices up to this many cells show every cell in the raster; larger ones
/// show one row.
pub const RASTER_ALL_CELLS_LIMIT: usize = 256;

/// One sample of a probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeSample {
    /// Model time.
    pub t: f64,
    /// E of the cell.
    pub e: f64,
    /// I of the cell.
    pub i: f64,
    /// Pulse-train, perturbation and noise input (drive minus the constant `h_ex`).
    pub stimulus: f64,
}

/// A probed cell and its recent history.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Row.
    pub row: usize,
    /// Column.
    pub col: usize,
    /// Samples, oldest first.
    pub history: VecDeque<ProbeSample>,
}

/// The probed cells.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct Probes(pub Vec<Probe>);

impl Probes {
    /// Adds a probe at a cell, or removes the one there.
    pub fn toggle(&mut self, row: usize, col: usize) {
        if let Some(k) = self.0.iter().position(|p| p.row == row && p.col == col) {
            self.0.remove(k);
        } else {
            self.0.push(Probe {
                row,
                col,
                history: VecDeque::new(),
            });
        }
    }
}

/// Recent E of the raster's cells: `columns[k][j]` is cell j at time `times[k]`.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct Raster {
    /// Which row is shown (`None`: every cell, or the line).
    pub row: Option<usize>,
    /// A straight line of cells chosen with the line tool: the raster then
    /// follows it, a kymograph (ends as `(row, col)`).
    pub line: Option<((usize, usize), (usize, usize))>,
    /// The line the columns were recorded along.
    recorded_line: Option<((usize, usize), (usize, usize))>,
    /// Sample times, oldest first.
    pub times: VecDeque<f64>,
    /// Values per time.
    pub columns: VecDeque<Vec<f32>>,
}

/// The first upward crossing of a threshold by each cell's E since the
/// lattice was last (re)loaded, followed tick by tick: the live activation map
/// (same definition as `eifield analyze`, interpolated between ticks).
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct ActivationTimes {
    /// The threshold E crosses upward.
    pub threshold: f64,
    /// First activation time per cell, row-major (NaN: not yet).
    pub first: Vec<f64>,
    /// E and model time at the previous tick.
    previous: Option<(Vec<f64>, f64)>,
}

impl Default for ActivationTimes {
    fn default() -> Self {
        Self {
            threshold: eifield_model::analysis::DEFAULT_THRESHOLD,
            first: Vec::new(),
            previous: None,
        }
    }
}

impl ActivationTimes {
    /// Forgets every activation (after a load or reset).
    pub fn clear(&mut self) {
        self.first.clear();
        self.previous = None;
    }

    /// Takes the state `e` at time `t` into account.
    pub fn observe(&mut self, e: &[f64], t: f64) {
        if self.first.len() != e.len() {
            self.first = vec![f64::NAN; e.len()];
            self.previous = None;
        }
        let theta = self.threshold;
        if let Some((before, t0)) = &mut self.previous
            && before.len() == e.len()
            && t > *t0
        {
            for ((first, &a), &b) in self.first.iter_mut().zip(before.iter()).zip(e) {
                if first.is_nan() && a < theta && theta <= b {
                    *first = *t0 + (theta - a) / (b - a) * (t - *t0);
                }
            }
            before.copy_from_slice(e);
            *t0 = t;
        } else {
            self.previous = Some((e.to_vec(), t));
        }
    }

    /// The latest first-activation time (0 if none yet).
    pub fn latest(&self) -> f64 {
        self.first
            .iter()
            .copied()
            .filter(|f| f.is_finite())
            .fold(0.0, f64::max)
    }
}

/// The probes' systems in `Update` (the viewer orders them after its controls).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeSystems {
    /// Histories restart after a lattice is (re)loaded.
    Reset,
}

/// Adds probes and the raster.
pub struct ProbesPlugin;

impl Plugin for ProbesPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Probes>()
            .init_resource::<Raster>()
            .init_resource::<ActivationTimes>()
            .add_systems(
                Update,
                reset_on_load
                    .run_if(resource_exists_and_changed::<Neighbours>)
                    .in_set(ProbeSystems::Reset),
            )
            .init_resource::<FollowedCells>()
            .add_systems(
                FixedUpdate,
                (record_probes, record_raster, record_activations)
                    .run_if(not(followed_on_gpu))
                    .in_set(SimSystems::Record),
            )
            .add_systems(
                RunFixedMainLoop,
                take_gpu_samples
                    .after(super::follow_gpu_state)
                    .in_set(RunFixedMainLoopSystems::AfterFixedMainLoop),
            );
    }
}

/// Cells followed after every tick on a GPU besides the probes and the
/// raster (the hovered cell), with their latest values.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct FollowedCells {
    /// Row-major indices of the extra cells.
    pub extra: Vec<usize>,
    /// The latest `(cell, t, E, I)` of each extra cell that arrived.
    pub latest: Vec<(usize, f64, f64, f64)>,
}

impl FollowedCells {
    /// The latest E and I of a followed cell, if any arrived.
    pub fn values(&self, cell: usize) -> Option<(f64, f64)> {
        self.latest
            .iter()
            .find(|v| v.0 == cell)
            .map(|&(_, _, e, i)| (e, i))
    }
}

/// Whether the lattice runs on a GPU followed live: the probes, the raster
/// and the activation map then take their values from
/// [`take_gpu_samples`], not from the state's copy.
fn followed_on_gpu(lattice: Option<Res<Lattice>>) -> bool {
    lattice.is_some_and(|l| matches!(l.engine(), FieldEngine::Gpu(g) if g.is_live()))
}

/// After a (re)load: histories restart, probes outside the new grid go, and a
/// lattice without probes gets one on its first stimulated cell (the
/// notebook's figure of the stimulated cell and its stimulus).
fn reset_on_load(
    neighbours: Res<Neighbours>,
    scene: Option<Res<ActiveScene>>,
    mut probes: ResMut<Probes>,
    mut raster: ResMut<Raster>,
    mut activations: ResMut<ActivationTimes>,
    lattice: Option<ResMut<Lattice>>,
) {
    activations.clear();
    if let Some(mut lattice) = lattice {
        if let FieldEngine::Gpu(gpu) = lattice.engine_mut() {
            gpu.restart_activations();
        }
        let state = lattice.state();
        activations.observe(state.e, state.t);
    }
    let grid = neighbours.grid();
    probes.0.retain(|p| p.row < grid.rows && p.col < grid.cols);
    for p in &mut probes.0 {
        p.history.clear();
    }
    if probes.0.is_empty()
        && let Some(Stimulus::PulseTrain { row, col, .. }) =
            scene.and_then(|s| s.0.effective_stimuli().into_iter().next())
    {
        probes.toggle(row, col);
    }
    *raster = Raster::default();
}

fn record_activations(mut activations: ResMut<ActivationTimes>, lattice: Option<Res<Lattice>>) {
    let Some(lattice) = lattice else {
        return;
    };
    // The state's own time: a GPU engine's copy is refreshed once per frame,
    // and a copy already seen is ignored (observe needs a later time).
    let state = lattice.state();
    activations.observe(state.e, state.t);
}

fn record_probes(mut probes: ResMut<Probes>, lattice: Option<Res<Lattice>>) {
    let Some(lattice) = lattice else {
        return;
    };
    let state = lattice.state();
    // A headless GPU run's copy is refreshed at sample times only: sample
    // it once, at its own time.
    let t = state.t;
    if probes
        .0
        .iter()
        .any(|p| p.history.back().is_some_and(|s| s.t == t))
    {
        return;
    }
    for probe in &mut probes.0 {
        let Some((e, i, stimulus)) = state.cell(probe.row, probe.col) else {
            continue;
        };
        probe.push(ProbeSample { t, e, i, stimulus });
    }
}

impl Probe {
    /// Appends a sample and forgets those older than [`HISTORY_SPAN`].
    fn push(&mut self, sample: ProbeSample) {
        let t = sample.t;
        self.history.push_back(sample);
        while self.history.front().is_some_and(|s| s.t < t - HISTORY_SPAN) {
            self.history.pop_front();
        }
    }
}

/// Which cells the raster records, in its column order.
#[derive(Clone, Debug, PartialEq)]
struct RasterCells {
    row: Option<usize>,
    line: Option<((usize, usize), (usize, usize))>,
    cells: Vec<usize>,
}

impl Raster {
    /// The cells to record on lattice `grid`: along the line, every cell
    /// (small lattices) or one row (the first probe's, else the middle one).
    fn cells(&self, probes: &Probes, grid: Grid) -> RasterCells {
        let on_grid = |(r, c): (usize, usize)| r < grid.rows && c < grid.cols;
        let line = self.line.filter(|&(a, b)| on_grid(a) && on_grid(b));
        let row = (line.is_none() && grid.len() > RASTER_ALL_CELLS_LIMIT).then(|| {
            probes
                .0
                .first()
                .map_or(grid.rows / 2, |p| p.row.min(grid.rows - 1))
        });
        let cells = match (line, row) {
            (Some((a, b)), _) => line_cells(a, b)
                .into_iter()
                .map(|(r, c)| grid.index(r, c))
                .collect(),
            (None, None) => (0..grid.len()).collect(),
            (None, Some(r)) => (r * grid.cols..(r + 1) * grid.cols).collect(),
        };
        RasterCells { row, line, cells }
    }

    /// Whether a column at time `t` is due (at most [`RASTER_COLUMNS`] over
    /// the span; a time before the last starts again).
    fn wants(&self, t: f64) -> bool {
        let min_gap = HISTORY_SPAN / RASTER_COLUMNS as f64;
        !self
            .times
            .back()
            .is_some_and(|&last| t - last < min_gap && t >= last)
    }

    /// Appends the column of `cells` at time `t` (starting again when the
    /// cells or the direction of time changed) and forgets old columns.
    fn push(&mut self, cells: &RasterCells, t: f64, column: Vec<f32>) {
        if self.row != cells.row
            || self.recorded_line != cells.line
            || self.times.back().is_some_and(|&last| t < last)
        {
            self.times.clear();
            self.columns.clear();
            self.row = cells.row;
            self.recorded_line = cells.line;
        }
        self.times.push_back(t);
        self.columns.push_back(column);
        while self.times.front().is_some_and(|&s| s < t - HISTORY_SPAN) {
            self.times.pop_front();
            self.columns.pop_front();
        }
    }
}

fn record_raster(mut raster: ResMut<Raster>, probes: Res<Probes>, lattice: Option<Res<Lattice>>) {
    let Some(lattice) = lattice else {
        return;
    };
    let state = lattice.state();
    // The state's own time (see record_probes); a copy already recorded
    // is not due.
    let t = state.t;
    if !raster.wants(t) {
        return;
    }
    let cells = raster.cells(&probes, state.grid);
    let column = cells.cells.iter().map(|&k| state.e[k] as f32).collect();
    raster.push(&cells, t, column);
}

/// A list of cells and where each cell is in it.
type CellPositions = (Arc<Vec<usize>>, HashMap<usize, usize>);

/// With a GPU engine followed live: feeds the probes, the raster, the
/// activation map and the followed cells' latest values from what arrived
/// (every tick of the watched cells, typically a frame late), then tells
/// the engine which cells to follow from now on.
fn take_gpu_samples(
    lattice: Option<ResMut<Lattice>>,
    mut probes: ResMut<Probes>,
    mut raster: ResMut<Raster>,
    mut activations: ResMut<ActivationTimes>,
    mut followed: ResMut<FollowedCells>,
) {
    let Some(mut lattice) = lattice else {
        return;
    };
    let grid = lattice.state().grid;
    let FieldEngine::Gpu(gpu) = lattice.engine_mut() else {
        return;
    };
    if !gpu.is_live() {
        return;
    }
    if let Some(first) = gpu.take_activations() {
        activations.first = first;
    }
    let raster_cells = raster.cells(&probes, grid);
    // Where each cell is in the ticks' values (ticks share their cell lists).
    let mut position: Option<CellPositions> = None;
    let mut latest = std::mem::take(&mut followed.latest);
    for tick in gpu.take_arrived() {
        let index = match &position {
            Some((cells, index)) if Arc::ptr_eq(cells, &tick.cells) => index,
            _ => {
                let index = tick
                    .cells
                    .iter()
                    .enumerate()
                    .map(|(j, &k)| (k, j))
                    .collect();
                &position.insert((tick.cells.clone(), index)).1
            }
        };
        for probe in &mut probes.0 {
            if let Some(&j) = index.get(&grid.index(probe.row, probe.col)) {
                probe.push(ProbeSample {
                    t: tick.t,
                    e: tick.e[j],
                    i: tick.i[j],
                    stimulus: tick.stimulus[j],
                });
            }
        }
        if raster.wants(tick.t) {
            let column: Option<Vec<f32>> = raster_cells
                .cells
                .iter()
                .map(|k| index.get(k).map(|&j| tick.e[j] as f32))
                .collect();
            if let Some(column) = column {
                raster.push(&raster_cells, tick.t, column);
            }
        }
        latest.retain(|v| !followed.extra.contains(&v.0) || !index.contains_key(&v.0));
        for &k in &followed.extra {
            if let Some(&j) = index.get(&k) {
                latest.push((k, tick.t, tick.e[j], tick.i[j]));
            }
        }
    }
    latest.retain(|v| followed.extra.contains(&v.0));
    followed.latest = latest;
    let mut cells: Vec<usize> = probes
        .0
        .iter()
        .filter(|p| p.row < grid.rows && p.col < grid.cols)
        .map(|p| grid.index(p.row, p.col))
        .collect();
    cells.extend(&raster_cells.cells);
    cells.extend(followed.extra.iter().filter(|&&k| k < grid.len()));
    gpu.set_followed(&cells);
}
