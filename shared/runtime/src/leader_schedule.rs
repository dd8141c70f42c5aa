//! The leader schedule: who leads each slot of an epoch.
//!
//! Deterministic from `(stakes, seed)`, so every node computes the same schedule. The
//! epoch's slots are cut into rotations of `slots_per_rotation` consecutive slots (the
//! last one shorter if the epoch does not divide evenly); each rotation has one leader.
//!
//! 1. **Minimum share.** With `n` staked validators and `R` rotations, every validator
//!    first gets `g = min(min_share, R / n)` rotations: `min_share` each when the epoch
//!    has room for that, otherwise as many as fit evenly.
//! 2. **Stake-weighted rest.** The remaining `R - g·n` rotations are apportioned by stake
//!    with the largest-remainder method: validator `i` gets `floor(rest · s_i / S)`, and
//!    the few left over go to the largest remainders (ties broken by a seeded hash of the
//!    pubkey, not by pubkey order, so no key is favoured). Each validator's count is thus
//!    within one rotation of its exact stake share, every epoch — a validator with twice
//!    the stake gets twice the slots, up to rounding.
//! 3. **Order.** The multiset of turns is shuffled (Fisher–Yates) with ChaCha20 keyed by
//!    the seed, so the order is unpredictable before the seed is known and differs per
//!    epoch. The seed is [`leader_schedule_seed`]: the genesis hash and the epoch number.
//!
//! Index draws use the multiply-shift map of a `u64` onto `0..n` (bias below 2^-40 for
//! any epoch size we accept) and never `rand`'s distributions, whose algorithms may change
//! between versions: the schedule is a consensus value.

use std::collections::BTreeMap;

use bb_core::{Hash, Pubkey, Slot, hashv};
use rand::{Rng, SeedableRng, rngs::ChaCha20Rng};
use serde::Serialize;

use crate::error::ScheduleError;
use crate::stakes::{Epoch, Stakes};

/// Consecutive slots per leader turn unless genesis says otherwise.
pub const DEFAULT_SLOTS_PER_ROTATION: u64 = 4;
/// Rotations guaranteed to every staked validator per epoch (when the epoch has room).
pub const DEFAULT_MIN_ROTATIONS: u64 = 1;
/// Largest number of rotations in one epoch a schedule is built for.
pub const MAX_ROTATIONS_PER_EPOCH: u64 = 1 << 22;

/// The seed of epoch `epoch`'s schedule.
pub fn leader_schedule_seed(genesis_hash: &Hash, epoch: Epoch) -> Hash {
    hashv(&[
        b"bb/leader-schedule/v1\0",
        &genesis_hash.0,
        &epoch.to_le_bytes(),
    ])
}

/// One epoch's leaders, one per rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderSchedule {
    epoch: Epoch,
    first_slot: Slot,
    slots_per_epoch: u64,
    slots_per_rotation: u64,
    rotations: Vec<Pubkey>,
}

impl LeaderSchedule {
    /// Builds epoch `epoch`'s schedule (epochs of `slots_per_epoch` slots from slot 0).
    /// `min_share` is the number of rotations every staked validator is guaranteed.
    pub fn new(
        epoch: Epoch,
        stakes: &Stakes,
        seed: Hash,
        slots_per_epoch: u64,
        slots_per_rotation: u64,
        min_share: u64,
    ) -> Result<LeaderSchedule, ScheduleError> {
        if slots_per_epoch == 0 || slots_per_rotation == 0 {
            return Err(ScheduleError::Shape {
                slots_per_epoch,
                slots_per_rotation,
            });
        }
        let rotations = slots_per_epoch.div_ceil(slots_per_rotation);
        if rotations > MAX_ROTATIONS_PER_EPOCH {
            return Err(ScheduleError::TooManyRotations { rotations });
        }
        let staked: Vec<(Pubkey, u64)> = stakes
            .iter()
            .filter(|(_, s)| **s > 0)
            .map(|(k, s)| (*k, *s))
            .collect();
        if staked.is_empty() {
            return Err(ScheduleError::NoStake { epoch });
        }
        let counts = apportion(&staked, rotations, min_share, &seed);
        let mut turns: Vec<Pubkey> = Vec::with_capacity(rotations as usize);
        for ((key, _), count) in staked.iter().zip(&counts) {
            turns.extend(std::iter::repeat_n(*key, *count as usize));
        }
        let mut rng = ChaCha20Rng::from_seed(hashv(&[&seed.0, b"shuffle"]).0);
        for i in (1..turns.len()).rev() {
            let j = uniform_index(&mut rng, i + 1);
            turns.swap(i, j);
        }
        Ok(LeaderSchedule {
            epoch,
            first_slot: epoch.saturating_mul(slots_per_epoch),
            slots_per_epoch,
            slots_per_rotation,
            rotations: turns,
        })
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn first_slot(&self) -> Slot {
        self.first_slot
    }

    pub fn last_slot(&self) -> Slot {
        self.first_slot.saturating_add(self.slots_per_epoch - 1)
    }

    pub fn slots_per_rotation(&self) -> u64 {
        self.slots_per_rotation
    }

    /// The leader of each rotation, in order.
    pub fn rotations(&self) -> &[Pubkey] {
        &self.rotations
    }

    /// The leader of `slot`, or `None` when the slot is outside this epoch.
    pub fn leader_at(&self, slot: Slot) -> Option<Pubkey> {
        let index = slot.checked_sub(self.first_slot)?;
        if index >= self.slots_per_epoch {
            return None;
        }
        self.rotations
            .get((index / self.slots_per_rotation) as usize)
            .copied()
    }

    /// Every slot of this epoch that `leader` leads, ascending.
    pub fn slots_of(&self, leader: &Pubkey) -> Vec<Slot> {
        let end = self.first_slot.saturating_add(self.slots_per_epoch);
        let mut slots = Vec::new();
        for (r, who) in self.rotations.iter().enumerate() {
            if who == leader {
                let start = self.first_slot + r as u64 * self.slots_per_rotation;
                slots.extend(start..(start + self.slots_per_rotation).min(end));
            }
        }
        slots
    }

    /// How many slots each validator leads this epoch.
    pub fn slot_counts(&self) -> BTreeMap<Pubkey, u64> {
        let mut counts = BTreeMap::new();
        for (r, leader) in self.rotations.iter().enumerate() {
            let start = r as u64 * self.slots_per_rotation;
            let len = self.slots_per_rotation.min(self.slots_per_epoch - start);
            *counts.entry(*leader).or_insert(0) += len;
        }
        counts
    }
}

/// Rotations per validator (same order as `staked`): the guaranteed share plus a
/// largest-remainder apportionment of the rest by stake.
fn apportion(staked: &[(Pubkey, u64)], rotations: u64, min_share: u64, seed: &Hash) -> Vec<u64> {
    let n = staked.len() as u64;
    let guaranteed = min_share.min(rotations / n);
    let rest = u128::from(rotations - guaranteed * n);
    let total: u128 = staked.iter().map(|(_, s)| u128::from(*s)).sum();
    let mut counts = Vec::with_capacity(staked.len());
    let mut remainders = Vec::with_capacity(staked.len());
    let mut assigned: u128 = 0;
    for (i, (key, stake)) in staked.iter().enumerate() {
        let share = rest * u128::from(*stake);
        let quota = share / total;
        assigned += quota;
        counts.push(guaranteed + quota as u64);
        let tiebreak = hashv(&[&seed.0, b"tiebreak", &key.0]);
        remainders.push((share % total, tiebreak, i));
    }
    // Largest remainder first; equal remainders in seeded-hash order.
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, i) in remainders.iter().take((rest - assigned) as usize) {
        counts[*i] += 1;
    }
    counts
}

/// A uniform-enough index in `0..n` (multiply-shift).
fn uniform_index(rng: &mut ChaCha20Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Pubkey {
        Pubkey([n; 32])
    }

    fn stakes(list: &[(u8, u64)]) -> Stakes {
        list.iter().map(|(k, s)| (key(*k), *s)).collect()
    }

    #[test]
    fn rotations_are_consecutive_slots_of_one_leader() {
        let s = stakes(&[(1, 100), (2, 100), (3, 100)]);
        let sched = LeaderSchedule::new(2, &s, Hash::ZERO, 64, 4, 1).unwrap();
        assert_eq!(sched.first_slot(), 128);
        assert_eq!(sched.rotations().len(), 16);
        for r in 0..16u64 {
            let first = sched.leader_at(128 + r * 4);
            for i in 1..4 {
                assert_eq!(sched.leader_at(128 + r * 4 + i), first);
            }
        }
        assert_eq!(sched.leader_at(127), None);
        assert_eq!(sched.leader_at(192), None);
    }

    #[test]
    fn slots_of_matches_leader_at() {
        let s = stakes(&[(1, 5), (2, 50), (3, 500)]);
        let sched = LeaderSchedule::new(0, &s, Hash::ZERO, 40, 3, 1).unwrap();
        let mut total = 0;
        for k in [key(1), key(2), key(3)] {
            let slots = sched.slots_of(&k);
            total += slots.len();
            for slot in slots {
                assert_eq!(sched.leader_at(slot), Some(k));
            }
        }
        // 40 slots: 13 rotations of 3 and a last one of 1.
        assert_eq!(total, 40);
        assert_eq!(sched.rotations().len(), 14);
    }

    #[test]
    fn every_staked_validator_gets_its_minimum_share() {
        let mut list = vec![(1u8, 1_000_000u64)];
        list.extend((2..=10u8).map(|k| (k, 1)));
        let s = stakes(&list);
        let sched = LeaderSchedule::new(0, &s, Hash::ZERO, 400, 4, 2).unwrap();
        let counts = sched.slot_counts();
        for k in 2..=10u8 {
            assert_eq!(counts[&key(k)], 8, "two rotations of four slots");
        }
        // Not enough rotations for the full minimum: as many as fit evenly.
        let sched = LeaderSchedule::new(0, &s, Hash::ZERO, 40, 4, 2).unwrap();
        assert!(sched.slot_counts().values().all(|c| *c == 4));
    }

    #[test]
    fn twice_the_stake_gets_twice_the_slots() {
        let s = stakes(&[(1, 100), (2, 200), (3, 300), (4, 400)]);
        let mut per = [0u64; 5];
        for epoch in 0..50 {
            let seed = leader_schedule_seed(&Hash::ZERO, epoch);
            let sched = LeaderSchedule::new(epoch, &s, seed, 4096, 4, 1).unwrap();
            for (k, c) in sched.slot_counts() {
                per[k.0[0] as usize] += c;
            }
        }
        let ratio = per[2] as f64 / per[1] as f64;
        assert!((1.95..2.05).contains(&ratio), "ratio {ratio}");
        let ratio = per[4] as f64 / per[2] as f64;
        assert!((1.95..2.05).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn same_inputs_same_schedule_other_epoch_other_order() {
        let s = stakes(&[(1, 10), (2, 20), (3, 30)]);
        let g = Hash([9; 32]);
        let a = LeaderSchedule::new(5, &s, leader_schedule_seed(&g, 5), 256, 4, 1).unwrap();
        let b = LeaderSchedule::new(5, &s, leader_schedule_seed(&g, 5), 256, 4, 1).unwrap();
        assert_eq!(a, b);
        let c = LeaderSchedule::new(6, &s, leader_schedule_seed(&g, 6), 256, 4, 1).unwrap();
        assert_ne!(a.rotations(), c.rotations());
    }

    #[test]
    fn no_stake_or_bad_shape_is_an_error() {
        assert_eq!(
            LeaderSchedule::new(3, &Stakes::default(), Hash::ZERO, 32, 4, 1),
            Err(ScheduleError::NoStake { epoch: 3 })
        );
        let s = stakes(&[(1, 1)]);
        assert!(matches!(
            LeaderSchedule::new(0, &s, Hash::ZERO, 32, 0, 1),
            Err(ScheduleError::Shape { .. })
        ));
    }

    #[test]
    fn schedule_is_pinned() {
        // A consensus value: every node must build exactly this schedule.
        let s = stakes(&[(1, 1), (2, 2), (3, 3)]);
        let sched = LeaderSchedule::new(0, &s, Hash::ZERO, 24, 2, 1).unwrap();
        let order: Vec<u8> = sched.rotations().iter().map(|k| k.0[0]).collect();
        assert_eq!(order, vec![2, 2, 1, 2, 3, 3, 2, 3, 3, 1, 3, 3]);
    }
}
