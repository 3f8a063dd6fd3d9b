//! Reproducible pseudo-random inputs for the unit tests.

/// `n` values spread uniformly over `[-scale/2, scale/2)`, the same for the
/// same seed on every machine.
pub(crate) fn pseudo_random(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale
        })
        .collect()
}

/// The coupling of `kernel` (and `kernel_ei`, when given) on `grid`.
pub(crate) fn coupler(
    grid: crate::Grid,
    kernel: &crate::coupling::Kernel,
    kernel_ei: Option<&crate::coupling::Kernel>,
) -> crate::coupling::Coupler {
    let coupling = crate::scene::Coupling {
        kernel: kernel.clone(),
        kernel_ei: kernel_ei.cloned(),
        ..Default::default()
    };
    crate::coupling::Coupler::build(&coupling, grid).expect("a valid coupling")
}
