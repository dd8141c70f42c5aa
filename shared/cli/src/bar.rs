//! A progress bar with a rate and an ETA, for work of known size (bytes or items): drawn
//! on stderr for a person at a terminal, one plain line when it finishes otherwise, and
//! nothing under `--json`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Output;

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items(&'static str),
}

/// See the module doc.
#[derive(Debug)]
pub struct Bar {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
    unit: Unit,
    started: Instant,
    pos: u64,
}

impl Bar {
    /// A bar for `len` units of work, `label` saying what it is.
    pub fn new(out: Output, label: &str, len: u64, unit: Unit) -> Bar {
        let tty = !out.json && std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let template = match unit {
                Unit::Bytes => {
                    "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
                        .to_string()
                }
                Unit::Items(name) => {
                    format!(
                        "{{msg:24}} [{{bar:30}}] {{pos}}/{{len}} {name} {{per_sec}} ETA {{eta}}"
                    )
                }
            };
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Bar {
            bar,
            lines: !out.json && !tty,
            label: label.to_string(),
            unit,
            started: Instant::now(),
            pos: 0,
        }
    }

    pub fn set_len(&self, len: u64) {
        if let Some(b) = &self.bar {
            b.set_length(len);
        }
    }

    /// Work already done before this run (a resumed download): counted, not timed.
    pub fn set_position(&mut self, pos: u64) {
        self.pos = pos;
        if let Some(b) = &self.bar {
            b.set_position(pos);
            b.reset_eta();
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.pos += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Ends the bar, leaving one summary line.
    pub fn finish(self) {
        let elapsed = self.started.elapsed();
        let what = match self.unit {
            Unit::Bytes => format!("{:.1} MiB", self.pos as f64 / (1024.0 * 1024.0)),
            Unit::Items(name) => format!("{} {name}", self.pos),
        };
        let line = format!("{}: {what} in {:.1} s", self.label, elapsed.as_secs_f64());
        if let Some(b) = self.bar {
            b.finish_and_clear();
            eprintln!("{line}");
        } else if self.lines {
            eprintln!("{line}");
        }
    }
}
