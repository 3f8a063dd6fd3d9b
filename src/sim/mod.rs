//! The simulation plugin: oscillators as entities, the neighbour stencil, one
//! clock for pause and speed, and the fixed-timestep integration system that
//! steps the lattice through the model crate.

use std::time::Duration;

use bevy::prelude::*;
use eifield_model::{BlowUp, Engine, EngineError, EngineOptions, FieldScene, Grid};

/// The simulation's system sets, chained in this order in `FixedUpdate`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Turns pulse trains, noise and perturbations into the per-cell drive.
    Stimulus,
    /// Advances the lattice by one tick of model time.
    Integrate,
    /// Copies the integrated state back into the entities.
    Writeback,
    /// Reads the new state (recording, probes).
    Record,
}

/// The excitatory activity E of one oscillator.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct Excitatory(pub f64);

/// The inhibitory activity I of one oscillator.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct Inhibitory(pub f64);

/// Where an oscillator sits on the lattice, and its row-major index.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridPosition {
    /// Row (0 is the top).
    pub row: usize,
    /// Column.
    pub col: usize,
    /// `row * cols + col`.
    pub index: usize,
}

/// The coupling stencil: the 4-neighbour (von Neumann) neighbourhood on the grid.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct Neighbours {
    /// The lattice, whose boundary decides the neighbours at the edges.
    pub grid: Grid,
}

impl Neighbours {
    /// Row-major indices of the neighbours of a cell.
    pub fn of(&self, row: usize, col: usize) -> Vec<usize> {
        self.grid.neighbours(row, col)
    }
}

/// The engine that owns the contiguous state buffers, per-cell parameters and inputs.
#[derive(Resource)]
pub struct Lattice(pub Engine);

/// The scene the lattice was built from.
#[derive(Resource, Clone, Debug)]
pub struct ActiveScene(pub FieldScene);

/// Model time, counted in whole ticks of the fixed timestep.
///
/// One unit of model time is one second of `Time<Virtual>`, so pausing and
/// changing the speed of the simulation go through `Time<Virtual>` alone.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct SimClock {
    /// Fixed ticks integrated so far.
    pub ticks: u64,
    /// Ticks per unit of model time.
    pub ticks_per_unit: f64,
}

impl SimClock {
    /// Model time now.
    pub fn time(&self) -> f64 {
        self.ticks as f64 / self.ticks_per_unit
    }

    /// Model time at the end of the next tick.
    pub fn next_time(&self) -> f64 {
        (self.ticks + 1) as f64 / self.ticks_per_unit
    }

    /// The fixed timestep matching one tick.
    pub fn timestep(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.ticks_per_unit)
    }
}

/// Wall time the last integration ticks took (smoothed), for frame budgeting.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct TickCost {
    /// Seconds of wall time per tick.
    pub seconds: f64,
}

/// Weight of the newest tick in [`TickCost`].
const TICK_COST_SMOOTHING: f64 = 0.2;

/// Whether the simulation can go on.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub enum SimStatus {
    /// Integrating normally.
    #[default]
    Running,
    /// The state became non-finite; integration has stopped at the last finite state.
    BlownUp(BlowUp),
}

/// How a scene is turned into a running simulation.
#[derive(Resource, Debug, Clone, Copy)]
pub struct SimSettings {
    /// Fixed ticks per unit of model time.
    pub ticks_per_unit: f64,
    /// Engine threads and SIMD level.
    pub engine: EngineOptions,
}

/// Adds the simulation: sets, clock, status and the integration systems.
/// Call [`load_scene`] to build a lattice.
pub struct SimPlugin;

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SimStatus>()
            .init_resource::<TickCost>()
            .configure_sets(
                FixedUpdate,
                (
                    SimSystems::Stimulus,
                    SimSystems::Integrate,
                    SimSystems::Writeback,
                    SimSystems::Record,
                )
                    .chain(),
            )
            .add_systems(
                FixedUpdate,
                (
                    apply_scene_edits
                        .run_if(resource_exists_and_changed::<ActiveScene>)
                        .before(SimSystems::Stimulus),
                    integrate.in_set(SimSystems::Integrate),
                    write_back.in_set(SimSystems::Writeback),
                ),
            );
    }
}

/// Applies the live-editable parts of the active scene to the engine: model
/// and coupling constants, drives, stimuli, noise and the integrator. A change
/// of grid or initial state needs [`load_scene`] instead.
fn apply_scene_edits(
    scene: Res<ActiveScene>,
    lattice: Option<ResMut<Lattice>>,
    clock: Option<Res<SimClock>>,
) {
    let (Some(mut lattice), Some(clock)) = (lattice, clock) else {
        return;
    };
    let scene = &scene.0;
    let engine = &mut lattice.0;
    if scene.grid != engine.grid || scene.validate().is_err() {
        return;
    }
    engine.coeffs = eifield_model::rhs::Coeffs::from_scene(scene);
    let (h_ex, h_in) = scene.cell_drives();
    engine.h_ex = h_ex;
    engine.h_in = h_in;
    engine.set_stimuli(scene);
    engine.set_noise(scene, clock.time());
    engine.set_integrator(&scene.integrator);
}

/// Builds the engine for `scene`, spawns one entity per oscillator (replacing
/// any earlier lattice) and resets the clock to t = 0.
pub fn load_scene(
    world: &mut World,
    scene: FieldScene,
    settings: SimSettings,
) -> Result<(), EngineError> {
    let engine = Engine::from_scene(&scene, settings.engine)?;
    install_engine(world, scene, engine, settings.ticks_per_unit);
    world.insert_resource(settings);
    Ok(())
}

/// As [`load_scene`], with an engine the caller has already built.
pub fn install_engine(world: &mut World, scene: FieldScene, engine: Engine, ticks_per_unit: f64) {
    let old: Vec<Entity> = world
        .query_filtered::<Entity, With<GridPosition>>()
        .iter(world)
        .collect();
    for entity in old {
        world.despawn(entity);
    }
    let grid = engine.grid;
    let cells: Vec<_> = (0..grid.len())
        .map(|index| {
            let (row, col) = grid.position(index);
            (
                GridPosition { row, col, index },
                Excitatory(engine.e[index]),
                Inhibitory(engine.i[index]),
            )
        })
        .collect();
    world.spawn_batch(cells);
    let clock = SimClock {
        ticks: 0,
        ticks_per_unit,
    };
    world
        .resource_mut::<Time<Fixed>>()
        .set_timestep(clock.timestep());
    world.insert_resource(clock);
    world.insert_resource(Neighbours { grid });
    world.insert_resource(ActiveScene(scene));
    world.insert_resource(Lattice(engine));
    world.insert_resource(SimStatus::Running);
}

/// Copies the entities' state into the engine, integrates one tick, and
/// stops the clock on a blow-up.
fn integrate(
    lattice: Option<ResMut<Lattice>>,
    clock: Option<ResMut<SimClock>>,
    mut status: ResMut<SimStatus>,
    mut cost: ResMut<TickCost>,
    cells: Query<(&GridPosition, &Excitatory, &Inhibitory)>,
) {
    let (Some(mut lattice), Some(mut clock)) = (lattice, clock) else {
        return;
    };
    if *status != SimStatus::Running {
        return;
    }
    let started = std::time::Instant::now();
    let engine = &mut lattice.0;
    for (pos, e, i) in &cells {
        engine.e[pos.index] = e.0;
        engine.i[pos.index] = i.0;
    }
    engine.t = clock.time();
    match engine.advance_to(clock.next_time()) {
        Ok(()) => clock.ticks += 1,
        Err(blow_up) => *status = SimStatus::BlownUp(blow_up),
    }
    let seconds = started.elapsed().as_secs_f64();
    cost.seconds = if cost.seconds == 0.0 {
        seconds
    } else {
        (1.0 - TICK_COST_SMOOTHING) * cost.seconds + TICK_COST_SMOOTHING * seconds
    };
}

/// Writes the engine's state back into the entities (only finite states).
fn write_back(
    lattice: Option<Res<Lattice>>,
    status: Res<SimStatus>,
    mut cells: Query<(&GridPosition, &mut Excitatory, &mut Inhibitory)>,
) {
    let Some(lattice) = lattice else {
        return;
    };
    if *status != SimStatus::Running {
        return;
    }
    let engine = &lattice.0;
    cells.par_iter_mut().for_each(|(pos, mut e, mut i)| {
        e.0 = engine.e[pos.index];
        i.0 = engine.i[pos.index];
    });
}
