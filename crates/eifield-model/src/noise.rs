//! Pink (1/f) noise, generated block by block with the notebook's FFT method.
//!
//! Each block holds one independent series per cell: amplitudes `randn/√f` at
//! the real-FFT frequencies (with `f[0]` set to `f[1]`), uniform random phases,
//! an inverse FFT (rustfft), then normalisation to zero mean and unit variance.
//! Blocks are drawn one after another from a single seeded generator, so a run
//! longer than a block continues with fresh noise and never repeats.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

/// Shortest block, in samples per cell.
pub const MIN_BLOCK_LEN: usize = 64;
/// Longest block, in samples per cell.
pub const MAX_BLOCK_LEN: usize = 1 << 16;
/// Most noise values (cells × block length) held in memory at once.
pub const MAX_BLOCK_VALUES: usize = 1 << 24;

/// One unit-variance pink-noise series of length `n`, drawn from `rng`.
///
/// `buffer` and `fft` are reused between calls; `fft` must be an inverse FFT of
/// length `n`. The result is written to `out`.
fn pink_series(
    rng: &mut ChaCha8Rng,
    fft: &dyn Fft<f64>,
    buffer: &mut [Complex64],
    scratch: &mut [Complex64],
    out: &mut [f64],
) {
    let n = buffer.len();
    let bins = n / 2 + 1;
    buffer.fill(Complex64::new(0.0, 0.0));
    let nyquist = n.is_multiple_of(2).then_some(n / 2);
    for k in 0..bins {
        // rfftfreq with unit spacing: k / n; f[0] takes f[1]'s value.
        let f = k.max(1) as f64 / n as f64;
        let amplitude: f64 = rng.sample::<f64, _>(StandardNormal) / f.sqrt();
        let phase: f64 = rng.random::<f64>() * std::f64::consts::TAU;
        let mut c = Complex64::from_polar(amplitude, phase);
        // As numpy's irfft: the imaginary parts of the DC and Nyquist bins are ignored.
        if k == 0 || Some(k) == nyquist {
            c.im = 0.0;
        }
        buffer[k] = c;
        if k != 0 && Some(k) != nyquist {
            buffer[n - k] = c.conj();
        }
    }
    fft.process_with_scratch(buffer, scratch);
    let mean = buffer.iter().map(|c| c.re).sum::<f64>() / n as f64;
    let var = buffer.iter().map(|c| (c.re - mean).powi(2)).sum::<f64>() / n as f64;
    let inv_std = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    for (o, c) in out.iter_mut().zip(buffer.iter()) {
        *o = (c.re - mean) * inv_std;
    }
}

/// A single unit-variance pink-noise series (for analysis and tests).
pub fn pink_series_once(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fft = FftPlanner::new().plan_fft_inverse(n);
    let mut buffer = vec![Complex64::new(0.0, 0.0); n];
    let mut scratch = vec![Complex64::new(0.0, 0.0); fft.get_inplace_scratch_len()];
    let mut out = vec![0.0; n];
    pink_series(&mut rng, fft.as_ref(), &mut buffer, &mut scratch, &mut out);
    out
}

/// Streaming pink noise for a lattice: `value(cell, t)` is piecewise constant
/// on `[j/rate, (j+1)/rate)`.
pub struct PinkNoise {
    sigma: f64,
    seed: u64,
    sample_rate: f64,
    cells: usize,
    block_len: usize,
    rng: ChaCha8Rng,
    fft: Arc<dyn Fft<f64>>,
    buffer: Vec<Complex64>,
    scratch: Vec<Complex64>,
    series: Vec<f64>,
    /// Index of the block in `values`.
    block: u64,
    /// `values[j * cells + i]`: sample j of the block for cell i.
    values: Vec<f64>,
}

impl PinkNoise {
    /// Noise for `cells` cells, expecting about `expected_samples` samples per
    /// cell (the block length is chosen from it and from a memory bound).
    pub fn new(
        sigma: f64,
        seed: u64,
        sample_rate: f64,
        cells: usize,
        expected_samples: u64,
    ) -> Self {
        Self::new_at(sigma, seed, sample_rate, cells, expected_samples, 0.0)
    }

    /// As [`PinkNoise::new`], but the first generated block is the one in
    /// effect at time `t` (for noise switched on while a simulation runs).
    pub fn new_at(
        sigma: f64,
        seed: u64,
        sample_rate: f64,
        cells: usize,
        expected_samples: u64,
        t: f64,
    ) -> Self {
        let block_len = Self::block_len_for(cells, expected_samples);
        let fft = FftPlanner::new().plan_fft_inverse(block_len);
        let scratch_len = fft.get_inplace_scratch_len();
        let mut noise = Self {
            sigma,
            seed,
            sample_rate,
            cells,
            block_len,
            rng: ChaCha8Rng::seed_from_u64(seed),
            fft,
            buffer: vec![Complex64::new(0.0, 0.0); block_len],
            scratch: vec![Complex64::new(0.0, 0.0); scratch_len],
            series: vec![0.0; block_len],
            block: 0,
            values: vec![0.0; block_len * cells],
        };
        noise.block = noise.sample_index(t) / block_len as u64;
        noise.generate_block();
        noise
    }

    /// The block length used for a lattice size and run length.
    pub fn block_len_for(cells: usize, expected_samples: u64) -> usize {
        let wanted = (expected_samples.max(1) as usize)
            .next_power_of_two()
            .clamp(MIN_BLOCK_LEN, MAX_BLOCK_LEN);
        let by_memory = (MAX_BLOCK_VALUES / cells.max(1)).max(MIN_BLOCK_LEN);
        // Largest power of two within the memory bound.
        let by_memory = 1usize << (usize::BITS - 1 - by_memory.leading_zeros());
        wanted.min(by_memory)
    }

    fn generate_block(&mut self) {
        for cell in 0..self.cells {
            pink_series(
                &mut self.rng,
                self.fft.as_ref(),
                &mut self.buffer,
                &mut self.scratch,
                &mut self.series,
            );
            for (j, &v) in self.series.iter().enumerate() {
                self.values[j * self.cells + cell] = v;
            }
        }
    }

    /// Samples per cell in one block.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// Seed of the generator.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Noise samples per unit of model time.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Scale applied to the unit-variance series.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Index of the noise sample in effect at time `t`.
    pub fn sample_index(&self, t: f64) -> u64 {
        (t * self.sample_rate).floor().max(0.0) as u64
    }

    /// Time at which sample `j` starts.
    pub fn sample_time(&self, j: u64) -> f64 {
        j as f64 / self.sample_rate
    }

    /// Unit-variance values of every cell for sample `j`. Samples must be
    /// requested in non-decreasing block order (as time runs forward).
    pub fn sample(&mut self, j: u64) -> &[f64] {
        let block = j / self.block_len as u64;
        assert!(
            block >= self.block,
            "pink noise is requested backwards in time"
        );
        while self.block < block {
            self.generate_block();
            self.block += 1;
        }
        let row = (j % self.block_len as u64) as usize;
        &self.values[row * self.cells..(row + 1) * self.cells]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Least-squares slope of log10(power) against log10(frequency) over the
    /// periodogram of `x`, averaged over `segments` equal segments.
    fn spectral_slope(x: &[f64], segments: usize) -> f64 {
        let n = x.len() / segments;
        let fft = FftPlanner::new().plan_fft_forward(n);
        let mut power = vec![0.0; n / 2];
        for s in 0..segments {
            let mut buf: Vec<Complex64> = x[s * n..(s + 1) * n]
                .iter()
                .map(|&v| Complex64::new(v, 0.0))
                .collect();
            fft.process(&mut buf);
            for (k, p) in power.iter_mut().enumerate() {
                *p += buf[k].norm_sqr();
            }
        }
        // Fit over the bins 1 .. n/2 (skip DC), in log-spaced bands so that
        // high frequencies do not dominate the fit.
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        let mut lo = 1usize;
        while lo < n / 2 {
            let hi = ((lo as f64 * 1.25).ceil() as usize).max(lo + 1).min(n / 2);
            let mean_p = power[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
            let mean_f = (lo..hi).map(|k| k as f64).sum::<f64>() / (hi - lo) as f64;
            xs.push(mean_f.log10());
            ys.push(mean_p.log10());
            lo = hi;
        }
        let mx = xs.iter().sum::<f64>() / xs.len() as f64;
        let my = ys.iter().sum::<f64>() / ys.len() as f64;
        let sxy: f64 = xs.iter().zip(&ys).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = xs.iter().map(|a| (a - mx).powi(2)).sum();
        sxy / sxx
    }

    #[test]
    fn spectrum_falls_as_one_over_f() {
        let series = pink_series_once(1 << 16, 7);
        let slope = spectral_slope(&series, 8);
        assert!((slope + 1.0).abs() <= 0.15, "log-log slope {slope}");
    }

    #[test]
    fn streamed_series_have_unit_variance_and_zero_mean() {
        let cells = 5;
        let mut noise = PinkNoise::new(1.0, 3, 100.0, cells, 4096);
        let len = noise.block_len() as u64;
        for cell in 0..cells {
            let series: Vec<f64> = (0..len).map(|j| noise.sample(j)[cell]).collect();
            let mean = series.iter().sum::<f64>() / len as f64;
            let var = series.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / len as f64;
            assert!(mean.abs() < 1e-12, "mean {mean}");
            assert!((var - 1.0).abs() < 1e-12, "variance {var}");
        }
    }

    #[test]
    fn streamed_cells_are_independent_pink_series() {
        let cells = 3;
        let mut noise = PinkNoise::new(1.0, 5, 100.0, cells, 1 << 14);
        let len = noise.block_len() as u64;
        let a: Vec<f64> = (0..len).map(|j| noise.sample(j)[0]).collect();
        let mut noise = PinkNoise::new(1.0, 5, 100.0, cells, 1 << 14);
        let b: Vec<f64> = (0..len).map(|j| noise.sample(j)[1]).collect();
        let corr = a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() / len as f64;
        assert!(corr.abs() < 0.3, "cells correlate: {corr}");
        let slope = spectral_slope(&a, 4);
        assert!((slope + 1.0).abs() <= 0.15, "log-log slope {slope}");
    }

    #[test]
    fn later_blocks_are_fresh_noise() {
        let mut noise = PinkNoise::new(1.0, 9, 10.0, 2, 64);
        let len = noise.block_len() as u64;
        let first: Vec<f64> = (0..len).map(|j| noise.sample(j)[0]).collect();
        let second: Vec<f64> = (len..2 * len).map(|j| noise.sample(j)[0]).collect();
        assert_ne!(first, second);
        let var = second.iter().map(|v| v * v).sum::<f64>() / len as f64;
        assert!((var - 1.0).abs() < 1e-12);
    }

    #[test]
    fn block_length_respects_memory_bound() {
        assert_eq!(PinkNoise::block_len_for(49, 2001), 2048);
        assert_eq!(PinkNoise::block_len_for(49, 10), MIN_BLOCK_LEN);
        assert_eq!(PinkNoise::block_len_for(1, u64::MAX / 4), MAX_BLOCK_LEN);
        assert!(PinkNoise::block_len_for(1 << 16, 100_000) * (1 << 16) <= MAX_BLOCK_VALUES);
        // Huge lattices still get the shortest block.
        assert_eq!(PinkNoise::block_len_for(1 << 20, 100_000), MIN_BLOCK_LEN);
    }
}
