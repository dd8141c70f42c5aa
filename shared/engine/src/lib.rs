//! `bb-engine`: a validator's decisions as a sans-I/O state machine.
//!
//! [`Validator`] owns the banks ([`bb_runtime::BankForks`]), the fork choice, the tower,
//! the vote tracker and the commitment levels. A driver feeds it events (a block arrived,
//! a vote arrived, our leader slot ended, time to consider voting) and carries out the
//! [`Output`]s it returns, in order: persist the tower, send a vote, send a block, store a
//! block, ask for a repair, flush a new root. The simulator (`bb-sim`) and the validator
//! process (`bb-node`) are two drivers of this one machine.
//!
//! Never: I/O, clocks (time is an argument), threads of its own, or randomness.

mod handoff;
mod tower_record;
mod validator;

pub use handoff::{HANDOFF_GRACE_SLOTS, HeldSlots};

pub use tower_record::TowerRecord;
pub use validator::{EngineError, EvidenceOutcome, Output, Validator};
