//! The scenes shipped with eifield, embedded in the binary from the
//! repository's `scenes/` folder so that every command works from any folder.

use std::path::{Path, PathBuf};

use super::{FieldScene, SceneError};

/// A scene compiled into the program.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinScene {
    /// The name that loads it (`eifield run waves …`).
    pub name: &'static str,
    /// One line on what it shows.
    pub description: &'static str,
    /// The RON text of `scenes/<name>.ron`.
    pub text: &'static str,
}

/// Every shipped scene; the first is the viewer's default.
pub const BUILTIN_SCENES: &[BuiltinScene] = &[
    BuiltinScene {
        name: "waves",
        description: "target waves: each pulse into the centre launches a ring that crosses the 64 × 64 field and keeps its shape",
        text: include_str!("../../../../scenes/waves.ron"),
    },
    BuiltinScene {
        name: "rings",
        description: "circular target waves: the same field with an isotropic Gaussian kernel (radius 3), so the rings are round, not square",
        text: include_str!("../../../../scenes/rings.ron"),
    },
    BuiltinScene {
        name: "breakup",
        description: "a half-plane wave in a field that re-excites behind its fronts breaks into rotating fragments (spiral turbulence)",
        text: include_str!("../../../../scenes/breakup.ron"),
    },
    BuiltinScene {
        name: "induction",
        description: "local induction, the notebook's regime on 32 × 32: the pulsed cell and its neighbours fire, nothing spreads",
        text: include_str!("../../../../scenes/induction.ron"),
    },
    BuiltinScene {
        name: "noise",
        description: "no stimulus, only pink noise: after a quiet spell, spots fire and waves sweep the field",
        text: include_str!("../../../../scenes/noise.ron"),
    },
    BuiltinScene {
        name: "pacemakers",
        description: "two pacemakers at 0.25 and 0.16 pulses per unit of time compete; the faster one takes over the field",
        text: include_str!("../../../../scenes/pacemakers.ron"),
    },
    BuiltinScene {
        name: "snic",
        description: "the notebook's fast SNIC regime (tau_in = 1) on 7 × 7",
        text: include_str!("../../../../scenes/snic.ron"),
    },
    BuiltinScene {
        name: "seed_notebook",
        description: "the research notebook's 7 × 7 lattice, slow homoclinic regime, its own per-cell drives",
        text: include_str!("../../../../scenes/seed_notebook.ron"),
    },
];

/// The scene the viewer opens when none is named.
pub const DEFAULT_SCENE: &str = "waves";

/// Where a scene comes from: a file, or a scene compiled into the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SceneSource {
    /// A scene file.
    File(PathBuf),
    /// A shipped scene, by name.
    Builtin(&'static str),
}

impl SceneSource {
    /// What a scene argument names: an existing file; else a built-in scene
    /// named by `NAME`, `NAME.ron` or `scenes/NAME.ron` (so the repository's
    /// paths also work outside it); else the file (which then fails to load
    /// with an error that lists the built-in names).
    pub fn resolve(arg: &Path) -> Self {
        if arg.exists() {
            return Self::File(arg.to_owned());
        }
        let parent_ok = arg
            .parent()
            .is_none_or(|p| p.as_os_str().is_empty() || p == Path::new("scenes"));
        let name = arg
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.strip_suffix(".ron").unwrap_or(n));
        match name.and_then(builtin) {
            Some(scene) if parent_ok => Self::Builtin(scene.name),
            _ => Self::File(arg.to_owned()),
        }
    }

    /// Reads, parses and validates the scene.
    pub fn load(&self) -> Result<FieldScene, SceneError> {
        match self {
            Self::File(path) => FieldScene::load(path).map_err(|e| match e {
                SceneError::Io { path, source }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    SceneError::Io {
                        path: format!(
                            "{path} (no such file, and not a built-in scene: {})",
                            builtin_names().join(", ")
                        ),
                        source,
                    }
                }
                other => other,
            }),
            Self::Builtin(name) => {
                let scene = builtin(name).expect("resolved names are built in");
                FieldScene::from_ron_str(scene.text, &self.to_string())
            }
        }
    }
}

impl std::fmt::Display for SceneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Builtin(name) => write!(f, "{name} (built in)"),
        }
    }
}

/// The built-in scene called `name`.
pub fn builtin(name: &str) -> Option<&'static BuiltinScene> {
    BUILTIN_SCENES.iter().find(|s| s.name == name)
}

/// The names of the built-in scenes.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN_SCENES.iter().map(|s| s.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scene_parses_and_the_default_exists() {
        for scene in BUILTIN_SCENES {
            FieldScene::from_ron_str(scene.text, scene.name)
                .unwrap_or_else(|e| panic!("{}: {e}", scene.name));
        }
        assert!(builtin(DEFAULT_SCENE).is_some());
    }

    #[test]
    fn names_resolve_to_builtins_unless_a_file_exists() {
        let dir = std::env::temp_dir();
        assert_eq!(
            SceneSource::resolve(Path::new("snic")),
            SceneSource::Builtin("snic")
        );
        assert_eq!(
            SceneSource::resolve(Path::new("seed_notebook.ron")),
            SceneSource::Builtin("seed_notebook")
        );
        // A path elsewhere is a file, even if its name is a built-in's.
        let elsewhere = dir.join("no-such-folder-eifield/waves.ron");
        assert_eq!(
            SceneSource::resolve(&elsewhere),
            SceneSource::File(elsewhere.clone())
        );
        let err = SceneSource::resolve(&elsewhere).load().unwrap_err();
        assert!(
            err.to_string().contains(&builtin_names().join(", ")),
            "{err}"
        );
    }
}
