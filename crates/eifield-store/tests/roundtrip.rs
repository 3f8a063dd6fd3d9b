//! Both formats written a sample at a time and read back: every value, the
//! times, the partial last row of chunks, a stride, f32, and a store reopened
//! to go on after its flushed samples.

use eifield_model::Precision;
use eifield_store::zarr::{Compression, ZarrOptions, ZarrRun};
use eifield_store::{Layout, NpySink, SampleSink, StoredRun, ZarrSink};

/// A state that differs in every cell and sample (and is exact in f32).
fn state(rows: usize, cols: usize, k: usize, sign: f64) -> Vec<f64> {
    (0..rows * cols)
        .map(|c| sign * (k * rows * cols + c) as f64 / 8.0)
        .collect()
}

fn write(sink: &mut dyn SampleSink, rows: usize, cols: usize, samples: std::ops::Range<usize>) {
    for k in samples {
        sink.append(
            &state(rows, cols, k, 1.0),
            &state(rows, cols, k, -1.0),
            k as f64 / 4.0,
        )
        .unwrap();
    }
}

fn small_chunks() -> ZarrOptions {
    ZarrOptions {
        chunk: [3, 4, 4],
        compression: Compression::DEFAULT,
        threads: 2,
    }
}

#[test]
fn a_zarr_store_reads_back_every_sample_as_the_npy_files_do() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, cols) = (5, 9);
    let layout = Layout::full(rows, cols, Precision::F64);
    let npy_dir = dir.path().join("npy");
    std::fs::create_dir(&npy_dir).unwrap();
    let mut npy = NpySink::create(&npy_dir, layout).unwrap();
    let mut zarr = ZarrSink::create(dir.path(), layout, "()", small_chunks()).unwrap();
    // Seven samples: two full rows of chunks and one partial.
    write(&mut npy, rows, cols, 0..7);
    write(&mut zarr, rows, cols, 0..7);
    assert_eq!(
        zarr.readable(),
        6,
        "full rows of chunks are written as they fill"
    );
    npy.flush(true).unwrap();
    zarr.flush(true).unwrap();
    assert_eq!(zarr.readable(), 7);
    let a = StoredRun::open(&npy_dir, rows, cols).unwrap();
    let b = StoredRun::open(dir.path(), rows, cols).unwrap();
    // The root's consolidated metadata, which xarray and zarr-python go by,
    // has every array's length.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.zarr/zarr.json")).unwrap())
            .unwrap();
    for name in ["E", "I", "time"] {
        assert_eq!(
            root["consolidated_metadata"]["metadata"][name]["shape"][0], 7,
            "{name}"
        );
    }
    assert_eq!(b.format, eifield_model::scene::OutputFormat::Zarr);
    assert_eq!((a.samples, b.samples), (7, 7));
    assert_eq!(a.times().unwrap(), b.times().unwrap());
    for name in ["E", "I"] {
        let (x, y) = (a.read(name).unwrap(), b.read(name).unwrap());
        assert_eq!(x.len(), 7 * rows * cols);
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()));
        assert_eq!(b.sample(name, 4).unwrap(), a.sample(name, 4).unwrap());
    }
}

#[test]
fn a_store_reopened_goes_on_after_its_flushed_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, cols) = (6, 5);
    let layout = Layout::full(rows, cols, Precision::F32);
    let whole = dir.path().join("whole");
    let cut = dir.path().join("cut");
    for d in [&whole, &cut] {
        std::fs::create_dir(d).unwrap();
    }
    let mut sink = ZarrSink::create(&whole, layout, "()", small_chunks()).unwrap();
    write(&mut sink, rows, cols, 0..11);
    sink.flush(false).unwrap();
    let mut sink = ZarrSink::create(&cut, layout, "()", small_chunks()).unwrap();
    write(&mut sink, rows, cols, 0..5);
    sink.flush(false).unwrap();
    // Samples after the flush that the resumed run drops.
    write(&mut sink, rows, cols, 5..7);
    drop(sink);
    let mut sink = ZarrSink::resume(&cut, layout, 5).unwrap();
    assert_eq!(ZarrRun::open(&cut.join("run.zarr")).unwrap().samples, 5);
    write(&mut sink, rows, cols, 5..11);
    sink.flush(false).unwrap();
    let (a, b) = (
        StoredRun::open(&whole, rows, cols).unwrap(),
        StoredRun::open(&cut, rows, cols).unwrap(),
    );
    assert_eq!(b.samples, 11);
    assert_eq!(a.times().unwrap(), b.times().unwrap());
    assert_eq!(a.read("E").unwrap(), b.read("E").unwrap());
    assert_eq!(a.read("I").unwrap(), b.read("I").unwrap());
}

#[test]
fn a_stride_keeps_every_nth_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, cols) = (7, 10);
    let layout = Layout {
        rows,
        cols,
        stride: 3,
        dtype: Precision::F64,
    };
    let mut sink = ZarrSink::create(dir.path(), layout, "()", small_chunks()).unwrap();
    write(&mut sink, rows, cols, 0..4);
    sink.flush(false).unwrap();
    let run = StoredRun::open(dir.path(), rows, cols).unwrap();
    assert_eq!(run.layout, layout);
    let e = run.read("E").unwrap();
    assert_eq!(e.len(), 4 * 3 * 4);
    let full = state(rows, cols, 2, 1.0);
    let kept: Vec<f64> = [0, 3, 6]
        .iter()
        .flat_map(|&r| [0, 3, 6, 9].map(|c| full[r * cols + c]))
        .collect();
    assert_eq!(&e[2 * 12..3 * 12], &kept[..]);
    assert!(NpySink::create(dir.path(), layout).is_err());
}
