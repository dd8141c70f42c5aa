//! Ledgers built offline for tests: blocks produced on banks and rooted one by one, stored
//! the way a validator stores them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use bb_core::{Canonical, Genesis, GenesisAccount, GenesisValidator, Keypair, Pubkey, Transaction};
use bb_ledger::{Ledger, RootCommit, SlotMeta};
use bb_runtime::{Bank, BankForks, produce_block};

/// What [`build_ledger`] made.
#[derive(Debug)]
pub struct TestLedger {
    pub genesis: Genesis,
    /// The root bank at the last slot.
    pub root: Arc<Bank>,
    pub validators: Vec<Keypair>,
    pub users: Vec<Keypair>,
}

fn key(tag: u8, i: u64) -> Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

/// The genesis of the test network: two validators, `users` funded accounts, 16-slot
/// epochs of 2 ticks of 4 hashes per slot.
pub fn genesis(users: usize) -> (Genesis, Vec<Keypair>, Vec<Keypair>) {
    let validators = vec![key(0xa0, 0), key(0xa0, 1)];
    let users: Vec<Keypair> = (0..users as u64).map(|i| key(0xb0, i)).collect();
    let genesis = Genesis {
        version: 1,
        network: "snapshot-test".into(),
        creation_time_ms: 1_700_000_000_000,
        slot_ms: 400,
        ticks_per_slot: 2,
        hashes_per_tick: 4,
        slots_per_epoch: 16,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: vec![
            GenesisValidator {
                identity: validators[0].pubkey(),
                stake: 100,
            },
            GenesisValidator {
                identity: validators[1].pubkey(),
                stake: 60,
            },
        ],
        accounts: users
            .iter()
            .map(|k| GenesisAccount {
                address: k.pubkey(),
                balance: 1_000_000,
            })
            .collect(),
    };
    (genesis, validators, users)
}

/// A ledger in `dir` (with `genesis.json`) holding the blocks of slots `1..=slots`, every
/// 5th slot skipped, each rooted as soon as it is produced; a few transfers per block.
pub fn build_ledger(dir: &Path, slots: u64, users: usize) -> TestLedger {
    let (genesis, validators, users) = genesis(users);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("genesis.json"), genesis.to_json_pretty()).unwrap();
    let ledger = Ledger::open(dir).unwrap();
    let mut forks = BankForks::new(Bank::new_genesis(&genesis).unwrap()).unwrap();
    extend(&ledger, &mut forks, &validators, &users, 1..=slots);
    TestLedger {
        genesis,
        root: forks.root_bank(),
        validators,
        users,
    }
}

/// Produces, stores and roots the blocks of `range` (every 5th slot skipped) on the root of
/// `forks`.
pub fn extend(
    ledger: &Ledger,
    forks: &mut BankForks,
    validators: &[Keypair],
    users: &[Keypair],
    range: std::ops::RangeInclusive<u64>,
) {
    for slot in range {
        if slot % 5 == 0 {
            continue;
        }
        let parent = forks.root_bank();
        let leader_key = parent.slot_leader(slot).unwrap();
        let leader = validators
            .iter()
            .find(|k| k.pubkey() == leader_key)
            .unwrap();
        let n = users.len().max(1) as u64;
        let txs: Vec<Transaction> = (0..3u64)
            .filter(|_| !users.is_empty())
            .map(|i| {
                let from = &users[((slot + i) % n) as usize];
                let to: Pubkey = users[((slot * 7 + i) % n) as usize].pubkey();
                Transaction::transfer(from, to, slot + i, 1, parent.last_blockhash())
            })
            .collect();
        let produced = produce_block(&parent, leader, slot, &[txs]).unwrap();
        store_rooted(ledger, forks, produced);
    }
}

/// Stores a produced block the way a validator does and roots it at once: block and slot
/// meta, then the root with its bank hash and changed accounts.
pub fn store_rooted(ledger: &Ledger, forks: &mut BankForks, produced: bb_runtime::ProducedBlock) {
    let slot = produced.block.header.slot;
    let meta = SlotMeta {
        parent_slot: produced.block.header.parent_slot,
        is_full: true,
        ..SlotMeta::default()
    };
    ledger
        .put_block(slot, &meta, &produced.block.to_bytes())
        .unwrap();
    forks.insert(produced.bank).unwrap();
    let changes = forks.set_root(slot).unwrap();
    let accounts: Vec<([u8; 32], Vec<u8>)> = changes
        .accounts
        .iter()
        .filter(|(_, b)| *b > 0)
        .map(|(k, b)| (k.0, b.to_le_bytes().to_vec()))
        .collect();
    let removed: Vec<[u8; 32]> = changes
        .accounts
        .iter()
        .filter(|(_, b)| *b == 0)
        .map(|(k, _)| k.0)
        .collect();
    ledger
        .commit_root(&RootCommit {
            slot,
            block_id: changes.block_id.0,
            bank_hash: changes.bank_hash.0,
            accounts: &accounts,
            removed_accounts: &removed,
            ..RootCommit::default()
        })
        .unwrap();
}
