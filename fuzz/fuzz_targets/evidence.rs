//! `Evidence::from_bytes`: slashing evidence arrives by gossip from anyone (and inside
//! blocks, which the `block` target covers). Evidence that verifies names the offense its
//! votes prove.
#![no_main]

use bb_core::Evidence;
use bb_fuzz::{canonical_round_trip, seeds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("evidence", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    seeds::evidence()
        .iter()
        .map(bb_core::Canonical::to_bytes)
        .collect()
}

fn check(data: &[u8]) {
    let Some(evidence) = canonical_round_trip::<Evidence>(data) else {
        return;
    };
    if let Ok(offense) = evidence.verify() {
        assert_eq!(offense, evidence.offense());
        if let Evidence::DoubleVote { first, second } = evidence {
            assert_eq!(Evidence::double_vote(second, first).verify(), Ok(offense));
        }
    }
}
