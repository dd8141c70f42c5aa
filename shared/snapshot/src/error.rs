//! The one error type of the crate. A corrupt file names the file and the region; a
//! broken ledger chain names the slot.

use std::path::PathBuf;

use bb_core::{Hash, Slot};
use bb_ledger::LedgerError;
use bb_runtime::{BankError, ReplayError};

/// Everything that can go wrong writing, reading or rebuilding a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The operating system refused a file operation.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "read".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A region of the file does not check out: a checksum, a length, or contents.
    #[error("{file}: {region} is corrupt: {detail}")]
    Corrupt {
        /// The file's name.
        file: String,
        /// Where: "the header (bytes 8..412)", "chunk 7 (accounts 229376..262144, bytes ...)".
        region: String,
        /// What is wrong there.
        detail: String,
    },

    /// The file is not a snapshot at all, or of a format this build does not read.
    #[error("{file}: {detail}")]
    NotASnapshot {
        /// The file's name.
        file: String,
        /// Why.
        detail: String,
    },

    /// Every checksum holds but the accounts and stakes do not hash to the state hash the
    /// header records.
    #[error(
        "{file}: state hash mismatch: accounts/stakes do not hash to the recorded state hash (computed {computed}, recorded {recorded})"
    )]
    StateHash {
        /// The file's name.
        file: String,
        /// In the header.
        recorded: Hash,
        /// From the accounts and stakes.
        computed: Hash,
    },

    /// The header's bank hash does not follow from its parent hash, PoH end, state hash and
    /// signature count.
    #[error(
        "{file}: bank hash mismatch: the header's fields hash to {computed}, it records {recorded}"
    )]
    BankHash {
        /// The file's name.
        file: String,
        /// In the header.
        recorded: Hash,
        /// From the fields.
        computed: Hash,
    },

    /// The snapshot did not rebuild a bank (wrong genesis, inconsistent fields).
    #[error("{file}: {source}")]
    Bank {
        /// The file's name.
        file: String,
        /// Why the bank refused it.
        source: BankError,
    },

    /// A bank operation failed (an invalid genesis, a bank that is not a root).
    #[error("{0}")]
    Runtime(#[from] BankError),

    /// The data given to the writer is not a snapshot (accounts out of order, a count that
    /// does not match); nothing was written.
    #[error("cannot write the snapshot: {0}")]
    Invalid(String),

    /// The ledger could not be read.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),

    /// The ledger file is held by another process.
    #[error("the ledger in {dir} is open in another process (a running node?): stop it first")]
    LedgerInUse {
        /// The ledger directory.
        dir: PathBuf,
    },

    /// There is no ledger where one was expected.
    #[error("no ledger in {dir} (no {file} there)")]
    NoLedger {
        /// The directory that was given.
        dir: PathBuf,
        /// The file that is missing.
        file: &'static str,
    },

    /// The requested slot is not a root of the ledger.
    #[error("slot {slot} is not a rooted slot of this ledger (its latest root is {latest})")]
    NotRooted {
        /// What was asked for.
        slot: Slot,
        /// The ledger's latest root.
        latest: Slot,
    },

    /// The rooted chain stored in the ledger does not hold together at `slot`.
    #[error("the rooted chain is broken at slot {slot}: {what}")]
    Chain {
        /// The first slot where it breaks.
        slot: Slot,
        /// What is wrong.
        what: String,
    },

    /// A rooted block did not replay.
    #[error("replaying rooted slot {slot}: {source}")]
    Replay {
        /// The slot of the block.
        slot: Slot,
        /// Why replay refused it.
        source: ReplayError,
    },

    /// A replayed block's bank hash differs from the one the ledger recorded.
    #[error("slot {slot} replays to bank hash {replayed}, the ledger recorded {recorded}")]
    LedgerBankHash {
        /// The slot.
        slot: Slot,
        /// What the ledger says.
        recorded: Hash,
        /// What replay computed.
        replayed: Hash,
    },
}

impl SnapshotError {
    pub(crate) fn io<P: Into<PathBuf>>(
        action: &'static str,
        path: P,
    ) -> impl FnOnce(std::io::Error) -> Self + use<P> {
        let path = path.into();
        move |source| SnapshotError::Io {
            action,
            path,
            source,
        }
    }
}
