//! Benchmarks of bb-core's hot paths, each beside the raw limit it is judged against.
//!
//! Run with `cargo bench -p bb-core`; BENCH.md at the workspace root holds the figures.
//!
//! - `poh`: a bare SHA-256 chain (the limit) vs `PohRecorder::hash_batch`, and the
//!   recorder closing ticks as a leader does.
//! - `poh_verify`: one block's entries checked on one core vs on all cores, beside the
//!   bare SHA-256 chain of the same length.
//! - `sigverify`: strict Ed25519, one by one vs batched (64, 1024), the ed25519-dalek
//!   `verify_strict` reference, and `verify_transactions` (batched, all cores).
//! - `encoding`: canonical encode/decode of a ~1 KiB entry, beside a plain copy.

use std::hint::black_box;
use std::time::Duration;

use bb_core::{
    Canonical, Domain, Entry, Hash, Keypair, PohRecorder, Pubkey, Signature, SignedMessage,
    Transaction, hash, verify, verify_batch, verify_entries, verify_entries_parallel,
    verify_transactions,
};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use sha2::{Digest, Sha256};

/// Hashes per iteration in the `poh` group.
const POH_N: u64 = 100_000;

/// The PoH block shape for `poh_verify`: ticks per block and hashes per tick.
const TICKS_PER_BLOCK: u64 = 64;
const HASHES_PER_TICK: u64 = 2_000;
/// Transaction entries recorded inside every tick, and transactions in each.
const TX_ENTRIES_PER_TICK: u64 = 2;
const TXS_PER_ENTRY: usize = 32;

/// The bare limit: a SHA-256 chain over a 32-byte state, nothing else.
fn sha256_chain(seed: [u8; 32], n: u64) -> [u8; 32] {
    let mut h = seed;
    for _ in 0..n {
        h = Sha256::digest(h).into();
    }
    h
}

/// `n` keypairs from distinct deterministic seeds.
fn keypairs(n: usize) -> Vec<Keypair> {
    (0..n)
        .map(|i| {
            let mut seed = [0x5au8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Keypair::from_seed(&seed)
        })
        .collect()
}

/// `n` transfers, each from a different sender to a different receiver, with distinct
/// amounts: distinct keys, distinct messages.
fn transactions(n: usize) -> Vec<Transaction> {
    let senders = keypairs(n);
    let recent = hash(b"recent blockhash");
    senders
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let to = senders[(i + 1) % n].pubkey();
            Transaction::transfer(k, to, 1_000 + i as u64, 5, recent)
        })
        .collect()
}

fn bench_poh(c: &mut Criterion) {
    let mut g = c.benchmark_group("poh");
    g.throughput(Throughput::Elements(POH_N));

    let seed = hash(b"poh bench").0;
    g.bench_function("sha256_loop", |b| {
        b.iter(|| black_box(sha256_chain(black_box(seed), POH_N)))
    });

    // hashes_per_tick far above anything reached: hash_batch never stops at a boundary.
    let mut poh = PohRecorder::new(Hash(seed), u64::MAX);
    g.bench_function("recorder_hash_batch", |b| {
        b.iter(|| {
            let due = poh.hash_batch(black_box(POH_N));
            black_box((due, poh.hash()))
        })
    });

    // The leader's real loop: 50 ticks of 2_000 hashes = POH_N hashes (the tick's own
    // final hash is counted in its 2_000), one tick Entry built per tick.
    let mut poh = PohRecorder::new(Hash(seed), HASHES_PER_TICK);
    let ticks = POH_N / HASHES_PER_TICK;
    g.bench_function("recorder_ticking_2000", |b| {
        b.iter(|| {
            for _ in 0..ticks {
                poh.hash_batch(u64::MAX);
                black_box(poh.tick());
            }
        })
    });
    g.finish();
}

/// One block of entries: every tick holds `TX_ENTRIES_PER_TICK` transaction entries
/// spread evenly, then the tick itself. Returns the start hash, the entries and the
/// number of PoH hashes they contain.
fn block_entries() -> (Hash, Vec<Entry>, u64) {
    let start = hash(b"parent block last hash");
    let pool = transactions(TXS_PER_ENTRY * TX_ENTRIES_PER_TICK as usize);
    let mut poh = PohRecorder::new(start, HASHES_PER_TICK);
    let mut entries = Vec::new();
    let step = HASHES_PER_TICK / (TX_ENTRIES_PER_TICK + 1);
    for _ in 0..TICKS_PER_BLOCK {
        for e in 0..TX_ENTRIES_PER_TICK as usize {
            poh.hash_batch(step - 1);
            let txs = pool[e * TXS_PER_ENTRY..(e + 1) * TXS_PER_ENTRY].to_vec();
            entries.push(poh.record(txs).expect("tick is not due mid-tick"));
        }
        entries.push(poh.tick());
    }
    let total: u64 = entries.iter().map(|e| e.num_hashes).sum();
    assert_eq!(total, TICKS_PER_BLOCK * HASHES_PER_TICK);
    assert_eq!(verify_entries(&start, &entries, HASHES_PER_TICK), Ok(()));
    assert_eq!(
        verify_entries_parallel(&start, &entries, HASHES_PER_TICK),
        Ok(())
    );
    (start, entries, total)
}

fn bench_poh_verify(c: &mut Criterion) {
    let (start, entries, total) = block_entries();
    let mut g = c.benchmark_group("poh_verify");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(total));

    g.bench_function(BenchmarkId::new("sha256_loop", total), |b| {
        b.iter(|| black_box(sha256_chain(black_box(start.0), total)))
    });
    g.bench_function(BenchmarkId::new("verify_entries", entries.len()), |b| {
        b.iter(|| {
            black_box(verify_entries(
                black_box(&start),
                black_box(&entries),
                HASHES_PER_TICK,
            ))
        })
    });
    g.bench_function(
        BenchmarkId::new("verify_entries_parallel", entries.len()),
        |b| {
            b.iter(|| {
                black_box(verify_entries_parallel(
                    black_box(&start),
                    black_box(&entries),
                    HASHES_PER_TICK,
                ))
            })
        },
    );
    g.finish();
}

/// Keys, transaction messages and signatures, owned, for building `SignedMessage`s.
struct SigSet {
    keys: Vec<Pubkey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<Signature>,
}

impl SigSet {
    fn new(n: usize) -> Self {
        let txs = transactions(n);
        SigSet {
            keys: txs.iter().map(|t| t.transfer.from).collect(),
            messages: txs.iter().map(|t| t.transfer.message_bytes()).collect(),
            signatures: txs.iter().map(|t| t.signature).collect(),
        }
    }

    fn items(&self, n: usize) -> Vec<SignedMessage<'_>> {
        (0..n)
            .map(|i| SignedMessage {
                domain: Domain::Transaction,
                key: &self.keys[i],
                message: &self.messages[i],
                signature: &self.signatures[i],
            })
            .collect()
    }
}

fn bench_sigverify(c: &mut Criterion) {
    const BIG: usize = 1024;
    let set = SigSet::new(BIG);
    let txs = transactions(BIG);
    // Every input is valid: the benchmarks measure the accepting path.
    for it in set.items(BIG) {
        assert_eq!(verify(it.domain, it.key, it.message, it.signature), Ok(()));
    }
    assert_eq!(verify_transactions(&txs), Ok(()));

    let mut g = c.benchmark_group("sigverify");
    g.sampling_mode(SamplingMode::Flat);

    // One by one, over 64 distinct signatures (per-signature cost does not depend on n).
    let single_n = 64;
    let items = set.items(single_n);
    g.throughput(Throughput::Elements(single_n as u64));
    g.bench_function(BenchmarkId::new("single", single_n), |b| {
        b.iter(|| {
            for it in black_box(&items) {
                black_box(verify(it.domain, it.key, it.message, it.signature)).ok();
            }
        })
    });

    // Reference: ed25519-dalek's own strict (non-cofactored) single verification on the
    // same framed messages, to place bb's verify against the library it is built on.
    let dalek: Vec<(
        ed25519_dalek::VerifyingKey,
        Vec<u8>,
        ed25519_dalek::Signature,
    )> = (0..single_n)
        .map(|i| {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&set.keys[i].0).expect("valid key");
            let mut framed = Domain::Transaction.prefix().to_vec();
            framed.extend_from_slice(&set.messages[i]);
            let sig = ed25519_dalek::Signature::from_bytes(&set.signatures[i].0);
            assert!(vk.verify_strict(&framed, &sig).is_ok());
            (vk, framed, sig)
        })
        .collect();
    g.bench_function(BenchmarkId::new("dalek_verify_strict", single_n), |b| {
        b.iter(|| {
            for (vk, msg, sig) in black_box(&dalek) {
                black_box(vk.verify_strict(msg, sig)).ok();
            }
        })
    });

    for n in [64usize, BIG] {
        let items = set.items(n);
        assert!(verify_batch(&items).is_ok());
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("batch", n), &items, |b, items| {
            b.iter(|| black_box(verify_batch(black_box(items))).ok())
        });
    }

    g.throughput(Throughput::Elements(BIG as u64));
    g.bench_with_input(
        BenchmarkId::new("verify_transactions_all_cores", BIG),
        &txs,
        |b, txs| b.iter(|| black_box(verify_transactions(black_box(txs))).ok()),
    );
    g.finish();
}

fn bench_encoding(c: &mut Criterion) {
    let txs = transactions(6);
    let entry = Entry {
        num_hashes: 667,
        hash: hash(b"entry"),
        transactions: txs,
    };
    let bytes = entry.to_bytes();
    assert_eq!(Entry::from_bytes(&bytes).as_ref(), Ok(&entry));

    let mut g = c.benchmark_group("encoding");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("copy_to_vec", bytes.len()), |b| {
        b.iter(|| black_box(black_box(&bytes[..]).to_vec()))
    });
    g.bench_function(BenchmarkId::new("entry_to_bytes", bytes.len()), |b| {
        b.iter(|| black_box(black_box(&entry).to_bytes()))
    });
    g.bench_function(BenchmarkId::new("entry_from_bytes", bytes.len()), |b| {
        b.iter(|| black_box(Entry::from_bytes(black_box(&bytes))).ok())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_poh, bench_poh_verify, bench_sigverify, bench_encoding
}
criterion_main!(benches);
