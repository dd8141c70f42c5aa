//! What the engine's integration tests share.

use bb_core::{Genesis, GenesisAccount, GenesisValidator, Keypair};

/// A genesis of `keys` as equal validators (stake 100 each), short ticks, 64-slot epochs
/// and runs of 4 leader slots, with `accounts` funded.
pub fn genesis(network: &str, keys: &[Keypair], accounts: Vec<GenesisAccount>) -> Genesis {
    Genesis {
        version: bb_core::genesis::GENESIS_VERSION,
        network: network.into(),
        creation_time_ms: 0,
        slot_ms: 400,
        ticks_per_slot: 4,
        hashes_per_tick: 16,
        slots_per_epoch: 64,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: keys
            .iter()
            .map(|k| GenesisValidator {
                identity: k.pubkey(),
                stake: 100,
            })
            .collect(),
        accounts,
    }
}
