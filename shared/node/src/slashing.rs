//! What a node keeps of slashing: one record per offense in the ledger (the evidence, when
//! and how this node learned of it, and the rooted block that recorded it), and the
//! penalties rooted banks applied. The protocol side (what evidence proves, when stake is
//! cut) lives in `bb-core` and `bb-runtime`; this is bookkeeping for operators.

use bb_core::{Canonical, Evidence, Offense, Slot};
use bb_ledger::Ledger;
use bincode::{Decode, Encode};
use tracing::warn;

/// How a node first learned of an offense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Source {
    /// Found here: two conflicting votes reached this node.
    Detected,
    /// Gossiped by a peer.
    Gossip,
    /// Only seen inside a block.
    Block,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Detected => "detected",
            Source::Gossip => "gossip",
            Source::Block => "block",
        }
    }
}

/// The ledger's record of one offense.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct EvidenceRecord {
    pub evidence: Evidence,
    pub source: Source,
    /// When this node first held it, ms since the Unix epoch.
    pub first_seen_ms: u64,
    /// The rooted block that recorded the offense on chain, once there is one.
    pub recorded_in: Option<Slot>,
}

impl Canonical for EvidenceRecord {
    const NAME: &'static str = "evidence record";
    const MAX_SIZE: usize = 8192;
}

fn key(offense: &Offense) -> (u64, &[u8; 32], u8) {
    (offense.slot, &offense.offender.0, offense.kind.code())
}

/// Stores newly learned evidence, unless the offense already has a record.
pub fn store_new(ledger: &Ledger, evidence: &Evidence, source: Source, now_ms: u64) {
    let offense = evidence.offense();
    match ledger.get_evidence(key(&offense)) {
        Ok(Some(_)) => {}
        Ok(None) => {
            let record = EvidenceRecord {
                evidence: evidence.clone(),
                source,
                first_seen_ms: now_ms,
                recorded_in: None,
            };
            if let Err(e) = ledger.put_evidence(key(&offense), &record.to_bytes()) {
                warn!("cannot store slashing evidence: {e}");
            }
        }
        Err(e) => warn!("cannot read slashing evidence: {e}"),
    }
}

/// Notes that the rooted block of `slot` recorded the offense `evidence` proves.
pub fn store_recorded(ledger: &Ledger, slot: Slot, evidence: &Evidence, now_ms: u64) {
    let offense = evidence.offense();
    let existing = match ledger.get_evidence(key(&offense)) {
        Ok(found) => found.and_then(|b| EvidenceRecord::from_bytes(&b).ok()),
        Err(e) => {
            warn!("cannot read slashing evidence: {e}");
            return;
        }
    };
    let record = match existing {
        Some(r) => EvidenceRecord {
            recorded_in: Some(slot),
            ..r
        },
        None => EvidenceRecord {
            evidence: evidence.clone(),
            source: Source::Block,
            first_seen_ms: now_ms,
            recorded_in: Some(slot),
        },
    };
    if let Err(e) = ledger.put_evidence(key(&offense), &record.to_bytes()) {
        warn!("cannot store slashing evidence: {e}");
    }
}

/// The newest `limit` records, newest offense first (records that no longer decode are
/// skipped).
pub fn newest(
    ledger: &Ledger,
    limit: usize,
) -> Result<Vec<EvidenceRecord>, bb_ledger::LedgerError> {
    Ok(ledger
        .evidence_newest(limit)?
        .into_iter()
        .filter_map(|(_, bytes)| EvidenceRecord::from_bytes(&bytes).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Hash, Keypair, Vote};

    fn evidence(slot: Slot) -> Evidence {
        let k = Keypair::from_seed(&[4; 32]);
        let vote = |b: u8| {
            Vote {
                voter: k.pubkey(),
                slot,
                block_id: Hash([b; 32]),
                bank_hash: Hash([b; 32]),
                confirmation_count: 1,
                root: None,
                timestamp_ms: 0,
            }
            .sign(&k)
        };
        Evidence::double_vote(vote(1), vote(2))
    }

    #[test]
    fn the_first_source_is_kept_and_the_recording_block_added() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        store_new(&ledger, &evidence(5), Source::Detected, 10);
        store_new(&ledger, &evidence(5), Source::Gossip, 20);
        store_recorded(&ledger, 7, &evidence(5), 30);
        store_recorded(&ledger, 9, &evidence(6), 40);
        let all = newest(&ledger, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].source, Source::Block);
        assert_eq!(all[0].recorded_in, Some(9));
        assert_eq!(all[1].source, Source::Detected);
        assert_eq!(all[1].first_seen_ms, 10);
        assert_eq!(all[1].recorded_in, Some(7));
    }
}
