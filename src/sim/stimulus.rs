//! The stimulus plugin: turns pulse trains, pink noise and click perturbations
//! (the [`Perturb`] message) into each cell's excitatory drive.

use bevy::prelude::*;
use eifield_model::stimulus::Perturbation;

use crate::sim::{Lattice, SimClock, SimSystems};

/// Kicks one cell: `amount` is added to its `h_ex` for `duration` units of
/// model time, starting now.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub struct Perturb {
    /// Target row.
    pub row: usize,
    /// Target column.
    pub col: usize,
    /// Added drive.
    pub amount: f64,
    /// How long it lasts.
    pub duration: f64,
}

/// Each cell's total excitatory drive `h_ex + s(t) + σ·p(t)` at the start of
/// the current tick, row-major. Drawing and probes read it.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct Drive(pub Vec<f64>);

/// Adds the [`Perturb`] message and the stimulus system.
pub struct StimulusPlugin;

impl Plugin for StimulusPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<Perturb>()
            .init_resource::<Drive>()
            .add_systems(FixedUpdate, apply_stimuli.in_set(SimSystems::Stimulus));
    }
}

/// Registers new perturbations with the engine and computes the per-cell drive.
fn apply_stimuli(
    mut perturbs: MessageReader<Perturb>,
    lattice: Option<ResMut<Lattice>>,
    clock: Option<Res<SimClock>>,
    mut drive: ResMut<Drive>,
) {
    let (Some(mut lattice), Some(clock)) = (lattice, clock) else {
        perturbs.clear();
        return;
    };
    let Lattice(engine) = &mut *lattice;
    let now = clock.time();
    for p in perturbs.read() {
        let grid = engine.grid;
        if p.row >= grid.rows || p.col >= grid.cols {
            warn!(
                "ignored a perturbation of cell ({}, {}) outside the {}×{} grid",
                p.row, p.col, grid.rows, grid.cols
            );
            continue;
        }
        if !(p.amount.is_finite() && p.duration.is_finite() && p.duration > 0.0) {
            warn!(
                "ignored a perturbation with amount {} and duration {}",
                p.amount, p.duration
            );
            continue;
        }
        engine.inputs.perturbations.push(Perturbation {
            cell: grid.index(p.row, p.col),
            amount: p.amount,
            start: now,
            end: now + p.duration,
        });
    }
    let n = engine.grid.len();
    drive.0.resize(n, 0.0);
    // The drive in effect just after `now` (inputs are right-continuous).
    let probe_time = now + 0.5 * (clock.next_time() - now);
    engine
        .inputs
        .fill_drive(probe_time, &engine.h_ex, &mut drive.0);
}
