//! Commitment levels, as users know them:
//!
//! - **processed**: the newest block this node has replayed on its best fork;
//! - **confirmed**: the newest block on the best fork that at least 2/3 of the stake has
//!   voted on (directly or by voting a descendant);
//! - **finalized**: the newest block that at least 2/3 of the stake has rooted (each vote
//!   carries its voter's root; a root never moves back).

use std::collections::{BTreeMap, HashMap};

use bb_core::{Pubkey, Slot};

use crate::fork_choice::ForkChoice;

/// Whether `part` is at least two thirds of `total`.
pub fn is_supermajority(part: u64, total: u64) -> bool {
    total > 0 && (part as u128) * 3 >= (total as u128) * 2
}

/// The three commitment slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Commitment {
    pub processed: Slot,
    pub confirmed: Slot,
    pub finalized: Slot,
}

/// Tracks every validator's latest reported root to derive the finalized slot.
///
/// Keeps the stake at each reported root in an ordered map, so the finalized slot (the
/// highest root that 2/3 of the stake has reached) is found by walking down the few
/// distinct roots, not by sorting all validators on every query.
#[derive(Debug, Clone, Default)]
pub struct RootTracker {
    by_voter: HashMap<Pubkey, (Slot, u64)>,
    stake_at_root: BTreeMap<Slot, u64>,
}

impl RootTracker {
    pub fn new() -> Self {
        RootTracker::default()
    }

    /// Records a root a validator with `stake` reported in a vote. Older roots are
    /// ignored (a root never moves back); a new stake replaces the old one.
    pub fn observe(&mut self, voter: Pubkey, root: Slot, stake: u64) {
        let (old_root, old_stake) = self.by_voter.get(&voter).copied().unwrap_or((0, 0));
        let root = root.max(old_root);
        if self.by_voter.contains_key(&voter) && root == old_root && stake == old_stake {
            return;
        }
        if let Some(s) = self.stake_at_root.get_mut(&old_root) {
            *s -= old_stake.min(*s);
            if *s == 0 {
                self.stake_at_root.remove(&old_root);
            }
        }
        if stake > 0 {
            *self.stake_at_root.entry(root).or_default() += stake;
        }
        self.by_voter.insert(voter, (root, stake));
    }

    /// The highest slot rooted by at least 2/3 of `total_stake` (0 if none).
    pub fn finalized(&self, total_stake: u64) -> Slot {
        let mut acc = 0u64;
        for (root, stake) in self.stake_at_root.iter().rev() {
            acc = acc.saturating_add(*stake);
            if is_supermajority(acc, total_stake) {
                return *root;
            }
        }
        0
    }
}

/// The newest block on the best fork with 2/3 of the stake on it or its descendants.
pub fn confirmed_slot(fork_choice: &mut ForkChoice, total_stake: u64) -> Slot {
    let best = fork_choice.best_slot();
    let mut path = vec![best];
    path.extend(fork_choice.ancestors(best));
    for slot in path {
        if is_supermajority(fork_choice.subtree_stake(slot), total_stake) {
            return slot;
        }
    }
    fork_choice.root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::Hash;

    #[test]
    fn supermajority_is_two_thirds_inclusive() {
        assert!(is_supermajority(2, 3));
        assert!(!is_supermajority(66, 100));
        assert!(is_supermajority(67, 100));
        assert!(!is_supermajority(0, 0));
    }

    #[test]
    fn finalized_is_the_two_thirds_root() {
        let v: Vec<Pubkey> = (0..4).map(|i| Pubkey([i; 32])).collect();
        let tracker = |stake: u64| {
            let mut r = RootTracker::new();
            r.observe(v[0], 10, stake);
            r.observe(v[1], 8, stake);
            r.observe(v[2], 5, stake);
            r.observe(v[3], 1, stake);
            r.observe(v[0], 3, stake); // roots never move back
            r
        };
        assert_eq!(tracker(25).finalized(100), 5);
        assert_eq!(tracker(34).finalized(100), 8);
        let mut r = tracker(25);
        r.observe(v[3], 9, 25);
        assert_eq!(r.finalized(100), 8);
        r.observe(v[2], 9, 0); // stake gone: no longer counts
        assert_eq!(r.finalized(100), 8);
    }

    #[test]
    fn confirmed_walks_down_the_best_fork() {
        let mut f = ForkChoice::new(0, Hash::ZERO);
        f.add_block(1, 0, Hash::ZERO);
        f.add_block(2, 1, Hash::ZERO);
        f.add_block(3, 2, Hash::ZERO);
        f.add_vote(Pubkey([1; 32]), 3, Hash::ZERO, 40);
        f.add_vote(Pubkey([2; 32]), 2, Hash::ZERO, 30);
        f.add_vote(Pubkey([3; 32]), 1, Hash::ZERO, 30);
        assert_eq!(confirmed_slot(&mut f, 100), 2);
    }
}
