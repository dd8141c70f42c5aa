//! Why a transaction, a block or a bank operation was refused.

use bb_core::{BlockError, GenesisError, Hash, PohError, Pubkey, Slot};

/// Why a transaction was not executed. A failed transaction changes nothing: no transfer,
/// no fee, no status-cache entry (so it may be retried), and a block containing one is
/// invalid ([`ReplayError::Transaction`]).
///
/// Checks run in this order; the first failure is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("signature does not verify")]
    InvalidSignature,
    #[error("transaction already processed on this fork")]
    AlreadyProcessed,
    #[error("recent blockhash unknown or older than 150 blocks")]
    BlockhashNotFound,
    /// `amount + fee` does not fit in a u64. (Credits can never overflow: the supply fits
    /// in a u64 and transfers conserve it.)
    #[error("amount plus fee overflows")]
    Overflow,
    #[error("insufficient funds: balance {balance}, needed {needed}")]
    InsufficientFunds { balance: u64, needed: u64 },
    #[error("bank is frozen")]
    BankFrozen,
}

/// Why a block was not replayed onto its parent. The first problem found is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("parent bank of slot {slot} is not frozen")]
    ParentNotFrozen { slot: Slot },
    #[error("block slot {slot} is not above its parent bank's slot {parent}")]
    SlotNotAfterParent { slot: Slot, parent: Slot },
    #[error("header names parent slot {actual}, the parent bank is slot {expected}")]
    ParentSlot { expected: Slot, actual: Slot },
    #[error("header names parent block {actual}, the parent bank's block is {expected}")]
    ParentId { expected: Hash, actual: Hash },
    #[error("PoH starts at {actual}, the parent ended at {expected}")]
    PohStart { expected: Hash, actual: Hash },
    #[error("slot {slot} belongs to leader {expected}, the block names {actual}")]
    WrongLeader {
        slot: Slot,
        expected: Pubkey,
        actual: Pubkey,
    },
    #[error("block: {0}")]
    Block(#[from] BlockError),
    #[error("no leader is known for slot {slot}: {reason}")]
    NoLeader { slot: Slot, reason: String },
    #[error("cannot root slot {slot}: {reason}")]
    Root { slot: Slot, reason: String },
    #[error("block has {actual} ticks, {expected} are due since the parent")]
    TickCount { expected: u128, actual: u64 },
    #[error("the block does not end with a tick")]
    TrailingEntries,
    #[error("{0}")]
    Poh(#[from] PohError),
    #[error("slashing evidence {index}: {reason}")]
    Evidence {
        index: usize,
        reason: crate::slashing::EvidenceRefusal,
    },
    #[error("transaction {index} of entry {entry}: signature does not verify")]
    InvalidSignature { entry: usize, index: usize },
    #[error("transaction {index} of entry {entry}: {error}")]
    Transaction {
        entry: usize,
        index: usize,
        error: TransactionError,
    },
}

/// Misuse of a bank or of the forks: an operation that does not apply in this state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error("parent bank of slot {slot} is not frozen")]
    ParentNotFrozen { slot: Slot },
    #[error("slot {slot} is not above its parent's slot {parent}")]
    SlotNotAfterParent { slot: Slot, parent: Slot },
    #[error("bank {slot} is already frozen")]
    AlreadyFrozen { slot: Slot },
    #[error("bank {slot} is not frozen")]
    NotFrozen { slot: Slot },
    #[error("slot {slot} does not descend from the root {root}")]
    NotOnRootedFork { slot: Slot, root: Slot },
    #[error("no bank for slot {slot}")]
    UnknownSlot { slot: Slot },
    #[error("a bank for slot {slot} is already present")]
    SlotExists { slot: Slot },
    #[error("bank {slot} was not built on the bank for its parent slot {parent}")]
    UnknownParent { slot: Slot, parent: Slot },
    #[error("slot {slot} would need {ticks} ticks, too many to produce")]
    TooManyTicks { slot: Slot, ticks: u128 },
    /// Slashing evidence was not recorded.
    #[error("slot {slot}: slashing evidence refused: {reason}")]
    Evidence {
        slot: Slot,
        reason: crate::slashing::EvidenceRefusal,
    },
    /// A bank could not be snapshotted, or a snapshot did not rebuild a bank.
    #[error("snapshot of slot {slot}: {reason}")]
    Snapshot {
        slot: Slot,
        reason: crate::snapshot::SnapshotRefusal,
    },
}

/// Why a leader schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("no validator has stake for epoch {epoch}")]
    NoStake { epoch: u64 },
    #[error(
        "an epoch of {slots_per_epoch} slots cannot be cut into rotations of {slots_per_rotation}"
    )]
    Shape {
        slots_per_epoch: u64,
        slots_per_rotation: u64,
    },
    #[error("{rotations} rotations in one epoch is over the limit")]
    TooManyRotations { rotations: u64 },
    #[error("this bank does not know the stakes for epoch {epoch}'s schedule")]
    UnknownEpoch { epoch: u64 },
}
