//! `Block::from_bytes`: blocks arrive rebuilt from shreds and in repair answers, from
//! anyone. A block that decodes is put through every check replay runs before executing
//! it; with a small tick length the PoH check is cheap whatever the entries claim.
#![no_main]

use bb_core::{Block, verify_entries};
use bb_fuzz::{canonical_round_trip, seeds};
use libfuzzer_sys::fuzz_target;

/// Keeps the PoH check bounded: the tick structure is checked before any hashing, so no
/// entry may claim more hashes than this.
const HASHES_PER_TICK: u64 = 16;

fuzz_target!(
    init: seeds::write_if_asked("block", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    seeds::blocks()
        .iter()
        .map(bb_core::Canonical::to_bytes)
        .collect()
}

fn check(data: &[u8]) {
    let Some(block) = canonical_round_trip::<Block>(data) else {
        return;
    };
    let _ = block.id();
    let _ = block.verify_signature();
    let _ = block.verify_body();
    let _ = verify_entries(&block.header.poh_start, &block.entries, HASHES_PER_TICK);
    for evidence in &block.evidence {
        let _ = evidence.verify();
    }
}
