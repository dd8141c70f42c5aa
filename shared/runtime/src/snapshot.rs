//! A root bank as owned data and back: what a snapshot file stores.
//!
//! [`Bank::snapshot`] takes a frozen root (no unrooted parent) apart into
//! [`SnapshotFields`] and its accounts; [`Bank::from_snapshot`] puts them together again
//! into a bank that behaves exactly like the original: the same bank hash for every child
//! block, the same duplicate refusals, the same leader schedules.
//!
//! What is checked on the way back: the lattice state hash is recomputed from the accounts
//! stakes, epoch stakes and recorded offenses and must equal the recorded one, and the
//! bank hash must follow from it. The blockhash queue and the status cache are **not** in
//! the state hash
//! (the bank hash does not cover them either); they are only checked for consistency
//! (ordering, bounds, membership). A snapshot file therefore carries its own checksums
//! over every byte: a tampered status cache or queue that keeps its checksums intact is
//! caught downstream instead, as a different bank hash on the first block it matters to.
//!
//! Sans-I/O like the rest of the crate: the file format lives in `bb-snapshots`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use bb_core::{Genesis, Hash, Offense, Pubkey, Signature, Slot};

use crate::bank::{Bank, BankConfig, Frozen, RootState, bank_hash, read};
use crate::blockhash_queue::BlockhashQueue;
use crate::error::BankError;
use crate::lt_hash::LtHash;
use crate::prehash::{PrehashMap, Prehashed};
use crate::slashing::add_epoch_leaves;
use crate::stakes::{Epoch, EpochSchedule, Stakes};

/// Everything of a root bank except its accounts. Lists are sorted (by pubkey, epoch,
/// blockhash, signature), so one bank has exactly one `SnapshotFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFields {
    pub slot: Slot,
    pub parent_slot: Slot,
    /// The parent's bank hash (the genesis hash for slot 0).
    pub parent_hash: Hash,
    pub epoch: Epoch,
    /// The slot's leader, who received its fees.
    pub collector: Pubkey,
    pub block_id: Hash,
    pub bank_hash: Hash,
    /// The lattice hash checksum of every balance and stake ([`Bank::state_hash`]).
    pub state_hash: Hash,
    /// The block's last entry hash: the newest recent blockhash.
    pub poh_end: Hash,
    pub signature_count: u64,
    pub collected_fees: u64,
    pub genesis_hash: Hash,
    /// How many blockhashes were ever registered in the queue.
    pub blockhash_queue_height: u64,
    /// The recent blockhashes with their registration heights, oldest first; the last is
    /// `poh_end`.
    pub blockhash_queue: Vec<(Hash, u64)>,
    /// Processed signatures with their slot, by recent blockhash: what refuses duplicates.
    pub status_cache: Vec<(Hash, Vec<(Signature, Slot)>)>,
    /// The current stakes, non-zero, by validator.
    pub stakes: Vec<(Pubkey, u64)>,
    /// The stakes as of the start of the bank's epoch and the one before (the leader
    /// schedule's input), by epoch.
    pub epoch_stakes: Vec<(Epoch, Vec<(Pubkey, u64)>)>,
    /// Slashing offenses the chain recorded and still remembers, by offense, with the
    /// epoch each was recorded in.
    pub offenses: Vec<(Offense, Epoch)>,
}

impl SnapshotFields {
    /// The bank hash the fields imply: [`bank_hash`] of the parent hash, `poh_end`, the
    /// state hash and the signature count. Equal to `bank_hash` in a sound snapshot.
    pub fn implied_bank_hash(&self) -> Hash {
        bank_hash(
            &self.parent_hash,
            &self.poh_end,
            &self.state_hash,
            self.signature_count,
        )
    }

    /// Signatures in the status cache.
    pub fn status_cache_len(&self) -> usize {
        self.status_cache.iter().map(|(_, sigs)| sigs.len()).sum()
    }
}

/// Why a bank could not be snapshotted, or why snapshot data did not rebuild a bank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotRefusal {
    #[error("only a frozen root bank (no unrooted parent) can be snapshotted")]
    NotARoot,
    #[error("made for the network with genesis hash {found}, this genesis hashes to {expected}")]
    GenesisMismatch { expected: Hash, found: Hash },
    #[error("inconsistent fields: {0}")]
    Inconsistent(String),
    #[error("accounts: {0}")]
    BadAccounts(String),
    #[error(
        "state hash mismatch: accounts and stakes hash to {computed}, the snapshot records {recorded}"
    )]
    StateHashMismatch { recorded: Hash, computed: Hash },
    #[error("bank hash mismatch: the fields hash to {computed}, the snapshot records {recorded}")]
    BankHashMismatch { recorded: Hash, computed: Hash },
}

fn refuse(slot: Slot, reason: SnapshotRefusal) -> BankError {
    BankError::Snapshot { slot, reason }
}

fn inconsistent(slot: Slot, what: impl Into<String>) -> BankError {
    refuse(slot, SnapshotRefusal::Inconsistent(what.into()))
}

/// Whether `items` rise strictly by `key`.
fn strictly_rising<T, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> bool {
    items.windows(2).all(|w| key(&w[0]) < key(&w[1]))
}

/// Validated stakes: rising pubkeys, no zero stake.
fn stakes_from(slot: Slot, what: &str, list: &[(Pubkey, u64)]) -> Result<Stakes, BankError> {
    if !strictly_rising(list, |(k, _)| *k) {
        return Err(inconsistent(
            slot,
            format!("{what}: validators out of order"),
        ));
    }
    if list.iter().any(|(_, s)| *s == 0) {
        return Err(inconsistent(slot, format!("{what}: a zero stake")));
    }
    Ok(list.iter().copied().collect())
}

fn stake_list(stakes: &Stakes) -> Vec<(Pubkey, u64)> {
    stakes.iter().map(|(k, s)| (*k, *s)).collect()
}

/// Every account with a non-zero balance, by pubkey.
type Accounts = Vec<(Pubkey, u64)>;

impl Bank {
    /// The fields of this root bank and every account with a non-zero balance, sorted by
    /// pubkey. Refused ([`SnapshotRefusal::NotARoot`]) unless the bank is frozen, has no
    /// unrooted parent and is still the root its descendants share. O(accounts).
    pub fn snapshot(&self) -> Result<(SnapshotFields, Vec<(Pubkey, u64)>), BankError> {
        let (fields, accounts) = self.take_snapshot(true)?;
        Ok((fields, accounts.unwrap_or_default()))
    }

    /// [`Bank::snapshot`] without the accounts (no copy of the whole state): for callers
    /// that only check the other fields.
    pub fn snapshot_fields(&self) -> Result<SnapshotFields, BankError> {
        Ok(self.take_snapshot(false)?.0)
    }

    /// Both of the above under one read of the rooted state.
    fn take_snapshot(
        &self,
        with_accounts: bool,
    ) -> Result<(SnapshotFields, Option<Accounts>), BankError> {
        let not_root = || refuse(self.slot, SnapshotRefusal::NotARoot);
        let frozen = self.frozen.ok_or_else(not_root)?;
        if self.parent().is_some() {
            return Err(not_root());
        }
        let root = read(&self.root);
        if root.slot != self.slot {
            return Err(not_root());
        }
        let accounts = with_accounts.then(|| {
            let mut accounts: Vec<(Pubkey, u64)> = root
                .accounts
                .iter()
                .filter(|(_, b)| **b != 0)
                .map(|(k, b)| (*k.key(), *b))
                .collect();
            accounts.sort_unstable_by_key(|(k, _)| *k);
            accounts
        });
        let mut status_cache: Vec<(Hash, Vec<(Signature, Slot)>)> = root
            .status
            .iter()
            .filter(|(_, sigs)| !sigs.is_empty())
            .map(|(recent, sigs)| {
                let mut sigs: Vec<(Signature, Slot)> =
                    sigs.iter().map(|(s, slot)| (*s.key(), *slot)).collect();
                sigs.sort_unstable_by_key(|(s, _)| *s);
                (*recent, sigs)
            })
            .collect();
        drop(root);
        status_cache.sort_unstable_by_key(|(h, _)| *h);
        let (blockhash_queue_height, blockhash_queue) = self.blockhash_queue.parts();
        let fields = SnapshotFields {
            slot: self.slot,
            parent_slot: self.parent_slot,
            parent_hash: self.parent_hash,
            epoch: self.epoch,
            collector: self.collector,
            block_id: frozen.block_id,
            bank_hash: frozen.hash,
            state_hash: self.lt_hash.checksum(),
            poh_end: self.blockhash_queue.last(),
            signature_count: self.signature_count,
            collected_fees: self.collected_fees,
            genesis_hash: self.config.genesis_hash,
            blockhash_queue_height,
            blockhash_queue,
            status_cache,
            stakes: stake_list(&self.stakes),
            epoch_stakes: self
                .epoch_stakes
                .iter()
                .map(|(e, s)| (*e, stake_list(s)))
                .collect(),
            offenses: self.offenses.iter().map(|(o, e)| (*o, *e)).collect(),
        };
        Ok((fields, accounts))
    }

    /// Rebuilds the root bank [`Bank::snapshot`] took apart. `accounts` must be sorted by
    /// pubkey with no zero balance. Recomputes the lattice hash from the accounts and stakes
    /// and checks it against `state_hash`, then checks that
    /// `bank_hash(parent_hash, poh_end, state_hash, signature_count) == bank_hash`, and that
    /// the snapshot belongs to `genesis`. The other fields are checked for consistency only
    /// (see the module documentation).
    pub fn from_snapshot(
        genesis: &Genesis,
        fields: SnapshotFields,
        accounts: impl IntoIterator<Item = (Pubkey, u64)>,
    ) -> Result<Arc<Bank>, BankError> {
        genesis.validate()?;
        let slot = fields.slot;
        let genesis_hash = genesis.hash();
        if fields.genesis_hash != genesis_hash {
            return Err(refuse(
                slot,
                SnapshotRefusal::GenesisMismatch {
                    expected: genesis_hash,
                    found: fields.genesis_hash,
                },
            ));
        }
        let epoch_schedule = EpochSchedule::new(genesis.slots_per_epoch);
        if fields.epoch != epoch_schedule.epoch(slot) {
            return Err(inconsistent(
                slot,
                format!("epoch {} does not hold slot {slot}", fields.epoch),
            ));
        }
        if slot > 0 && fields.parent_slot >= slot {
            return Err(inconsistent(
                slot,
                format!("parent slot {} is not below the slot", fields.parent_slot),
            ));
        }
        let queue =
            BlockhashQueue::from_parts(fields.blockhash_queue_height, &fields.blockhash_queue)
                .ok_or_else(|| inconsistent(slot, "the blockhash queue is malformed"))?;
        if queue.last() != fields.poh_end {
            return Err(inconsistent(
                slot,
                "the newest blockhash in the queue is not the block's PoH end",
            ));
        }

        let stakes = stakes_from(slot, "stakes", &fields.stakes)?;
        if !strictly_rising(&fields.epoch_stakes, |(e, _)| *e) {
            return Err(inconsistent(slot, "epoch stakes out of order"));
        }
        let mut epoch_stakes = BTreeMap::new();
        for (epoch, list) in &fields.epoch_stakes {
            if *epoch > fields.epoch || epoch + 1 < fields.epoch {
                return Err(inconsistent(
                    slot,
                    format!(
                        "stakes of epoch {epoch} in a bank of epoch {}",
                        fields.epoch
                    ),
                ));
            }
            let what = format!("stakes of epoch {epoch}");
            epoch_stakes.insert(*epoch, Arc::new(stakes_from(slot, &what, list)?));
        }
        if !epoch_stakes.contains_key(&fields.epoch) {
            return Err(inconsistent(
                slot,
                format!("no stakes for the bank's epoch {}", fields.epoch),
            ));
        }

        if !strictly_rising(&fields.offenses, |(o, _)| *o) {
            return Err(inconsistent(slot, "offenses out of order"));
        }
        if let Some((o, e)) = fields
            .offenses
            .iter()
            .find(|(o, e)| *e > fields.epoch || o.slot > slot)
        {
            return Err(inconsistent(
                slot,
                format!(
                    "an offense in slot {} recorded in epoch {e}, after the snapshot",
                    o.slot
                ),
            ));
        }

        if !strictly_rising(&fields.status_cache, |(h, _)| *h) {
            return Err(inconsistent(slot, "status cache out of order"));
        }
        let mut status: HashMap<Hash, PrehashMap<Signature, Slot>> =
            HashMap::with_capacity(fields.status_cache.len());
        for (recent, sigs) in &fields.status_cache {
            if !queue.contains(recent) {
                return Err(inconsistent(
                    slot,
                    format!("status cache entries under blockhash {recent}, not in the queue"),
                ));
            }
            if sigs.is_empty() || !strictly_rising(sigs, |(s, _)| *s) {
                return Err(inconsistent(
                    slot,
                    format!("status cache under blockhash {recent} is empty or out of order"),
                ));
            }
            if let Some((_, late)) = sigs.iter().find(|(_, s)| *s > slot) {
                return Err(inconsistent(
                    slot,
                    format!("a signature processed in slot {late}, after the snapshot"),
                ));
            }
            let map = sigs
                .iter()
                .map(|(sig, s)| (Prehashed::new(*sig), *s))
                .collect();
            status.insert(*recent, map);
        }

        let mut lt_hash = LtHash::identity();
        let mut root_accounts = PrehashMap::default();
        let mut previous: Option<Pubkey> = None;
        for (i, (pubkey, balance)) in accounts.into_iter().enumerate() {
            if previous.is_some_and(|p| p >= pubkey) {
                return Err(refuse(
                    slot,
                    SnapshotRefusal::BadAccounts(format!("account {i} is out of order")),
                ));
            }
            if balance == 0 {
                return Err(refuse(
                    slot,
                    SnapshotRefusal::BadAccounts(format!("account {i} has a zero balance")),
                ));
            }
            previous = Some(pubkey);
            lt_hash.add_account(&pubkey, balance);
            root_accounts.insert(Prehashed::new(pubkey), balance);
        }
        for (validator, stake) in stakes.iter() {
            lt_hash.add_stake(validator, *stake);
        }
        for (epoch, stakes) in &epoch_stakes {
            add_epoch_leaves(&mut lt_hash, *epoch, stakes);
        }
        for (offense, recorded) in &fields.offenses {
            lt_hash.add_offense(offense, *recorded);
        }
        let computed = lt_hash.checksum();
        if computed != fields.state_hash {
            return Err(refuse(
                slot,
                SnapshotRefusal::StateHashMismatch {
                    recorded: fields.state_hash,
                    computed,
                },
            ));
        }
        let computed = fields.implied_bank_hash();
        if computed != fields.bank_hash {
            return Err(refuse(
                slot,
                SnapshotRefusal::BankHashMismatch {
                    recorded: fields.bank_hash,
                    computed,
                },
            ));
        }

        let config = BankConfig {
            genesis_hash,
            epoch_schedule,
            slots_per_rotation: genesis.leader_slots_per_rotation,
            ticks_per_slot: genesis.ticks_per_slot,
            hashes_per_tick: genesis.hashes_per_tick,
            slash_penalty_bps: genesis.slash_penalty_bps,
        };
        let root = RootState {
            slot,
            accounts: root_accounts,
            status,
        };
        Ok(Arc::new(Bank {
            slot,
            parent_slot: fields.parent_slot,
            parent_hash: fields.parent_hash,
            epoch: fields.epoch,
            collector: fields.collector,
            collector_key: Prehashed::new(fields.collector),
            config: Arc::new(config),
            parent: RwLock::new(None),
            root: Arc::new(RwLock::new(root)),
            accounts: PrehashMap::default(),
            status: PrehashMap::default(),
            blockhash_queue: queue,
            lt_hash,
            stakes: Arc::new(stakes),
            epoch_stakes: Arc::new(epoch_stakes),
            offenses: Arc::new(fields.offenses.into_iter().collect()),
            penalties: Vec::new(),
            signature_count: fields.signature_count,
            collected_fees: fields.collected_fees,
            frozen: Some(Frozen {
                hash: fields.bank_hash,
                block_id: fields.block_id,
            }),
        }))
    }
}
