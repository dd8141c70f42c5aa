//! Finality proofs: a bank hash is trusted only when signed votes for it, checked here
//! signature by signature, carry at least 2/3 of the stake under every stake table the
//! client trusts. The peer's word for who voted, and with how much stake, counts for
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use bb_core::{Canonical, Hash, Pubkey, SignedVote, Slot};

/// What a proof establishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proven {
    pub slot: Slot,
    pub block_id: Hash,
    pub bank_hash: Hash,
    /// Distinct voters whose valid votes matched.
    pub voters: usize,
    /// The smallest share of stake the voters reached over the stake tables, 0..=1.
    pub stake_share: f64,
}

/// Why votes did not prove a slot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProofError {
    #[error(
        "slot {slot}: signed votes for bank hash {bank_hash} carry only {percent:.1} % of the {table} stake (2/3 needed)"
    )]
    NotEnoughStake {
        slot: Slot,
        bank_hash: Hash,
        table: &'static str,
        percent: f64,
    },
    #[error("no stake table to weigh votes with")]
    NoStakes,
}

/// A table of stakes the client trusts, with a name for messages.
#[derive(Debug, Clone)]
pub struct StakeTable {
    pub name: &'static str,
    pub stakes: BTreeMap<Pubkey, u64>,
}

impl StakeTable {
    /// In u128: stakes may come from an untrusted file and must not overflow.
    pub fn total(&self) -> u128 {
        self.stakes.values().map(|s| u128::from(*s)).sum()
    }
}

/// Weighs `votes` (canonical signed-vote bytes, as `GetVotes` returns them) for
/// `(slot, block_id, bank_hash)`. A vote counts if it decodes, its signature verifies,
/// and it names exactly that slot, block and bank hash; each voter counts once. Every
/// table must see >= 2/3 of its total stake.
pub fn weigh(
    votes: &[Vec<u8>],
    slot: Slot,
    block_id: Hash,
    bank_hash: Hash,
    tables: &[StakeTable],
) -> Result<Proven, ProofError> {
    if tables.is_empty() {
        return Err(ProofError::NoStakes);
    }
    let mut voters = BTreeSet::new();
    for bytes in votes {
        let Ok(signed) = SignedVote::from_bytes(bytes) else {
            continue;
        };
        let v = &signed.vote;
        if v.slot != slot || v.block_id != block_id || v.bank_hash != bank_hash {
            continue;
        }
        if signed.verify().is_err() {
            continue;
        }
        voters.insert(v.voter);
    }
    let mut least = f64::INFINITY;
    for table in tables {
        let total = table.total();
        let voted: u128 = voters
            .iter()
            .map(|v| u128::from(table.stakes.get(v).copied().unwrap_or(0)))
            .sum();
        // voted / total >= 2 / 3, in integers.
        let share = if total == 0 {
            0.0
        } else {
            voted as f64 / total as f64
        };
        if total == 0 || voted * 3 < total * 2 {
            return Err(ProofError::NotEnoughStake {
                slot,
                bank_hash,
                table: table.name,
                percent: share * 100.0,
            });
        }
        least = least.min(share);
    }
    Ok(Proven {
        slot,
        block_id,
        bank_hash,
        voters: voters.len(),
        stake_share: least,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Keypair, Vote};

    fn keys(n: u8) -> Vec<Keypair> {
        (1..=n).map(|i| Keypair::from_seed(&[i; 32])).collect()
    }

    fn table(keys: &[Keypair], stakes: &[u64]) -> StakeTable {
        StakeTable {
            name: "genesis",
            stakes: keys
                .iter()
                .zip(stakes)
                .map(|(k, s)| (k.pubkey(), *s))
                .collect(),
        }
    }

    fn vote(k: &Keypair, slot: Slot, block: Hash, bank: Hash) -> Vec<u8> {
        Vote {
            voter: k.pubkey(),
            slot,
            block_id: block,
            bank_hash: bank,
            confirmation_count: 1,
            root: None,
            timestamp_ms: 0,
        }
        .sign(k)
        .to_bytes()
    }

    #[test]
    fn two_thirds_of_the_stake_proves_a_bank_hash() {
        let k = keys(3);
        let (block, bank) = (Hash([1; 32]), Hash([2; 32]));
        let votes = vec![vote(&k[0], 9, block, bank), vote(&k[1], 9, block, bank)];
        let proven = weigh(&votes, 9, block, bank, &[table(&k, &[1, 1, 1])]).unwrap();
        assert_eq!(proven.voters, 2);
        assert!((proven.stake_share - 2.0 / 3.0).abs() < 1e-9);
        // Just under 2/3 is not enough.
        let err = weigh(&votes, 9, block, bank, &[table(&k, &[2, 2, 5])]).unwrap_err();
        assert!(matches!(err, ProofError::NotEnoughStake { .. }), "{err}");
    }

    #[test]
    fn forged_duplicated_and_mismatched_votes_count_for_nothing() {
        let k = keys(3);
        let (block, bank) = (Hash([1; 32]), Hash([2; 32]));
        let t = [table(&k, &[1, 1, 1])];
        let good = vote(&k[0], 9, block, bank);
        // The same vote twice is one voter.
        assert!(weigh(&[good.clone(), good.clone()], 9, block, bank, &t).is_err());
        // A vote whose signature was made by another key.
        let mut forged = Vote {
            voter: k[1].pubkey(),
            slot: 9,
            block_id: block,
            bank_hash: bank,
            confirmation_count: 1,
            root: None,
            timestamp_ms: 0,
        }
        .sign(&k[2]);
        forged.vote.voter = k[1].pubkey();
        assert!(weigh(&[good.clone(), forged.to_bytes()], 9, block, bank, &t).is_err());
        // Votes for another bank hash, block or slot.
        for other in [
            vote(&k[1], 9, block, Hash([3; 32])),
            vote(&k[1], 9, Hash([3; 32]), bank),
            vote(&k[1], 8, block, bank),
        ] {
            assert!(weigh(&[good.clone(), other], 9, block, bank, &t).is_err());
        }
        // Garbage bytes are skipped, never a panic.
        assert!(weigh(&[good, vec![0xff; 7]], 9, block, bank, &t).is_err());
    }

    #[test]
    fn every_table_must_agree() {
        let k = keys(4);
        let (block, bank) = (Hash([1; 32]), Hash([2; 32]));
        let votes: Vec<Vec<u8>> = k[..2].iter().map(|k| vote(k, 5, block, bank)).collect();
        // Voters 0 and 1 hold 2/3 in the first table but not in the second, where the
        // snapshot claims a fourth validator holds most of the stake.
        let genesis = table(&k[..3], &[1, 1, 1]);
        let mut snapshot = table(&k, &[1, 1, 1, 10]);
        snapshot.name = "snapshot";
        let err = weigh(&votes, 5, block, bank, &[genesis.clone(), snapshot]).unwrap_err();
        assert!(err.to_string().contains("snapshot"), "{err}");
        assert!(weigh(&votes, 5, block, bank, &[genesis]).is_ok());
    }
}
