//! Proof of History: a SHA-256 chain that proves time passed between entries.
//!
//! The leader runs a [`PohRecorder`]: it hashes continuously, mixes each batch of
//! transactions into the chain as an [`Entry`], and closes a tick every
//! `hashes_per_tick` hashes. Everyone else checks a block's entries with
//! [`verify_entries`] (one core) or [`verify_entries_parallel`] (all cores: each entry
//! carries the hash it ends on, so entries can be checked independently).

use bincode::{Decode, Encode};
use rayon::prelude::*;

use crate::encoding::Canonical;
use crate::hash::{Hash, hash32, hash32_chain, hashv};
use crate::tx::Transaction;

/// One link group of the PoH chain: `num_hashes` hashes after the previous entry, the
/// last of which mixes in the transactions (if any). An entry without transactions is a tick.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Entry {
    pub num_hashes: u64,
    pub hash: Hash,
    pub transactions: Vec<Transaction>,
}

impl Canonical for Entry {
    const NAME: &'static str = "entry";
    const MAX_SIZE: usize = 8 << 20;
}

impl Entry {
    pub fn is_tick(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The hash that follows `start` after this entry's hashes, mix-in included.
    pub fn next_hash(start: &Hash, num_hashes: u64, transactions: &[Transaction]) -> Hash {
        if num_hashes == 0 {
            return *start;
        }
        let h = hash32_chain(&start.0, num_hashes - 1);
        match mixin(transactions) {
            Some(m) => hashv(&[&h, &m.0]),
            None => hash32(&h),
        }
    }

    /// Checks this entry against the hash the chain stood at before it.
    pub fn verify(&self, start: &Hash) -> bool {
        self.num_hashes > 0
            && Entry::next_hash(start, self.num_hashes, &self.transactions) == self.hash
    }
}

/// What a batch of transactions contributes to the chain: the hash of their signatures.
pub fn mixin(transactions: &[Transaction]) -> Option<Hash> {
    if transactions.is_empty() {
        return None;
    }
    let parts: Vec<&[u8]> = transactions.iter().map(|t| &t.signature.0[..]).collect();
    Some(hashv(&parts))
}

/// Why a recording was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the tick is due: tick before recording more entries")]
    TickDue,
    #[error("an entry needs at least one transaction; ticks are made with tick()")]
    NoTransactions,
}

/// The leader's PoH generator.
#[derive(Debug, Clone)]
pub struct PohRecorder {
    hash: Hash,
    /// Hashes done since the last entry.
    num_hashes: u64,
    hashes_per_tick: u64,
    /// Hashes left in the current tick, the tick's own final hash included.
    remaining_in_tick: u64,
    tick_height: u64,
}

impl PohRecorder {
    /// Starts a chain at `start` (the last hash of the parent block). `hashes_per_tick`
    /// of zero is treated as one.
    pub fn new(start: Hash, hashes_per_tick: u64) -> Self {
        let hashes_per_tick = hashes_per_tick.max(1);
        PohRecorder {
            hash: start,
            num_hashes: 0,
            hashes_per_tick,
            remaining_in_tick: hashes_per_tick,
            tick_height: 0,
        }
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn tick_height(&self) -> u64 {
        self.tick_height
    }

    /// Hashes still to do before `tick()` can close the tick with its final hash.
    pub fn hashes_until_tick_due(&self) -> u64 {
        self.remaining_in_tick - 1
    }

    /// Advances the chain by up to `max` hashes without passing the tick boundary.
    /// Returns true when the tick is due (call `tick()`).
    pub fn hash_batch(&mut self, max: u64) -> bool {
        let n = max.min(self.remaining_in_tick - 1);
        self.hash = Hash(hash32_chain(&self.hash.0, n));
        self.num_hashes += n;
        self.remaining_in_tick -= n;
        self.remaining_in_tick == 1
    }

    /// Completes the current tick (doing any hashes still owed) and returns the tick entry.
    pub fn tick(&mut self) -> Entry {
        self.hash_batch(u64::MAX);
        self.hash = hash32(&self.hash.0);
        let entry = Entry {
            num_hashes: self.num_hashes + 1,
            hash: self.hash,
            transactions: Vec::new(),
        };
        self.num_hashes = 0;
        self.remaining_in_tick = self.hashes_per_tick;
        self.tick_height += 1;
        entry
    }

    /// Mixes a batch of transactions into the chain and returns their entry.
    pub fn record(&mut self, transactions: Vec<Transaction>) -> Result<Entry, RecordError> {
        let Some(m) = mixin(&transactions) else {
            return Err(RecordError::NoTransactions);
        };
        if self.remaining_in_tick == 1 {
            return Err(RecordError::TickDue);
        }
        self.hash = hashv(&[&self.hash.0, &m.0]);
        let entry = Entry {
            num_hashes: self.num_hashes + 1,
            hash: self.hash,
            transactions,
        };
        self.num_hashes = 0;
        self.remaining_in_tick -= 1;
        Ok(entry)
    }
}

/// Why a list of entries is not a valid PoH chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PohError {
    #[error("PoH entry {index} does not follow from the previous hash")]
    Mismatch { index: usize },
    #[error("PoH entry {index} has zero hashes")]
    ZeroHashes { index: usize },
    #[error(
        "PoH entry {index}: {hashes} hashes since the last tick, but a tick is {hashes_per_tick}"
    )]
    TickLength {
        index: usize,
        hashes: u64,
        hashes_per_tick: u64,
    },
}

impl PohError {
    /// The index of the offending entry.
    pub fn index(&self) -> usize {
        match *self {
            PohError::Mismatch { index }
            | PohError::ZeroHashes { index }
            | PohError::TickLength { index, .. } => index,
        }
    }
}

/// Checks the tick structure before any hashing: every tick closes exactly
/// `hashes_per_tick` hashes, and entries after the last tick stay below that. This bounds
/// the work of verification by the number of ticks, which the caller bounds by the slot
/// clock; without it a single entry claiming 2^40 hashes would take hours to check.
pub fn check_tick_structure(entries: &[Entry], hashes_per_tick: u64) -> Result<(), PohError> {
    let hashes_per_tick = hashes_per_tick.max(1);
    let mut in_tick: u64 = 0;
    for (index, e) in entries.iter().enumerate() {
        if e.num_hashes == 0 {
            return Err(PohError::ZeroHashes { index });
        }
        in_tick = in_tick.saturating_add(e.num_hashes);
        let bad = if e.is_tick() {
            in_tick != hashes_per_tick
        } else {
            in_tick >= hashes_per_tick
        };
        if bad {
            return Err(PohError::TickLength {
                index,
                hashes: in_tick,
                hashes_per_tick,
            });
        }
        if e.is_tick() {
            in_tick = 0;
        }
    }
    Ok(())
}

/// Checks a list of entries on one core: tick structure first, then every hash.
pub fn verify_entries(
    start: &Hash,
    entries: &[Entry],
    hashes_per_tick: u64,
) -> Result<(), PohError> {
    check_tick_structure(entries, hashes_per_tick)?;
    let mut prev = *start;
    for (index, entry) in entries.iter().enumerate() {
        if !entry.verify(&prev) {
            return Err(PohError::Mismatch { index });
        }
        prev = entry.hash;
    }
    Ok(())
}

/// Checks a list of entries on all cores; reports the lowest bad index.
pub fn verify_entries_parallel(
    start: &Hash,
    entries: &[Entry],
    hashes_per_tick: u64,
) -> Result<(), PohError> {
    check_tick_structure(entries, hashes_per_tick)?;
    let bad = entries
        .par_iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let prev = if index == 0 {
                start
            } else {
                &entries[index - 1].hash
            };
            (!entry.verify(prev)).then_some(index)
        })
        .min();
    match bad {
        Some(index) => Err(PohError::Mismatch { index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash;
    use crate::keys::Keypair;

    fn some_txs(n: u8) -> Vec<Transaction> {
        let k = Keypair::from_seed(&[n; 32]);
        (0..n)
            .map(|i| Transaction::transfer(&k, k.pubkey(), i as u64, 1, Hash::ZERO))
            .collect()
    }

    fn chain() -> (Hash, Vec<Entry>) {
        let start = hash(b"genesis");
        let mut poh = PohRecorder::new(start, 100);
        let mut entries = Vec::new();
        for round in 0..20u8 {
            poh.hash_batch(30);
            if round % 3 == 0 {
                entries.push(poh.record(some_txs(round % 5 + 1)).unwrap());
            }
            entries.push(poh.tick());
        }
        (start, entries)
    }

    #[test]
    fn recorded_chain_verifies_both_ways() {
        let (start, entries) = chain();
        assert_eq!(verify_entries(&start, &entries, 100), Ok(()));
        assert_eq!(verify_entries_parallel(&start, &entries, 100), Ok(()));
    }

    #[test]
    fn ticks_have_hashes_per_tick_hashes_including_records() {
        let (_, entries) = chain();
        let mut in_tick = 0;
        for e in &entries {
            in_tick += e.num_hashes;
            if e.is_tick() {
                assert_eq!(in_tick, 100);
                in_tick = 0;
            }
        }
    }

    #[test]
    fn tampered_entry_is_named_by_index() {
        let (start, mut entries) = chain();
        entries[5].hash.0[0] ^= 1;
        assert_eq!(
            verify_entries(&start, &entries, 100),
            Err(PohError::Mismatch { index: 5 })
        );
        // Entry 6 starts from entry 5's (tampered) hash, so 5 is the first bad one.
        assert_eq!(
            verify_entries_parallel(&start, &entries, 100).map_err(|e| e.index()),
            Err(5)
        );

        let (start, mut entries) = chain();
        let i = entries
            .iter()
            .position(|e| e.transactions.len() >= 2)
            .unwrap();
        entries[i].transactions.pop();
        assert_eq!(
            verify_entries_parallel(&start, &entries, 100),
            Err(PohError::Mismatch { index: i })
        );
    }

    #[test]
    fn record_refuses_when_tick_due_and_empty_batches() {
        let mut poh = PohRecorder::new(Hash::ZERO, 4);
        assert!(poh.hash_batch(100));
        assert_eq!(poh.record(some_txs(1)), Err(RecordError::TickDue));
        assert_eq!(poh.record(Vec::new()), Err(RecordError::NoTransactions));
        let tick = poh.tick();
        assert_eq!(tick.num_hashes, 4);
        assert_eq!(poh.tick_height(), 1);
    }

    #[test]
    fn a_huge_hash_count_is_refused_before_hashing() {
        let (start, mut entries) = chain();
        entries[3].num_hashes = 1 << 40;
        let err = verify_entries_parallel(&start, &entries, 100).unwrap_err();
        assert!(matches!(err, PohError::TickLength { .. }), "{err}");
        let (start, mut entries) = chain();
        entries.push(Entry {
            num_hashes: 0,
            hash: Hash::ZERO,
            transactions: Vec::new(),
        });
        let n = entries.len() - 1;
        assert_eq!(
            verify_entries(&start, &entries, 100),
            Err(PohError::ZeroHashes { index: n })
        );
    }

    #[test]
    fn zero_hash_entry_never_verifies() {
        let e = Entry {
            num_hashes: 0,
            hash: Hash::ZERO,
            transactions: Vec::new(),
        };
        assert!(!e.verify(&Hash::ZERO));
    }
}
