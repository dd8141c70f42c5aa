//! Progress reports for long steps, so a tool can draw a bar without this crate knowing
//! about terminals.

/// Receives progress: a phase starts with its total, then advances in units of it.
pub trait Progress {
    /// A new phase begins: `what` ("verifying"), `total` units of `unit` ("bytes",
    /// "accounts", "blocks").
    fn phase(&self, what: &str, total: u64, unit: &'static str);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
}

/// Progress nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _what: &str, _total: u64, _unit: &'static str) {}
    fn advance(&self, _n: u64) {}
}
