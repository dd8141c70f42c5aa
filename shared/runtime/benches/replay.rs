//! Replay throughput beside its raw limit, in the same run.
//!
//! Run with `cargo bench -p bb-runtime`.
//!
//! - `replay/sigverify_raw/N`: `bb_core::verify_transactions` on the block's 1000
//!   transfers — batched Ed25519 on all cores, the bound replay cannot beat — measured
//!   right before the replay of the same block, so both see the same machine load.
//! - `replay/replay_block/depth_N`: `Bank::replay_block` of the same block (header and body
//!   checks, PoH, batched sigverify, parallel execution, lattice state hash, bank hash) on a
//!   parent with N unrooted ancestors, each of which executed its own 1000 transfers
//!   (32 is the usual distance between a tip and the root).
//! - `replay/execute_and_freeze/depth_32`: the same without any verification: execution
//!   plus state hash alone, what replay adds to sigverify.
//!
//! Blocks: 1000 transfers between 2000 accounts (random pairs), 16 entries of ~64
//! transfers, 8 ticks of 64 hashes (PoH is kept small here; its verification is benched
//! in bb-core).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bb_core::{
    Block, Genesis, GenesisAccount, GenesisValidator, Keypair, Transaction, verify_transactions,
};
use bb_runtime::{Bank, produce_block};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ACCOUNTS: usize = 2000;
const TXS_PER_BLOCK: usize = 1000;
const TXS_PER_ENTRY: usize = 64;

fn keypair(i: u64) -> Keypair {
    let mut seed = [0x33u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

fn genesis(keys: &[Keypair], leader: &Keypair) -> Genesis {
    Genesis {
        version: 1,
        network: "bench".into(),
        creation_time_ms: 0,
        slot_ms: 400,
        ticks_per_slot: 8,
        hashes_per_tick: 64,
        slots_per_epoch: 8192,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: vec![GenesisValidator {
            identity: leader.pubkey(),
            stake: 1,
        }],
        accounts: keys
            .iter()
            .map(|k| GenesisAccount {
                address: k.pubkey(),
                balance: 1_000_000_000,
            })
            .collect(),
    }
}

/// 1000 transfers between random pairs of accounts, signed against `parent`.
fn transfers(keys: &[Keypair], parent: &Bank, seed: u64) -> Vec<Transaction> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % ACCOUNTS as u64) as usize
    };
    (0..TXS_PER_BLOCK)
        .map(|i| {
            let (from, to) = (next(), next());
            Transaction::transfer(
                &keys[from],
                keys[to].pubkey(),
                1 + i as u64,
                5,
                parent.last_blockhash(),
            )
        })
        .collect()
}

fn produce(parent: &Arc<Bank>, leader: &Keypair, keys: &[Keypair], slot: u64) -> (Block, Bank) {
    let txs = transfers(keys, parent, slot);
    let batches: Vec<Vec<Transaction>> = txs.chunks(TXS_PER_ENTRY).map(<[_]>::to_vec).collect();
    let produced = produce_block(parent, leader, slot, &batches).expect("produce");
    assert_eq!(produced.bank.signature_count(), TXS_PER_BLOCK as u64);
    (produced.block, produced.bank)
}

/// A parent with `depth` unrooted ancestors above genesis, each with a full block.
fn chain(keys: &[Keypair], leader: &Keypair, depth: u64) -> Arc<Bank> {
    let mut parent = Bank::new_genesis(&genesis(keys, leader)).expect("genesis");
    for slot in 1..=depth {
        let (_, bank) = produce(&parent, leader, keys, slot);
        parent = Arc::new(bank);
    }
    parent
}

fn bench_replay(c: &mut Criterion) {
    let keys: Vec<Keypair> = (0..ACCOUNTS as u64).map(keypair).collect();
    let leader = keypair(u64::MAX);

    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(TXS_PER_BLOCK as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(5));

    for depth in [1u64, 32] {
        let parent = chain(&keys, &leader, depth);
        let slot = depth + 1;
        let (block, _) = produce(&parent, &leader, &keys, slot);
        let txs: Vec<Transaction> = block
            .entries
            .iter()
            .flat_map(|e| e.transactions.iter().copied())
            .collect();
        assert_eq!(txs.len(), TXS_PER_BLOCK);
        // The replayed bank must be the leader's.
        let replayed = Bank::replay_block(&parent, &block, leader.pubkey()).expect("replay");
        assert_eq!(replayed.signature_count(), TXS_PER_BLOCK as u64);

        // The raw limit beside each replay, so both see the same machine load.
        g.bench_function(BenchmarkId::new("sigverify_raw", depth), |b| {
            b.iter(|| verify_transactions(black_box(&txs)).expect("valid"))
        });
        if depth == 32 {
            g.bench_function(BenchmarkId::new("execute_and_freeze", depth), |b| {
                b.iter(|| {
                    let mut bank =
                        Bank::new_from_parent(&parent, slot, leader.pubkey()).expect("bank");
                    let results = bank.process_verified_transactions(black_box(&txs));
                    debug_assert!(results.iter().all(Result::is_ok));
                    bank.freeze(block.header.poh_end, block.id())
                        .expect("freeze")
                })
            });
        }
        g.bench_function(BenchmarkId::new("replay_block", depth), |b| {
            b.iter(|| {
                Bank::replay_block(&parent, black_box(&block), leader.pubkey())
                    .expect("replay")
                    .hash()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
