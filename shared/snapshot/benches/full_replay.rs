//! The replay stage of a full sync, at scale: a ledger of `BB_BLOCKS` (default 1000)
//! rooted blocks of `BB_TXS` (default 1000) signed transfers each, with the localnet's PoH
//! (8 ticks of 1000 hashes per slot), replayed from genesis by `bank_from_ledger` — the
//! same `Bank::replay_rooted` path `bb-sync` runs: read from redb, decode, leader and
//! signature checks, PoH, execution, bank hash compared with the stored one.
//!
//! Beside it, in the same run, the raw limit: batch signature verification of the same
//! transactions alone (`bb_core::verify_transactions`). The target: 1000 slots of 400 ms
//! replayed in under 40 s (10x real time).
//!
//! `cargo bench -p bb-snapshots --bench full_replay` (one measured pass; not criterion:
//! a pass takes tens of seconds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bb_core::{
    Genesis, GenesisAccount, GenesisValidator, Keypair, Pubkey, Transaction, verify_transactions,
};
use bb_ledger::Ledger;
use bb_runtime::{Bank, BankForks, produce_block};
use bb_snapshots::NoProgress;
use rayon::prelude::*;

fn key(tag: u8, i: u64) -> Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let blocks = env("BB_BLOCKS", 1000);
    let per_block = env("BB_TXS", 1000) as usize;
    let validator = key(0xa0, 0);
    let users: Vec<Keypair> = (0..2 * per_block as u64).map(|i| key(0xb0, i)).collect();
    let genesis = Genesis {
        version: 1,
        network: "replay-bench".into(),
        creation_time_ms: 0,
        slot_ms: 400,
        ticks_per_slot: 8,
        hashes_per_tick: 1000,
        slots_per_epoch: 432,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: vec![GenesisValidator {
            identity: validator.pubkey(),
            stake: 100,
        }],
        accounts: users
            .iter()
            .map(|u| GenesisAccount {
                address: u.pubkey(),
                balance: 1_000_000_000,
            })
            .collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();

    let started = Instant::now();
    let mut forks = BankForks::new(Bank::new_genesis(&genesis).unwrap()).unwrap();
    let mut all_txs: Vec<Transaction> = Vec::with_capacity(blocks as usize * per_block);
    for slot in 1..=blocks {
        let parent = forks.root_bank();
        let blockhash = parent.last_blockhash();
        let txs: Vec<Transaction> = (0..per_block)
            .into_par_iter()
            .map(|i| {
                let from = &users[(slot as usize * 7 + i) % users.len()];
                let to: Pubkey = users[(slot as usize * 13 + i + 1) % users.len()].pubkey();
                Transaction::transfer(from, to, 1 + i as u64, 1, blockhash)
            })
            .collect();
        let batches: Vec<Vec<Transaction>> = txs.chunks(256).map(<[_]>::to_vec).collect();
        all_txs.extend_from_slice(&txs);
        let produced = produce_block(&parent, &validator, slot, &batches).unwrap();
        bb_snapshots::test_utils::store_rooted(&ledger, &mut forks, produced);
    }
    let expected = forks.root_bank().hash();
    eprintln!(
        "built {blocks} blocks x {per_block} transfers in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let bank = bb_snapshots::bank_from_ledger(&ledger, &genesis, None, &NoProgress).unwrap();
    let replay = started.elapsed().as_secs_f64();
    assert_eq!(bank.hash(), expected, "replay reached another state");

    let started = Instant::now();
    for chunk in all_txs.chunks(per_block) {
        verify_transactions(chunk).unwrap();
    }
    let raw = started.elapsed().as_secs_f64();

    let txs = all_txs.len() as f64;
    let real_time = blocks as f64 * genesis.slot_ms as f64 / 1000.0;
    println!(
        "full-sync replay: {blocks} blocks x {per_block} transfers in {replay:.2} s = {:.0} tx/s, {:.1}x real time ({real_time:.0} s of slots)",
        txs / replay,
        real_time / replay
    );
    println!(
        "raw batch sigverify of the same transactions: {raw:.2} s = {:.0} tx/s; replay reaches {:.0} % of it",
        txs / raw,
        100.0 * raw / replay
    );
}
