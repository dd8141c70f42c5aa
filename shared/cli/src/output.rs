//! Human-readable text or machine-readable JSON, chosen once per invocation.

use serde::Serialize;

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
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("error: cannot render JSON: {e}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
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
