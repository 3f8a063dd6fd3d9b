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
//! `n` every term is well away from cancelling. One division, no branches: a
//! loop over slices compiles to SIMD code. A sweep test checks the maximum
//! relative error against the correctly rounded `f64::tanh`.

// The coefficients are kept digit for digit as Cephes publishes them.
#![allow(clippy::excessive_precision)]

/// Above this magnitude `tanh` is ±1 to double precision.
const SATURATION: f64 = 22.0;
/// log2(e).
const LOG2_E: f64 = std::f64::consts::LOG2_E;
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

/// Hyperbolic tangent, branch-free; see the module docs for accuracy.
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    // A comparison (not `f64::min`) so that NaN propagates.
    let z = x.abs();
    let z = if z > SATURATION { SATURATION } else { z };
    let y = 2.0 * z;
    // Any nearby integer works for the reduction; the shifter rounds to even.
    let shifted = y * LOG2_E + ROUNDING_SHIFTER;
    let n = shifted - ROUNDING_SHIFTER;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let r2 = r * r;
    let p = r * ((EXP_P[0] * r2 + EXP_P[1]) * r2 + EXP_P[2]);
    let q = ((EXP_Q[0] * r2 + EXP_Q[1]) * r2 + EXP_Q[2]) * r2 + EXP_Q[3];
    // 2^n: n (0 ≤ n ≤ 64) is the difference of the bit patterns.
    let n_bits = shifted
        .to_bits()
        .wrapping_sub(ROUNDING_SHIFTER.to_bits())
        .wrapping_add(EXP_BIAS);
    let scale = f64::from_bits(n_bits << MANTISSA_BITS);
    let d = q - p;
    let two_p_scaled = scale * (2.0 * p);
    let num = (scale - 1.0) * d + two_p_scaled;
    let den = (scale + 1.0) * d + two_p_scaled;
    (num / den).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accuracy the engine promises for its tanh.
    const MAX_REL_ERROR: f64 = 1e-14;

    fn rel_err(x: f64) -> f64 {
        let exact = x.tanh();
        let fast = tanh(x);
        if exact == 0.0 {
            fast.abs()
        } else {
            ((fast - exact) / exact).abs()
        }
    }

    #[test]
    fn sweep_of_the_input_range_stays_within_tolerance() {
        let mut worst = (0.0f64, 0.0f64);
        // Dense linear sweep over [-25, 25] including the branch point and
        // the saturation region, plus a logarithmic sweep towards zero.
        let n = 2_000_000;
        for k in 0..=n {
            let x = -25.0 + 50.0 * k as f64 / n as f64;
            let e = rel_err(x);
            if e > worst.0 {
                worst = (e, x);
            }
        }
        let mut x = 1e-300f64;
        while x < 30.0 {
            for v in [x, -x, x.next_up(), x.next_down()] {
                let e = rel_err(v);
                if e > worst.0 {
                    worst = (e, v);
                }
            }
            x *= 1.001;
        }
        eprintln!("max relative error {:e} at x = {}", worst.0, worst.1);
        assert!(
            worst.0 <= MAX_REL_ERROR,
            "max relative error {:e} at x = {}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn special_values() {
        assert_eq!(tanh(0.0), 0.0);
        assert!(tanh(-0.0).is_sign_negative());
        assert_eq!(tanh(1e3), 1.0);
        assert_eq!(tanh(-1e3), -1.0);
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
    }
}
