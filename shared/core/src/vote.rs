//! Votes: a validator's signed statement that it has replayed a block and locks onto it.

use bincode::{Decode, Encode};

use crate::block::Slot;
use crate::encoding::{Canonical, encode_body};
use crate::hash::Hash;
use crate::keys::{self, Domain, Keypair, Pubkey, Signature, SignatureError};

/// What a validator signs when it votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Vote {
    pub voter: Pubkey,
    pub slot: Slot,
    /// The id of the block voted for.
    pub block_id: Hash,
    /// The bank hash the voter computed by replaying that block.
    pub bank_hash: Hash,
    /// How many votes stacked on this slot in the voter's tower (its lockout is 2^count).
    pub confirmation_count: u32,
    /// The voter's root when it voted.
    pub root: Option<Slot>,
    /// Wall-clock milliseconds since the Unix epoch when the vote was made.
    pub timestamp_ms: u64,
}

/// A vote with its signature, as gossiped and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

impl Canonical for SignedVote {
    const NAME: &'static str = "vote";
    const MAX_SIZE: usize = 512;
}

impl Vote {
    pub fn sign(self, voter: &Keypair) -> SignedVote {
        let signature = voter.sign(Domain::Vote, &encode_body(&self));
        SignedVote {
            vote: self,
            signature,
        }
    }
}

impl SignedVote {
    pub fn verify(&self) -> Result<(), SignatureError> {
        keys::verify(
            Domain::Vote,
            &self.vote.voter,
            &encode_body(&self.vote),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_signature_covers_every_field() {
        let k = Keypair::from_seed(&[3; 32]);
        let v = Vote {
            voter: k.pubkey(),
            slot: 12,
            block_id: Hash([1; 32]),
            bank_hash: Hash([2; 32]),
            confirmation_count: 1,
            root: Some(3),
            timestamp_ms: 1_700_000_000_000,
        }
        .sign(&k);
        assert_eq!(v.verify(), Ok(()));
        assert_eq!(SignedVote::from_bytes(&v.to_bytes()), Ok(v));
        let mut other = v;
        other.vote.root = None;
        assert!(other.verify().is_err());
    }
}
