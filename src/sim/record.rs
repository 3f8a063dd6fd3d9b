//! The recording plugin: appends the lattice state to `E.npy`, `I.npy` and
//! `t.npy` at every sample instant, flushing so that the files stay loadable.

use std::path::Path;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use eifield_model::Precision;
use eifield_model::npy::{NpyError, NpyWriter};

use crate::sim::session::Session;
use crate::sim::{Lattice, SimSystems};

/// Longest time buffered samples wait before they are flushed to disk.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Open recording of one run.
#[derive(Resource)]
pub struct Recorder {
    e: NpyWriter,
    i: NpyWriter,
    t: NpyWriter,
    /// Record every this many ticks.
    ticks_per_sample: u64,
    /// Samples per unit of model time (for the times in `t.npy`).
    sample_rate: f64,
    /// The tick of the next sample.
    next_tick: u64,
    /// Stop after this many samples.
    max_samples: u64,
    last_flush: Instant,
    /// The first write error, if any; recording stops there.
    pub error: Option<String>,
}

impl Recorder {
    /// Creates the three arrays in `dir` for a lattice of `cells` cells, E
    /// and I in the engine's `precision` (the times in f64).
    pub fn create(
        dir: &Path,
        cells: usize,
        precision: Precision,
        ticks_per_sample: u64,
        sample_rate: f64,
        max_samples: u64,
    ) -> Result<Self, NpyError> {
        Ok(Self {
            e: NpyWriter::create_with(&dir.join("E.npy"), Some(cells), precision)?,
            i: NpyWriter::create_with(&dir.join("I.npy"), Some(cells), precision)?,
            t: NpyWriter::create(&dir.join("t.npy"), None)?,
            ticks_per_sample: ticks_per_sample.max(1),
            sample_rate,
            next_tick: 0,
            max_samples,
            last_flush: Instant::now(),
            error: None,
        })
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.t.rows()
    }

    /// Writes every buffered sample and updates the headers.
    pub fn flush(&mut self) -> Result<(), NpyError> {
        self.e.flush()?;
        self.i.flush()?;
        self.t.flush()?;
        self.last_flush = Instant::now();
        Ok(())
    }

    fn append(&mut self, e: &[f64], i: &[f64]) -> Result<(), NpyError> {
        let n = self.t.rows();
        self.e.append(e)?;
        self.i.append(i)?;
        self.t.append(&[n as f64 / self.sample_rate])?;
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }
}

/// Adds the recording system; insert a [`Recorder`] to start recording.
pub struct RecordPlugin;

impl Plugin for RecordPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(PostStartup, record_sample)
            .add_systems(FixedUpdate, record_sample.in_set(SimSystems::Record));
    }
}

/// Appends the lattice state when the session reaches the next sample tick.
fn record_sample(
    recorder: Option<ResMut<Recorder>>,
    session: Res<Session>,
    lattice: Option<ResMut<Lattice>>,
) {
    let (Some(mut recorder), Some(mut lattice)) = (recorder, lattice) else {
        return;
    };
    if recorder.error.is_some()
        || session.tick != recorder.next_tick
        || recorder.samples() >= recorder.max_samples
    {
        return;
    }
    let rec = &mut *recorder;
    // A GPU state is read back here, at sample times only.
    if let Err(e) = lattice.sync() {
        rec.error = Some(format!("cannot read the lattice back from the GPU: {e}"));
        return;
    }
    let state = lattice.state();
    if let Err(err) = rec.append(state.e, state.i) {
        rec.error = Some(err.to_string());
    }
    rec.next_tick += rec.ticks_per_sample;
}
