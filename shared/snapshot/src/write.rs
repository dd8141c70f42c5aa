//! Writing a snapshot: streamed chunk by chunk into a temporary file beside the target,
//! made durable, then renamed into place, so a crash never leaves a half file under a
//! snapshot's name.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bb_core::Pubkey;
use bb_runtime::SnapshotFields;
use sha2::{Digest, Sha256};

use crate::dir::{file_name_of, snapshot_file_name, sync_dir};
use crate::error::SnapshotError;
use crate::format::{
    ACCOUNT_RECORD, ACCOUNTS_PER_CHUNK, BankLists, FORMAT_VERSION, Header, MAGIC, MAX_HEADER,
    MAX_RAW_CHUNK, STATUS_PER_CHUNK, STATUS_RECORD, TRAILER_MAGIC, ZSTD_LEVEL, chunk_checksum,
    encode, put_account, put_status,
};
use crate::progress::Progress;
use crate::read::SnapshotInfo;

/// Writes `fields` and `accounts` (sorted by pubkey, no zero balance, as
/// [`bb_runtime::Bank::snapshot`] returns them) as a snapshot file.
///
/// `dest` is a directory (existing, or any path not ending in `.bbsnap`, created if need
/// be) to hold the file under its canonical name ([`snapshot_file_name`]), or the path of
/// a `.bbsnap` file. The file is written to a temporary name in the same directory,
/// fsynced, renamed into place and the directory fsynced: it appears whole or not at all.
/// Memory stays bounded by one chunk whatever the number of accounts.
pub fn write_snapshot<I>(
    fields: &SnapshotFields,
    accounts: I,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<SnapshotInfo, SnapshotError>
where
    I: ExactSizeIterator<Item = (Pubkey, u64)>,
{
    let name = snapshot_file_name(fields.slot, &fields.bank_hash);
    let path = if dest.extension().is_some_and(|e| e == "bbsnap") && !dest.is_dir() {
        dest.to_path_buf()
    } else {
        std::fs::create_dir_all(dest).map_err(SnapshotError::io("create directory", dest))?;
        dest.join(&name)
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name_of(&path),
        std::process::id()
    ));
    let created_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let account_count = accounts.len() as u64;
    let result = write_file(fields, accounts, &tmp, created_ms, progress).and_then(|size| {
        std::fs::rename(&tmp, &path).map_err(SnapshotError::io("rename into place", &path))?;
        sync_dir(&dir)?;
        Ok(size)
    });
    let size_bytes = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    Ok(SnapshotInfo {
        path,
        slot: fields.slot,
        bank_hash: fields.bank_hash,
        block_id: fields.block_id,
        genesis_hash: fields.genesis_hash,
        state_hash: fields.state_hash,
        account_count,
        size_bytes,
        created_ms,
    })
}

/// Counts every byte written and hashes it, for the trailer.
struct HashingWriter<W: Write> {
    inner: W,
    sha: Sha256,
    offset: u64,
}

impl<W: Write> HashingWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.sha.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

struct ChunkWriter<'a> {
    out: HashingWriter<BufWriter<File>>,
    compressor: zstd::bulk::Compressor<'a>,
    index: u64,
    path: &'a Path,
}

impl ChunkWriter<'_> {
    fn io(&self) -> impl FnOnce(std::io::Error) -> SnapshotError + use<> {
        SnapshotError::io("write", self.path.to_path_buf())
    }

    fn chunk(&mut self, raw: &[u8]) -> Result<(), SnapshotError> {
        if raw.len() > MAX_RAW_CHUNK as usize {
            return Err(SnapshotError::Invalid(format!(
                "chunk {} would hold {} bytes, over the limit of {MAX_RAW_CHUNK}",
                self.index,
                raw.len()
            )));
        }
        let compressed = self.compressor.compress(raw).map_err(self.io())?;
        let (clen, rlen) = (compressed.len() as u32, raw.len() as u32);
        let sum = chunk_checksum(self.index, clen, rlen, &compressed);
        let io = self.io();
        (|| {
            self.out.put(&clen.to_le_bytes())?;
            self.out.put(&rlen.to_le_bytes())?;
            self.out.put(&sum)?;
            self.out.put(&compressed)
        })()
        .map_err(io)?;
        self.index += 1;
        Ok(())
    }
}

/// Writes the whole file at `tmp` and syncs it; returns its size.
fn write_file<I>(
    fields: &SnapshotFields,
    accounts: I,
    tmp: &Path,
    created_ms: u64,
    progress: &dyn Progress,
) -> Result<u64, SnapshotError>
where
    I: ExactSizeIterator<Item = (Pubkey, u64)>,
{
    let account_count = accounts.len() as u64;
    let header = Header {
        slot: fields.slot,
        parent_slot: fields.parent_slot,
        parent_hash: fields.parent_hash,
        epoch: fields.epoch,
        collector: fields.collector,
        block_id: fields.block_id,
        bank_hash: fields.bank_hash,
        state_hash: fields.state_hash,
        poh_end: fields.poh_end,
        signature_count: fields.signature_count,
        collected_fees: fields.collected_fees,
        genesis_hash: fields.genesis_hash,
        blockhash_queue_height: fields.blockhash_queue_height,
        account_count,
        status_count: fields.status_cache_len() as u64,
        accounts_per_chunk: ACCOUNTS_PER_CHUNK,
        status_per_chunk: STATUS_PER_CHUNK,
        created_ms,
    };
    let header_bytes = encode(&header);
    if header_bytes.len() > MAX_HEADER as usize {
        return Err(SnapshotError::Invalid("the header is too large".into()));
    }

    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(SnapshotError::io("create", tmp))?;
    let compressor =
        zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(SnapshotError::io("compress", tmp))?;
    let mut w = ChunkWriter {
        out: HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            sha: Sha256::new(),
            offset: 0,
        },
        compressor,
        index: 0,
        path: tmp,
    };

    let io = SnapshotError::io("write", tmp);
    (|| {
        w.out.put(MAGIC)?;
        w.out.put(&[FORMAT_VERSION])?;
        w.out.put(&(header_bytes.len() as u32).to_le_bytes())?;
        w.out.put(&header_bytes)?;
        let sum: [u8; 32] = w.out.sha.clone().finalize().into();
        w.out.put(&sum)
    })()
    .map_err(io)?;

    let lists = BankLists {
        blockhash_queue: fields.blockhash_queue.clone(),
        stakes: fields.stakes.clone(),
        epoch_stakes: fields.epoch_stakes.clone(),
        offenses: fields.offenses.clone(),
    };
    w.chunk(&encode(&lists))?;

    let mut buf = Vec::with_capacity(STATUS_PER_CHUNK as usize * STATUS_RECORD);
    let mut in_buf = 0u32;
    for (recent, sigs) in &fields.status_cache {
        for (sig, slot) in sigs {
            put_status(&mut buf, recent, sig, *slot);
            in_buf += 1;
            if in_buf == STATUS_PER_CHUNK {
                w.chunk(&buf)?;
                buf.clear();
                in_buf = 0;
            }
        }
    }
    if in_buf > 0 {
        w.chunk(&buf)?;
    }

    progress.phase("writing accounts", account_count, "accounts");
    let mut buf = Vec::with_capacity(ACCOUNTS_PER_CHUNK as usize * ACCOUNT_RECORD);
    let mut in_buf = 0u32;
    let mut written = 0u64;
    let mut previous: Option<Pubkey> = None;
    for (pubkey, balance) in accounts {
        if previous.is_some_and(|p| p >= pubkey) {
            return Err(SnapshotError::Invalid(format!(
                "account {written} is not above the one before it"
            )));
        }
        if balance == 0 {
            return Err(SnapshotError::Invalid(format!(
                "account {written} has a zero balance"
            )));
        }
        previous = Some(pubkey);
        put_account(&mut buf, &pubkey, balance);
        in_buf += 1;
        written += 1;
        if in_buf == ACCOUNTS_PER_CHUNK {
            w.chunk(&buf)?;
            buf.clear();
            in_buf = 0;
            progress.advance(u64::from(ACCOUNTS_PER_CHUNK));
        }
    }
    if in_buf > 0 {
        w.chunk(&buf)?;
        progress.advance(u64::from(in_buf));
    }
    if written != account_count {
        return Err(SnapshotError::Invalid(format!(
            "{written} accounts given, {account_count} announced"
        )));
    }
    if w.index != header.chunk_count() {
        return Err(SnapshotError::Invalid(format!(
            "{} chunks written, the layout has {}",
            w.index,
            header.chunk_count()
        )));
    }

    let chunks = w.index;
    let mut out = w.out;
    let io = SnapshotError::io("write", tmp);
    (|| {
        out.put(TRAILER_MAGIC)?;
        out.put(&chunks.to_le_bytes())?;
        let sum: [u8; 32] = out.sha.clone().finalize().into();
        out.put(&sum)?;
        out.inner.flush()
    })()
    .map_err(io)?;
    let size = out.offset;
    let file = out
        .inner
        .into_inner()
        .map_err(|e| SnapshotError::io("write", tmp)(e.into_error()))?;
    file.sync_all().map_err(SnapshotError::io("sync", tmp))?;
    Ok(size)
}
