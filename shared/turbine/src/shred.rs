//! The shred: one datagram-sized piece of a block, and its wire format.
//!
//! Decoding takes untrusted bytes: the size is checked before anything else, then every
//! field is range-checked and checked against the fields it depends on, so each valid
//! shred has exactly one encoding. Decoding never verifies the signature or the Merkle
//! proof; [`Shred::verify`] and the [`BlockAssembler`](crate::BlockAssembler) do.

use std::fmt;

use bb_core::{Domain, Hash, Pubkey, Signature, Slot};

use crate::error::ShredError;
use crate::merkle;

/// The wire-format version this crate writes and reads (2: BLAKE3 Merkle tree, the
/// signature and proof after the payload).
pub const SHRED_VERSION: u8 = 2;
/// Data shreds in every FEC set (the last set of a block is zero-padded, never short).
pub const DATA_SHREDS_PER_SET: usize = 32;
/// Reed-Solomon coding shreds in every FEC set: any 32 of the 64 rebuild the set.
pub const CODING_SHREDS_PER_SET: usize = 32;
/// Shreds in every FEC set, and leaves in its Merkle tree.
pub const SHREDS_PER_SET: usize = DATA_SHREDS_PER_SET + CODING_SHREDS_PER_SET;
/// Bytes of the fixed header, at the start of every shred.
pub const HEADER_SIZE: usize = 28;
/// Sibling hashes in a Merkle proof (log2 of 64 leaves).
pub const PROOF_LEN: usize = 6;
/// Bytes a Merkle leaf hashes: header and payload, the first bytes of every shred. 15
/// BLAKE3 blocks of 64 bytes, so sixteen leaves can be hashed in one SIMD pass.
pub(crate) const LEAF_LEN: usize = 960;
pub(crate) const PAYLOAD_OFFSET: usize = HEADER_SIZE;
/// Bytes of payload in every shred: block bytes in a data shred, parity in a coding
/// shred. This is the Reed-Solomon shard size.
pub const PAYLOAD_SIZE: usize = LEAF_LEN - PAYLOAD_OFFSET;
pub(crate) const PAYLOAD_END: usize = PAYLOAD_OFFSET + PAYLOAD_SIZE;
pub(crate) const SIGNATURE_OFFSET: usize = PAYLOAD_END;
pub(crate) const PROOF_OFFSET: usize = SIGNATURE_OFFSET + 64;
/// Every shred is exactly this long: one UDP datagram, under the 1232 bytes that fit the
/// IPv6 minimum MTU.
pub const SHRED_SIZE: usize = PROOF_OFFSET + PROOF_LEN * 32;
/// Block bytes one FEC set carries.
pub const SET_DATA_CAPACITY: usize = DATA_SHREDS_PER_SET * PAYLOAD_SIZE;
/// The largest block the shredder takes and the assembler rebuilds (64 MiB).
pub const MAX_BLOCK_BYTES: usize = bb_core::encoding::MAX_DECODE_BYTES;
/// The most FEC sets a slot can have; higher set indices are malformed.
pub const MAX_FEC_SETS: u32 = MAX_BLOCK_BYTES.div_ceil(SET_DATA_CAPACITY) as u32;

const FLAG_LAST_SET: u8 = 1 << 0;
const FLAG_LAST_DATA_IN_SLOT: u8 = 1 << 1;
const FLAG_LAST_IN_SET: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = FLAG_LAST_SET | FLAG_LAST_DATA_IN_SLOT | FLAG_LAST_IN_SET;

// The Merkle tree, the shard size and the set capacity are sized for these numbers.
const _: () = assert!(SHREDS_PER_SET == 1 << PROOF_LEN);
const _: () = assert!(PAYLOAD_SIZE == 932);
const _: () = assert!(LEAF_LEN.is_multiple_of(64));
const _: () = assert!(SHRED_SIZE == 1216);
const _: () = assert!(SET_DATA_CAPACITY <= u16::MAX as usize);

/// Data shreds carry block bytes; coding shreds carry Reed-Solomon parity over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShredKind {
    Data,
    Code,
}

impl ShredKind {
    pub(crate) const fn to_byte(self) -> u8 {
        match self {
            ShredKind::Data => 0,
            ShredKind::Code => 1,
        }
    }

    /// The leaf position (0..64) in a set's Merkle tree of the shred of this kind at
    /// `index_in_set`: data shreds first.
    pub(crate) const fn position(self, index_in_set: u8) -> usize {
        match self {
            ShredKind::Data => index_in_set as usize,
            ShredKind::Code => DATA_SHREDS_PER_SET + index_in_set as usize,
        }
    }

    /// The kind of the shred at `position` (0..64) of a set's Merkle tree.
    pub(crate) const fn at(position: usize) -> (ShredKind, u8) {
        if position < DATA_SHREDS_PER_SET {
            (ShredKind::Data, position as u8)
        } else {
            (ShredKind::Code, (position - DATA_SHREDS_PER_SET) as u8)
        }
    }
}

/// Names one shred of a slot: what repair asks for and what the retransmit tree is
/// seeded by. Data and coding shreds have separate index spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShredId {
    pub slot: Slot,
    pub kind: ShredKind,
    pub index: u32,
}

/// The header fields every shred of one FEC set shares. The header of a shred the
/// receiver rebuilt by erasure decoding is derived from them and its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetHeader {
    pub slot: Slot,
    pub parent_offset: u32,
    pub fec_set_index: u32,
    /// Block bytes in this set's data shreds.
    pub data_len: u16,
    /// This set ends the block.
    pub last: bool,
}

impl SetHeader {
    /// Block bytes in data shred `index_in_set`: the set's bytes fill its data shreds
    /// in order, each full but the last that holds any.
    pub(crate) fn payload_len(&self, kind: ShredKind, index_in_set: u8) -> u16 {
        match kind {
            ShredKind::Code => PAYLOAD_SIZE as u16,
            ShredKind::Data => {
                let before = usize::from(index_in_set) * PAYLOAD_SIZE;
                usize::from(self.data_len)
                    .saturating_sub(before)
                    .min(PAYLOAD_SIZE) as u16
            }
        }
    }

    pub(crate) fn flags(&self, kind: ShredKind, index_in_set: u8) -> u8 {
        let last_in_set = usize::from(index_in_set) == DATA_SHREDS_PER_SET - 1;
        let mut flags = 0;
        if self.last {
            flags |= FLAG_LAST_SET;
        }
        if last_in_set {
            flags |= FLAG_LAST_IN_SET;
        }
        if self.last && last_in_set && kind == ShredKind::Data {
            flags |= FLAG_LAST_DATA_IN_SLOT;
        }
        flags
    }

    /// The index within the slot, per kind, of this set's shred at `index_in_set`.
    pub(crate) fn shred_index(&self, index_in_set: u8) -> u32 {
        shred_index(self.fec_set_index, index_in_set)
    }

    /// Writes the 28-byte header of the shred at (`kind`, `index_in_set`).
    pub(crate) fn write(&self, kind: ShredKind, index_in_set: u8, out: &mut [u8]) {
        let index = self.shred_index(index_in_set);
        out[0] = SHRED_VERSION;
        out[1] = kind.to_byte();
        out[2] = self.flags(kind, index_in_set);
        out[3..11].copy_from_slice(&self.slot.to_le_bytes());
        out[11..15].copy_from_slice(&self.parent_offset.to_le_bytes());
        out[15..19].copy_from_slice(&index.to_le_bytes());
        out[19..23].copy_from_slice(&self.fec_set_index.to_le_bytes());
        out[23] = index_in_set;
        out[24..26].copy_from_slice(&self.data_len.to_le_bytes());
        out[26..28].copy_from_slice(&self.payload_len(kind, index_in_set).to_le_bytes());
    }

    /// The 28-byte header of the shred at (`kind`, `index_in_set`).
    pub(crate) fn header_bytes(&self, kind: ShredKind, index_in_set: u8) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        self.write(kind, index_in_set, &mut out);
        out
    }

    /// A new, zeroed shred buffer with this set's header for (`kind`, `index_in_set`).
    pub(crate) fn blank_shred(&self, kind: ShredKind, index_in_set: u8) -> Vec<u8> {
        let mut buf = vec![0u8; SHRED_SIZE];
        self.write(kind, index_in_set, &mut buf[..HEADER_SIZE]);
        buf
    }

    /// What the leader signs for a set: slot, set index and Merkle root (44 bytes),
    /// under [`Domain::Shred`].
    pub(crate) fn signed_message(&self, root: &Hash) -> [u8; 44] {
        signed_message(self.slot, self.fec_set_index, root)
    }
}

/// The message a leader signs, once per FEC set, under [`Domain::Shred`]:
/// `slot (u64 LE) || fec_set_index (u32 LE) || merkle_root (32 bytes)`.
pub fn signed_message(slot: Slot, fec_set_index: u32, root: &Hash) -> [u8; 44] {
    let mut msg = [0u8; 44];
    msg[..8].copy_from_slice(&slot.to_le_bytes());
    msg[8..12].copy_from_slice(&fec_set_index.to_le_bytes());
    msg[12..].copy_from_slice(root.as_bytes());
    msg
}

/// A shred's index within the slot, per kind: `fec_set_index * 32 + index_in_set`.
fn shred_index(fec_set_index: u32, index_in_set: u8) -> u32 {
    fec_set_index * DATA_SHREDS_PER_SET as u32 + u32::from(index_in_set)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// One shred: its wire bytes and the header parsed from them.
#[derive(Clone, PartialEq, Eq)]
pub struct Shred {
    set: SetHeader,
    kind: ShredKind,
    index_in_set: u8,
    bytes: Vec<u8>,
}

impl fmt::Debug for Shred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shred")
            .field("slot", &self.set.slot)
            .field("kind", &self.kind)
            .field("fec_set_index", &self.set.fec_set_index)
            .field("index_in_set", &self.index_in_set)
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

impl Shred {
    /// Decodes untrusted bytes (copying them). Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Shred, ShredError> {
        Self::check_len(bytes.len())?;
        Self::from_vec(bytes.to_vec())
    }

    /// Decodes an untrusted buffer the caller owns, without copying. Never panics.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Shred, ShredError> {
        let (set, kind, index_in_set) = parse(&bytes)?;
        Ok(Shred {
            set,
            kind,
            index_in_set,
            bytes,
        })
    }

    fn check_len(len: usize) -> Result<(), ShredError> {
        if len > SHRED_SIZE {
            Err(ShredError::TooLarge {
                len,
                max: SHRED_SIZE,
            })
        } else if len < SHRED_SIZE {
            Err(ShredError::Malformed("shorter than a shred"))
        } else {
            Ok(())
        }
    }

    /// Built by the shredder or the assembler from bytes they wrote themselves.
    pub(crate) fn from_parts(set: SetHeader, position: usize, bytes: Vec<u8>) -> Shred {
        let (kind, index_in_set) = ShredKind::at(position);
        Shred {
            set,
            kind,
            index_in_set,
            bytes,
        }
    }

    pub fn slot(&self) -> Slot {
        self.set.slot
    }

    /// The slot of the block this one builds on.
    pub fn parent_slot(&self) -> Slot {
        self.set.slot - u64::from(self.set.parent_offset)
    }

    pub fn kind(&self) -> ShredKind {
        self.kind
    }

    /// Index among the slot's shreds of this kind: `fec_set_index * 32 + index_in_set`.
    pub fn index(&self) -> u32 {
        self.set.shred_index(self.index_in_set)
    }

    pub fn id(&self) -> ShredId {
        ShredId {
            slot: self.slot(),
            kind: self.kind,
            index: self.index(),
        }
    }

    /// The FEC set's number within the slot: 0, 1, 2, ...
    pub fn fec_set_index(&self) -> u32 {
        self.set.fec_set_index
    }

    /// Position among the set's shreds of the same kind, 0..32.
    pub fn index_in_set(&self) -> u8 {
        self.index_in_set
    }

    /// Whether this shred's set is the last of the block.
    pub fn is_last_set(&self) -> bool {
        self.set.last
    }

    /// Whether this is the last data shred of the slot (data shred 31 of the last set).
    pub fn is_last_in_slot(&self) -> bool {
        self.bytes[2] & FLAG_LAST_DATA_IN_SLOT != 0
    }

    /// Block bytes (data shred) or parity (coding shred), without padding.
    pub fn payload(&self) -> &[u8] {
        let len = usize::from(self.set.payload_len(self.kind, self.index_in_set));
        &self.bytes[PAYLOAD_OFFSET..PAYLOAD_OFFSET + len]
    }

    /// The leader's signature over the set's Merkle root.
    pub fn signature(&self) -> Signature {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&self.bytes[SIGNATURE_OFFSET..PROOF_OFFSET]);
        Signature(sig)
    }

    /// The six sibling hashes from this shred's leaf up to the root.
    pub fn merkle_proof(&self) -> [Hash; PROOF_LEN] {
        std::array::from_fn(|level| merkle::proof_entry(&self.bytes, level))
    }

    /// The Merkle root this shred's contents and proof lead to (not yet trusted).
    pub fn merkle_root(&self) -> Hash {
        merkle::root_from_proof(&merkle::leaf(&self.bytes), self.position(), &self.bytes)
    }

    /// Verifies this shred alone: `leader` signed the root its proof leads to. Returns
    /// that root. The assembler does the same with one signature check per set.
    pub fn verify(&self, leader: &Pubkey) -> Result<Hash, ShredError> {
        let root = self.merkle_root();
        bb_core::verify(
            Domain::Shred,
            leader,
            &self.set.signed_message(&root),
            &self.signature(),
        )
        .map_err(|_| ShredError::BadSignature {
            fec_set_index: self.fec_set_index(),
        })?;
        Ok(root)
    }

    /// The wire form: exactly [`SHRED_SIZE`] bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The leaf's position in the set's Merkle tree: data shreds 0..32, coding 32..64.
    pub(crate) fn position(&self) -> usize {
        self.kind.position(self.index_in_set)
    }

    pub(crate) fn set_header(&self) -> SetHeader {
        self.set
    }
}

/// Checks untrusted bytes are a well-formed shred and parses its header; the Merkle
/// position is `kind * 32 + index_in_set`.
pub(crate) fn parse(bytes: &[u8]) -> Result<(SetHeader, ShredKind, u8), ShredError> {
    Shred::check_len(bytes.len())?;
    let (set, kind, index_in_set) = parse_header(bytes)?;
    if kind == ShredKind::Data {
        let len = usize::from(set.payload_len(kind, index_in_set));
        if bytes[PAYLOAD_OFFSET + len..PAYLOAD_END]
            .iter()
            .any(|&b| b != 0)
        {
            return Err(ShredError::Malformed("data shred padding is not zero"));
        }
    }
    Ok((set, kind, index_in_set))
}

/// Parses and cross-checks the header of a buffer known to be [`SHRED_SIZE`] long.
fn parse_header(b: &[u8]) -> Result<(SetHeader, ShredKind, u8), ShredError> {
    use ShredError::Malformed;
    if b[0] != SHRED_VERSION {
        return Err(Malformed("unknown shred version"));
    }
    let kind = match b[1] {
        0 => ShredKind::Data,
        1 => ShredKind::Code,
        _ => return Err(Malformed("unknown shred kind")),
    };
    let flags = b[2];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Malformed("unknown flag bits"));
    }
    let slot = le_u64(b, 3);
    let parent_offset = le_u32(b, 11);
    let index = le_u32(b, 15);
    let fec_set_index = le_u32(b, 19);
    let index_in_set = b[23];
    let data_len = le_u16(b, 24);
    let payload_len = le_u16(b, 26);

    if usize::from(index_in_set) >= DATA_SHREDS_PER_SET {
        return Err(Malformed("index in set is 32 or more"));
    }
    if fec_set_index >= MAX_FEC_SETS {
        return Err(Malformed("FEC set index beyond the largest block"));
    }
    if index != shred_index(fec_set_index, index_in_set) {
        return Err(Malformed("shred index does not match its set and position"));
    }
    if slot == 0 {
        if parent_offset != 0 {
            return Err(Malformed("slot 0 has no parent offset"));
        }
    } else if parent_offset == 0 || u64::from(parent_offset) > slot {
        return Err(Malformed("parent offset out of range"));
    }
    let last = flags & FLAG_LAST_SET != 0;
    if usize::from(data_len) > SET_DATA_CAPACITY {
        return Err(Malformed("set data length over the set capacity"));
    }
    if !last && usize::from(data_len) != SET_DATA_CAPACITY {
        return Err(Malformed("a set before the last must be full"));
    }
    if last && fec_set_index > 0 && data_len == 0 {
        return Err(Malformed("an empty last set after a full one"));
    }
    let set = SetHeader {
        slot,
        parent_offset,
        fec_set_index,
        data_len,
        last,
    };
    if flags != set.flags(kind, index_in_set) {
        return Err(Malformed("flags do not match the shred's position"));
    }
    if payload_len != set.payload_len(kind, index_in_set) {
        return Err(Malformed(
            "payload length does not match the set data length",
        ));
    }
    Ok((set, kind, index_in_set))
}

#[cfg(test)]
mod tests {
    use bb_core::Keypair;

    use super::*;
    use crate::Shredder;

    fn sample() -> (Keypair, Vec<Shred>) {
        let leader = Keypair::from_seed(&[3; 32]);
        let block: Vec<u8> = (0..SET_DATA_CAPACITY + 1000).map(|i| i as u8).collect();
        let shreds = Shredder::new(leader.clone())
            .shred(77, 70, &block)
            .expect("valid block")
            .into_iter()
            .flat_map(|set| set.into_shreds())
            .collect();
        (leader, shreds)
    }

    #[test]
    fn decoding_round_trips_every_field() {
        let (leader, shreds) = sample();
        assert_eq!(shreds.len(), 128);
        for shred in &shreds {
            assert_eq!(shred.as_bytes().len(), SHRED_SIZE);
            let decoded = Shred::from_bytes(shred.as_bytes()).expect("decodes");
            assert_eq!(&decoded, shred);
            assert_eq!(decoded.slot(), 77);
            assert_eq!(decoded.parent_slot(), 70);
            assert!(decoded.verify(&leader.pubkey()).is_ok());
        }
        let last_data = &shreds[64 + 31];
        assert!(last_data.is_last_set() && last_data.is_last_in_slot());
        assert_eq!(
            last_data.id(),
            ShredId {
                slot: 77,
                kind: ShredKind::Data,
                index: 63
            }
        );
        assert!(!shreds[31].is_last_in_slot() && !shreds[127].is_last_in_slot());
        assert_eq!(shreds[64].payload().len(), PAYLOAD_SIZE);
        assert_eq!(shreds[65].payload().len(), 1000 - PAYLOAD_SIZE);
        assert!(shreds[66].payload().is_empty());
        assert_eq!(shreds[100].kind(), ShredKind::Code);
        assert_eq!(shreds[100].index(), 32 + 4);
    }

    #[test]
    fn wrong_sizes_are_refused_before_parsing() {
        let (_, shreds) = sample();
        let bytes = shreds[0].as_bytes();
        assert_eq!(
            Shred::from_bytes(&bytes[..SHRED_SIZE - 1]).err(),
            Some(ShredError::Malformed("shorter than a shred"))
        );
        assert_eq!(
            Shred::from_bytes(&[]).err(),
            Some(ShredError::Malformed("shorter than a shred"))
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            Shred::from_vec(long).err(),
            Some(ShredError::TooLarge {
                len: SHRED_SIZE + 1,
                max: SHRED_SIZE
            })
        );
    }

    #[test]
    fn inconsistent_header_fields_are_malformed() {
        let (_, shreds) = sample();
        let edit = |at: usize, value: &[u8], of: usize| {
            let mut b = shreds[of].as_bytes().to_vec();
            b[at..at + value.len()].copy_from_slice(value);
            Shred::from_vec(b).err()
        };
        let malformed = |reason| Some(ShredError::Malformed(reason));
        assert_eq!(edit(0, &[1], 0), malformed("unknown shred version"));
        assert_eq!(edit(1, &[2], 0), malformed("unknown shred kind"));
        assert_eq!(edit(2, &[0x80], 0), malformed("unknown flag bits"));
        assert_eq!(
            edit(2, &[FLAG_LAST_IN_SET], 0),
            malformed("flags do not match the shred's position")
        );
        assert_eq!(
            edit(11, &0u32.to_le_bytes(), 0),
            malformed("parent offset out of range")
        );
        assert_eq!(
            edit(11, &78u32.to_le_bytes(), 0),
            malformed("parent offset out of range")
        );
        assert_eq!(
            edit(15, &5u32.to_le_bytes(), 0),
            malformed("shred index does not match its set and position")
        );
        assert_eq!(
            edit(19, &MAX_FEC_SETS.to_le_bytes(), 0),
            malformed("FEC set index beyond the largest block")
        );
        assert_eq!(edit(23, &[32], 0), malformed("index in set is 32 or more"));
        assert_eq!(
            edit(24, &100u16.to_le_bytes(), 0),
            malformed("a set before the last must be full")
        );
        assert_eq!(
            edit(24, &(SET_DATA_CAPACITY as u16 + 1).to_le_bytes(), 0),
            malformed("set data length over the set capacity")
        );
        assert_eq!(
            edit(24, &0u16.to_le_bytes(), 64),
            malformed("an empty last set after a full one")
        );
        assert_eq!(
            edit(26, &7u16.to_le_bytes(), 0),
            malformed("payload length does not match the set data length")
        );
        // Shred 66 holds no block bytes: its payload must be all padding.
        assert_eq!(
            edit(PAYLOAD_OFFSET + 5, &[1], 66),
            malformed("data shred padding is not zero")
        );
    }
}
