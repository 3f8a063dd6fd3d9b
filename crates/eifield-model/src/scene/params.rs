//! Scene parameters by name: every scalar a user may read or change (from a
//! session's events, a script, a sweep or Python), named as validation names
//! them (`coupling.frac_ee`, `stimuli[0].freq`), with clear errors for unknown
//! names and values that are not whole numbers where one is needed.

use super::*;

/// The scalar parameters that exist in every scene; stimuli add
/// `stimuli[K].row`, `.col`, `.freq`, `.width`, `.amp` and `.onset`, pink
/// noise adds `noise.sigma`, `noise.seed` and `noise.sample_rate`, a random
/// heterogeneity `drive.heterogeneity.eps` and `.seed`, a random initial
/// state `initial.sigma` and `initial.seed`, and the integrator `integrator.dt`;
/// a `Moore` kernel adds `coupling.kernel.diagonal`, a `Disk` kernel
/// `coupling.kernel.radius` and its profile's numbers
/// (`coupling.kernel.profile.sigma`, …), and likewise `coupling.kernel_ei.…`.
pub const SCENE_PARAMS: [&str; 14] = [
    "model.tau_ex",
    "model.tau_in",
    "model.c2",
    "model.c4",
    "model.c_ee",
    "model.c_ei",
    "coupling.frac_ee",
    "coupling.frac_ei",
    "coupling.self_weight",
    "drive.h_ex",
    "drive.h_in",
    "integrator.dt",
    "run.duration",
    "run.sample_rate",
];

/// The stimulus fields that can be named as `stimuli[K].FIELD`.
pub const STIMULUS_PARAMS: [&str; 6] = ["row", "col", "freq", "width", "amp", "onset"];

/// The largest whole number a parameter given as a float may hold exactly.
const MAX_WHOLE: f64 = 9_007_199_254_740_992.0; // 2^53

/// A parameter slot: a float, or an integer stored as one.
enum Slot<'a> {
    Float(&'a mut f64),
    Index(&'a mut usize),
    Seed(&'a mut u64),
}

/// The slot of a kernel's number by its name within the kernel.
fn kernel_slot<'a>(kernel: &'a mut Kernel, field: &str) -> Option<Slot<'a>> {
    Some(Slot::Float(match (kernel, field) {
        (Kernel::Moore { diagonal }, "diagonal") => diagonal,
        (Kernel::Disk { radius, .. }, "radius") => radius,
        (Kernel::Disk { profile, .. }, _) => match (profile, field) {
            (Profile::Gaussian { sigma }, "profile.sigma") => sigma,
            (Profile::MexicanHat { sigma_center, .. }, "profile.sigma_center") => sigma_center,
            (Profile::MexicanHat { sigma_surround, .. }, "profile.sigma_surround") => {
                sigma_surround
            }
            (Profile::MexicanHat { surround, .. }, "profile.surround") => surround,
            _ => return None,
        },
        _ => return None,
    }))
}

fn unknown(name: &str, why: &str) -> InvalidField {
    InvalidField {
        field: name.to_owned(),
        message: format!(
            "{why}; parameters are {}, stimuli[K].{{{}}}, and where the scene has them \
             drive.heterogeneity.{{eps,seed}}, initial.{{sigma,seed}}, noise.{{sigma,seed,sample_rate}}, \
             coupling.kernel.{{diagonal,radius,profile.sigma,profile.sigma_center,\
             profile.sigma_surround,profile.surround}} (and coupling.kernel_ei.…)",
            SCENE_PARAMS.join(", "),
            STIMULUS_PARAMS.join(",")
        ),
    }
}

impl FieldScene {
    fn slot(&mut self, name: &str) -> Result<Slot<'_>, InvalidField> {
        if let Some(rest) = name.strip_prefix("stimuli[") {
            let (index, field) = rest
                .split_once("].")
                .ok_or_else(|| unknown(name, "expected stimuli[K].FIELD"))?;
            let k: usize = index
                .parse()
                .map_err(|_| unknown(name, "the stimulus index must be a whole number"))?;
            if self.stimuli.is_none() {
                self.stimuli = Some(self.effective_stimuli());
            }
            let count = self.stimuli.as_ref().map_or(0, Vec::len);
            let Some(Stimulus::PulseTrain {
                row,
                col,
                freq,
                width,
                amp,
                onset,
                ..
            }) = self.stimuli.as_mut().and_then(|s| s.get_mut(k))
            else {
                return Err(InvalidField {
                    field: name.to_owned(),
                    message: format!("the scene has {count} stimuli (valid 0..{count})"),
                });
            };
            return Ok(match field {
                "row" => Slot::Index(row),
                "col" => Slot::Index(col),
                "freq" => Slot::Float(freq),
                "width" => Slot::Float(width),
                "amp" => Slot::Float(amp),
                "onset" => Slot::Float(onset),
                _ => return Err(unknown(name, "unknown stimulus field")),
            });
        }
        let kernel_field = name
            .strip_prefix("coupling.kernel.")
            .map(|f| (f, false))
            .or_else(|| name.strip_prefix("coupling.kernel_ei.").map(|f| (f, true)));
        if let Some((field, ei)) = kernel_field {
            let kernel = if ei {
                self.coupling
                    .kernel_ei
                    .as_mut()
                    .ok_or_else(|| unknown(name, "the scene has no kernel_ei"))?
            } else {
                &mut self.coupling.kernel
            };
            return kernel_slot(kernel, field).ok_or_else(|| {
                unknown(
                    name,
                    "the kernel has no such number (Moore: diagonal; Disk: radius, \
                     profile.sigma, profile.sigma_center, profile.sigma_surround, \
                     profile.surround)",
                )
            });
        }
        if self.coupling.kernel.is_matrix()
            && matches!(
                name,
                "coupling.frac_ee" | "coupling.frac_ei" | "coupling.self_weight"
            )
        {
            return Err(unknown(
                name,
                "the coupling is a Matrix kernel, whose matrices hold every weight",
            ));
        }
        Ok(match name {
            "model.tau_ex" => Slot::Float(&mut self.model.tau_ex),
            "model.tau_in" => Slot::Float(&mut self.model.tau_in),
            "model.c2" => Slot::Float(&mut self.model.c2),
            "model.c4" => Slot::Float(&mut self.model.c4),
            "model.c_ee" => Slot::Float(&mut self.model.c_ee),
            "model.c_ei" => Slot::Float(&mut self.model.c_ei),
            "coupling.frac_ee" => Slot::Float(&mut self.coupling.frac_ee),
            "coupling.frac_ei" => Slot::Float(&mut self.coupling.frac_ei),
            "coupling.self_weight" => Slot::Float(&mut self.coupling.self_weight),
            "drive.h_ex" => Slot::Float(&mut self.drive.h_ex),
            "drive.h_in" => Slot::Float(&mut self.drive.h_in),
            "run.duration" => Slot::Float(&mut self.run.duration),
            "run.sample_rate" => Slot::Float(&mut self.run.sample_rate),
            "integrator.dt" => match &mut self.integrator {
                IntegratorSpec::Rk4 { dt }
                | IntegratorSpec::Heun { dt }
                | IntegratorSpec::Euler { dt } => Slot::Float(dt),
            },
            "drive.heterogeneity.eps" | "drive.heterogeneity.seed" => {
                match &mut self.drive.heterogeneity {
                    Heterogeneity::Random { eps, seed } => {
                        if name.ends_with("eps") {
                            Slot::Float(eps)
                        } else {
                            Slot::Seed(seed)
                        }
                    }
                    _ => return Err(unknown(name, "the drive's heterogeneity is not Random")),
                }
            }
            "initial.sigma" | "initial.seed" => match &mut self.initial {
                Initial::Random { sigma, seed } => {
                    if name.ends_with("sigma") {
                        Slot::Float(sigma)
                    } else {
                        Slot::Seed(seed)
                    }
                }
                _ => return Err(unknown(name, "the initial state is not Random")),
            },
            "noise.sigma" | "noise.seed" | "noise.sample_rate" => match &mut self.noise {
                Noise::Pink {
                    sigma,
                    seed,
                    sample_rate,
                } => match name {
                    "noise.sigma" => Slot::Float(sigma),
                    "noise.seed" => Slot::Seed(seed),
                    _ => Slot::Float(sample_rate),
                },
                Noise::None => return Err(unknown(name, "the scene has no noise")),
            },
            _ => return Err(unknown(name, "unknown parameter")),
        })
    }

    /// The value of a parameter named as in [`SCENE_PARAMS`] (or a stimulus,
    /// noise, heterogeneity or initial-state parameter the scene has).
    pub fn param(&self, name: &str) -> Result<f64, InvalidField> {
        let mut copy = self.without_arrays();
        Ok(match copy.slot(name)? {
            Slot::Float(v) => *v,
            Slot::Index(v) => *v as f64,
            Slot::Seed(v) => *v as f64,
        })
    }

    /// Sets a parameter. Rows, columns and seeds must be whole numbers. A
    /// change of `drive.h_ex` or `drive.h_in` moves explicit per-cell drives
    /// by the same amount, since they are absolute values around the nominal
    /// one. The scene is not validated here (see [`FieldScene::validate`]).
    pub fn set_param(&mut self, name: &str, value: f64) -> Result<(), InvalidField> {
        let whole = |v: f64| -> Result<f64, InvalidField> {
            if v.fract() == 0.0 && (0.0..=MAX_WHOLE).contains(&v) {
                Ok(v)
            } else {
                Err(InvalidField {
                    field: name.to_owned(),
                    message: format!("must be a whole number from 0 to 2^53 (got {value})"),
                })
            }
        };
        let before = (self.drive.h_ex, self.drive.h_in);
        match self.slot(name)? {
            Slot::Float(v) => *v = value,
            Slot::Index(v) => *v = whole(value)? as usize,
            Slot::Seed(v) => *v = whole(value)? as u64,
        }
        if let Heterogeneity::Explicit { h_ex, h_in } = &mut self.drive.heterogeneity {
            let (dx, di) = (self.drive.h_ex - before.0, self.drive.h_in - before.1);
            if dx != 0.0 {
                h_ex.iter_mut().for_each(|v| *v += dx);
            }
            if di != 0.0 {
                h_in.iter_mut().for_each(|v| *v += di);
            }
        }
        Ok(())
    }

    /// A copy without the per-cell arrays and the view (cheap to make
    /// whatever the lattice's size), for reading scalar parameters.
    fn without_arrays(&self) -> FieldScene {
        FieldScene {
            name: String::new(),
            grid: self.grid,
            model: self.model,
            coupling: self.coupling.clone(),
            drive: DriveSpec {
                heterogeneity: match &self.drive.heterogeneity {
                    Heterogeneity::Explicit { .. } => Heterogeneity::None,
                    other => other.clone(),
                },
                ..self.drive
            },
            initial: match &self.initial {
                Initial::Explicit { .. } => Initial::Zeros,
                other => other.clone(),
            },
            stimuli: self.stimuli.clone(),
            noise: self.noise.clone(),
            integrator: self.integrator,
            run: self.run,
            view: None,
            events: None,
        }
    }

    /// The names of every scalar parameter this scene has (for listings and diffs).
    pub fn param_names(&self) -> Vec<String> {
        let matrix = self.coupling.kernel.is_matrix();
        let mut names: Vec<String> = SCENE_PARAMS
            .iter()
            .filter(|s| !(matrix && s.starts_with("coupling.")))
            .map(|s| s.to_string())
            .collect();
        for (prefix, kernel) in [
            ("coupling.kernel", Some(&self.coupling.kernel)),
            ("coupling.kernel_ei", self.coupling.kernel_ei.as_ref()),
        ] {
            let fields: &[&str] = match kernel {
                Some(Kernel::Moore { .. }) => &["diagonal"],
                Some(Kernel::Disk { profile, .. }) => match profile {
                    Profile::Flat => &["radius"],
                    Profile::Gaussian { .. } => &["radius", "profile.sigma"],
                    Profile::MexicanHat { .. } => &[
                        "radius",
                        "profile.sigma_center",
                        "profile.sigma_surround",
                        "profile.surround",
                    ],
                },
                _ => &[],
            };
            names.extend(fields.iter().map(|f| format!("{prefix}.{f}")));
        }
        if let Heterogeneity::Random { .. } = self.drive.heterogeneity {
            names.extend(["drive.heterogeneity.eps", "drive.heterogeneity.seed"].map(String::from));
        }
        if let Initial::Random { .. } = self.initial {
            names.extend(["initial.sigma", "initial.seed"].map(String::from));
        }
        if let Noise::Pink { .. } = self.noise {
            names.extend(["noise.sigma", "noise.seed", "noise.sample_rate"].map(String::from));
        }
        for k in 0..self.effective_stimuli().len() {
            names.extend(STIMULUS_PARAMS.iter().map(|f| format!("stimuli[{k}].{f}")));
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_and_write_by_name() {
        let mut scene = FieldScene::default();
        scene.set_param("coupling.frac_ee", 0.5).unwrap();
        assert_eq!(scene.coupling.frac_ee, 0.5);
        assert_eq!(scene.param("coupling.frac_ee").unwrap(), 0.5);
        scene.set_param("stimuli[0].col", 2.0).unwrap();
        assert_eq!(scene.param("stimuli[0].col").unwrap(), 2.0);
        assert!(scene.stimuli.is_some());
        scene.set_param("drive.heterogeneity.seed", 42.0).unwrap();
        assert_eq!(
            scene.drive.heterogeneity,
            Heterogeneity::Random {
                eps: DEFAULT_HETEROGENEITY_EPS,
                seed: 42
            }
        );
        for name in scene.param_names() {
            let value = scene.param(&name).unwrap();
            let mut copy = scene.clone();
            copy.set_param(&name, value).unwrap();
            assert_eq!(copy, scene, "{name}");
        }
    }

    #[test]
    fn kernel_numbers_are_parameters_by_name() {
        let mut scene = FieldScene::default();
        scene.coupling.kernel = Kernel::Disk {
            radius: 3.0,
            profile: Profile::MexicanHat {
                sigma_center: 1.0,
                sigma_surround: 2.0,
                surround: 0.3,
            },
        };
        scene.coupling.kernel_ei = Some(Kernel::Moore { diagonal: 0.5 });
        let names = scene.param_names();
        for name in [
            "coupling.kernel.radius",
            "coupling.kernel.profile.surround",
            "coupling.kernel_ei.diagonal",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        scene.set_param("coupling.kernel.radius", 4.5).unwrap();
        scene
            .set_param("coupling.kernel.profile.sigma_surround", 2.5)
            .unwrap();
        assert_eq!(
            scene.coupling.kernel,
            Kernel::Disk {
                radius: 4.5,
                profile: Profile::MexicanHat {
                    sigma_center: 1.0,
                    sigma_surround: 2.5,
                    surround: 0.3,
                },
            }
        );
        assert_eq!(scene.param("coupling.kernel_ei.diagonal").unwrap(), 0.5);
        let e = scene
            .set_param("coupling.kernel.profile.sigma", 1.0)
            .unwrap_err();
        assert!(e.message.contains("no such number"), "{}", e.message);
        let e = FieldScene::default()
            .set_param("coupling.kernel_ei.diagonal", 1.0)
            .unwrap_err();
        assert!(e.message.contains("no kernel_ei"), "{}", e.message);
    }

    #[test]
    fn bad_names_and_values_are_named() {
        let mut scene = FieldScene::default();
        let e = scene.set_param("coupling.frac", 1.0).unwrap_err();
        assert_eq!(e.field, "coupling.frac");
        assert!(e.message.contains("unknown parameter"), "{}", e.message);
        let e = scene.set_param("stimuli[3].amp", 1.0).unwrap_err();
        assert!(e.message.contains("1 stimuli"), "{}", e.message);
        let e = scene.set_param("stimuli[0].row", 1.5).unwrap_err();
        assert!(e.message.contains("whole number"), "{}", e.message);
        assert!(
            scene
                .param("noise.sigma")
                .unwrap_err()
                .message
                .contains("no noise")
        );
    }

    #[test]
    fn explicit_drives_move_with_the_nominal_drive() {
        let mut scene = FieldScene::default().resolved();
        let before = scene.cell_drives();
        scene.set_param("drive.h_ex", DEFAULT_H_EX + 0.25).unwrap();
        let after = scene.cell_drives();
        for (a, b) in after.0.iter().zip(&before.0) {
            assert_eq!(*a, *b + 0.25);
        }
        assert_eq!(after.1, before.1);
    }
}
