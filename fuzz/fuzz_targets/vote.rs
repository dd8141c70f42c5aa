//! `SignedVote::from_bytes`: votes arrive by gossip and RPC from anyone.
#![no_main]

use bb_core::SignedVote;
use bb_fuzz::{canonical_round_trip, seeds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("vote", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    seeds::votes()
        .iter()
        .map(bb_core::Canonical::to_bytes)
        .collect()
}

fn check(data: &[u8]) {
    if let Some(vote) = canonical_round_trip::<SignedVote>(data) {
        let _ = vote.verify();
    }
}
