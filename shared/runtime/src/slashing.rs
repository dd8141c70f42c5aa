//! Slashing in the bank: offenses recorded from block evidence, and the stake cut at the
//! next epoch boundary.
//!
//! * A block's evidence is recorded by replay ([`Bank::record_evidence`]): it must verify
//!   with its signatures alone, the offense must lie in this epoch or the one before, the
//!   offender must still hold stake, and the same offense must not be recorded already on
//!   this fork. Each record is a leaf of the state hash (with the epoch it was recorded
//!   in), so two nodes that disagree on what was recorded disagree on the bank hash.
//! * Entering a new epoch, every validator with an offense recorded during the previous
//!   bank's epoch loses `slash_penalty_bps` of its stake, once, however many offenses it
//!   committed ([`Bank::penalties`] lists the cuts made by that bank). The cut stakes are
//!   what the new epoch's epoch stakes record, so votes are weighed with them from then on
//!   and the leader schedule follows an epoch later.
//! * Offenses whose slot lies two epochs back are forgotten at the boundary: evidence for
//!   them is refused as too old anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bb_core::{Evidence, EvidenceError, MAX_EVIDENCE_SHRED_BYTES, Offense, Pubkey, Slot};

use crate::bank::Bank;
use crate::error::BankError;
use crate::lt_hash::LtHash;
use crate::stakes::{Epoch, EpochSchedule, Stakes};

/// A stake cut applied at an epoch boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    pub offender: Pubkey,
    /// The epoch whose first bank applied the cut.
    pub epoch: Epoch,
    pub old_stake: u64,
    pub new_stake: u64,
}

/// Why a piece of evidence was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRefusal {
    #[error("{0}")]
    Invalid(#[from] bb_core::EvidenceError),
    #[error("the offense in slot {offense} is after the bank's slot {slot}")]
    FromTheFuture { offense: Slot, slot: Slot },
    #[error("the offense in slot {offense} (epoch {epoch}) is too old to punish in epoch {now}")]
    TooOld {
        offense: Slot,
        epoch: Epoch,
        now: Epoch,
    },
    #[error("the offender {0} holds no stake")]
    NoStake(Pubkey),
    #[error("the offense of {offender} in slot {slot} is already recorded")]
    AlreadyRecorded { offender: Pubkey, slot: Slot },
}

/// Checks that `evidence` proves its offense with its own signatures: votes as
/// [`Evidence::verify`] does, and duplicate blocks by their shreds (both well formed,
/// for the slot, signed by the leader over Merkle roots that contradict each other).
/// The one check every node, tool and replay applies.
pub fn verify_evidence(evidence: &Evidence) -> Result<Offense, EvidenceError> {
    match evidence {
        Evidence::DuplicateBlock {
            leader,
            slot,
            first,
            second,
        } => {
            if first.len() > MAX_EVIDENCE_SHRED_BYTES || second.len() > MAX_EVIDENCE_SHRED_BYTES {
                return Err(EvidenceError::Shreds("a shred is oversized".into()));
            }
            if first == second {
                return Err(EvidenceError::Shreds("the two shreds are the same".into()));
            }
            if first > second {
                return Err(EvidenceError::NotCanonical);
            }
            bb_turbine::verify_conflict(leader, *slot, first, second)
                .map_err(|e| EvidenceError::Shreds(e.to_string()))?;
            Ok(evidence.offense())
        }
        Evidence::DoubleVote { .. } => evidence.verify(),
    }
}

/// The offenses a bank holds, by offense, with the epoch each was recorded in.
pub(crate) type Offenses = Arc<BTreeMap<Offense, Epoch>>;

impl Bank {
    /// Checks `evidence` against this bank's fork and records its offense (see the module
    /// documentation). Replay calls this for every piece of a block's evidence, and a
    /// refusal makes the block invalid; a leader calls it to pick what it can include.
    pub fn record_evidence(&mut self, evidence: &Evidence) -> Result<Offense, BankError> {
        if self.frozen.is_some() {
            return Err(BankError::AlreadyFrozen { slot: self.slot });
        }
        let offense = self
            .check_evidence(evidence)
            .map_err(|reason| BankError::Evidence {
                slot: self.slot,
                reason,
            })?;
        self.insert_offense(offense);
        Ok(offense)
    }

    /// Records a checked offense on this unfrozen bank.
    pub(crate) fn insert_offense(&mut self, offense: Offense) {
        Arc::make_mut(&mut self.offenses).insert(offense, self.epoch);
        self.lt_hash.add_offense(&offense, self.epoch);
    }

    /// Whether `evidence` would be recorded by a child of this bank in the same epoch:
    /// valid, not too old, against a staked validator, not already recorded.
    pub fn check_evidence(&self, evidence: &Evidence) -> Result<Offense, EvidenceRefusal> {
        let offense = verify_evidence(evidence)?;
        if offense.slot > self.slot {
            return Err(EvidenceRefusal::FromTheFuture {
                offense: offense.slot,
                slot: self.slot,
            });
        }
        let epoch = self.config.epoch_schedule.epoch(offense.slot);
        if epoch + 1 < self.epoch {
            return Err(EvidenceRefusal::TooOld {
                offense: offense.slot,
                epoch,
                now: self.epoch,
            });
        }
        if self.stakes.get(&offense.offender) == 0 {
            return Err(EvidenceRefusal::NoStake(offense.offender));
        }
        if self.offenses.contains_key(&offense) {
            return Err(EvidenceRefusal::AlreadyRecorded {
                offender: offense.offender,
                slot: offense.slot,
            });
        }
        Ok(offense)
    }

    /// Whether this fork has recorded `offense`.
    pub fn has_offense(&self, offense: &Offense) -> bool {
        self.offenses.contains_key(offense)
    }

    /// Every offense this fork remembers, with the epoch it was recorded in.
    pub fn offenses(&self) -> impl Iterator<Item = (&Offense, &Epoch)> {
        self.offenses.iter()
    }

    /// The stake cuts this bank applied on entering its epoch (empty unless it is the
    /// first bank of its epoch on its fork and someone offended in the epoch before).
    pub fn penalties(&self) -> &[Penalty] {
        &self.penalties
    }

    /// The share of stake one penalty cuts, in basis points (from genesis).
    pub fn slash_penalty_bps(&self) -> u32 {
        self.config.slash_penalty_bps
    }
}

/// What changes when a bank of `epoch` follows a parent of an earlier epoch.
pub(crate) struct EpochTransition {
    pub(crate) stakes: Arc<Stakes>,
    pub(crate) epoch_stakes: Arc<BTreeMap<Epoch, Arc<Stakes>>>,
    pub(crate) offenses: Offenses,
    pub(crate) penalties: Vec<Penalty>,
}

/// Applies the penalties for offenses recorded in `parent_epoch`, records the stakes as of
/// the start of the new epoch (and of the epoch before, if it had no bank), forgets what
/// is too old, and keeps `lt_hash` in step with all of it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enter_epoch(
    schedule: EpochSchedule,
    penalty_bps: u32,
    parent_epoch: Epoch,
    epoch: Epoch,
    stakes: &Arc<Stakes>,
    epoch_stakes: &Arc<BTreeMap<Epoch, Arc<Stakes>>>,
    offenses: &Offenses,
    lt_hash: &mut LtHash,
) -> EpochTransition {
    let mut stakes = stakes.clone();
    let mut penalties = Vec::new();
    let offenders: BTreeSet<Pubkey> = offenses
        .iter()
        .filter(|(_, recorded)| **recorded == parent_epoch)
        .map(|(o, _)| o.offender)
        .collect();
    for offender in offenders {
        let old = stakes.get(&offender);
        if old == 0 {
            continue;
        }
        let cut = (u128::from(old) * u128::from(penalty_bps) / 10_000) as u64;
        let new = old - cut.min(old);
        Arc::make_mut(&mut stakes).apply_stake_change(offender, new);
        lt_hash.remove_stake(&offender, old);
        lt_hash.add_stake(&offender, new);
        penalties.push(Penalty {
            offender,
            epoch,
            old_stake: old,
            new_stake: new,
        });
    }

    // Entering epoch E: record the stakes as of its start (the schedule of E + 1 uses
    // them). Only E - 1 and E are ever needed again.
    let mut epoch_stakes = epoch_stakes.clone();
    let map = Arc::make_mut(&mut epoch_stakes);
    for e in (parent_epoch + 1).max(epoch.saturating_sub(1))..=epoch {
        if let Some(old) = map.insert(e, stakes.clone()) {
            remove_epoch_leaves(lt_hash, e, &old);
        }
        add_epoch_leaves(lt_hash, e, &stakes);
    }
    let dropped: Vec<Epoch> = map.keys().copied().filter(|e| e + 1 < epoch).collect();
    for e in dropped {
        if let Some(old) = map.remove(&e) {
            remove_epoch_leaves(lt_hash, e, &old);
        }
    }

    let mut offenses = offenses.clone();
    let stale: Vec<(Offense, Epoch)> = offenses
        .iter()
        .filter(|(o, _)| schedule.epoch(o.slot) + 1 < epoch)
        .map(|(o, r)| (*o, *r))
        .collect();
    if !stale.is_empty() {
        let map = Arc::make_mut(&mut offenses);
        for (offense, recorded) in stale {
            map.remove(&offense);
            lt_hash.remove_offense(&offense, recorded);
        }
    }
    EpochTransition {
        stakes,
        epoch_stakes,
        offenses,
        penalties,
    }
}

pub(crate) fn add_epoch_leaves(lt_hash: &mut LtHash, epoch: Epoch, stakes: &Stakes) {
    for (validator, stake) in stakes.iter() {
        lt_hash.add_epoch_stake(epoch, validator, *stake);
    }
}

fn remove_epoch_leaves(lt_hash: &mut LtHash, epoch: Epoch, stakes: &Stakes) {
    for (validator, stake) in stakes.iter() {
        lt_hash.remove_epoch_stake(epoch, validator, *stake);
    }
}
