//! The bytes of a snapshot file: constants, the header, chunk framing and records. See the
//! crate documentation for the layout.

use bb_core::{Hash, Offense, Pubkey, Signature, Slot};
use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

/// `BBSNAP\0`: the first seven bytes of every snapshot file.
pub(crate) const MAGIC: &[u8; 7] = b"BBSNAP\0";
/// The format version this build writes and reads (the eighth byte).
pub const FORMAT_VERSION: u8 = 2;
/// The trailer's marker.
pub(crate) const TRAILER_MAGIC: &[u8; 8] = b"BBSNEND\0";
/// Trailer: marker, chunk count, file checksum.
pub(crate) const TRAILER_LEN: u64 = 8 + 8 + 32;
/// Largest encoded header accepted.
pub(crate) const MAX_HEADER: u32 = 4096;
/// Largest raw (decompressed) chunk payload.
pub const MAX_RAW_CHUNK: u32 = 8 << 20;
/// Largest compressed chunk payload: zstd's bound for [`MAX_RAW_CHUNK`], with room.
pub(crate) const MAX_COMPRESSED_CHUNK: u32 = MAX_RAW_CHUNK + (1 << 20);
/// Chunk frame: compressed length, raw length, checksum.
pub(crate) const FRAME_LEN: u64 = 4 + 4 + 32;
/// Accounts per chunk (the last chunk may hold fewer).
pub const ACCOUNTS_PER_CHUNK: u32 = 32_768;
/// Status-cache records per chunk (the last chunk may hold fewer).
pub const STATUS_PER_CHUNK: u32 = 32_768;
/// One account record: pubkey, balance.
pub(crate) const ACCOUNT_RECORD: usize = 32 + 8;
/// One status record: recent blockhash, signature, slot.
pub(crate) const STATUS_RECORD: usize = 32 + 64 + 8;
/// zstd level: fast; account records barely compress anyway.
pub(crate) const ZSTD_LEVEL: i32 = 1;

const CHUNK_DOMAIN: &[u8] = b"bb/snapshot-chunk/v1\0";

const BINCODE: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
> = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding();

/// The header: every scalar of the bank's fields and what fixes the chunk layout.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct Header {
    pub slot: Slot,
    pub parent_slot: Slot,
    pub parent_hash: Hash,
    pub epoch: u64,
    pub collector: Pubkey,
    pub block_id: Hash,
    pub bank_hash: Hash,
    pub state_hash: Hash,
    pub poh_end: Hash,
    pub signature_count: u64,
    pub collected_fees: u64,
    pub genesis_hash: Hash,
    pub blockhash_queue_height: u64,
    pub account_count: u64,
    pub status_count: u64,
    pub accounts_per_chunk: u32,
    pub status_per_chunk: u32,
    pub created_ms: u64,
}

/// Chunk 0: the bank's fields that are lists but small.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct BankLists {
    pub blockhash_queue: Vec<(Hash, u64)>,
    pub stakes: Vec<(Pubkey, u64)>,
    pub epoch_stakes: Vec<(u64, Vec<(Pubkey, u64)>)>,
    /// Recorded slashing offenses with the epoch each was recorded in (since version 2).
    pub offenses: Vec<(Offense, u64)>,
}

/// What a chunk holds, by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    Lists,
    /// Status records `first..first + count`.
    Status {
        first: u64,
        count: u64,
    },
    /// Accounts `first..first + count`.
    Accounts {
        first: u64,
        count: u64,
    },
}

impl ChunkKind {
    /// "bank fields", "status cache entries 0..32768", "accounts 229376..262144".
    pub(crate) fn describe(&self) -> String {
        match self {
            ChunkKind::Lists => "bank fields".to_string(),
            ChunkKind::Status { first, count } => {
                format!("status cache entries {first}..{}", first + count)
            }
            ChunkKind::Accounts { first, count } => {
                format!("accounts {first}..{}", first + count)
            }
        }
    }
}

impl Header {
    /// Whether the chunk sizes are within bounds (checked before the layout is used).
    pub(crate) fn layout_error(&self) -> Option<String> {
        let max_accounts = u64::from(MAX_RAW_CHUNK) / ACCOUNT_RECORD as u64;
        let max_status = u64::from(MAX_RAW_CHUNK) / STATUS_RECORD as u64;
        if self.accounts_per_chunk == 0 || u64::from(self.accounts_per_chunk) > max_accounts {
            return Some(format!("{} accounts per chunk", self.accounts_per_chunk));
        }
        if self.status_per_chunk == 0 || u64::from(self.status_per_chunk) > max_status {
            return Some(format!(
                "{} status entries per chunk",
                self.status_per_chunk
            ));
        }
        // Far beyond any real state, and keeps every count below overflow.
        if self.account_count > 1 << 40 || self.status_count > 1 << 40 {
            return Some("counts beyond any real state".to_string());
        }
        None
    }

    pub(crate) fn status_chunks(&self) -> u64 {
        self.status_count.div_ceil(u64::from(self.status_per_chunk))
    }

    pub(crate) fn account_chunks(&self) -> u64 {
        self.account_count
            .div_ceil(u64::from(self.accounts_per_chunk))
    }

    /// How many chunks follow the header.
    pub(crate) fn chunk_count(&self) -> u64 {
        1 + self.status_chunks() + self.account_chunks()
    }

    /// What chunk `index` holds. `index` is below [`Header::chunk_count`].
    pub(crate) fn chunk_kind(&self, index: u64) -> ChunkKind {
        if index == 0 {
            return ChunkKind::Lists;
        }
        let i = index - 1;
        if i < self.status_chunks() {
            let per = u64::from(self.status_per_chunk);
            let first = i * per;
            return ChunkKind::Status {
                first,
                count: per.min(self.status_count - first),
            };
        }
        let per = u64::from(self.accounts_per_chunk);
        let first = (i - self.status_chunks()) * per;
        ChunkKind::Accounts {
            first,
            count: per.min(self.account_count.saturating_sub(first)),
        }
    }
}

pub(crate) fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Encoding into memory cannot fail for these plain types.
    bincode::encode_to_vec(value, BINCODE).unwrap_or_default()
}

/// Decodes `bytes` whole, with a budget so a forged length cannot allocate.
pub(crate) fn decode<T: Decode<()>>(bytes: &[u8]) -> Result<T, String> {
    let config = BINCODE.with_limit::<{ 2 * MAX_RAW_CHUNK as usize }>();
    let (value, read) = bincode::decode_from_slice(bytes, config).map_err(|e| e.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - read));
    }
    Ok(value)
}

/// The checksum of chunk `index`: over a domain prefix, the index, both lengths and the
/// compressed bytes.
pub(crate) fn chunk_checksum(
    index: u64,
    compressed_len: u32,
    raw_len: u32,
    data: &[u8],
) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(CHUNK_DOMAIN);
    sha.update(index.to_le_bytes());
    sha.update(compressed_len.to_le_bytes());
    sha.update(raw_len.to_le_bytes());
    sha.update(data);
    sha.finalize().into()
}

pub(crate) fn put_account(out: &mut Vec<u8>, pubkey: &Pubkey, balance: u64) {
    out.extend_from_slice(&pubkey.0);
    out.extend_from_slice(&balance.to_le_bytes());
}

/// The accounts of a raw account chunk (its length is a multiple of the record size).
pub(crate) fn accounts(raw: &[u8]) -> impl Iterator<Item = (Pubkey, u64)> + '_ {
    raw.chunks_exact(ACCOUNT_RECORD).map(|r| {
        let mut key = [0u8; 32];
        key.copy_from_slice(&r[..32]);
        let mut bal = [0u8; 8];
        bal.copy_from_slice(&r[32..]);
        (Pubkey(key), u64::from_le_bytes(bal))
    })
}

pub(crate) fn put_status(out: &mut Vec<u8>, recent: &Hash, sig: &Signature, slot: Slot) {
    out.extend_from_slice(&recent.0);
    out.extend_from_slice(&sig.0);
    out.extend_from_slice(&slot.to_le_bytes());
}

/// The records of a raw status chunk (its length is a multiple of the record size).
pub(crate) fn statuses(raw: &[u8]) -> impl Iterator<Item = (Hash, Signature, Slot)> + '_ {
    raw.chunks_exact(STATUS_RECORD).map(|r| {
        let mut recent = [0u8; 32];
        recent.copy_from_slice(&r[..32]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&r[32..96]);
        let mut slot = [0u8; 8];
        slot.copy_from_slice(&r[96..]);
        (Hash(recent), Signature(sig), u64::from_le_bytes(slot))
    })
}
