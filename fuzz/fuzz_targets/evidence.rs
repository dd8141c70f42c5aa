//! `Evidence::from_bytes`: slashing evidence arrives by gossip from anyone (and inside
//! blocks, which the `block` target covers). Evidence that verifies (with the one check
//! nodes run, `bb_runtime::verify_evidence`, shreds included) names the offense it proves,
//! and only its canonical order verifies: one proof has one encoding.
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
    let Ok(offense) = bb_runtime::verify_evidence(&evidence) else {
        return;
    };
    assert_eq!(offense, evidence.offense());
    let swapped = match evidence {
        Evidence::DoubleVote { first, second } => {
            assert_eq!(
                Evidence::double_vote(second, first),
                Evidence::DoubleVote { first, second }
            );
            Evidence::DoubleVote {
                first: second,
                second: first,
            }
        }
        Evidence::DuplicateBlock {
            leader,
            slot,
            first,
            second,
        } => Evidence::DuplicateBlock {
            leader,
            slot,
            first: second,
            second: first,
        },
    };
    assert!(bb_runtime::verify_evidence(&swapped).is_err());
}
