//! A progress bar for the phases `bb-snapshots` reports: on stderr, only when a person is
//! watching (indicatif draws nothing when stderr is not a terminal), never under `--json`.

use std::sync::Mutex;
use std::time::Duration;

use bb_cli::Output;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar, restarted for each phase.
#[derive(Debug)]
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    silent: bool,
}

impl Bar {
    pub fn new(out: Output) -> Bar {
        Bar {
            bar: Mutex::new(None),
            silent: out.json,
        }
    }

    /// Clears the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = self.lock().take() {
            bar.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl bb_snapshots::Progress for Bar {
    fn phase(&self, what: &str, total: u64, unit: &'static str) {
        if self.silent {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = if unit == "bytes" {
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta} left)"
        } else {
            "{msg} [{bar:30}] {human_pos}/{human_len} ({eta} left)"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(if unit == "bytes" {
            what.to_string()
        } else {
            format!("{what} ({unit})")
        });
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.lock().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = self.lock().as_ref() {
            bar.inc(n);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
