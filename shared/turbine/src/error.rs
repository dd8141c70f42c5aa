//! What can be wrong with a shred, a block to shred, or a leader's behaviour.

use std::fmt;

use bb_core::{Pubkey, Slot};

use crate::shred::Shred;

/// Why a shred (or a block handed to the shredder) was refused.
///
/// Every variant but [`ShredError::Equivocation`] and [`ShredError::InvalidErasureSet`]
/// means "drop this shred, do not retransmit it"; the peer that sent it may be scored
/// down. The two exceptions are the leader's fault, provably: the first carries the
/// evidence, the second means the slot can never be rebuilt by anyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShredError {
    /// Longer than one datagram; nothing was parsed.
    #[error("shred is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// Not a well-formed shred: truncated, an unknown version or kind, a field out of
    /// range, or fields that contradict each other.
    #[error("malformed shred: {0}")]
    Malformed(&'static str),
    /// A well-formed shred for another slot than the one being assembled.
    #[error("shred is for slot {got}, this assembler is for slot {expected}")]
    WrongSlot { expected: Slot, got: Slot },
    /// The shred carries its FEC set's signature, but its contents or proof do not lead to
    /// the Merkle root that signature covers: altered on the way, or forged.
    #[error("FEC set {fec_set_index}: shred does not match its set's signed Merkle root")]
    BadMerkleProof { fec_set_index: u32 },
    /// The signature is not the slot leader's over the Merkle root this shred's proof
    /// leads to. Shreds do not name their signer (the leader schedule does), so a shred
    /// signed by another key lands here; so does an altered shred whose set has no
    /// verified root yet, since the two cannot be told apart without one.
    #[error(
        "FEC set {fec_set_index}: signature is not the slot leader's over this shred's Merkle root"
    )]
    BadSignature { fec_set_index: u32 },
    /// The leader signed two things that cannot both be true. Both shreds verify on their
    /// own; keep the evidence for slashing.
    #[error("{0}")]
    Equivocation(Box<Equivocation>),
    /// The 64 shreds the leader signed for this set are not one Reed-Solomon codeword, so
    /// what a node rebuilds depends on which 32 it got. Every node detects this the
    /// moment it holds any 32 of the set; the slot cannot be assembled.
    #[error("FEC set {fec_set_index}: the leader's signed shreds are not a valid erasure code")]
    InvalidErasureSet { fec_set_index: u32 },
    /// Shredder input: the block is larger than any node would accept.
    #[error("block is {len} bytes, over the {max}-byte limit")]
    BlockTooLarge { len: usize, max: usize },
    /// Shredder input: the parent slot is not below the slot (slot 0 is its own parent).
    #[error("parent slot {parent} is not below slot {slot}")]
    ParentNotBelow { slot: Slot, parent: Slot },
    /// Shredder input: the parent is 2^32 slots or more back (the wire has 32 bits).
    #[error("parent slot {parent} is too far below slot {slot}")]
    ParentTooFar { slot: Slot, parent: Slot },
}

/// Which two signed statements of the leader contradict each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictReason {
    /// Two different Merkle roots signed for the same FEC set: two versions of the block.
    DifferentRoot { fec_set_index: u32 },
    /// One signed root over shreds whose set-wide header fields differ.
    InconsistentSet { fec_set_index: u32 },
    /// Two FEC sets of the slot name different parent slots.
    ParentMismatch,
    /// One set says it ends the block while another set says otherwise: a set beyond
    /// it, or a second set that also claims to be last.
    LastSetMismatch,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::DifferentRoot { fec_set_index } => {
                write!(f, "two Merkle roots signed for FEC set {fec_set_index}")
            }
            ConflictReason::InconsistentSet { fec_set_index } => {
                write!(
                    f,
                    "FEC set {fec_set_index} holds shreds with different set headers"
                )
            }
            ConflictReason::ParentMismatch => f.write_str("two parent slots signed"),
            ConflictReason::LastSetMismatch => {
                f.write_str("two different ends of the block signed")
            }
        }
    }
}

/// Proof that a slot's leader signed conflicting shreds: the two shreds' wire bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Equivocation {
    pub slot: Slot,
    pub reason: ConflictReason,
    /// The shred accepted first (the version this node kept).
    pub first: Vec<u8>,
    /// The shred that contradicts it.
    pub second: Vec<u8>,
}

impl fmt::Debug for Equivocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Equivocation")
            .field("slot", &self.slot)
            .field("reason", &self.reason)
            .field("first_len", &self.first.len())
            .field("second_len", &self.second.len())
            .finish()
    }
}

impl fmt::Display for Equivocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leader equivocated in slot {}: {}",
            self.slot, self.reason
        )
    }
}

impl Equivocation {
    /// Checks the evidence on its own, as a node receiving it from a peer would: both
    /// shreds are well formed, for the same slot, each signed by `leader` over the Merkle
    /// root its proof leads to, and they do conflict as `reason` says.
    pub fn verify(&self, leader: &Pubkey) -> Result<(), ShredError> {
        let a = Shred::from_bytes(&self.first)?;
        let b = Shred::from_bytes(&self.second)?;
        if a.slot() != self.slot || b.slot() != self.slot {
            return Err(ShredError::Malformed(
                "evidence shreds are not for the evidence slot",
            ));
        }
        let root_a = a.verify(leader)?;
        let root_b = b.verify(leader)?;
        let conflict = match self.reason {
            ConflictReason::DifferentRoot { fec_set_index } => {
                a.fec_set_index() == fec_set_index
                    && b.fec_set_index() == fec_set_index
                    && root_a != root_b
            }
            ConflictReason::InconsistentSet { fec_set_index } => {
                a.fec_set_index() == fec_set_index
                    && b.fec_set_index() == fec_set_index
                    && root_a == root_b
                    && a.set_header() != b.set_header()
            }
            ConflictReason::ParentMismatch => a.parent_slot() != b.parent_slot(),
            ConflictReason::LastSetMismatch => {
                last_set_conflict(&a, &b) || last_set_conflict(&b, &a)
            }
        };
        if conflict {
            Ok(())
        } else {
            Err(ShredError::Malformed(
                "evidence shreds do not conflict as claimed",
            ))
        }
    }
}

/// Checks two shreds, as a node receiving them from anyone would, for proof that `leader`
/// signed conflicting versions of `slot`: both well formed, for `slot`, signed by `leader`
/// over the Merkle root their proofs lead to, and contradicting each other in one of the
/// ways [`ConflictReason`] names. Returns the way.
pub fn verify_conflict(
    leader: &Pubkey,
    slot: Slot,
    first: &[u8],
    second: &[u8],
) -> Result<ConflictReason, ShredError> {
    let a = Shred::from_bytes(first)?;
    let candidates = [
        ConflictReason::DifferentRoot {
            fec_set_index: a.fec_set_index(),
        },
        ConflictReason::InconsistentSet {
            fec_set_index: a.fec_set_index(),
        },
        ConflictReason::ParentMismatch,
        ConflictReason::LastSetMismatch,
    ];
    let mut last = ShredError::Malformed("evidence shreds do not conflict as claimed");
    for reason in candidates {
        let claim = Equivocation {
            slot,
            reason,
            first: first.to_vec(),
            second: second.to_vec(),
        };
        match claim.verify(leader) {
            Ok(()) => return Ok(reason),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Whether `last` claims to end the block and `other` contradicts that.
fn last_set_conflict(last: &Shred, other: &Shred) -> bool {
    last.is_last_set()
        && (other.fec_set_index() > last.fec_set_index()
            || (other.is_last_set() && other.fec_set_index() != last.fec_set_index()))
}
