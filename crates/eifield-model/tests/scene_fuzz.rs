//! A mutational fuzzer over the shipped scenes: mutated RON text is parsed and
//! validated, and every scene that passes is used as the program would use it
//! (resolved and saved, reloaded, its tick lengths turned into timer
//! durations, an engine built and advanced). No input may panic.
//!
//! The normal test run tries a few thousand inputs; a long run:
//! `EIFIELD_FUZZ_CASES=100000 cargo test -p eifield-model --test scene_fuzz -- --nocapture`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use eifield_model::analysis::FrozenInputs;
use eifield_model::scene::{BUILTIN_SCENES, Initial, Noise, Stimulus};
use eifield_model::{Engine, EngineOptions, FieldScene};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Inputs tried when `EIFIELD_FUZZ_CASES` is not set.
const DEFAULT_CASES: u64 = 1000;
/// Largest lattice the fuzzer builds an engine for.
const ENGINE_CELLS: usize = 4096;

/// Numbers that probe the edges of what the program can do with a value.
const EXTREMES: &[&str] = &[
    "0",
    "-0.0",
    "1",
    "-1",
    "0.5",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e-308",
    "5e-324",
    "1e300",
    "-1e300",
    "1e20",
    "1e-20",
    "1e9",
    "1e-9",
    "1e6",
    "1e-6",
    "1e12",
    "1e13",
    "-1e13",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "9007199254740993",
    "NaN",
    "inf",
    "-inf",
    "2.5",
    "100000",
    "4097",
    "65536",
];

/// Fields and variants spliced into a scene.
const SNIPPETS: &[&str] = &[
    "run: (duration: 1e300, sample_rate: 1e300),",
    "run: (duration: 1e9, sample_rate: 1e-300),",
    "run: (duration: 0.0, sample_rate: 1e6),",
    "noise: Pink(sigma: 1e12, seed: 18446744073709551615, sample_rate: 1e6),",
    "noise: Pink(sigma: 0.3, seed: 1, sample_rate: 1e-6),",
    "integrator: Euler(dt: 1e-300),",
    "integrator: Heun(dt: 1e300),",
    "grid: (rows: 4097, cols: 4097),",
    "grid: (rows: 1, cols: 1, boundary: Periodic),",
    "grid: (rows: 0, cols: 3),",
    "initial: Random(sigma: 1e12, seed: 3),",
    "initial: Rest,",
    "initial: Explicit(ex: [1e308], inh: [0.0]),",
    "drive: (heterogeneity: Random(eps: 1e12, seed: 1), h_ex: -1e12),",
    "drive: (heterogeneity: Explicit(h_ex: [], h_in: []),),",
    "stimuli: [PulseTrain(row: 0, col: 0, freq: 1e6, width: 1e-9, amp: 1e12, onset: 1e9, count: 18446744073709551615)],",
    "stimuli: [PulseTrain(row: 18446744073709551615, col: 0)],",
    "stimuli: [],",
    "view: (time_per_frame: 1e-300, fps: 4294967295),",
    "view: (range: (1e300, -1e300), height_scale: 1e300, camera: (zoom: 1e-300, yaw_deg: 1e300)),",
    "view: (range: (1.0, 1.0000000001)),",
    "model: (tau_ex: 1e-300, tau_in: 1e12, c4: 1e12),",
    "coupling: (frac_ee: 1e12, self_weight: -1e12),",
    "coupling: (kernel: Disk(radius: 16.0, profile: MexicanHat(sigma_center: 1e-300, sigma_surround: 1e300, surround: 1e12))),",
    "coupling: (kernel: Disk(radius: 1.0, profile: Flat), kernel_ei: Moore(diagonal: -1e12)),",
    "coupling: (kernel: Matrix(ee: \"missing.npy\", ei: \"missing.npz\")),",
    "coupling: (frac_ee: 0.5, kernel: Matrix(ee: \"a.npy\", ei: \"b.npy\")),",
    "coupling: (kernel: Nearest, kernel_ei: Matrix(ee: \"a.npy\", ei: \"b.npy\")),",
    "kernel: Disk(radius: 3.0, profile: Gaussian(sigma: 1.5)),",
    "kernel: Disk(radius: 4.5, profile: MexicanHat(sigma_center: 1.0, sigma_surround: 3.0, surround: 0.3)),",
    "kernel_ei: Disk(radius: 2.5, profile: Gaussian(sigma: 1e-300)),",
    "kernel: Moore(diagonal: 0.5),",
];

const VARIANTS: &[&str] = &[
    "Zeros",
    "Rest",
    "Random",
    "Explicit",
    "None",
    "Pink",
    "Rk4",
    "Heun",
    "Euler",
    "Open",
    "Periodic",
    "Surface",
    "Heatmap",
    "E",
    "I",
    "Viridis",
    "Hot",
    "BlueWhiteRed",
    "PulseTrain",
    "Nearest",
    "Moore",
    "Disk",
    "Flat",
    "Gaussian",
    "MexicanHat",
    "Matrix",
];

/// Byte offsets of the number literals in `text`.
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        let starts =
            b[k].is_ascii_digit() || (b[k] == b'-' && b.get(k + 1).is_some_and(u8::is_ascii_digit));
        if starts && (k == 0 || !(b[k - 1].is_ascii_alphanumeric() || b[k - 1] == b'_')) {
            let s = k;
            k += 1;
            while k < b.len() && (b[k].is_ascii_alphanumeric() || b"._-+".contains(&b[k])) {
                k += 1;
            }
            out.push((s, k));
        } else {
            k += 1;
        }
    }
    out
}

/// The nearest char boundary at or below `k`.
fn floor_char(text: &str, mut k: usize) -> usize {
    k = k.min(text.len());
    while !text.is_char_boundary(k) {
        k -= 1;
    }
    k
}

/// One to four random mutations of `text`.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut s = text.to_owned();
    for _ in 0..rng.random_range(1..=4) {
        let len = s.len().max(1);
        match rng.random_range(0..6) {
            0 | 1 => {
                let spans = numbers(&s);
                if !spans.is_empty() {
                    let (a, b) = spans[rng.random_range(0..spans.len())];
                    let value = EXTREMES[rng.random_range(0..EXTREMES.len())];
                    s.replace_range(a..b, value);
                }
            }
            2 => {
                let a = floor_char(&s, rng.random_range(0..len));
                let b = floor_char(&s, a + rng.random_range(1..24));
                s.replace_range(a..b, "");
            }
            3 => {
                let a = floor_char(&s, rng.random_range(0..len));
                let b = floor_char(&s, a + rng.random_range(1..40));
                let copy = s[a..b].to_owned();
                s.insert_str(b, &copy);
            }
            4 => {
                // A field spliced after an opening parenthesis.
                let opens: Vec<usize> = s.match_indices('(').map(|(k, _)| k + 1).collect();
                if !opens.is_empty() {
                    let at = opens[rng.random_range(0..opens.len())];
                    s.insert_str(at, SNIPPETS[rng.random_range(0..SNIPPETS.len())]);
                }
            }
            _ => {
                let from = VARIANTS[rng.random_range(0..VARIANTS.len())];
                let to = VARIANTS[rng.random_range(0..VARIANTS.len())];
                if let Some((k, _)) = s.match_indices(from).nth(rng.random_range(0..3)) {
                    s.replace_range(k..k + from.len(), to);
                }
            }
        }
    }
    s
}

/// Uses a valid scene as the commands do; any panic in here is a failure.
fn exercise(scene: &FieldScene) {
    // A saved (resolved) scene always loads again, to the same scene.
    let saved = scene.resolved();
    let text = saved.to_ron_string();
    let again = FieldScene::from_ron_str(&text, "saved.ron")
        .unwrap_or_else(|e| panic!("a resolved scene does not reload: {e}"));
    assert_eq!(again.resolved(), saved);
    // Tick lengths become timer durations (headless ticks, video frames).
    let samples = scene.run.samples();
    assert!(samples >= 1);
    for (what, seconds) in [
        ("run tick", 1.0 / scene.run.sample_rate),
        (
            "video frame",
            scene
                .view
                .as_ref()
                .and_then(|v| v.time_per_frame)
                .unwrap_or(0.05),
        ),
    ] {
        let d = Duration::try_from_secs_f64(seconds)
            .unwrap_or_else(|e| panic!("{what} of {seconds} s is no timer duration: {e}"));
        assert!(!d.is_zero(), "{what} of {seconds} s rounds to zero");
    }
    // An engine built and advanced a little (a few input changes or steps).
    let cells = scene.grid.len();
    if cells > ENGINE_CELLS || (scene.initial == Initial::Rest && cells > 1) {
        return;
    }
    let mut engine = match Engine::from_scene(scene, EngineOptions::default()) {
        Ok(engine) => engine,
        Err(_) => return,
    };
    let mut shortest = scene.integrator.dt() * 20.0;
    for s in scene.effective_stimuli() {
        let Stimulus::PulseTrain { freq, .. } = s;
        shortest = shortest.min(20.0 / freq);
    }
    if let Noise::Pink { sample_rate, .. } = scene.noise {
        shortest = shortest.min(20.0 / sample_rate);
    }
    let _ = engine.advance_to(scene.run.duration.min(shortest));
    let _ = engine.derivatives();
    // What the analysis and the viewer ask of the coupling.
    let coupler = engine.coupler();
    let last = cells.saturating_sub(1);
    for cell in [0, cells / 2, last] {
        let _ = coupler.inputs_of(cell);
        let _ = coupler.fed_cells().of(cell);
        let _ = FrozenInputs::of_cell(coupler, &engine.coeffs, &engine.e, cell, -6.0, -4.0);
    }
}

#[test]
fn mutated_scenes_never_panic() {
    let cases: u64 = std::env::var("EIFIELD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("EIFIELD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let (mut valid, mut panics) = (0u64, Vec::new());
    for case in 0..cases {
        let base = BUILTIN_SCENES[rng.random_range(0..BUILTIN_SCENES.len())].text;
        let text = mutate(base, &mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match FieldScene::from_ron_str(&text, "fuzz.ron") {
                Ok(scene) => {
                    exercise(&scene);
                    true
                }
                Err(e) => {
                    // Every error names where or what.
                    assert!(!e.to_string().is_empty());
                    false
                }
            }
        }));
        match outcome {
            Ok(ok) => valid += u64::from(ok),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panics.push((case, message, text));
            }
        }
        let _ = rng.next_u64();
    }
    std::panic::set_hook(quiet);
    println!(
        "scene fuzz (seed {seed}): {cases} inputs, {valid} valid scenes used, {} panics",
        panics.len()
    );
    for (case, message, text) in panics.iter().take(5) {
        eprintln!("case {case} panicked: {message}\n{text}\n");
    }
    assert!(
        panics.is_empty(),
        "{} of {cases} inputs panicked",
        panics.len()
    );
}
