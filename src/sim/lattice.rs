//! The simulation's state and its owner: the [`Lattice`] resource holds the
//! engine, which owns E and I in contiguous buffers; oscillator entities carry
//! [`Excitatory`]/[`Inhibitory`] components that mirror them (see the flow in
//! [`crate::sim`]); [`Neighbours`] is the stencil the integration uses.

use std::time::Duration;

use bevy::prelude::*;
use eifield_model::{BlowUp, Boundary, EngineOptions, FieldScene, Grid};

use super::backend::{BackendRequest, EngineView, FieldEngine, GpuDevice};

/// The excitatory activity E of one oscillator (a mirror of the engine's state).
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct Excitatory(pub f64);

/// The inhibitory activity I of one oscillator (a mirror of the engine's state).
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct Inhibitory(pub f64);

/// Where an oscillator sits on the lattice: its row-major index (32-bit: a
/// scene has at most `MAX_CELLS` cells). Row and column follow from the
/// lattice's shape ([`GridPosition::row_col`]); keeping only the index
/// makes each of a 4096 × 4096 lattice's sixteen million entities 8 bytes
/// smaller.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridPosition {
    /// `row * cols + col`.
    pub index: u32,
}

impl GridPosition {
    /// The position of cell `index`.
    pub fn of(index: usize) -> Self {
        Self {
            index: index as u32,
        }
    }

    /// The row-major index, for indexing the state.
    pub fn cell(&self) -> usize {
        self.index as usize
    }

    /// Row and column on `grid`.
    pub fn row_col(&self, grid: Grid) -> (usize, usize) {
        grid.position(self.cell())
    }
}

/// The lattice's shape and the boundary the coupling uses, open or
/// periodic; its boundary may be changed, and the next tick integrates with
/// it. Which cells a cell feels (the kernel) is the scene's coupling, built
/// into the engine's [`eifield_model::coupling::Coupler`].
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct Neighbours {
    grid: Grid,
}

impl Neighbours {
    /// The stencil of a lattice.
    pub fn new(grid: Grid) -> Self {
        Self { grid }
    }

    /// The lattice shape and boundary.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// Changes the boundary (open or periodic).
    pub fn set_boundary(&mut self, boundary: Boundary) {
        self.grid.boundary = boundary;
    }
}

/// The owner of the lattice state: the engine (on the CPU, or on the GPU
/// with a copy in CPU memory) with its E and I buffers, per-cell parameters
/// and inputs. Everything that shows or saves the state reads it here,
/// through [`Lattice::state`]; the simulation's own systems change it
/// through [`Lattice::engine_mut`].
#[derive(Resource)]
pub struct Lattice {
    engine: FieldEngine,
    /// The change tick of the [`ActiveScene`] the engine was built from or
    /// last brought in line with: that scene needs no applying again (at a
    /// big lattice, applying regenerates every cell's drive).
    pub(crate) scene_tick: Option<bevy::ecs::change_detection::Tick>,
}

/// A read-only view of the lattice state.
pub type FieldState<'a> = EngineView<'a>;

impl FieldState<'_> {
    /// E, I and the time-varying part of the drive (pulses, perturbations,
    /// noise) of a cell, if it is on the lattice.
    pub fn cell(&self, row: usize, col: usize) -> Option<(f64, f64, f64)> {
        (row < self.grid.rows && col < self.grid.cols).then(|| {
            let k = self.grid.index(row, col);
            (self.e[k], self.i[k], self.drive.get(k) - self.h_ex[k])
        })
    }
}

impl Lattice {
    /// Wraps an engine.
    pub fn new(engine: FieldEngine) -> Self {
        Self {
            engine,
            scene_tick: None,
        }
    }

    /// The state, for every reader. With the GPU engine this is the copy
    /// made by the last [`Lattice::sync`].
    pub fn state(&self) -> FieldState<'_> {
        self.engine.view()
    }

    /// Brings the CPU copy of a GPU engine's state up to date (a no-op on
    /// the CPU engine, and when nothing changed since the last call).
    pub fn sync(&mut self) -> Result<(), String> {
        self.engine.sync()
    }

    /// The engine, read-only (its settings: backend, method, steps).
    pub fn engine(&self) -> &FieldEngine {
        &self.engine
    }

    /// The engine, for the simulation's systems ([`crate::sim::SimSystems`]).
    pub fn engine_mut(&mut self) -> &mut FieldEngine {
        &mut self.engine
    }
}

/// The scene the lattice was built from, with the live edits made since.
#[derive(Resource, Clone, Debug, PartialEq)]
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

    /// The fixed timestep matching one tick. Scene validation keeps tick
    /// rates within `[MIN_RATE, MAX_RATE]`, so this is never zero.
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

/// Whether the simulation can go on.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub enum SimStatus {
    /// Integrating normally.
    #[default]
    Running,
    /// The state became non-finite; integration has stopped there.
    BlownUp(BlowUp),
    /// The GPU failed; integration has stopped.
    Failed(String),
}

/// When the oscillator entities' components are refreshed from the engine,
/// and whether writes to them are looked for.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EntityMirror {
    /// After every tick (the viewer and tests: entities always show the
    /// state); with a GPU engine, whenever a copy of its state arrives
    /// (see [`crate::sim::follow_gpu_state`]). A write to a component
    /// before a tick is a write to the state.
    #[default]
    EveryTick,
    /// Only when [`refresh_entities`] is called (headless runs and renders,
    /// where no system reads or writes the entities). Writes to the
    /// components are not looked for either: that look is a pass over
    /// every oscillator's change ticks before each tick (2.5 ms at
    /// 1024 × 1024, a fifth of a tick of a recorded run).
    OnRequest,
}

/// How a scene is turned into a running simulation.
#[derive(Resource, Debug, Clone, Copy)]
pub struct SimSettings {
    /// Fixed ticks per unit of model time.
    pub ticks_per_unit: f64,
    /// CPU engine threads and SIMD level.
    pub engine: EngineOptions,
    /// Which engine, in which precision.
    pub backend: BackendRequest,
}

/// Builds the engine for `scene`, spawns one entity per oscillator (replacing
/// any earlier lattice) and resets the clock to t = 0. The GPU, where one is
/// used, is opened once and kept in [`GpuDevice`].
pub fn load_scene(
    world: &mut World,
    scene: FieldScene,
    settings: SimSettings,
) -> Result<(), String> {
    let known = world.get_resource::<GpuDevice>().map(|d| d.context.clone());
    let mut gpu = known.clone();
    let engine = FieldEngine::build(&scene, settings.backend, settings.engine, &mut gpu)?;
    if let (None, Some(context)) = (known, gpu) {
        world.insert_resource(GpuDevice {
            context,
            renderer_shares_it: false,
        });
    }
    world.insert_resource(settings);
    install_engine(world, scene, engine, settings.ticks_per_unit);
    Ok(())
}

/// As [`load_scene`], with an engine the caller has already built.
pub fn install_engine(
    world: &mut World,
    scene: FieldScene,
    engine: FieldEngine,
    ticks_per_unit: f64,
) {
    let old: Vec<Entity> = world
        .query_filtered::<Entity, With<GridPosition>>()
        .iter(world)
        .collect();
    for entity in old {
        world.despawn(entity);
    }
    let mut engine = engine;
    if let FieldEngine::Gpu(gpu) = &mut engine
        && world.get_resource::<EntityMirror>() == Some(&EntityMirror::EveryTick)
    {
        let threshold = world
            .get_resource::<super::probes::ActivationTimes>()
            .map_or(eifield_model::analysis::DEFAULT_THRESHOLD, |a| a.threshold);
        gpu.follow_live(threshold);
    }
    let grid = engine.view().grid;
    let clock = SimClock {
        ticks: 0,
        ticks_per_unit,
    };
    world
        .resource_mut::<Time<Fixed>>()
        .set_timestep(clock.timestep());
    // The resources first: a resource is an entity too, and one created
    // after the oscillators would get an index past theirs, which costs
    // 4 bytes per oscillator in its storage's index.
    world.insert_resource(clock);
    world.insert_resource(Neighbours::new(grid));
    world.insert_resource(ActiveScene(scene));
    // The engine is the scene's as inserted now; the tick moves on, so that
    // an edit made before anything runs counts as a change after it.
    let mut lattice = Lattice::new(engine);
    lattice.scene_tick = Some(world.change_tick());
    world.insert_resource(lattice);
    world.insert_resource(SimStatus::Running);
    world.increment_change_tick();
    world.resource_scope(|world, lattice: Mut<Lattice>| {
        let state = lattice.state();
        spawn_oscillators(world, state.e, state.i);
    });
}

/// Entity records left free past a lattice's, for the entities spawned
/// after it (a resource, a window, the viewer's camera …).
const SPARE_ENTITIES: usize = 4096;

/// Spawns one oscillator entity per cell of the state `e`, `i` (row-major),
/// holding its values.
///
/// Bevy's table of entity records grows to twice its length whenever an
/// index passes its end, and fills the whole of it: spawned one after the
/// other, a lattice of 2^k cells (plus the world's few other entities)
/// would leave it half unused, 24 bytes per oscillator. Here the records
/// are sized once, for the lattice and [`SPARE_ENTITIES`] more, by spawning
/// (and despawning) the last of them first; the spare ones are handed back
/// to Bevy's allocator for the entities that come later.
pub fn spawn_oscillators(world: &mut World, e: &[f64], i: &[f64]) {
    let cells = e.len().min(i.len());
    if cells == 0 {
        return;
    }
    let ids: Vec<Entity> = world
        .entity_allocator()
        .alloc_many((cells + SPARE_ENTITIES) as u32)
        .collect();
    let (oscillators, spare) = ids.split_at(cells);
    if let Some((&last, rest)) = spare.split_last() {
        if world.spawn_empty_at(last).is_ok() {
            world.despawn(last);
        }
        world.entity_allocator_mut().free_many(rest);
    }
    for (index, &id) in oscillators.iter().enumerate() {
        let oscillator = (
            GridPosition::of(index),
            Excitatory(e[index]),
            Inhibitory(i[index]),
        );
        if let Err(e) = world.spawn_at(id, oscillator) {
            unreachable!("a freshly allocated entity is free to spawn: {e}");
        }
    }
}

/// Copies the engine's state into the oscillator entities now (whatever the
/// [`EntityMirror`] setting), without marking them as changed.
pub fn refresh_entities(world: &mut World) {
    if !world.contains_resource::<Lattice>() {
        return;
    }
    world.resource_scope(|world, mut lattice: Mut<Lattice>| {
        if let Err(e) = lattice.sync() {
            error!("cannot read the lattice back from the GPU: {e}");
        }
        let mut cells = world.query::<(&GridPosition, &mut Excitatory, &mut Inhibitory)>();
        mirror_cell_states(lattice.state(), cells.par_iter_mut(world));
    });
}

/// Writes `state` into the entities' components, bypassing change detection
/// so that the mirror is not mistaken for a write to the state.
pub(crate) fn mirror_cell_states(
    state: FieldState<'_>,
    cells: bevy::ecs::query::QueryParIter<
        '_,
        '_,
        (&GridPosition, &mut Excitatory, &mut Inhibitory),
        (),
    >,
) {
    cells.for_each(|(pos, mut e, mut i)| {
        e.bypass_change_detection().0 = state.e[pos.cell()];
        i.bypass_change_detection().0 = state.i[pos.cell()];
    });
}
