//! Blocks: the entries a leader produced in one slot, under a header it signs.

use bincode::{Decode, Encode};

use crate::encoding::{Canonical, encode_body};
use crate::evidence::{Evidence, MAX_EVIDENCE_PER_BLOCK};
use crate::hash::{Hash, hash};
use crate::keys::{self, Domain, Keypair, Pubkey, Signature, SignatureError};
use crate::poh::Entry;

pub type Slot = u64;

/// What the leader commits to for a slot. Its hash is the block id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct BlockHeader {
    pub slot: Slot,
    pub parent_slot: Slot,
    /// The id of the parent block (the genesis hash for the first block).
    pub parent_id: Hash,
    pub leader: Pubkey,
    /// The PoH hash the block starts from: the parent's `poh_end`.
    pub poh_start: Hash,
    /// The last entry's hash.
    pub poh_end: Hash,
    /// Hash of the canonical encoding of the entries.
    pub entries_hash: Hash,
    pub tick_count: u64,
    pub transaction_count: u64,
    /// Hash of the canonical encoding of the slashing evidence the block carries.
    pub evidence_hash: Hash,
}

impl BlockHeader {
    pub fn id(&self) -> Hash {
        hash(&encode_body(self))
    }
}

/// A header, the leader's signature over it, and the entries and slashing evidence it
/// commits to.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    pub header: BlockHeader,
    pub signature: Signature,
    pub entries: Vec<Entry>,
    /// Proofs of offenses the leader includes (at most [`MAX_EVIDENCE_PER_BLOCK`]);
    /// replay records each in the bank.
    pub evidence: Vec<Evidence>,
}

impl Canonical for Block {
    const NAME: &'static str = "block";
    const MAX_SIZE: usize = crate::encoding::MAX_DECODE_BYTES;
}

/// Why a block is not what its header says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("leader signature: {0}")]
    Signature(SignatureError),
    #[error("entries do not match the header's entries hash")]
    EntriesHash,
    #[error("header says {expected} {what}, entries have {actual}")]
    Count {
        what: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("last entry hash does not match the header's poh_end")]
    PohEnd,
    #[error("parent slot {parent} is not below slot {slot}")]
    ParentNotBelow { slot: Slot, parent: Slot },
    #[error("{count} pieces of slashing evidence, over the limit of {MAX_EVIDENCE_PER_BLOCK}")]
    TooMuchEvidence { count: usize },
    #[error("slashing evidence does not match the header's evidence hash")]
    EvidenceHash,
}

/// Hash of a list of entries, as committed to in the header.
pub fn entries_hash(entries: &[Entry]) -> Hash {
    hash(&encode_body(&entries))
}

/// Hash of a block's slashing evidence, as committed to in the header.
pub fn evidence_hash(evidence: &[Evidence]) -> Hash {
    hash(&encode_body(&evidence))
}

impl Block {
    /// Builds the header for `entries` and signs it.
    pub fn new_signed(
        leader: &Keypair,
        slot: Slot,
        parent_slot: Slot,
        parent_id: Hash,
        poh_start: Hash,
        entries: Vec<Entry>,
    ) -> Block {
        Block::new_signed_with_evidence(
            leader,
            slot,
            parent_slot,
            parent_id,
            poh_start,
            entries,
            Vec::new(),
        )
    }

    /// [`Block::new_signed`] carrying slashing evidence.
    pub fn new_signed_with_evidence(
        leader: &Keypair,
        slot: Slot,
        parent_slot: Slot,
        parent_id: Hash,
        poh_start: Hash,
        entries: Vec<Entry>,
        evidence: Vec<Evidence>,
    ) -> Block {
        let header = BlockHeader {
            slot,
            parent_slot,
            parent_id,
            leader: leader.pubkey(),
            poh_start,
            poh_end: entries.last().map_or(poh_start, |e| e.hash),
            entries_hash: entries_hash(&entries),
            tick_count: entries.iter().filter(|e| e.is_tick()).count() as u64,
            transaction_count: entries.iter().map(|e| e.transactions.len() as u64).sum(),
            evidence_hash: evidence_hash(&evidence),
        };
        let signature = leader.sign(Domain::Block, &encode_body(&header));
        Block {
            header,
            signature,
            entries,
            evidence,
        }
    }

    pub fn id(&self) -> Hash {
        self.header.id()
    }

    /// Checks the leader's signature over the header (not who the leader should be:
    /// that is the leader schedule's job).
    pub fn verify_signature(&self) -> Result<(), BlockError> {
        keys::verify(
            Domain::Block,
            &self.header.leader,
            &encode_body(&self.header),
            &self.signature,
        )
        .map_err(BlockError::Signature)
    }

    /// Checks that the entries are the ones the header commits to. PoH itself is checked
    /// separately (it is the expensive part and runs in parallel).
    pub fn verify_body(&self) -> Result<(), BlockError> {
        let h = &self.header;
        if h.parent_slot >= h.slot && h.slot != 0 {
            return Err(BlockError::ParentNotBelow {
                slot: h.slot,
                parent: h.parent_slot,
            });
        }
        let ticks = self.entries.iter().filter(|e| e.is_tick()).count() as u64;
        if ticks != h.tick_count {
            return Err(BlockError::Count {
                what: "ticks",
                expected: h.tick_count,
                actual: ticks,
            });
        }
        let txs: u64 = self
            .entries
            .iter()
            .map(|e| e.transactions.len() as u64)
            .sum();
        if txs != h.transaction_count {
            return Err(BlockError::Count {
                what: "transactions",
                expected: h.transaction_count,
                actual: txs,
            });
        }
        if self.entries.last().map_or(h.poh_start, |e| e.hash) != h.poh_end {
            return Err(BlockError::PohEnd);
        }
        if entries_hash(&self.entries) != h.entries_hash {
            return Err(BlockError::EntriesHash);
        }
        if self.evidence.len() > MAX_EVIDENCE_PER_BLOCK {
            return Err(BlockError::TooMuchEvidence {
                count: self.evidence.len(),
            });
        }
        if evidence_hash(&self.evidence) != h.evidence_hash {
            return Err(BlockError::EvidenceHash);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poh::{PohRecorder, verify_entries};
    use crate::tx::Transaction;

    fn block() -> Block {
        let leader = Keypair::from_seed(&[7; 32]);
        let start = hash(b"parent poh");
        let mut poh = PohRecorder::new(start, 10);
        let tx = Transaction::transfer(&leader, leader.pubkey(), 1, 1, Hash::ZERO);
        let entries = vec![poh.record(vec![tx]).unwrap(), poh.tick(), poh.tick()];
        Block::new_signed(&leader, 9, 8, hash(b"parent"), start, entries)
    }

    #[test]
    fn a_fresh_block_verifies() {
        let b = block();
        assert_eq!(b.verify_signature(), Ok(()));
        assert_eq!(b.verify_body(), Ok(()));
        assert_eq!(verify_entries(&b.header.poh_start, &b.entries, 10), Ok(()));
        assert_eq!(Block::from_bytes(&b.to_bytes()), Ok(b));
    }

    #[test]
    fn swapped_body_or_header_is_caught() {
        let mut b = block();
        b.entries.pop();
        assert!(b.verify_body().is_err());
        let mut b = block();
        let k = Keypair::from_seed(&[8; 32]);
        let vote = |id: u8| {
            crate::vote::Vote {
                voter: k.pubkey(),
                slot: 3,
                block_id: Hash([id; 32]),
                bank_hash: Hash::ZERO,
                confirmation_count: 1,
                root: None,
                timestamp_ms: 0,
            }
            .sign(&k)
        };
        b.evidence.push(Evidence::double_vote(vote(1), vote(2)));
        assert_eq!(b.verify_body(), Err(BlockError::EvidenceHash));
        let mut b = block();
        b.header.slot = 10;
        assert!(matches!(
            b.verify_signature(),
            Err(BlockError::Signature(_))
        ));
    }
}
