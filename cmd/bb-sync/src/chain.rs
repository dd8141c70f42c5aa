//! The chain of headers, checked before any body is fetched: every header links to the
//! one before it (parent slot and parent id), slots rise, each is signed by its leader,
//! and that leader is the one the schedule names.

use bb_core::{Block, Hash, Pubkey, Slot};

/// One checked link of the rooted chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub slot: Slot,
    pub block_id: Hash,
    pub parent_slot: Slot,
    /// The bank hash the peer says it computed; replay must reproduce it.
    pub bank_hash: Hash,
}

/// Why a header was refused; every message names the slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "slot {slot}: its parent is slot {actual}, but the chain's previous block is slot {expected}"
    )]
    ParentSlot {
        slot: Slot,
        expected: Slot,
        actual: Slot,
    },
    #[error("slot {slot}: its parent id {actual} is not the previous block's id {expected}")]
    ParentId {
        slot: Slot,
        expected: Hash,
        actual: Hash,
    },
    #[error("slot {slot}: the header says slot {actual}")]
    SlotMismatch { slot: Slot, actual: Slot },
    #[error("slot {slot}: does not come after slot {previous}")]
    NotRising { slot: Slot, previous: Slot },
    #[error("slot {slot}: signed by {actual}, but the schedule's leader is {expected}")]
    WrongLeader {
        slot: Slot,
        expected: Pubkey,
        actual: Pubkey,
    },
    #[error("slot {slot}: the leader's signature does not verify")]
    BadSignature { slot: Slot },
    #[error("slot {slot}: no leader is known for it: {reason}")]
    NoLeader { slot: Slot, reason: String },
}

/// Checks headers one at a time, from a known starting block.
#[derive(Debug)]
pub struct ChainChecker<F> {
    previous: (Slot, Hash),
    leader_of: F,
}

impl<F: FnMut(Slot) -> Result<Pubkey, String>> ChainChecker<F> {
    /// Starts after the block `(slot, id)` (the genesis: slot 0 and the genesis hash).
    pub fn new(slot: Slot, id: Hash, leader_of: F) -> Self {
        ChainChecker {
            previous: (slot, id),
            leader_of,
        }
    }

    /// Checks the header of `block` (announced for `slot`) against the chain so far.
    pub fn check(
        &mut self,
        slot: Slot,
        block: &Block,
        bank_hash: Hash,
    ) -> Result<Link, ChainError> {
        let h = &block.header;
        let (prev_slot, prev_id) = self.previous;
        if h.slot != slot {
            return Err(ChainError::SlotMismatch {
                slot,
                actual: h.slot,
            });
        }
        if slot <= prev_slot {
            return Err(ChainError::NotRising {
                slot,
                previous: prev_slot,
            });
        }
        if h.parent_slot != prev_slot {
            return Err(ChainError::ParentSlot {
                slot,
                expected: prev_slot,
                actual: h.parent_slot,
            });
        }
        if h.parent_id != prev_id {
            return Err(ChainError::ParentId {
                slot,
                expected: prev_id,
                actual: h.parent_id,
            });
        }
        let expected =
            (self.leader_of)(slot).map_err(|reason| ChainError::NoLeader { slot, reason })?;
        if h.leader != expected {
            return Err(ChainError::WrongLeader {
                slot,
                expected,
                actual: h.leader,
            });
        }
        if block.verify_signature().is_err() {
            return Err(ChainError::BadSignature { slot });
        }
        let id = block.id();
        self.previous = (slot, id);
        Ok(Link {
            slot,
            block_id: id,
            parent_slot: prev_slot,
            bank_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Keypair, Signature};

    fn block(leader: &Keypair, slot: Slot, parent_slot: Slot, parent_id: Hash) -> Block {
        Block::new_signed(
            leader,
            slot,
            parent_slot,
            parent_id,
            Hash::default(),
            Vec::new(),
        )
    }

    #[test]
    fn a_linked_signed_chain_passes_and_each_break_is_named() {
        let leader = Keypair::from_seed(&[7; 32]);
        let other = Keypair::from_seed(&[8; 32]);
        let genesis = Hash([9; 32]);
        let who = leader.pubkey();
        let b1 = block(&leader, 1, 0, genesis);
        let b3 = block(&leader, 3, 1, b1.id());
        let mut c = ChainChecker::new(0, genesis, |_| Ok(who));
        assert_eq!(c.check(1, &b1, Hash::default()).unwrap().block_id, b1.id());
        assert_eq!(c.check(3, &b3, Hash::default()).unwrap().parent_slot, 1);

        let cases: Vec<(Block, Slot, &str)> = vec![
            (block(&leader, 2, 0, genesis), 2, "parent is slot 0"),
            (block(&leader, 2, 1, Hash([1; 32])), 2, "parent id"),
            (block(&other, 2, 1, b1.id()), 2, "schedule's leader"),
            (block(&leader, 2, 1, b1.id()), 5, "header says slot 2"),
        ];
        for (b, slot, needle) in cases {
            let mut c = ChainChecker::new(1, b1.id(), |_| Ok(who));
            let err = c.check(slot, &b, Hash::default()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
            assert!(err.starts_with(&format!("slot {slot}")), "{err}");
        }
        let mut forged = block(&leader, 2, 1, b1.id());
        forged.signature = Signature([1; 64]);
        let mut c = ChainChecker::new(1, b1.id(), |_| Ok(who));
        assert!(
            c.check(2, &forged, Hash::default())
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
    }
}
