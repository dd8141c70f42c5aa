//! The Merkle tree over one FEC set's 64 shreds.
//!
//! Leaf = SHA-256(`bb/shred-leaf` || header || payload): everything in the shred but the
//! signature and the proof, so the root commits to every header field and every payload
//! byte. Node = SHA-256(`bb/shred-node` || left || right). The two prefixes have the
//! same length and differ, so no leaf can pass for a node. Trees are stored in heap
//! order: index 1 is the root, the children of `i` are `2i` and `2i + 1`, and leaf
//! position `p` (data shreds 0..32, coding shreds 32..64) sits at index `64 + p`.

use bb_core::{Hash, hashv};

use crate::shred::{HEADER_SIZE, PAYLOAD_OFFSET, PROOF_LEN, PROOF_OFFSET, SHREDS_PER_SET};

const LEAF_PREFIX: &[u8] = b"bb/shred-leaf";
const NODE_PREFIX: &[u8] = b"bb/shred-node";
const NODES: usize = 2 * SHREDS_PER_SET;

/// The leaf hash of a full shred buffer.
#[inline]
pub(crate) fn leaf(shred: &[u8]) -> Hash {
    leaf_of(&shred[..HEADER_SIZE], &shred[PAYLOAD_OFFSET..])
}

/// The leaf hash of a shred from its header and its (padded) payload, before the shred
/// buffer exists: the shredder hashes data shreds straight from the block.
#[inline]
pub(crate) fn leaf_of(header: &[u8], payload: &[u8]) -> Hash {
    hashv(&[LEAF_PREFIX, header, payload])
}

#[inline]
fn node(left: &Hash, right: &Hash) -> Hash {
    hashv(&[NODE_PREFIX, left.as_bytes(), right.as_bytes()])
}

/// The parent of the node at heap index `index` holding `hash`, given its sibling.
#[inline]
fn parent(index: usize, hash: &Hash, sibling: &Hash) -> Hash {
    if index & 1 == 0 {
        node(hash, sibling)
    } else {
        node(sibling, hash)
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
        for i in (1..SHREDS_PER_SET).rev() {
            nodes[i] = node(&nodes[2 * i], &nodes[2 * i + 1]);
        }
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
        let mut fresh = 0u128;
        for (position, leaf) in leaves.iter().enumerate() {
            if let Some(leaf) = leaf {
                let index = SHREDS_PER_SET + position;
                if self.is_known(index) {
                    if self.nodes[index] != *leaf {
                        return false;
                    }
                } else {
                    self.set(index, *leaf);
                    fresh |= 1u128 << index;
                }
            }
        }
        for i in (1..SHREDS_PER_SET).rev() {
            let children = 0b11u128 << (2 * i);
            if fresh & children == 0 && self.is_known(i) {
                continue;
            }
            let hash = node(&self.nodes[2 * i], &self.nodes[2 * i + 1]);
            if self.is_known(i) {
                if self.nodes[i] != hash {
                    return false;
                }
            } else {
                self.set(i, hash);
                fresh |= 1u128 << i;
            }
        }
        self.known == u128::MAX << 1
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
