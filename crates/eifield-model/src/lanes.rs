//! The arithmetic of the kernel over one value or over a pack of them
//! ([`Lanes`]), so that the same code computes a cell in the engine's float
//! type and a pack of cells ([`Packed`]), lane by lane, with the same bits.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::real::Real;

/// Values the `tanh` and the kernel compute on: a float of the engine
/// ([`Real`]) or a pack of them ([`Packed`]). Every operation acts on each lane as
/// it does on one value, so a lane's result has the bits of the same
/// computation on that value alone.
pub trait Lanes:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// The float type of a lane.
    type Scalar: Real;

    /// `x` in every lane.
    fn splat(x: Self::Scalar) -> Self;
    /// `self·b + c` with one rounding.
    fn fused_mul_add(self, b: Self, c: Self) -> Self;
    /// `|self|`.
    fn abs(self) -> Self;
    /// `limit` where `self > limit`, else `self` (so NaN stays NaN).
    fn at_most(self, limit: Self) -> Self;
    /// `|self|` with the sign of `sign`.
    fn copysign(self, sign: Self) -> Self;
    /// `2^-n` for the whole number `0 ≤ n ≤ 64` held in the low mantissa
    /// bits of `shifted = n + TANH.rounding_shifter` (wrapping integer
    /// arithmetic on the bit pattern; vectorises on every SIMD level).
    fn inverse_power_of_two_from_shifted(self) -> Self;
}

/// A [`Lanes`] type whose lanes come from and go to consecutive values of
/// a slice: a float itself (one lane) or a vector pack.
pub trait Packed<T>: Lanes<Scalar = T> {
    /// Lanes.
    const LANES: usize;
    /// The lanes from the first [`Packed::LANES`] values of `values`.
    fn load(values: &[T]) -> Self;
    /// The lanes into the first [`Packed::LANES`] values of `out`.
    fn store(self, out: &mut [T]);
}

impl<T: Real> Packed<T> for T {
    const LANES: usize = 1;
    #[inline(always)]
    fn load(values: &[T]) -> Self {
        values[0]
    }
    #[inline(always)]
    fn store(self, out: &mut [T]) {
        out[0] = self;
    }
}

/// `N` values of `T` computed on together: each operation is a short loop
/// over the lanes, which code built for a SIMD level compiles to a few
/// vector instructions issued one after the other. With two vectors' worth
/// of cells the kernel's two independent chains of operations interleave,
/// so that the core has more of them to run at once (see
/// [`crate::fastmath::MulAdd::PACKS`]). Everything on a pack has to end
/// up inlined into that code: `[T; 3]::map` once left `tanh3`'s three
/// fractions in a function of their own, built without the SIMD level,
/// which ran each lane apart (thirty times slower).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pack<T, const N: usize>([T; N]);

impl<T: Real, const N: usize> Pack<T, N> {
    #[inline(always)]
    fn map(self, f: impl Fn(T) -> T) -> Self {
        let mut out = self.0;
        for o in &mut out {
            *o = f(*o);
        }
        Self(out)
    }

    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(T, T) -> T) -> Self {
        let mut out = self.0;
        for (o, &b) in out.iter_mut().zip(&other.0) {
            *o = f(*o, b);
        }
        Self(out)
    }
}

impl<T: Real, const N: usize> Add for Pack<T, N> {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }
}

impl<T: Real, const N: usize> Sub for Pack<T, N> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self.zip(other, |a, b| a - b)
    }
}

impl<T: Real, const N: usize> Mul for Pack<T, N> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self.zip(other, |a, b| a * b)
    }
}

impl<T: Real, const N: usize> Div for Pack<T, N> {
    type Output = Self;
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        self.zip(other, |a, b| a / b)
    }
}

impl<T: Real, const N: usize> Neg for Pack<T, N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
}

impl<T: Real, const N: usize> Lanes for Pack<T, N> {
    type Scalar = T;

    #[inline(always)]
    fn splat(x: T) -> Self {
        Self([x; N])
    }
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        let mut out = self.0;
        for ((o, &b), &c) in out.iter_mut().zip(&b.0).zip(&c.0) {
            *o = o.fused_mul_add(b, c);
        }
        Self(out)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.map(Lanes::abs)
    }
    #[inline(always)]
    fn at_most(self, limit: Self) -> Self {
        self.zip(limit, Lanes::at_most)
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        self.zip(sign, Lanes::copysign)
    }
    #[inline(always)]
    fn inverse_power_of_two_from_shifted(self) -> Self {
        self.map(Lanes::inverse_power_of_two_from_shifted)
    }
}

impl<T: Real, const N: usize> Packed<T> for Pack<T, N> {
    const LANES: usize = N;
    #[inline(always)]
    fn load(values: &[T]) -> Self {
        let mut out = [T::ZERO; N];
        out.copy_from_slice(&values[..N]);
        Self(out)
    }
    #[inline(always)]
    fn store(self, out: &mut [T]) {
        out[..N].copy_from_slice(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastmath::{Fused, tanh3};

    /// Arguments through the `tanh`'s ranges and its special values.
    fn arguments() -> Vec<f64> {
        let mut x: Vec<f64> = (-4000..=4000).map(|k| k as f64 * 0.0061).collect();
        x.extend([
            0.0, -0.0, 1e-300, -1e-300, 5e-324, 21.9, 22.0, 22.1, 700.0, -700.0,
        ]);
        x.extend([
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MAX,
            f64::MIN,
        ]);
        x
    }

    #[test]
    fn a_pack_gives_each_lane_the_bits_of_the_scalar_code() {
        let x = arguments();
        let lanes = <Pack<f64, 16>>::LANES;
        // Three differently shifted windows of the arguments, as tanh3 takes.
        for start in (0..x.len() - 2 * lanes).step_by(lanes / 2) {
            let [a, b, c] = [0, 3, 7].map(|s| &x[start + s..start + s + lanes]);
            let packs = tanh3::<Fused, Pack<f64, 16>>(
                Pack::<f64, 16>::load(a),
                Pack::<f64, 16>::load(b),
                Pack::<f64, 16>::load(c),
            );
            let mut got = [[0.0; 16]; 3];
            for (p, g) in packs.into_iter().zip(&mut got) {
                p.store(g);
            }
            for l in 0..lanes {
                let want = tanh3::<Fused, f64>(a[l], b[l], c[l]);
                for j in 0..3 {
                    assert_eq!(
                        got[j][l].to_bits(),
                        want[j].to_bits(),
                        "tanh3 of ({}, {}, {}), result {j}: pack {} against {}",
                        a[l],
                        b[l],
                        c[l],
                        got[j][l],
                        want[j]
                    );
                }
            }
        }
    }
}
