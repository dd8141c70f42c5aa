//! The shred Merkle tree as the wire format defines it (version 2), written again from
//! the format's description and not shared with `bb-turbine`, so the targets that play a
//! byzantine leader (re-signing edited shreds) check the crate against an independent
//! reading: leaf = BLAKE3 chunk chaining value (keyed, counter 0) of bytes 0..960,
//! node = BLAKE3 parent chaining value, root = parent with the root flag.

use bb_core::Hash;
use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root};

/// The BLAKE3 key of every shred tree.
pub const TREE_KEY: &[u8; 32] = b"bb/shred-merkle/v2\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
/// Header and payload: what a leaf hashes.
pub const LEAF_LEN: usize = 960;
pub const SIGNATURE_OFFSET: usize = LEAF_LEN;
pub const PROOF_OFFSET: usize = SIGNATURE_OFFSET + 64;
/// Leaves in a set's tree; leaf position `p` sits at heap index `LEAVES + p`.
pub const LEAVES: usize = 64;

/// The leaf of a whole shred buffer.
pub fn leaf(shred: &[u8]) -> Hash {
    Hash(
        blake3::Hasher::new_keyed(TREE_KEY)
            .update(&shred[..LEAF_LEN])
            .finalize_non_root(),
    )
}

/// The node at heap index `index` (1: the root) over its two children.
pub fn node(index: usize, left: &Hash, right: &Hash) -> Hash {
    let mode = Mode::KeyedHash(TREE_KEY);
    if index == 1 {
        Hash(*merge_subtrees_root(&left.0, &right.0, mode).as_bytes())
    } else {
        Hash(merge_subtrees_non_root(&left.0, &right.0, mode))
    }
}

/// The Merkle position of a shred from its header: data shreds 0..32, coding 32..64.
pub fn position(shred: &[u8]) -> usize {
    usize::from(shred[1] & 1) * 32 + usize::from(shred[23] % 32)
}

/// The root a shred's leaf and its own proof lead to.
pub fn root_from_proof(shred: &[u8]) -> Hash {
    let mut index = LEAVES + position(shred);
    let mut hash = leaf(shred);
    for level in 0..6 {
        let at = PROOF_OFFSET + 32 * level;
        let mut sibling = [0u8; 32];
        sibling.copy_from_slice(&shred[at..at + 32]);
        let sibling = Hash(sibling);
        hash = if index & 1 == 0 {
            node(index / 2, &hash, &sibling)
        } else {
            node(index / 2, &sibling, &hash)
        };
        index /= 2;
    }
    hash
}
