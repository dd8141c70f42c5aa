//! The tower as it is persisted: written before a vote leaves the node, read on restart.

use bb_consensus::{Lockout, Tower};
use bb_core::{Canonical, Hash, Slot};
use bincode::{Decode, Encode};

/// A tower's persistent form (canonical encoding, versioned).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct TowerRecord {
    /// (slot, confirmation count), oldest first.
    pub votes: Vec<(Slot, u32)>,
    pub root: Option<Slot>,
    pub last_vote_hash: Option<Hash>,
}

impl Canonical for TowerRecord {
    const NAME: &'static str = "tower";
    const MAX_SIZE: usize = 4096;
}

impl From<&Tower> for TowerRecord {
    fn from(t: &Tower) -> Self {
        TowerRecord {
            votes: t.votes().map(|l| (l.slot, l.confirmation_count)).collect(),
            root: t.root(),
            last_vote_hash: t.last_vote_hash(),
        }
    }
}

impl TowerRecord {
    /// Rebuilds the tower. Refuses records that no tower could have produced.
    pub fn into_tower(self) -> Result<Tower, String> {
        if self.votes.len() > bb_consensus::MAX_LOCKOUT_HISTORY {
            return Err(format!("tower holds {} votes", self.votes.len()));
        }
        for w in self.votes.windows(2) {
            if w[0].0 >= w[1].0 || w[0].1 <= w[1].1 {
                return Err("tower votes out of order".into());
            }
        }
        if let (Some(root), Some(first)) = (self.root, self.votes.first())
            && root >= first.0
        {
            return Err("tower root is not below its votes".into());
        }
        let votes = self
            .votes
            .into_iter()
            .map(|(slot, confirmation_count)| Lockout {
                slot,
                confirmation_count,
            })
            .collect();
        Ok(Tower::from_parts(votes, self.root, self.last_vote_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_nonsense() {
        let mut t = Tower::new();
        for s in [3, 4, 5] {
            t.record_vote(s, Hash([s as u8; 32]));
        }
        let rec = TowerRecord::from(&t);
        let back = TowerRecord::from_bytes(&rec.to_bytes()).unwrap();
        assert_eq!(back.clone().into_tower().unwrap(), t);
        let mut bad = back;
        bad.votes.swap(0, 1);
        assert!(bad.into_tower().is_err());
    }
}
