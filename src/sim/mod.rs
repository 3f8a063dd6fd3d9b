//! The simulation: oscillator entities over one engine that owns the state,
//! integrated in `FixedUpdate` by chained systems.
//!
//! One owner, one direction of flow (in the manner of a physics solver that
//! copies bodies in, steps and writes back):
//!
//! ```text
//!  writes in                    owner                         reads out
//!  ─────────                    ─────                         ─────────
//!  SimSystems::Edits            Lattice (the engine:          Lattice::state():
//!   scene edits (ActiveScene) ─▶ E, I, drives, inputs)  ─────▶  surface, probes, raster,
//!   changed Excitatory/         SimSystems::Stimulus            picking, recorder,
//!   Inhibitory components ───▶   perturbations                  script, save
//!  SimSystems::Stimulus         SimSystems::Integrate          SimSystems::Writeback
//!   Perturb messages ────────▶   one tick, with the            ─▶ Excitatory/Inhibitory
//!                                Neighbours stencil              (a mirror, EntityMirror)
//! ```
//!
//! A write to an oscillator's component is a write to the state: the
//! `Edits` set copies changed components into the engine before the tick
//! (under [`EntityMirror::EveryTick`]; headless runs neither mirror nor
//! watch the entities).
//! The mirror writes bypass change detection, so they never come back in.
//! Readers never read the components; they read the engine's buffers, so the
//! per-tick copy into entities can be switched off ([`EntityMirror::OnRequest`])
//! where nothing needs it (headless runs). A GPU engine's state lives on the
//! GPU: the viewer follows it without waiting ([`follow_gpu_state`]), the
//! probes and the raster from the few cells they watch, tick by tick.
//!
//! | plugin | concern |
//! |---|---|
//! | [`SimPlugin`] | sets, clock, status, scene edits, component writes, integration, mirror |
//! | [`session::SessionPlugin`] | the session's tick count, the replay of a scene's events and the log of changes |
//! | [`stimulus::StimulusPlugin`] | [`stimulus::Perturb`] clicks into the engine's inputs |
//! | [`record::RecordPlugin`] | `.npy` recording of a headless run |
//! | [`probes::ProbesPlugin`] | probe time series and the raster |

pub mod backend;
pub mod lattice;
pub mod probes;
#[cfg(not(target_arch = "wasm32"))]
pub mod record;
pub mod session;
pub mod stimulus;

use bevy::app::PluginGroupBuilder;
use bevy::prelude::*;

pub use lattice::*;

/// The simulation's system sets, chained in this order in `FixedUpdate`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Replays a session's events due at this tick (and logs the edits made).
    Events,
    /// Applies live scene edits and writes to the oscillators' components.
    Edits,
    /// Turns perturbations into the engine's inputs.
    Stimulus,
    /// Advances the lattice by one tick of model time.
    Integrate,
    /// Mirrors the integrated state into the entities.
    Writeback,
    /// Reads the new state (recording, probes).
    Record,
}

/// Weight of the newest tick in [`TickCost`].
const TICK_COST_SMOOTHING: f64 = 0.2;

/// The simulation's plugins: what headless runs, offscreen renders and the
/// viewer all build on.
pub struct SimPlugins;

impl PluginGroup for SimPlugins {
    fn build(self) -> PluginGroupBuilder {
        let group = PluginGroupBuilder::start::<Self>()
            .add(SimPlugin)
            .add(session::SessionPlugin)
            .add(stimulus::StimulusPlugin);
        // Run folders are written by native builds only.
        #[cfg(not(target_arch = "wasm32"))]
        let group = group.add(record::RecordPlugin);
        group.add(probes::ProbesPlugin)
    }
}

/// Adds the simulation: sets, clock, status and the integration systems.
/// Call [`load_scene`] to build a lattice.
pub struct SimPlugin;

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SimStatus>()
            .init_resource::<TickCost>()
            .init_resource::<EntityMirror>()
            .configure_sets(
                FixedUpdate,
                (
                    SimSystems::Events,
                    SimSystems::Edits,
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
                    (
                        apply_scene_edits.run_if(resource_exists_and_changed::<ActiveScene>),
                        take_component_writes.run_if(resource_equals(EntityMirror::EveryTick)),
                    )
                        .chain()
                        .in_set(SimSystems::Edits),
                    integrate.in_set(SimSystems::Integrate),
                    write_back
                        .run_if(resource_equals(EntityMirror::EveryTick))
                        .in_set(SimSystems::Writeback),
                ),
            )
            .add_systems(
                RunFixedMainLoop,
                follow_gpu_state
                    .run_if(resource_equals(EntityMirror::EveryTick))
                    .in_set(RunFixedMainLoopSystems::AfterFixedMainLoop),
            );
    }
}

/// Applies the live-editable parts of the active scene to the engine: model
/// and coupling constants, drives, stimuli, noise and the integrator. A change
/// of grid shape or initial state needs [`load_scene`] instead; the boundary
/// the lattice is integrated with is the [`Neighbours`] resource's.
fn apply_scene_edits(
    scene: Res<ActiveScene>,
    lattice: Option<ResMut<Lattice>>,
    clock: Option<Res<SimClock>>,
) {
    let (Some(mut lattice), Some(clock)) = (lattice, clock) else {
        return;
    };
    if lattice.scene_tick == Some(scene.last_changed()) {
        return;
    }
    lattice.scene_tick = Some(scene.last_changed());
    let scene = &scene.0;
    let grid = lattice.state().grid;
    let same_shape = (scene.grid.rows, scene.grid.cols) == (grid.rows, grid.cols);
    if !same_shape || scene.validate().is_err() {
        return;
    }
    if let Err(message) = lattice.engine_mut().apply_scene(scene, clock.time()) {
        error!("{message}");
    }
}

/// Oscillators whose E or I something wrote since the last tick.
type WrittenCells = Or<(Changed<Excitatory>, Changed<Inhibitory>)>;

/// Copies oscillator components that something changed into the engine.
/// Oscillators spawned since the last tick hold the engine's own values
/// (a lattice just built), and are not written back.
fn take_component_writes(
    lattice: Option<ResMut<Lattice>>,
    cells: Query<(Ref<GridPosition>, &Excitatory, &Inhibitory), WrittenCells>,
) {
    let Some(mut lattice) = lattice else {
        return;
    };
    if cells.is_empty() {
        return;
    }
    let written: Vec<_> = cells
        .iter()
        .filter(|(pos, _, _)| !pos.is_added())
        .map(|(pos, e, i)| (pos.cell(), e.0, i.0))
        .collect();
    if written.is_empty() {
        return;
    }
    lattice.engine_mut().write_cells(&written);
}

/// Integrates one tick with the [`Neighbours`] stencil, and stops the clock
/// on a blow-up.
fn integrate(
    lattice: Option<ResMut<Lattice>>,
    clock: Option<ResMut<SimClock>>,
    neighbours: Option<Res<Neighbours>>,
    mut status: ResMut<SimStatus>,
    mut cost: ResMut<TickCost>,
    mut session: ResMut<session::Session>,
) {
    let (Some(mut lattice), Some(mut clock), Some(neighbours)) = (lattice, clock, neighbours)
    else {
        return;
    };
    if *status != SimStatus::Running {
        return;
    }
    let started = bevy::platform::time::Instant::now();
    let engine = lattice.engine_mut();
    if engine.view().grid != neighbours.grid() && !engine.set_stencil(neighbours.grid()) {
        error!("the neighbour stencil does not match the lattice's shape; not integrating");
        return;
    }
    match engine.advance_to(clock.next_time()) {
        Ok(()) => {
            clock.ticks += 1;
            session.tick += 1;
        }
        Err(backend::EngineStop::BlowUp(blow_up)) => *status = SimStatus::BlownUp(blow_up),
        Err(backend::EngineStop::Failed(message)) => {
            error!("{message}");
            *status = SimStatus::Failed(message);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    cost.seconds = if cost.seconds == 0.0 {
        seconds
    } else {
        (1.0 - TICK_COST_SMOOTHING) * cost.seconds + TICK_COST_SMOOTHING * seconds
    };
}

/// Lattice cells copied back from a GPU per frame at most: larger lattices
/// are copied every `cells / GPU_SYNC_CELLS_PER_FRAME` frames (rounded up).
pub const GPU_SYNC_CELLS_PER_FRAME: usize = 1 << 20;

/// Mirrors the CPU engine's state into the entities after every tick (after
/// a blow-up too: there is one state, and the entities show it). A GPU
/// engine's state is mirrored by [`follow_gpu_state`] instead.
fn write_back(
    lattice: Option<Res<Lattice>>,
    mut cells: Query<(&GridPosition, &mut Excitatory, &mut Inhibitory)>,
) {
    let Some(lattice) = lattice else {
        return;
    };
    if matches!(lattice.engine(), backend::FieldEngine::Gpu(_)) {
        return;
    }
    mirror_cell_states(lattice.state(), cells.par_iter_mut());
}

/// Under [`EntityMirror::EveryTick`] (the viewer), a GPU engine is followed
/// without waiting for it (see [`backend::GpuLattice::end_frame`]): at the
/// end of each frame this sends the frame's ticks of the followed cells
/// and a non-finite check, starts a whole-state copy once per frame (for
/// lattices over [`GPU_SYNC_CELLS_PER_FRAME`] cells, once every few
/// frames), and collects what has arrived, typically a frame later. A copy
/// that arrives becomes what [`Lattice::state`] shows and is mirrored into
/// the entities; a non-finite state stops the clock.
pub(crate) fn follow_gpu_state(
    lattice: Option<ResMut<Lattice>>,
    mut status: ResMut<SimStatus>,
    mut cells: Query<(&GridPosition, &mut Excitatory, &mut Inhibitory)>,
) {
    let Some(mut lattice) = lattice else {
        return;
    };
    let every = lattice
        .state()
        .grid
        .len()
        .div_ceil(GPU_SYNC_CELLS_PER_FRAME)
        .max(1);
    let backend::FieldEngine::Gpu(gpu) = lattice.engine_mut() else {
        return;
    };
    match gpu.end_frame(every) {
        Ok(true) => mirror_cell_states(lattice.state(), cells.par_iter_mut()),
        Ok(false) => {}
        Err(stop) if *status == SimStatus::Running => {
            *status = match stop {
                backend::EngineStop::BlowUp(blow_up) => SimStatus::BlownUp(blow_up),
                backend::EngineStop::Failed(message) => {
                    error!("{message}");
                    SimStatus::Failed(message)
                }
            };
        }
        Err(_) => {}
    }
}
