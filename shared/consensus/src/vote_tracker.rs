//! Vote aggregation per slot and block: stake tallies, duplicates counted once, and
//! double votes kept as slashing evidence.
//!
//! It is deliberately independent of Tower: it only knows "validator V, with stake S,
//! signed a vote for block B at slot N". That is what a fast-finality certificate (80% of
//! stake in one round, or 60% in each of two) would count too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bb_core::{Hash, Pubkey, SignedVote, Slot};

/// Two signed votes by one validator for different blocks of the same slot. Self-contained:
/// anyone can check both signatures and see the conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleVote {
    pub first: SignedVote,
    pub second: SignedVote,
}

impl DoubleVote {
    /// Whether this really proves a double vote: same voter and slot, different blocks,
    /// both signatures valid.
    pub fn is_valid(&self) -> bool {
        let (a, b) = (&self.first.vote, &self.second.vote);
        a.voter == b.voter
            && a.slot == b.slot
            && a.block_id != b.block_id
            && self.first.verify().is_ok()
            && self.second.verify().is_ok()
    }
}

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Counted.
    New,
    /// Already counted (the same vote, or another vote for the same block).
    Duplicate,
    /// The voter already voted another block in this slot: evidence, not counted again.
    Conflict(Box<DoubleVote>),
    /// Below the pruning horizon.
    TooOld,
}

#[derive(Debug, Clone, Default)]
struct SlotVotes {
    /// The first vote seen from each voter in this slot, and its stake. Shared, not
    /// copied: a vote reaches every node, and a simulator holds thousands of nodes.
    by_voter: HashMap<Pubkey, (Arc<SignedVote>, u64)>,
    stake_by_block: HashMap<Hash, u64>,
}

/// Tallies of signed votes by slot and block.
#[derive(Debug, Clone, Default)]
pub struct VoteTracker {
    slots: BTreeMap<Slot, SlotVotes>,
    horizon: Slot,
}

impl VoteTracker {
    pub fn new() -> Self {
        VoteTracker::default()
    }

    /// Adds a vote whose signature the caller has checked, with the voter's stake.
    pub fn add(&mut self, vote: Arc<SignedVote>, stake: u64) -> VoteOutcome {
        let slot = vote.vote.slot;
        if slot < self.horizon {
            return VoteOutcome::TooOld;
        }
        let entry = self.slots.entry(slot).or_default();
        match entry.by_voter.get(&vote.vote.voter) {
            Some((first, _)) if first.vote.block_id == vote.vote.block_id => VoteOutcome::Duplicate,
            Some((first, _)) => VoteOutcome::Conflict(Box::new(DoubleVote {
                first: **first,
                second: *vote,
            })),
            None => {
                let (voter, block) = (vote.vote.voter, vote.vote.block_id);
                entry.by_voter.insert(voter, (vote, stake));
                *entry.stake_by_block.entry(block).or_default() += stake;
                VoteOutcome::New
            }
        }
    }

    /// Stake that voted for `block_id` at `slot`.
    pub fn stake_for(&self, slot: Slot, block_id: &Hash) -> u64 {
        self.slots
            .get(&slot)
            .and_then(|s| s.stake_by_block.get(block_id))
            .copied()
            .unwrap_or(0)
    }

    /// The block with the most stake at `slot`, and that stake.
    pub fn leading_block(&self, slot: Slot) -> Option<(Hash, u64)> {
        self.slots.get(&slot).and_then(|s| {
            s.stake_by_block
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(h, st)| (*h, *st))
        })
    }

    /// The votes counted at `slot`, with stakes, in voter order.
    pub fn votes_at(&self, slot: Slot) -> Vec<(SignedVote, u64)> {
        let mut v: Vec<(SignedVote, u64)> = self
            .slots
            .get(&slot)
            .map(|s| s.by_voter.values().map(|(v, st)| (**v, *st)).collect())
            .unwrap_or_default();
        v.sort_by_key(|(sv, _)| sv.vote.voter);
        v
    }

    /// Forgets every slot below `slot` (after rooting): memory stays bounded.
    pub fn prune_below(&mut self, slot: Slot) {
        self.horizon = self.horizon.max(slot);
        self.slots = self.slots.split_off(&slot);
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Keypair, Vote};

    fn vote(k: &Keypair, slot: Slot, block: u8) -> Arc<SignedVote> {
        Arc::new(
            Vote {
                voter: k.pubkey(),
                slot,
                block_id: Hash([block; 32]),
                bank_hash: Hash::ZERO,
                confirmation_count: 1,
                root: None,
                timestamp_ms: 0,
            }
            .sign(k),
        )
    }

    #[test]
    fn the_same_vote_twice_counts_once() {
        let k = Keypair::from_seed(&[1; 32]);
        let mut t = VoteTracker::new();
        assert_eq!(t.add(vote(&k, 5, 1), 10), VoteOutcome::New);
        assert_eq!(t.add(vote(&k, 5, 1), 10), VoteOutcome::Duplicate);
        assert_eq!(t.stake_for(5, &Hash([1; 32])), 10);
    }

    #[test]
    fn a_double_vote_becomes_verifiable_evidence() {
        let k = Keypair::from_seed(&[2; 32]);
        let mut t = VoteTracker::new();
        t.add(vote(&k, 5, 1), 10);
        let VoteOutcome::Conflict(ev) = t.add(vote(&k, 5, 2), 10) else {
            panic!("conflict expected");
        };
        assert!(ev.is_valid());
        // The second vote is not counted.
        assert_eq!(t.stake_for(5, &Hash([2; 32])), 0);
        // Evidence with a forged signature or equal blocks proves nothing.
        let mut forged = (*ev).clone();
        forged.second.signature.0[0] ^= 1;
        assert!(!forged.is_valid());
        let same = DoubleVote {
            first: ev.first,
            second: ev.first,
        };
        assert!(!same.is_valid());
    }

    #[test]
    fn tallies_and_pruning() {
        let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let mut t = VoteTracker::new();
        for (i, k) in keys.iter().enumerate() {
            t.add(vote(k, 7, if i < 3 { 1 } else { 2 }), 25);
        }
        assert_eq!(t.leading_block(7), Some((Hash([1; 32]), 75)));
        assert_eq!(t.votes_at(7).len(), 4);
        t.prune_below(8);
        assert_eq!(t.slot_count(), 0);
        assert_eq!(t.add(vote(&keys[0], 7, 1), 25), VoteOutcome::TooOld);
    }
}
