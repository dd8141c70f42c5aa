//! The signals that ask bb-localnet to stop what it runs: Ctrl-C (SIGINT), SIGTERM and
//! SIGHUP (the terminal went away). Once listened for, they no longer end the process
//! by themselves: the caller stops its nodes first.

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Debug)]
pub struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    /// Starts listening; needs a tokio runtime.
    pub fn listen() -> anyhow::Result<StopSignals> {
        let on = |kind| signal(kind).context("cannot listen for signals");
        Ok(StopSignals {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    /// Waits for the next one; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
