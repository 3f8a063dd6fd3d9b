//! A progress bar on stderr for long jobs (runs and renders), shown only once
//! a job has run for a second.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Jobs longer than this show a progress bar.
const PROGRESS_DELAY: Duration = Duration::from_secs(1);

/// A progress bar on stderr that appears only once a job has run for
/// [`PROGRESS_DELAY`] (and never when `quiet`).
pub struct DelayedProgress {
    bar: ProgressBar,
    started: Instant,
    quiet: bool,
}

impl DelayedProgress {
    /// A hidden bar of `len` steps drawn with an indicatif `template`.
    pub fn new(len: u64, template: &str, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        bar.set_style(ProgressStyle::with_template(template).expect("valid progress template"));
        Self {
            bar,
            started: Instant::now(),
            quiet,
        }
    }

    /// Moves the bar to `position` with `message`, showing it once the delay has passed.
    pub fn update(&self, position: u64, message: String) {
        if !self.quiet && self.bar.is_hidden() && self.started.elapsed() >= PROGRESS_DELAY {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
