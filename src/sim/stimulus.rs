//! The stimulus plugin: click perturbations (the [`Perturb`] message) become
//! inputs of the engine, beside the scene's pulse trains and pink noise. The
//! engine alone turns its inputs into each cell's drive, segment by segment,
//! and keeps the drive it used ([`crate::sim::FieldState::drive`]), so what is
//! shown is what was integrated.

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

/// Adds the [`Perturb`] message and the stimulus system.
pub struct StimulusPlugin;

impl Plugin for StimulusPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<Perturb>()
            .add_systems(FixedUpdate, apply_stimuli.in_set(SimSystems::Stimulus));
    }
}

/// Registers new perturbations with the engine, starting now.
fn apply_stimuli(
    mut perturbs: MessageReader<Perturb>,
    lattice: Option<ResMut<Lattice>>,
    clock: Option<Res<SimClock>>,
) {
    let (Some(mut lattice), Some(clock)) = (lattice, clock) else {
        perturbs.clear();
        return;
    };
    let engine = lattice.engine_mut();
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
}
