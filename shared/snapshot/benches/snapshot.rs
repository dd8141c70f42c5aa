//! Writing and verifying a snapshot of 1,000,000 accounts (issue 5 target: each under
//! 10 s, under 500 MB of memory). `BB_SNAPSHOT_BENCH_ACCOUNTS` changes the count;
//! `BB_SNAPSHOT_BENCH_KEEP=DIR` keeps a copy of the file there (to measure the
//! `bb-snapshot` binary on it). The peak memory of the whole bench process, which holds the
//! bank and its accounts too, is printed at the end.

use std::hint::black_box;
use std::time::Duration;

use bb_core::{Genesis, GenesisAccount, GenesisValidator, Keypair, Pubkey, hashv};
use bb_runtime::Bank;
use bb_snapshots::{NoProgress, SnapshotFields, verify_file, write_snapshot};
use criterion::{Criterion, criterion_group, criterion_main};

fn accounts() -> usize {
    std::env::var("BB_SNAPSHOT_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A genesis bank with `n` funded accounts, taken apart.
fn state(n: usize) -> (SnapshotFields, Vec<(Pubkey, u64)>) {
    let genesis = Genesis {
        version: 1,
        network: "bench".into(),
        creation_time_ms: 0,
        slot_ms: 400,
        ticks_per_slot: 4,
        hashes_per_tick: 8,
        slots_per_epoch: 32,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: vec![GenesisValidator {
            identity: Keypair::from_seed(&[1; 32]).pubkey(),
            stake: 100,
        }],
        accounts: (0..n as u64)
            .map(|i| GenesisAccount {
                address: Pubkey(hashv(&[b"bench account", &i.to_le_bytes()]).0),
                balance: 1 + i % 1_000_000,
            })
            .collect(),
    };
    let bank = Bank::new_genesis(&genesis).expect("genesis");
    bank.snapshot().expect("snapshot")
}

fn bench(c: &mut Criterion) {
    let n = accounts();
    let (fields, accounts) = state(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("snapshot");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function(format!("create {n} accounts"), |b| {
        b.iter(|| {
            write_snapshot(&fields, accounts.iter().copied(), dir.path(), &NoProgress)
                .expect("write")
        })
    });
    let info =
        write_snapshot(&fields, accounts.iter().copied(), dir.path(), &NoProgress).expect("write");
    if let Ok(keep) = std::env::var("BB_SNAPSHOT_BENCH_KEEP") {
        write_snapshot(
            &fields,
            accounts.iter().copied(),
            keep.as_ref(),
            &NoProgress,
        )
        .expect("write a copy");
    }
    group.bench_function(format!("verify {n} accounts"), |b| {
        b.iter(|| black_box(verify_file(&info.path, &NoProgress).expect("verify")))
    });
    group.finish();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        eprintln!("bench process peak memory: {line}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
