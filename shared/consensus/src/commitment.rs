//! Commitment levels, as users know them:
//!
//! - **processed**: the newest block this node has replayed on its best fork;
//! - **confirmed**: the newest block on the best fork that at least 2/3 of the stake has
//!   voted on (directly or by voting a descendant);
//! - **finalized**: the newest block that at least 2/3 of the stake has rooted (each vote
//!   carries its voter's root; a root never moves back).

use std::collections::HashMap;

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
#[derive(Debug, Clone, Default)]
pub struct RootTracker {
    roots: HashMap<Pubkey, Slot>,
}

impl RootTracker {
    pub fn new() -> Self {
        RootTracker::default()
    }

    /// Records a root a validator reported in a vote (older reports are ignored).
    pub fn observe(&mut self, voter: Pubkey, root: Slot) {
        let r = self.roots.entry(voter).or_insert(0);
        *r = (*r).max(root);
    }

    /// The highest slot rooted by at least 2/3 of the stake. `stake_of` gives each
    /// validator's stake; validators without stake do not count.
    pub fn finalized(&self, stake_of: impl Fn(&Pubkey) -> u64, total_stake: u64) -> Slot {
        let mut roots: Vec<(Slot, u64)> = self
            .roots
            .iter()
            .map(|(v, r)| (*r, stake_of(v)))
            .filter(|(_, s)| *s > 0)
            .collect();
        roots.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
        let mut acc = 0u64;
        for (root, stake) in roots {
            acc += stake;
            if is_supermajority(acc, total_stake) {
                return root;
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
        let mut r = RootTracker::new();
        let v: Vec<Pubkey> = (0..4).map(|i| Pubkey([i; 32])).collect();
        r.observe(v[0], 10);
        r.observe(v[1], 8);
        r.observe(v[2], 5);
        r.observe(v[3], 1);
        r.observe(v[0], 3); // roots never move back
        assert_eq!(r.finalized(|_| 25, 100), 5);
        assert_eq!(r.finalized(|_| 34, 100), 8);
    }

    #[test]
    fn confirmed_walks_down_the_best_fork() {
        let mut f = ForkChoice::new(0, Hash::ZERO);
        f.add_block(1, 0, Hash::ZERO);
        f.add_block(2, 1, Hash::ZERO);
        f.add_block(3, 2, Hash::ZERO);
        f.add_vote(Pubkey([1; 32]), 3, 40);
        f.add_vote(Pubkey([2; 32]), 2, 30);
        f.add_vote(Pubkey([3; 32]), 1, 30);
        assert_eq!(confirmed_slot(&mut f, 100), 2);
    }
}
