//! Session events: the changes made to a running scene (perturbations,
//! stimulators added or removed, parameter edits, resets), each at the tick
//! where it took effect, so that a viewer session replays bit for bit.
//!
//! Ticks count from the start of the session; a `Reset` sets the model time
//! back to 0 but not the session's tick count.

use serde::{Deserialize, Serialize};

use super::*;

/// The optional `events` section of a scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// Fixed ticks per unit of model time that the session was integrated
    /// with; a replay integrates tick by tick at this rate. When left out,
    /// one tick per recorded sample (`run.sample_rate`).
    #[serde(default)]
    pub ticks_per_unit: Option<f64>,
    /// Model time a replay runs for: the session's length. When left out,
    /// `run.duration`. (`run.duration` stays the loaded scene's, since it
    /// sets the length of the pink noise's blocks, and so its values.)
    #[serde(default)]
    pub duration: Option<f64>,
    /// The changes, in the order in which they took effect.
    pub list: Vec<Event>,
}

/// One change and when it took effect: just before the tick numbered
/// `tick`, or at the session time `time` (which must fall on a tick).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Ticks integrated since the session started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<u64>,
    /// Session time (ticks / ticks per unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// What changed.
    pub change: Change,
}

/// A change to a running simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Change {
    /// A click: `amount` added to the cell's excitatory drive for `duration`.
    Perturb {
        /// Target row.
        row: usize,
        /// Target column.
        col: usize,
        /// Added drive.
        amount: f64,
        /// How long it lasts.
        duration: f64,
    },
    /// A scalar parameter set by its name ([`FieldScene::set_param`]).
    Set {
        /// Parameter name, e.g. `coupling.frac_ee` or `stimuli[1].freq`.
        param: String,
        /// The new value.
        value: f64,
    },
    /// A pulse train added at the end of the stimulus list.
    AddStimulus(Stimulus),
    /// The stimulus at this index of the list removed.
    RemoveStimulus(usize),
    /// The whole stimulus list replaced.
    Stimuli(Vec<Stimulus>),
    /// The noise replaced (switched on or off, or a new seed).
    Noise(Noise),
    /// The integration method (and step) replaced.
    Integrator(IntegratorSpec),
    /// Every live parameter replaced at once (changes no other event describes).
    Parameters(Box<FieldScene>),
    /// The lattice rebuilt from its initial state with the parameters in
    /// effect; the model time restarts at 0.
    Reset,
}

/// The largest distance of `time × ticks per unit` from a whole number for
/// the time to count as falling on a tick.
const TICK_TOLERANCE: f64 = 1e-6;

impl Change {
    /// Whether the change is to the scene's parameters (rather than a
    /// perturbation or a reset).
    pub fn is_scene_edit(&self) -> bool {
        !matches!(self, Change::Perturb { .. } | Change::Reset)
    }

    /// Applies a parameter change to `scene` (perturbations and resets leave
    /// it as it is).
    pub fn apply(&self, scene: &mut FieldScene) -> Result<(), InvalidField> {
        let field = |message: String| InvalidField {
            field: "change".into(),
            message,
        };
        match self {
            Change::Perturb { .. } | Change::Reset => {}
            Change::Set { param, value } => scene.set_param(param, *value)?,
            Change::AddStimulus(s) => {
                let mut list = scene.effective_stimuli();
                list.push(s.clone());
                scene.stimuli = Some(list);
            }
            Change::RemoveStimulus(k) => {
                let mut list = scene.effective_stimuli();
                if *k >= list.len() {
                    return Err(field(format!(
                        "RemoveStimulus({k}): the scene has {} stimuli then",
                        list.len()
                    )));
                }
                list.remove(*k);
                scene.stimuli = Some(list);
            }
            Change::Stimuli(list) => scene.stimuli = Some(list.clone()),
            Change::Noise(noise) => scene.noise = noise.clone(),
            Change::Integrator(spec) => scene.integrator = *spec,
            Change::Parameters(new) => {
                let keep = (scene.name.clone(), scene.view.take(), scene.events.take());
                *scene = (**new).clone();
                (scene.name, scene.view, scene.events) = keep;
            }
        }
        Ok(())
    }
}

/// The live parameters of a scene: what a change of parameters may touch.
fn live_part(scene: &FieldScene) -> FieldScene {
    FieldScene {
        name: String::new(),
        stimuli: Some(scene.effective_stimuli()),
        view: None,
        events: None,
        ..scene.clone()
    }
}

/// The changes that turn the live parameters of `old` into those of `new`:
/// `Set` for scalars, `AddStimulus`/`RemoveStimulus` for one stimulus more or
/// less, `Noise`/`Integrator` for a new kind, and `Parameters` when nothing
/// smaller describes the difference. Applying them to `old` in order gives
/// `new`'s live parameters bit for bit (the name, view and events aside).
pub fn changes_between(old: &FieldScene, new: &FieldScene) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut scratch = live_part(old);
    let target = live_part(new);
    if scratch == target {
        return changes;
    }
    let (before, after) = (
        scratch.stimuli.clone().unwrap_or_default(),
        target.stimuli.clone().unwrap_or_default(),
    );
    if after.len() == before.len() + 1 && after[..before.len()] == before[..] {
        changes.push(Change::AddStimulus(after[before.len()].clone()));
    } else if after.len() + 1 == before.len()
        && let Some(k) = (0..before.len()).find(|&k| {
            let mut shorter = before.clone();
            shorter.remove(k);
            shorter == after
        })
    {
        changes.push(Change::RemoveStimulus(k));
    }
    if std::mem::discriminant(&scratch.noise) != std::mem::discriminant(&target.noise) {
        changes.push(Change::Noise(target.noise.clone()));
    }
    if std::mem::discriminant(&scratch.integrator) != std::mem::discriminant(&target.integrator) {
        changes.push(Change::Integrator(target.integrator));
    }
    for change in &changes {
        let _ = change.apply(&mut scratch);
    }
    for name in target.param_names() {
        let Ok(value) = target.param(&name) else {
            continue;
        };
        if scratch
            .param(&name)
            .is_ok_and(|v| v.to_bits() != value.to_bits())
        {
            let change = Change::Set { param: name, value };
            let _ = change.apply(&mut scratch);
            changes.push(change);
        }
    }
    if scratch != target {
        return vec![Change::Parameters(Box::new(target))];
    }
    changes
}

/// An event resolved to its tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedChange {
    /// The tick before which it takes effect.
    pub tick: u64,
    /// What changes.
    pub change: Change,
}

impl Events {
    /// The run spec a replay follows: the session's length, if given.
    pub fn run(&self, run: &RunSpec) -> RunSpec {
        RunSpec {
            duration: self.duration.unwrap_or(run.duration),
            ..*run
        }
    }

    /// Ticks per unit of model time for a scene whose run samples at
    /// `sample_rate`.
    pub fn tick_rate(&self, sample_rate: f64) -> f64 {
        self.ticks_per_unit.unwrap_or(sample_rate)
    }

    /// The events with their ticks, checked: each has a tick or a time (not
    /// both), times fall on ticks, no event comes before the previous one,
    /// perturbations aim inside the grid, and every parameter change applies
    /// to the scene as the earlier events left it and gives a valid scene.
    /// Errors name the event (`events.list[K]`).
    pub fn resolve(&self, scene: &FieldScene) -> Result<Vec<TimedChange>, InvalidField> {
        let rate = self.tick_rate(scene.run.sample_rate);
        let mut out: Vec<TimedChange> = Vec::with_capacity(self.list.len());
        let mut edited: Option<FieldScene> = None;
        for (k, event) in self.list.iter().enumerate() {
            let at = |f: &str| {
                if f.is_empty() {
                    format!("events.list[{k}]")
                } else {
                    format!("events.list[{k}].{f}")
                }
            };
            let fail = |f: &str, message: String| InvalidField {
                field: at(f),
                message,
            };
            let tick = match (event.tick, event.time) {
                (Some(tick), None) => tick,
                (None, Some(time)) => {
                    let ticks = time * rate;
                    if !(0.0..=MAX_TIME * MAX_RATE).contains(&ticks)
                        || (ticks - ticks.round()).abs() > TICK_TOLERANCE
                    {
                        return Err(fail(
                            "time",
                            format!(
                                "must be ≥ 0 and fall on a tick ({rate} ticks per unit of time; got {time})"
                            ),
                        ));
                    }
                    ticks.round() as u64
                }
                _ => {
                    return Err(fail(
                        "",
                        "give either `tick` or `time` (one of them)".into(),
                    ));
                }
            };
            if let Some(previous) = out.last()
                && tick < previous.tick
            {
                return Err(fail(
                    if event.tick.is_some() { "tick" } else { "time" },
                    format!(
                        "comes before the previous event (tick {tick} < {}); events must be in the order they took effect",
                        previous.tick
                    ),
                ));
            }
            match &event.change {
                Change::Perturb {
                    row,
                    col,
                    amount,
                    duration,
                } => {
                    let grid = scene.grid;
                    if *row >= grid.rows || *col >= grid.cols {
                        return Err(fail(
                            "change",
                            format!(
                                "Perturb: cell ({row}, {col}) is outside the {} × {} grid",
                                grid.rows, grid.cols
                            ),
                        ));
                    }
                    if amount.is_nan() || amount.abs() > MAX_MAGNITUDE {
                        return Err(fail(
                            "change.amount",
                            format!(
                                "must be a finite number of magnitude ≤ {MAX_MAGNITUDE:e} (got {amount})"
                            ),
                        ));
                    }
                    if !(*duration > 0.0 && *duration <= MAX_TIME) {
                        return Err(fail(
                            "change.duration",
                            format!("must be > 0 and ≤ {MAX_TIME:e} (got {duration})"),
                        ));
                    }
                }
                Change::Reset => {}
                change => {
                    let current = edited.get_or_insert_with(|| live_part(scene));
                    change
                        .apply(current)
                        .map_err(|e| fail("change", format!("{}: {}", e.field, e.message)))?;
                    current
                        .validate()
                        .map_err(|e| fail("change", format!("gives an invalid scene: {e}")))?;
                    if (current.grid.rows, current.grid.cols) != (scene.grid.rows, scene.grid.cols)
                    {
                        return Err(fail("change", "cannot change the grid's shape".into()));
                    }
                }
            }
            out.push(TimedChange {
                tick,
                change: event.change.clone(),
            });
        }
        Ok(out)
    }

    /// Checks the section against its scene (see [`Events::resolve`]), and
    /// that recorded samples fall on ticks.
    pub(super) fn check(&self, scene: &FieldScene, v: &mut Validator) {
        if let Some(duration) = self.duration {
            v.within("events.duration", duration, 0.0, MAX_TIME, true);
            v.check(
                duration * scene.run.sample_rate <= MAX_SAMPLES,
                "events.duration",
                || format!("duration × run.sample_rate = {:e} samples is more than the supported {MAX_SAMPLES:e}", duration * scene.run.sample_rate),
            );
        }
        if let Some(rate) = self.ticks_per_unit {
            v.within("events.ticks_per_unit", rate, MIN_RATE, MAX_RATE, true);
            let per_sample = rate / scene.run.sample_rate;
            v.check(
                (per_sample - per_sample.round()).abs() <= TICK_TOLERANCE && per_sample >= 0.5,
                "run.sample_rate",
                || {
                    format!(
                        "samples must fall on the session's ticks: {rate} ticks per unit of time is not a whole multiple of the sample rate {}",
                        scene.run.sample_rate
                    )
                },
            );
        }
        if let Err(e) = self.resolve(scene) {
            v.check(false, &e.field, || e.message);
        }
    }

    /// Recorded ticks per sample (a whole number for a valid scene).
    pub fn ticks_per_sample(&self, sample_rate: f64) -> u64 {
        (self.tick_rate(sample_rate) / sample_rate).round().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> FieldScene {
        FieldScene {
            grid: Grid::new(8, 6, crate::grid::Boundary::Open),
            ..FieldScene::default()
        }
    }

    #[test]
    fn changes_between_scenes_replay_to_the_same_parameters() {
        let old = base();
        let mut new = old.clone();
        new.coupling.frac_ee = 0.31;
        new.drive.h_ex = -6.1;
        let mut list = new.effective_stimuli();
        list.push(Stimulus::PulseTrain {
            row: 1,
            col: 2,
            freq: 0.5,
            width: 1.0,
            amp: 3.0,
            onset: 0.0,
            count: Some(2),
        });
        new.stimuli = Some(list);
        new.noise = Noise::Pink {
            sigma: 0.1,
            seed: 3,
            sample_rate: 50.0,
        };
        new.integrator = IntegratorSpec::Heun { dt: 0.01 };
        let changes = changes_between(&old, &new);
        assert!(
            !changes.iter().any(|c| matches!(c, Change::Parameters(_))),
            "{changes:?}"
        );
        assert!(changes.contains(&Change::Set {
            param: "coupling.frac_ee".into(),
            value: 0.31
        }));
        let mut replayed = old.clone();
        for c in &changes {
            c.apply(&mut replayed).unwrap();
        }
        assert_eq!(live_part(&replayed), live_part(&new));
        // One stimulus removed from the middle.
        let mut fewer = new.clone();
        fewer.stimuli.as_mut().unwrap().remove(0);
        assert_eq!(
            changes_between(&new, &fewer),
            vec![Change::RemoveStimulus(0)]
        );
        // A change no smaller event describes.
        let mut other = new.clone();
        other.initial = Initial::Rest;
        assert!(matches!(
            changes_between(&new, &other)[..],
            [Change::Parameters(_)]
        ));
        assert!(changes_between(&new, &new.clone()).is_empty());
    }

    fn with_events(list: Vec<Event>) -> FieldScene {
        FieldScene {
            events: Some(Events {
                ticks_per_unit: Some(100.0),
                duration: None,
                list,
            }),
            ..base()
        }
    }

    fn at_tick(tick: u64, change: Change) -> Event {
        Event {
            tick: Some(tick),
            time: None,
            change,
        }
    }

    #[test]
    fn bad_events_are_named_by_their_index() {
        let perturb = |row| Change::Perturb {
            row,
            col: 0,
            amount: 1.0,
            duration: 0.5,
        };
        let ok = with_events(vec![
            at_tick(3, perturb(1)),
            Event {
                tick: None,
                time: Some(0.05),
                change: Change::RemoveStimulus(0),
            },
        ]);
        ok.validate().unwrap();
        assert_eq!(ok.events.as_ref().unwrap().resolve(&ok).unwrap()[1].tick, 5);

        let outside = with_events(vec![at_tick(3, perturb(1)), at_tick(4, perturb(8))]);
        let e = outside.validate().unwrap_err();
        assert_eq!(e.field, "events.list[1].change");
        assert!(e.message.contains("outside"), "{}", e.message);

        let backwards = with_events(vec![at_tick(3, perturb(1)), at_tick(2, perturb(1))]);
        let e = backwards.validate().unwrap_err();
        assert_eq!(e.field, "events.list[1].tick");

        let off_tick = with_events(vec![Event {
            tick: None,
            time: Some(0.0125),
            change: Change::Reset,
        }]);
        assert_eq!(
            off_tick.validate().unwrap_err().field,
            "events.list[0].time"
        );

        let gone = with_events(vec![
            at_tick(1, Change::RemoveStimulus(0)),
            at_tick(2, Change::RemoveStimulus(0)),
        ]);
        assert_eq!(gone.validate().unwrap_err().field, "events.list[1].change");

        let unknown = with_events(vec![at_tick(
            1,
            Change::Set {
                param: "coupling.nope".into(),
                value: 1.0,
            },
        )]);
        let e = unknown.validate().unwrap_err();
        assert_eq!(e.field, "events.list[0].change");
        assert!(
            e.message.starts_with("coupling.nope: unknown parameter"),
            "{}",
            e.message
        );

        let mut samples_between_ticks = ok.clone();
        samples_between_ticks.run.sample_rate = 30.0;
        assert_eq!(
            samples_between_ticks.validate().unwrap_err().field,
            "run.sample_rate"
        );
    }

    #[test]
    fn a_session_round_trips_through_ron() {
        let scene = with_events(vec![
            at_tick(
                2,
                Change::Set {
                    param: "stimuli[0].freq".into(),
                    value: 0.25,
                },
            ),
            at_tick(7, Change::Reset),
        ]);
        let text = scene.to_ron_string();
        let back = FieldScene::from_ron_str(&text, "session").unwrap();
        assert_eq!(back, scene);
    }
}
