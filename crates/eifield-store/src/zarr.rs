//! `run.zarr`: a run's samples as a Zarr version 3 store (through the
//! `zarrs` library): `E` and `I` of shape `[time, row, col]`, the
//! coordinates `time`, `row` and `col` (the lattice indices kept), and on the
//! root group the scene, the manifest, the stride and the element type as
//! attributes, with the arrays' metadata consolidated into it (so that
//! xarray and zarr-python open the store from one file).
//!
//! Samples are gathered into a row of chunks across the lattice, which is
//! one shard (one file, with an index of its chunks); a full row is
//! compressed and written at once, and a flush writes the partial one.
//! Every write is atomic (a temporary file, then a rename), and an array's
//! shape grows only after the chunks it then covers are written, so a run
//! killed at any moment leaves a store that opens with every sample up to
//! its last flush.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use eifield_model::Precision;
use serde_json::{Value, json};
use zarrs::array::builder::ArrayBuilderFillValue;
use zarrs::array::codec::ZstdCodec;
use zarrs::array::codec::{BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode};
use zarrs::array::{
    Array, ArrayBuilder, ArraySubset, BytesToBytesCodecTraits, CodecOptions, data_type,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::{Group, GroupBuilder};
use zarrs::metadata::NodeMetadata;
use zarrs::metadata_ext::group::consolidated_metadata::ConsolidatedMetadata;
use zarrs::storage::storage_adapter::atomic_write::AtomicWriteStorageAdapter;

use crate::layout::dtype_name;
use crate::sink::SampleSink;
use crate::{Layout, StoreError};

/// The store's folder in a run folder.
pub const STORE_NAME: &str = "run.zarr";
/// Samples per chunk of the `time` coordinate (a multiple of every chunk
/// shape's samples, so that its chunks end where rows of chunks do).
const TIME_CHUNK: usize = 4096;
/// The fill value of `row` and `col`: no lattice index (xarray masks a
/// coordinate's fill value).
const NO_INDEX: i64 = -1;

type Store = AtomicWriteStorageAdapter<FilesystemStore>;

/// How chunks are compressed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compression {
    /// Stored as they are.
    None,
    /// Zstandard at this level.
    Zstd(i32),
    /// Blosc: LZ4 at this level over byte-shuffled elements (the bytes of
    /// equal rank of every element together, where floats that change
    /// slowly repeat).
    BloscLz4(u8),
    /// Blosc: Zstandard at this level over byte-shuffled elements.
    BloscZstd(u8),
}

impl Compression {
    /// What runs write with: chosen by `examples/chunking.rs` on a real
    /// run (README, "Large runs").
    pub const DEFAULT: Self = Self::BloscLz4(5);

    fn codecs(self, element_bytes: usize) -> Result<Vec<Arc<dyn BytesToBytesCodecTraits>>, String> {
        let blosc = |cname, level: u8| -> Result<Arc<dyn BytesToBytesCodecTraits>, String> {
            let level = BloscCompressionLevel::try_from(level).map_err(|e| e.to_string())?;
            let codec = BloscCodec::new(
                cname,
                level,
                None,
                BloscShuffleMode::Shuffle,
                Some(element_bytes),
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(codec))
        };
        Ok(match self {
            Self::None => Vec::new(),
            Self::Zstd(level) => vec![Arc::new(ZstdCodec::new(level, false))],
            Self::BloscLz4(level) => vec![blosc(BloscCompressor::LZ4, level)?],
            Self::BloscZstd(level) => vec![blosc(BloscCompressor::Zstd, level)?],
        })
    }
}

/// How the store is laid out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZarrOptions {
    /// The chunk shape of `E` and `I`: `[samples, rows, cols]`.
    pub chunk: [usize; 3],
    /// How chunks are compressed.
    pub compression: Compression,
    /// Chunks encoded at once (the writer's threads).
    pub threads: usize,
}

impl ZarrOptions {
    /// The chunks of [`Layout::chunk_shape`], [`Compression::DEFAULT`], on
    /// the writing thread alone.
    pub fn for_layout(layout: Layout) -> Self {
        Self {
            chunk: layout.chunk_shape(),
            compression: Compression::DEFAULT,
            threads: 1,
        }
    }
}

/// A row of chunks of one variable, in its element type.
enum ChunkRow {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

impl ChunkRow {
    fn new(dtype: Precision, len: usize) -> Self {
        match dtype {
            Precision::F64 => Self::F64(vec![f64::NAN; len]),
            Precision::F32 => Self::F32(vec![f32::NAN; len]),
        }
    }

    fn gather(&mut self, layout: &Layout, state: &[f64], at: usize, len: usize, pitch: usize) {
        match self {
            Self::F64(v) => layout.gather(state, &mut v[at..at + len], pitch),
            Self::F32(v) => layout.gather(state, &mut v[at..at + len], pitch),
        }
    }

    /// Fills the samples from `from` on (of `per_sample` elements each)
    /// with NaN, the fill value: what a partial row of chunks holds after
    /// its samples (compressed, not read).
    fn clear_from(&mut self, from: usize) {
        match self {
            Self::F64(v) => v[from..].fill(f64::NAN),
            Self::F32(v) => v[from..].fill(f32::NAN),
        }
    }

    fn store(
        &self,
        array: &Array<Store>,
        chunks: &[std::ops::Range<u64>; 3],
        options: &CodecOptions,
    ) -> Result<(), String> {
        match self {
            Self::F64(v) => array.store_chunks_opt(chunks, &v[..], options),
            Self::F32(v) => array.store_chunks_opt(chunks, &v[..], options),
        }
        .map_err(|e| e.to_string())
    }
}

/// Writes a run's samples into `run.zarr`.
pub struct ZarrSink {
    root: PathBuf,
    layout: Layout,
    options: ZarrOptions,
    codec_options: CodecOptions,
    e: Array<Store>,
    i: Array<Store>,
    time: Array<Store>,
    /// The chunk rows being filled, `[samples, padded rows, padded cols]`
    /// (whole chunks: the tiles at the lattice's edge are padded).
    row_e: ChunkRow,
    row_i: ChunkRow,
    /// The `time` chunk being filled.
    times: Vec<f64>,
    samples: u64,
    readable: u64,
    /// The first row of chunks not yet waited for on the disk.
    unsynced_row: u64,
    /// A write failed: the store holds what the last good one left, and
    /// nothing more is written (a later row would cover the failed one).
    failed: bool,
}

impl ZarrSink {
    /// Creates `dir/run.zarr` (replacing one there) for the samples of
    /// `layout`, with the run's `scene` (its RON text) as an attribute.
    pub fn create(
        dir: &Path,
        layout: Layout,
        scene: &str,
        options: ZarrOptions,
    ) -> Result<Self, StoreError> {
        let root = dir.join(STORE_NAME);
        let err = |e: &dyn std::fmt::Display| StoreError::new(&root, e);
        if root.exists() {
            std::fs::remove_dir_all(&root).map_err(|e| err(&e))?;
        }
        std::fs::create_dir_all(&root).map_err(|e| err(&e))?;
        let store = open_store(&root)?;
        let [ct, tr, tc] = options.chunk.map(|n| n.max(1) as u64);
        let (rows, cols) = (layout.kept_rows() as u64, layout.kept_cols() as u64);
        // One shard (one file) per row of chunks across the lattice: far
        // fewer files to create than chunks, and still read chunk by chunk.
        let shard = vec![ct, rows.next_multiple_of(tr), cols.next_multiple_of(tc)];
        let (element, fill) = match layout.dtype {
            Precision::F64 => (data_type::float64(), ArrayBuilderFillValue::from(f64::NAN)),
            Precision::F32 => (data_type::float32(), ArrayBuilderFillValue::from(f32::NAN)),
        };
        let codecs = options
            .compression
            .codecs(layout.element_bytes())
            .map_err(|e| err(&e))?;
        let variable = |name: &str, long_name: &str| {
            let mut builder = ArrayBuilder::new(
                vec![0, rows, cols],
                shard.clone(),
                element.clone(),
                fill.clone(),
            );
            builder
                .subchunk_shape(vec![ct, tr, tc])
                .dimension_names(Some(["time", "row", "col"]))
                .bytes_to_bytes_codecs(codecs.clone())
                .attributes_mut()
                .insert("long_name".into(), json!(long_name));
            let array = builder
                .build(store.clone(), &format!("/{name}"))
                .map_err(|e| err(&e))?;
            array.store_metadata().map_err(|e| err(&e))?;
            Ok::<_, StoreError>(array)
        };
        let e = variable("E", "excitatory activity")?;
        let i = variable("I", "inhibitory activity")?;
        let mut builder = ArrayBuilder::new(
            vec![0],
            vec![TIME_CHUNK as u64],
            data_type::float64(),
            f64::NAN,
        );
        builder
            .dimension_names(Some(["time"]))
            .attributes_mut()
            .insert("long_name".into(), json!("model time"));
        let time = builder.build(store.clone(), "/time").map_err(|e| err(&e))?;
        time.store_metadata().map_err(|e| err(&e))?;
        for (name, kept) in [("row", rows), ("col", cols)] {
            let mut builder =
                ArrayBuilder::new(vec![kept], vec![kept.max(1)], data_type::int64(), NO_INDEX);
            builder
                .dimension_names(Some([name]))
                .attributes_mut()
                .insert("long_name".into(), json!(format!("lattice {name}")));
            let index = builder
                .build(store.clone(), &format!("/{name}"))
                .map_err(|e| err(&e))?;
            index.store_metadata().map_err(|e| err(&e))?;
            let values: Vec<i64> = (0..kept)
                .map(|k| (k as usize * layout.stride) as i64)
                .collect();
            index
                .store_array_subset(&span(0..kept), &values[..])
                .map_err(|e| err(&e))?;
        }
        let mut group = GroupBuilder::new()
            .build(store.clone(), "/")
            .map_err(|e| err(&e))?;
        let attributes = group.attributes_mut();
        attributes.insert("program".into(), json!("eifield"));
        attributes.insert("grid".into(), json!([layout.rows, layout.cols]));
        attributes.insert("stride".into(), json!(layout.stride));
        attributes.insert("dtype".into(), json!(dtype_name(layout.dtype)));
        attributes.insert("scene".into(), json!(scene));
        group.store_metadata().map_err(|e| err(&e))?;
        let sink = Self::new(root, layout, options, e, i, time, 0);
        sink.describe(None)?;
        Ok(sink)
    }

    /// Opens the store of an earlier run in `dir` to go on after its first
    /// `samples` samples (dropping any written after them); it must have
    /// been written for `layout`.
    pub fn resume(dir: &Path, layout: Layout, samples: u64) -> Result<Self, StoreError> {
        let root = dir.join(STORE_NAME);
        let err = |e: &dyn std::fmt::Display| StoreError::new(&root, e);
        // An interrupted write leaves its temporary file.
        remove_temporary_files(&root).map_err(|e| err(&e))?;
        let run = ZarrRun::open(&root)?;
        if run.layout != layout {
            return Err(err(&format!("it holds {:?}, not {:?}", run.layout, layout)));
        }
        if run.samples < samples {
            return Err(err(&format!(
                "it holds {} samples, not {samples}",
                run.samples
            )));
        }
        let chunk = zarrs::array::ArrayShardedExt::subchunk_shape(&run.e)
            .ok_or_else(|| err(&"E is not sharded: not a store this version writes"))?;
        let chunk = [0, 1, 2].map(|k| chunk[k].get() as usize);
        let options = ZarrOptions {
            chunk,
            compression: Compression::DEFAULT,
            threads: 1,
        };
        // The partial row of chunks and `time` chunk go on from where they
        // stopped: read them before the arrays go to the sink.
        let row_start = samples / chunk[0] as u64 * chunk[0] as u64;
        let partial = (row_start..samples)
            .map(|k| Ok((run.read("E", k..k + 1)?, run.read("I", k..k + 1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let time_start = samples / TIME_CHUNK as u64 * TIME_CHUNK as u64;
        let times = run
            .time
            .retrieve_array_subset::<Vec<f64>>(&span(time_start..samples))
            .map_err(|e| err(&e))?;
        let ZarrRun { e, i, time, .. } = run;
        let mut sink = Self::new(root.clone(), layout, options, e, i, time, samples);
        // The kept cells as a lattice of their own, to gather again.
        let kept = Layout::full(layout.kept_rows(), layout.kept_cols(), layout.dtype);
        let (pitch, per_sample) = (sink.padded_cols(), sink.padded_rows() * sink.padded_cols());
        let len = (kept.rows - 1) * pitch + kept.cols;
        for (slot, (e, i)) in partial.iter().enumerate() {
            sink.row_e.gather(&kept, e, slot * per_sample, len, pitch);
            sink.row_i.gather(&kept, i, slot * per_sample, len, pitch);
        }
        sink.times[..times.len()].copy_from_slice(&times);
        for array in [&mut sink.e, &mut sink.i, &mut sink.time] {
            let mut shape = array.shape().to_vec();
            shape[0] = samples;
            array.set_shape(shape).map_err(|e| err(&e))?;
            array.store_metadata().map_err(|e| err(&e))?;
        }
        sink.describe(None)?;
        Ok(sink)
    }

    fn new(
        root: PathBuf,
        layout: Layout,
        options: ZarrOptions,
        e: Array<Store>,
        i: Array<Store>,
        time: Array<Store>,
        samples: u64,
    ) -> Self {
        let [ct, tr, tc] = options.chunk;
        let padded =
            ct * layout.kept_rows().next_multiple_of(tr) * layout.kept_cols().next_multiple_of(tc);
        let mut codec_options = CodecOptions::default();
        codec_options.set_concurrent_target(options.threads.max(1));
        Self {
            row_e: ChunkRow::new(layout.dtype, padded),
            row_i: ChunkRow::new(layout.dtype, padded),
            times: vec![f64::NAN; TIME_CHUNK],
            root,
            layout,
            options,
            codec_options,
            e,
            i,
            time,
            samples,
            readable: samples,
            unsynced_row: samples / options.chunk[0] as u64,
            failed: false,
        }
    }

    fn padded_rows(&self) -> usize {
        self.layout
            .kept_rows()
            .next_multiple_of(self.options.chunk[1])
    }

    fn padded_cols(&self) -> usize {
        self.layout
            .kept_cols()
            .next_multiple_of(self.options.chunk[2])
    }

    fn error(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError::new(&self.root, e)
    }

    /// Writes the row of chunks (and the `time` chunk) that holds the last
    /// samples, then grows the arrays' shapes to cover them. A write that
    /// fails (a full disk) leaves the store as it was: its temporary file is
    /// removed, which gives back the room it took.
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.failed {
            return Err(
                self.error(&"an earlier write failed; the store holds what was written before it")
            );
        }
        let written = self.write_last_row();
        if written.is_err() {
            self.failed = true;
            let _ = remove_temporary_files(&self.root);
        }
        written
    }

    fn write_last_row(&mut self) -> Result<(), StoreError> {
        if self.readable == self.samples {
            return Ok(());
        }
        let ct = self.options.chunk[0] as u64;
        let row = (self.samples - 1) / ct;
        let filled = (self.samples - row * ct) as usize;
        if filled < ct as usize {
            // The slots after the samples still hold the row before's.
            let from = filled * self.padded_rows() * self.padded_cols();
            self.row_e.clear_from(from);
            self.row_i.clear_from(from);
        }
        let chunks = [row..row + 1, 0..1, 0..1];
        self.row_e
            .store(&self.e, &chunks, &self.codec_options)
            .map_err(|e| self.error(&e))?;
        self.row_i
            .store(&self.i, &chunks, &self.codec_options)
            .map_err(|e| self.error(&e))?;
        let time_chunk = (self.samples - 1) / TIME_CHUNK as u64;
        self.time
            .store_chunk(&[time_chunk], &self.times[..])
            .map_err(|e| self.error(&e))?;
        for array in [&mut self.e, &mut self.i, &mut self.time] {
            let mut shape = array.shape().to_vec();
            shape[0] = self.samples;
            array
                .set_shape(shape)
                .map_err(|e| StoreError::new(&self.root, e))?;
            array
                .store_metadata()
                .map_err(|e| StoreError::new(&self.root, e))?;
        }
        // The consolidated metadata, which readers go by, last.
        self.describe(None)?;
        self.readable = self.samples;
        Ok(())
    }

    /// Waits until the disk has the chunks written since the last time it
    /// was asked, and the arrays' metadata.
    fn sync(&mut self) -> Result<(), StoreError> {
        let ct = self.options.chunk[0] as u64;
        let last_row = self.readable.saturating_sub(1) / ct;
        let mut files = Vec::new();
        for array in [&self.e, &self.i] {
            for row in self.unsynced_row..=last_row {
                files.push(array.chunk_key(&[row, 0, 0]));
            }
        }
        files.push(
            self.time
                .chunk_key(&[self.readable.saturating_sub(1) / TIME_CHUNK as u64]),
        );
        for file in files {
            sync_file(&self.root.join(file.as_str())).map_err(|e| self.error(&e))?;
        }
        for name in ["E", "I", "time"] {
            sync_file(&self.root.join(name).join("zarr.json")).map_err(|e| self.error(&e))?;
        }
        self.unsynced_row = last_row;
        Ok(())
    }

    /// Rewrites the root group's metadata: its attributes (with `manifest`
    /// where given) and the arrays' metadata as they are now.
    fn describe(&self, manifest: Option<&Value>) -> Result<(), StoreError> {
        describe(&self.root, manifest)
    }
}

impl SampleSink for ZarrSink {
    fn append(&mut self, e: &[f64], i: &[f64], time: f64) -> Result<(), StoreError> {
        let ct = self.options.chunk[0];
        let slot = (self.samples % ct as u64) as usize;
        let pitch = self.padded_cols();
        let per_sample = self.padded_rows() * pitch;
        let len = (self.layout.kept_rows() - 1) * pitch + self.layout.kept_cols();
        self.row_e
            .gather(&self.layout, e, slot * per_sample, len, pitch);
        self.row_i
            .gather(&self.layout, i, slot * per_sample, len, pitch);
        self.times[(self.samples % TIME_CHUNK as u64) as usize] = time;
        self.samples += 1;
        if slot + 1 == ct {
            self.commit()?;
        }
        Ok(())
    }

    fn samples(&self) -> u64 {
        self.samples
    }

    fn readable(&self) -> u64 {
        self.readable
    }

    fn flush(&mut self, disk: bool) -> Result<(), StoreError> {
        self.commit()?;
        if disk {
            self.sync()?;
        }
        Ok(())
    }

    fn flush_interval(&self) -> Duration {
        // A flush between full rows of chunks compresses the partial one
        // again.
        Duration::from_secs(5)
    }
}

/// The subset `range` of a one-dimensional array.
fn span(range: std::ops::Range<u64>) -> ArraySubset {
    ArraySubset::new_with_ranges(std::slice::from_ref(&range))
}

fn open_store(root: &Path) -> Result<Arc<Store>, StoreError> {
    let fs = FilesystemStore::new(root).map_err(|e| StoreError::new(root, e))?;
    Ok(Arc::new(AtomicWriteStorageAdapter::new(Arc::new(fs))))
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        // A chunk of fill values only is not stored.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the temporary files of interrupted writes under `root`.
fn remove_temporary_files(root: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            remove_temporary_files(&path)?;
        } else if path.extension().is_some_and(|x| x == "tmp") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Rewrites the root group's metadata of the store at `root`: the
/// attribute `manifest` (where given) and the arrays' metadata as they are
/// now, consolidated (one atomic write, so a reader of the consolidated
/// metadata sees every array at the same length).
pub fn describe(root: &Path, manifest: Option<&Value>) -> Result<(), StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::new(root, e);
    let store = open_store(root)?;
    let mut group = Group::open(store.clone(), "/").map_err(|e| err(&e))?;
    if let Some(manifest) = manifest {
        group
            .attributes_mut()
            .insert("manifest".into(), manifest.clone());
    }
    let mut consolidated = ConsolidatedMetadata::default();
    for name in ["E", "I", "time", "row", "col"] {
        let array = Array::open(store.clone(), &format!("/{name}")).map_err(|e| err(&e))?;
        consolidated
            .metadata
            .insert(name.into(), NodeMetadata::Array(array.metadata().clone()));
    }
    group.set_consolidated_metadata(Some(consolidated));
    group.store_metadata().map_err(|e| err(&e))
}

/// A run's store opened for reading.
pub struct ZarrRun {
    /// What it records of which lattice.
    pub layout: Layout,
    /// Samples in every array.
    pub samples: u64,
    e: Array<Store>,
    i: Array<Store>,
    time: Array<Store>,
}

impl ZarrRun {
    /// Opens the store at `root` (a run folder's `run.zarr`).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new(root, e);
        if !root.join("zarr.json").exists() {
            return Err(err(&"no Zarr store here (no zarr.json)"));
        }
        let store = open_store(root)?;
        let group = Group::open(store.clone(), "/").map_err(|e| err(&e))?;
        let attributes = group.attributes();
        let grid = attributes
            .get("grid")
            .and_then(Value::as_array)
            .and_then(|g| Some((g.first()?.as_u64()?, g.get(1)?.as_u64()?)));
        let stride = attributes.get("stride").and_then(Value::as_u64);
        let (Some((rows, cols)), Some(stride)) = (grid, stride) else {
            return Err(err(
                &"not a run's store: its attributes lack `grid` and `stride`",
            ));
        };
        let open =
            |name: &str| Array::open(store.clone(), &format!("/{name}")).map_err(|e| err(&e));
        let (e, i, time) = (open("E")?, open("I")?, open("time")?);
        let dtype = match e.data_type() {
            t if *t == data_type::float64() => Precision::F64,
            t if *t == data_type::float32() => Precision::F32,
            other => return Err(err(&format!("E holds {other:?}, not float64 or float32"))),
        };
        let layout = Layout {
            rows: rows as usize,
            cols: cols as usize,
            stride: stride.max(1) as usize,
            dtype,
        };
        let samples = e.shape()[0].min(i.shape()[0]).min(time.shape()[0]);
        for (name, array) in [("E", &e), ("I", &i)] {
            let expected = [layout.kept_rows() as u64, layout.kept_cols() as u64];
            if array.shape()[1..] != expected {
                return Err(err(&format!(
                    "{name} has shape {:?}; expected [time, {}, {}]",
                    array.shape(),
                    expected[0],
                    expected[1]
                )));
            }
        }
        Ok(Self {
            layout,
            samples,
            e,
            i,
            time,
        })
    }

    /// The sample times.
    pub fn times(&self) -> Result<Vec<f64>, StoreError> {
        self.time
            .retrieve_array_subset::<Vec<f64>>(&span(0..self.samples))
            .map_err(|e| StoreError::new("time", e))
    }

    /// The samples `range` of `E` or `I` (`name`), as f64, row-major
    /// `[sample, kept row, kept col]`.
    pub fn read(&self, name: &str, range: std::ops::Range<u64>) -> Result<Vec<f64>, StoreError> {
        let (rows, cols) = (
            self.layout.kept_rows() as u64,
            self.layout.kept_cols() as u64,
        );
        self.retrieve(name, [range, 0..rows, 0..cols])
    }

    /// The time series of `E` or `I` (`name`) at kept cell (`row`, `col`):
    /// only the chunks that hold it are read.
    pub fn cell_series(&self, name: &str, row: usize, col: usize) -> Result<Vec<f64>, StoreError> {
        let (r, c) = (row as u64, col as u64);
        self.retrieve(name, [0..self.samples, r..r + 1, c..c + 1])
    }

    /// The `subset` of `E` or `I` (`name`), as f64.
    fn retrieve(
        &self,
        name: &str,
        subset: [std::ops::Range<u64>; 3],
    ) -> Result<Vec<f64>, StoreError> {
        let array = match name {
            "E" => &self.e,
            "I" => &self.i,
            other => return Err(StoreError::new(other, "no such variable (E or I)")),
        };
        let values = match self.layout.dtype {
            Precision::F64 => array.retrieve_array_subset::<Vec<f64>>(&subset),
            Precision::F32 => array
                .retrieve_array_subset::<Vec<f32>>(&subset)
                .map(|v| v.into_iter().map(f64::from).collect()),
        };
        values.map_err(|e| StoreError::new(name, e))
    }
}
