//! Slashing evidence: two signed statements by one validator that cannot both be honest.
//!
//! Evidence is self-contained: anyone can check it with the signatures alone, without
//! trusting whoever forwarded it. Leaders put evidence they hold into their blocks
//! ([`crate::Block::evidence`]); replaying the block records each [`Offense`] once in the
//! bank, and the bank cuts the offender's stake at the next epoch boundary. That is what
//! makes the penalty the same on every node: it follows from the chain, not from which
//! gossip a node happened to see.

use bincode::{Decode, Encode};

use crate::block::Slot;
use crate::encoding::Canonical;
use crate::keys::Pubkey;
use crate::vote::SignedVote;

/// Most pieces of evidence one block may carry.
pub const MAX_EVIDENCE_PER_BLOCK: usize = 16;

/// What kind of misbehaviour an offense is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum OffenseKind {
    /// Two votes for different blocks of one slot.
    DoubleVote,
    /// Two different blocks signed for one slot (as shreds whose signed Merkle roots
    /// contradict each other).
    DuplicateBlock,
}

impl OffenseKind {
    /// A stable number for hashing and storage keys.
    pub const fn code(self) -> u8 {
        match self {
            OffenseKind::DoubleVote => 0,
            OffenseKind::DuplicateBlock => 1,
        }
    }

    pub const fn from_code(code: u8) -> Option<OffenseKind> {
        match code {
            0 => Some(OffenseKind::DoubleVote),
            1 => Some(OffenseKind::DuplicateBlock),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            OffenseKind::DoubleVote => "double-vote",
            OffenseKind::DuplicateBlock => "duplicate-block",
        }
    }
}

/// One offense: who, in which slot, what. At most one penalty-bearing record exists per
/// offense, however many pieces of evidence prove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Offense {
    pub offender: Pubkey,
    pub slot: Slot,
    pub kind: OffenseKind,
}

/// A proof of an offense.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
#[expect(
    clippy::large_enum_variant,
    reason = "evidence is rare and short-lived; two inline votes read more plainly than boxes"
)]
pub enum Evidence {
    /// Two signed votes by one validator for different blocks of the same slot.
    DoubleVote {
        first: SignedVote,
        second: SignedVote,
    },
    /// Two shreds of `slot` that `leader` signed and that cannot both belong to one block
    /// (wire bytes, each at most a shred's size). Checking them needs the shred format:
    /// `bb_runtime::verify_evidence` does, [`Evidence::verify`] cannot.
    DuplicateBlock {
        leader: Pubkey,
        slot: Slot,
        first: Vec<u8>,
        second: Vec<u8>,
    },
}

/// Largest shred accepted inside duplicate-block evidence.
pub const MAX_EVIDENCE_SHRED_BYTES: usize = 1280;

impl Canonical for Evidence {
    const NAME: &'static str = "slashing evidence";
    const MAX_SIZE: usize = 4096;
}

/// Why evidence proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the two votes are by different validators")]
    DifferentVoters,
    #[error("the two votes are for different slots ({0} and {1})")]
    DifferentSlots(Slot, Slot),
    #[error("the two votes are for the same block")]
    SameBlock,
    #[error("a vote's signature does not verify")]
    BadSignature,
    #[error("the two parts are not in canonical order (the lesser encoding first)")]
    NotCanonical,
    #[error("the shreds do not prove a duplicate block: {0}")]
    Shreds(String),
    #[error(
        "duplicate-block evidence is checked against the shred format (bb_runtime::verify_evidence)"
    )]
    NeedsShredCheck,
}

impl Evidence {
    /// Double-vote evidence with the two votes in one canonical order (by their
    /// encoding), so that every node that sees the same two votes builds the same value.
    pub fn double_vote(a: SignedVote, b: SignedVote) -> Evidence {
        let (first, second) = if a.to_bytes() <= b.to_bytes() {
            (a, b)
        } else {
            (b, a)
        };
        Evidence::DoubleVote { first, second }
    }

    /// Duplicate-block evidence with the two shreds in one canonical order.
    pub fn duplicate_block(leader: Pubkey, slot: Slot, a: Vec<u8>, b: Vec<u8>) -> Evidence {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        Evidence::DuplicateBlock {
            leader,
            slot,
            first,
            second,
        }
    }

    /// The offense this evidence claims (checked by [`Evidence::verify`]).
    pub fn offense(&self) -> Offense {
        match self {
            Evidence::DoubleVote { first, .. } => Offense {
                offender: first.vote.voter,
                slot: first.vote.slot,
                kind: OffenseKind::DoubleVote,
            },
            Evidence::DuplicateBlock { leader, slot, .. } => Offense {
                offender: *leader,
                slot: *slot,
                kind: OffenseKind::DuplicateBlock,
            },
        }
    }

    /// Checks that the evidence proves its offense, with the signatures alone. Duplicate-
    /// block evidence needs the shred format, which this crate does not know: it answers
    /// [`EvidenceError::NeedsShredCheck`] (use `bb_runtime::verify_evidence`).
    pub fn verify(&self) -> Result<Offense, EvidenceError> {
        match self {
            Evidence::DuplicateBlock { first, second, .. } => {
                if first.len() > MAX_EVIDENCE_SHRED_BYTES || second.len() > MAX_EVIDENCE_SHRED_BYTES
                {
                    return Err(EvidenceError::Shreds("a shred is oversized".into()));
                }
                if first > second {
                    return Err(EvidenceError::NotCanonical);
                }
                return Err(EvidenceError::NeedsShredCheck);
            }
            Evidence::DoubleVote { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if a.voter != b.voter {
                    return Err(EvidenceError::DifferentVoters);
                }
                if a.slot != b.slot {
                    return Err(EvidenceError::DifferentSlots(a.slot, b.slot));
                }
                if a.block_id == b.block_id {
                    return Err(EvidenceError::SameBlock);
                }
                // One proof, one encoding: a peer cannot resend the same proof as a
                // second, differently hashed message.
                if first.to_bytes() > second.to_bytes() {
                    return Err(EvidenceError::NotCanonical);
                }
                if first.verify().is_err() || second.verify().is_err() {
                    return Err(EvidenceError::BadSignature);
                }
            }
        }
        Ok(self.offense())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::keys::Keypair;
    use crate::vote::Vote;

    fn vote(k: &Keypair, slot: Slot, block: u8) -> SignedVote {
        Vote {
            voter: k.pubkey(),
            slot,
            block_id: Hash([block; 32]),
            bank_hash: Hash([block; 32]),
            confirmation_count: 1,
            root: None,
            timestamp_ms: 0,
        }
        .sign(k)
    }

    #[test]
    fn a_double_vote_is_built_in_one_order_verifies_and_round_trips() {
        let k = Keypair::from_seed(&[1; 32]);
        let (a, b) = (vote(&k, 9, 1), vote(&k, 9, 2));
        let ev = Evidence::double_vote(a, b);
        assert_eq!(ev, Evidence::double_vote(b, a));
        let offense = ev.verify().unwrap();
        assert_eq!(offense.offender, k.pubkey());
        assert_eq!(offense.slot, 9);
        assert_eq!(Evidence::from_bytes(&ev.to_bytes()), Ok(ev.clone()));
        // The same proof the other way round is refused: one proof, one message.
        let Evidence::DoubleVote { first, second } = ev else {
            panic!("a double vote");
        };
        let swapped = Evidence::DoubleVote {
            first: second,
            second: first,
        };
        assert_eq!(swapped.verify(), Err(EvidenceError::NotCanonical));
    }

    #[test]
    fn evidence_that_proves_nothing_is_refused() {
        let k = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let same = Evidence::DoubleVote {
            first: vote(&k, 9, 1),
            second: vote(&k, 9, 1),
        };
        assert_eq!(same.verify(), Err(EvidenceError::SameBlock));
        let slots = Evidence::double_vote(vote(&k, 9, 1), vote(&k, 10, 2));
        assert!(matches!(
            slots.verify(),
            Err(EvidenceError::DifferentSlots(..))
        ));
        let voters = Evidence::double_vote(vote(&k, 9, 1), vote(&other, 9, 2));
        assert_eq!(voters.verify(), Err(EvidenceError::DifferentVoters));
        let mut forged = vote(&k, 9, 2);
        forged.vote.bank_hash = Hash([7; 32]);
        let forged = Evidence::double_vote(vote(&k, 9, 1), forged);
        assert_eq!(forged.verify(), Err(EvidenceError::BadSignature));
        assert!(Evidence::from_bytes(&[1, 0, 3]).is_err());
    }
}
