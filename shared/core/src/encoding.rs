//! The canonical binary encoding of everything that is signed or hashed.
//!
//! One encoding, one byte string per value: little-endian fixed-width integers, length-
//! prefixed sequences, strict booleans and enum tags (bincode 2 in its fixed-int mode), and
//! a leading format-version byte. Decoding takes untrusted bytes: the input size is checked
//! against the type's limit before anything is parsed, sequence lengths are checked against
//! the same limit before anything is allocated, and trailing bytes are an error, so two
//! different byte strings never decode to the same value.

use bincode::{Decode, Encode};

/// The version byte every encoding starts with.
pub const ENCODING_VERSION: u8 = 1;

/// Largest message the decoder will look at, whatever the type (64 MiB: a full block).
pub const MAX_DECODE_BYTES: usize = 64 << 20;

/// The encoder's configuration: no limit is needed for values we build ourselves.
const ENCODE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
> = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding();

/// Decodes with a byte budget of `LIMIT`: bincode charges every sequence's in-memory size
/// against it *before* allocating, so a forged length prefix fails instead of allocating.
fn decode_with_limit<T: Decode<()>, const LIMIT: usize>(
    body: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    let config = ENCODE_CONFIG.with_limit::<LIMIT>();
    bincode::decode_from_slice(body, config)
}

/// Picks a budget proportional to the input (twice the next power of two, at least
/// 4 KiB), so that no input can make the decoder allocate more than a few times its size.
fn decode_proportional<T: Decode<()>>(
    body: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    macro_rules! tiers {
        ($($cap:literal),*) => {
            match body.len() {
                $(n if n <= $cap => decode_with_limit::<T, { 2 * $cap }>(body),)*
                _ => decode_with_limit::<T, { 2 * MAX_DECODE_BYTES }>(body),
            }
        };
    }
    tiers!(
        2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304,
        8388608, 16777216, 33554432
    )
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: {len} bytes is over the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what}: empty input")]
    Empty { what: &'static str },
    #[error("{what}: unknown encoding version {version}")]
    Version { what: &'static str, version: u8 },
    #[error("{what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{what}: {extra} trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },
}

/// A type with one canonical byte encoding.
pub trait Canonical: Encode + Decode<()> + Sized {
    /// The name used in errors.
    const NAME: &'static str;
    /// The largest encoding accepted, version byte included.
    const MAX_SIZE: usize;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(ENCODING_VERSION);
        // Writing into a Vec cannot fail, and every type we encode fits the limit by
        // construction; an error here is a bug in a type definition, not bad input.
        if let Err(e) = bincode::encode_into_std_write(self, out, ENCODE_CONFIG) {
            unreachable!("encoding {} into memory failed: {e}", Self::NAME);
        }
    }

    /// Decodes untrusted bytes. Never panics; never allocates more than the input allows.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let what = Self::NAME;
        if bytes.len() > Self::MAX_SIZE {
            return Err(DecodeError::TooLarge {
                what,
                len: bytes.len(),
                max: Self::MAX_SIZE,
            });
        }
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty { what })?;
        if version != ENCODING_VERSION {
            return Err(DecodeError::Version { what, version });
        }
        let (value, read) =
            decode_proportional::<Self>(body).map_err(|e| DecodeError::Malformed {
                what,
                reason: e.to_string(),
            })?;
        if read != body.len() {
            return Err(DecodeError::TrailingBytes {
                what,
                extra: body.len() - read,
            });
        }
        Ok(value)
    }
}

/// Encodes a value without the version byte, for hashing parts of a larger structure
/// (a transaction's message, a block header) with the same canonical rules.
pub fn encode_body<T: Encode>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    if let Err(e) = bincode::encode_into_std_write(value, &mut out, ENCODE_CONFIG) {
        unreachable!("encoding into memory failed: {e}");
    }
    out
}
