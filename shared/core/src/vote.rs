//! Votes: a validator's signed statement that it has replayed a block and locks onto it.

use bincode::{Decode, Encode};

use crate::block::Slot;
use crate::encoding::{Canonical, encode_body};
use crate::hash::Hash;
use crate::keys::{self, Domain, Keypair, Pubkey, Signature, SignatureError, SignedMessage};

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

/// Checks many votes' signatures together: `true` for each vote whose signature holds,
/// in order. The same verdicts as [`SignedVote::verify`] one by one, at about half the
/// cost per vote once a few arrive together (see [`keys::verify_batch`]).
pub fn verify_votes(votes: &[SignedVote]) -> Vec<bool> {
    if let [one] = votes {
        return vec![one.verify().is_ok()];
    }
    let bodies: Vec<Vec<u8>> = votes.iter().map(|v| encode_body(&v.vote)).collect();
    let items: Vec<SignedMessage<'_>> = votes
        .iter()
        .zip(&bodies)
        .map(|(v, body)| SignedMessage {
            domain: Domain::Vote,
            key: &v.vote.voter,
            message: body,
            signature: &v.signature,
        })
        .collect();
    let mut ok = vec![true; votes.len()];
    if let Err(bad) = keys::verify_batch(&items) {
        for (i, _) in bad {
            if let Some(o) = ok.get_mut(i) {
                *o = false;
            }
        }
    }
    ok
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

    #[test]
    fn votes_checked_together_get_the_verdicts_of_one_by_one() {
        let votes: Vec<SignedVote> = (0..6u8)
            .map(|i| {
                let k = Keypair::from_seed(&[i + 10; 32]);
                Vote {
                    voter: k.pubkey(),
                    slot: u64::from(i),
                    block_id: Hash([i; 32]),
                    bank_hash: Hash([2; 32]),
                    confirmation_count: 1,
                    root: None,
                    timestamp_ms: 1,
                }
                .sign(&k)
            })
            .collect();
        assert!(verify_votes(&[]).is_empty());
        assert_eq!(verify_votes(&votes), vec![true; 6]);
        let mut mixed = votes.clone();
        mixed[1].vote.slot += 1; // no longer what was signed
        mixed[4].signature = mixed[3].signature; // another vote's signature
        let one_by_one: Vec<bool> = mixed.iter().map(|v| v.verify().is_ok()).collect();
        assert_eq!(one_by_one, vec![true, false, true, true, false, true]);
        assert_eq!(verify_votes(&mixed), one_by_one);
        assert_eq!(verify_votes(&mixed[1..2]), vec![false]);
    }
}
