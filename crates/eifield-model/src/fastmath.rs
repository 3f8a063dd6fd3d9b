//! A branch-free `tanh` that the compiler can vectorise, accurate to a few ulp.
//!
//! With `y = 2|x| = n·ln2 + r` (Cody–Waite reduction, `|r| ≤ ln2/2`), the
//! Cephes Padé form of the exponential is `e^r = (Q + p)/(Q − p)` with
//! `p = r·P(r²)`, so `e^y = 2^n (Q + p)/(Q − p)` and
//!
//! ```text
//! tanh|x| = (e^y − 1)/(e^y + 1) = ((2^n − 1)(Q − p) + 2^n·2p) / ((2^n + 1)(Q − p) + 2^n·2p)
//! ```
//!
//! For `n = 0` this is `p/Q`, the Padé approximant of `tanh(r/2)` itself, so
//! the relative accuracy holds down to zero with no cancellation; for larger
//! `n` every term is well away from cancelling. The code works with
//! `h = r/2 = |x| − n·ln2/2` and coefficients rescaled by powers of two (exact),
//! which saves the doublings, and takes the denominator as the numerator
//! plus `2(Q − p)`. One division, no branches: a
//! loop over slices compiles to SIMD code. [`tanh3`] shares one division
//! among three arguments. Every `a·b + c` goes through [`MulAdd`], so that
//! kernels built for CPUs with FMA fuse it (fewer instructions, shorter
//! dependency chains) and the portable kernel does not. Sweep tests check the
//! maximum relative error of both against the correctly rounded `f64::tanh`.

// The coefficients are kept digit for digit as Cephes publishes them.
#![allow(clippy::excessive_precision)]

/// Above this magnitude `tanh` is ±1 to double precision.
pub const SATURATION: f64 = 22.0;
/// 2·log2(e): `n = round(2|x|·log2 e)`.
pub const TWO_LOG2_E: f64 = 2.0 * std::f64::consts::LOG2_E;
/// ln 2 split for Cody–Waite reduction: high part (exact in few bits).
const LN2_HI: f64 = 6.931_457_519_531_25e-1;
/// ln 2 split for Cody–Waite reduction: low part.
const LN2_LO: f64 = 1.428_606_820_309_417_232_12e-6;
/// Exponent bias of an IEEE double.
const EXP_BIAS: u64 = 1023;
/// Position of the exponent field in an IEEE double.
const MANTISSA_BITS: u32 = 52;
/// 1.5·2^52: adding it to a double of magnitude below 2^51 rounds that double
/// to the nearest integer (ties to even), which then sits in the low mantissa
/// bits. This turns rounding and float-to-integer conversion into one addition
/// and one integer subtraction, both of which vectorise on every SIMD level
/// (an `as i64` cast does not before AVX-512 DQ, and even there the compiler
/// scalarises its saturating semantics).
const ROUNDING_SHIFTER: f64 = 6_755_399_441_055_744.0;

/// Cephes `exp` Padé numerator coefficients P (in r²).
const EXP_P: [f64; 3] = [
    1.261_771_930_748_105_908_78e-4,
    3.029_944_077_074_419_613_00e-2,
    9.999_999_999_999_999_999_10e-1,
];
/// Cephes `exp` Padé denominator coefficients Q (in r²).
const EXP_Q: [f64; 4] = [
    3.001_985_051_386_644_550_42e-6,
    2.524_483_403_496_841_041_92e-3,
    2.272_655_482_081_550_287_66e-1,
    2.000_000_000_000_000_000_09e0,
];
/// `2p = h·P2(h²)`: P rescaled for `h = r/2`, times two (powers of two: exact).
pub const TWO_P_IN_H: [f64; 3] = [64.0 * EXP_P[0], 16.0 * EXP_P[1], 4.0 * EXP_P[2]];
/// `Q = Q(h²)`: Q rescaled for `h = r/2` (powers of two: exact).
pub const Q_IN_H: [f64; 4] = [64.0 * EXP_Q[0], 16.0 * EXP_Q[1], 4.0 * EXP_Q[2], EXP_Q[3]];
/// Added to the bit pattern of `n + ROUNDING_SHIFTER`, it gives the biased
/// exponent `n + EXP_BIAS` (wrapping arithmetic).
const EXPONENT_FROM_SHIFTED: u64 = EXP_BIAS.wrapping_sub(ROUNDING_SHIFTER.to_bits());

/// How `a·b + c` is evaluated.
pub trait MulAdd {
    /// `a·b + c`.
    fn mul_add(a: f64, b: f64, c: f64) -> f64;

    /// `z − n·ln2/2` for a whole `n` with `|n| ≤ 64`.
    fn reduce(n: f64, z: f64) -> f64;
}

/// One rounding (an FMA instruction where the kernel is built for one).
pub struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }

    /// One fused step with ln2/2 rounded to double. The constant's error
    /// puts at most `n·2^-55` into `h`, while `tanh` there is flat: its slope
    /// in `h` is about `4·e^(−2|x|) ≈ 4·2^-n`, so `tanh` moves by under
    /// `n·2^(−n−53)`, below 1e-16 for every `n`.
    #[inline(always)]
    fn reduce(n: f64, z: f64) -> f64 {
        (-n).mul_add(0.5 * std::f64::consts::LN_2, z)
    }
}

/// A multiplication, then an addition: two roundings, any CPU.
pub struct Unfused;

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }

    /// Cody–Waite: `n·LN2_HI/2` is exact (halving is), so only the small
    /// `n·LN2_LO/2` term rounds.
    #[inline(always)]
    fn reduce(n: f64, z: f64) -> f64 {
        (z - n * (0.5 * LN2_HI)) - n * (0.5 * LN2_LO)
    }
}

/// `tanh(x) = num / den`, with `num` carrying the sign of `x` and
/// `2 ≤ den < 2^66` (so products of a few denominators cannot overflow).
#[inline(always)]
fn tanh_fraction<M: MulAdd>(x: f64) -> (f64, f64) {
    // A comparison (not `f64::min`) so that NaN propagates.
    let z = x.abs();
    let z = if z > SATURATION { SATURATION } else { z };
    // Any nearby integer works for the reduction; the shifter rounds to even.
    let shifted = M::mul_add(z, TWO_LOG2_E, ROUNDING_SHIFTER);
    let n = shifted - ROUNDING_SHIFTER;
    // h = r/2 = z − n·ln2/2.
    let h = M::reduce(n, z);
    let h2 = h * h;
    let p = TWO_P_IN_H;
    let two_p = h * M::mul_add(M::mul_add(p[0], h2, p[1]), h2, p[2]);
    let q = Q_IN_H;
    let q = M::mul_add(M::mul_add(M::mul_add(q[0], h2, q[1]), h2, q[2]), h2, q[3]);
    // 2^n (0 ≤ n ≤ 64) from the bit pattern of the shifted value.
    let n_bits = shifted.to_bits().wrapping_add(EXPONENT_FROM_SHIFTED);
    let scale = f64::from_bits(n_bits << MANTISSA_BITS);
    // Q − p, exactly as a subtraction would round it.
    let d = M::mul_add(-0.5, two_p, q);
    let num = M::mul_add(scale - 1.0, d, scale * two_p);
    // Both terms are positive: no cancellation.
    let den = M::mul_add(2.0, d, num);
    // Division is odd in its numerator, so the sign can go on before it.
    (num.copysign(x), den)
}

/// Hyperbolic tangent, branch-free; see the module docs for accuracy.
#[inline(always)]
pub fn tanh<M: MulAdd>(x: f64) -> f64 {
    let (num, den) = tanh_fraction::<M>(x);
    num / den
}

/// `[tanh(a), tanh(b), tanh(c)]` with one division instead of three: the
/// reciprocal of the product of the three denominators is multiplied back by
/// the other two. Division is the slowest vector instruction by far; sharing
/// it costs a few roundings, well within the accuracy the module promises.
#[inline(always)]
pub fn tanh3<M: MulAdd>(a: f64, b: f64, c: f64) -> [f64; 3] {
    let (na, da) = tanh_fraction::<M>(a);
    let (nb, db) = tanh_fraction::<M>(b);
    let (nc, dc) = tanh_fraction::<M>(c);
    let dab = da * db;
    let r = 1.0 / (dab * dc);
    // 1 / (da·db).
    let rab = r * dc;
    [na * db * rab, nb * da * rab, nc * dab * r]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accuracy the engine promises for its tanh.
    const MAX_REL_ERROR: f64 = 1e-14;

    fn rel_err_of(x: f64, fast: f64) -> f64 {
        let exact = x.tanh();
        if exact == 0.0 {
            fast.abs()
        } else {
            ((fast - exact) / exact).abs()
        }
    }

    /// A dense linear sweep over [-25, 25], through the reduction's branch
    /// points and into saturation, plus a logarithmic sweep towards zero.
    fn sweep() -> Vec<f64> {
        let n = 2_000_000;
        let mut points: Vec<f64> = (0..=n)
            .map(|k| -25.0 + 50.0 * k as f64 / n as f64)
            .collect();
        let mut x = 1e-300f64;
        while x < 30.0 {
            points.extend([x, -x, x.next_up(), x.next_down()]);
            x *= 1.001;
        }
        points
    }

    /// The worst relative error over `(x, tanh(x) computed)` pairs.
    fn worst(pairs: impl Iterator<Item = (f64, f64)>) -> (f64, f64) {
        pairs.fold((0.0f64, 0.0f64), |worst, (x, fast)| {
            let e = rel_err_of(x, fast);
            if e > worst.0 { (e, x) } else { worst }
        })
    }

    fn assert_within_tolerance(what: &str, (err, x): (f64, f64)) {
        eprintln!("{what}: max relative error {err:e} at x = {x}");
        assert!(
            err <= MAX_REL_ERROR,
            "{what}: max relative error {err:e} at x = {x}"
        );
    }

    #[test]
    fn sweep_of_the_input_range_stays_within_tolerance() {
        let points = sweep();
        let pairs = points.iter().map(|&x| (x, tanh::<Unfused>(x)));
        assert_within_tolerance("tanh", worst(pairs));
        // `f64::mul_add` is the correctly rounded FMA wherever it runs.
        let pairs = points.iter().map(|&x| (x, tanh::<Fused>(x)));
        assert_within_tolerance("tanh with FMA", worst(pairs));
    }

    #[test]
    fn three_at_once_stay_within_tolerance_in_every_position() {
        three_at_once_within_tolerance::<Unfused>("tanh3");
    }

    #[test]
    fn three_at_once_with_fma_stay_within_tolerance_in_every_position() {
        three_at_once_within_tolerance::<Fused>("tanh3 with FMA");
    }

    fn three_at_once_within_tolerance<M: MulAdd>(what: &str) {
        let points = sweep();
        let len = points.len();
        // Every sweep point in every position, beside companions taken from
        // elsewhere in the sweep and beside the extremes of the denominators
        // (zero and saturated inputs).
        let triples = (0..len).flat_map(|k| {
            let x = points[k];
            let (y, z) = (points[(k * 7 + 13) % len], points[(k * 31 + len / 2) % len]);
            [
                [x, y, z],
                [y, x, z],
                [z, y, x],
                [x, 0.0, 25.0],
                [25.0, x, 1e-300],
                [-1e-300, -22.0, x],
            ]
        });
        let mut worst_at = [(0.0f64, 0.0f64); 3];
        for args in triples {
            let out = tanh3::<M>(args[0], args[1], args[2]);
            for p in 0..3 {
                let e = rel_err_of(args[p], out[p]);
                if e > worst_at[p].0 {
                    worst_at[p] = (e, args[p]);
                }
            }
        }
        for (p, w) in worst_at.into_iter().enumerate() {
            assert_within_tolerance(&format!("{what}, argument {p}"), w);
        }
    }

    #[test]
    fn special_values() {
        special_values_of::<Unfused>();
        special_values_of::<Fused>();
    }

    fn special_values_of<M: MulAdd>() {
        assert_eq!(tanh::<M>(0.0), 0.0);
        assert!(tanh::<M>(-0.0).is_sign_negative());
        assert_eq!(tanh::<M>(1e3), 1.0);
        assert_eq!(tanh::<M>(-1e3), -1.0);
        assert_eq!(tanh::<M>(f64::INFINITY), 1.0);
        assert_eq!(tanh::<M>(f64::NEG_INFINITY), -1.0);
        assert!(tanh::<M>(f64::NAN).is_nan());
        let [a, b, c] = tanh3::<M>(-0.0, 1e3, f64::NEG_INFINITY);
        assert!(a == 0.0 && a.is_sign_negative());
        assert_eq!((b, c), (1.0, -1.0));
        assert!(tanh3::<M>(0.5, f64::NAN, 0.5)[1].is_nan());
    }
}
