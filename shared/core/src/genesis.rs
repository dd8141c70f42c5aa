//! Genesis: the JSON file that starts a network. Its hash names the network; peers with
//! another genesis hash are refused.

use std::collections::BTreeSet;

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::encoding::encode_body;
use crate::hash::{Hash, hashv};
use crate::keys::Pubkey;

/// Largest genesis file accepted.
pub const MAX_GENESIS_JSON_BYTES: usize = 16 << 20;
/// The genesis format this build reads and writes.
pub const GENESIS_VERSION: u32 = 1;

/// A validator present from the first slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub identity: Pubkey,
    pub stake: u64,
}

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub address: Pubkey,
    pub balance: u64,
}

/// The network's founding parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub version: u32,
    /// A human name, part of the hash: two networks with the same keys still differ.
    pub network: String,
    /// Wall-clock start of slot 0, milliseconds since the Unix epoch.
    pub creation_time_ms: u64,
    pub slot_ms: u64,
    pub ticks_per_slot: u64,
    pub hashes_per_tick: u64,
    pub slots_per_epoch: u64,
    pub leader_slots_per_rotation: u64,
    /// The share of an offender's stake cut at the epoch boundary after its offense is
    /// recorded on chain, in basis points (1/100 of a percent).
    #[serde(default = "default_slash_penalty_bps")]
    pub slash_penalty_bps: u32,
    pub validators: Vec<GenesisValidator>,
    pub accounts: Vec<GenesisAccount>,
}

/// The stake share cut per offending epoch unless genesis says otherwise: 10 %.
pub const DEFAULT_SLASH_PENALTY_BPS: u32 = 1000;

fn default_slash_penalty_bps() -> u32 {
    DEFAULT_SLASH_PENALTY_BPS
}

/// Why a genesis file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis is {0} bytes, over the limit of {MAX_GENESIS_JSON_BYTES}")]
    TooLarge(usize),
    #[error("genesis is not valid JSON for this format: {0}")]
    Json(String),
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

impl Genesis {
    /// Parses and validates untrusted JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, GenesisError> {
        if bytes.len() > MAX_GENESIS_JSON_BYTES {
            return Err(GenesisError::TooLarge(bytes.len()));
        }
        let genesis: Genesis =
            serde_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The network's name in every protocol id and topic: a hash of the canonical
    /// encoding (not of the JSON text, so whitespace and key order do not matter).
    pub fn hash(&self) -> Hash {
        hashv(&[b"bb/genesis/v1\0", &encode_body(self)])
    }

    pub fn total_stake(&self) -> u64 {
        self.validators.iter().map(|v| v.stake).sum()
    }

    /// Checks the rules every node relies on.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.version != GENESIS_VERSION {
            return bad(format!(
                "version {} (this build reads {GENESIS_VERSION})",
                self.version
            ));
        }
        if self.network.is_empty() || self.network.len() > 64 {
            return bad("network name must be 1 to 64 characters".into());
        }
        if !(10..=60_000).contains(&self.slot_ms) {
            return bad(format!("slot_ms {} is outside 10..=60000", self.slot_ms));
        }
        if self.ticks_per_slot == 0 || self.ticks_per_slot > 1024 {
            return bad("ticks_per_slot must be 1..=1024".into());
        }
        if self.hashes_per_tick == 0 {
            return bad("hashes_per_tick must be at least 1".into());
        }
        if self.leader_slots_per_rotation == 0 {
            return bad("leader_slots_per_rotation must be at least 1".into());
        }
        if self.slots_per_epoch < self.leader_slots_per_rotation
            || !self
                .slots_per_epoch
                .is_multiple_of(self.leader_slots_per_rotation)
        {
            return bad(format!(
                "slots_per_epoch {} must be a positive multiple of leader_slots_per_rotation {}",
                self.slots_per_epoch, self.leader_slots_per_rotation
            ));
        }
        if self.slash_penalty_bps > 10_000 {
            return bad(format!(
                "slash_penalty_bps {} is over 10000 (all of the stake)",
                self.slash_penalty_bps
            ));
        }
        if self.validators.is_empty() {
            return bad("at least one validator is needed".into());
        }
        let mut seen = BTreeSet::new();
        let mut total: u64 = 0;
        for v in &self.validators {
            if v.stake == 0 {
                return bad(format!("validator {} has zero stake", v.identity));
            }
            if !seen.insert(v.identity) {
                return bad(format!("validator {} is listed twice", v.identity));
            }
            total = total
                .checked_add(v.stake)
                .ok_or_else(|| GenesisError::Invalid("total stake overflows".into()))?;
        }
        let mut seen = BTreeSet::new();
        let mut supply: u64 = 0;
        for a in &self.accounts {
            if !seen.insert(a.address) {
                return bad(format!("account {} is listed twice", a.address));
            }
            supply = supply
                .checked_add(a.balance)
                .ok_or_else(|| GenesisError::Invalid("total balance overflows".into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    fn sample() -> Genesis {
        Genesis {
            version: GENESIS_VERSION,
            network: "test".into(),
            creation_time_ms: 1_700_000_000_000,
            slot_ms: 400,
            ticks_per_slot: 8,
            hashes_per_tick: 1000,
            slots_per_epoch: 32,
            leader_slots_per_rotation: 4,
            slash_penalty_bps: DEFAULT_SLASH_PENALTY_BPS,
            validators: (1..=3)
                .map(|i| GenesisValidator {
                    identity: Keypair::from_seed(&[i; 32]).pubkey(),
                    stake: 100,
                })
                .collect(),
            accounts: vec![GenesisAccount {
                address: Keypair::from_seed(&[9; 32]).pubkey(),
                balance: 1_000_000,
            }],
        }
    }

    #[test]
    fn json_round_trip_keeps_the_hash() {
        let g = sample();
        let parsed = Genesis::from_json(g.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(parsed, g);
        assert_eq!(parsed.hash(), g.hash());
        let compact = serde_json::to_vec(&g).unwrap();
        assert_eq!(Genesis::from_json(&compact).unwrap().hash(), g.hash());
    }

    #[test]
    fn any_parameter_changes_the_hash() {
        let mut g = sample();
        let h = g.hash();
        g.slot_ms = 401;
        assert_ne!(g.hash(), h);
    }

    #[test]
    fn bad_genesis_files_are_refused_with_reasons() {
        assert!(matches!(
            Genesis::from_json(b"{"),
            Err(GenesisError::Json(_))
        ));
        assert!(matches!(
            Genesis::from_json(b"[]"),
            Err(GenesisError::Json(_))
        ));
        let mut g = sample();
        g.validators[1].identity = g.validators[0].identity;
        let err = Genesis::from_json(g.to_json_pretty().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        let mut g = sample();
        g.slots_per_epoch = 30;
        assert!(g.validate().is_err());
        let text = sample()
            .to_json_pretty()
            .replace("\"slot_ms\"", "\"slot_mz\"");
        assert!(matches!(
            Genesis::from_json(text.as_bytes()),
            Err(GenesisError::Json(_))
        ));
    }
}
