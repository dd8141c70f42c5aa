//! What the Turbine benches share: the 1 MiB block, which shreds of it arrive, and the
//! raw Reed-Solomon crate's view of the same data.

use bb_core::Keypair;
use bb_erasure::Codec;
use bb_turbine::{
    BlockAssembler, DATA_SHREDS_PER_SET, FecSet, HEADER_SIZE, Insert, PAYLOAD_SIZE, SHREDS_PER_SET,
};
use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};
use reed_solomon_erasure::galois_8::ReedSolomon;

pub const BLOCK: usize = 1 << 20;
pub const SLOT: u64 = 10;

/// The benches' block: 1 MiB of seeded random bytes.
pub fn block() -> Vec<u8> {
    let mut out = vec![0u8; BLOCK];
    ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut out);
    out
}

/// Which of a set's 64 shreds arrive: the coding half, or a random half.
pub fn patterns(sets: usize, random: bool) -> Vec<[bool; SHREDS_PER_SET]> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..sets)
        .map(|_| {
            let mut keep: [bool; SHREDS_PER_SET] =
                std::array::from_fn(|p| p >= DATA_SHREDS_PER_SET);
            if random {
                for i in (1..SHREDS_PER_SET).rev() {
                    keep.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
                }
            }
            keep
        })
        .collect()
}

/// The raw crate's shards: every shred's payload (it follows the header in every shred).
pub fn payload_shards(sets: &[FecSet]) -> Vec<Vec<Vec<u8>>> {
    sets.iter()
        .map(|set| {
            set.shreds()
                .iter()
                .map(|s| s.as_bytes()[HEADER_SIZE..HEADER_SIZE + PAYLOAD_SIZE].to_vec())
                .collect()
        })
        .collect()
}

/// The wire bytes of the shreds that arrive, set after set.
pub fn arriving<'a>(sets: &'a [FecSet], keep: &[[bool; SHREDS_PER_SET]]) -> Vec<&'a [u8]> {
    sets.iter()
        .zip(keep)
        .flat_map(|(set, keep)| {
            set.shreds()
                .iter()
                .zip(keep)
                .filter(|(_, present)| **present)
                .map(|(s, _)| s.as_bytes())
        })
        .collect()
}

/// The raw limit: one set's lost shards rebuilt in place by the reed-solomon-erasure crate.
pub fn raw_reconstruct(rs: &ReedSolomon, set: &mut [Vec<u8>], keep: &[bool; SHREDS_PER_SET]) {
    rs.reconstruct(&mut present(set, keep))
        .expect("reconstruct");
}

/// The same by the codec Turbine runs (`bb-erasure`, the crate's code on the fastest kernel
/// this CPU has): the erasure coding alone, without anything else the assembler does.
pub fn codec_reconstruct(codec: &Codec, set: &mut [Vec<u8>], keep: &[bool; SHREDS_PER_SET]) {
    codec
        .reconstruct(&mut present(set, keep))
        .expect("reconstruct");
}

fn present<'a>(set: &'a mut [Vec<u8>], keep: &[bool; SHREDS_PER_SET]) -> Vec<(&'a mut [u8], bool)> {
    set.iter_mut()
        .zip(keep)
        .map(|(shard, &present)| (shard.as_mut_slice(), present))
        .collect()
}

/// A fresh assembler fed `batches` through `insert_batch`; checks the whole block comes out.
pub fn assemble(leader: &Keypair, batches: &[&[&[u8]]]) {
    let mut assembler = BlockAssembler::new(SLOT, leader.pubkey());
    let mut out = None;
    for batch in batches {
        for result in assembler.insert_batch(batch) {
            if let Ok(Insert::Accepted {
                block: Some(block), ..
            }) = result
            {
                out = Some(block);
            }
        }
    }
    assert_eq!(out.map(|b| b.len()), Some(BLOCK));
}
