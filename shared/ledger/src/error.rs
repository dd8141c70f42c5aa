//! The one error type of the ledger.
//!
//! Variants carry what a caller decides on: a storage failure names the step that failed, a
//! refused write names the invariant it would break, and a failed check names what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger directory could not be created.
    #[error("cannot create ledger directory {path}: {source}")]
    CreateDir {
        /// The directory that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// redb failed; `context` names the ledger step that was running.
    #[error("ledger storage error while {context}: {source}")]
    Storage {
        /// The ledger step, e.g. "committing root".
        context: &'static str,
        /// redb's own error (I/O, corruption redb detected, a lock held by another process...).
        source: redb::Error,
    },

    /// The file was written by a ledger format this build does not read.
    #[error("ledger format version {found} is not supported (this build reads version {expected})")]
    UnsupportedFormat {
        /// The version recorded in the file.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },

    /// A value is bigger than the ledger accepts; nothing was written.
    #[error("{what} is {len} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// What kind of value, e.g. "shred".
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit for that kind.
        max: usize,
    },

    /// Stored bytes that the ledger itself encodes (slot meta, format marker) do not decode.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded, e.g. "slot meta of slot 7".
        what: String,
        /// Why it does not decode.
        detail: String,
    },

    /// A root at or below the current highest root: roots only move forward.
    #[error("root {slot} does not move forward: the highest root is already {latest}")]
    RootNotForward {
        /// The slot that was offered as a root.
        slot: u64,
        /// The highest root already stored.
        latest: u64,
    },

    /// A write was refused because it would break an invariant of the store; nothing was written.
    #[error("refused: {what}")]
    Invalid {
        /// The invariant and the offending values.
        what: String,
    },

    /// A consistency check found stored data that breaks an invariant of the store.
    #[error("ledger integrity check failed: {what}")]
    Integrity {
        /// What is wrong, naming the slot, key or table.
        what: String,
    },
}

/// Adds the name of the ledger step to any redb error.
pub(crate) trait StorageContext<T> {
    fn during(self, context: &'static str) -> Result<T, LedgerError>;
}

impl<T, E: Into<redb::Error>> StorageContext<T> for Result<T, E> {
    fn during(self, context: &'static str) -> Result<T, LedgerError> {
        self.map_err(|e| LedgerError::Storage {
            context,
            source: e.into(),
        })
    }
}
