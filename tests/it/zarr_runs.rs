//! Runs recorded as Zarr stores: the values of the NPY run, a run killed at a
//! random moment and resumed, a full disk, a stride and float32, and every
//! reader of a run (`--continue-from`, `plot`, `analyze`) on a store.

use std::path::Path;
use std::process::Command;

use eifield_store::StoredRun;

use crate::common::*;
use crate::headless_cli::{kill_at_a_random_moment, read_manifest, write_scene};

/// Asserts that the run folders `a` and `b` (`rows × cols`) hold the same
/// E, I and times, bit for bit, naming the first difference.
fn assert_same_arrays(a: &Path, b: &Path, rows: usize, cols: usize) {
    let [x, y] =
        [a, b].map(|dir| StoredRun::open(dir, rows, cols).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(x.samples, y.samples, "samples");
    for name in ["E", "I", "t"] {
        let read = |run: &StoredRun| match name {
            "t" => run.times().unwrap(),
            _ => run.read(name).unwrap(),
        };
        let (p, q) = (read(&x), read(&y));
        assert_eq!(p.len(), q.len(), "{name}");
        if let Some(k) = p
            .iter()
            .zip(&q)
            .position(|(u, v)| u.to_bits() != v.to_bits())
        {
            let cells = if name == "t" { 1 } else { rows * cols };
            panic!(
                "{name} differs first at sample {}, cell {}: {} against {}",
                k / cells,
                k % cells,
                p[k],
                q[k]
            );
        }
    }
}

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_zarr_run_holds_the_npy_runs_values_and_every_reader_takes_it() {
    let dir = temp_out("zarr-readers");
    let scene = write_scene(
        &dir,
        "s.ron",
        "(grid: (rows: 9, cols: 11), \
         stimuli: [PulseTrain(row: 4, col: 5, freq: 0.5, width: 1.0, amp: 6.0, onset: 0.0)], \
         run: (duration: 30.0, sample_rate: 20.0))",
    );
    let s = scene.to_str().unwrap();
    let (npy, zarr) = (dir.join("npy"), dir.join("zarr"));
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        npy.to_str().unwrap(),
        "--quiet",
    ]));
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        zarr.to_str().unwrap(),
        "--format",
        "zarr",
        "--quiet",
    ]));
    assert!(zarr.join("run.zarr/zarr.json").exists() && !zarr.join("E.npy").exists());
    assert_eq!(read_manifest(&zarr)["format"], "zarr");
    assert_same_arrays(&npy, &zarr, 9, 11);
    // The folder's scene records the format: run again, it writes Zarr.
    let again = dir.join("again");
    succeeded(&eifield(&[
        "run",
        zarr.join("scene.ron").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]));
    assert_same_arrays(&again, &zarr, 9, 11);
    // Continuing from either format starts from the same state.
    for (from, name) in [(&npy, "next_npy"), (&zarr, "next_zarr")] {
        succeeded(&eifield(&[
            "run",
            s,
            "--out",
            dir.join(name).to_str().unwrap(),
            "--continue-from",
            from.to_str().unwrap(),
            "--quiet",
        ]));
    }
    assert_same_arrays(&dir.join("next_npy"), &dir.join("next_zarr"), 9, 11);
    // Analysis and figures read the store as they read the arrays.
    for run in [&npy, &zarr] {
        succeeded(&eifield(&["analyze", run.to_str().unwrap(), "--quiet"]));
        succeeded(&eifield(&["plot", run.to_str().unwrap()]));
    }
    let summary = |run: &Path| std::fs::read_to_string(run.join("analysis/summary.json")).unwrap();
    assert_eq!(summary(&npy), summary(&zarr));
}

#[test]
fn a_stride_and_float32_shrink_the_store_and_are_recorded() {
    let dir = temp_out("zarr-stride");
    let scene = write_scene(
        &dir,
        "s.ron",
        "(grid: (rows: 10, cols: 7), run: (duration: 2.0, sample_rate: 10.0, format: Zarr))",
    );
    let s = scene.to_str().unwrap();
    let full = dir.join("full");
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        full.to_str().unwrap(),
        "--quiet",
    ]));
    let small = dir.join("small");
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        small.to_str().unwrap(),
        "--stride",
        "3",
        "--dtype",
        "f32",
        "--quiet",
    ]));
    let manifest = read_manifest(&small);
    assert_eq!(
        (manifest["stride"].as_u64(), manifest["dtype"].as_str()),
        (Some(3), Some("float32"))
    );
    let (a, b) = (
        StoredRun::open(&full, 10, 7).unwrap(),
        StoredRun::open(&small, 10, 7).unwrap(),
    );
    assert_eq!((b.layout.kept_rows(), b.layout.kept_cols()), (4, 3));
    let (e, kept) = (a.read("E").unwrap(), b.read("E").unwrap());
    for k in 0..a.samples as usize {
        for (n, (r, c)) in [0, 3, 6, 9]
            .iter()
            .flat_map(|&r| [0, 3, 6].map(|c| (r, c)))
            .enumerate()
        {
            assert_eq!(kept[k * 12 + n], f64::from(e[k * 70 + r * 7 + c] as f32));
        }
    }
    // What needs every cell says so.
    let refused = eifield(&["analyze", small.to_str().unwrap(), "--quiet"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("every 3th cell"));
    let npy = eifield(&[
        "run",
        s,
        "--out",
        dir.join("n").to_str().unwrap(),
        "--format",
        "npy",
        "--stride",
        "2",
    ]);
    assert_eq!(npy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&npy.stderr).contains("--format zarr"));
    assert!(!dir.join("n").exists(), "a refused run leaves no folder");
}

/// As the NPY run's test: SIGKILL at a random moment, `--resume`, and the
/// store holds the values of a run never stopped.
#[test]
fn a_zarr_run_killed_at_a_random_moment_resumes_to_the_same_values() {
    let dir = temp_out("zarr-resume");
    let scene = write_scene(
        &dir,
        "long.ron",
        "(grid: (rows: 64, cols: 64), \
         noise: Pink(sigma: 0.3, seed: 5, sample_rate: 20.0), \
         stimuli: [PulseTrain(row: 32, col: 20, freq: 0.3, width: 1.3, amp: 6.0, onset: 0.0)], \
         run: (duration: 150.0, sample_rate: 5.0, format: Zarr))",
    );
    let s = scene.to_str().unwrap();
    let whole = dir.join("whole");
    let started = std::time::Instant::now();
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]));
    let killed = dir.join("killed");
    let manifest = kill_at_a_random_moment(&scene, &killed, started.elapsed(), 0.3);
    let samples = manifest["samples"].as_u64().unwrap();
    let stored = StoredRun::open(&killed, 64, 64).unwrap();
    assert!(
        stored.samples >= samples,
        "the store opens with every flushed sample"
    );
    println!(
        "killed with {samples} samples flushed ({} in the store)",
        stored.samples
    );
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        killed.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]));
    assert_same_arrays(&whole, &killed, 64, 64);
    assert_eq!(read_manifest(&killed)["stop"]["reason"], "completed");
}

/// A small filesystem fills up mid-run: exit 1, a clear error, a store that
/// opens with every sample the manifest counts; with room again the run
/// resumes to the values of a run never stopped. Mounting the filesystem
/// needs root (as CI runs); elsewhere the test says it did not run.
#[test]
fn a_full_disk_stops_a_zarr_run_cleanly_and_it_resumes_later() {
    let dir = temp_out("zarr-full-disk");
    let scene = write_scene(
        &dir,
        "s.ron",
        "(grid: (rows: 128, cols: 128), run: (duration: 10.0, sample_rate: 100.0, format: Zarr))",
    );
    let s = scene.to_str().unwrap();
    let disk = dir.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mount = |args: &[&str]| {
        Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=96m",
        "tmpfs",
        disk.to_str().unwrap(),
    ]) {
        println!("not run: mounting a small tmpfs needs root");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&disk);
    let out = disk.join("run");
    let full = eifield(&["run", s, "--out", out.to_str().unwrap(), "--quiet"]);
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    let manifest = read_manifest(&out);
    assert_eq!(manifest["stop"]["reason"], "write_error", "{manifest}");
    let message = manifest["stop"]["message"].as_str().unwrap();
    println!("stopped after {} samples: {message}", manifest["samples"]);
    assert!(message.contains("run.zarr"), "{message}");
    // The first row of chunks (256 samples, about 55 MB) fits, the second
    // does not.
    let samples = manifest["samples"].as_u64().unwrap();
    assert!((1..1001).contains(&samples), "{samples}");
    let stored = StoredRun::open(&out, 128, 128).unwrap();
    assert!(stored.samples >= samples);
    assert!(stored.read("E").unwrap().iter().all(|v| v.is_finite()));
    // Room again: the run resumes to the values of a run never stopped.
    assert!(mount(&["-o", "remount,size=512m", disk.to_str().unwrap()]));
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        out.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]));
    let whole = dir.join("whole");
    succeeded(&eifield(&[
        "run",
        s,
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]));
    assert_same_arrays(&whole, &out, 128, 128);
}
