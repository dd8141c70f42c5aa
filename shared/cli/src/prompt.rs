//! Questions for a person at the terminal. Never asks when stdin is not a terminal:
//! scripts get a clear error instead of a hang.

use std::io::IsTerminal;

/// Whether a person can answer a question.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks a yes/no question with "no" as the default. Returns `None` when nobody can answer.
pub fn confirm(question: &str) -> Option<bool> {
    if !interactive() {
        return None;
    }
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .ok()
}
