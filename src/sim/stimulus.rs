//! The stimulus plugin: click perturbations (the [`Perturb`] message) become
//! inputs of the engine, beside the scene's pulse trains and pink noise. The
//! engine alone turns its inputs into each cell's drive, segment by segment,
//! and keeps the drive it used ([`crate::sim::FieldState::drive`]), so what is
//! shown is what was integrated.

use crate::sim::backend::FieldEngine;
use bevy::prelude::*;
use eifield_model::scene::Change;
use eifield_model::stimulus::Perturbation;

use crate::sim::session::Session;
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

/// Registers new perturbations with the engine, starting now, and logs them
/// in the session.
fn apply_stimuli(
    mut perturbs: MessageReader<Perturb>,
    lattice: Option<ResMut<Lattice>>,
    clock: Option<Res<SimClock>>,
    mut session: ResMut<Session>,
) {
    let (Some(mut lattice), Some(clock)) = (lattice, clock) else {
        perturbs.clear();
        return;
    };
    let engine = lattice.engine_mut();
    let now = clock.time();
    for p in perturbs.read() {
        match register_perturbation(engine, now, p) {
            Ok(()) => session.log(Change::Perturb {
                row: p.row,
                col: p.col,
                amount: p.amount,
                duration: p.duration,
            }),
            Err(message) => warn!("ignored a perturbation: {message}"),
        }
    }
}

/// Adds a perturbation to the engine's inputs, starting at `now`; refuses
/// cells outside the grid and amounts or durations it cannot use.
pub fn register_perturbation(
    engine: &mut FieldEngine,
    now: f64,
    p: &Perturb,
) -> Result<(), String> {
    let grid = engine.view().grid;
    if p.row >= grid.rows || p.col >= grid.cols {
        return Err(format!(
            "cell ({}, {}) is outside the {}×{} grid",
            p.row, p.col, grid.rows, grid.cols
        ));
    }
    if !(p.amount.is_finite() && p.duration.is_finite() && p.duration > 0.0) {
        return Err(format!(
            "amount {} and duration {} must be finite, with a duration > 0",
            p.amount, p.duration
        ));
    }
    engine.inputs_mut().perturbations.push(Perturbation {
        cell: grid.index(p.row, p.col),
        amount: p.amount,
        start: now,
        end: now + p.duration,
    });
    Ok(())
}
