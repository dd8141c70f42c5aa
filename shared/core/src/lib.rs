//! `bb-core`: the vocabulary every other part of bb speaks.
//!
//! Types ([`Pubkey`], [`Hash`], [`Signature`], [`Transaction`], [`Entry`], [`Block`],
//! [`Vote`], [`Genesis`]), their one canonical binary encoding ([`Canonical`]), SHA-256,
//! domain-separated strict Ed25519 signing with batch verification, `bb_` addresses,
//! and Proof of History ([`PohRecorder`], [`verify_entries_parallel`]).
//!
//! This crate does no I/O and has no async: it never touches files, sockets or clocks
//! (time is passed in), so everything in it runs the same in a validator, a tool, a
//! test and the simulator.

pub mod block;
pub mod encoding;
pub mod evidence;
pub mod genesis;
pub mod hash;
pub mod keys;
pub mod poh;
pub mod tx;
pub mod verified;
pub mod vote;

pub use block::{Block, BlockError, BlockHeader, Slot};
pub use encoding::{Canonical, DecodeError};
pub use evidence::{
    Evidence, EvidenceError, MAX_EVIDENCE_PER_BLOCK, MAX_EVIDENCE_SHRED_BYTES, Offense, OffenseKind,
};
pub use genesis::{
    DEFAULT_SLASH_PENALTY_BPS, Genesis, GenesisAccount, GenesisError, GenesisValidator,
};
pub use hash::{Hash, hash, hashv};
pub use keys::{
    AddressError, Domain, Keypair, Pubkey, Signature, SignatureError, SignedMessage, verify,
    verify_batch,
};
pub use poh::{
    Entry, PohError, PohRecorder, check_tick_structure, verify_entries, verify_entries_parallel,
};
pub use tx::{Transaction, Transfer, verify_transactions};
pub use verified::VerifiedTxs;
pub use vote::{SignedVote, Vote, verify_votes};
