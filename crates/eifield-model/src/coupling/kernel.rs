//! The coupling kernels of the scene schema (`Nearest`, `Moore`, `Disk`,
//! `Matrix`), their validation, and the stencil weights they stand for.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::matrix::CouplingMatrix;

/// The smallest radius of a `Disk` kernel.
pub const MIN_DISK_RADIUS: f64 = 1.0;
/// The largest radius of a `Disk` kernel (the schedules' row halo grows with it).
pub const MAX_DISK_RADIUS: f64 = 16.0;
/// What every stencil kernel's weights sum to: the 4 of the 4-neighbour
/// stencil, so that `frac_ee` and `frac_ei` keep their meaning.
pub const KERNEL_WEIGHT_SUM: f64 = 4.0;
/// Largest magnitude of a kernel number (weights, sigmas, the surround).
pub const MAX_KERNEL_NUMBER: f64 = 1e6;

/// Which cells feed a cell's sigmoids, and with what weights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Kernel {
    /// The 4 nearest neighbours, each with weight 1.
    #[default]
    Nearest,
    /// The 8 neighbours: the 4 nearest with weight 1, the 4 diagonal ones
    /// with weight `diagonal` (not normalised).
    Moore {
        /// Weight of each diagonal neighbour.
        diagonal: f64,
    },
    /// Every cell within Euclidean distance `radius` (not the cell itself),
    /// weighted by `profile` and normalised so that the weights sum to 4.
    Disk {
        /// Reach in cells (1 to 16).
        radius: f64,
        /// Weight as a function of distance.
        profile: Profile,
    },
    /// The notebook's general coupling matrices: cell `i` is fed by
    /// `Σ_j M[j, i]·E_j`, the diagonal being the self weight.
    Matrix {
        /// The matrix of the excitatory sigmoid `u`.
        ee: MatrixFile,
        /// The matrix of the inhibitory sigmoid `v`.
        ei: MatrixFile,
    },
}

/// How a `Disk` kernel weights a cell at distance `d`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Profile {
    /// The same weight everywhere in the disk.
    #[default]
    Flat,
    /// `exp(−d² / 2σ²)`.
    Gaussian {
        /// Width σ in cells.
        sigma: f64,
    },
    /// A difference of Gaussians (lateral inhibition):
    /// `exp(−d² / 2σc²) − surround · exp(−d² / 2σs²)`; weights may be negative.
    MexicanHat {
        /// Width of the excitatory centre.
        sigma_center: f64,
        /// Width of the inhibitory surround.
        sigma_surround: f64,
        /// Strength of the surround.
        surround: f64,
    },
}

impl Profile {
    /// The unnormalised weight at distance `d`.
    pub fn weight(&self, d: f64) -> f64 {
        let gauss = |s: f64| (-d * d / (2.0 * s * s)).exp();
        match *self {
            Self::Flat => 1.0,
            Self::Gaussian { sigma } => gauss(sigma),
            Self::MexicanHat {
                sigma_center,
                sigma_surround,
                surround,
            } => gauss(sigma_center) - surround * gauss(sigma_surround),
        }
    }
}

/// A coupling matrix file (`.npy` or scipy's `.npz`), by path, with its
/// contents once read. In a scene file it is just the path, relative to the
/// scene file; [`crate::FieldScene::load`] reads it.
#[derive(Clone, Debug)]
pub struct MatrixFile {
    /// Where the matrix is (absolute once the scene was loaded from a file).
    pub path: PathBuf,
    /// The matrix, once read (or given directly, e.g. from Python).
    pub matrix: Option<Arc<CouplingMatrix>>,
}

impl MatrixFile {
    /// A matrix file not read yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            matrix: None,
        }
    }

    /// A matrix given in memory; `path` is where it will be saved.
    pub fn with_matrix(path: impl Into<PathBuf>, matrix: Arc<CouplingMatrix>) -> Self {
        Self {
            path: path.into(),
            matrix: Some(matrix),
        }
    }
}

impl PartialEq for MatrixFile {
    /// The same path, and the same matrix in memory (or neither read).
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && match (&self.matrix, &other.matrix) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (None, None) => true,
                _ => false,
            }
    }
}

impl Serialize for MatrixFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.path.to_string_lossy())
    }
}

impl<'de> Deserialize<'de> for MatrixFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::new(String::deserialize(d)?))
    }
}

/// One weight of a stencil kernel, for the offsets `(±dr, ±dc)`: every
/// kernel here is symmetric under reflections of rows and columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tap {
    /// Row offset (≥ 0).
    pub dr: usize,
    /// Column offset (≥ 0).
    pub dc: usize,
    /// The weight of each of the (up to four) cells at `(±dr, ±dc)`.
    pub weight: f64,
}

impl Tap {
    /// How many cells of the full stencil this tap stands for.
    pub fn multiplicity(&self) -> usize {
        match (self.dr, self.dc) {
            (0, 0) => 1,
            (0, _) | (_, 0) => 2,
            _ => 4,
        }
    }
}

impl Kernel {
    /// True for the general matrices.
    pub fn is_matrix(&self) -> bool {
        matches!(self, Self::Matrix { .. })
    }

    /// The row and column reach of a stencil kernel (`None` for matrices).
    pub fn reach(&self) -> Option<usize> {
        match self {
            Self::Nearest | Self::Moore { .. } => Some(1),
            Self::Disk { radius, .. } => Some(disk_reach(*radius)),
            Self::Matrix { .. } => None,
        }
    }

    /// The weights of a stencil kernel over one quadrant of offsets, without
    /// the cell itself and without zero weights (`None` for matrices). Disk
    /// weights are normalised so that the whole stencil sums to
    /// [`KERNEL_WEIGHT_SUM`]; the caller has validated the kernel.
    pub fn taps(&self) -> Option<Vec<Tap>> {
        let taps = match self {
            Self::Nearest => vec![
                Tap {
                    dr: 0,
                    dc: 1,
                    weight: 1.0,
                },
                Tap {
                    dr: 1,
                    dc: 0,
                    weight: 1.0,
                },
            ],
            Self::Moore { diagonal } => {
                let mut taps = Self::Nearest.taps().expect("a stencil");
                taps.push(Tap {
                    dr: 1,
                    dc: 1,
                    weight: *diagonal,
                });
                taps
            }
            Self::Disk { radius, profile } => {
                let mut taps = disk_taps(*radius, profile);
                let sum = weight_sum(&taps);
                for t in &mut taps {
                    t.weight *= KERNEL_WEIGHT_SUM / sum;
                }
                taps
            }
            Self::Matrix { .. } => return None,
        };
        Some(taps.into_iter().filter(|t| t.weight != 0.0).collect())
    }

    /// Checks the kernel's numbers; the error is `(field suffix, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let finite = |name: &str, x: f64| -> Result<(), (String, String)> {
            if x.is_finite() && x.abs() <= MAX_KERNEL_NUMBER {
                Ok(())
            } else {
                Err((
                    name.to_owned(),
                    format!(
                        "must be a finite number of magnitude at most {MAX_KERNEL_NUMBER:e} (got {x})"
                    ),
                ))
            }
        };
        let positive = |name: &str, x: f64| -> Result<(), (String, String)> {
            finite(name, x)?;
            if x > 0.0 {
                Ok(())
            } else {
                Err((name.to_owned(), format!("must be > 0 (got {x})")))
            }
        };
        match self {
            Self::Nearest | Self::Matrix { .. } => Ok(()),
            Self::Moore { diagonal } => finite("diagonal", *diagonal),
            Self::Disk { radius, profile } => {
                if !(radius.is_finite() && (MIN_DISK_RADIUS..=MAX_DISK_RADIUS).contains(radius)) {
                    return Err((
                        "radius".into(),
                        format!(
                            "must be between {MIN_DISK_RADIUS} and {MAX_DISK_RADIUS} cells (got {radius})"
                        ),
                    ));
                }
                match *profile {
                    Profile::Flat => {}
                    Profile::Gaussian { sigma } => positive("profile.sigma", sigma)?,
                    Profile::MexicanHat {
                        sigma_center,
                        sigma_surround,
                        surround,
                    } => {
                        positive("profile.sigma_center", sigma_center)?;
                        positive("profile.sigma_surround", sigma_surround)?;
                        finite("profile.surround", surround)?;
                    }
                }
                // The weights must be normalisable to a positive sum.
                let raw = disk_taps(*radius, profile);
                let sum = weight_sum(&raw);
                let scale: f64 = raw
                    .iter()
                    .map(|t| t.weight.abs() * t.multiplicity() as f64)
                    .sum();
                if !(sum.is_finite() && sum > 1e-9 * scale && sum > 0.0) {
                    return Err((
                        "profile".into(),
                        format!(
                            "the weights within the disk sum to {sum:e}, so they cannot be \
                             normalised to sum to {KERNEL_WEIGHT_SUM}; make the centre stronger \
                             than the surround"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The rows and columns a disk of `radius` reaches.
fn disk_reach(radius: f64) -> usize {
    radius.floor().max(1.0) as usize
}

/// The unnormalised taps of a disk: every offset within distance `radius`
/// but the cell itself, weighted by `profile`.
fn disk_taps(radius: f64, profile: &Profile) -> Vec<Tap> {
    let reach = disk_reach(radius);
    let mut taps = Vec::new();
    for dr in 0..=reach {
        for dc in 0..=reach {
            let d = ((dr * dr + dc * dc) as f64).sqrt();
            if (dr, dc) != (0, 0) && d <= radius {
                taps.push(Tap {
                    dr,
                    dc,
                    weight: profile.weight(d),
                });
            }
        }
    }
    taps
}

/// The sum of a stencil's weights over every cell it covers.
pub fn weight_sum(taps: &[Tap]) -> f64 {
    taps.iter()
        .map(|t| t.weight * t.multiplicity() as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_weights_sum_to_four_and_nearest_is_four_ones() {
        assert_eq!(weight_sum(&Kernel::Nearest.taps().unwrap()), 4.0);
        for profile in [
            Profile::Flat,
            Profile::Gaussian { sigma: 1.5 },
            Profile::MexicanHat {
                sigma_center: 1.0,
                sigma_surround: 3.0,
                surround: 0.1,
            },
        ] {
            let k = Kernel::Disk {
                radius: 3.0,
                profile,
            };
            k.check().unwrap();
            let taps = k.taps().unwrap();
            assert!((weight_sum(&taps) - 4.0).abs() < 1e-12, "{profile:?}");
            // A radius-3 disk holds 28 cells besides the centre.
            assert_eq!(taps.iter().map(Tap::multiplicity).sum::<usize>(), 28);
        }
        let moore = Kernel::Moore { diagonal: 0.5 }.taps().unwrap();
        assert_eq!(weight_sum(&moore), 6.0);
    }

    #[test]
    fn bad_kernels_are_refused_with_their_field() {
        let disk = |radius, profile| Kernel::Disk { radius, profile };
        assert_eq!(disk(0.5, Profile::Flat).check().unwrap_err().0, "radius");
        assert_eq!(disk(16.5, Profile::Flat).check().unwrap_err().0, "radius");
        assert_eq!(
            disk(2.0, Profile::Gaussian { sigma: 0.0 })
                .check()
                .unwrap_err()
                .0,
            "profile.sigma"
        );
        let hat = Profile::MexicanHat {
            sigma_center: 1.0,
            sigma_surround: 3.0,
            surround: 5.0,
        };
        assert_eq!(disk(4.0, hat).check().unwrap_err().0, "profile");
        assert_eq!(
            Kernel::Moore { diagonal: f64::NAN }.check().unwrap_err().0,
            "diagonal"
        );
    }
}
