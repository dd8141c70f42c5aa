//! Reading a snapshot: the header alone ([`read_info`]), every byte checked
//! ([`verify_file`]), or checked and rebuilt into a bank ([`load_snapshot`]). One streaming
//! pass, one chunk in memory at a time; the first region that does not check out is named.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bb_core::{Genesis, Hash, Pubkey, Signature, Slot};
use bb_runtime::{Bank, BankError, LtHash, SnapshotFields, SnapshotRefusal};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dir::file_name_of;
use crate::error::SnapshotError;
use crate::format::{
    ACCOUNT_RECORD, BankLists, ChunkKind, FORMAT_VERSION, FRAME_LEN, Header, MAGIC,
    MAX_COMPRESSED_CHUNK, MAX_HEADER, MAX_RAW_CHUNK, STATUS_RECORD, TRAILER_LEN, TRAILER_MAGIC,
    accounts, chunk_checksum, decode, statuses,
};
use crate::progress::Progress;

/// What a snapshot file says about itself (from its header), and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub slot: Slot,
    pub bank_hash: Hash,
    pub block_id: Hash,
    pub genesis_hash: Hash,
    /// The lattice state hash of the accounts and stakes.
    pub state_hash: Hash,
    pub account_count: u64,
    pub size_bytes: u64,
    /// When the file was written, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// The header of a snapshot file, without reading further: cheap, and checks only the
/// header's own checksum.
pub fn read_info(path: &Path) -> Result<SnapshotInfo, SnapshotError> {
    let (reader, header) = FileReader::open(path)?;
    Ok(reader.info(&header))
}

/// Why a downloaded snapshot was not kept ([`verify_download`]).
#[derive(Debug, thiserror::Error)]
pub enum DownloadRefused {
    /// The file does not verify.
    #[error(transparent)]
    Invalid(#[from] SnapshotError),
    /// The file verifies but is not the snapshot that was announced.
    #[error(
        "it was announced as slot {announced_slot} with bank hash {announced_hash} but is slot {slot} with {bank_hash}"
    )]
    NotAnnounced {
        announced_slot: Slot,
        announced_hash: String,
        slot: Slot,
        bank_hash: Hash,
    },
}

/// What a downloaded snapshot must show before it is kept: every byte checks out
/// ([`verify_file`]) and it is the one announced (`slot`, base58 `bank_hash`). On any
/// failure the file is removed, so a bad download is never resumed or loaded.
pub fn verify_download(
    path: &Path,
    slot: Slot,
    bank_hash: &str,
    progress: &dyn Progress,
) -> Result<SnapshotInfo, DownloadRefused> {
    let refused = |e: DownloadRefused| {
        let _ = std::fs::remove_file(path);
        e
    };
    let info = verify_file(path, progress).map_err(|e| refused(e.into()))?;
    if info.slot != slot || info.bank_hash.to_string() != bank_hash {
        return Err(refused(DownloadRefused::NotAnnounced {
            announced_slot: slot,
            announced_hash: bank_hash.to_string(),
            slot: info.slot,
            bank_hash: info.bank_hash,
        }));
    }
    Ok(info)
}

/// Reads the whole file and checks everything: every chunk's checksum and contents,
/// accounts strictly rising by pubkey, the trailer and the file checksum, then recomputes
/// the state hash from the accounts and stakes and the bank hash from the header's fields.
/// The error names the file and the first region that does not check out.
pub fn verify_file(path: &Path, progress: &dyn Progress) -> Result<SnapshotInfo, SnapshotError> {
    let (mut reader, header) = FileReader::open(path)?;
    let body = reader.read_body(&header, Mode::Verify, progress)?;
    let computed = body.lt_hash.checksum();
    if computed != header.state_hash {
        return Err(SnapshotError::StateHash {
            file: reader.name.clone(),
            recorded: header.state_hash,
            computed,
        });
    }
    let fields = fields(&header, body.lists, Vec::new());
    let computed = fields.implied_bank_hash();
    if computed != header.bank_hash {
        return Err(SnapshotError::BankHash {
            file: reader.name.clone(),
            recorded: header.bank_hash,
            computed,
        });
    }
    Ok(reader.info(&header))
}

/// Reads the file with every check of [`verify_file`] and rebuilds its bank for `genesis`
/// ([`Bank::from_snapshot`]): a frozen root, ready for `BankForks::new`.
pub fn load_snapshot(
    path: &Path,
    genesis: &Genesis,
    progress: &dyn Progress,
) -> Result<Arc<Bank>, SnapshotError> {
    let (mut reader, header) = FileReader::open(path)?;
    let file = reader.name.clone();
    let expected = genesis.hash();
    if header.genesis_hash != expected {
        return Err(SnapshotError::Bank {
            file,
            source: BankError::Snapshot {
                slot: header.slot,
                reason: SnapshotRefusal::GenesisMismatch {
                    expected,
                    found: header.genesis_hash,
                },
            },
        });
    }
    let body = reader.read_body(&header, Mode::Load, progress)?;
    let fields = fields(&header, body.lists, body.status_cache);
    Bank::from_snapshot(genesis, fields, body.accounts).map_err(|source| match source {
        BankError::Snapshot {
            reason: SnapshotRefusal::StateHashMismatch { recorded, computed },
            ..
        } => SnapshotError::StateHash {
            file,
            recorded,
            computed,
        },
        BankError::Snapshot {
            reason: SnapshotRefusal::BankHashMismatch { recorded, computed },
            ..
        } => SnapshotError::BankHash {
            file,
            recorded,
            computed,
        },
        source => SnapshotError::Bank { file, source },
    })
}

fn fields(
    h: &Header,
    lists: BankLists,
    status_cache: Vec<(Hash, Vec<(Signature, Slot)>)>,
) -> SnapshotFields {
    SnapshotFields {
        slot: h.slot,
        parent_slot: h.parent_slot,
        parent_hash: h.parent_hash,
        epoch: h.epoch,
        collector: h.collector,
        block_id: h.block_id,
        bank_hash: h.bank_hash,
        state_hash: h.state_hash,
        poh_end: h.poh_end,
        signature_count: h.signature_count,
        collected_fees: h.collected_fees,
        genesis_hash: h.genesis_hash,
        blockhash_queue_height: h.blockhash_queue_height,
        blockhash_queue: lists.blockhash_queue,
        status_cache,
        stakes: lists.stakes,
        epoch_stakes: lists.epoch_stakes,
        offenses: lists.offenses,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Hash accounts and stakes, keep nothing.
    Verify,
    /// Keep accounts and the status cache; the bank hashes them.
    Load,
}

struct Body {
    lists: BankLists,
    lt_hash: LtHash,
    status_cache: Vec<(Hash, Vec<(Signature, Slot)>)>,
    accounts: Vec<(Pubkey, u64)>,
}

/// The file, read once from the start; every byte read goes into the running checksum.
struct FileReader {
    inner: BufReader<File>,
    sha: Sha256,
    offset: u64,
    size: u64,
    path: PathBuf,
    name: String,
}

impl FileReader {
    /// Opens the file and reads and checks its signature and header.
    fn open(path: &Path) -> Result<(FileReader, Header), SnapshotError> {
        let file = File::open(path).map_err(SnapshotError::io("open", path))?;
        let size = file
            .metadata()
            .map_err(SnapshotError::io("read", path))?
            .len();
        let mut r = FileReader {
            inner: BufReader::with_capacity(1 << 20, file),
            sha: Sha256::new(),
            offset: 0,
            size,
            path: path.to_path_buf(),
            name: file_name_of(path),
        };
        let not_snapshot = |name: &str, detail: String| SnapshotError::NotASnapshot {
            file: name.to_string(),
            detail,
        };
        let mut signature = [0u8; 8];
        if size < 8 || r.take(&mut signature).is_err() {
            return Err(not_snapshot(
                &r.name,
                format!("{size} bytes, too short to be a snapshot"),
            ));
        }
        if signature[..7] != MAGIC[..] {
            return Err(not_snapshot(
                &r.name,
                "not a bb snapshot: its signature (bytes 0..7) is wrong".into(),
            ));
        }
        if signature[7] != FORMAT_VERSION {
            return Err(not_snapshot(
                &r.name,
                format!(
                    "snapshot format version {} (byte 7) is not supported: this build reads version {FORMAT_VERSION}",
                    signature[7]
                ),
            ));
        }
        let mut len = [0u8; 4];
        r.take(&mut len)
            .map_err(|_| r.corrupt("the header (bytes 8..12)", "the file ends inside it"))?;
        let len = u32::from_le_bytes(len);
        if len == 0 || len > MAX_HEADER {
            return Err(r.corrupt(
                "the header (bytes 8..12)",
                format!("its length {len} is out of bounds"),
            ));
        }
        let end = 12 + u64::from(len) + 32;
        let region = format!("the header (bytes 0..{end})");
        let mut bytes = vec![0u8; len as usize];
        r.take(&mut bytes)
            .map_err(|_| r.corrupt(&region, "the file ends inside it"))?;
        let computed: [u8; 32] = r.sha.clone().finalize().into();
        let mut recorded = [0u8; 32];
        r.take(&mut recorded)
            .map_err(|_| r.corrupt(&region, "the file ends inside it"))?;
        if computed != recorded {
            return Err(r.corrupt(&region, "checksum mismatch"));
        }
        let header: Header = decode(&bytes).map_err(|e| r.corrupt(&region, e))?;
        if let Some(bad) = header.layout_error() {
            return Err(r.corrupt(&region, bad));
        }
        Ok((r, header))
    }

    fn info(&self, h: &Header) -> SnapshotInfo {
        SnapshotInfo {
            path: self.path.clone(),
            slot: h.slot,
            bank_hash: h.bank_hash,
            block_id: h.block_id,
            genesis_hash: h.genesis_hash,
            state_hash: h.state_hash,
            account_count: h.account_count,
            size_bytes: self.size,
            created_ms: h.created_ms,
        }
    }

    fn corrupt(&self, region: &str, detail: impl Into<String>) -> SnapshotError {
        SnapshotError::Corrupt {
            file: self.name.clone(),
            region: region.to_string(),
            detail: detail.into(),
        }
    }

    fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.sha.update(&*buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Every chunk and the trailer.
    fn read_body(
        &mut self,
        h: &Header,
        mode: Mode,
        progress: &dyn Progress,
    ) -> Result<Body, SnapshotError> {
        progress.phase(
            match mode {
                Mode::Verify => "verifying",
                Mode::Load => "loading",
            },
            self.size,
            "bytes",
        );
        progress.advance(self.offset);
        let mut body = Body {
            lists: BankLists {
                blockhash_queue: Vec::new(),
                stakes: Vec::new(),
                epoch_stakes: Vec::new(),
                offenses: Vec::new(),
            },
            lt_hash: LtHash::identity(),
            status_cache: Vec::new(),
            accounts: Vec::new(),
        };
        if mode == Mode::Load {
            // Bounded by the file: every account takes at least a few bytes of it.
            let cap = h.account_count.min(self.size / 8);
            body.accounts.reserve(usize::try_from(cap).unwrap_or(0));
        }
        let mut decompressor =
            zstd::bulk::Decompressor::new().map_err(SnapshotError::io("decompress", &self.path))?;
        let mut compressed = Vec::new();
        let mut raw = Vec::new();
        let mut last_status: Option<(Hash, Signature)> = None;
        let mut last_account: Option<Pubkey> = None;
        for index in 0..h.chunk_count() {
            let kind = h.chunk_kind(index);
            let start = self.offset;
            let mut region = format!("chunk {index} (bytes {start}.., {})", kind.describe());
            let mut frame = [0u8; FRAME_LEN as usize];
            self.take(&mut frame)
                .map_err(|_| self.corrupt(&region, "the file ends inside it"))?;
            let clen = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let rlen = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
            if clen > MAX_COMPRESSED_CHUNK || rlen > MAX_RAW_CHUNK {
                return Err(self.corrupt(
                    &region,
                    format!("its lengths ({clen}, {rlen}) are out of bounds"),
                ));
            }
            let end = self.offset + u64::from(clen);
            region = format!("chunk {index} (bytes {start}..{end}, {})", kind.describe());
            if end + TRAILER_LEN > self.size {
                return Err(self.corrupt(&region, "the file ends inside it"));
            }
            compressed.resize(clen as usize, 0);
            self.take(&mut compressed)
                .map_err(|_| self.corrupt(&region, "the file ends inside it"))?;
            if chunk_checksum(index, clen, rlen, &compressed)[..] != frame[8..] {
                return Err(self.corrupt(&region, "checksum mismatch"));
            }
            raw.clear();
            raw.reserve(rlen as usize);
            let n = decompressor
                .decompress_to_buffer(&compressed, &mut raw)
                .map_err(|e| self.corrupt(&region, format!("does not decompress: {e}")))?;
            if n != rlen as usize || raw.len() != rlen as usize {
                return Err(self.corrupt(&region, "decompresses to the wrong length"));
            }
            match kind {
                ChunkKind::Lists => {
                    body.lists = decode(&raw).map_err(|e| self.corrupt(&region, e))?;
                    for (validator, stake) in &body.lists.stakes {
                        body.lt_hash.add_stake(validator, *stake);
                    }
                    for (epoch, stakes) in &body.lists.epoch_stakes {
                        for (validator, stake) in stakes {
                            body.lt_hash.add_epoch_stake(*epoch, validator, *stake);
                        }
                    }
                    for (offense, recorded) in &body.lists.offenses {
                        body.lt_hash.add_offense(offense, *recorded);
                    }
                }
                ChunkKind::Status { count, .. } => {
                    if raw.len() as u64 != count * STATUS_RECORD as u64 {
                        return Err(self.corrupt(&region, "holds the wrong number of entries"));
                    }
                    for (recent, sig, slot) in statuses(&raw) {
                        if last_status.is_some_and(|last| last >= (recent, sig)) {
                            return Err(self.corrupt(&region, "status cache entries out of order"));
                        }
                        if slot > h.slot {
                            return Err(self.corrupt(
                                &region,
                                "a status cache entry after the snapshot's slot",
                            ));
                        }
                        last_status = Some((recent, sig));
                        if mode == Mode::Load {
                            match body.status_cache.last_mut() {
                                Some((h, sigs)) if *h == recent => sigs.push((sig, slot)),
                                _ => body.status_cache.push((recent, vec![(sig, slot)])),
                            }
                        }
                    }
                }
                ChunkKind::Accounts { first, count } => {
                    if raw.len() as u64 != count * ACCOUNT_RECORD as u64 {
                        return Err(self.corrupt(&region, "holds the wrong number of accounts"));
                    }
                    for (i, (pubkey, balance)) in accounts(&raw).enumerate() {
                        if last_account.is_some_and(|last| last >= pubkey) {
                            return Err(self.corrupt(
                                &region,
                                format!("account {} is out of order", first + i as u64),
                            ));
                        }
                        if balance == 0 {
                            return Err(self.corrupt(
                                &region,
                                format!("account {} has a zero balance", first + i as u64),
                            ));
                        }
                        last_account = Some(pubkey);
                    }
                    match mode {
                        Mode::Verify => body.lt_hash.add(&hash_accounts(&raw)),
                        Mode::Load => body.accounts.extend(accounts(&raw)),
                    }
                }
            }
            progress.advance(self.offset - start);
        }
        self.read_trailer(h)?;
        Ok(body)
    }

    fn read_trailer(&mut self, h: &Header) -> Result<(), SnapshotError> {
        let start = self.offset;
        let region = format!("the trailer (bytes {start}..{})", start + TRAILER_LEN);
        let mut head = [0u8; 16];
        self.take(&mut head)
            .map_err(|_| self.corrupt(&region, "the file ends inside it"))?;
        let computed: [u8; 32] = self.sha.clone().finalize().into();
        let mut recorded = [0u8; 32];
        self.take(&mut recorded)
            .map_err(|_| self.corrupt(&region, "the file ends inside it"))?;
        if head[..8] != TRAILER_MAGIC[..] {
            return Err(self.corrupt(&region, "its marker is wrong"));
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&head[8..]);
        let count = u64::from_le_bytes(count);
        if count != h.chunk_count() {
            return Err(self.corrupt(
                &region,
                format!(
                    "it counts {count} chunks, the header implies {}",
                    h.chunk_count()
                ),
            ));
        }
        if computed != recorded {
            return Err(self.corrupt(&region, "file checksum mismatch"));
        }
        if self.offset != self.size {
            let region = format!("the end of the file (bytes {}..{})", self.offset, self.size);
            return Err(self.corrupt(&region, "bytes follow the trailer"));
        }
        Ok(())
    }
}

/// The lattice hash of a raw account chunk, on all cores.
fn hash_accounts(raw: &[u8]) -> LtHash {
    raw.par_chunks(ACCOUNT_RECORD * 1024)
        .map(|part| {
            let mut h = LtHash::identity();
            for (pubkey, balance) in accounts(part) {
                h.add_account(&pubkey, balance);
            }
            h
        })
        .reduce(LtHash::identity, |mut a, b| {
            a.add(&b);
            a
        })
}
