//! Real encodings to start each target's corpus from, so the fuzzer begins past the
//! decoders' first checks (a version byte, a fixed shred length, a checksum) instead of
//! having to guess them.
//!
//! A target calls [`write_if_asked`] from its libFuzzer init: when `BB_FUZZ_SEED_DIR` is
//! set, the target writes its seeds there and exits, so `scripts/fuzz` needs no separate
//! seed program (and no second build of the dependencies).

use std::path::Path;

use bb_core::{
    Block, Canonical, Evidence, Genesis, Hash, Keypair, PohRecorder, SignedVote, Transaction, Vote,
};
use bb_ledger::SlotMeta;
use bb_node::wire::{ContactInfo, Request, Response};
use bb_turbine::Shredder;

/// The environment variable that asks a target for its seeds.
pub const SEED_DIR_VAR: &str = "BB_FUZZ_SEED_DIR";

/// If [`SEED_DIR_VAR`] names a directory, writes `make()`'s seeds into it as
/// `seed-<target>-<n>` and exits the process.
pub fn write_if_asked(target: &str, make: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os(SEED_DIR_VAR) else {
        return;
    };
    let dir = Path::new(&dir);
    let seeds = make();
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        for (n, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{target}-{n}")), seed)?;
        }
        Ok(())
    });
    match written {
        Ok(()) => {
            eprintln!("{target}: wrote {} seeds to {}", seeds.len(), dir.display());
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{target}: cannot write seeds to {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}

/// The leader every shred and block seed is signed by; the targets check signatures
/// against it, so mutations that keep a seed's signed parts reach the code behind them.
pub fn leader() -> Keypair {
    Keypair::from_seed(&[3; 32])
}

/// A user key for transactions and votes.
pub fn user(n: u8) -> Keypair {
    Keypair::from_seed(&[0x40 + n; 32])
}

/// Deterministic filler bytes (xorshift), so block seeds do not compress to nothing.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every shred of a few blocks: empty, one partial set, one full set and a partial one.
pub fn shreds() -> Vec<Vec<u8>> {
    let shredder = Shredder::new(leader());
    let mut out = Vec::new();
    for (slot, parent, len) in [(0, 0, 0), (9, 8, 1000), (77, 70, 30_336 + 1000)] {
        let block = filler(len, slot);
        for set in shredder.shred(slot, parent, &block).expect("a valid block") {
            out.extend(set.shreds().iter().map(|s| s.as_bytes().to_vec()));
        }
    }
    out
}

/// A few transfers.
pub fn transactions() -> Vec<Transaction> {
    (0..4u8)
        .map(|i| {
            Transaction::transfer(
                &user(i),
                user(i + 1).pubkey(),
                1000 * u64::from(i),
                5,
                Hash([i; 32]),
            )
        })
        .collect()
}

/// Blocks with ticks only, and with entries of transactions, signed by [`leader`].
pub fn blocks() -> Vec<Block> {
    let leader = leader();
    let mut out = Vec::new();
    for (slot, with_txs) in [(1u64, false), (2, true), (5, true)] {
        let start = Hash([slot as u8; 32]);
        let mut poh = PohRecorder::new(start, 4);
        let mut entries = Vec::new();
        for _ in 0..2 {
            if with_txs {
                entries.push(poh.record(transactions()).expect("room in the tick"));
            }
            entries.push(poh.tick());
        }
        out.push(Block::new_signed_with_evidence(
            &leader,
            slot,
            slot - 1,
            Hash([7; 32]),
            start,
            entries,
            if slot == 5 { evidence() } else { Vec::new() },
        ));
    }
    out
}

/// Double votes: one that proves its offense, one whose votes are by different voters.
pub fn evidence() -> Vec<Evidence> {
    let vote = |voter: u8, block: u8| {
        Vote {
            voter: user(voter).pubkey(),
            slot: 9,
            block_id: Hash([block; 32]),
            bank_hash: Hash([block; 32]),
            confirmation_count: 1,
            root: None,
            timestamp_ms: 1_700_000_000_000,
        }
        .sign(&user(voter))
    };
    vec![
        Evidence::double_vote(vote(0, 1), vote(0, 2)),
        Evidence::double_vote(vote(0, 1), vote(1, 2)),
    ]
}

pub fn votes() -> Vec<SignedVote> {
    [None, Some(3)]
        .into_iter()
        .enumerate()
        .map(|(i, root)| {
            Vote {
                voter: user(i as u8).pubkey(),
                slot: 9 + i as u64,
                block_id: Hash([1; 32]),
                bank_hash: Hash([2; 32]),
                confirmation_count: 3,
                root,
                timestamp_ms: 1_700_000_000_000,
            }
            .sign(&user(i as u8))
        })
        .collect()
}

/// A valid genesis file in JSON (written as text, so it keeps parsing whatever fields the
/// struct gains with defaults).
pub fn genesis_json() -> Vec<u8> {
    format!(
        r#"{{
  "version": 1,
  "network": "fuzz",
  "creation_time_ms": 1700000000000,
  "slot_ms": 400,
  "ticks_per_slot": 2,
  "hashes_per_tick": 4,
  "slots_per_epoch": 16,
  "leader_slots_per_rotation": 4,
  "validators": [
    {{ "identity": "{}", "stake": 100 }},
    {{ "identity": "{}", "stake": 60 }}
  ],
  "accounts": [
    {{ "address": "{}", "balance": 1000000 }}
  ]
}}
"#,
        user(0).pubkey().to_address(),
        user(1).pubkey().to_address(),
        user(2).pubkey().to_address()
    )
    .into_bytes()
}

pub fn genesis() -> Vec<Vec<u8>> {
    let text = genesis_json();
    let parsed = Genesis::from_json(&text).expect("the seed genesis is valid");
    vec![text, parsed.to_json_pretty().into_bytes()]
}

pub fn wire() -> Vec<Vec<u8>> {
    let key = user(0);
    let contact = ContactInfo {
        identity: key.pubkey(),
        genesis_hash: Hash([9; 32]),
        gossip_addr: "/ip4/127.0.0.1/tcp/8001".into(),
        shred_addr: "127.0.0.1:8002".into(),
        rpc_addr: "127.0.0.1:8003".into(),
        version: "0.1.0".into(),
        latest_slot: 42,
        wallclock_ms: 1_700_000_000_000,
    }
    .sign(&key);
    vec![
        contact.to_bytes(),
        Request::Ancestors { slot: 9, count: 32 }.to_bytes(),
        Request::Range { from: 3, to: 9 }.to_bytes(),
        Request::Forward(transactions()).to_bytes(),
        Response::Blocks(blocks().iter().map(Canonical::to_bytes).collect()).to_bytes(),
        Response::Accepted(7).to_bytes(),
    ]
}

pub fn keyfiles() -> Vec<Vec<u8>> {
    let text = user(0).to_key_file_json();
    let compact: String = text.split_whitespace().collect();
    vec![text.into_bytes(), compact.into_bytes()]
}

pub fn slot_metas() -> Vec<Vec<u8>> {
    let full = SlotMeta {
        parent_slot: 41,
        received_data_shreds: 32,
        num_data_shreds: Some(32),
        is_full: true,
        is_dead: false,
        first_shred_at_ms: 1_700_000_000_000,
    };
    vec![
        full.encode().to_vec(),
        SlotMeta::default().encode().to_vec(),
    ]
}

/// The network of [`snapshot_file`]: what the `snapshot` target loads files against.
pub fn snapshot_genesis() -> Genesis {
    bb_snapshots::test_utils::genesis(SNAPSHOT_USERS).0
}

const SNAPSHOT_USERS: usize = 4;

/// A real snapshot of a small ledger: 20 slots (across an epoch boundary), a few transfers
/// a block, so every chunk kind is present.
pub fn snapshot_file() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("bb-fuzz-seed-{}", std::process::id()));
    let ledger = bb_snapshots::test_utils::build_ledger(&dir.join("ledger"), 20, SNAPSHOT_USERS);
    let (fields, accounts) = ledger.root.snapshot().expect("a root bank snapshots");
    let info = bb_snapshots::write_snapshot(
        &fields,
        accounts.into_iter(),
        &dir.join("snap.bbsnap"),
        &bb_snapshots::NoProgress,
    )
    .expect("the snapshot is written");
    let bytes = std::fs::read(&info.path).expect("the snapshot reads back");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// The `snapshot` target's inputs: the file as is (mode byte 0), the same file as a header
/// and raw chunks (mode byte 1), and that again with its records re-split into chunks of
/// 2 accounts and 3 status entries, so the fuzzer starts from a many-chunk layout.
pub fn snapshots() -> Vec<Vec<u8>> {
    use crate::snapshot_file::{to_structured, unframe};
    let file = snapshot_file();
    let (header, chunks) = unframe(&file).expect("a written snapshot unframes");
    let mut out = vec![[&[0u8][..], &file].concat()];
    out.push([&[1u8][..], &to_structured(&header, &chunks)].concat());

    // Header fields at fixed offsets of its fixed-width encoding.
    const ACCOUNT_COUNT: usize = 272;
    const STATUS_COUNT: usize = 280;
    const ACCOUNTS_PER_CHUNK: usize = 288;
    const STATUS_PER_CHUNK: usize = 292;
    let count = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let status_chunks = count(STATUS_COUNT).div_ceil(32_768) as usize;
    let account_chunks = count(ACCOUNT_COUNT).div_ceil(32_768) as usize;
    if chunks.len() == 1 + status_chunks + account_chunks {
        let status: Vec<u8> = chunks[1..1 + status_chunks].concat();
        let accounts: Vec<u8> = chunks[1 + status_chunks..].concat();
        let mut small = header.clone();
        small[ACCOUNTS_PER_CHUNK..ACCOUNTS_PER_CHUNK + 4].copy_from_slice(&2u32.to_le_bytes());
        small[STATUS_PER_CHUNK..STATUS_PER_CHUNK + 4].copy_from_slice(&3u32.to_le_bytes());
        let mut split = vec![chunks[0].clone()];
        split.extend(status.chunks(3 * 104).map(<[u8]>::to_vec));
        split.extend(accounts.chunks(2 * 40).map(<[u8]>::to_vec));
        out.push([&[1u8][..], &to_structured(&small, &split)].concat());
    }
    out
}
