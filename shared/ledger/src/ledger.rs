//! [`Ledger`]: the store itself. Every public write is one redb write transaction.

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    Table, WriteTransaction,
};

use crate::error::StorageContext;
use crate::slot_meta::parent_is_valid;
use crate::tables::{
    ACCOUNTS, BANK_HASHES, BLOCKS, EVIDENCE, FORMAT, FORMAT_KEY, FORMAT_VERSION, PENALTIES, ROOTS,
    SHREDS, SLOT_META, TOWER, TOWER_KEY, VOTES,
};
use crate::{LedgerError, SlotMeta};

/// Largest shred accepted: the IPv6 minimum MTU, above the 1216-byte shreds of turbine.
pub const MAX_SHRED_BYTES: usize = 1280;
/// Largest encoded block accepted.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;
/// Largest persisted tower accepted.
pub const MAX_TOWER_BYTES: usize = 64 << 10;
/// Largest single account accepted.
pub const MAX_ACCOUNT_BYTES: usize = 10 << 20;
/// Largest stored vote accepted.
pub const MAX_VOTE_BYTES: usize = 64 << 10;
/// A stored slashing penalty: `(epoch, offender, stake before, stake after)`.
pub type PenaltyRow = (u64, [u8; 32], u64, u64);

/// Largest record of slashing evidence accepted.
pub const MAX_EVIDENCE_RECORD_BYTES: usize = 64 << 10;

/// The database file inside the ledger directory.
pub const LEDGER_FILE_NAME: &str = "ledger.redb";

/// The page cache a ledger keeps unless told otherwise ([`Ledger::open_with_cache`]).
/// redb's own default is 1 GiB per database; a localnet runs many nodes on one machine.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// The lowest and highest voter keys, bounding the votes of one slot.
const LOWEST_KEY: [u8; 32] = [0; 32];
const HIGHEST_KEY: [u8; 32] = [0xff; 32];

/// Whether a shred carries block data or erasure-coding parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShredKind {
    /// A data shred, stored with kind byte 0.
    Data,
    /// A coding (parity) shred, stored with kind byte 1.
    Code,
}

impl ShredKind {
    /// The byte stored in the shred key.
    pub fn as_u8(self) -> u8 {
        match self {
            ShredKind::Data => 0,
            ShredKind::Code => 1,
        }
    }

    /// The kind a stored byte names, if any.
    pub fn from_u8(byte: u8) -> Option<ShredKind> {
        match byte {
            0 => Some(ShredKind::Data),
            1 => Some(ShredKind::Code),
            _ => None,
        }
    }
}

/// One shred to store with [`Ledger::insert_shreds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShredRecord<'a> {
    /// The slot the shred belongs to.
    pub slot: u64,
    /// Its index within the slot, per kind.
    pub index: u32,
    /// Data or code.
    pub kind: ShredKind,
    /// The shred as received, already encoded by the caller.
    pub bytes: &'a [u8],
}

/// Everything that becomes durable when a slot is rooted, written by [`Ledger::commit_root`]
/// in one transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootCommit<'a> {
    /// The new root; must be above every root already stored.
    pub slot: u64,
    /// The id (hash) of the rooted block.
    pub block_id: [u8; 32],
    /// The bank hash after executing the rooted block.
    pub bank_hash: [u8; 32],
    /// The slots this root roots along with it: its ancestors above the previous root, as
    /// `(slot, block id, bank hash)`, ascending, each below `slot` and above every stored
    /// root. Recording them makes the ROOTS table the whole rooted chain, slot by slot.
    pub rooted_ancestors: &'a [(u64, [u8; 32], [u8; 32])],
    /// Accounts changed since the previous root, with their new encoded content.
    pub accounts: &'a [([u8; 32], Vec<u8>)],
    /// Accounts that no longer exist as of this root.
    pub removed_accounts: &'a [[u8; 32]],
    /// When set, delete every shred of slots below this one. It may not exceed `slot`: shreds
    /// of slots past the root may belong to forks still being decided.
    pub purge_below: Option<u64>,
}

/// The validator's store: one redb database file in the ledger directory.
///
/// Methods take `&self` and are blocking; redb runs one write transaction at a time and lets
/// reads proceed beside it, so an `Arc<Ledger>` may be shared between threads. From async code,
/// call it through `spawn_blocking`.
#[derive(Debug)]
pub struct Ledger {
    pub(crate) db: Database,
    path: PathBuf,
}

impl Ledger {
    /// Opens the ledger in `dir`, creating the directory, the file `ledger.redb` and every
    /// table if they do not exist yet. After a crash redb recovers the last committed
    /// transaction here, before this returns.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`Ledger::open`] with a page cache of at most `cache_bytes` (pages read and
    /// written lately; the cache is most of a quiet node's memory once the file outgrows
    /// it).
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|source| LedgerError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LEDGER_FILE_NAME);
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(&path)
            .during("opening the database file")?;
        let ledger = Ledger { db, path };
        ledger.create_tables()?;
        Ok(ledger)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates every table and the format marker in one transaction, so a crash during the
    /// first open leaves either no tables or all of them. Opening a table that exists is a
    /// no-op, so this also runs on later opens and checks the format.
    fn create_tables(&self) -> Result<(), LedgerError> {
        const CONTEXT: &str = "creating the tables";
        self.write(CONTEXT, |txn| {
            let mut format = txn.open_table(FORMAT).during(CONTEXT)?;
            let found = format.get(FORMAT_KEY).during(CONTEXT)?.map(|v| v.value());
            match found {
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(LedgerError::UnsupportedFormat {
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
                None => {
                    format.insert(FORMAT_KEY, FORMAT_VERSION).during(CONTEXT)?;
                }
            }
            txn.open_table(SLOT_META).during(CONTEXT)?;
            txn.open_table(SHREDS).during(CONTEXT)?;
            txn.open_table(BLOCKS).during(CONTEXT)?;
            txn.open_table(ROOTS).during(CONTEXT)?;
            txn.open_table(BANK_HASHES).during(CONTEXT)?;
            txn.open_table(TOWER).during(CONTEXT)?;
            txn.open_table(VOTES).during(CONTEXT)?;
            txn.open_table(ACCOUNTS).during(CONTEXT)?;
            txn.open_table(EVIDENCE).during(CONTEXT)?;
            txn.open_table(PENALTIES).during(CONTEXT)?;
            Ok(())
        })
    }

    // ---- shreds ----

    /// Stores one shred unless a shred with the same slot, kind and index is already stored.
    /// Returns whether it was new. The first copy is kept: a different second copy is the
    /// caller's evidence of a duplicate block, to compare with [`Ledger::get_shred`].
    pub fn insert_shred(
        &self,
        slot: u64,
        index: u32,
        kind: ShredKind,
        bytes: &[u8],
    ) -> Result<bool, LedgerError> {
        const CONTEXT: &str = "inserting a shred";
        check_size("shred", bytes.len(), MAX_SHRED_BYTES)?;
        self.write(CONTEXT, |txn| {
            let mut shreds = txn.open_table(SHREDS).during(CONTEXT)?;
            insert_shred_if_absent(&mut shreds, (slot, kind.as_u8(), index), bytes, CONTEXT)
        })
    }

    /// [`Ledger::insert_shred`] for many shreds in one transaction (one disk sync for all).
    /// Returns, for each record in order, whether it was new. Nothing is written if any
    /// record is too large.
    pub fn insert_shreds(&self, records: &[ShredRecord<'_>]) -> Result<Vec<bool>, LedgerError> {
        const CONTEXT: &str = "inserting shreds";
        for record in records {
            check_size("shred", record.bytes.len(), MAX_SHRED_BYTES)?;
        }
        self.write(CONTEXT, |txn| {
            let mut shreds = txn.open_table(SHREDS).during(CONTEXT)?;
            records
                .iter()
                .map(|r| {
                    let key = (r.slot, r.kind.as_u8(), r.index);
                    insert_shred_if_absent(&mut shreds, key, r.bytes, CONTEXT)
                })
                .collect()
        })
    }

    /// One stored shred.
    pub fn get_shred(
        &self,
        slot: u64,
        index: u32,
        kind: ShredKind,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        const CONTEXT: &str = "reading a shred";
        let shreds = self.read(CONTEXT)?.open_table(SHREDS).during(CONTEXT)?;
        let value = shreds
            .get((slot, kind.as_u8(), index))
            .during(CONTEXT)?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    /// Every stored shred of one kind of one slot, by ascending index.
    pub fn shreds_in_slot(
        &self,
        slot: u64,
        kind: ShredKind,
    ) -> Result<Vec<(u32, Vec<u8>)>, LedgerError> {
        const CONTEXT: &str = "reading the shreds of a slot";
        let shreds = self.read(CONTEXT)?.open_table(SHREDS).during(CONTEXT)?;
        let k = kind.as_u8();
        let range = shreds
            .range((slot, k, 0u32)..=(slot, k, u32::MAX))
            .during(CONTEXT)?;
        range
            .map(|entry| {
                let (key, value) = entry.during(CONTEXT)?;
                Ok((key.value().2, value.value().to_vec()))
            })
            .collect()
    }

    // ---- slot meta and blocks ----

    /// Stores the meta of one slot, replacing any earlier one.
    pub fn put_slot_meta(&self, slot: u64, meta: &SlotMeta) -> Result<(), LedgerError> {
        const CONTEXT: &str = "writing slot meta";
        check_parent(slot, meta)?;
        self.write(CONTEXT, |txn| {
            let mut metas = txn.open_table(SLOT_META).during(CONTEXT)?;
            metas
                .insert(slot, meta.encode().as_slice())
                .during(CONTEXT)?;
            Ok(())
        })
    }

    /// The meta of one slot, if stored. Bytes that do not decode are an error, not a `None`.
    pub fn get_slot_meta(&self, slot: u64) -> Result<Option<SlotMeta>, LedgerError> {
        const CONTEXT: &str = "reading slot meta";
        let metas = self.read(CONTEXT)?.open_table(SLOT_META).during(CONTEXT)?;
        let Some(bytes) = metas.get(slot).during(CONTEXT)? else {
            return Ok(None);
        };
        decode_slot_meta(slot, bytes.value()).map(Some)
    }

    /// Stores a whole block and its slot meta together, so a block never exists without its
    /// meta. Replaces an earlier block of the slot. Not synced on its own: the block reaches
    /// the disk with the next synced commit ([`Ledger::save_tower`], a root,
    /// [`Ledger::sync`]), so a crash may lose the blocks stored since, which repair fetches
    /// again; it never tears one.
    pub fn put_block(&self, slot: u64, meta: &SlotMeta, block: &[u8]) -> Result<(), LedgerError> {
        const CONTEXT: &str = "writing a block";
        check_size("block", block.len(), MAX_BLOCK_BYTES)?;
        check_parent(slot, meta)?;
        self.write_unsynced(CONTEXT, |txn| {
            let mut metas = txn.open_table(SLOT_META).during(CONTEXT)?;
            metas
                .insert(slot, meta.encode().as_slice())
                .during(CONTEXT)?;
            let mut blocks = txn.open_table(BLOCKS).during(CONTEXT)?;
            blocks.insert(slot, block).during(CONTEXT)?;
            Ok(())
        })
    }

    /// Makes every commit so far durable (one synced, empty commit): for a writer that
    /// stores blocks with no tower or root of its own to sync them, e.g. a catch-up that
    /// must resume from what it already downloaded.
    pub fn sync(&self) -> Result<(), LedgerError> {
        const CONTEXT: &str = "syncing the ledger";
        self.write(CONTEXT, |_| Ok(()))
    }

    /// The encoded block of one slot, if stored.
    pub fn get_block(&self, slot: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        const CONTEXT: &str = "reading a block";
        let blocks = self.read(CONTEXT)?.open_table(BLOCKS).during(CONTEXT)?;
        let value = blocks
            .get(slot)
            .during(CONTEXT)?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    /// The slots in `range` that have a stored block, ascending.
    pub fn blocks_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<u64>, LedgerError> {
        const CONTEXT: &str = "listing blocks";
        let blocks = self.read(CONTEXT)?.open_table(BLOCKS).during(CONTEXT)?;
        let range = blocks.range(owned_bounds(&range)).during(CONTEXT)?;
        range
            .map(|entry| Ok(entry.during(CONTEXT)?.0.value()))
            .collect()
    }

    // ---- roots, bank hashes, accounts ----

    /// Makes a root durable in one transaction: the root and its block id, its bank hash,
    /// every changed and removed account, and the optional shred purge. A crash leaves either
    /// all of it or none of it.
    ///
    /// Refuses ([`LedgerError::RootNotForward`]) a slot at or below the highest stored root,
    /// and refuses a `purge_below` above `slot`; nothing is written then.
    pub fn commit_root(&self, commit: &RootCommit<'_>) -> Result<(), LedgerError> {
        const CONTEXT: &str = "committing a root";
        for (_, account) in commit.accounts {
            check_size("account", account.len(), MAX_ACCOUNT_BYTES)?;
        }
        if let Some(purge_below) = commit.purge_below
            && purge_below > commit.slot
        {
            return Err(LedgerError::Invalid {
                what: format!(
                    "purge below slot {purge_below} reaches past the new root {}",
                    commit.slot
                ),
            });
        }
        let mut previous = None;
        for (slot, _, _) in commit.rooted_ancestors {
            if *slot >= commit.slot || previous.is_some_and(|p| p >= *slot) {
                return Err(LedgerError::Invalid {
                    what: format!(
                        "rooted ancestor slot {slot} is not ascending below the root {}",
                        commit.slot
                    ),
                });
            }
            previous = Some(*slot);
        }
        self.write(CONTEXT, |txn| {
            let mut roots = txn.open_table(ROOTS).during(CONTEXT)?;
            let latest = roots.last().during(CONTEXT)?.map(|(slot, _)| slot.value());
            let lowest = commit
                .rooted_ancestors
                .first()
                .map_or(commit.slot, |(slot, _, _)| *slot);
            if let Some(latest) = latest
                && lowest <= latest
            {
                return Err(LedgerError::RootNotForward {
                    slot: lowest,
                    latest,
                });
            }
            let mut bank_hashes = txn.open_table(BANK_HASHES).during(CONTEXT)?;
            let chain = commit
                .rooted_ancestors
                .iter()
                .copied()
                .chain(std::iter::once((
                    commit.slot,
                    commit.block_id,
                    commit.bank_hash,
                )));
            for (slot, block_id, bank_hash) in chain {
                roots.insert(slot, &block_id).during(CONTEXT)?;
                bank_hashes.insert(slot, &bank_hash).during(CONTEXT)?;
            }

            let mut accounts = txn.open_table(ACCOUNTS).during(CONTEXT)?;
            for (pubkey, account) in commit.accounts {
                accounts
                    .insert(pubkey, account.as_slice())
                    .during(CONTEXT)?;
            }
            for pubkey in commit.removed_accounts {
                accounts.remove(pubkey).during(CONTEXT)?;
            }

            if let Some(purge_below) = commit.purge_below {
                let mut shreds = txn.open_table(SHREDS).during(CONTEXT)?;
                // The smallest key of slot `purge_below` bounds every shred below it.
                shreds
                    .retain_in(..(purge_below, 0u8, 0u32), |_, _| false)
                    .during(CONTEXT)?;
            }
            Ok(())
        })
    }

    /// The highest root and its block id, if any root is stored.
    pub fn latest_root(&self) -> Result<Option<(u64, [u8; 32])>, LedgerError> {
        const CONTEXT: &str = "reading the latest root";
        let roots = self.read(CONTEXT)?.open_table(ROOTS).during(CONTEXT)?;
        let last = roots
            .last()
            .during(CONTEXT)?
            .map(|(slot, id)| (slot.value(), *id.value()));
        Ok(last)
    }

    /// The roots in `range` with their block ids, ascending.
    pub fn roots_range(
        &self,
        range: impl RangeBounds<u64>,
    ) -> Result<Vec<(u64, [u8; 32])>, LedgerError> {
        const CONTEXT: &str = "listing roots";
        let roots = self.read(CONTEXT)?.open_table(ROOTS).during(CONTEXT)?;
        let range = roots.range(owned_bounds(&range)).during(CONTEXT)?;
        range
            .map(|entry| {
                let (slot, id) = entry.during(CONTEXT)?;
                Ok((slot.value(), *id.value()))
            })
            .collect()
    }

    /// The bank hash of a rooted slot.
    pub fn bank_hash(&self, slot: u64) -> Result<Option<[u8; 32]>, LedgerError> {
        const CONTEXT: &str = "reading a bank hash";
        let hashes = self
            .read(CONTEXT)?
            .open_table(BANK_HASHES)
            .during(CONTEXT)?;
        let hash = hashes.get(slot).during(CONTEXT)?.map(|v| *v.value());
        Ok(hash)
    }

    /// One account as of the latest root.
    pub fn get_account(&self, pubkey: &[u8; 32]) -> Result<Option<Vec<u8>>, LedgerError> {
        const CONTEXT: &str = "reading an account";
        let accounts = self.read(CONTEXT)?.open_table(ACCOUNTS).during(CONTEXT)?;
        let value = accounts
            .get(pubkey)
            .during(CONTEXT)?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    /// Every account by ascending pubkey, read lazily from one snapshot of the database: roots
    /// committed while iterating are not seen. Memory stays bounded by one account at a time.
    ///
    /// The snapshot keeps the pages it reads from alive, so drop the iterator when done; while
    /// it lives, [`Ledger::check_integrity`] refuses to run.
    pub fn accounts_iter(&self) -> Result<AccountsIter, LedgerError> {
        const CONTEXT: &str = "iterating accounts";
        let accounts = self.read(CONTEXT)?.open_table(ACCOUNTS).during(CONTEXT)?;
        // A read-only table's range owns a handle on its transaction, so it may outlive both.
        let inner = accounts.range::<&[u8; 32]>(..).during(CONTEXT)?;
        Ok(AccountsIter { inner })
    }

    /// How many accounts are stored.
    pub fn account_count(&self) -> Result<u64, LedgerError> {
        const CONTEXT: &str = "counting accounts";
        let accounts = self.read(CONTEXT)?.open_table(ACCOUNTS).during(CONTEXT)?;
        accounts.len().during(CONTEXT)
    }

    // ---- tower and votes ----

    /// Replaces the persisted tower. Returns only once the tower is on disk (a synced
    /// commit, as every [`Ledger::write`]): the validator sends a vote only after this
    /// returns, so a restart can never double-vote.
    pub fn save_tower(&self, tower: &[u8]) -> Result<(), LedgerError> {
        const CONTEXT: &str = "saving the tower";
        check_size("tower", tower.len(), MAX_TOWER_BYTES)?;
        self.write(CONTEXT, |txn| {
            let mut table = txn.open_table(TOWER).during(CONTEXT)?;
            table.insert(TOWER_KEY, tower).during(CONTEXT)?;
            Ok(())
        })
    }

    /// The persisted tower, if one was ever saved.
    pub fn load_tower(&self) -> Result<Option<Vec<u8>>, LedgerError> {
        const CONTEXT: &str = "loading the tower";
        let table = self.read(CONTEXT)?.open_table(TOWER).during(CONTEXT)?;
        let value = table
            .get(TOWER_KEY)
            .during(CONTEXT)?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    /// The tower stored in the ledger in `dir`, read without writing a byte of it (a
    /// read-only open: the file stays exactly as it was, e.g. for a sync that must leave
    /// a ledger untouched unless it replaces it). `None` if there is no ledger or no tower.
    /// Fails if the ledger is open elsewhere (its validator runs).
    pub fn read_tower_of(dir: &Path) -> Result<Option<Vec<u8>>, LedgerError> {
        const CONTEXT: &str = "reading the tower read-only";
        let path = dir.join(LEDGER_FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let db = match redb::ReadOnlyDatabase::open(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(redb::DatabaseError::DatabaseAlreadyOpen).during(CONTEXT);
            }
            Err(_) => {
                // Not closed cleanly (a crash): it needs a repair, which writes. Repair a
                // copy instead, so the original stays exactly as it was.
                let copy = tempfile::tempdir().map_err(|source| LedgerError::CreateDir {
                    path: std::env::temp_dir(),
                    source,
                })?;
                std::fs::copy(&path, copy.path().join(LEDGER_FILE_NAME)).map_err(|source| {
                    LedgerError::CreateDir {
                        path: copy.path().to_path_buf(),
                        source,
                    }
                })?;
                return Ledger::open(copy.path())?.load_tower();
            }
        };
        let txn = db.begin_read().during(CONTEXT)?;
        let table = match txn.open_table(TOWER) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).during(CONTEXT),
        };
        let value = table
            .get(TOWER_KEY)
            .during(CONTEXT)?
            .map(|v| v.value().to_vec());
        Ok(value)
    }

    /// Stores a vote seen for `slot` from `voter`, replacing that voter's earlier one for the
    /// same slot.
    pub fn put_vote(&self, slot: u64, voter: &[u8; 32], vote: &[u8]) -> Result<(), LedgerError> {
        const CONTEXT: &str = "storing a vote";
        check_size("vote", vote.len(), MAX_VOTE_BYTES)?;
        self.write(CONTEXT, |txn| {
            let mut votes = txn.open_table(VOTES).during(CONTEXT)?;
            votes.insert((slot, voter), vote).during(CONTEXT)?;
            Ok(())
        })
    }

    /// Stores many votes in one write transaction (a node batches the votes it sees per
    /// slot). Each is `(slot, voter, vote bytes)`. Not synced on its own, like
    /// [`Ledger::put_block`]: a crash may lose the latest batches, which gossip carries
    /// again.
    pub fn put_votes(&self, votes: &[(u64, [u8; 32], Vec<u8>)]) -> Result<(), LedgerError> {
        const CONTEXT: &str = "storing votes";
        for (_, _, vote) in votes {
            check_size("vote", vote.len(), MAX_VOTE_BYTES)?;
        }
        if votes.is_empty() {
            return Ok(());
        }
        self.write_unsynced(CONTEXT, |txn| {
            let mut table = txn.open_table(VOTES).during(CONTEXT)?;
            for (slot, voter, vote) in votes {
                table
                    .insert((*slot, voter), vote.as_slice())
                    .during(CONTEXT)?;
            }
            Ok(())
        })
    }

    /// Every stored vote for `slot`, by ascending voter.
    #[expect(
        clippy::type_complexity,
        reason = "(voter, vote) pairs read more plainly than an alias"
    )]
    pub fn votes_for_slot(&self, slot: u64) -> Result<Vec<([u8; 32], Vec<u8>)>, LedgerError> {
        const CONTEXT: &str = "reading votes";
        let votes = self.read(CONTEXT)?.open_table(VOTES).during(CONTEXT)?;
        let range = votes
            .range((slot, &LOWEST_KEY)..=(slot, &HIGHEST_KEY))
            .during(CONTEXT)?;
        range
            .map(|entry| {
                let (key, vote) = entry.during(CONTEXT)?;
                Ok((*key.value().1, vote.value().to_vec()))
            })
            .collect()
    }

    // ---- slashing ----

    /// Stores (or replaces) the record of the evidence of one offense: `(slot, offender,
    /// kind)`.
    pub fn put_evidence(
        &self,
        offense: (u64, &[u8; 32], u8),
        record: &[u8],
    ) -> Result<(), LedgerError> {
        const CONTEXT: &str = "storing slashing evidence";
        check_size("evidence record", record.len(), MAX_EVIDENCE_RECORD_BYTES)?;
        self.write(CONTEXT, |txn| {
            let mut table = txn.open_table(EVIDENCE).during(CONTEXT)?;
            table.insert(offense, record).during(CONTEXT)?;
            Ok(())
        })
    }

    /// The stored record of one offense's evidence.
    pub fn get_evidence(
        &self,
        offense: (u64, &[u8; 32], u8),
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        const CONTEXT: &str = "reading slashing evidence";
        let table = self.read(CONTEXT)?.open_table(EVIDENCE).during(CONTEXT)?;
        let value = table.get(offense).during(CONTEXT)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The newest `limit` evidence records by offense slot, newest first:
    /// `((slot, offender, kind), record)`.
    #[expect(
        clippy::type_complexity,
        reason = "the key tuple mirrors the table's key"
    )]
    pub fn evidence_newest(
        &self,
        limit: usize,
    ) -> Result<Vec<((u64, [u8; 32], u8), Vec<u8>)>, LedgerError> {
        const CONTEXT: &str = "listing slashing evidence";
        let table = self.read(CONTEXT)?.open_table(EVIDENCE).during(CONTEXT)?;
        table
            .iter()
            .during(CONTEXT)?
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.during(CONTEXT)?;
                let (slot, offender, kind) = key.value();
                Ok(((slot, *offender, kind), value.value().to_vec()))
            })
            .collect()
    }

    /// Records the penalties a rooted bank applied: `(epoch, offender, old, new)`.
    pub fn put_penalties(
        &self,
        penalties: &[(u64, [u8; 32], u64, u64)],
    ) -> Result<(), LedgerError> {
        const CONTEXT: &str = "storing slashing penalties";
        if penalties.is_empty() {
            return Ok(());
        }
        self.write(CONTEXT, |txn| {
            let mut table = txn.open_table(PENALTIES).during(CONTEXT)?;
            for (epoch, offender, old, new) in penalties {
                table
                    .insert((*epoch, offender), (*old, *new))
                    .during(CONTEXT)?;
            }
            Ok(())
        })
    }

    /// Every recorded penalty, newest epoch first: `(epoch, offender, old, new)`.
    pub fn penalties(&self) -> Result<Vec<PenaltyRow>, LedgerError> {
        const CONTEXT: &str = "listing slashing penalties";
        let table = self.read(CONTEXT)?.open_table(PENALTIES).during(CONTEXT)?;
        table
            .iter()
            .during(CONTEXT)?
            .rev()
            .map(|entry| {
                let (key, value) = entry.during(CONTEXT)?;
                let (epoch, offender) = key.value();
                let (old, new) = value.value();
                Ok((epoch, *offender, old, new))
            })
            .collect()
    }

    // ---- transactions ----

    /// Runs `step` in one write transaction and commits it. If `step` fails, the transaction
    /// is dropped, which aborts it: a refused step writes nothing.
    fn write<T>(
        &self,
        context: &'static str,
        step: impl FnOnce(&WriteTransaction) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.write_as(Durability::Immediate, context, step)
    }

    /// [`Ledger::write`] without a disk sync of its own: readers see the commit at once,
    /// and it reaches the disk with the next synced commit (the tower's, a root's) or when
    /// the ledger closes. A crash before then rolls it back whole, never half. Only for
    /// what a node can fetch again: blocks (repair) and other validators' votes (gossip).
    /// A node saves its tower, synced, before it sends a vote, and the blocks that vote
    /// names were written before it: whatever a vote rests on is on disk when it leaves.
    fn write_unsynced<T>(
        &self,
        context: &'static str,
        step: impl FnOnce(&WriteTransaction) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.write_as(Durability::None, context, step)
    }

    /// One write transaction committed with `durability`.
    fn write_as<T>(
        &self,
        durability: Durability,
        context: &'static str,
        step: impl FnOnce(&WriteTransaction) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut txn = self.db.begin_write().during(context)?;
        txn.set_durability(durability).during(context)?;
        let out = step(&txn)?;
        txn.commit().during(context)?;
        Ok(out)
    }

    pub(crate) fn read(&self, context: &'static str) -> Result<ReadTransaction, LedgerError> {
        self.db.begin_read().during(context)
    }
}

/// Accounts by ascending pubkey, from one read snapshot. See [`Ledger::accounts_iter`].
pub struct AccountsIter {
    inner: redb::Range<'static, &'static [u8; 32], &'static [u8]>,
}

impl Iterator for AccountsIter {
    type Item = Result<([u8; 32], Vec<u8>), LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.inner.next()?;
        Some(
            entry
                .map(|(pubkey, account)| (*pubkey.value(), account.value().to_vec()))
                .during("iterating accounts"),
        )
    }
}

impl fmt::Debug for AccountsIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsIter").finish_non_exhaustive()
    }
}

fn insert_shred_if_absent(
    shreds: &mut Table<'_, (u64, u8, u32), &[u8]>,
    key: (u64, u8, u32),
    bytes: &[u8],
    context: &'static str,
) -> Result<bool, LedgerError> {
    if shreds.get(key).during(context)?.is_some() {
        return Ok(false);
    }
    shreds.insert(key, bytes).during(context)?;
    Ok(true)
}

pub(crate) fn check_size(what: &'static str, len: usize, max: usize) -> Result<(), LedgerError> {
    if len > max {
        return Err(LedgerError::TooLarge { what, len, max });
    }
    Ok(())
}

fn check_parent(slot: u64, meta: &SlotMeta) -> Result<(), LedgerError> {
    if !parent_is_valid(slot, meta.parent_slot) {
        return Err(LedgerError::Invalid {
            what: format!(
                "slot {slot} names parent {}, which is not below it",
                meta.parent_slot
            ),
        });
    }
    Ok(())
}

/// Decodes stored slot meta, naming the slot in the error.
pub(crate) fn decode_slot_meta(slot: u64, bytes: &[u8]) -> Result<SlotMeta, LedgerError> {
    SlotMeta::decode(bytes).map_err(|e| match e {
        LedgerError::Corrupt { detail, .. } => LedgerError::Corrupt {
            what: format!("slot meta of slot {slot}"),
            detail,
        },
        other => other,
    })
}

/// A caller's range as owned bounds, which redb's `range` accepts for `u64` keys.
fn owned_bounds(range: &impl RangeBounds<u64>) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_temp() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        (dir, ledger)
    }

    fn meta(parent_slot: u64) -> SlotMeta {
        SlotMeta {
            parent_slot,
            received_data_shreds: 3,
            num_data_shreds: Some(3),
            is_full: true,
            is_dead: false,
            first_shred_at_ms: 1_000,
        }
    }

    fn root(slot: u64) -> RootCommit<'static> {
        RootCommit {
            slot,
            block_id: [slot as u8; 32],
            bank_hash: [!(slot as u8); 32],
            ..RootCommit::default()
        }
    }

    #[test]
    fn open_creates_the_directory_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/ledger");
        {
            let ledger = Ledger::open(&nested).unwrap();
            assert_eq!(ledger.path(), nested.join(LEDGER_FILE_NAME));
            ledger.commit_root(&root(3)).unwrap();
            ledger.save_tower(b"tower").unwrap();
        }
        let ledger = Ledger::open(&nested).unwrap();
        assert_eq!(ledger.latest_root().unwrap(), Some((3, [3; 32])));
        assert_eq!(ledger.load_tower().unwrap().as_deref(), Some(&b"tower"[..]));
    }

    #[test]
    fn unsynced_blocks_and_votes_are_read_at_once_and_kept_by_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            ledger.put_block(5, &meta(4), b"block five").unwrap();
            ledger.put_votes(&[(5, [7; 32], b"vote".to_vec())]).unwrap();
            // Visible to readers before any synced commit.
            assert_eq!(
                ledger.get_block(5).unwrap().as_deref(),
                Some(&b"block five"[..])
            );
            assert_eq!(ledger.votes_for_slot(5).unwrap().len(), 1);
        }
        // Closing makes them durable even though no synced commit followed.
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(
            ledger.get_block(5).unwrap().as_deref(),
            Some(&b"block five"[..])
        );
        assert_eq!(ledger.get_slot_meta(5).unwrap(), Some(meta(4)));
        assert_eq!(
            ledger.votes_for_slot(5).unwrap(),
            vec![([7; 32], b"vote".to_vec())]
        );
    }

    #[test]
    fn a_second_open_of_the_same_ledger_is_refused() {
        let (dir, _ledger) = open_temp();
        let err = Ledger::open(dir.path()).unwrap_err();
        assert!(matches!(err, LedgerError::Storage { .. }), "{err}");
    }

    #[test]
    fn a_fresh_ledger_is_empty() {
        let (_dir, ledger) = open_temp();
        assert_eq!(ledger.latest_root().unwrap(), None);
        assert_eq!(ledger.load_tower().unwrap(), None);
        assert_eq!(ledger.account_count().unwrap(), 0);
        assert_eq!(ledger.get_block(0).unwrap(), None);
        assert_eq!(ledger.get_slot_meta(0).unwrap(), None);
        assert!(ledger.blocks_range(..).unwrap().is_empty());
    }

    #[test]
    fn first_copy_of_a_shred_wins() {
        let (_dir, ledger) = open_temp();
        assert!(
            ledger
                .insert_shred(5, 2, ShredKind::Data, b"first")
                .unwrap()
        );
        assert!(
            !ledger
                .insert_shred(5, 2, ShredKind::Data, b"second")
                .unwrap()
        );
        // The same index of the other kind is a different shred.
        assert!(
            ledger
                .insert_shred(5, 2, ShredKind::Code, b"parity")
                .unwrap()
        );
        let get = |kind| ledger.get_shred(5, 2, kind).unwrap();
        assert_eq!(get(ShredKind::Data).as_deref(), Some(&b"first"[..]));
        assert_eq!(get(ShredKind::Code).as_deref(), Some(&b"parity"[..]));
        assert_eq!(ledger.get_shred(5, 3, ShredKind::Data).unwrap(), None);
    }

    #[test]
    fn batch_insert_reports_which_shreds_were_new() {
        let (_dir, ledger) = open_temp();
        ledger.insert_shred(1, 1, ShredKind::Data, b"old").unwrap();
        let record = |index, bytes| ShredRecord {
            slot: 1,
            index,
            kind: ShredKind::Data,
            bytes,
        };
        let new = ledger
            .insert_shreds(&[
                record(0, b"a"),
                record(1, b"b"),
                record(2, b"c"),
                record(2, b"d"),
            ])
            .unwrap();
        assert_eq!(new, vec![true, false, true, false]);
        let data = ledger.shreds_in_slot(1, ShredKind::Data).unwrap();
        assert_eq!(
            data,
            vec![(0, b"a".to_vec()), (1, b"old".to_vec()), (2, b"c".to_vec())]
        );
    }

    #[test]
    fn shreds_in_slot_returns_one_kind_of_one_slot_in_index_order() {
        let (_dir, ledger) = open_temp();
        for index in [7u32, 0, u32::MAX, 3] {
            let bytes = index.to_le_bytes();
            ledger
                .insert_shred(9, index, ShredKind::Code, &bytes)
                .unwrap();
            ledger
                .insert_shred(8, index, ShredKind::Code, b"x")
                .unwrap();
            ledger
                .insert_shred(10, index, ShredKind::Code, b"x")
                .unwrap();
            ledger
                .insert_shred(9, index, ShredKind::Data, b"x")
                .unwrap();
        }
        let code = ledger.shreds_in_slot(9, ShredKind::Code).unwrap();
        let indices: Vec<u32> = code.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, vec![0, 3, 7, u32::MAX]);
        for (index, bytes) in code {
            assert_eq!(bytes, index.to_le_bytes());
        }
        assert!(
            ledger
                .shreds_in_slot(11, ShredKind::Data)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn slot_meta_round_trips_and_is_replaced() {
        let (_dir, ledger) = open_temp();
        let mut m = meta(4);
        m.is_full = false;
        m.num_data_shreds = None;
        ledger.put_slot_meta(5, &m).unwrap();
        assert_eq!(ledger.get_slot_meta(5).unwrap(), Some(m));
        ledger.put_slot_meta(5, &meta(4)).unwrap();
        assert_eq!(ledger.get_slot_meta(5).unwrap(), Some(meta(4)));
        ledger.put_slot_meta(0, &meta(0)).unwrap();
    }

    #[test]
    fn a_parent_at_or_above_the_slot_is_refused() {
        let (_dir, ledger) = open_temp();
        for (slot, parent) in [(5, 5), (5, 6), (0, 1)] {
            let err = ledger.put_slot_meta(slot, &meta(parent)).unwrap_err();
            assert!(matches!(err, LedgerError::Invalid { .. }), "{err}");
            let err = ledger.put_block(slot, &meta(parent), b"b").unwrap_err();
            assert!(matches!(err, LedgerError::Invalid { .. }), "{err}");
        }
        assert_eq!(ledger.get_slot_meta(5).unwrap(), None);
        assert_eq!(ledger.get_block(5).unwrap(), None);
    }

    #[test]
    fn a_block_is_stored_with_its_meta() {
        let (_dir, ledger) = open_temp();
        for slot in [2u64, 4, 6, 8] {
            ledger
                .put_block(slot, &meta(slot - 2), &slot.to_le_bytes())
                .unwrap();
        }
        assert_eq!(
            ledger.get_block(4).unwrap(),
            Some(4u64.to_le_bytes().to_vec())
        );
        assert_eq!(ledger.get_slot_meta(4).unwrap(), Some(meta(2)));
        assert_eq!(ledger.blocks_range(3..=6).unwrap(), vec![4, 6]);
        assert_eq!(ledger.blocks_range(3..6).unwrap(), vec![4]);
        assert_eq!(ledger.blocks_range(..).unwrap(), vec![2, 4, 6, 8]);
        assert_eq!(ledger.blocks_range(9..).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn the_tower_reads_read_only_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ledger::read_tower_of(dir.path()).unwrap(), None);
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            ledger.save_tower(b"tower").unwrap();
        }
        let file = dir.path().join(LEDGER_FILE_NAME);
        let before = std::fs::read(&file).unwrap();
        assert_eq!(
            Ledger::read_tower_of(dir.path()).unwrap(),
            Some(b"tower".to_vec())
        );
        assert_eq!(std::fs::read(&file).unwrap(), before);
    }

    #[test]
    fn a_root_records_its_rooted_ancestors() {
        let (_dir, ledger) = open_temp();
        ledger.commit_root(&root(2)).unwrap();
        let ancestors = [(3, [3; 32], [33; 32]), (5, [5; 32], [55; 32])];
        ledger
            .commit_root(&RootCommit {
                rooted_ancestors: &ancestors,
                ..root(7)
            })
            .unwrap();
        assert_eq!(
            ledger.roots_range(..).unwrap(),
            vec![(2, [2; 32]), (3, [3; 32]), (5, [5; 32]), (7, [7; 32])]
        );
        assert_eq!(ledger.bank_hash(5).unwrap(), Some([55; 32]));
        // An ancestor at or below a stored root, or out of order, is refused whole.
        for bad in [
            vec![(7, [7; 32], [0; 32])],
            vec![(9, [9; 32], [0; 32]), (8, [8; 32], [0; 32])],
            vec![(12, [12; 32], [0; 32])],
        ] {
            assert!(
                ledger
                    .commit_root(&RootCommit {
                        rooted_ancestors: &bad,
                        ..root(10)
                    })
                    .is_err()
            );
        }
        assert_eq!(ledger.latest_root().unwrap(), Some((7, [7; 32])));
    }

    #[test]
    fn roots_only_move_forward() {
        let (_dir, ledger) = open_temp();
        ledger.commit_root(&root(5)).unwrap();
        for slot in [5, 4, 0] {
            let err = ledger
                .commit_root(&RootCommit {
                    accounts: &[([1; 32], b"must not land".to_vec())],
                    ..root(slot)
                })
                .unwrap_err();
            assert!(
                matches!(err, LedgerError::RootNotForward { slot: s, latest: 5 } if s == slot),
                "{err}"
            );
        }
        // The refused commits wrote nothing.
        assert_eq!(ledger.get_account(&[1; 32]).unwrap(), None);
        assert_eq!(ledger.bank_hash(4).unwrap(), None);
        assert_eq!(ledger.latest_root().unwrap(), Some((5, [5; 32])));

        ledger.commit_root(&root(9)).unwrap();
        assert_eq!(ledger.latest_root().unwrap(), Some((9, [9; 32])));
        assert_eq!(
            ledger.roots_range(..).unwrap(),
            vec![(5, [5; 32]), (9, [9; 32])]
        );
        assert_eq!(ledger.roots_range(6..).unwrap(), vec![(9, [9; 32])]);
    }

    #[test]
    fn a_root_writes_its_bank_hash_and_accounts_together() {
        let (_dir, ledger) = open_temp();
        let first = [([1; 32], b"one".to_vec()), ([2; 32], b"two".to_vec())];
        ledger
            .commit_root(&RootCommit {
                accounts: &first,
                ..root(1)
            })
            .unwrap();
        let second = [([2; 32], b"two, changed".to_vec()), ([3; 32], vec![])];
        ledger
            .commit_root(&RootCommit {
                accounts: &second,
                removed_accounts: &[[1; 32], [9; 32]],
                ..root(2)
            })
            .unwrap();
        assert_eq!(ledger.bank_hash(1).unwrap(), Some([!1; 32]));
        assert_eq!(ledger.bank_hash(2).unwrap(), Some([!2; 32]));
        assert_eq!(ledger.bank_hash(3).unwrap(), None);
        assert_eq!(ledger.get_account(&[1; 32]).unwrap(), None);
        assert_eq!(
            ledger.get_account(&[2; 32]).unwrap().as_deref(),
            Some(&b"two, changed"[..])
        );
        assert_eq!(ledger.get_account(&[3; 32]).unwrap(), Some(vec![]));
        assert_eq!(ledger.account_count().unwrap(), 2);
    }

    #[test]
    fn accounts_iterate_in_pubkey_order() {
        let (_dir, ledger) = open_temp();
        let accounts: Vec<([u8; 32], Vec<u8>)> = (0..=255u8)
            .rev()
            .map(|i| ([i; 32], vec![i; usize::from(i)]))
            .collect();
        ledger
            .commit_root(&RootCommit {
                accounts: &accounts,
                ..root(1)
            })
            .unwrap();
        let iter = ledger.accounts_iter().unwrap();
        // Commits after the iterator was made are not seen by it.
        ledger
            .commit_root(&RootCommit {
                removed_accounts: &[[0; 32]],
                ..root(2)
            })
            .unwrap();
        let seen: Vec<([u8; 32], Vec<u8>)> = iter.collect::<Result<_, _>>().unwrap();
        let mut expected = accounts.clone();
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(ledger.account_count().unwrap(), 255);
    }

    #[test]
    fn purge_deletes_only_shreds_below_the_bound() {
        let (_dir, ledger) = open_temp();
        for slot in 1..=6u64 {
            for kind in [ShredKind::Data, ShredKind::Code] {
                for index in [0, 1, u32::MAX] {
                    ledger.insert_shred(slot, index, kind, b"s").unwrap();
                }
            }
            ledger.put_block(slot, &meta(slot - 1), b"block").unwrap();
        }
        ledger
            .commit_root(&RootCommit {
                purge_below: Some(4),
                ..root(5)
            })
            .unwrap();
        for slot in 1..=6u64 {
            for kind in [ShredKind::Data, ShredKind::Code] {
                let left = ledger.shreds_in_slot(slot, kind).unwrap().len();
                assert_eq!(left, if slot < 4 { 0 } else { 3 }, "slot {slot}");
            }
        }
        // Blocks and meta are kept: only shreds are purged.
        assert_eq!(ledger.blocks_range(..).unwrap(), vec![1, 2, 3, 4, 5, 6]);
        assert!(ledger.get_slot_meta(1).unwrap().is_some());
    }

    #[test]
    fn purge_past_the_new_root_is_refused() {
        let (_dir, ledger) = open_temp();
        ledger.insert_shred(7, 0, ShredKind::Data, b"s").unwrap();
        let err = ledger
            .commit_root(&RootCommit {
                purge_below: Some(6),
                ..root(5)
            })
            .unwrap_err();
        assert!(matches!(err, LedgerError::Invalid { .. }), "{err}");
        assert_eq!(ledger.latest_root().unwrap(), None);
        // Up to the root itself is fine.
        ledger
            .commit_root(&RootCommit {
                purge_below: Some(5),
                ..root(5)
            })
            .unwrap();
        assert!(ledger.get_shred(7, 0, ShredKind::Data).unwrap().is_some());
    }

    #[test]
    fn oversized_values_are_refused_before_writing() {
        let (_dir, ledger) = open_temp();
        let too_large = |err: LedgerError, kind: &str| {
            assert!(
                matches!(err, LedgerError::TooLarge { what, .. } if what == kind),
                "{err}"
            );
        };
        let shred = vec![0; MAX_SHRED_BYTES + 1];
        too_large(
            ledger
                .insert_shred(1, 0, ShredKind::Data, &shred)
                .unwrap_err(),
            "shred",
        );
        let ok = [0u8; 10];
        let records = [
            ShredRecord {
                slot: 1,
                index: 0,
                kind: ShredKind::Data,
                bytes: &ok,
            },
            ShredRecord {
                slot: 1,
                index: 1,
                kind: ShredKind::Data,
                bytes: &shred,
            },
        ];
        too_large(ledger.insert_shreds(&records).unwrap_err(), "shred");
        assert!(
            ledger
                .shreds_in_slot(1, ShredKind::Data)
                .unwrap()
                .is_empty()
        );

        too_large(
            ledger
                .save_tower(&vec![0; MAX_TOWER_BYTES + 1])
                .unwrap_err(),
            "tower",
        );
        too_large(
            ledger
                .put_vote(1, &[0; 32], &vec![0; MAX_VOTE_BYTES + 1])
                .unwrap_err(),
            "vote",
        );
        let accounts = [([0; 32], vec![0; MAX_ACCOUNT_BYTES + 1])];
        too_large(
            ledger
                .commit_root(&RootCommit {
                    accounts: &accounts,
                    ..root(1)
                })
                .unwrap_err(),
            "account",
        );
        assert_eq!(ledger.latest_root().unwrap(), None);
        too_large(
            ledger
                .put_block(1, &meta(0), &vec![0; MAX_BLOCK_BYTES + 1])
                .unwrap_err(),
            "block",
        );
        assert_eq!(ledger.get_slot_meta(1).unwrap(), None);

        // Exactly at the limit is fine.
        ledger
            .insert_shred(1, 0, ShredKind::Data, &shred[..MAX_SHRED_BYTES])
            .unwrap();
    }

    #[test]
    fn the_tower_is_one_row_replaced_on_save() {
        let (_dir, ledger) = open_temp();
        ledger.save_tower(b"tower 1").unwrap();
        ledger.save_tower(b"tower 2").unwrap();
        assert_eq!(
            ledger.load_tower().unwrap().as_deref(),
            Some(&b"tower 2"[..])
        );
    }

    #[test]
    fn votes_in_a_batch_land_together() {
        let (_dir, ledger) = open_temp();
        let batch = vec![
            (4, [1; 32], vec![1, 2]),
            (4, [2; 32], vec![3]),
            (5, [1; 32], vec![4]),
        ];
        ledger.put_votes(&batch).unwrap();
        assert_eq!(ledger.votes_for_slot(4).unwrap().len(), 2);
        assert_eq!(ledger.votes_for_slot(5).unwrap(), vec![([1; 32], vec![4])]);
    }

    #[test]
    fn votes_are_kept_per_slot_and_voter() {
        let (_dir, ledger) = open_temp();
        ledger.put_vote(4, &[0xff; 32], b"late").unwrap();
        ledger.put_vote(4, &[0; 32], b"early").unwrap();
        ledger.put_vote(4, &[7; 32], b"first").unwrap();
        ledger.put_vote(4, &[7; 32], b"replaced").unwrap();
        ledger.put_vote(3, &[7; 32], b"other slot").unwrap();
        ledger.put_vote(5, &[0; 32], b"other slot").unwrap();
        assert_eq!(
            ledger.votes_for_slot(4).unwrap(),
            vec![
                ([0; 32], b"early".to_vec()),
                ([7; 32], b"replaced".to_vec()),
                ([0xff; 32], b"late".to_vec()),
            ]
        );
        assert!(ledger.votes_for_slot(6).unwrap().is_empty());
    }

    #[test]
    fn garbage_slot_meta_is_an_error_naming_the_slot() {
        let (_dir, ledger) = open_temp();
        let txn = ledger.db.begin_write().unwrap();
        txn.open_table(SLOT_META)
            .unwrap()
            .insert(12, &b"garbage"[..])
            .unwrap();
        txn.commit().unwrap();
        let err = ledger.get_slot_meta(12).unwrap_err();
        match err {
            LedgerError::Corrupt { what, .. } => assert_eq!(what, "slot meta of slot 12"),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_ledger_of_another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            let txn = ledger.db.begin_write().unwrap();
            txn.open_table(FORMAT)
                .unwrap()
                .insert(FORMAT_KEY, FORMAT_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = Ledger::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, LedgerError::UnsupportedFormat { found, expected }
                if found == FORMAT_VERSION + 1 && expected == FORMAT_VERSION),
            "{err}"
        );
    }
}
