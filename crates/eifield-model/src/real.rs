//! The floating-point types the CPU engine computes in: [`Real`] is
//! implemented by `f64` (the default, bit for bit the engine of every
//! release) and `f32` (twice the SIMD lanes, for exploration), so that the
//! model, the stencils and the schedules are written once for both.
//!
//! Parameters, times and the drive's sum `h_ex + s(t) + σ·p(t)` stay in
//! `f64`; a value enters the engine's type by [`Real::of`], rounded once.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub};

use crate::lanes::{Lanes, Packed};

/// A float type the engine computes in.
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + Debug
    + PartialEq
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + MulAssign
    + Lanes<Scalar = Self>
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `"f64"` or `"f32"`, as the command line and the manifest name it.
    const NAME: &'static str;
    /// The precision this type is.
    const PRECISION: Precision;
    /// The cells the kernel computes together where its SIMD level asks
    /// for packs ([`crate::fastmath::MulAdd::PACKS`], AVX-512): sixteen in
    /// f64, two vectors; in f32 the type itself, one cell at a time (packs
    /// of two vectors ran no faster there).
    type Pack: Packed<Self>;
    /// The tanh's constants for this type (see [`crate::fastmath`]).
    const TANH: TanhConstants<Self>;
    /// Whether a step adds its increment to the state with a running
    /// compensation per cell (Kahan summation), which keeps the rounding of
    /// many small increments from piling up.
    const COMPENSATED: bool;

    /// `x` rounded to this type (exact for `f64`).
    fn of(x: f64) -> Self;
    /// The value as an `f64` (exact).
    fn to_f64(self) -> f64;
    /// `values` as this type's slice, if this type is `f64`.
    fn as_same(values: &[f64]) -> Option<&[Self]>;
    /// Neither infinite nor NaN.
    fn is_finite(self) -> bool;
}

/// The constants of the branch-free tanh for one float type.
#[derive(Clone, Copy, Debug)]
pub struct TanhConstants<T> {
    /// Above this magnitude tanh is ±1 in this type.
    pub saturation: T,
    /// 2·log2(e).
    pub two_log2_e: T,
    /// 1.5·2^(mantissa bits): adding it rounds to a whole number.
    pub rounding_shifter: T,
    /// ln2/2 rounded to this type (the fused reduction).
    pub half_ln2: T,
    /// ln2/2 split for Cody–Waite reduction: the high part (few bits, so
    /// that its products with small whole numbers are exact).
    pub half_ln2_hi: T,
    /// The low part of the split.
    pub half_ln2_lo: T,
    /// `2p = h·P(h²)`, highest power first (three terms; a leading zero
    /// where the type needs fewer).
    pub two_p: [T; 3],
    /// `Q = Q(h²)`, highest power first.
    pub q: [T; 4],
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const NAME: &'static str = "f64";
    const PRECISION: Precision = Precision::F64;
    type Pack = crate::lanes::Pack<f64, 16>;
    const TANH: TanhConstants<Self> = crate::fastmath::F64_TANH;
    const COMPENSATED: bool = false;

    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn as_same(values: &[f64]) -> Option<&[Self]> {
        Some(values)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

impl Lanes for f64 {
    type Scalar = Self;

    #[inline(always)]
    fn splat(x: Self) -> Self {
        x
    }
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn at_most(self, limit: Self) -> Self {
        if self > limit { limit } else { self }
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        f64::copysign(self, sign)
    }
    #[inline(always)]
    fn inverse_power_of_two_from_shifted(self) -> Self {
        const BIAS: u64 = 1023;
        const MANTISSA_BITS: u32 = 52;
        let from_exponent = BIAS.wrapping_add(Self::TANH.rounding_shifter.to_bits());
        f64::from_bits(from_exponent.wrapping_sub(self.to_bits()) << MANTISSA_BITS)
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const NAME: &'static str = "f32";
    const PRECISION: Precision = Precision::F32;
    type Pack = Self;
    const TANH: TanhConstants<Self> = crate::fastmath::F32_TANH;
    const COMPENSATED: bool = true;

    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn as_same(_: &[f64]) -> Option<&[Self]> {
        None
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Lanes for f32 {
    type Scalar = Self;

    #[inline(always)]
    fn splat(x: Self) -> Self {
        x
    }
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn at_most(self, limit: Self) -> Self {
        if self > limit { limit } else { self }
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        f32::copysign(self, sign)
    }
    #[inline(always)]
    fn inverse_power_of_two_from_shifted(self) -> Self {
        const BIAS: u32 = 127;
        const MANTISSA_BITS: u32 = 23;
        let from_exponent = BIAS.wrapping_add(Self::TANH.rounding_shifter.to_bits());
        f32::from_bits(from_exponent.wrapping_sub(self.to_bits()) << MANTISSA_BITS)
    }
}

/// The engine's precision, chosen at run time (the CPU engine's type, the
/// GPU engine's state and arithmetic, a run's arrays).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Precision {
    /// Double precision (the default; every result of the project's tests).
    #[default]
    F64,
    /// Single precision: twice the SIMD lanes, for exploration.
    F32,
}

impl Precision {
    /// `"f64"` or `"f32"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F64 => f64::NAME,
            Self::F32 => f32::NAME,
        }
    }

    /// Whether this is the default, f64 (files leave it out then).
    pub fn is_f64(&self) -> bool {
        *self == Self::F64
    }

    /// Bytes of one value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 => 4,
        }
    }

    /// `values` as this precision's little-endian bytes (f32 rounds).
    pub fn encode(self, values: &[f64]) -> Vec<u8> {
        match self {
            Self::F64 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::F32 => values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
        }
    }

    /// Values of this precision read from little-endian `bytes`, as f64.
    pub fn decode(self, bytes: &[u8]) -> Vec<f64> {
        match self {
            Self::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
            Self::F32 => bytes
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap_or_default())))
                .collect(),
        }
    }
}
