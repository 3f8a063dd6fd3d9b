//! Sessions: the log of every change made to the running simulation (in the
//! viewer) and the replay of a scene's `events` (in headless runs and the
//! viewer), each at the tick where the change takes effect, so that a session
//! saved in the viewer replays bit for bit.
//!
//! What is logged, and where:
//! - parameter edits (the panel, a script, the stimulator tool): the active
//!   scene is compared with the last logged one at the end of every frame and
//!   before every tick, so two edits made in two frames between the same
//!   ticks are logged as two changes, as they were made;
//! - perturbations: when the stimulus system registers them;
//! - resets: when the controls rebuild the lattice;
//! - loading another scene starts a new session.
//!
//! Writes to the oscillators' components are not logged (no control of the
//! viewer makes them).

use std::collections::VecDeque;
use std::path::Path;

use bevy::prelude::*;
use eifield_model::FieldScene;
use eifield_model::scene::{Change, Event, Events, TimedChange, changes_between};

use super::backend::FieldEngine;

use super::stimulus::{Perturb, register_perturbation};
use super::{ActiveScene, Lattice, SimClock, SimSettings, SimSystems, install_engine, load_scene};

/// The running session: its tick count, its log and the events still to replay.
#[derive(Resource, Debug, Default)]
pub struct Session {
    /// Ticks integrated since the session started (a reset does not restart it).
    pub tick: u64,
    /// Ticks per unit of model time.
    pub ticks_per_unit: f64,
    /// The scene as it was loaded, without its events.
    base: Option<FieldScene>,
    /// Changes that took effect, in order (when logging).
    log: Vec<TimedChange>,
    /// Events of the loaded scene still to replay.
    pending: VecDeque<TimedChange>,
    /// Whether changes are logged (the viewer).
    logging: bool,
    /// The active scene as last logged.
    logged: Option<FieldScene>,
}

impl Session {
    /// Logs a change taking effect before the next tick (when logging).
    pub fn log(&mut self, change: Change) {
        if self.logging {
            self.log.push(TimedChange {
                tick: self.tick,
                change,
            });
        }
    }

    /// Changes logged so far.
    pub fn logged_changes(&self) -> &[TimedChange] {
        &self.log
    }

    /// Events of the loaded scene not replayed yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether a reset is due before the next tick (a replay goes on after
    /// a blow-up when the session reset the lattice there).
    pub fn reset_due(&self) -> bool {
        self.pending
            .iter()
            .take_while(|e| e.tick == self.tick)
            .any(|e| e.change == Change::Reset)
    }

    /// Compares the active scene with the last logged one and logs the
    /// difference (when logging).
    fn log_edits(&mut self, scene: &FieldScene) {
        if !self.logging {
            return;
        }
        let Some(logged) = &self.logged else {
            self.logged = Some(scene.clone());
            return;
        };
        if logged == scene {
            return;
        }
        for change in changes_between(logged, scene) {
            self.log(change);
        }
        self.logged = Some(scene.clone());
    }

    /// The session as a scene: the scene as loaded, with every change logged
    /// (and any not yet replayed) as its events, and a replay as long as the
    /// session has run, up to a recorded sample.
    pub fn to_scene(&self) -> Option<FieldScene> {
        let mut scene = self.base.clone()?;
        let rate = self.ticks_per_unit;
        let per_sample = rate / scene.run.sample_rate;
        if (per_sample - per_sample.round()).abs() > 1e-9 || per_sample < 1.0 {
            scene.run.sample_rate = rate;
        }
        let per_sample = (rate / scene.run.sample_rate).round() as u64;
        let last = self.pending.back().map_or(0, |e| e.tick).max(self.tick);
        let samples = last.div_ceil(per_sample);
        scene.events = Some(Events {
            ticks_per_unit: Some(rate),
            duration: Some((samples * per_sample) as f64 / rate),
            list: self
                .log
                .iter()
                .chain(&self.pending)
                .map(|e| Event {
                    tick: Some(e.tick),
                    time: None,
                    change: e.change.clone(),
                })
                .collect(),
        });
        Some(scene)
    }
}

/// Starts a session on `scene` (already loaded into the world) ticking
/// `ticks_per_unit` times per unit of model time: its events become the
/// replay, the tick count starts at 0, and with `logging` every change from
/// now on is logged.
pub fn begin_session(
    world: &mut World,
    scene: &FieldScene,
    ticks_per_unit: f64,
    logging: bool,
) -> Result<(), String> {
    let pending = match &scene.events {
        Some(events) => {
            let own = events.tick_rate(scene.run.sample_rate);
            let mut list = events.resolve(scene).map_err(|e| e.to_string())?;
            if own != ticks_per_unit {
                // Another tick length (a render's frames): each event must
                // still fall on a tick.
                for (k, event) in list.iter_mut().enumerate() {
                    let ticks = event.tick as f64 / own * ticks_per_unit;
                    if (ticks - ticks.round()).abs() > 1e-6 {
                        return Err(format!(
                            "invalid value for `events.list[{k}]`: at t = {} it falls between two ticks of {} per unit of time; \
                             choose a time per frame that divides the events' times",
                            event.tick as f64 / own,
                            ticks_per_unit
                        ));
                    }
                    event.tick = ticks.round() as u64;
                }
            }
            list
        }
        None => Vec::new(),
    };
    let mut base = scene.clone();
    base.events = None;
    world.insert_resource(Session {
        tick: 0,
        ticks_per_unit,
        logged: Some(live_scene(world).unwrap_or_else(|| base.clone())),
        base: Some(base),
        log: Vec::new(),
        pending: pending.into(),
        logging,
    });
    Ok(())
}

/// Installs an engine already built from `scene` (headless runs and
/// renders): the active scene is `active` (the scene as the run records it)
/// without its events, the settings let a replayed reset rebuild the lattice,
/// and a session without logging replays `scene`'s events.
pub fn install_replay(
    world: &mut World,
    scene: &FieldScene,
    active: FieldScene,
    engine: FieldEngine,
    settings: SimSettings,
) -> Result<(), String> {
    let mut active = active;
    active.events = None;
    world.insert_resource(settings);
    install_engine(world, active, engine, settings.ticks_per_unit);
    begin_session(world, scene, settings.ticks_per_unit, false)
}

fn live_scene(world: &World) -> Option<FieldScene> {
    world.get_resource::<ActiveScene>().map(|s| s.0.clone())
}

/// Writes the session as a scene file, after checking that it loads again;
/// refuses to replace a file unless `overwrite`.
pub fn save_session(world: &World, path: &Path, overwrite: bool) -> Result<String, String> {
    if path.exists() && !overwrite {
        return Err(format!(
            "{} exists; tick “overwrite” to replace it",
            path.display()
        ));
    }
    let (text, summary) = session_text(world)?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "saved the session ({summary}) to {}",
        path.display()
    ))
}

/// The session as a scene file's text, checked to load again, and what it
/// holds in words (`3 events, 1200 ticks`).
pub fn session_text(world: &World) -> Result<(String, String), String> {
    let session = world.resource::<Session>();
    let scene = session.to_scene().ok_or("no session has started")?;
    let text = scene.to_ron_string();
    FieldScene::from_ron_str(&text, "the session")
        .map_err(|e| format!("not saved: the session would not load again: {e}"))?;
    let events = scene.events.as_ref().map_or(0, |e| e.list.len());
    Ok((text, format!("{events} events, {} ticks", session.tick)))
}

/// Logs a reset of the lattice (after the edits not logged yet).
pub fn log_reset(world: &mut World) {
    let scene = live_scene(world);
    let mut session = world.resource_mut::<Session>();
    if let Some(scene) = scene {
        session.log_edits(&scene);
    }
    session.log(Change::Reset);
}

/// Adds the session, its replay before each tick and its log of edits.
pub struct SessionPlugin;

impl Plugin for SessionPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Session>()
            .add_systems(FixedUpdate, replay_events.in_set(SimSystems::Events))
            .add_systems(Last, log_frame_edits);
    }
}

/// Logs the edits made in this frame.
fn log_frame_edits(mut session: ResMut<Session>, scene: Option<Res<ActiveScene>>) {
    if let Some(scene) = scene
        && session.logging
        && scene.is_changed()
    {
        session.log_edits(&scene.0);
    }
}

/// Before a tick: logs the edits not logged yet, then applies the events
/// due at this tick in their order, logging them as they take effect.
fn replay_events(world: &mut World) {
    if let Some(scene) = live_scene(world).filter(|_| world.resource::<Session>().logging) {
        world.resource_mut::<Session>().log_edits(&scene);
    }
    loop {
        let mut session = world.resource_mut::<Session>();
        let tick = session.tick;
        let Some(event) = session.pending.front().filter(|e| e.tick <= tick).cloned() else {
            return;
        };
        session.pending.pop_front();
        apply_event(world, &event.change);
        let scene = live_scene(world);
        let mut session = world.resource_mut::<Session>();
        session.log(event.change);
        if let Some(scene) = scene {
            session.logged = Some(scene);
        }
    }
}

fn apply_event(world: &mut World, change: &Change) {
    match change {
        Change::Perturb {
            row,
            col,
            amount,
            duration,
        } => {
            let now = world.get_resource::<SimClock>().map_or(0.0, |c| c.time());
            let perturb = Perturb {
                row: *row,
                col: *col,
                amount: *amount,
                duration: *duration,
            };
            if let Some(mut lattice) = world.get_resource_mut::<Lattice>()
                && let Err(message) = register_perturbation(lattice.engine_mut(), now, &perturb)
            {
                warn!("session: ignored a perturbation: {message}");
            }
        }
        Change::Reset => {
            let (Some(scene), Some(settings)) = (
                live_scene(world),
                world.get_resource::<SimSettings>().copied(),
            ) else {
                return;
            };
            if let Err(e) = load_scene(world, scene, settings) {
                error!("session: the reset failed: {e}");
            }
        }
        change => {
            if let Some(mut scene) = world.get_resource_mut::<ActiveScene>()
                && let Err(e) = change.apply(&mut scene.0)
            {
                error!("session: {e}");
            }
        }
    }
}
