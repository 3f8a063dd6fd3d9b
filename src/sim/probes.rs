//! The probes plugin: time series of chosen cells (E, I and the stimulus they
//! receive), a raster (kymograph) of E over the last few units of time, and
//! the live activation map (first activation times since the last load).

use std::collections::VecDeque;

use bevy::prelude::*;

use eifield_model::analysis::line_cells;
use eifield_model::scene::Stimulus;

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
            .add_systems(
                FixedUpdate,
                (record_probes, record_raster, record_activations).in_set(SimSystems::Record),
            );
    }
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
    lattice: Option<Res<Lattice>>,
) {
    activations.clear();
    if let Some(lattice) = lattice {
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
    // A GPU engine's copy is refreshed once per frame: sample it once, at
    // its own time.
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
        probe.history.push_back(ProbeSample { t, e, i, stimulus });
        while probe
            .history
            .front()
            .is_some_and(|s| s.t < t - HISTORY_SPAN)
        {
            probe.history.pop_front();
        }
    }
}

fn record_raster(mut raster: ResMut<Raster>, probes: Res<Probes>, lattice: Option<Res<Lattice>>) {
    let Some(lattice) = lattice else {
        return;
    };
    let state = lattice.state();
    let grid = state.grid;
    // The state's own time (see record_probes); a copy already recorded
    // falls under the gap below.
    let t = state.t;
    // Keep at most RASTER_COLUMNS over the span.
    let min_gap = HISTORY_SPAN / RASTER_COLUMNS as f64;
    if raster
        .times
        .back()
        .is_some_and(|&last| t - last < min_gap && t >= last)
    {
        return;
    }
    let on_grid = |(r, c): (usize, usize)| r < grid.rows && c < grid.cols;
    let line = raster.line.filter(|&(a, b)| on_grid(a) && on_grid(b));
    let row = (line.is_none() && grid.len() > RASTER_ALL_CELLS_LIMIT).then(|| {
        probes
            .0
            .first()
            .map_or(grid.rows / 2, |p| p.row.min(grid.rows - 1))
    });
    if raster.row != row
        || raster.recorded_line != line
        || raster.times.back().is_some_and(|&last| t < last)
    {
        raster.times.clear();
        raster.columns.clear();
        raster.row = row;
        raster.recorded_line = line;
    }
    let e = state.e;
    let column: Vec<f32> = match (line, row) {
        (Some((a, b)), _) => line_cells(a, b)
            .into_iter()
            .map(|(r, c)| e[grid.index(r, c)] as f32)
            .collect(),
        (None, None) => e.iter().map(|&v| v as f32).collect(),
        (None, Some(r)) => e[r * grid.cols..(r + 1) * grid.cols]
            .iter()
            .map(|&v| v as f32)
            .collect(),
    };
    raster.times.push_back(t);
    raster.columns.push_back(column);
    while raster.times.front().is_some_and(|&s| s < t - HISTORY_SPAN) {
        raster.times.pop_front();
        raster.columns.pop_front();
    }
}
