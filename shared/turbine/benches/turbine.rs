//! Turbine throughput on a 1 MiB block, against the raw Reed-Solomon crate on the same
//! data in the same 32 + 32 shape (the limit erasure coding alone sets).
//!
//! `codec_*` rows are the same erasure coding by `bb-erasure`, the codec Turbine runs (the
//! crate's code on a GFNI kernel where the CPU has one): what erasure coding alone costs
//! the shredder and the assembler.
//!
//! * `shred/*`: `raw_rs_encode` is parity only, one thread; `raw_rs_encode_pool` the same
//!   with the sets spread over the default rayon pool (as the shredder spreads them);
//!   `raw_rs_encode_sha256[_pool]` adds one SHA-256 per shard (the least any scheme with
//!   SHA-256 Merkle leaves must hash); `shred_and_sign` is the whole shredder (headers,
//!   parity, leaves, tree, one signature per set, proofs, owned shred buffers) on the
//!   default rayon pool and on a one-thread pool.
//! * `recover/*`: only the 32 coding shreds of every set arrive (all data lost), or a
//!   random 32 of 64. `raw_rs_reconstruct` rebuilds in place on one thread,
//!   `raw_rs_reconstruct_pool` with the sets spread over the default pool; `assemble` is a fresh
//!   `BlockAssembler` fed the shreds' bytes: parse, Merkle proof, one signature per set,
//!   erasure decode, rebuilt leaves checked against the root, block concatenated;
//!   `assemble_batches_of_64` feeds the same shreds 64 at a time through `insert_batch`
//!   (hashing, signature checks and rebuilds spread over the default rayon pool), and
//!   `assemble_one_batch` all of the block's arriving shreds in one `insert_batch` (as
//!   when a block's shreds are fetched by repair or read from the ledger).

use bb_core::{Keypair, hash};
use bb_erasure::Codec;
use bb_turbine::{
    BlockAssembler, DATA_SHREDS_PER_SET, FecSet, Insert, PAYLOAD_SIZE, SET_DATA_CAPACITY, Shredder,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use reed_solomon_erasure::galois_8::ReedSolomon;

mod common;

use common::{
    BLOCK, SLOT, arriving, assemble, block, codec_reconstruct, patterns, payload_shards,
    raw_reconstruct,
};

/// The block cut into payload-sized shards, 32 per set, the last set zero-padded.
fn data_shards(block: &[u8]) -> Vec<Vec<Vec<u8>>> {
    block
        .chunks(SET_DATA_CAPACITY)
        .map(|set| {
            (0..DATA_SHREDS_PER_SET)
                .map(|i| {
                    let mut shard = vec![0u8; PAYLOAD_SIZE];
                    let start = (i * PAYLOAD_SIZE).min(set.len());
                    let end = ((i + 1) * PAYLOAD_SIZE).min(set.len());
                    shard[..end - start].copy_from_slice(&set[start..end]);
                    shard
                })
                .collect()
        })
        .collect()
}

fn shred(c: &mut Criterion) {
    let block = block();
    let rs = ReedSolomon::new(32, 32).expect("valid shape");
    let data = data_shards(&block);
    let mut parity: Vec<Vec<Vec<u8>>> = data
        .iter()
        .map(|_| vec![vec![0u8; PAYLOAD_SIZE]; 32])
        .collect();
    let shredder = Shredder::new(Keypair::from_seed(&[1; 32]));
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread pool");

    let mut group = c.benchmark_group("shred_1MiB");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    group.sample_size(20);
    group.bench_function("raw_rs_encode", |b| {
        b.iter(|| {
            for (d, p) in data.iter().zip(parity.iter_mut()) {
                rs.encode_sep(d, p).expect("encode");
            }
        })
    });
    let codec = Codec::new(32, 32).expect("valid shape");
    group.bench_function("codec_encode", |b| {
        b.iter(|| {
            for (d, p) in data.iter().zip(parity.iter_mut()) {
                codec.encode_sep(d, p).expect("encode");
            }
        })
    });
    group.bench_function("raw_rs_encode_pool", |b| {
        b.iter(|| {
            data.par_iter()
                .zip(parity.par_iter_mut())
                .for_each(|(d, p)| rs.encode_sep(d, p).expect("encode"))
        })
    });
    group.bench_function("raw_rs_encode_sha256", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for (d, p) in data.iter().zip(parity.iter_mut()) {
                rs.encode_sep(d, p).expect("encode");
                for shard in d.iter().chain(p.iter()) {
                    acc ^= hash(shard).0[0];
                }
            }
            acc
        })
    });
    group.bench_function("raw_rs_encode_sha256_pool", |b| {
        b.iter(|| {
            data.par_iter()
                .zip(parity.par_iter_mut())
                .map(|(d, p)| {
                    rs.encode_sep(d, p).expect("encode");
                    d.iter()
                        .chain(p.iter())
                        .fold(0u8, |acc, shard| acc ^ hash(shard).0[0])
                })
                .reduce(|| 0, |a, b| a ^ b)
        })
    });
    group.bench_function("shred_and_sign", |b| {
        b.iter(|| shredder.shred(SLOT, SLOT - 1, &block).expect("shred"))
    });
    group.bench_function("shred_and_sign_1_thread", |b| {
        b.iter(|| one_thread.install(|| shredder.shred(SLOT, SLOT - 1, &block).expect("shred")))
    });
    group.finish();
}

fn recover(c: &mut Criterion) {
    let block = block();
    let rs = ReedSolomon::new(32, 32).expect("valid shape");
    let leader = Keypair::from_seed(&[1; 32]);
    let sets: Vec<FecSet> = Shredder::new(leader.clone())
        .shred(SLOT, SLOT - 1, &block)
        .expect("shred");

    let mut group = c.benchmark_group("recover_1MiB_half_lost");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    group.sample_size(20);
    for (name, random) in [("coding_only", false), ("random_half", true)] {
        let keep = patterns(sets.len(), random);
        // The raw crate's shards: the same payloads, the lost ones to be rebuilt in place.
        let mut shards = payload_shards(&sets);
        group.bench_function(format!("raw_rs_reconstruct/{name}"), |b| {
            b.iter(|| {
                for (set, keep) in shards.iter_mut().zip(&keep) {
                    raw_reconstruct(&rs, set, keep);
                }
            })
        });
        let codec = Codec::new(32, 32).expect("valid shape");
        group.bench_function(format!("codec_reconstruct/{name}"), |b| {
            b.iter(|| {
                for (set, keep) in shards.iter_mut().zip(&keep) {
                    codec_reconstruct(&codec, set, keep);
                }
            })
        });
        let arriving = arriving(&sets, &keep);
        group.bench_function(format!("raw_rs_reconstruct_pool/{name}"), |b| {
            b.iter(|| {
                shards
                    .par_iter_mut()
                    .zip(&keep)
                    .for_each(|(set, keep)| raw_reconstruct(&rs, set, keep))
            })
        });
        group.bench_function(format!("assemble/{name}"), |b| {
            b.iter(|| {
                let mut assembler = BlockAssembler::new(SLOT, leader.pubkey());
                let mut out = None;
                for bytes in &arriving {
                    if let Ok(Insert::Accepted {
                        block: Some(block), ..
                    }) = assembler.insert(bytes)
                    {
                        out = Some(block);
                    }
                }
                assert_eq!(out.map(|b| b.len()), Some(BLOCK));
            })
        });
        let of_64: Vec<&[&[u8]]> = arriving.chunks(64).collect();
        group.bench_function(format!("assemble_batches_of_64/{name}"), |b| {
            b.iter(|| assemble(&leader, &of_64))
        });
        let whole = [arriving.as_slice()];
        group.bench_function(format!("assemble_one_batch/{name}"), |b| {
            b.iter(|| assemble(&leader, &whole))
        });
    }
    group.finish();
}

criterion_group!(benches, shred, recover);
criterion_main!(benches);
