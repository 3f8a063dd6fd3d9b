//! This CPU's peak rate of fused multiply-adds on one core, in both
//! precisions, with the SIMD level the engine uses (AVX-512 or AVX2):
//! `cargo run --release -p eifield-model --example fma_peak`. Sixteen
//! independent vector accumulators hide the FMA latency, so the loop runs at
//! the FMA units' throughput. Prints lane operations per second (one FMA on
//! one lane is one operation, as the README counts the kernel's operations),
//! to set the engine's measured rate against, and what a vector division
//! costs beside them: the same loop with one division (on a chain of its
//! own) per round of sixteen FMAs, the extra time in FMA slots.

use std::hint::black_box;
use std::time::Instant;

/// Independent accumulators: enough to cover latency × throughput.
const CHAINS: usize = 16;
/// Iterations of the loop (each one FMA per lane of every accumulator).
const ROUNDS: usize = 20_000_000;

/// `ROUNDS` FMAs on `CHAINS` vectors: `$vec` registers, `$fma` the
/// intrinsic, `$set1`/`$reduce` to fill and to read them.
macro_rules! peak_of {
    ($name:ident, $t:ty, $vec:ty, $set1:ident, $fma:ident, $div:ident, $store:ident, $lanes:literal, $features:literal) => {
        /// `CHAINS · ROUNDS` vector FMAs, and with `DIVIDE` one division per round.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $name<const DIVIDE: bool>(a: $t, b: $t) -> f64 {
            use std::arch::x86_64::*;
            let (va, vb) = ($set1(a), $set1(b));
            let mut acc: [$vec; CHAINS] = [$set1(1.0); CHAINS];
            let (one, mut quotient) = ($set1(1.0), $set1(1.5));
            for _ in 0..ROUNDS {
                for x in acc.iter_mut() {
                    *x = $fma(*x, va, vb);
                }
                if DIVIDE {
                    quotient = $div(one, quotient);
                }
            }
            let mut sum = 0.0;
            for x in acc.into_iter().chain([quotient]) {
                let mut lanes = [0.0 as $t; $lanes];
                // SAFETY: `lanes` holds exactly one vector.
                unsafe { $store(lanes.as_mut_ptr(), x) };
                sum += lanes.iter().map(|&v| v as f64).sum::<f64>();
            }
            sum
        }
    };
}

peak_of!(
    peak_f64_avx512,
    f64,
    __m512d,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_div_pd,
    _mm512_storeu_pd,
    8,
    "avx512f,fma"
);
peak_of!(
    peak_f32_avx512,
    f32,
    __m512,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_div_ps,
    _mm512_storeu_ps,
    16,
    "avx512f,fma"
);
peak_of!(
    peak_f64_avx2,
    f64,
    __m256d,
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_div_pd,
    _mm256_storeu_pd,
    4,
    "avx2,fma"
);
peak_of!(
    peak_f32_avx2,
    f32,
    __m256,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_div_ps,
    _mm256_storeu_ps,
    8,
    "avx2,fma"
);

/// Lane operations per second of `run`, which does `lanes · CHAINS · ROUNDS`
/// FMAs, and the seconds it took.
fn rate(lanes: usize, run: impl Fn() -> f64) -> (f64, f64) {
    // Once to warm up (clock, caches), then the best of three.
    black_box(run());
    let seconds = (0..3)
        .map(|_| {
            let start = Instant::now();
            black_box(run());
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    ((lanes * CHAINS * ROUNDS) as f64 / seconds, seconds)
}

/// The peak FMA rate of `plain`, and what one division per round added to
/// it, in FMA slots (rounds of `CHAINS` FMAs).
fn peak_and_division(
    lanes: usize,
    plain: impl Fn() -> f64,
    dividing: impl Fn() -> f64,
) -> (f64, f64) {
    let (peak, seconds) = rate(lanes, plain);
    let (_, with_division) = rate(lanes, dividing);
    let slots = (with_division - seconds) / seconds * CHAINS as f64;
    (peak, slots)
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        let level = eifield_model::rhs::SimdLevel::detect();
        // Inputs through `black_box` at every call, so that no call is
        // computed once for all.
        let (a64, b64) = (|| black_box(0.999_999), || black_box(1e-7));
        let (a32, b32) = (|| black_box(0.999_9f32), || black_box(1e-5f32));
        // SAFETY: each function runs only where `detect` found its level.
        let ((f64_rate, f64_division), (f32_rate, f32_division)) = match level {
            eifield_model::rhs::SimdLevel::Avx512 => (
                peak_and_division(
                    8,
                    || unsafe { peak_f64_avx512::<false>(a64(), b64()) },
                    || unsafe { peak_f64_avx512::<true>(a64(), b64()) },
                ),
                peak_and_division(
                    16,
                    || unsafe { peak_f32_avx512::<false>(a32(), b32()) },
                    || unsafe { peak_f32_avx512::<true>(a32(), b32()) },
                ),
            ),
            eifield_model::rhs::SimdLevel::Avx2 => (
                peak_and_division(
                    4,
                    || unsafe { peak_f64_avx2::<false>(a64(), b64()) },
                    || unsafe { peak_f64_avx2::<true>(a64(), b64()) },
                ),
                peak_and_division(
                    8,
                    || unsafe { peak_f32_avx2::<false>(a32(), b32()) },
                    || unsafe { peak_f32_avx2::<true>(a32(), b32()) },
                ),
            ),
            eifield_model::rhs::SimdLevel::Generic => {
                eprintln!("fma_peak: this CPU has neither AVX-512 nor AVX2 with FMA");
                return;
            }
        };
        println!(
            "simd={} f64_fma_lane_ops_per_s={f64_rate:.3e} f32_fma_lane_ops_per_s={f32_rate:.3e} \
             (one core); a vector division beside them costs {f64_division:.1} FMA slots in f64, \
             {f32_division:.1} in f32",
            level.name()
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    eprintln!("fma_peak: x86-64 only");
}
