//! `BlockAssembler`, fed by a byzantine leader: the shreds of a real block, with bytes the
//! fuzzer flips, re-signed by the slot's leader so they pass the signature check and reach
//! the Merkle, erasure and equivocation logic behind it; delivered in the fuzzer's order,
//! with losses and duplicates, one by one and again in batches.
//!
//! Input: `[flags][block length u16][slot][parent][edit count]` then 4 bytes per edit
//! `[shred][offset u16][xor]` then one byte per delivered shred (none: all, in order).
//! Flags: bit 0 re-signs every edited set whole (one root over the edited shreds), bit 1
//! re-signs each edited shred alone over the root its own proof leads to (a second
//! version of its set); bits 2.. the batch size.
//!
//! Properties: inserting never panics; one by one and batched, the same shreds give the
//! same block (or none); a block is handed out at most once; with no edits, every shred is
//! accepted and the block is the one shredded as soon as 32 of every set have arrived.
#![no_main]

use std::collections::{HashMap, HashSet};

use bb_core::{Domain, Hash, Keypair};
use bb_fuzz::seeds;
use bb_fuzz::shred_tree::{PROOF_OFFSET, SIGNATURE_OFFSET, leaf, node, root_from_proof};
use bb_turbine::{
    BlockAssembler, DATA_SHREDS_PER_SET, Insert, MAX_BLOCK_BYTES, PROOF_LEN, SHRED_SIZE,
    SHREDS_PER_SET, Shredder, signed_message,
};
use libfuzzer_sys::fuzz_target;

fn byte(data: &mut &[u8]) -> u8 {
    let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
    *data = rest;
    b
}

/// Rebuilds the Merkle tree over one set's 64 shreds as they now are, rewrites every
/// proof, and signs the root for the slot and set each shred's own header names: what a
/// leader that signs anything would send.
fn resign(leader: &Keypair, set: &mut [Vec<u8>]) {
    let mut nodes = vec![Hash([0; 32]); 2 * SHREDS_PER_SET];
    for (position, shred) in set.iter().enumerate() {
        nodes[SHREDS_PER_SET + position] = leaf(shred);
    }
    for i in (1..SHREDS_PER_SET).rev() {
        nodes[i] = node(i, &nodes[2 * i], &nodes[2 * i + 1]);
    }
    let root = nodes[1];
    let mut signatures = HashMap::new();
    for (position, shred) in set.iter_mut().enumerate() {
        let mut index = SHREDS_PER_SET + position;
        for level in 0..PROOF_LEN {
            let at = PROOF_OFFSET + 32 * level;
            shred[at..at + 32].copy_from_slice(&nodes[index ^ 1].0);
            index /= 2;
        }
        let slot = u64::from_le_bytes(shred[3..11].try_into().expect("8 bytes"));
        let fec = u32::from_le_bytes(shred[19..23].try_into().expect("4 bytes"));
        let signature = signatures
            .entry((slot, fec))
            .or_insert_with(|| leader.sign(Domain::Shred, &signed_message(slot, fec, &root)));
        shred[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(&signature.0);
    }
}

/// Signs the root a shred's own proof leads to, for the slot and set its header names.
fn resign_alone(leader: &Keypair, shred: &mut [u8]) {
    let root = root_from_proof(shred);
    let slot = u64::from_le_bytes(shred[3..11].try_into().expect("8 bytes"));
    let fec = u32::from_le_bytes(shred[19..23].try_into().expect("4 bytes"));
    let signature = leader.sign(Domain::Shred, &signed_message(slot, fec, &root));
    shred[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(&signature.0);
}

/// What an assembler made of a delivery: the block, if handed out.
fn assemble(slot: u64, shreds: &[&[u8]], batch: usize, honest: bool) -> Option<Vec<u8>> {
    let mut assembler = BlockAssembler::new(slot, seeds::leader().pubkey());
    let mut block = None;
    for chunk in shreds.chunks(batch) {
        let results = if batch == 1 {
            vec![assembler.insert(chunk[0])]
        } else {
            assembler.insert_batch(chunk)
        };
        assert_eq!(results.len(), chunk.len());
        for result in results {
            match result {
                Ok(Insert::Accepted {
                    block: Some(bytes), ..
                }) => {
                    assert!(block.is_none(), "a block was handed out twice");
                    assert!(bytes.len() <= MAX_BLOCK_BYTES);
                    assert!(assembler.is_complete());
                    block = Some(bytes);
                }
                Ok(_) => {}
                Err(e) => assert!(!honest, "an honest leader's shred was refused: {e}"),
            }
        }
    }
    let _ = assembler.incomplete_sets();
    let _ = assembler.parent_slot();
    block
}

fuzz_target!(
    init: seeds::write_if_asked("assembler", seed_inputs),
    |data: &[u8]| check(data)
);

fn seed_inputs() -> Vec<Vec<u8>> {
    vec![
        // One set, all shreds in order.
        vec![0, 0xe8, 0x03, 9, 1, 0],
        // Two sets, only the coding shreds of each.
        [
            &[0u8, 0x00, 0x80, 77, 7, 0][..],
            &(32..64).chain(96..128).collect::<Vec<u8>>(),
        ]
        .concat(),
        // Two sets, one payload byte flipped and the set re-signed, in batches of 8.
        [
            &[0x1d, 0x00, 0x80, 77, 7, 1, 5, 0x40, 0x01, 0x01][..],
            &(0..128).rev().collect::<Vec<u8>>(),
        ]
        .concat(),
        // One set, a payload byte of data shred 0 flipped and signed alone: two roots.
        [
            &[0x02, 0xe8, 0x03, 9, 1, 1, 0, 0x40, 0x01, 0x01][..],
            &(0..64).collect::<Vec<u8>>(),
        ]
        .concat(),
    ]
}

fn check(data: &[u8]) {
    let mut data = data;
    let flags = byte(&mut data);
    let len = usize::from(u16::from_le_bytes([byte(&mut data), byte(&mut data)]));
    let slot = u64::from(byte(&mut data));
    let parent = slot.saturating_sub(1 + u64::from(byte(&mut data)) % slot.max(1));
    let leader = seeds::leader();
    let block = seeds::filler(len, slot);
    let sets = Shredder::new(leader.clone())
        .shred(slot, parent, &block)
        .expect("a valid block");
    let mut shreds: Vec<Vec<u8>> = sets
        .iter()
        .flat_map(|set| set.shreds().iter().map(|s| s.as_bytes().to_vec()))
        .collect();
    let total = shreds.len();

    let mut edited = HashSet::new();
    let mut edited_shreds = HashSet::new();
    for _ in 0..byte(&mut data) % 16 {
        let shred = usize::from(byte(&mut data)) % total;
        let at = usize::from(u16::from_le_bytes([byte(&mut data), byte(&mut data)])) % SHRED_SIZE;
        let xor = byte(&mut data);
        if xor != 0 {
            shreds[shred][at] ^= xor;
            edited.insert(shred / SHREDS_PER_SET);
            edited_shreds.insert(shred);
        }
    }
    if flags & 1 == 1 {
        for &set in &edited {
            resign(
                &leader,
                &mut shreds[set * SHREDS_PER_SET..(set + 1) * SHREDS_PER_SET],
            );
        }
    }
    if flags & 2 == 2 {
        for &shred in &edited_shreds {
            resign_alone(&leader, &mut shreds[shred]);
        }
    }
    let honest = edited.is_empty();

    let delivered: Vec<&[u8]> = if data.is_empty() {
        shreds.iter().map(Vec::as_slice).collect()
    } else {
        data.iter()
            .map(|&i| shreds[usize::from(i) % total].as_slice())
            .collect()
    };
    let batch = 1 + usize::from(flags >> 2);
    let single = assemble(slot, &delivered, 1, honest);
    let batched = assemble(slot, &delivered, batch, honest);
    assert_eq!(
        single, batched,
        "one by one and batched give different blocks"
    );

    if honest {
        let mut per_set = vec![HashSet::new(); sets.len()];
        for shred in &delivered {
            let fec = u32::from_le_bytes(shred[19..23].try_into().expect("4 bytes"));
            let position = usize::from(shred[23]) + usize::from(shred[1]) * DATA_SHREDS_PER_SET;
            per_set[fec as usize].insert(position);
        }
        if per_set.iter().all(|held| held.len() >= DATA_SHREDS_PER_SET) {
            assert_eq!(
                single.as_deref(),
                Some(&block[..]),
                "an honest block was not rebuilt"
            );
        } else {
            assert_eq!(
                single, None,
                "a block was handed out before every set was complete"
            );
        }
    }
}
