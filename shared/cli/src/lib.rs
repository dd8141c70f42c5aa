//! `bb-cli`: what every bb command-line tool shares, written once.
//!
//! - [`run`]: the `main` of every tool. Arguments that do not parse and errors that
//!   reach the top become one clear line on stderr and exit code 1; help and version
//!   exit 0. No backtraces, no panics shown to users.
//! - [`Output`]: human text or `--json`, chosen once per invocation.
//! - [`keyfile`]: reading and writing Ed25519 key files (mode 0600, never overwritten
//!   unless asked).
//! - [`prompt`]: yes/no questions, only when a person is at the terminal.
//! - [`table`]: tables in one look for every tool.
//! - [`progress`]: progress through named stages, on stderr, silent under `--json`.
//!
//! This crate holds no protocol logic and never talks to a node by itself.

pub mod bar;
pub mod fsx;
pub mod keyfile;
pub mod output;
pub mod progress;
pub mod prompt;
pub mod table;
pub mod target;

use std::process::ExitCode;

pub use output::Output;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a user error: bad arguments, bad input files, a check that failed.
pub const EXIT_USER_ERROR: u8 = 1;

/// Parses arguments and runs the tool's body; returns the process exit code.
///
/// `body` returns `Ok(code)` to choose an exit code itself (a `verify` that does not
/// match returns 1 without an error message of its own) or an error, printed as one line.
pub fn run<A: clap::Parser>(body: impl FnOnce(A) -> anyhow::Result<u8>) -> ExitCode {
    install_panic_hook();
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(err) => return ExitCode::from(report_parse_error(&err)),
    };
    match body(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(EXIT_USER_ERROR)
        }
    }
}

/// An error and its causes on one line: `outer: inner: root cause`.
pub fn one_line(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    parts.join(": ").replace('\n', " ")
}

fn report_parse_error(err: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            EXIT_OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("error: a command is missing (see --help)");
            EXIT_USER_ERROR
        }
        _ => {
            // clap's message is a paragraph (sometimes with the missing names on the
            // lines below it), then tips and usage: keep the paragraph, on one line.
            let rendered = err.to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let text = paragraph.join(" ");
            let text = text.trim_start_matches("error: ");
            let text = if text.is_empty() {
                "invalid arguments"
            } else {
                text
            };
            eprintln!("error: {text} (see --help)");
            EXIT_USER_ERROR
        }
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown".to_string()
        };
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("internal error (a bug in bb, please report it): {msg}{place}");
    }));
}
