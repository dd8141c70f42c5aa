//! `bb-snapshots`: the full state of a rooted bank in one file — written, verified, listed,
//! pruned and loaded — and the rooted state of a stopped node, rebuilt from its ledger.
//!
//! A snapshot is what [`bb_runtime::Bank::snapshot`] takes out of a root bank (its
//! [`SnapshotFields`] and every account) in a versioned, checksummed, zstd-compressed file.
//! Files are streamed both ways: accounts go to and come from disk in chunks, so the
//! memory a writer or verifier needs does not grow with the file. Any flipped byte is found
//! and the message names where: the header, chunk N with its byte and account ranges, or
//! the trailer.
//!
//! # File format, version 1
//!
//! All integers little-endian.
//!
//! | part | bytes | content |
//! |---|---|---|
//! | signature | 8 | `BBSNAP\0` and the format version (1) |
//! | header length | 4 | `n` ≤ 4096 |
//! | header | `n` | bincode (fixed-width integers) of the header: slot, parent slot and hash, epoch, collector, block id, bank hash, state hash, PoH end, signature count, fees, genesis hash, blockhash queue height, account and status-cache counts, chunk sizes, creation time |
//! | header checksum | 32 | SHA-256 of every byte before it |
//! | chunks | … | see below: the bank fields, then the status cache, then the accounts |
//! | trailer | 48 | `BBSNEND\0`, the chunk count (u64), SHA-256 of every byte before this hash |
//!
//! Each chunk is `[u32 compressed length][u32 raw length][32-byte checksum][zstd frame]`;
//! the checksum is SHA-256 over a domain prefix, the chunk's index and both lengths, and
//! the compressed bytes, so a flipped length, a moved chunk or a flipped payload byte all
//! fail it. Raw payloads are at most [`MAX_RAW_CHUNK`] bytes:
//!
//! - chunk 0, **bank fields**: bincode of the blockhash queue, the stakes and the epoch
//!   stakes;
//! - **status cache**: `(recent blockhash, signature, slot)` records of 104 bytes, sorted,
//!   [`STATUS_PER_CHUNK`] to a chunk (the last may hold fewer);
//! - **accounts**: `(pubkey, balance)` records of 40 bytes, strictly rising by pubkey,
//!   non-zero, [`ACCOUNTS_PER_CHUNK`] to a chunk.
//!
//! The header fixes how many chunks of each kind follow, so every chunk's place and
//! contents are known before it is read, and every length is bounded before anything is
//! allocated. Decoders return errors, never panic.
//!
//! # What verification proves
//!
//! [`verify_file`] checks every checksum, that accounts rise strictly, recomputes the
//! lattice state hash from the accounts, stakes, epoch stakes and slashing records and
//! compares it with the header's, and recomputes the bank hash from it. The status cache
//! and blockhash queue are outside the state hash; the checksums are what guard them.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bb_core::{Genesis, GenesisAccount, GenesisValidator, Keypair};
//! use bb_runtime::Bank;
//! use bb_snapshots::{NoProgress, load_snapshot, verify_file, write_snapshot};
//!
//! let genesis = Genesis {
//!     version: 1,
//!     network: "doc".into(),
//!     creation_time_ms: 0,
//!     slot_ms: 400,
//!     ticks_per_slot: 4,
//!     hashes_per_tick: 8,
//!     slots_per_epoch: 32,
//!     leader_slots_per_rotation: 4,
//!     slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
//!     validators: vec![GenesisValidator { identity: Keypair::from_seed(&[1; 32]).pubkey(), stake: 100 }],
//!     accounts: vec![GenesisAccount { address: Keypair::from_seed(&[2; 32]).pubkey(), balance: 1_000 }],
//! };
//! let bank = Bank::new_genesis(&genesis)?;
//! let (fields, accounts) = bank.snapshot()?;
//! let dir = tempfile::tempdir()?;
//! let info = write_snapshot(&fields, accounts.into_iter(), dir.path(), &NoProgress)?;
//! assert_eq!(verify_file(&info.path, &NoProgress)?.bank_hash, info.bank_hash);
//! let loaded = load_snapshot(&info.path, &genesis, &NoProgress)?;
//! assert_eq!(loaded.hash(), bank.hash());
//! # Ok(()) }
//! ```

mod dir;
mod error;
mod format;
mod ledger;
mod progress;
mod read;
mod write;

pub use bb_runtime::SnapshotFields;
pub use dir::{
    SNAPSHOT_DIR_NAME, list_snapshots, newest_snapshot_at_or_below, prune_snapshots,
    snapshot_file_name,
};
pub use error::SnapshotError;
pub use format::{ACCOUNTS_PER_CHUNK, FORMAT_VERSION, MAX_RAW_CHUNK, STATUS_PER_CHUNK};
pub use ledger::{bank_from_ledger, open_stopped_ledger};
pub use progress::{NoProgress, Progress};
pub use read::{
    DownloadRefused, SnapshotInfo, load_snapshot, read_info, verify_download, verify_file,
};
pub use write::write_snapshot;

#[cfg(feature = "test-utils")]
pub mod test_utils;
