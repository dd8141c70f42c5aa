//! Shared helpers for the integration tests: keys, genesis, banks frozen without blocks.
#![allow(dead_code)]

use std::sync::Arc;

use bb_core::{Genesis, GenesisAccount, GenesisValidator, Hash, Keypair, Pubkey, Slot, hashv};
use bb_runtime::Bank;

pub fn keypair(i: u64) -> Keypair {
    let mut seed = [0x42u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

pub fn keypairs(range: std::ops::Range<u64>) -> Vec<Keypair> {
    range.map(keypair).collect()
}

/// A genesis with `accounts` funded and `validators` staked; 2 ticks of 4 hashes per
/// slot, 32-slot epochs, rotations of 4.
pub fn genesis(accounts: &[(Pubkey, u64)], validators: &[(Pubkey, u64)]) -> Genesis {
    Genesis {
        version: 1,
        network: "runtime-test".into(),
        creation_time_ms: 1_700_000_000_000,
        slot_ms: 400,
        ticks_per_slot: 2,
        hashes_per_tick: 4,
        slots_per_epoch: 32,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: validators
            .iter()
            .map(|(identity, stake)| GenesisValidator {
                identity: *identity,
                stake: *stake,
            })
            .collect(),
        accounts: accounts
            .iter()
            .map(|(address, balance)| GenesisAccount {
                address: *address,
                balance: *balance,
            })
            .collect(),
    }
}

/// The leader key used as collector by `child`.
pub fn leader() -> Keypair {
    keypair(1_000_000)
}

/// A genesis bank funding each key with `balance`, `leader()` staked.
pub fn genesis_bank(keys: &[Keypair], balance: u64) -> Arc<Bank> {
    let accounts: Vec<(Pubkey, u64)> = keys.iter().map(|k| (k.pubkey(), balance)).collect();
    Bank::new_genesis(&genesis(&accounts, &[(leader().pubkey(), 100)])).expect("genesis")
}

/// A child bank led by `leader()`.
pub fn child(parent: &Arc<Bank>, slot: Slot) -> Bank {
    Bank::new_from_parent(parent, slot, leader().pubkey()).expect("child")
}

/// A stand-in `poh_end` for a bank frozen without a block.
pub fn poh_end(slot: Slot, salt: u8) -> Hash {
    hashv(&[b"poh end", &slot.to_le_bytes(), &[salt]])
}

/// Freezes with a stand-in PoH end and block id.
pub fn freeze(mut bank: Bank) -> Arc<Bank> {
    let slot = bank.slot();
    bank.freeze(poh_end(slot, 0), hashv(&[b"block", &slot.to_le_bytes()]))
        .expect("freeze");
    Arc::new(bank)
}

/// An empty frozen child.
pub fn empty_child(parent: &Arc<Bank>, slot: Slot) -> Arc<Bank> {
    freeze(child(parent, slot))
}
