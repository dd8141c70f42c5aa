//! The leader's side: a block's bytes into signed FEC sets of shreds.

use std::sync::OnceLock;

use bb_core::{Domain, Hash, Keypair, Pubkey, Signature, Slot};
use bb_erasure::Codec;
use rayon::prelude::*;

use crate::error::ShredError;
use crate::merkle::{self, Tree};
use crate::shred::{
    DATA_SHREDS_PER_SET, LEAF_LEN, MAX_BLOCK_BYTES, PAYLOAD_END, PAYLOAD_OFFSET, PAYLOAD_SIZE,
    PROOF_OFFSET, SET_DATA_CAPACITY, SHRED_SIZE, SHREDS_PER_SET, SIGNATURE_OFFSET, SetHeader,
    Shred, ShredKind,
};

/// The one Reed-Solomon codec (32 data + 32 parity shards), shared by every shredder and
/// assembler: built once, on the fastest kernel the CPU runs (the bytes are the same on
/// every kernel).
pub(crate) fn codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| {
        Codec::new(DATA_SHREDS_PER_SET, SHREDS_PER_SET - DATA_SHREDS_PER_SET)
            .expect("32 data + 32 parity shards is a valid GF(2^8) Reed-Solomon shape")
    })
}

/// One FEC set as the leader made it: 32 data shreds then 32 coding shreds, all under
/// one signed Merkle root.
#[derive(Debug, Clone)]
pub struct FecSet {
    fec_set_index: u32,
    root: Hash,
    signature: Signature,
    shreds: Vec<Shred>,
}

impl FecSet {
    pub fn fec_set_index(&self) -> u32 {
        self.fec_set_index
    }

    pub fn merkle_root(&self) -> Hash {
        self.root
    }

    pub fn signature(&self) -> Signature {
        self.signature
    }

    /// Data shreds 0..32 first, then coding shreds 0..32.
    pub fn shreds(&self) -> &[Shred] {
        &self.shreds
    }

    pub fn into_shreds(self) -> Vec<Shred> {
        self.shreds
    }
}

/// Cuts blocks into signed FEC sets. Holds the leader's key; stateless otherwise.
///
/// Sets are independent, so a block's sets are built in parallel on the rayon pool the
/// caller runs in (the global one by default).
#[derive(Debug, Clone)]
pub struct Shredder {
    leader: Keypair,
}

impl Shredder {
    pub fn new(leader: Keypair) -> Shredder {
        Shredder { leader }
    }

    pub fn pubkey(&self) -> Pubkey {
        self.leader.pubkey()
    }

    /// Shreds `block` (opaque bytes, at most [`MAX_BLOCK_BYTES`]) for `slot` on top of
    /// `parent_slot`. Every set but the last is full; the last holds the rest, its data
    /// zero-padded to 32 shreds (an empty block is one set of empty data shreds).
    pub fn shred(
        &self,
        slot: Slot,
        parent_slot: Slot,
        block: &[u8],
    ) -> Result<Vec<FecSet>, ShredError> {
        if block.len() > MAX_BLOCK_BYTES {
            return Err(ShredError::BlockTooLarge {
                len: block.len(),
                max: MAX_BLOCK_BYTES,
            });
        }
        let parent_offset = match slot.checked_sub(parent_slot) {
            Some(0) if slot == 0 => 0,
            Some(offset) if offset > 0 => {
                u32::try_from(offset).map_err(|_| ShredError::ParentTooFar {
                    slot,
                    parent: parent_slot,
                })?
            }
            _ => {
                return Err(ShredError::ParentNotBelow {
                    slot,
                    parent: parent_slot,
                });
            }
        };
        let sets = block.len().div_ceil(SET_DATA_CAPACITY).max(1);
        let set = |k: usize| {
            let start = k * SET_DATA_CAPACITY;
            let data = &block[start..block.len().min(start + SET_DATA_CAPACITY)];
            let header = SetHeader {
                slot,
                parent_offset,
                // Both fit: sets <= MAX_FEC_SETS and data.len() <= SET_DATA_CAPACITY.
                fec_set_index: k as u32,
                data_len: data.len() as u16,
                last: k + 1 == sets,
            };
            shred_set(&self.leader, header, data)
        };
        Ok(if sets == 1 {
            vec![set(0)]
        } else {
            (0..sets).into_par_iter().map(set).collect()
        })
    }
}

/// Builds one set: each data shred written with its header and block bytes, parity
/// encoded straight into the coding shreds, all 64 leaves hashed in one SIMD pass, the
/// root signed once, and the signature and proofs written in place. The only copy of
/// the block's bytes is into the data shreds themselves.
fn shred_set(leader: &Keypair, header: SetHeader, data: &[u8]) -> FecSet {
    let mut bufs: Vec<Vec<u8>> = (0..SHREDS_PER_SET)
        .map(|position| {
            let (kind, index_in_set) = ShredKind::at(position);
            let mut buf = Vec::with_capacity(SHRED_SIZE);
            buf.extend_from_slice(&header.header_bytes(kind, index_in_set));
            if kind == ShredKind::Data {
                let start = (usize::from(index_in_set) * PAYLOAD_SIZE).min(data.len());
                let end = (start + PAYLOAD_SIZE).min(data.len());
                buf.extend_from_slice(&data[start..end]);
            }
            // Padding of a short data shred, parity to come, signature and proof.
            buf.resize(SHRED_SIZE, 0);
            buf
        })
        .collect();
    {
        let (data_bufs, code_bufs) = bufs.split_at_mut(DATA_SHREDS_PER_SET);
        let shards: Vec<&[u8]> = data_bufs
            .iter()
            .map(|b| &b[PAYLOAD_OFFSET..PAYLOAD_END])
            .collect();
        let mut parity: Vec<&mut [u8]> = code_bufs
            .iter_mut()
            .map(|b| &mut b[PAYLOAD_OFFSET..PAYLOAD_END])
            .collect();
        codec()
            .encode_sep(&shards, &mut parity)
            .expect("32 data and 32 parity shards of equal, non-zero size");
    }
    let mut leaves = [Hash::ZERO; SHREDS_PER_SET];
    let inputs: Vec<&[u8; LEAF_LEN]> = bufs.iter().map(|b| merkle::leaf_bytes(b)).collect();
    merkle::leaves(&inputs, &mut leaves);
    let tree = Tree::from_leaves(&leaves);
    let root = tree.root();
    let signature = leader.sign(Domain::Shred, &header.signed_message(&root));

    let shreds = bufs
        .into_iter()
        .enumerate()
        .map(|(position, mut buf)| {
            buf[SIGNATURE_OFFSET..PROOF_OFFSET].copy_from_slice(signature.as_bytes());
            tree.write_proof(position, &mut buf);
            Shred::from_parts(header, position, buf)
        })
        .collect();
    FecSet {
        fec_set_index: header.fec_set_index,
        root,
        signature,
        shreds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shred::SHRED_SIZE;

    #[test]
    fn every_shred_leads_to_its_sets_signed_root_at_every_length() {
        let leader = Keypair::from_seed(&[4; 32]);
        let shredder = Shredder::new(leader.clone());
        let cap = SET_DATA_CAPACITY;
        for len in [
            0,
            1,
            PAYLOAD_SIZE - 1,
            PAYLOAD_SIZE,
            PAYLOAD_SIZE + 1,
            cap - 1,
            cap,
            cap + 1,
            3 * cap + 500,
        ] {
            let block: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let sets = shredder.shred(9, 8, &block).expect("valid block");
            assert_eq!(sets.len(), len.div_ceil(cap).max(1));
            let mut rebuilt = Vec::new();
            for (k, set) in sets.iter().enumerate() {
                assert_eq!(set.fec_set_index(), k as u32);
                assert_eq!(set.shreds().len(), SHREDS_PER_SET);
                for (position, shred) in set.shreds().iter().enumerate() {
                    assert_eq!(shred.as_bytes().len(), SHRED_SIZE);
                    assert_eq!(shred.position(), position);
                    assert_eq!(shred.signature(), set.signature());
                    assert_eq!(shred.verify(&leader.pubkey()), Ok(set.merkle_root()));
                    assert_eq!(
                        &Shred::from_bytes(shred.as_bytes()).expect("decodes"),
                        shred
                    );
                }
                for shred in &set.shreds()[..DATA_SHREDS_PER_SET] {
                    rebuilt.extend_from_slice(shred.payload());
                }
            }
            assert_eq!(rebuilt, block, "length {len}");
        }
    }
}
