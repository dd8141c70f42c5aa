//! The bank: one slot's account state, built on its parent's.
//!
//! A bank holds only what its slot changed (balances, processed signatures) and reads the
//! rest through its unrooted ancestors and then the rooted state, which every bank
//! descending from the root shares. Sibling forks share their common ancestors and never
//! see each other's changes. Rooting a bank ([`Bank::squash`]) folds its chain into the
//! rooted state and cuts its parent pointer, so chains never grow without bound.
//!
//! A bank is mutable (`&mut`) while its slot is being executed and immutable once frozen
//! ([`Bank::freeze`]): only frozen banks can be parents, so the banks that children share
//! through `Arc` never change, except for the cut parent pointer of a squashed bank.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use bb_core::{Genesis, Hash, Pubkey, Signature, Slot, Transaction, hashv};
use rayon::prelude::*;

use crate::blockhash_queue::BlockhashQueue;
use crate::error::{BankError, ScheduleError};
use crate::leader_schedule::{DEFAULT_MIN_ROTATIONS, LeaderSchedule, leader_schedule_seed};
use crate::lt_hash::LtHash;
use crate::prehash::{PrehashMap, Prehashed};
use crate::slashing::{Offenses, Penalty, add_epoch_leaves, enter_epoch};
use crate::stakes::{Epoch, EpochSchedule, Stakes};

/// Network parameters every bank of a network shares (from genesis).
#[derive(Debug)]
pub(crate) struct BankConfig {
    pub(crate) genesis_hash: Hash,
    pub(crate) epoch_schedule: EpochSchedule,
    pub(crate) slots_per_rotation: u64,
    pub(crate) ticks_per_slot: u64,
    pub(crate) hashes_per_tick: u64,
    pub(crate) slash_penalty_bps: u32,
}

/// The state as of the root, shared by the root and all its descendants.
#[derive(Debug, Default)]
pub(crate) struct RootState {
    pub(crate) slot: Slot,
    /// Non-zero balances only.
    pub(crate) accounts: PrehashMap<Pubkey, u64>,
    /// Processed signatures by recent blockhash, with their slot; a blockhash's entry is
    /// dropped once it leaves the root's blockhash queue (no descendant can accept it).
    pub(crate) status: HashMap<Hash, PrehashMap<Signature, Slot>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Frozen {
    pub(crate) hash: Hash,
    pub(crate) block_id: Hash,
}

/// One slot's bank. See the module documentation.
pub struct Bank {
    pub(crate) slot: Slot,
    pub(crate) parent_slot: Slot,
    /// The parent's bank hash (the genesis hash for the genesis bank).
    pub(crate) parent_hash: Hash,
    pub(crate) epoch: Epoch,
    /// Receives the fees: the slot's leader.
    pub(crate) collector: Pubkey,
    pub(crate) collector_key: Prehashed<Pubkey>,
    pub(crate) config: Arc<BankConfig>,
    pub(crate) parent: RwLock<Option<Arc<Bank>>>,
    pub(crate) root: Arc<RwLock<RootState>>,
    /// Balances this slot wrote (zero included: it shadows the ancestors' value).
    pub(crate) accounts: PrehashMap<Pubkey, u64>,
    /// Signatures processed in this slot, with their recent blockhash.
    pub(crate) status: PrehashMap<Signature, Hash>,
    pub(crate) blockhash_queue: BlockhashQueue,
    pub(crate) lt_hash: LtHash,
    pub(crate) stakes: Arc<Stakes>,
    /// Stakes as of the start of each recent epoch (the leader schedule's input).
    pub(crate) epoch_stakes: Arc<BTreeMap<Epoch, Arc<Stakes>>>,
    /// Slashing offenses this fork recorded and still remembers, with the epoch each was
    /// recorded in (see [`crate::slashing`]).
    pub(crate) offenses: Offenses,
    /// The stake cuts this bank made on entering its epoch.
    pub(crate) penalties: Vec<Penalty>,
    pub(crate) signature_count: u64,
    pub(crate) collected_fees: u64,
    pub(crate) frozen: Option<Frozen>,
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// `hashv(parent bank hash, poh_end, state hash, signature count as u64 LE)`.
pub fn bank_hash(
    parent_hash: &Hash,
    poh_end: &Hash,
    state_hash: &Hash,
    signature_count: u64,
) -> Hash {
    hashv(&[
        &parent_hash.0,
        &poh_end.0,
        &state_hash.0,
        &signature_count.to_le_bytes(),
    ])
}

impl Bank {
    /// The frozen bank of slot 0: genesis accounts and stakes. Its block id and blockhash
    /// are the genesis hash (the first block's `parent_id` and `poh_start`), and its hash
    /// is [`bank_hash`] with the genesis hash as parent and `poh_end`, and no signatures.
    pub fn new_genesis(genesis: &Genesis) -> Result<Arc<Bank>, BankError> {
        genesis.validate()?;
        let genesis_hash = genesis.hash();
        let mut root = RootState::default();
        let mut lt_hash = LtHash::identity();
        for account in &genesis.accounts {
            if account.balance != 0 {
                root.accounts
                    .insert(Prehashed::new(account.address), account.balance);
                lt_hash.add_account(&account.address, account.balance);
            }
        }
        let stakes = Stakes::from_genesis(genesis);
        for (validator, stake) in stakes.iter() {
            lt_hash.add_stake(validator, *stake);
        }
        add_epoch_leaves(&mut lt_hash, 0, &stakes);
        let hash = bank_hash(&genesis_hash, &genesis_hash, &lt_hash.checksum(), 0);
        let stakes = Arc::new(stakes);
        let config = BankConfig {
            genesis_hash,
            epoch_schedule: EpochSchedule::new(genesis.slots_per_epoch),
            slots_per_rotation: genesis.leader_slots_per_rotation,
            ticks_per_slot: genesis.ticks_per_slot,
            hashes_per_tick: genesis.hashes_per_tick,
            slash_penalty_bps: genesis.slash_penalty_bps,
        };
        Ok(Arc::new(Bank {
            slot: 0,
            parent_slot: 0,
            parent_hash: genesis_hash,
            epoch: 0,
            collector: Pubkey::default(),
            collector_key: Prehashed::new(Pubkey::default()),
            config: Arc::new(config),
            parent: RwLock::new(None),
            root: Arc::new(RwLock::new(root)),
            accounts: PrehashMap::default(),
            status: PrehashMap::default(),
            blockhash_queue: BlockhashQueue::new(genesis_hash),
            lt_hash,
            epoch_stakes: Arc::new(BTreeMap::from([(0, stakes.clone())])),
            stakes,
            offenses: Offenses::default(),
            penalties: Vec::new(),
            signature_count: 0,
            collected_fees: 0,
            frozen: Some(Frozen {
                hash,
                block_id: genesis_hash,
            }),
        }))
    }

    /// An empty bank for `slot` on a frozen `parent`, paying fees to `collector` (the
    /// slot's leader).
    pub fn new_from_parent(
        parent: &Arc<Bank>,
        slot: Slot,
        collector: Pubkey,
    ) -> Result<Bank, BankError> {
        let Some(frozen) = parent.frozen else {
            return Err(BankError::ParentNotFrozen { slot: parent.slot });
        };
        if slot <= parent.slot {
            return Err(BankError::SlotNotAfterParent {
                slot,
                parent: parent.slot,
            });
        }
        let epoch = parent.config.epoch_schedule.epoch(slot);
        let mut lt_hash = parent.lt_hash.clone();
        let (stakes, epoch_stakes, offenses, penalties) = if epoch > parent.epoch {
            let t = enter_epoch(
                parent.config.epoch_schedule,
                parent.config.slash_penalty_bps,
                parent.epoch,
                epoch,
                &parent.stakes,
                &parent.epoch_stakes,
                &parent.offenses,
                &mut lt_hash,
            );
            (t.stakes, t.epoch_stakes, t.offenses, t.penalties)
        } else {
            (
                parent.stakes.clone(),
                parent.epoch_stakes.clone(),
                parent.offenses.clone(),
                Vec::new(),
            )
        };
        Ok(Bank {
            slot,
            parent_slot: parent.slot,
            parent_hash: frozen.hash,
            epoch,
            collector,
            collector_key: Prehashed::new(collector),
            config: parent.config.clone(),
            parent: RwLock::new(Some(parent.clone())),
            root: parent.root.clone(),
            accounts: PrehashMap::default(),
            status: PrehashMap::default(),
            blockhash_queue: parent.blockhash_queue.clone(),
            lt_hash,
            stakes,
            epoch_stakes,
            offenses,
            penalties,
            signature_count: 0,
            collected_fees: 0,
            frozen: None,
        })
    }

    /// Ends the slot: folds the changed accounts into the state hash, computes the bank
    /// hash and registers `poh_end` (the block's last entry hash) as a recent blockhash.
    /// `block_id` is the id of the block this bank executed.
    pub fn freeze(&mut self, poh_end: Hash, block_id: Hash) -> Result<Hash, BankError> {
        if self.frozen.is_some() {
            return Err(BankError::AlreadyFrozen { slot: self.slot });
        }
        Ok(self.freeze_unchecked(poh_end, block_id))
    }

    pub(crate) fn freeze_unchecked(&mut self, poh_end: Hash, block_id: Hash) -> Hash {
        let ancestors = self.ancestors();
        let changed: Vec<(&Prehashed<Pubkey>, &u64)> = self.accounts.iter().collect();
        let this = &*self;
        let delta = changed
            .par_iter()
            .with_min_len(16)
            .fold(LtHash::identity, |mut delta, (key, new)| {
                let old = this.load_before(&ancestors, key);
                if old != **new {
                    delta.remove_account(key.key(), old);
                    delta.add_account(key.key(), **new);
                }
                delta
            })
            .reduce(LtHash::identity, |mut a, b| {
                a.add(&b);
                a
            });
        self.lt_hash.add(&delta);
        let hash = bank_hash(
            &self.parent_hash,
            &poh_end,
            &self.lt_hash.checksum(),
            self.signature_count,
        );
        self.blockhash_queue.register(poh_end);
        self.frozen = Some(Frozen { hash, block_id });
        hash
    }

    /// Sets a validator's stake (zero removes it), e.g. after slashing; returns the old
    /// stake. The change enters the state hash now and the leader schedule two epochs on.
    pub fn apply_stake_change(
        &mut self,
        validator: Pubkey,
        new_stake: u64,
    ) -> Result<u64, BankError> {
        if self.frozen.is_some() {
            return Err(BankError::AlreadyFrozen { slot: self.slot });
        }
        let old = Arc::make_mut(&mut self.stakes).apply_stake_change(validator, new_stake);
        self.lt_hash.remove_stake(&validator, old);
        self.lt_hash.add_stake(&validator, new_stake);
        Ok(old)
    }

    /// Folds this frozen bank and its unrooted ancestors into the rooted state and cuts
    /// its parent pointer: this bank becomes the root. Returns every account written since
    /// the previous root with its balance now (0: the account no longer exists), by pubkey.
    ///
    /// The bank must descend from the current root. Afterwards, banks that do not descend
    /// from this one read a state that is not theirs: drop them ([`crate::BankForks`]
    /// does).
    pub fn squash(&self) -> Result<Vec<(Pubkey, u64)>, BankError> {
        if self.frozen.is_none() {
            return Err(BankError::NotFrozen { slot: self.slot });
        }
        // self, parent, ..., up to the bank with no parent (the current root).
        let ancestors = self.ancestors();
        let top_slot = ancestors.last().map_or(self.slot, |b| b.slot);
        let mut root = self.root.write().unwrap_or_else(PoisonError::into_inner);
        if top_slot != root.slot {
            return Err(BankError::NotOnRootedFork {
                slot: self.slot,
                root: root.slot,
            });
        }
        if ancestors.is_empty() {
            return Ok(Vec::new());
        }
        let newly_rooted = ancestors[..ancestors.len() - 1]
            .iter()
            .rev()
            .map(|b| &**b)
            .chain(std::iter::once(self));
        let mut changes: BTreeMap<Pubkey, u64> = BTreeMap::new();
        for bank in newly_rooted {
            for (key, balance) in &bank.accounts {
                changes.insert(*key.key(), *balance);
                if *balance == 0 {
                    root.accounts.remove(key);
                } else {
                    root.accounts.insert(*key, *balance);
                }
            }
            for (sig, recent) in &bank.status {
                root.status
                    .entry(*recent)
                    .or_default()
                    .insert(*sig, bank.slot);
            }
        }
        root.status
            .retain(|recent, _| self.blockhash_queue.contains(recent));
        root.slot = self.slot;
        drop(root);
        *self.parent.write().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(changes.into_iter().collect())
    }

    /// The unrooted ancestors, nearest first; the last one is the root (as of the call).
    pub(crate) fn ancestors(&self) -> Vec<Arc<Bank>> {
        let mut chain = Vec::new();
        let mut next = self.parent();
        while let Some(bank) = next {
            next = bank.parent();
            chain.push(bank);
        }
        chain
    }

    /// A balance as this bank sees it: its own writes, then the ancestors', then the root.
    pub(crate) fn load(&self, ancestors: &[Arc<Bank>], key: &Prehashed<Pubkey>) -> u64 {
        match self.accounts.get(key) {
            Some(balance) => *balance,
            None => self.load_before(ancestors, key),
        }
    }

    /// A balance as the parent left it.
    fn load_before(&self, ancestors: &[Arc<Bank>], key: &Prehashed<Pubkey>) -> u64 {
        // Reading a level the root already folded in is harmless: the nearest level that
        // wrote the account still wins, and the root agrees with it.
        for bank in ancestors {
            if let Some(balance) = bank.accounts.get(key) {
                return *balance;
            }
        }
        read(&self.root).accounts.get(key).copied().unwrap_or(0)
    }

    /// Whether `sig` was processed on this fork (this bank, an ancestor, or rooted).
    pub(crate) fn is_processed(
        &self,
        ancestors: &[Arc<Bank>],
        sig: &Prehashed<Signature>,
        recent_blockhash: &Hash,
    ) -> bool {
        self.status.contains_key(sig)
            || ancestors.iter().any(|b| b.status.contains_key(sig))
            || read(&self.root)
                .status
                .get(recent_blockhash)
                .is_some_and(|sigs| sigs.contains_key(sig))
    }

    /// Whether a transaction was already executed on this fork (this bank or an
    /// ancestor, or the root within its blockhash's life): it can never land here again.
    /// The ancestors are looked up once, so asking about many costs one lookup per bank.
    pub fn already_processed(&self) -> impl Fn(&Transaction) -> bool + '_ {
        let ancestors = self.ancestors();
        move |tx| {
            self.is_processed(
                &ancestors,
                &Prehashed::new(tx.signature),
                &tx.transfer.recent_blockhash,
            )
        }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }

    pub fn parent_slot(&self) -> Slot {
        self.parent_slot
    }

    /// The parent bank, until this bank is squashed into the root.
    pub fn parent(&self) -> Option<Arc<Bank>> {
        read(&self.parent).clone()
    }

    /// The parent's bank hash.
    pub fn parent_hash(&self) -> Hash {
        self.parent_hash
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Who receives this slot's fees: its leader.
    pub fn collector(&self) -> Pubkey {
        self.collector
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// The bank hash, once frozen.
    pub fn hash(&self) -> Option<Hash> {
        self.frozen.map(|f| f.hash)
    }

    /// The id of the block this bank executed (the genesis hash for slot 0), once frozen.
    pub fn block_id(&self) -> Option<Hash> {
        self.frozen.map(|f| f.block_id)
    }

    /// The newest blockhash this bank knows: its own `poh_end` once frozen (the next
    /// block's `poh_start`, and what clients sign against), its parent's before.
    pub fn last_blockhash(&self) -> Hash {
        self.blockhash_queue.last()
    }

    pub fn is_blockhash_valid(&self, blockhash: &Hash) -> bool {
        self.blockhash_queue.contains(blockhash)
    }

    pub fn blockhash_queue(&self) -> &BlockhashQueue {
        &self.blockhash_queue
    }

    /// The incremental lattice hash of all balances, stakes, epoch stakes and recorded
    /// offenses (final once frozen).
    pub fn lt_hash(&self) -> &LtHash {
        &self.lt_hash
    }

    /// The state hash that enters the bank hash: the lattice hash's checksum.
    pub fn state_hash(&self) -> Hash {
        self.lt_hash.checksum()
    }

    /// The state hash computed from every account, stake, epoch stake and recorded
    /// offense, from scratch: O(accounts).
    /// Equal to [`Bank::state_hash`] on a frozen bank; for checks and snapshot verification.
    pub fn recompute_state_hash(&self) -> Hash {
        let mut h = LtHash::identity();
        for (pubkey, balance) in self.accounts() {
            h.add_account(&pubkey, balance);
        }
        for (validator, stake) in self.stakes.iter() {
            h.add_stake(validator, *stake);
        }
        for (epoch, stakes) in self.epoch_stakes.iter() {
            add_epoch_leaves(&mut h, *epoch, stakes);
        }
        for (offense, recorded) in self.offenses.iter() {
            h.add_offense(offense, *recorded);
        }
        h.checksum()
    }

    /// Transactions (= signatures) executed in this slot.
    pub fn signature_count(&self) -> u64 {
        self.signature_count
    }

    /// Fees paid to the collector in this slot.
    pub fn collected_fees(&self) -> u64 {
        self.collected_fees
    }

    pub fn balance(&self, pubkey: &Pubkey) -> u64 {
        self.load(&self.ancestors(), &Prehashed::new(*pubkey))
    }

    /// Every account with a non-zero balance, by pubkey: O(all accounts).
    pub fn accounts(&self) -> Vec<(Pubkey, u64)> {
        let ancestors = self.ancestors();
        let mut all: BTreeMap<Pubkey, u64> = read(&self.root)
            .accounts
            .iter()
            .map(|(k, v)| (*k.key(), *v))
            .collect();
        for bank in ancestors.iter().rev().map(|b| &**b).chain([self]) {
            for (key, balance) in &bank.accounts {
                all.insert(*key.key(), *balance);
            }
        }
        all.into_iter().filter(|(_, b)| *b != 0).collect()
    }

    /// The slot a transaction was executed in, if it was on this fork and its
    /// blockhash has not expired at the root.
    pub fn signature_status(&self, signature: &Signature) -> Option<Slot> {
        let key = Prehashed::new(*signature);
        if self.status.contains_key(&key) {
            return Some(self.slot);
        }
        let ancestors = self.ancestors();
        if let Some(bank) = ancestors.iter().find(|b| b.status.contains_key(&key)) {
            return Some(bank.slot);
        }
        read(&self.root)
            .status
            .values()
            .find_map(|sigs| sigs.get(&key).copied())
    }

    /// The current stakes.
    pub fn stakes(&self) -> &Stakes {
        &self.stakes
    }

    /// The stakes as of the start of `epoch`, if this bank still holds them (it holds its
    /// own epoch's and the one before). Stable through the epoch: what votes are weighed by.
    pub fn epoch_stakes(&self, epoch: Epoch) -> Option<Arc<Stakes>> {
        self.epoch_stakes.get(&epoch).cloned()
    }

    pub fn epoch_schedule(&self) -> EpochSchedule {
        self.config.epoch_schedule
    }

    pub fn genesis_hash(&self) -> Hash {
        self.config.genesis_hash
    }

    pub fn ticks_per_slot(&self) -> u64 {
        self.config.ticks_per_slot
    }

    pub fn hashes_per_tick(&self) -> u64 {
        self.config.hashes_per_tick
    }

    /// The leader schedule of `epoch`, from the stakes at the start of `epoch - 1` (the
    /// genesis stakes for epochs 0 and 1). A bank knows its own epoch's and the next; for a
    /// later epoch it answers as if no bank came between it and that epoch, which is
    /// right for its children's slots (what replay asks). Older epochs are forgotten.
    /// Cheap (O(rotations)), but worth caching per epoch.
    pub fn leader_schedule(&self, epoch: Epoch) -> Result<LeaderSchedule, ScheduleError> {
        let stakes_epoch = epoch.saturating_sub(1);
        let stakes = if stakes_epoch > self.epoch {
            &self.stakes
        } else {
            self.epoch_stakes
                .get(&stakes_epoch)
                .ok_or(ScheduleError::UnknownEpoch { epoch })?
        };
        LeaderSchedule::new(
            epoch,
            stakes,
            leader_schedule_seed(&self.config.genesis_hash, epoch),
            self.config.epoch_schedule.slots_per_epoch,
            self.config.slots_per_rotation,
            DEFAULT_MIN_ROTATIONS,
        )
    }

    /// The leader of `slot` by [`Bank::leader_schedule`].
    pub fn slot_leader(&self, slot: Slot) -> Result<Pubkey, ScheduleError> {
        let epoch = self.config.epoch_schedule.epoch(slot);
        self.leader_schedule(epoch)?
            .leader_at(slot)
            .ok_or(ScheduleError::UnknownEpoch { epoch })
    }
}

impl fmt::Debug for Bank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bank")
            .field("slot", &self.slot)
            .field("parent_slot", &self.parent_slot)
            .field("hash", &self.hash())
            .field("collector", &self.collector)
            .field("changed_accounts", &self.accounts.len())
            .field("signature_count", &self.signature_count)
            .finish_non_exhaustive()
    }
}
