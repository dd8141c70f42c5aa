//! The framing of a snapshot file (see `shared/snapshot/src/lib.rs`), written here so the
//! `snapshot` target can reach past the checksums: the fuzzer mutates the header and the
//! raw chunk payloads, and [`frame`] compresses and checksums them as a writer would. A
//! file of random bytes fails the header checksum and tests nothing after it.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 7] = b"BBSNAP\0";
const TRAILER_MAGIC: &[u8; 8] = b"BBSNEND\0";
const CHUNK_DOMAIN: &[u8] = b"bb/snapshot-chunk/v1\0";
const FRAME_LEN: usize = 4 + 4 + 32;
const TRAILER_LEN: usize = 8 + 8 + 32;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut sha = Sha256::new();
    for part in parts {
        sha.update(part);
    }
    sha.finalize().into()
}

/// A well-framed snapshot file: signature, `header`, each raw chunk compressed under a
/// valid frame, and a trailer, every checksum right.
pub fn frame(header: &[u8], chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(bb_snapshots::FORMAT_VERSION);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&sha256(&[&out]));
    for (index, raw) in chunks.iter().enumerate() {
        let compressed = zstd::bulk::compress(raw, 1).expect("zstd compresses any bytes");
        let clen = (compressed.len() as u32).to_le_bytes();
        let rlen = (raw.len() as u32).to_le_bytes();
        let sum = sha256(&[
            CHUNK_DOMAIN,
            &(index as u64).to_le_bytes(),
            &clen,
            &rlen,
            &compressed,
        ]);
        out.extend_from_slice(&clen);
        out.extend_from_slice(&rlen);
        out.extend_from_slice(&sum);
        out.extend_from_slice(&compressed);
    }
    out.extend_from_slice(TRAILER_MAGIC);
    out.extend_from_slice(&(chunks.len() as u64).to_le_bytes());
    let sum = sha256(&[&out]);
    out.extend_from_slice(&sum);
    out
}

/// The header and raw chunks of a well-formed file: the inverse of [`frame`], for seeds.
pub fn unframe(file: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let len = u32::from_le_bytes(file.get(8..12)?.try_into().ok()?) as usize;
    let header = file.get(12..12 + len)?.to_vec();
    let mut at = 12 + len + 32;
    let mut chunks = Vec::new();
    while file.len().checked_sub(at)? > TRAILER_LEN {
        let frame = file.get(at..at + FRAME_LEN)?;
        let clen = u32::from_le_bytes(frame[..4].try_into().ok()?) as usize;
        let rlen = u32::from_le_bytes(frame[4..8].try_into().ok()?) as usize;
        let compressed = file.get(at + FRAME_LEN..at + FRAME_LEN + clen)?;
        chunks.push(zstd::bulk::decompress(compressed, rlen).ok()?);
        at += FRAME_LEN + clen;
    }
    Some((header, chunks))
}

/// The fuzz input of the `snapshot` target's structured mode:
/// `[u16 header length][header][u32 chunk length][chunk]...`.
pub fn to_structured(header: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header);
    for chunk in chunks {
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Parses [`to_structured`]'s layout, leniently: a short length or a short part takes
/// what is left.
pub fn from_structured(data: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let mut rest = data;
    let len = length::<2>(&mut rest);
    let header = take(&mut rest, len);
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        let len = length::<4>(&mut rest);
        chunks.push(take(&mut rest, len));
    }
    (header, chunks)
}

/// A little-endian length of `N` bytes (fewer if the input ends: zero-padded).
fn length<const N: usize>(data: &mut &[u8]) -> usize {
    let mut bytes = [0u8; 8];
    let head = take(data, N);
    bytes[..head.len()].copy_from_slice(head);
    u64::from_le_bytes(bytes) as usize
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, rest) = data.split_at(n.min(data.len()));
    *data = rest;
    head
}
