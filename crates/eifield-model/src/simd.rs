//! SIMD levels: which instruction sets this CPU has, and the one dispatch
//! that picks the code compiled for a level (the right-hand-side kernel and
//! the stepper's stage loops), after checking that the CPU supports it.

use std::ops::Range;

use crate::coupling::{Coupler, RowWindow};
use crate::fastmath::Unfused;
#[cfg(target_arch = "x86_64")]
use crate::fastmath::{Fused, FusedPacks};
use crate::real::Real;
#[cfg(target_arch = "x86_64")]
use crate::rhs::{ChunkIn, Coeffs, kernel_fused};
use crate::rhs::{ChunkKernel, kernel_generic};
use crate::stepper::Method;
use crate::stepper::pipeline::Rings;
use crate::stepper::stage::{Role, Sweep};

/// The instruction sets a kernel can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimdLevel {
    /// Whatever the baseline target offers.
    Generic,
    /// AVX2 with FMA (4 lanes of f64, 8 of f32).
    Avx2,
    /// AVX-512 with FMA (8 lanes of f64, 16 of f32).
    Avx512,
}

impl SimdLevel {
    /// The best level this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            if fma
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Self::Avx512;
            }
            if fma && std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Generic
    }

    /// All levels this CPU supports, lowest first.
    pub fn available() -> Vec<Self> {
        let best = Self::detect();
        [Self::Generic, Self::Avx2, Self::Avx512]
            .into_iter()
            .filter(|l| *l <= best)
            .collect()
    }

    /// Panics unless this CPU supports the level: code built for it may only
    /// run after this check.
    pub fn assert_supported(self) {
        assert!(
            self <= Self::detect(),
            "{self:?} is not supported by this CPU"
        );
    }

    /// The kernel for this level. Only levels from [`SimdLevel::available`] may be used.
    pub fn kernel<T: Real>(self) -> ChunkKernel<T> {
        LevelCode::<T>::of(self).kernel
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }
}

impl PartialOrd for SimdLevel {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SimdLevel {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

/// A stage of the staged schedule, compiled for one SIMD level.
pub(crate) type StagedFn<T> = fn(
    &Sweep<'_, T>,
    Role,
    (&[T], &[T]),
    (&mut [T], &mut [T]),
    (&mut [T], &mut [T]),
    (&mut [T], &mut [T]),
    &mut [T],
);

/// The coupling sums of a run of cells (see `Coupler::sums_of_cells`),
/// compiled for one SIMD level.
pub(crate) type SumsFn<T> = fn(&Coupler, &[T], usize, &mut [T], &mut [T], &mut [T]);

/// The coupling sums of a run of columns of one row (see
/// `Coupler::row_sums`), compiled for one SIMD level.
pub(crate) type RowSumsFn<T> = fn(&Coupler, &RowWindow<'_, T>, usize, &mut [T], &mut [T], &mut [T]);

/// A row block of the pipelined schedule, compiled for one SIMD level.
pub(crate) type PipelinedFn<T> = fn(
    &Sweep<'_, T>,
    Method,
    f64,
    Range<usize>,
    (&mut [T], &mut [T]),
    (&mut [T], &mut [T]),
    &mut Rings<T>,
);

/// The kernel and the schedules' loops compiled for one SIMD level, so that
/// the neighbour sums and the stage updates use its vectors as well as the
/// kernel. This is the one place where a level's code is chosen.
pub(crate) struct LevelCode<T> {
    /// The right-hand side of a chunk.
    pub(crate) kernel: ChunkKernel<T>,
    /// The coupling sums of a run of cells.
    pub(crate) sums: SumsFn<T>,
    /// The coupling sums of a run of columns of one row.
    pub(crate) row_sums: RowSumsFn<T>,
    /// One stage of the staged schedule.
    pub(crate) staged: StagedFn<T>,
    /// One row block of the pipelined schedule.
    pub(crate) pipelined: PipelinedFn<T>,
}

impl<T> Clone for LevelCode<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for LevelCode<T> {}

impl<T: Real> LevelCode<T> {
    /// The code for `level`, which must be one of [`SimdLevel::available`].
    pub(crate) fn of(level: SimdLevel) -> Self {
        level.assert_supported();
        match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `assert_supported` above checked that the CPU has AVX2 and FMA.
            SimdLevel::Avx2 => Self {
                kernel: |c, x, de, di| unsafe { kernel_avx2::<T>(c, x, de, di) },
                sums: |k, e, g0, ee, ei, scratch| unsafe {
                    sums_avx2::<T>(k, e, g0, ee, ei, scratch)
                },
                row_sums: |k, w, c0, ee, ei, scratch| unsafe {
                    row_sums_avx2::<T>(k, w, c0, ee, ei, scratch)
                },
                staged: |s, role, x, acc, out, comp, scratch| unsafe {
                    staged_avx2::<T>(s, role, x, acc, out, comp, scratch)
                },
                pipelined: |s, m, h, rows, out, comp, rings| unsafe {
                    pipelined_avx2::<T>(s, m, h, rows, out, comp, rings)
                },
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `assert_supported` above checked that the CPU has AVX-512 F/DQ/VL and FMA.
            SimdLevel::Avx512 => Self {
                kernel: |c, x, de, di| unsafe { kernel_avx512::<T>(c, x, de, di) },
                sums: |k, e, g0, ee, ei, scratch| unsafe {
                    sums_avx512::<T>(k, e, g0, ee, ei, scratch)
                },
                row_sums: |k, w, c0, ee, ei, scratch| unsafe {
                    row_sums_avx512::<T>(k, w, c0, ee, ei, scratch)
                },
                staged: |s, role, x, acc, out, comp, scratch| unsafe {
                    staged_avx512::<T>(s, role, x, acc, out, comp, scratch)
                },
                pipelined: |s, m, h, rows, out, comp, rings| unsafe {
                    pipelined_avx512::<T>(s, m, h, rows, out, comp, rings)
                },
            },
            _ => Self {
                kernel: kernel_generic::<T>,
                sums: |k, e, g0, ee, ei, scratch| {
                    k.sums_of_cells::<Unfused, T>(e, g0, ee, ei, scratch)
                },
                row_sums: |k, w, c0, ee, ei, scratch| {
                    k.row_sums::<Unfused, T>(w, c0, ee, ei, scratch)
                },
                staged: |s, role, x, acc, out, comp, scratch| {
                    s.staged_stage::<Unfused>(role, x, acc, out, comp, scratch)
                },
                pipelined: |s, m, h, rows, out, comp, rings| {
                    s.pipelined_block::<Unfused>(m, h, rows, out, comp, rings)
                },
            },
        }
    }
}

/// Defines the kernel and the two stage loops compiled with one SIMD level's instructions
/// (and fused multiply-adds); [`LevelCode::of`] checks the CPU before use.
macro_rules! stage_loops_for {
    (
        $kernel:ident,
        $sums:ident,
        $row_sums:ident,
        $staged:ident,
        $pipelined:ident,
        $features:literal,
        $fused:ty
    ) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $row_sums<T: Real>(
            k: &Coupler,
            window: &RowWindow<'_, T>,
            c0: usize,
            ee: &mut [T],
            ei: &mut [T],
            scratch: &mut [T],
        ) {
            k.row_sums::<$fused, T>(window, c0, ee, ei, scratch)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $sums<T: Real>(
            k: &Coupler,
            e: &[T],
            g0: usize,
            ee: &mut [T],
            ei: &mut [T],
            scratch: &mut [T],
        ) {
            k.sums_of_cells::<$fused, T>(e, g0, ee, ei, scratch)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $kernel<T: Real>(c: &Coeffs, x: &ChunkIn<'_, T>, de: &mut [T], di: &mut [T]) {
            kernel_fused::<T>(c, x, de, di)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $staged<T: Real>(
            s: &Sweep<'_, T>,
            role: Role,
            x: (&[T], &[T]),
            acc: (&mut [T], &mut [T]),
            out: (&mut [T], &mut [T]),
            comp: (&mut [T], &mut [T]),
            scratch: &mut [T],
        ) {
            s.staged_stage::<$fused>(role, x, acc, out, comp, scratch)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $pipelined<T: Real>(
            s: &Sweep<'_, T>,
            method: Method,
            h: f64,
            rows: Range<usize>,
            out: (&mut [T], &mut [T]),
            comp: (&mut [T], &mut [T]),
            rings: &mut Rings<T>,
        ) {
            s.pipelined_block::<$fused>(method, h, rows, out, comp, rings)
        }
    };
}

stage_loops_for!(
    kernel_avx2,
    sums_avx2,
    row_sums_avx2,
    staged_avx2,
    pipelined_avx2,
    "avx2,fma",
    Fused
);
stage_loops_for!(
    kernel_avx512,
    sums_avx512,
    row_sums_avx512,
    staged_avx512,
    pipelined_avx512,
    "avx512f,avx512dq,avx512vl,fma",
    FusedPacks
);
