//! Human-readable text or machine-readable JSON, chosen once per invocation.

use std::io::Write;

use serde::Serialize;

/// Prints one line to stdout. A reader that went away (`bb-... | head`) ends the process
/// quietly, as for any Unix filter, instead of a panic.
pub fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Where a command's results go: people get text, scripts get one JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Prints `value` as JSON when `--json` was given, otherwise the text `human` makes.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        let text = if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: cannot render JSON: {e}");
                    return;
                }
            }
        } else {
            human().trim_end().to_string()
        };
        if !text.is_empty() {
            print_line(&text);
        }
    }

    /// A progress or status note for people; silent under `--json` so stdout stays
    /// one parseable document. Goes to stderr.
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }
}
