//! SHA-256 hashes: the one hash function of the protocol.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

/// A SHA-256 digest. Shown and parsed as base58, like addresses.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0u8; 32]);

    pub const fn new(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Short form for logs and tables: the first 8 base58 characters.
    pub fn short(&self) -> String {
        let s = self.to_string();
        s.chars().take(8).collect()
    }
}

/// SHA-256 of one byte string.
#[inline]
pub fn hash(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256's initial state.
const SHA256_INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The one 64-byte block SHA-256 pads a 32-byte message into: the message, 0x80, zeros,
/// and the length in bits (256) big-endian at the end.
#[inline]
fn padded_block(data: &[u8; 32]) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(data);
    block[32] = 0x80;
    block[62] = 0x01;
    block
}

/// Compresses `block` from the initial state and writes the digest over its first half,
/// so the block is ready to hash again.
#[inline]
fn compress_in_place(block: &mut [u8; 64]) {
    let mut state = SHA256_INITIAL;
    sha2::block_api::compress256(&mut state, &[*block]);
    for (chunk, word) in block[..32].chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// SHA-256 of exactly 32 bytes: the PoH step. One compression of a pre-padded block is
/// about 20% faster than the general path (whose finalization does not inline across
/// crates).
#[inline]
pub fn hash32(data: &[u8; 32]) -> Hash {
    Hash(hash32_chain(data, 1))
}

/// Applies [`hash32`] `n` times, keeping the padded block in place between rounds.
#[inline]
pub fn hash32_chain(start: &[u8; 32], n: u64) -> [u8; 32] {
    let mut block = padded_block(start);
    for _ in 0..n {
        compress_in_place(&mut block);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&block[..32]);
    out
}

/// SHA-256 of the concatenation of several byte strings, without copying them together.
#[inline]
pub fn hashv(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    Hash(hasher.finalize().into())
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// Why a string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHashError {
    #[error("not base58: {0}")]
    Base58(String),
    #[error("decodes to {0} bytes, a hash has 32")]
    WrongLength(usize),
}

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // 32 bytes are at most 44 base58 characters; refuse longer input before decoding.
        if s.len() > 44 {
            return Err(ParseHashError::WrongLength(s.len() * 3 / 4));
        }
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|e| ParseHashError::Base58(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ParseHashError::WrongLength(bytes.len()))?;
        Ok(Hash(arr))
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash32_matches_the_general_path() {
        let mut h = hash(b"seed");
        for _ in 0..100 {
            assert_eq!(hash32(&h.0), hash(&h.0));
            h = hash(&h.0);
        }
        let start = hash(b"chain").0;
        let mut expect = start;
        for _ in 0..57 {
            expect = hash(&expect).0;
        }
        assert_eq!(hash32_chain(&start, 57), expect);
        assert_eq!(hash32_chain(&start, 0), start);
    }

    #[test]
    fn hashv_equals_hash_of_concatenation() {
        assert_eq!(hashv(&[b"ab", b"cd"]), hash(b"abcd"));
    }

    #[test]
    fn display_parse_round_trip() {
        let h = hash(b"bb");
        assert_eq!(h.to_string().parse::<Hash>(), Ok(h));
    }

    #[test]
    fn parse_rejects_wrong_length_and_alphabet() {
        assert_eq!("2g".parse::<Hash>(), Err(ParseHashError::WrongLength(1)));
        assert!(matches!(
            "0OIl".parse::<Hash>(),
            Err(ParseHashError::Base58(_))
        ));
    }
}
