//! `bb-ledger`: the validator's durable store, one [redb](https://docs.rs/redb) database file
//! (`<dir>/ledger.redb`) per node.
//!
//! The crate knows nothing about encodings or consensus. Keys are slots (`u64`), shred indices
//! (`u32`) and 32-byte hashes or pubkeys; values are byte blobs the caller encoded. The only
//! value it encodes itself is [`SlotMeta`], in a fixed little-endian layout.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `slot_meta` | slot | [`SlotMeta`]: parent, shreds received, full / dead |
//! | `shreds` | (slot, kind, index) | one shred, as received |
//! | `blocks` | slot | the whole encoded block |
//! | `roots` | slot | block id of the rooted block |
//! | `bank_hashes` | slot | bank hash after the rooted block |
//! | `accounts` | pubkey | the account as of the latest root |
//! | `tower` | the single row 0 | the persisted vote tower |
//! | `votes` | (slot, voter) | a vote seen for that slot, kept for inspection |
//! | `ledger_format` | 0 | format version of the file |
//!
//! # Invariants
//!
//! - **One write transaction per logical step.** Every writing method of [`Ledger`] commits
//!   exactly one redb transaction, so a crash at any instant (even `SIGKILL` mid-commit) leaves
//!   the last committed step whole and the next one absent. A block and its slot meta are one
//!   step ([`Ledger::put_block`]); a root, its bank hash, its accounts and its purge are one
//!   step ([`Ledger::commit_root`]).
//! - **Roots only move forward**: a root at or below the highest stored root is refused.
//! - Every root has a bank hash; every block has slot meta; a slot's parent is below it.
//! - Every commit is durable (fsynced) before the method returns; in particular
//!   [`Ledger::save_tower`], which the validator calls before a vote leaves the node.
//! - Sizes are checked before anything is written ([`LedgerError::TooLarge`]).
//!
//! [`Ledger::check_integrity`] verifies redb's pages and these invariants.
//!
//! # What it must never do
//!
//! No async, no threads of its own, no networking, no clocks, and no knowledge of consensus
//! rules or of how a block, shred, vote or account is encoded. Unrooted forks live in the
//! caller's memory; what reaches this store is what the caller decided to keep.
//!
//! # Example
//!
//! ```
//! use bb_ledger::{Ledger, RootCommit, ShredKind, SlotMeta};
//!
//! # fn main() -> Result<(), bb_ledger::LedgerError> {
//! # let dir = tempfile::tempdir().map_err(|source| bb_ledger::LedgerError::CreateDir {
//! #     path: std::env::temp_dir(), source })?;
//! let ledger = Ledger::open(dir.path())?;
//! ledger.insert_shred(1, 0, ShredKind::Data, b"shred bytes")?;
//! let meta = SlotMeta { parent_slot: 0, is_full: true, ..SlotMeta::default() };
//! ledger.put_block(1, &meta, b"block bytes")?;
//! ledger.commit_root(&RootCommit {
//!     slot: 1,
//!     block_id: [1; 32],
//!     bank_hash: [2; 32],
//!     accounts: &[([7; 32], b"account bytes".to_vec())],
//!     ..RootCommit::default()
//! })?;
//! assert_eq!(ledger.latest_root()?, Some((1, [1; 32])));
//! assert_eq!(ledger.get_account(&[7; 32])?.as_deref(), Some(&b"account bytes"[..]));
//! # Ok(())
//! # }
//! ```

mod error;
mod integrity;
mod ledger;
mod slot_meta;
mod tables;

pub use error::LedgerError;
pub use integrity::IntegrityReport;
pub use ledger::{
    AccountsIter, DEFAULT_CACHE_BYTES, LEDGER_FILE_NAME, Ledger, MAX_ACCOUNT_BYTES,
    MAX_BLOCK_BYTES, MAX_EVIDENCE_RECORD_BYTES, MAX_SHRED_BYTES, MAX_TOWER_BYTES, MAX_VOTE_BYTES,
    PenaltyRow, RootCommit, ShredKind, ShredRecord,
};
pub use slot_meta::SlotMeta;
