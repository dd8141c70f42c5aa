//! `Equivocation::verify`: duplicate-block evidence arrives from any peer, and what it
//! proves gets a leader slashed. It must never panic, and it must never prove anything
//! against an honest leader: two shreds of one honestly shredded block never verify as a
//! conflict, for any claimed reason.
//!
//! Input: `[mode][block length u16][slot][parent]` then by mode (low two bits):
//! - 0, raw: `[u16 length][first][second]`, any bytes;
//! - 1, honest: `[i][j]`, two shreds of the block (must not verify);
//! - 2, forged: `[i][j]` then edits `[offset u16][xor]` to the second shred, which is then
//!   signed by the leader over the root its own proof leads to (a byzantine leader
//!   signing anything, so the checks behind the signatures are reached).
#![no_main]

use bb_core::Domain;
use bb_fuzz::seeds;
use bb_fuzz::shred_tree::{PROOF_OFFSET, SIGNATURE_OFFSET, root_from_proof};
use bb_turbine::{ConflictReason, Equivocation, SHRED_SIZE, Shredder, signed_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: seeds::write_if_asked("equivocation", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    vec![
        // Two sets; data shred 0 of set 0 and the last coding shred of set 1.
        vec![1, 0x00, 0x80, 77, 7, 0, 127],
        // The same with the second shred's parent offset changed and re-signed.
        vec![2, 0x00, 0x80, 77, 7, 0, 127, 11, 0, 1],
        // A shred of set 0 re-flagged as the last set, against a shred of set 1.
        vec![2, 0x00, 0x80, 77, 7, 100, 5, 2, 0, 1],
    ]
}

fn byte(data: &mut &[u8]) -> u8 {
    let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
    *data = rest;
    b
}

/// Every reason a conflict can be claimed for, about `fec_set_index`.
fn reasons(fec_set_index: u32) -> [ConflictReason; 4] {
    [
        ConflictReason::DifferentRoot { fec_set_index },
        ConflictReason::InconsistentSet { fec_set_index },
        ConflictReason::ParentMismatch,
        ConflictReason::LastSetMismatch,
    ]
}

/// Signs the root the shred's own proof leads to, for the slot and set its header names.
fn resign(shred: &mut [u8]) {
    let root = root_from_proof(shred);
    let slot = u64::from_le_bytes(shred[3..11].try_into().expect("8 bytes"));
    let fec = u32::from_le_bytes(shred[19..23].try_into().expect("4 bytes"));
    let signature = seeds::leader().sign(Domain::Shred, &signed_message(slot, fec, &root));
    shred[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(&signature.0);
}

fn check(data: &[u8]) {
    let mut data = data;
    let mode = byte(&mut data) & 3;
    let len = usize::from(u16::from_le_bytes([byte(&mut data), byte(&mut data)]));
    let slot = u64::from(byte(&mut data));
    let parent = slot.saturating_sub(1 + u64::from(byte(&mut data)) % slot.max(1));
    let leader = seeds::leader();

    let (first, second) = if mode == 0 {
        let split = usize::from(u16::from_le_bytes([byte(&mut data), byte(&mut data)]));
        let (a, b) = data.split_at(split.min(data.len()));
        (a.to_vec(), b.to_vec())
    } else {
        let shreds: Vec<Vec<u8>> = Shredder::new(leader.clone())
            .shred(slot, parent, &seeds::filler(len, slot))
            .expect("a valid block")
            .iter()
            .flat_map(|set| set.shreds().iter().map(|s| s.as_bytes().to_vec()))
            .collect();
        let first = shreds[usize::from(byte(&mut data)) % shreds.len()].clone();
        let mut second = shreds[usize::from(byte(&mut data)) % shreds.len()].clone();
        if mode >= 2 {
            while !data.is_empty() {
                let at = usize::from(u16::from_le_bytes([byte(&mut data), byte(&mut data)]));
                second[at % SHRED_SIZE] ^= byte(&mut data);
            }
            resign(&mut second);
        }
        (first, second)
    };

    let fec_sets = [&first, &second].map(|s| {
        s.get(19..23)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    });
    for fec_set_index in fec_sets {
        for reason in reasons(fec_set_index) {
            let claim = Equivocation {
                slot,
                reason,
                first: first.clone(),
                second: second.clone(),
            };
            let verified = claim.verify(&leader.pubkey());
            if mode == 1 {
                assert!(
                    verified.is_err(),
                    "two shreds of an honest block verify as {reason}"
                );
            }
        }
    }
}
