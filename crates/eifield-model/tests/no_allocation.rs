//! Stepping allocates nothing: a counting global allocator watches every
//! thread while steps run on both schedules, one thread and several, in
//! both precisions.
//!
//! Built without the test harness (`harness = false`): the harness's own
//! thread allocates now and then while it waits for a test (seen on a busy
//! machine: a few allocations of its thread inside a counted window), so
//! the checks run on the main thread, with no thread but the engine's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use eifield_model::coupling::{Coupler, Kernel, Profile};
use eifield_model::grid::{Boundary, Grid};
use eifield_model::rhs::{Coeffs, SimdLevel};
use eifield_model::scene::Coupling;
use eifield_model::stepper::{Method, Schedule, Stepper};
use eifield_model::{Engine, Real};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Steps counted: well past the 63 jobs after which rayon's queue of
/// outside jobs allocates a new block.
const STEPS: usize = 300;

/// One process, one thread of its own, so that nothing else allocates while
/// the checks count.
fn main() {
    // Steppers measured stay alive until the end: see below.
    let _double = steps_allocate_nothing_on_any_schedule_or_thread_count::<f64>();
    let _single = steps_allocate_nothing_on_any_schedule_or_thread_count::<f32>();
    the_engine_allocates_nothing_while_it_integrates_a_pulse_train::<f64>();
    the_engine_allocates_nothing_while_it_integrates_a_pulse_train::<f32>();
    println!("no_allocation: stepping and integrating allocated nothing (both precisions)");
}

fn steps_allocate_nothing_on_any_schedule_or_thread_count<T: Real>() -> Vec<Stepper<T>> {
    let coeffs = Coeffs::from_scene(&eifield_model::FieldScene::default());
    let cases = [
        (Grid::new(7, 7, Boundary::Open), Schedule::Staged, 1),
        (
            Grid::new(150, 130, Boundary::Periodic),
            Schedule::Pipelined,
            1,
        ),
        (Grid::new(150, 130, Boundary::Open), Schedule::Pipelined, 2),
        (
            Grid::new(150, 130, Boundary::Periodic),
            Schedule::Pipelined,
            5,
        ),
    ];
    // Steppers measured so far stay alive until the end: a dropped stepper's
    // pool threads wind down in the background (and may allocate while they
    // do), which must not fall into a later measurement.
    let mut measured = Vec::new();
    let disk = |grid: Grid| {
        let coupling = Coupling {
            kernel: Kernel::Disk {
                radius: 3.0,
                profile: Profile::Gaussian { sigma: 1.5 },
            },
            kernel_ei: Some(Kernel::Moore { diagonal: 0.5 }),
            ..Coupling::default()
        };
        Coupler::build(&coupling, grid).expect("a stencil coupling")
    };
    let mut couplers: Vec<_> = cases
        .iter()
        .map(|&(grid, schedule, threads)| (Coupler::nearest(grid), schedule, threads))
        .collect();
    couplers.push((disk(Grid::new(7, 7, Boundary::Open)), Schedule::Staged, 1));
    couplers.push((
        disk(Grid::new(150, 130, Boundary::Periodic)),
        Schedule::Pipelined,
        2,
    ));
    for (coupler, schedule, threads) in couplers {
        let grid = *coupler.grid();
        for method in [Method::Rk4, Method::Heun, Method::Euler] {
            let n = grid.len();
            let drive = vec![T::of(-1.5); n];
            let h_in = vec![T::of(-3.0); n];
            let (mut e, mut i) = (vec![T::of(-1.0); n], vec![T::of(0.1); n]);
            let mut stepper =
                Stepper::with_schedule(method, &coupler, threads, SimdLevel::detect(), schedule);
            // The first steps may set up the pool's threads (once per thread).
            for _ in 0..5 {
                stepper.step(&coupler, &coeffs, &drive, &h_in, &mut e, &mut i, 0.01);
            }
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            stepper.workers().run(|| {
                for _ in 0..STEPS {
                    stepper.step(&coupler, &coeffs, &drive, &h_in, &mut e, &mut i, 0.01);
                }
            });
            let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;
            assert_eq!(
                allocated,
                0,
                "{} {method:?} on {}x{} {schedule:?} with {threads} threads and {:?} allocated {allocated} times in {STEPS} steps",
                T::NAME,
                grid.rows,
                grid.cols,
                coupler.ee()
            );
            assert!(e.iter().chain(&i).all(|v| v.is_finite()));
            measured.push(stepper);
        }
    }
    measured
}

fn the_engine_allocates_nothing_while_it_integrates_a_pulse_train<T: Real>() {
    let scene = eifield_model::FieldScene::from_ron_str(
        "(grid: (rows: 140, cols: 140), stimuli: Some([PulseTrain(row: 70, col: 70, freq: 2.0, width: 0.1, amp: 6.0)]))",
        "test",
    )
    .unwrap();
    for threads in [1, 2] {
        let mut engine = Engine::<T>::build(
            &scene,
            eifield_model::EngineOptions {
                threads,
                simd: None,
            },
        )
        .unwrap();
        engine.advance_to(0.5).unwrap();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        // Many pulses: every drive change and every step in between.
        engine.advance_to(10.0).unwrap();
        let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;
        assert_eq!(
            allocated,
            0,
            "{} on {threads} threads: {allocated} allocations",
            T::NAME
        );
        assert!(engine.steps > 900, "{} steps", engine.steps);
    }
}
