//! The recording plugin: appends the lattice state to the run's arrays (NPY
//! files or a Zarr store, [`SampleSink`]) at every sample instant, flushing
//! so that they stay loadable.
//!
//! The arrays are written (and compressed) on their own thread: a sample is
//! copied into one of [`BUFFERS`] buffers and handed over, so integration
//! goes on while the disk writes, and waits for it only when every buffer
//! is still on its way (a disk slower than the stream of samples;
//! [`Recorder::disk_wait`] says how long). Memory stays bounded by those
//! buffers. A GPU engine's sample is copied on the GPU behind the steps
//! before it, and the writer thread waits for it to arrive, so the next
//! steps run meanwhile instead of waiting for the copy.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use eifield_gpu::PendingRead;
use eifield_model::Precision;
use eifield_model::npy::AlignedBuf;
use eifield_store::{SampleSink, StoreError};

use crate::sim::session::Session;
use crate::sim::{Lattice, SimSystems};

/// Longest time between flushes that also wait for the disk (then a power
/// cut keeps them): waiting for the disk at every flush would hold the
/// writer up for as long as the disk takes to catch up. (How long samples
/// wait for a flush that any reader, and a killed process's folder, sees is
/// the sink's [`SampleSink::flush_interval`].)
const DISK_INTERVAL: Duration = Duration::from_secs(5);
/// Sample buffers between the simulation and the writer thread.
pub const BUFFERS: usize = 2;

/// One sample of E and I on its way to the disk (in block-aligned
/// buffers, which NPY arrays write to the disk without a copy).
struct Sample {
    e: AlignedBuf,
    i: AlignedBuf,
    /// The session's tick and the engine's steps when it was taken.
    tick: u64,
    steps: u64,
}

/// What is on disk after a flush: the samples the arrays hold, and the tick
/// and engine steps of the last of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flushed {
    /// Samples in each array.
    pub samples: u64,
    /// The session's tick at the last sample.
    pub tick: u64,
    /// Engine steps taken at the last sample.
    pub steps: u64,
}

/// Called on the writer thread after each flush (to record the run's
/// progress beside the arrays, say).
pub type OnFlush = Box<dyn FnMut(Flushed) -> Result<(), String> + Send>;

/// What the writer thread is asked to do.
enum Job {
    Write(Sample),
    /// Wait for a GPU engine's E and I to arrive, put them in the sample
    /// (whose tick and steps are set), and write it.
    WriteFromGpu(Sample, PendingRead, Precision),
    /// Flush the files, then answer.
    Flush(SyncSender<Result<(), String>>),
}

/// The run's arrays, owned by the writer thread.
struct Files {
    sink: Box<dyn SampleSink>,
    sample_rate: f64,
    last_flush: Instant,
    last_disk_flush: Instant,
    /// A pause before each sample (a slow disk, in tests).
    throttle: Duration,
    /// The tick and steps of the last sample written.
    last: (u64, u64),
    on_flush: Option<OnFlush>,
    /// What the last flush left on disk, for the recorder to report.
    flushed: Arc<Mutex<Option<Flushed>>>,
    /// The first write error: nothing is written after it, so that the
    /// arrays keep what the last good flush left.
    broken: Option<String>,
}

impl Files {
    fn new(sink: Box<dyn SampleSink>, sample_rate: f64, resume: Option<Flushed>) -> Self {
        Self {
            sink,
            sample_rate,
            last_flush: Instant::now(),
            last_disk_flush: Instant::now(),
            throttle: Duration::ZERO,
            last: resume.map_or((0, 0), |at| (at.tick, at.steps)),
            on_flush: None,
            flushed: Arc::new(Mutex::new(resume)),
            broken: None,
        }
    }

    /// Keeps the first error of `result`.
    fn keep(&mut self, result: Result<(), String>) -> Result<(), String> {
        if let Err(e) = &result {
            self.broken.get_or_insert_with(|| e.clone());
        }
        result
    }

    fn write(&mut self, sample: &Sample) -> Result<(), String> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let result = self.write_unchecked(sample);
        self.keep(result)
    }

    fn write_unchecked(&mut self, sample: &Sample) -> Result<(), String> {
        std::thread::sleep(self.throttle);
        let time = self.sink.samples() as f64 / self.sample_rate;
        let readable = self.sink.readable();
        self.sink
            .append(sample.e.as_f64(), sample.i.as_f64(), time)
            .map_err(|e| e.to_string())?;
        self.last = (sample.tick, sample.steps);
        if self.last_flush.elapsed() >= self.sink.flush_interval() {
            self.flush(self.last_disk_flush.elapsed() >= DISK_INTERVAL)?;
        } else if self.sink.readable() > readable {
            // The sink wrote on its own (a full row of Zarr chunks): every
            // sample so far is readable, so the next flush is due an
            // interval from now (a flush sooner would compress a partial
            // row that fills anyway).
            self.last_flush = Instant::now();
            self.report()?;
        }
        Ok(())
    }

    /// Writes everything and makes it readable (the arrays first, so that
    /// what `on_flush` reports is in them), waiting for the disk with
    /// `disk`.
    fn flush(&mut self, disk: bool) -> Result<(), String> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let result = self.flush_unchecked(disk);
        self.keep(result)
    }

    fn flush_unchecked(&mut self, disk: bool) -> Result<(), String> {
        self.sink.flush(disk).map_err(|e| e.to_string())?;
        self.last_flush = Instant::now();
        if disk {
            self.last_disk_flush = self.last_flush;
        }
        self.report()
    }

    /// Tells what the arrays hold: every sample written so far.
    fn report(&mut self) -> Result<(), String> {
        let state = Flushed {
            samples: self.sink.readable(),
            tick: self.last.0,
            steps: self.last.1,
        };
        *self.flushed.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
        match self.on_flush.as_mut() {
            Some(report) => report(state),
            None => Ok(()),
        }
    }
}

/// Open recording of one run.
#[derive(Resource)]
pub struct Recorder {
    /// Jobs for the writer thread (`None` once it is stopped).
    jobs: Option<SyncSender<Job>>,
    /// Buffers the writer is done with (in a mutex only so that the
    /// recorder can be a resource: the simulation alone takes them).
    free: Mutex<Receiver<Sample>>,
    writer: Option<JoinHandle<()>>,
    /// The writer's first error; recording stops there.
    failure: Arc<Mutex<Option<String>>>,
    /// Record every this many ticks.
    ticks_per_sample: u64,
    /// The tick of the next sample.
    next_tick: u64,
    /// Stop after this many samples.
    max_samples: u64,
    /// Samples handed to the writer.
    sent: u64,
    /// Time the simulation waited for a free buffer.
    waited: Duration,
    /// What the last flush left on disk.
    flushed: Arc<Mutex<Option<Flushed>>>,
}

impl Recorder {
    /// Starts the writer thread of `sink` (the arrays of a run in `dir`),
    /// which records every `ticks_per_sample`-th tick, `sample_rate`
    /// samples per unit of model time, until `max_samples`; with `resume`,
    /// the sink holds the samples of an earlier run up to that flush, and
    /// recording goes on after them.
    pub fn create(
        dir: &Path,
        sink: Box<dyn SampleSink>,
        (ticks_per_sample, sample_rate, max_samples): (u64, f64, u64),
        on_flush: Option<OnFlush>,
        resume: Option<Flushed>,
    ) -> Result<Self, StoreError> {
        let mut files = Files::new(sink, sample_rate, resume);
        files.on_flush = on_flush;
        let mut recorder = Self::start(dir, files, ticks_per_sample, max_samples)?;
        if let Some(at) = resume {
            recorder.sent = at.samples;
            recorder.next_tick = at.samples * recorder.ticks_per_sample;
        }
        Ok(recorder)
    }

    /// Starts the writer thread on `files`.
    fn start(
        dir: &Path,
        mut files: Files,
        ticks_per_sample: u64,
        max_samples: u64,
    ) -> Result<Self, StoreError> {
        let (jobs, inbox) = sync_channel::<Job>(BUFFERS);
        let (give_back, free) = sync_channel::<Sample>(BUFFERS);
        for _ in 0..BUFFERS {
            give_back
                .send(Sample {
                    e: AlignedBuf::new(),
                    i: AlignedBuf::new(),
                    tick: 0,
                    steps: 0,
                })
                .expect("the channel holds every buffer");
        }
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let flushed = files.flushed.clone();
        let writer = std::thread::Builder::new()
            .name("eifield recorder".into())
            .spawn(move || {
                let fail = |e: String| keep_first(&failed, e);
                for job in inbox {
                    match job {
                        Job::Write(sample) => {
                            if let Err(e) = files.write(&sample) {
                                fail(e);
                            }
                            // The receiver is gone only when the recorder is.
                            let _ = give_back.send(sample);
                        }
                        Job::WriteFromGpu(mut sample, read, precision) => {
                            let written = arrive(&mut sample, read, precision)
                                .and_then(|()| files.write(&sample));
                            if let Err(e) = written {
                                fail(e);
                            }
                            let _ = give_back.send(sample);
                        }
                        Job::Flush(reply) => {
                            let result = files.flush(true);
                            if let Err(e) = &result {
                                fail(e.clone());
                            }
                            let _ = reply.send(result);
                        }
                    }
                }
            })
            .map_err(|e| StoreError::new(dir, e))?;
        Ok(Self {
            jobs: Some(jobs),
            free: Mutex::new(free),
            writer: Some(writer),
            failure,
            ticks_per_sample: ticks_per_sample.max(1),
            next_tick: 0,
            max_samples,
            sent: 0,
            waited: Duration::ZERO,
            flushed,
        })
    }

    /// Samples recorded so far (on disk after [`Recorder::flush`]).
    pub fn samples(&self) -> u64 {
        self.sent
    }

    /// The first write error, if any: recording stopped there.
    pub fn error(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What the last successful flush left in the arrays: after a write
    /// error, the samples (and their tick and steps) that are sure to be
    /// there.
    pub fn last_flushed(&self) -> Option<Flushed> {
        *self.flushed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the simulation has waited for the disk in all.
    pub fn disk_wait(&self) -> Duration {
        self.waited
    }

    /// Waits until every sample recorded so far is written, and updates
    /// the headers.
    pub fn flush(&mut self) -> Result<(), String> {
        let (reply, answer) = sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or("the recorder is closed")?;
        jobs.send(Job::Flush(reply))
            .map_err(|_| "the recorder's writer stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the recorder's writer stopped".to_string())?
    }

    /// A buffer the writer is done with, waiting for one if need be.
    fn free_buffer(&mut self) -> Result<Sample, String> {
        let waited = Instant::now();
        let sample = self
            .free
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .recv()
            .map_err(|_| "the recorder's writer stopped".to_string())?;
        self.waited += waited.elapsed();
        Ok(sample)
    }

    /// Hands a job to the writer.
    fn send(&mut self, job: Job) -> Result<(), String> {
        let jobs = self.jobs.as_ref().ok_or("the recorder is closed")?;
        jobs.send(job)
            .map_err(|_| "the recorder's writer stopped".to_string())?;
        self.sent += 1;
        Ok(())
    }

    fn append(&mut self, e: &[f64], i: &[f64], tick: u64, steps: u64) -> Result<(), String> {
        let mut sample = self.free_buffer()?;
        sample.e.copy_from(e);
        sample.i.copy_from(i);
        sample.tick = tick;
        sample.steps = steps;
        self.send(Job::Write(sample))
    }

    /// Records E and I of a GPU engine as the copy `read` (started now, in
    /// `precision`) brings them back; the writer waits for them.
    fn append_from_gpu(
        &mut self,
        read: PendingRead,
        precision: Precision,
        tick: u64,
        steps: u64,
    ) -> Result<(), String> {
        let mut sample = self.free_buffer()?;
        sample.tick = tick;
        sample.steps = steps;
        self.send(Job::WriteFromGpu(sample, read, precision))
    }
}

impl Drop for Recorder {
    /// Lets the writer finish what it was given (a final flush is the
    /// caller's), then joins it.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
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
    lattice: Option<Res<Lattice>>,
) {
    let (Some(mut recorder), Some(lattice)) = (recorder, lattice) else {
        return;
    };
    if recorder.error().is_some()
        || session.tick != recorder.next_tick
        || recorder.samples() >= recorder.max_samples
    {
        return;
    }
    let rec = &mut *recorder;
    let steps = lattice.engine().steps();
    let appended = match lattice.engine().read_state_async() {
        // A GPU state is copied behind the steps so far; the next steps
        // run while it comes back.
        Some((read, precision)) => rec.append_from_gpu(read, precision, session.tick, steps),
        // A CPU engine's state is read where it is.
        None => {
            let state = lattice.state();
            rec.append(state.e, state.i, session.tick, steps)
        }
    };
    if let Err(err) = appended {
        rec.fail(err);
    }
    rec.next_tick += rec.ticks_per_sample;
}

/// Puts the E and I that `read` brings back from the GPU into `sample`.
fn arrive(sample: &mut Sample, read: PendingRead, precision: Precision) -> Result<(), String> {
    let bytes = read
        .wait()
        .map_err(|e| format!("cannot read the lattice back from the GPU: {e}"))?;
    let [e, i] = bytes.as_slice() else {
        return Err("a copy from the GPU came back incomplete".into());
    };
    sample.e.copy_from(&precision.decode(e));
    sample.i.copy_from(&precision.decode(i));
    Ok(())
}

impl Recorder {
    /// Records a failure on this side (the first one is kept).
    fn fail(&mut self, message: String) {
        keep_first(&self.failure, message);
    }
}

/// Keeps `message` as the recording's failure unless one came first.
fn keep_first(failure: &Mutex<Option<String>>, message: String) {
    let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
    first.get_or_insert(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk slower than the samples: the simulation waits, and every
    /// sample still lands, in order.
    #[test]
    fn a_slow_disk_keeps_every_sample() {
        let dir = std::env::temp_dir().join(format!("eifield-slow-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cells = 1000;
        let layout = eifield_store::Layout::full(1, cells, eifield_model::Precision::F64);
        let sink = eifield_store::NpySink::create(&dir, layout).unwrap();
        let mut files = Files::new(Box::new(sink), 10.0, None);
        files.throttle = Duration::from_millis(15);
        let mut recorder = Recorder::start(&dir, files, 1, 100).unwrap();
        let samples = 12;
        for k in 0..samples {
            let e: Vec<f64> = (0..cells).map(|c| (k * cells + c) as f64).collect();
            let i: Vec<f64> = e.iter().map(|v| -v).collect();
            recorder.append(&e, &i, k as u64, 5 * k as u64).unwrap();
        }
        // Two buffers for twelve samples: the rest waited for the disk.
        assert!(recorder.disk_wait() >= Duration::from_millis(15 * (samples - BUFFERS - 1) as u64));
        recorder.flush().unwrap();
        assert_eq!(recorder.samples(), samples as u64);
        drop(recorder);
        let bytes = std::fs::read(dir.join("E.npy")).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), [samples as u64, cells as u64]);
        let e = npy.into_vec::<f64>().unwrap();
        assert!(e.iter().enumerate().all(|(k, &v)| v == k as f64));
        let bytes = std::fs::read(dir.join("t.npy")).unwrap();
        let t = npyz::NpyFile::new(&bytes[..])
            .unwrap()
            .into_vec::<f64>()
            .unwrap();
        assert_eq!(t, (0..samples).map(|k| k as f64 / 10.0).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A sink that makes its samples readable itself, a row of `row` at a
    /// time (as Zarr does), and counts the flushes it is asked for.
    struct Rows {
        row: u64,
        samples: u64,
        readable: u64,
        interval: Duration,
        flushes: Arc<Mutex<u32>>,
    }

    impl SampleSink for Rows {
        fn append(&mut self, _: &[f64], _: &[f64], _: f64) -> Result<(), StoreError> {
            self.samples += 1;
            if self.samples.is_multiple_of(self.row) {
                self.readable = self.samples;
            }
            Ok(())
        }
        fn samples(&self) -> u64 {
            self.samples
        }
        fn readable(&self) -> u64 {
            self.readable
        }
        fn flush(&mut self, _: bool) -> Result<(), StoreError> {
            *self.flushes.lock().unwrap() += 1;
            self.readable = self.samples;
            Ok(())
        }
        fn flush_interval(&self) -> Duration {
            self.interval
        }
    }

    /// A sink that wrote a full row has nothing waiting: the next flush
    /// (which would write the partial row again) is due an interval after
    /// that, not after the last flush.
    #[test]
    fn a_full_row_puts_off_the_next_flush() {
        let flushes = Arc::new(Mutex::new(0));
        let interval = Duration::from_millis(400);
        let sink = Rows {
            row: 2,
            samples: 0,
            readable: 0,
            interval,
            flushes: flushes.clone(),
        };
        let mut files = Files::new(Box::new(sink), 10.0, None);
        let mut one = AlignedBuf::new();
        one.copy_from(&[0.0]);
        let sample = Sample {
            e: one,
            i: AlignedBuf::new(),
            tick: 0,
            steps: 0,
        };
        let pause = Duration::from_millis(250);
        std::thread::sleep(pause);
        files.write(&sample).unwrap();
        files.write(&sample).unwrap(); // The row is full.
        assert_eq!(files.flushed.lock().unwrap().map(|f| f.samples), Some(2));
        std::thread::sleep(pause);
        // 500 ms since the start, 250 since the row: no flush due.
        files.write(&sample).unwrap();
        assert_eq!(*flushes.lock().unwrap(), 0);
        // The partial row has waited an interval: the next sample flushes.
        std::thread::sleep(interval);
        files.write(&sample).unwrap();
        assert_eq!(*flushes.lock().unwrap(), 1);
        assert_eq!(files.flushed.lock().unwrap().map(|f| f.samples), Some(4));
    }
}
