//! The Merkle tree over one FEC set's 64 shreds, hashed with BLAKE3's own compression.
//!
//! Leaf = the BLAKE3 chunk chaining value, in keyed mode under [`TREE_KEY`] with chunk
//! counter 0, of the shred's first [`LEAF_LEN`] bytes: header and payload, everything
//! but the signature and the proof, so the root commits to every header field and
//! every payload byte (and the header names the leaf's position). Node = the BLAKE3
//! parent chaining value of its two children, under the same key; the root is the
//! parent node with BLAKE3's root flag. Leaves, inner nodes and the root are told apart
//! by BLAKE3's domain flags (chunk start and end, parent, root), so no leaf can pass for
//! a node. Trees are stored in heap order: index 1 is the root, the children of `i` are
//! `2i` and `2i + 1`, and leaf position `p` (data shreds 0..32, coding shreds 32..64)
//! sits at index `64 + p`.
//!
//! Why BLAKE3 and not SHA-256: every shred byte is hashed once more than it is
//! erasure-coded, by the leader and by every receiver. One shred at a time, BLAKE3 is a
//! little slower than SHA-256 with the CPU's SHA instructions, but sixteen leaves
//! hashed side by side in the SIMD lanes ([`leaves`]; sixteen with AVX-512, eight with
//! AVX2) run five times faster, and the shredder and the rebuild always hash many leaves
//! at once.

use std::sync::OnceLock;

use bb_core::Hash;
use blake3::hazmat::{self, HasherExt, Mode};
use blake3::platform::Platform;

use crate::shred::{LEAF_LEN, PROOF_LEN, PROOF_OFFSET, SHREDS_PER_SET};

/// The BLAKE3 key of every shred tree: domain separation from any other use of BLAKE3.
pub(crate) const TREE_KEY: &[u8; 32] = b"bb/shred-merkle/v2\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
const NODES: usize = 2 * SHREDS_PER_SET;

// BLAKE3's domain flags (fixed by the BLAKE3 specification, section 2.1).
const CHUNK_START: u8 = 1 << 0;
const CHUNK_END: u8 = 1 << 1;
const PARENT: u8 = 1 << 2;
const KEYED_HASH: u8 = 1 << 4;

fn mode() -> Mode<'static> {
    Mode::KeyedHash(TREE_KEY)
}

/// The leaf hash of a full shred buffer (one shred: the stable, one-lane path).
#[inline]
pub(crate) fn leaf(shred: &[u8]) -> Hash {
    Hash(
        blake3::Hasher::new_keyed(TREE_KEY)
            .update(&shred[..LEAF_LEN])
            .finalize_non_root(),
    )
}

fn platform() -> &'static Platform {
    static PLATFORM: OnceLock<Platform> = OnceLock::new();
    PLATFORM.get_or_init(Platform::detect)
}

fn key_words() -> &'static [u32; 8] {
    static KEY_WORDS: OnceLock<[u32; 8]> = OnceLock::new();
    KEY_WORDS.get_or_init(|| {
        std::array::from_fn(|i| {
            u32::from_le_bytes([
                TREE_KEY[4 * i],
                TREE_KEY[4 * i + 1],
                TREE_KEY[4 * i + 2],
                TREE_KEY[4 * i + 3],
            ])
        })
    })
}

/// Hashes equal-length inputs side by side, sixteen per SIMD pass at most, `out[i]`
/// for `inputs[i]`.
fn hash_many<const N: usize>(inputs: &[&[u8; N]], flags: (u8, u8, u8), out: &mut [Hash]) {
    assert_eq!(inputs.len(), out.len(), "one output per input");
    const LANES: usize = 16;
    let (flags, flags_start, flags_end) = flags;
    let mut cvs = [0u8; 32 * LANES];
    for (inputs, outs) in inputs.chunks(LANES).zip(out.chunks_mut(LANES)) {
        let cvs = &mut cvs[..32 * inputs.len()];
        platform().hash_many(
            inputs,
            key_words(),
            0,
            blake3::IncrementCounter::No,
            flags,
            flags_start,
            flags_end,
            cvs,
        );
        for (o, cv) in outs.iter_mut().zip(cvs.chunks_exact(32)) {
            o.0.copy_from_slice(cv);
        }
    }
}

/// The leaf hashes of many shreds at once, `out[i]` for `shreds[i]`, as many per SIMD
/// pass as the CPU has lanes (sixteen with AVX-512). Equal to [`leaf`] of each (tested).
pub(crate) fn leaves(shreds: &[&[u8; LEAF_LEN]], out: &mut [Hash]) {
    hash_many(shreds, (KEYED_HASH, CHUNK_START, CHUNK_END), out);
}

/// Every node of a tree whose leaves (indices 64..128) are set: each level below the
/// root in one SIMD pass, then the root.
fn hash_up(nodes: &mut [Hash; NODES]) {
    let mut width = SHREDS_PER_SET / 2;
    while width > 1 {
        let (upper, lower) = nodes.split_at_mut(2 * width);
        let mut blocks = [[0u8; 64]; SHREDS_PER_SET / 2];
        for (block, pair) in blocks.iter_mut().zip(lower[..2 * width].chunks_exact(2)) {
            block[..32].copy_from_slice(pair[0].as_bytes());
            block[32..].copy_from_slice(pair[1].as_bytes());
        }
        let inputs: [&[u8; 64]; SHREDS_PER_SET / 2] = std::array::from_fn(|i| &blocks[i]);
        hash_many(
            &inputs[..width],
            (KEYED_HASH | PARENT, 0, 0),
            &mut upper[width..2 * width],
        );
        width /= 2;
    }
    nodes[1] = node(1, &nodes[2], &nodes[3]);
}

/// The leaf bytes of a shred buffer as the fixed-size array [`leaves`] takes.
#[inline]
pub(crate) fn leaf_bytes(shred: &[u8]) -> &[u8; LEAF_LEN] {
    shred
        .first_chunk::<LEAF_LEN>()
        .expect("callers pass whole shred buffers, longer than the leaf")
}

/// The node at heap index `index` (1 is the root) over its two children.
#[inline]
fn node(index: usize, left: &Hash, right: &Hash) -> Hash {
    if index == 1 {
        Hash(*hazmat::merge_subtrees_root(&left.0, &right.0, mode()).as_bytes())
    } else {
        Hash(hazmat::merge_subtrees_non_root(&left.0, &right.0, mode()))
    }
}

/// The parent of the node at heap index `index` holding `hash`, given its sibling.
#[inline]
fn parent(index: usize, hash: &Hash, sibling: &Hash) -> Hash {
    if index & 1 == 0 {
        node(index / 2, hash, sibling)
    } else {
        node(index / 2, sibling, hash)
    }
}

/// Proof entry `level` (0 = the leaf's sibling) of a full shred buffer.
pub(crate) fn proof_entry(shred: &[u8], level: usize) -> Hash {
    let at = PROOF_OFFSET + 32 * level;
    let mut h = [0u8; 32];
    h.copy_from_slice(&shred[at..at + 32]);
    Hash(h)
}

/// The root that `leaf` at `position` leads to through the proof in `shred`.
pub(crate) fn root_from_proof(leaf: &Hash, position: usize, shred: &[u8]) -> Hash {
    let mut index = SHREDS_PER_SET + position;
    let mut hash = *leaf;
    for level in 0..PROOF_LEN {
        hash = parent(index, &hash, &proof_entry(shred, level));
        index /= 2;
    }
    hash
}

/// A complete tree, built by the shredder.
pub(crate) struct Tree {
    nodes: [Hash; NODES],
}

impl Tree {
    pub(crate) fn from_leaves(leaves: &[Hash; SHREDS_PER_SET]) -> Tree {
        let mut nodes = [Hash::ZERO; NODES];
        nodes[SHREDS_PER_SET..].copy_from_slice(leaves);
        hash_up(&mut nodes);
        Tree { nodes }
    }

    pub(crate) fn root(&self) -> Hash {
        self.nodes[1]
    }

    /// Writes the proof of leaf `position` into a full shred buffer.
    pub(crate) fn write_proof(&self, position: usize, shred: &mut [u8]) {
        write_proof(&self.nodes, position, shred);
    }
}

fn write_proof(nodes: &[Hash; NODES], position: usize, shred: &mut [u8]) {
    let mut index = SHREDS_PER_SET + position;
    for level in 0..PROOF_LEN {
        let at = PROOF_OFFSET + 32 * level;
        shred[at..at + 32].copy_from_slice(nodes[index ^ 1].as_bytes());
        index /= 2;
    }
}

/// The part of a set's tree a receiver has authenticated so far.
///
/// Invariant: the root is known, and every known node's ancestors and their siblings
/// are known too (a proof is always recorded whole). So a new leaf is checked by
/// hashing up only until it meets a known node, then comparing the rest of its proof
/// to known nodes: usually one or two hashes instead of seven.
#[derive(Clone)]
pub(crate) struct PartialTree {
    nodes: [Hash; NODES],
    known: u128,
}

impl PartialTree {
    /// A tree whose only trusted fact is the (signature-checked) root that `leaf` at
    /// `position` leads to with the proof in `shred`; records that path.
    pub(crate) fn from_proof(leaf: &Hash, position: usize, shred: &[u8]) -> PartialTree {
        let mut tree = PartialTree {
            nodes: [Hash::ZERO; NODES],
            known: 0,
        };
        let mut index = SHREDS_PER_SET + position;
        let mut hash = *leaf;
        for level in 0..PROOF_LEN {
            let sibling = proof_entry(shred, level);
            tree.set(index, hash);
            tree.set(index ^ 1, sibling);
            hash = parent(index, &hash, &sibling);
            index /= 2;
        }
        tree.set(1, hash);
        tree
    }

    pub(crate) fn root(&self) -> Hash {
        self.nodes[1]
    }

    fn is_known(&self, index: usize) -> bool {
        self.known & (1u128 << index) != 0
    }

    fn set(&mut self, index: usize, hash: Hash) {
        self.nodes[index] = hash;
        self.known |= 1u128 << index;
    }

    /// Whether `leaf` at `position`, with the proof in `shred`, belongs to this tree
    /// (proof bytes included, so a shred accepted here is byte-for-byte canonical).
    /// Records the newly authenticated nodes.
    pub(crate) fn check(&mut self, leaf: &Hash, position: usize, shred: &[u8]) -> bool {
        let mut index = SHREDS_PER_SET + position;
        let mut hash = *leaf;
        let mut level = 0;
        let mut new: [(usize, Hash); 2 * PROOF_LEN] = [(0, Hash::ZERO); 2 * PROOF_LEN];
        let mut new_len = 0;
        // The root is known, so this stops at level 6 at the latest.
        while !self.is_known(index) {
            let sibling = proof_entry(shred, level);
            new[new_len] = (index, hash);
            new[new_len + 1] = (index ^ 1, sibling);
            new_len += 2;
            hash = parent(index, &hash, &sibling);
            index /= 2;
            level += 1;
        }
        if self.nodes[index] != hash {
            return false;
        }
        while index > 1 {
            if self.nodes[index ^ 1] != proof_entry(shred, level) {
                return false;
            }
            index /= 2;
            level += 1;
        }
        for &(i, h) in &new[..new_len] {
            self.set(i, h);
        }
        true
    }

    /// Adds leaves rebuilt by erasure decoding (`leaves[p]` is `Some` for each rebuilt
    /// position) and hashes up to the root. False if any computed node contradicts an
    /// authenticated one: the rebuilt shreds are not the ones the leader signed.
    pub(crate) fn complete(&mut self, leaves: &[Option<Hash>; SHREDS_PER_SET]) -> bool {
        for (position, leaf) in leaves.iter().enumerate() {
            if let Some(leaf) = leaf {
                let index = SHREDS_PER_SET + position;
                if self.is_known(index) {
                    if self.nodes[index] != *leaf {
                        return false;
                    }
                } else {
                    self.set(index, *leaf);
                }
            }
        }
        let all_leaves = u128::MAX << SHREDS_PER_SET;
        if self.known & all_leaves != all_leaves {
            return false;
        }
        let mut computed = self.nodes;
        hash_up(&mut computed);
        let inner = self.nodes.iter().zip(&computed).enumerate();
        if inner
            .take(SHREDS_PER_SET)
            .skip(1)
            .any(|(i, (known, computed))| self.is_known(i) && known != computed)
        {
            return false;
        }
        self.nodes = computed;
        self.known = u128::MAX << 1;
        true
    }

    /// Whether the proof in `shred` is this tree's for leaf `position` (the tree must be
    /// complete).
    pub(crate) fn proof_is(&self, position: usize, shred: &[u8]) -> bool {
        let mut index = SHREDS_PER_SET + position;
        (0..PROOF_LEN).all(|level| {
            let sibling = index ^ 1;
            index /= 2;
            proof_entry(shred, level) == self.nodes[sibling]
        })
    }

    /// Writes the proof of leaf `position` (the tree must be complete).
    pub(crate) fn write_proof(&self, position: usize, shred: &mut [u8]) {
        write_proof(&self.nodes, position, shred);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shred::SHRED_SIZE;

    fn leaves() -> [Hash; SHREDS_PER_SET] {
        std::array::from_fn(|i| bb_core::hash(&[i as u8]))
    }

    fn shred_with_proof(tree: &Tree, position: usize) -> Vec<u8> {
        let mut buf = vec![0u8; SHRED_SIZE];
        tree.write_proof(position, &mut buf);
        buf
    }

    #[test]
    fn simd_leaves_equal_the_one_lane_leaf() {
        for n in [1, 2, 15, 16, 17, 33, 64] {
            let bufs: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    (0..SHRED_SIZE)
                        .map(|j| (i * 131 + j * 7 + j / 13) as u8)
                        .collect()
                })
                .collect();
            let inputs: Vec<&[u8; LEAF_LEN]> = bufs.iter().map(|b| leaf_bytes(b)).collect();
            let mut out = vec![Hash::ZERO; n];
            super::leaves(&inputs, &mut out);
            for (i, (buf, hash)) in bufs.iter().zip(&out).enumerate() {
                assert_eq!(*hash, leaf(buf), "{n} leaves, leaf {i}");
            }
        }
    }

    #[test]
    fn a_leaf_covers_header_and_payload_but_not_signature_or_proof() {
        let mut buf: Vec<u8> = (0..SHRED_SIZE).map(|j| (j * 3) as u8).collect();
        let base = leaf(&buf);
        for at in 0..SHRED_SIZE {
            buf[at] ^= 0x10;
            assert_eq!(leaf(&buf) == base, at >= LEAF_LEN, "byte {at}");
            buf[at] ^= 0x10;
        }
        // Leaves, inner nodes and the root are three different functions.
        let (a, b) = (leaf(&buf), bb_core::hash(b"other"));
        assert_ne!(node(2, &a, &b), node(1, &a, &b));
        assert_ne!(node(2, &a, &b), node(2, &b, &a));
    }

    #[test]
    fn every_proof_leads_to_the_root() {
        let leaves = leaves();
        let tree = Tree::from_leaves(&leaves);
        for (p, leaf) in leaves.iter().enumerate() {
            let buf = shred_with_proof(&tree, p);
            assert_eq!(root_from_proof(leaf, p, &buf), tree.root());
            assert_ne!(root_from_proof(leaf, p ^ 1, &buf), tree.root());
        }
    }

    #[test]
    fn partial_tree_accepts_members_and_refuses_strangers() {
        let leaves = leaves();
        let tree = Tree::from_leaves(&leaves);
        let first = shred_with_proof(&tree, 5);
        let mut partial = PartialTree::from_proof(&leaves[5], 5, &first);
        assert_eq!(partial.root(), tree.root());
        for p in [4, 63, 0, 31, 32] {
            let buf = shred_with_proof(&tree, p);
            assert!(!partial.check(&bb_core::hash(b"stranger"), p, &buf));
            let mut bad_proof = buf.clone();
            bad_proof[PROOF_OFFSET + 32 * 5] ^= 1;
            assert!(!partial.check(&leaves[p], p, &bad_proof), "position {p}");
            assert!(partial.check(&leaves[p], p, &buf));
        }
    }

    #[test]
    fn completing_a_tree_checks_rebuilt_leaves() {
        let leaves = leaves();
        let tree = Tree::from_leaves(&leaves);
        let first = shred_with_proof(&tree, 40);
        let all: [Option<Hash>; SHREDS_PER_SET] = std::array::from_fn(|p| Some(leaves[p]));
        let mut good = PartialTree::from_proof(&leaves[40], 40, &first);
        assert!(good.complete(&all));
        let mut wrong = all;
        wrong[3] = Some(Hash::ZERO);
        let mut bad = PartialTree::from_proof(&leaves[40], 40, &first);
        assert!(!bad.complete(&wrong));
    }
}
