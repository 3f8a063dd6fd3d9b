//! Measures Zarr chunk shapes and compressions on a real run's arrays: the
//! store's size, how fast one thread writes it (gathering, compressing and
//! writing each row of chunks, as a run's writer thread does), and how long
//! reading a cell's time series and one frame of the field take.
//!
//! Usage: `cargo run --release -p eifield-store --example chunking -- RUN_DIR`
//! (a folder written by `eifield run` with the NPY format).

use std::path::PathBuf;
use std::time::Instant;

use eifield_model::FieldScene;
use eifield_store::zarr::{Compression, STORE_NAME, ZarrOptions, ZarrRun};
use eifield_store::{Layout, SampleSink, StoredRun, ZarrSink};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: chunking RUN_DIR")?);
    let scene = FieldScene::load(&dir.join("scene.ron"))?;
    let (rows, cols) = (scene.grid.rows, scene.grid.cols);
    let run = StoredRun::open(&dir, rows, cols)?;
    let (e, i, t) = (run.read("E")?, run.read("I")?, run.times()?);
    let cells = rows * cols;
    let raw_mb = (2 * e.len() * 8) as f64 / 1e6;
    println!(
        "{rows} × {cols}, {} samples, {raw_mb:.0} MB of float64 E and I",
        t.len()
    );
    let layout = Layout::full(rows, cols, eifield_model::Precision::F64);
    let chosen = layout.chunk_shape();
    let [ct, side, _] = chosen;
    let mut cases = vec![
        (chosen, Compression::None),
        (chosen, Compression::BloscLz4(5)),
        (chosen, Compression::BloscLz4(9)),
        (chosen, Compression::BloscZstd(1)),
        (chosen, Compression::BloscZstd(3)),
        (chosen, Compression::Zstd(1)),
        (chosen, Compression::Zstd(3)),
    ];
    for other in [
        [ct * 4, side / 2, side / 2],
        [(ct / 4).max(1), side * 2, side * 2],
    ] {
        cases.push((other, Compression::DEFAULT));
    }
    println!("| chunk | compression | size | ratio | write, one thread | cell series | frame |");
    println!("|---|---|---|---|---|---|---|");
    let work = std::env::temp_dir().join(format!("eifield-chunking-{}", std::process::id()));
    for (chunk, compression) in cases {
        std::fs::create_dir_all(&work)?;
        let options = ZarrOptions {
            chunk,
            compression,
            threads: 1,
        };
        let started = Instant::now();
        let mut sink = ZarrSink::create(&work, layout, "()", options)?;
        for (k, &time) in t.iter().enumerate() {
            let sample = k * cells..(k + 1) * cells;
            sink.append(&e[sample.clone()], &i[sample], time)?;
        }
        sink.flush(false)?;
        let write = started.elapsed().as_secs_f64();
        let size = folder_bytes(&work.join(STORE_NAME))? as f64 / 1e6;
        let store = ZarrRun::open(&work.join(STORE_NAME))?;
        let started = Instant::now();
        let series = store.cell_series("E", rows / 2, cols / 2)?;
        let series_s = started.elapsed().as_secs_f64();
        assert_eq!(series.len(), t.len());
        let started = Instant::now();
        let frame = store.read("E", t.len() as u64 / 2..t.len() as u64 / 2 + 1)?;
        let frame_s = started.elapsed().as_secs_f64();
        assert_eq!(frame.len(), cells);
        println!(
            "| {chunk:?} | {compression:?} | {size:.0} MB | {:.2} | {:.0} MB/s | {:.0} ms | {:.0} ms |",
            size / raw_mb,
            raw_mb / write,
            series_s * 1e3,
            frame_s * 1e3
        );
        std::fs::remove_dir_all(&work)?;
    }
    Ok(())
}

fn folder_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}
