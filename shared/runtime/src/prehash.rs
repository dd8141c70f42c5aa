//! Hash-map keys hashed once: a bank looks the same pubkey or signature up in every
//! unrooted ancestor, so the keyed SipHash is computed once per key and each map only
//! compares. The key is random per process (HashDoS-resistant, never protocol-visible:
//! nothing iterates these maps in an order that reaches a hash or a result).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::LazyLock;

static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// A key with its process-wide keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prehashed<K> {
    hash: u64,
    key: K,
}

impl<K: Hash> Prehashed<K> {
    pub(crate) fn new(key: K) -> Self {
        Prehashed {
            hash: KEYS.hash_one(&key),
            key,
        }
    }
}

impl<K> Prehashed<K> {
    pub(crate) fn key(&self) -> &K {
        &self.key
    }
}

impl<K> Hash for Prehashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Passes the precomputed hash through.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Prehashed`; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type PrehashMap<K, V> = HashMap<Prehashed<K>, V, BuildHasherDefault<PassThrough>>;

pub(crate) type PrehashSet<K> = HashSet<Prehashed<K>, BuildHasherDefault<PassThrough>>;
