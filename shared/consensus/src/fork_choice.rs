//! Heaviest-subtree fork choice: the best fork is found by walking from the root, at
//! each block taking the child whose subtree holds the most stake by latest votes.
//!
//! Votes only record each validator's latest slot and block (O(1) each); subtree weights
//! are recomputed lazily, once per query after changes, in O(blocks + validators). That
//! keeps a slot with one vote per validator linear in the validator count.
//!
//! A slot can have two versions when its leader equivocates. The tree holds the version
//! this node replayed; a vote counts only if it names that version's block id, so stake
//! behind another version never props up ours. A slot known to be duplicate is no
//! candidate (neither it nor its descendants can be best) until it is *duplicate
//! confirmed*; see [`ForkChoice::mark_duplicate`].

use std::collections::{BTreeMap, HashMap, HashSet};

use bb_core::{Hash, Pubkey, Slot};

#[derive(Debug, Clone)]
struct Node {
    parent: Option<Slot>,
    children: Vec<Slot>,
    block_id: Hash,
    /// Stake whose latest vote is exactly this slot.
    stake_here: u64,
    /// Stake whose latest vote is this slot or a descendant.
    stake_subtree: u64,
    /// The heaviest leaf reachable from here.
    best: Slot,
    invalid: bool,
    /// Its leader signed another version too, and this one is not (yet) confirmed.
    unconfirmed_duplicate: bool,
}

impl Node {
    fn candidate(&self) -> bool {
        !self.invalid && !self.unconfirmed_duplicate
    }
}

/// The tree of blocks above the root, weighted by validators' latest votes.
#[derive(Debug, Clone)]
pub struct ForkChoice {
    root: Slot,
    nodes: BTreeMap<Slot, Node>,
    /// Each voter's latest vote: slot, block id, stake.
    latest_votes: HashMap<Pubkey, (Slot, Hash, u64)>,
    dirty: bool,
}

impl ForkChoice {
    /// A tree holding just the root block.
    pub fn new(root: Slot, root_id: Hash) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            root,
            Node {
                parent: None,
                children: Vec::new(),
                block_id: root_id,
                stake_here: 0,
                stake_subtree: 0,
                best: root,
                invalid: false,
                unconfirmed_duplicate: false,
            },
        );
        ForkChoice {
            root,
            nodes,
            latest_votes: HashMap::new(),
            dirty: false,
        }
    }

    pub fn root(&self) -> Slot {
        self.root
    }

    pub fn contains(&self, slot: Slot) -> bool {
        self.nodes.contains_key(&slot)
    }

    pub fn block_id(&self, slot: Slot) -> Option<Hash> {
        self.nodes.get(&slot).map(|n| n.block_id)
    }

    pub fn parent(&self, slot: Slot) -> Option<Slot> {
        self.nodes.get(&slot).and_then(|n| n.parent)
    }

    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.nodes.keys().copied()
    }

    /// Adds a replayed block. Returns false (and changes nothing) if its parent is unknown
    /// or the slot is already present or not above its parent.
    pub fn add_block(&mut self, slot: Slot, parent: Slot, block_id: Hash) -> bool {
        if slot <= parent || self.nodes.contains_key(&slot) || !self.nodes.contains_key(&parent) {
            return false;
        }
        self.nodes.insert(
            slot,
            Node {
                parent: Some(parent),
                children: Vec::new(),
                block_id,
                stake_here: 0,
                stake_subtree: 0,
                best: slot,
                invalid: false,
                unconfirmed_duplicate: false,
            },
        );
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.push(slot);
        }
        self.dirty = true;
        true
    }

    /// Marks a block as unusable (failed replay): it and its descendants are never best.
    pub fn mark_invalid(&mut self, slot: Slot) {
        if let Some(n) = self.nodes.get_mut(&slot) {
            n.invalid = true;
            self.dirty = true;
        }
    }

    /// Records `voter`'s vote on block `block_id` at `slot` if newer than its latest.
    /// Stake may change at epoch boundaries; the latest call's stake counts. The vote
    /// weighs only while the tree holds that very block at `slot`.
    pub fn add_vote(&mut self, voter: Pubkey, slot: Slot, block_id: Hash, stake: u64) {
        let entry = self.latest_votes.entry(voter).or_insert((0, Hash::ZERO, 0));
        if slot > entry.0 || (slot == entry.0 && (stake != entry.2 || block_id != entry.1)) {
            *entry = (slot, block_id, stake);
            self.dirty = true;
        }
    }

    /// Marks `slot` as one of several versions its leader signed: it and its descendants
    /// stop being candidates for the best fork until [`ForkChoice::confirm_duplicate`].
    pub fn mark_duplicate(&mut self, slot: Slot) {
        if let Some(n) = self.nodes.get_mut(&slot)
            && !n.unconfirmed_duplicate
        {
            n.unconfirmed_duplicate = true;
            self.dirty = true;
        }
    }

    /// The version of `slot` held here is the one the cluster confirmed: a candidate again.
    pub fn confirm_duplicate(&mut self, slot: Slot) {
        if let Some(n) = self.nodes.get_mut(&slot)
            && n.unconfirmed_duplicate
        {
            n.unconfirmed_duplicate = false;
            self.dirty = true;
        }
    }

    /// Whether `slot` or one of its ancestors is invalid or an unconfirmed duplicate: a
    /// fork the cluster cannot settle on as it stands.
    pub fn on_unusable_fork(&self, slot: Slot) -> bool {
        let mut cur = Some(slot);
        while let Some(s) = cur {
            match self.nodes.get(&s) {
                Some(n) if !n.candidate() => return true,
                Some(n) => cur = n.parent,
                None => return false,
            }
        }
        false
    }

    /// Drops `slot` and every block descending from it (a version of `slot` being
    /// replaced by another). Returns the removed slots, ascending. The root stays.
    pub fn remove_subtree(&mut self, slot: Slot) -> Vec<Slot> {
        if slot == self.root || !self.nodes.contains_key(&slot) {
            return Vec::new();
        }
        let mut removed = Vec::new();
        let mut stack = vec![slot];
        while let Some(s) = stack.pop() {
            if let Some(n) = self.nodes.remove(&s) {
                stack.extend(n.children);
                removed.push(s);
            }
        }
        for n in self.nodes.values_mut() {
            n.children.retain(|c| *c != slot);
        }
        removed.sort_unstable();
        self.dirty = true;
        removed
    }

    pub fn latest_vote(&self, voter: &Pubkey) -> Option<Slot> {
        self.latest_votes.get(voter).map(|v| v.0)
    }

    /// Whether `a` is a strict ancestor of `b` (both must be in the tree; the root is an
    /// ancestor of every other block in it).
    pub fn is_ancestor(&self, a: Slot, b: Slot) -> bool {
        if a >= b {
            return false;
        }
        let mut cur = b;
        while let Some(p) = self.nodes.get(&cur).and_then(|n| n.parent) {
            if p == a {
                return true;
            }
            if p < a {
                return false;
            }
            cur = p;
        }
        false
    }

    /// Whether `a` is `b` or an ancestor of it.
    pub fn is_ancestor_or_self(&self, a: Slot, b: Slot) -> bool {
        a == b && self.contains(a) || self.is_ancestor(a, b)
    }

    /// The ancestors of `slot` inside the tree, nearest first.
    pub fn ancestors(&self, slot: Slot) -> Vec<Slot> {
        let mut out = Vec::new();
        let mut cur = slot;
        while let Some(p) = self.nodes.get(&cur).and_then(|n| n.parent) {
            out.push(p);
            cur = p;
        }
        out
    }

    fn recompute(&mut self) {
        if !self.dirty {
            return;
        }
        for n in self.nodes.values_mut() {
            n.stake_here = 0;
            n.stake_subtree = 0;
            n.best = 0;
        }
        for &(slot, id, stake) in self.latest_votes.values() {
            // Votes for blocks we have not replayed (or below the root), or for another
            // version of the slot, weigh nothing here.
            if let Some(n) = self.nodes.get_mut(&slot)
                && n.block_id == id
            {
                n.stake_here += stake;
            }
        }
        // Children have higher slots than parents: a reverse slot-order pass is bottom-up.
        let slots: Vec<Slot> = self.nodes.keys().rev().copied().collect();
        for slot in slots {
            let (subtree, best) = {
                let n = &self.nodes[&slot];
                let mut subtree = n.stake_here;
                let mut best: Option<(u64, Slot)> = None;
                for c in &n.children {
                    let child = &self.nodes[c];
                    subtree += child.stake_subtree;
                    if !child.candidate() {
                        continue;
                    }
                    // Heaviest child wins; ties go to the lower slot (the earlier block).
                    let better = match best {
                        None => true,
                        Some((w, s)) => {
                            child.stake_subtree > w || (child.stake_subtree == w && *c < s)
                        }
                    };
                    if better {
                        best = Some((child.stake_subtree, *c));
                    }
                }
                let best_leaf = best.map_or(slot, |(_, c)| self.nodes[&c].best);
                (subtree, best_leaf)
            };
            if let Some(n) = self.nodes.get_mut(&slot) {
                n.stake_subtree = subtree;
                n.best = best;
            }
        }
        self.dirty = false;
    }

    /// The leaf of the heaviest fork: the block to vote on and build on.
    pub fn best_slot(&mut self) -> Slot {
        self.recompute();
        self.nodes.get(&self.root).map_or(self.root, |n| n.best)
    }

    /// The heaviest leaf at or below `slot`.
    pub fn best_descendant(&mut self, slot: Slot) -> Option<Slot> {
        self.recompute();
        self.nodes.get(&slot).map(|n| n.best)
    }

    /// Stake whose latest votes are on `slot` or its descendants.
    pub fn subtree_stake(&mut self, slot: Slot) -> u64 {
        self.recompute();
        self.nodes.get(&slot).map_or(0, |n| n.stake_subtree)
    }

    /// Subtree stake as of the last recompute (after `best_slot`), for callers that need
    /// a read-only view, such as the tower's threshold check.
    pub fn cached_subtree_stake(&self, slot: Slot) -> u64 {
        self.nodes.get(&slot).map_or(0, |n| n.stake_subtree)
    }

    /// Stake whose latest votes are neither on `slot`'s subtree nor on its ancestors: the
    /// stake that has visibly moved to other forks (the switch proof).
    pub fn stake_on_other_forks(&mut self, slot: Slot) -> u64 {
        self.recompute();
        let ancestors: HashSet<Slot> = self.ancestors(slot).into_iter().collect();
        let mut other = 0;
        for &(voted, id, stake) in self.latest_votes.values() {
            if self.nodes.get(&voted).is_none_or(|n| n.block_id != id) {
                continue;
            }
            let on_our_fork =
                voted == slot || ancestors.contains(&voted) || self.is_ancestor(slot, voted);
            if !on_our_fork {
                other += stake;
            }
        }
        other
    }

    /// Moves the root up to `new_root`, dropping every block not descending from it.
    pub fn set_root(&mut self, new_root: Slot) {
        if new_root == self.root || !self.nodes.contains_key(&new_root) {
            return;
        }
        let mut keep = HashSet::new();
        let mut stack = vec![new_root];
        while let Some(s) = stack.pop() {
            keep.insert(s);
            if let Some(n) = self.nodes.get(&s) {
                stack.extend(n.children.iter().copied());
            }
        }
        self.nodes.retain(|s, _| keep.contains(s));
        if let Some(n) = self.nodes.get_mut(&new_root) {
            n.parent = None;
        }
        self.root = new_root;
        self.dirty = true;
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pk(i: u8) -> Pubkey {
        Pubkey([i; 32])
    }

    /// A vote for the version of `slot` the tree holds.
    fn vote(f: &mut ForkChoice, voter: u8, slot: Slot, stake: u64) {
        let id = f.block_id(slot).unwrap_or_default();
        f.add_vote(pk(voter), slot, id, stake);
    }

    fn tree() -> ForkChoice {
        // 0 -> 1 -> 2 -> 4
        //        \-> 3 -> 5
        let mut f = ForkChoice::new(0, Hash::ZERO);
        for (s, p) in [(1, 0), (2, 1), (3, 1), (4, 2), (5, 3)] {
            assert!(f.add_block(s, p, Hash([s as u8; 32])));
        }
        f
    }

    #[test]
    fn heaviest_subtree_wins() {
        let mut f = tree();
        vote(&mut f, 1, 4, 10);
        vote(&mut f, 2, 5, 20);
        assert_eq!(f.best_slot(), 5);
        vote(&mut f, 3, 2, 15);
        assert_eq!(f.best_slot(), 4);
        assert_eq!(f.subtree_stake(1), 45);
        assert_eq!(f.stake_on_other_forks(4), 20);
    }

    #[test]
    fn only_the_latest_vote_counts() {
        let mut f = tree();
        vote(&mut f, 1, 4, 10);
        vote(&mut f, 1, 5, 10);
        vote(&mut f, 1, 2, 10); // older: ignored
        assert_eq!(f.subtree_stake(2), 0);
        assert_eq!(f.best_slot(), 5);
    }

    #[test]
    fn invalid_blocks_are_never_best() {
        let mut f = tree();
        vote(&mut f, 1, 5, 100);
        f.mark_invalid(3);
        assert_eq!(f.best_slot(), 4);
    }

    #[test]
    fn votes_for_another_version_weigh_nothing() {
        let mut f = tree();
        vote(&mut f, 1, 4, 10);
        f.add_vote(pk(2), 5, Hash([99; 32]), 20); // a version of slot 5 we do not hold
        assert_eq!(f.best_slot(), 4);
        assert_eq!(f.subtree_stake(3), 0);
        assert_eq!(f.stake_on_other_forks(4), 0);
        f.add_vote(pk(2), 5, Hash([5; 32]), 20); // the same voter, now for our version
        assert_eq!(f.best_slot(), 5);
    }

    #[test]
    fn an_unconfirmed_duplicate_is_no_candidate_until_confirmed() {
        let mut f = tree();
        vote(&mut f, 1, 5, 30);
        vote(&mut f, 2, 4, 10);
        assert_eq!(f.best_slot(), 5);
        f.mark_duplicate(3);
        assert_eq!(f.best_slot(), 4);
        assert!(f.on_unusable_fork(5) && f.on_unusable_fork(3) && !f.on_unusable_fork(4));
        // Its stake still counts where it is (the switch proof sees it).
        assert_eq!(f.subtree_stake(1), 40);
        f.confirm_duplicate(3);
        assert_eq!(f.best_slot(), 5);
        assert!(!f.on_unusable_fork(5));
    }

    #[test]
    fn a_duplicate_with_every_child_unusable_leaves_the_parent_best() {
        let mut f = tree();
        f.mark_duplicate(2);
        f.mark_duplicate(3);
        assert_eq!(f.best_slot(), 1);
    }

    #[test]
    fn removing_a_subtree_drops_the_version_and_its_descendants() {
        let mut f = tree();
        vote(&mut f, 1, 5, 30);
        assert_eq!(f.remove_subtree(3), vec![3, 5]);
        assert!(!f.contains(3) && !f.contains(5) && f.contains(4));
        assert_eq!(f.best_slot(), 4);
        assert!(f.remove_subtree(0).is_empty(), "the root stays");
        // Another version of slot 3 can take its place.
        assert!(f.add_block(3, 1, Hash([33; 32])));
        assert_eq!(f.block_id(3), Some(Hash([33; 32])));
    }

    #[test]
    fn rooting_prunes_other_forks() {
        let mut f = tree();
        f.set_root(2);
        assert!(f.contains(4) && !f.contains(3) && !f.contains(5) && !f.contains(1));
        assert_eq!(f.best_slot(), 4);
        assert!(!f.add_block(6, 3, Hash::ZERO));
    }

    #[test]
    fn ancestry() {
        let f = tree();
        assert!(f.is_ancestor(1, 5) && f.is_ancestor(0, 4) && !f.is_ancestor(2, 5));
        assert_eq!(f.ancestors(4), vec![2, 1, 0]);
    }

    proptest! {
        /// On random trees with random votes, the chosen leaf is reached by always taking
        /// a child with maximal subtree stake, and subtree stakes add up.
        #[test]
        fn best_slot_follows_maximal_subtrees(
            parents in proptest::collection::vec(0usize..1000, 1..60),
            votes in proptest::collection::vec((0u8..20, 0usize..1000, 1u64..100), 0..40),
        ) {
            let mut f = ForkChoice::new(0, Hash::ZERO);
            let mut slots = vec![0u64];
            for (i, p) in parents.iter().enumerate() {
                let slot = i as u64 + 1;
                let parent = slots[p % slots.len()];
                prop_assert!(f.add_block(slot, parent, Hash::ZERO));
                slots.push(slot);
            }
            let mut total = 0;
            let mut seen = HashSet::new();
            for (v, s, stake) in &votes {
                // One stake per voter, as in the protocol.
                if seen.insert(*v) {
                    total += stake;
                    f.add_vote(pk(*v), slots[s % slots.len()].max(1), Hash::ZERO, *stake);
                } else {
                    let (cur, _, st) = f.latest_votes[&pk(*v)];
                    f.add_vote(pk(*v), slots[s % slots.len()].max(cur), Hash::ZERO, st);
                }
            }
            prop_assert_eq!(f.subtree_stake(0), total);
            let best = f.best_slot();
            let mut cur = 0u64;
            loop {
                let children = f.nodes[&cur].children.clone();
                if children.is_empty() {
                    break;
                }
                let max = children.iter().map(|c| f.nodes[c].stake_subtree).max().unwrap_or(0);
                let next = children.iter().copied().filter(|c| f.nodes[c].stake_subtree == max).min().unwrap();
                cur = next;
            }
            prop_assert_eq!(best, cur);
        }
    }
}
