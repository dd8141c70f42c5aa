//! `bb-runtime`: the bank — accounts, transaction execution, state hash, stakes, epochs
//! and the leader schedule. Sans-I/O: no files, sockets, clocks or async; whatever varies
//! (time, randomness, blocks, roots) is passed in.
//!
//! # How a slot's bank comes to be
//!
//! ```text
//! genesis ──Bank::new_genesis──▶ bank 0 (frozen, the first root)
//! parent (frozen, Arc) ──Bank::new_from_parent(slot, leader)──▶ bank (mutable)
//!     leader:   process_transactions (sigverify in batch, parallel by account locks)
//!               ... record the successful ones in PoH entries ...  ──freeze(poh_end, block id)
//!     replayer: Bank::replay_block(parent, block, expected leader) = checks + the same
//!               execution + freeze
//! frozen bank ──BankForks::insert──▶ forks ──set_root(slot)──▶ squash + prune
//! ```
//!
//! A bank stores only what its slot changed and reads through its ancestors to the rooted
//! state, which all banks above the root share; forks therefore share unchanged state and
//! never see each other's changes. Rooting folds the chain into the rooted state and cuts
//! the parent pointer, so chains stay as long as the unrooted part of the fork.
//!
//! # Rules
//!
//! - **Transfers.** Signed transfers only, each paying `fee` to the slot's leader (the
//!   bank's collector). Checks, in order: signature, duplicate on this fork
//!   (`AlreadyProcessed`; the id is the signature), recent blockhash among the last 150
//!   blocks' `poh_end`s (`BlockhashNotFound`), `amount + fee` fits a u64 (`Overflow`),
//!   balance covers `amount + fee` (`InsufficientFunds`). Zero amounts and transfers to
//!   oneself are allowed (they pay the fee). A balance of zero is no account.
//! - **Failed transactions** change nothing and pay nothing; a leader leaves them out of
//!   its block, and a block that contains one is invalid ([`ReplayError::Transaction`]).
//! - **Parallel == serial.** [`Bank::process_transactions`] runs waves of transactions
//!   that share no account on all cores; its results and state always equal
//!   [`Bank::process_transactions_serial`]'s.
//! - **Bank hash** = `hashv(parent bank hash, poh_end, state hash, signature count LE)`;
//!   the state hash is a lattice hash ([`LtHash`]) of all balances and stakes, updated in
//!   O(accounts changed) per slot.
//! - **Leader schedule** per epoch from the stakes at the start of the previous epoch and
//!   a seed from the genesis hash and the epoch ([`LeaderSchedule`]).
//!
//! This crate must never do I/O, read a clock, or hold a lock across parallel work.
//!
//! # Example
//!
//! ```
//! use bb_core::{Genesis, GenesisAccount, GenesisValidator, Keypair, Transaction};
//! use bb_runtime::{Bank, BankForks, produce_block};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let leader = Keypair::from_seed(&[1; 32]);
//! let alice = Keypair::from_seed(&[2; 32]);
//! let bob = Keypair::from_seed(&[3; 32]).pubkey();
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
//!     validators: vec![GenesisValidator { identity: leader.pubkey(), stake: 100 }],
//!     accounts: vec![GenesisAccount { address: alice.pubkey(), balance: 1_000 }],
//! };
//! let mut forks = BankForks::new(Bank::new_genesis(&genesis)?)?;
//! let root = forks.root_bank();
//! let tx = Transaction::transfer(&alice, bob, 100, 5, root.last_blockhash());
//!
//! // The leader of slot 1 builds its block; another validator replays it.
//! let produced = produce_block(&root, &leader, 1, &[vec![tx]])?;
//! let replayed = Bank::replay_block(&root, &produced.block, root.slot_leader(1)?)?;
//! assert_eq!(replayed.hash(), produced.bank.hash());
//!
//! let bank = forks.insert(replayed)?;
//! assert_eq!(bank.balance(&bob), 100);
//! assert_eq!(bank.balance(&leader.pubkey()), 5);
//! let changes = forks.set_root(1)?;
//! assert_eq!(changes.accounts.len(), 3);
//! # Ok(()) }
//! ```

mod bank;
mod blockhash_queue;
mod error;
mod execute;
mod forks;
mod leader;
mod leader_schedule;
mod lt_hash;
mod prehash;
mod replay;
mod slashing;
mod snapshot;
mod stakes;

pub use bank::{Bank, bank_hash};
pub use blockhash_queue::{BlockhashQueue, MAX_RECENT_BLOCKHASHES};
pub use error::{BankError, ReplayError, ScheduleError, TransactionError};
pub use forks::{BankForks, RootChanges};
pub use leader::{ProducedBlock, produce_block, produce_block_with_evidence};
pub use leader_schedule::{
    DEFAULT_MIN_ROTATIONS, DEFAULT_SLOTS_PER_ROTATION, LeaderSchedule, MAX_ROTATIONS_PER_EPOCH,
    leader_schedule_seed,
};
pub use lt_hash::{LT_HASH_LANES, LtHash};
pub use slashing::{EvidenceRefusal, Penalty, verify_evidence};
pub use snapshot::{SnapshotFields, SnapshotRefusal};
pub use stakes::{Epoch, EpochSchedule, Stakes};
