//! Failures and their exit codes, shared by the command line and the
//! viewer's entry points.

use eifield_model::SceneError;

/// Exit code of a run stopped by Ctrl-C or SIGTERM.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit code of bad input of any kind (scene, option, output folder).
pub const EXIT_INPUT: u8 = 2;
/// Exit code of a numerical blow-up or a failure to write the output.
pub const EXIT_FAILURE: u8 = 1;

/// A failure of a command; [`AppError::exit_code`] gives the documented
/// exit code of its kind.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A scene that cannot be read, parsed or validated.
    #[error(transparent)]
    Scene(#[from] SceneError),
    /// Any other bad input: an option, an output folder that may not be used.
    #[error("{0}")]
    Input(String),
    /// Writing the output failed.
    #[error("{0}")]
    Output(String),
    /// The state became non-finite.
    #[error("{0}")]
    BlowUp(String),
}

impl AppError {
    /// The process exit code for this kind of failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Scene(_) | Self::Input(_) => EXIT_INPUT,
            Self::Output(_) | Self::BlowUp(_) => EXIT_FAILURE,
        }
    }
}
