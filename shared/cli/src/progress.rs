//! Progress through named stages ("spawned", "peers connected", ...): a spinner for a
//! person at a terminal, one plain line per finished stage when stderr is a file or a
//! pipe, and nothing at all under `--json`. Always on stderr, so stdout stays the result.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Output;

/// Stages passed in order; see the module doc.
///
/// ```
/// let out = bb_cli::Output::new(true); // --json: silent
/// let mut stages = bb_cli::progress::Stages::new(out, &["spawned", "connected"]);
/// stages.reach(0);
/// assert_eq!(stages.current(), Some("connected"));
/// stages.reach(1);
/// assert!(stages.finished());
/// ```
#[derive(Debug)]
pub struct Stages {
    names: Vec<String>,
    done: usize,
    started: Instant,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Silent,
    Lines,
    Spinner(ProgressBar),
}

impl Stages {
    pub fn new(out: Output, names: &[&str]) -> Stages {
        let mode = if out.json {
            Mode::Silent
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(names.len() as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
            {
                bar.set_style(style);
            }
            bar.set_message(names.first().map(|n| waiting(n)).unwrap_or_default());
            bar.enable_steady_tick(Duration::from_millis(120));
            Mode::Spinner(bar)
        } else {
            Mode::Lines
        };
        Stages {
            names: names.iter().map(|n| n.to_string()).collect(),
            done: 0,
            started: Instant::now(),
            mode,
        }
    }

    /// Marks every stage up to and including `index` as finished, each with the time
    /// since the start. Stages already finished are not reported again.
    pub fn reach(&mut self, index: usize) {
        while self.done <= index && self.done < self.names.len() {
            let line = format!(
                "✓ {} ({:.1}s)",
                self.names[self.done],
                self.started.elapsed().as_secs_f64()
            );
            self.done += 1;
            match &self.mode {
                Mode::Silent => {}
                Mode::Lines => eprintln!("{line}"),
                Mode::Spinner(bar) => {
                    bar.println(line);
                    bar.set_position(self.done as u64);
                    bar.set_message(self.current().map(waiting).unwrap_or_default());
                }
            }
        }
    }

    /// How many stages have finished.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Whether every stage has finished.
    pub fn finished(&self) -> bool {
        self.done == self.names.len()
    }

    /// The stage being waited for, if any.
    pub fn current(&self) -> Option<&str> {
        self.names.get(self.done).map(String::as_str)
    }

    /// What the stage in progress is waiting on now ("2 of 3 nodes answering"); shown
    /// beside the spinner only.
    pub fn detail(&self, text: &str) {
        if let (Mode::Spinner(bar), Some(stage)) = (&self.mode, self.current()) {
            bar.set_message(format!("{}: {text}", waiting(stage)));
        }
    }

    /// A line for people, printed above the spinner (or as it is without one).
    pub fn note(&self, text: &str) {
        match &self.mode {
            Mode::Silent => {}
            Mode::Lines => eprintln!("{text}"),
            Mode::Spinner(bar) => bar.println(text),
        }
    }

    /// Seconds since the stages began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Stages {
    fn drop(&mut self) {
        if let Mode::Spinner(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

fn waiting(stage: &str) -> String {
    format!("waiting for {stage}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_finish_in_order_and_skipping_ahead_finishes_the_ones_between() {
        let mut s = Stages::new(Output::new(true), &["a", "b", "c"]);
        assert_eq!(s.current(), Some("a"));
        s.reach(1);
        assert_eq!(s.done(), 2);
        s.reach(0);
        assert_eq!(s.done(), 2, "never goes back");
        s.reach(7);
        assert!(s.finished());
        assert_eq!(s.current(), None);
    }
}
