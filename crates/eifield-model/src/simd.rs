//! SIMD levels: which instruction sets this CPU has, and the one dispatch
//! that picks the code compiled for a level (the right-hand-side kernel and
//! the stepper's stage loops), after checking that the CPU supports it.

use std::ops::Range;

use crate::coupling::{Coupler, RowWindow};
use crate::fastmath::{Fused, Unfused};
use crate::rhs::{ChunkIn, ChunkKernel, Coeffs, kernel_fused, kernel_generic};
use crate::stepper::Method;
use crate::stepper::pipeline::Rings;
use crate::stepper::stage::{Role, Sweep};

/// The instruction sets a kernel can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimdLevel {
    /// Whatever the baseline target offers.
    Generic,
    /// AVX2 with FMA (4 lanes of f64).
    Avx2,
    /// AVX-512 with FMA (8 lanes of f64).
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
    pub fn kernel(self) -> ChunkKernel {
        LevelCode::of(self).kernel
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
pub(crate) type StagedFn = fn(
    &Sweep<'_>,
    Role,
    (&[f64], &[f64]),
    (&mut [f64], &mut [f64]),
    (&mut [f64], &mut [f64]),
    &mut [f64],
);

/// The coupling sums of a run of cells (see `Coupler::sums_of_cells`),
/// compiled for one SIMD level.
pub(crate) type SumsFn = fn(&Coupler, &[f64], usize, &mut [f64], &mut [f64], &mut [f64]);

/// The coupling sums of a run of columns of one row (see
/// `Coupler::row_sums`), compiled for one SIMD level.
pub(crate) type RowSumsFn = fn(&Coupler, &RowWindow<'_>, usize, &mut [f64], &mut [f64], &mut [f64]);

/// A row block of the pipelined schedule, compiled for one SIMD level.
pub(crate) type PipelinedFn =
    fn(&Sweep<'_>, Method, f64, Range<usize>, (&mut [f64], &mut [f64]), &mut Rings);

/// The kernel and the schedules' loops compiled for one SIMD level, so that
/// the neighbour sums and the stage updates use its vectors as well as the
/// kernel. This is the one place where a level's code is chosen.
#[derive(Clone, Copy)]
pub(crate) struct LevelCode {
    /// The right-hand side of a chunk.
    pub(crate) kernel: ChunkKernel,
    /// The coupling sums of a run of cells.
    pub(crate) sums: SumsFn,
    /// The coupling sums of a run of columns of one row.
    pub(crate) row_sums: RowSumsFn,
    /// One stage of the staged schedule.
    pub(crate) staged: StagedFn,
    /// One row block of the pipelined schedule.
    pub(crate) pipelined: PipelinedFn,
}

impl LevelCode {
    /// The code for `level`, which must be one of [`SimdLevel::available`].
    pub(crate) fn of(level: SimdLevel) -> Self {
        level.assert_supported();
        match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `assert_supported` above checked that the CPU has AVX2 and FMA.
            SimdLevel::Avx2 => Self {
                kernel: |c, x, de, di| unsafe { kernel_avx2(c, x, de, di) },
                sums: |k, e, g0, ee, ei, scratch| unsafe { sums_avx2(k, e, g0, ee, ei, scratch) },
                row_sums: |k, w, c0, ee, ei, scratch| unsafe {
                    row_sums_avx2(k, w, c0, ee, ei, scratch)
                },
                staged: |s, role, x, acc, out, scratch| unsafe {
                    staged_avx2(s, role, x, acc, out, scratch)
                },
                pipelined: |s, m, h, rows, out, rings| unsafe {
                    pipelined_avx2(s, m, h, rows, out, rings)
                },
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `assert_supported` above checked that the CPU has AVX-512 F/DQ/VL and FMA.
            SimdLevel::Avx512 => Self {
                kernel: |c, x, de, di| unsafe { kernel_avx512(c, x, de, di) },
                sums: |k, e, g0, ee, ei, scratch| unsafe { sums_avx512(k, e, g0, ee, ei, scratch) },
                row_sums: |k, w, c0, ee, ei, scratch| unsafe {
                    row_sums_avx512(k, w, c0, ee, ei, scratch)
                },
                staged: |s, role, x, acc, out, scratch| unsafe {
                    staged_avx512(s, role, x, acc, out, scratch)
                },
                pipelined: |s, m, h, rows, out, rings| unsafe {
                    pipelined_avx512(s, m, h, rows, out, rings)
                },
            },
            _ => Self {
                kernel: kernel_generic,
                sums: |k, e, g0, ee, ei, scratch| {
                    k.sums_of_cells::<Unfused>(e, g0, ee, ei, scratch)
                },
                row_sums: |k, w, c0, ee, ei, scratch| k.row_sums::<Unfused>(w, c0, ee, ei, scratch),
                staged: |s, role, x, acc, out, scratch| {
                    s.staged_stage::<Unfused>(role, x, acc, out, scratch)
                },
                pipelined: |s, m, h, rows, out, rings| {
                    s.pipelined_block::<Unfused>(m, h, rows, out, rings)
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
        $features:literal
    ) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $row_sums(
            k: &Coupler,
            window: &RowWindow<'_>,
            c0: usize,
            ee: &mut [f64],
            ei: &mut [f64],
            scratch: &mut [f64],
        ) {
            k.row_sums::<Fused>(window, c0, ee, ei, scratch)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $sums(
            k: &Coupler,
            e: &[f64],
            g0: usize,
            ee: &mut [f64],
            ei: &mut [f64],
            scratch: &mut [f64],
        ) {
            k.sums_of_cells::<Fused>(e, g0, ee, ei, scratch)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $kernel(c: &Coeffs, x: &ChunkIn<'_>, de: &mut [f64], di: &mut [f64]) {
            kernel_fused(c, x, de, di)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $staged(
            s: &Sweep<'_>,
            role: Role,
            x: (&[f64], &[f64]),
            acc: (&mut [f64], &mut [f64]),
            out: (&mut [f64], &mut [f64]),
            scratch: &mut [f64],
        ) {
            s.staged_stage::<Fused>(role, x, acc, out, scratch)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $pipelined(
            s: &Sweep<'_>,
            method: Method,
            h: f64,
            rows: Range<usize>,
            out: (&mut [f64], &mut [f64]),
            rings: &mut Rings,
        ) {
            s.pipelined_block::<Fused>(method, h, rows, out, rings)
        }
    };
}

stage_loops_for!(
    kernel_avx2,
    sums_avx2,
    row_sums_avx2,
    staged_avx2,
    pipelined_avx2,
    "avx2,fma"
);
stage_loops_for!(
    kernel_avx512,
    sums_avx512,
    row_sums_avx512,
    staged_avx512,
    pipelined_avx512,
    "avx512f,avx512dq,avx512vl,fma"
);
