//! Stakes and epochs.
//!
//! A bank carries the current [`Stakes`] (changed by [`Stakes::apply_stake_change`], the
//! hook slashing will use) and a copy of the stakes as they stood at the start of each
//! recent epoch. The leader schedule of epoch `E` is computed from the stakes at the start
//! of epoch `E - 1` (the genesis stakes for epochs 0 and 1), so every bank in epoch `E`
//! already knows the schedules of `E` and `E + 1`, and forks agree on them.

use std::collections::BTreeMap;

use bb_core::{Genesis, Pubkey, Slot};
use serde::{Deserialize, Serialize};

pub type Epoch = u64;

/// Fixed-length epochs from slot 0 (no warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSchedule {
    pub slots_per_epoch: u64,
}

impl EpochSchedule {
    /// `slots_per_epoch` of zero is treated as one.
    pub fn new(slots_per_epoch: u64) -> Self {
        EpochSchedule {
            slots_per_epoch: slots_per_epoch.max(1),
        }
    }

    fn len(&self) -> u64 {
        self.slots_per_epoch.max(1)
    }

    pub fn epoch(&self, slot: Slot) -> Epoch {
        slot / self.len()
    }

    /// The slot's position inside its epoch.
    pub fn slot_index(&self, slot: Slot) -> u64 {
        slot % self.len()
    }

    pub fn first_slot(&self, epoch: Epoch) -> Slot {
        epoch.saturating_mul(self.len())
    }

    pub fn last_slot(&self, epoch: Epoch) -> Slot {
        self.first_slot(epoch).saturating_add(self.len() - 1)
    }
}

/// Every staked validator's stake. Ordered by pubkey, so iteration is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stakes {
    validators: BTreeMap<Pubkey, u64>,
}

impl Stakes {
    pub fn from_genesis(genesis: &Genesis) -> Self {
        Stakes::from_iter(genesis.validators.iter().map(|v| (v.identity, v.stake)))
    }

    pub fn get(&self, validator: &Pubkey) -> u64 {
        self.validators.get(validator).copied().unwrap_or(0)
    }

    /// Sets a validator's stake (zero removes it) and returns the previous stake. Slashing
    /// and stake movements go through here.
    pub fn apply_stake_change(&mut self, validator: Pubkey, new_stake: u64) -> u64 {
        let old = if new_stake == 0 {
            self.validators.remove(&validator)
        } else {
            self.validators.insert(validator, new_stake)
        };
        old.unwrap_or(0)
    }

    /// Sum of all stakes (saturating; genesis checks the initial total fits).
    pub fn total(&self) -> u64 {
        self.validators
            .values()
            .fold(0u64, |t, s| t.saturating_add(*s))
    }

    /// Validators with non-zero stake, by pubkey.
    pub fn iter(&self) -> impl Iterator<Item = (&Pubkey, &u64)> {
        self.validators.iter()
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }
}

impl FromIterator<(Pubkey, u64)> for Stakes {
    /// Zero stakes are left out; a repeated validator keeps its last stake.
    fn from_iter<I: IntoIterator<Item = (Pubkey, u64)>>(iter: I) -> Self {
        let mut stakes = Stakes::default();
        for (validator, stake) in iter {
            stakes.apply_stake_change(validator, stake);
        }
        stakes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_boundaries() {
        let s = EpochSchedule::new(32);
        assert_eq!(s.epoch(0), 0);
        assert_eq!(s.epoch(31), 0);
        assert_eq!(s.epoch(32), 1);
        assert_eq!(s.first_slot(3), 96);
        assert_eq!(s.last_slot(3), 127);
        assert_eq!(s.slot_index(97), 1);
        assert_eq!(EpochSchedule::new(0).epoch(5), 5);
    }

    #[test]
    fn stake_change_sets_and_zero_removes() {
        let a = Pubkey([1; 32]);
        let mut s: Stakes = [(a, 10), (Pubkey([2; 32]), 0)].into_iter().collect();
        assert_eq!(s.len(), 1);
        assert_eq!(s.apply_stake_change(a, 4), 10);
        assert_eq!(s.get(&a), 4);
        assert_eq!(s.total(), 4);
        assert_eq!(s.apply_stake_change(a, 0), 4);
        assert!(s.is_empty());
    }
}
