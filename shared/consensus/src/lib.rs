//! `bb-consensus`: Tower BFT and what it needs, as pure state machines.
//!
//! - [`Tower`]: one validator's votes and lockouts (doubling, 31 deep, then root), and the
//!   checks before a vote: lockout, threshold (2/3 of stake at depth 8), switch (38%).
//! - [`ForkChoice`]: heaviest subtree by latest-vote stake; where to vote and build.
//! - [`VoteTracker`]: stake per slot and block; duplicates count once; double votes become
//!   [`DoubleVote`] evidence.
//! - [`commitment`]: processed / confirmed (2/3 voted) / finalized (2/3 rooted).
//!
//! No I/O, no clocks, no async, no randomness: inputs in, outputs out. A validator and the
//! simulator drive the same code.

pub mod commitment;
pub mod fork_choice;
pub mod tower;
pub mod vote_tracker;

pub use commitment::{Commitment, RootTracker, confirmed_slot, is_supermajority};
pub use fork_choice::ForkChoice;
pub use tower::{Lockout, MAX_LOCKOUT_HISTORY, Tower, TowerError};
pub use vote_tracker::{DoubleVote, VoteOutcome, VoteTracker};
