//! Where a run's samples go: the [`SampleSink`] interface, and the NPY
//! folder (`E.npy`, `I.npy`, `t.npy`, `[samples, rows·cols]`).

use std::path::Path;
use std::time::Duration;

use eifield_model::Precision;
use eifield_model::npy::NpyWriter;

use crate::{Layout, StoreError};

/// The arrays of a run, appended a sample at a time.
pub trait SampleSink: Send {
    /// Appends the sample of the full-lattice states `e` and `i` taken at
    /// model time `time`. A sink may write (and make readable) samples here
    /// as well as in [`SampleSink::flush`]: see [`SampleSink::readable`].
    fn append(&mut self, e: &[f64], i: &[f64], time: f64) -> Result<(), StoreError>;
    /// Samples appended.
    fn samples(&self) -> u64;
    /// Samples that a reader (and a run killed now) finds in the files.
    fn readable(&self) -> u64;
    /// Makes every sample appended readable, waiting for the disk too with
    /// `disk`.
    fn flush(&mut self, disk: bool) -> Result<(), StoreError>;
    /// How long appended samples may wait for a flush: what one costs.
    fn flush_interval(&self) -> Duration;
}

/// `E.npy`, `I.npy` and `t.npy` in a folder: every cell of every sample.
pub struct NpySink {
    e: NpyWriter,
    i: NpyWriter,
    t: NpyWriter,
}

impl NpySink {
    /// Creates the three arrays in `dir` (E and I in `layout.dtype`),
    /// replacing any there.
    pub fn create(dir: &Path, layout: Layout) -> Result<Self, StoreError> {
        Self::check(layout)?;
        let cells = Some(layout.kept_cells());
        Ok(Self {
            e: NpyWriter::create_with(&dir.join("E.npy"), cells, layout.dtype)?,
            i: NpyWriter::create_with(&dir.join("I.npy"), cells, layout.dtype)?,
            t: NpyWriter::create_with(&dir.join("t.npy"), None, Precision::F64)?,
        })
    }

    /// Opens the arrays of an earlier run in `dir` to go on after their
    /// first `samples` samples (any written after them are dropped).
    pub fn resume(dir: &Path, layout: Layout, samples: u64) -> Result<Self, StoreError> {
        Self::check(layout)?;
        let cells = Some(layout.kept_cells());
        Ok(Self {
            e: NpyWriter::resume(&dir.join("E.npy"), cells, layout.dtype, samples)?,
            i: NpyWriter::resume(&dir.join("I.npy"), cells, layout.dtype, samples)?,
            t: NpyWriter::resume(&dir.join("t.npy"), None, Precision::F64, samples)?,
        })
    }

    fn check(layout: Layout) -> Result<(), StoreError> {
        if layout.stride != 1 {
            return Err(StoreError::new(
                "--stride",
                "keeping every n-th cell needs the Zarr format (`--format zarr`)",
            ));
        }
        Ok(())
    }
}

impl SampleSink for NpySink {
    fn append(&mut self, e: &[f64], i: &[f64], time: f64) -> Result<(), StoreError> {
        self.e.append(e)?;
        self.i.append(i)?;
        self.t.append(&[time])?;
        Ok(())
    }

    fn samples(&self) -> u64 {
        self.t.rows()
    }

    fn readable(&self) -> u64 {
        self.t.flushed_rows()
    }

    fn flush(&mut self, disk: bool) -> Result<(), StoreError> {
        // The arrays first, the times last: a reader that goes by `t.npy`
        // finds E and I at least as long.
        self.e.flush_to(disk)?;
        self.i.flush_to(disk)?;
        self.t.flush_to(disk)?;
        Ok(())
    }

    fn flush_interval(&self) -> Duration {
        Duration::from_millis(500)
    }
}
