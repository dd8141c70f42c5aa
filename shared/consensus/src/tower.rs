//! The tower: one validator's stack of votes and their lockouts.
//!
//! A vote on slot `s` with confirmation count `c` locks the voter out of any fork that
//! does not contain `s` until slot `s + 2^c`. Each new vote stacked on top doubles the
//! lockouts of the votes below it that are deep enough; the tower holds at most
//! [`MAX_LOCKOUT_HISTORY`] votes, and the vote that would be one more pushes the oldest out
//! as the voter's new root. A root is never undone.

use std::collections::VecDeque;

use bb_core::{Hash, Slot};

/// Votes held in the tower; the next one roots the oldest.
pub const MAX_LOCKOUT_HISTORY: usize = 31;
/// The threshold check looks at the vote this deep in the tower.
pub const VOTE_THRESHOLD_DEPTH: usize = 8;
/// ... and at the vote this deep, with the same 2/3: without it, a node cut off with half
/// the stake stacks 8 votes on its side and locks itself there for 2^8 slots (~100 s);
/// with it, for 2^4 (~6 s), so a healed partition finalizes again within a few slots.
pub const VOTE_THRESHOLD_DEPTH_SHALLOW: usize = 4;
/// Share of stake that must have voted at threshold depth (2/3).
pub const VOTE_THRESHOLD_NUM: u64 = 2;
pub const VOTE_THRESHOLD_DEN: u64 = 3;
/// Share of stake that must be on other forks before switching forks (38%).
pub const SWITCH_THRESHOLD_PERCENT: u64 = 38;

/// One vote in the tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub slot: Slot,
    pub confirmation_count: u32,
}

impl Lockout {
    /// How many slots this vote locks the voter for.
    pub fn lockout(&self) -> u64 {
        1u64 << self.confirmation_count.min(63)
    }

    /// The last slot at which this vote still binds.
    pub fn last_locked_out_slot(&self) -> Slot {
        self.slot.saturating_add(self.lockout())
    }

    pub fn is_locked_out_at(&self, slot: Slot) -> bool {
        self.last_locked_out_slot() >= slot
    }
}

/// Why the tower refuses a vote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TowerError {
    #[error("slot {slot} is not newer than the last vote {last}")]
    NotNewer { slot: Slot, last: Slot },
    #[error("slot {slot} is not on the fork of the root {root}")]
    NotOnRootFork { slot: Slot, root: Slot },
    #[error(
        "locked out: vote on slot {locked} binds until slot {until}, and {slot} does not descend from it"
    )]
    LockedOut {
        slot: Slot,
        locked: Slot,
        until: Slot,
    },
    #[error("threshold: only {voted} of {total} stake voted at depth {depth} (slot {at})")]
    Threshold {
        depth: usize,
        at: Slot,
        voted: u64,
        total: u64,
    },
    #[error(
        "switch: only {other_forks} of {total} stake is on other forks; {SWITCH_THRESHOLD_PERCENT}% is needed"
    )]
    Switch { other_forks: u64, total: u64 },
}

/// A validator's tower.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tower {
    votes: VecDeque<Lockout>,
    root: Option<Slot>,
    /// The block the last vote was for: a restart must not vote this slot again with
    /// another hash.
    last_vote_hash: Option<Hash>,
}

impl Tower {
    pub fn new() -> Self {
        Tower::default()
    }

    /// Rebuilds a tower from its persisted parts.
    pub fn from_parts(
        votes: Vec<Lockout>,
        root: Option<Slot>,
        last_vote_hash: Option<Hash>,
    ) -> Self {
        Tower {
            votes: votes.into(),
            root,
            last_vote_hash,
        }
    }

    pub fn votes(&self) -> impl ExactSizeIterator<Item = &Lockout> {
        self.votes.iter()
    }

    pub fn root(&self) -> Option<Slot> {
        self.root
    }

    pub fn last_voted_slot(&self) -> Option<Slot> {
        self.votes.back().map(|l| l.slot)
    }

    pub fn last_vote_hash(&self) -> Option<Hash> {
        self.last_vote_hash
    }

    /// The tower as it would be after voting `slot` (expired votes popped, the vote
    /// pushed, lockouts doubled), and the slot that vote would root.
    fn simulate(&self, slot: Slot) -> (VecDeque<Lockout>, Option<Slot>) {
        let mut votes = self.votes.clone();
        while let Some(top) = votes.back() {
            if top.is_locked_out_at(slot) {
                break;
            }
            votes.pop_back();
        }
        votes.push_back(Lockout {
            slot,
            confirmation_count: 1,
        });
        let new_root = if votes.len() > MAX_LOCKOUT_HISTORY {
            votes.pop_front().map(|l| l.slot)
        } else {
            None
        };
        let depth = votes.len();
        for (i, v) in votes.iter_mut().enumerate() {
            // A vote gains a confirmation once enough votes sit above it.
            if depth > i + v.confirmation_count as usize {
                v.confirmation_count += 1;
            }
        }
        (votes, new_root)
    }

    /// Whether voting `slot` is allowed by lockouts alone. `is_ancestor(a, b)` says whether
    /// slot `a` is an ancestor of slot `b` on the voter's view of the forks.
    pub fn check_lockout(
        &self,
        slot: Slot,
        is_ancestor: impl Fn(Slot, Slot) -> bool,
    ) -> Result<(), TowerError> {
        if let Some(last) = self.last_voted_slot()
            && slot <= last
        {
            return Err(TowerError::NotNewer { slot, last });
        }
        if let Some(root) = self.root
            && !(slot > root && is_ancestor(root, slot))
        {
            return Err(TowerError::NotOnRootFork { slot, root });
        }
        for v in &self.votes {
            // A vote still binding at `slot` must be on `slot`'s fork.
            if v.is_locked_out_at(slot) && !is_ancestor(v.slot, slot) {
                return Err(TowerError::LockedOut {
                    slot,
                    locked: v.slot,
                    until: v.last_locked_out_slot(),
                });
            }
        }
        Ok(())
    }

    /// The threshold check: the votes that would sit [`VOTE_THRESHOLD_DEPTH_SHALLOW`] and
    /// [`VOTE_THRESHOLD_DEPTH`] deep after voting `slot` must be backed by 2/3 of the
    /// stake, or deepening our lockout on them risks locking us onto a fork the cluster
    /// abandons. `voted_stake(s)` is the stake whose latest votes are on `s` or its
    /// descendants.
    pub fn check_threshold(
        &self,
        slot: Slot,
        voted_stake: impl Fn(Slot) -> u64,
        total_stake: u64,
    ) -> Result<(), TowerError> {
        let (votes, _) = self.simulate(slot);
        for depth in [VOTE_THRESHOLD_DEPTH_SHALLOW, VOTE_THRESHOLD_DEPTH] {
            if votes.len() <= depth {
                return Ok(());
            }
            let at = votes[votes.len() - 1 - depth];
            // Only a lockout that is about to grow needs the cluster behind it.
            let before = self.votes.iter().find(|v| v.slot == at.slot);
            if before.is_some_and(|b| b.confirmation_count == at.confirmation_count) {
                continue;
            }
            let voted = voted_stake(at.slot);
            if voted.saturating_mul(VOTE_THRESHOLD_DEN)
                < total_stake.saturating_mul(VOTE_THRESHOLD_NUM)
            {
                return Err(TowerError::Threshold {
                    depth,
                    at: at.slot,
                    voted,
                    total: total_stake,
                });
            }
        }
        Ok(())
    }

    /// The switch check, for a vote on a fork that does not contain our last vote:
    /// `other_fork_stake` (stake whose latest votes are on neither our last vote's fork
    /// nor its ancestors) must reach 38%, proving the cluster has moved.
    pub fn check_switch(&self, other_fork_stake: u64, total_stake: u64) -> Result<(), TowerError> {
        if other_fork_stake.saturating_mul(100)
            >= total_stake.saturating_mul(SWITCH_THRESHOLD_PERCENT)
        {
            Ok(())
        } else {
            Err(TowerError::Switch {
                other_forks: other_fork_stake,
                total: total_stake,
            })
        }
    }

    /// Moves the tower onto a newer root it did not vote its own way to: a validator that
    /// restarts from a snapshot above its last votes. Votes at or below `root` that are on
    /// the root's chain (`on_root_chain`) are settled and dropped. Votes at or below it
    /// elsewhere (or where the chain is not known) stay while they still bind a slot
    /// above `root`: the voter promised not to leave their fork until they expire, and
    /// [`Tower::check_lockout`] keeps that promise. Returns how many such votes remain.
    /// Nothing changes if the tower's own root is already at or above `root`.
    pub fn rebase(&mut self, root: Slot, on_root_chain: impl Fn(Slot) -> bool) -> usize {
        if self.root.is_some_and(|r| r >= root) {
            return 0;
        }
        self.votes.retain(|v| {
            v.slot > root || (!on_root_chain(v.slot) && v.last_locked_out_slot() > root)
        });
        self.root = Some(root);
        self.votes.iter().filter(|v| v.slot <= root).count()
    }

    /// Records a vote on `slot` for block `hash` (after the checks above passed).
    /// Returns the new root if this vote pushed one out.
    pub fn record_vote(&mut self, slot: Slot, hash: Hash) -> Option<Slot> {
        let (votes, new_root) = self.simulate(slot);
        self.votes = votes;
        self.last_vote_hash = Some(hash);
        if new_root.is_some() {
            self.root = new_root;
        }
        new_root
    }

    /// The confirmation count the top vote has (what a vote message reports).
    pub fn top_confirmation_count(&self) -> u32 {
        self.votes.back().map_or(0, |v| v.confirmation_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn linear(a: Slot, b: Slot) -> bool {
        a < b
    }

    #[test]
    fn lockouts_double_as_votes_stack() {
        let mut t = Tower::new();
        for s in 1..=4 {
            t.record_vote(s, Hash::ZERO);
        }
        let counts: Vec<u32> = t.votes().map(|v| v.confirmation_count).collect();
        assert_eq!(counts, vec![4, 3, 2, 1]);
        let lockouts: Vec<u64> = t.votes().map(Lockout::lockout).collect();
        assert_eq!(lockouts, vec![16, 8, 4, 2]);
    }

    #[test]
    fn the_32nd_vote_roots_the_oldest() {
        let mut t = Tower::new();
        for s in 1..=31 {
            assert_eq!(t.record_vote(s, Hash::ZERO), None);
        }
        assert_eq!(t.votes().len(), 31);
        assert_eq!(t.record_vote(32, Hash::ZERO), Some(1));
        assert_eq!(t.root(), Some(1));
        assert_eq!(t.votes().len(), 31);
    }

    #[test]
    fn expired_votes_pop_off() {
        let mut t = Tower::new();
        t.record_vote(1, Hash::ZERO);
        t.record_vote(2, Hash::ZERO);
        // Slot 2 (count 1) binds through 4; slot 1 (count 2) through 5. Voting 10 pops both.
        t.record_vote(10, Hash::ZERO);
        let slots: Vec<Slot> = t.votes().map(|v| v.slot).collect();
        assert_eq!(slots, vec![10]);
    }

    #[test]
    fn locked_out_of_a_sibling_fork() {
        // Fork: 1 -> 2, and 1 -> 3 (3 is not a descendant of 2).
        let is_ancestor = |a: Slot, b: Slot| matches!((a, b), (1, 2) | (1, 3) | (1, 4) | (3, 4));
        let mut t = Tower::new();
        t.record_vote(1, Hash::ZERO);
        t.record_vote(2, Hash::ZERO);
        let err = t.check_lockout(3, is_ancestor).unwrap_err();
        assert!(
            matches!(err, TowerError::LockedOut { locked: 2, .. }),
            "{err}"
        );
        // Far enough in the future the lockout on 2 (binding through 4) has expired.
        assert_eq!(t.check_lockout(5, |a, b| a == 1 && b == 5), Ok(()));
    }

    #[test]
    fn never_votes_the_same_slot_twice() {
        let mut t = Tower::new();
        t.record_vote(7, Hash([1; 32]));
        assert!(matches!(
            t.check_lockout(7, linear),
            Err(TowerError::NotNewer { .. })
        ));
        assert!(matches!(
            t.check_lockout(6, linear),
            Err(TowerError::NotNewer { .. })
        ));
    }

    #[test]
    fn threshold_needs_two_thirds_at_depth_eight() {
        let mut t = Tower::new();
        for s in 1..=9 {
            t.record_vote(s, Hash::ZERO);
        }
        // The next vote deepens the lockout of the vote 8 deep: it needs 2/3.
        assert!(t.check_threshold(10, |_| 60, 100).is_err());
        // The votes 4 deep (slot 6) are backed, the one 8 deep (slot 2) is not.
        assert!(matches!(
            t.check_threshold(10, |s| if s >= 6 { 67 } else { 60 }, 100),
            Err(TowerError::Threshold {
                depth: 8,
                at: 2,
                ..
            })
        ));
        assert_eq!(t.check_threshold(10, |_| 67, 100), Ok(()));
        assert!(Tower::new().check_threshold(1, |_| 0, 100).is_ok());
    }

    #[test]
    fn a_node_without_two_thirds_stacks_at_most_a_shallow_lockout() {
        // Cut off with half the stake: only its own side's votes are seen.
        let mut t = Tower::new();
        let mut slot = 1;
        while t.check_threshold(slot, |_| 50, 100).is_ok() && slot < 100 {
            t.record_vote(slot, Hash::ZERO);
            slot += 1;
        }
        let deepest = t.votes().map(|v| v.lockout()).max().unwrap_or(0);
        assert!(deepest <= 32, "locked for {deepest} slots");
        assert!(matches!(
            t.check_threshold(slot, |_| 50, 100),
            Err(TowerError::Threshold { depth: 4, .. })
        ));
    }

    #[test]
    fn switch_needs_38_percent_elsewhere() {
        let t = Tower::new();
        assert!(t.check_switch(37, 100).is_err());
        assert!(t.check_switch(38, 100).is_ok());
    }

    proptest! {
        /// Whatever the vote sequence: at most 31 votes, slots strictly increasing,
        /// confirmation counts strictly decreasing bottom to top, every vote binding
        /// at least until the one above it, and the root only moves forward.
        #[test]
        fn lockout_invariants_hold(gaps in proptest::collection::vec(1u64..6, 1..200)) {
            let mut t = Tower::new();
            let mut slot = 0;
            let mut last_root = None;
            for g in gaps {
                slot += g;
                t.record_vote(slot, Hash::ZERO);
                let v: Vec<Lockout> = t.votes().copied().collect();
                prop_assert!(v.len() <= MAX_LOCKOUT_HISTORY);
                for w in v.windows(2) {
                    prop_assert!(w[0].slot < w[1].slot);
                    prop_assert!(w[0].confirmation_count > w[1].confirmation_count);
                    prop_assert!(w[0].last_locked_out_slot() >= w[1].slot);
                }
                if let (Some(old), Some(new)) = (last_root, t.root()) {
                    prop_assert!(new >= old);
                }
                if let (Some(r), Some(first)) = (t.root(), v.first()) {
                    prop_assert!(r < first.slot);
                }
                last_root = t.root().or(last_root);
            }
        }
    }

    #[test]
    fn rebase_drops_settled_votes_and_keeps_binding_strays() {
        let mut t = Tower::from_parts(
            vec![
                Lockout {
                    slot: 10,
                    confirmation_count: 5,
                },
                Lockout {
                    slot: 12,
                    confirmation_count: 4,
                },
                Lockout {
                    slot: 14,
                    confirmation_count: 2,
                },
                Lockout {
                    slot: 40,
                    confirmation_count: 1,
                },
            ],
            Some(3),
            None,
        );
        // Root 20: 10 and 14 are on its chain; 12 is not and binds until 28 > 20.
        let strays = t.rebase(20, |s| s == 10 || s == 14);
        assert_eq!(strays, 1);
        assert_eq!(t.root(), Some(20));
        let slots: Vec<Slot> = t.votes().map(|v| v.slot).collect();
        assert_eq!(slots, vec![12, 40]);
        // The stray vote locks out slots it does not lead to until it expires (slot 28);
        // only the new root is an ancestor of anything here.
        let mut strays_only = t.clone();
        strays_only.votes.pop_back();
        let from_root = |a: Slot, b: Slot| a == 20 && b > 20;
        assert!(matches!(
            strays_only.check_lockout(25, from_root),
            Err(TowerError::LockedOut { locked: 12, .. })
        ));
        assert_eq!(strays_only.check_lockout(29, from_root), Ok(()));
        // An older root changes nothing.
        let before = t.clone();
        assert_eq!(t.rebase(15, |_| true), 0);
        assert_eq!(t, before);
        // A stray that expired before the root is dropped.
        let mut t = Tower::from_parts(
            vec![Lockout {
                slot: 5,
                confirmation_count: 1,
            }],
            None,
            None,
        );
        assert_eq!(t.rebase(20, |_| false), 0);
        assert_eq!(t.votes().count(), 0);
    }
}
