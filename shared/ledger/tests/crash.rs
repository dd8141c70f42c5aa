//! Crash safety: a child process writes to the ledger in a loop and is killed with `SIGKILL`
//! at random moments, many times over the same directory. After every kill the ledger must
//! open, pass its integrity check, and hold exactly what the child had committed: every root
//! it reported, at most one more, and every account as the latest of those roots wrote it.
//!
//! The child is this same test binary, re-run with one test selected
//! ([`crash_child_writer`]) and an environment variable naming the directory, so no extra
//! binary is needed and it works under both `cargo test` and `cargo nextest`.
//!
//! A `SIGKILL` loses the process, not the machine: what this proves is that every commit is
//! atomic and that redb recovers from a writer dying at any instant, including in the middle
//! of a commit, of an earlier crash's recovery, or of the first open.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bb_ledger::{Ledger, RootCommit, ShredKind, ShredRecord, SlotMeta};
use rand::{RngExt, SeedableRng};

/// Set to the ledger directory, it turns [`crash_child_writer`] into the writer.
const CHILD_ENV: &str = "BB_LEDGER_CRASH_CHILD";
/// Set to a number, it replays a run of the parent test.
const SEED_ENV: &str = "BB_LEDGER_CRASH_SEED";

const KILLS: usize = 40;
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 5..=150;

/// Accounts the writer draws from, and how many of them each root changes.
const ACCOUNT_UNIVERSE: u64 = 200;
const ACCOUNTS_PER_ROOT: u64 = 50;
/// Each root rewrites a window of accounts that starts this much further on, so windows
/// overlap and each account is rewritten every few roots.
const WINDOW_STEP: u64 = 37;
/// Each root purges the shreds of slots more than this far below it.
const KEEP_SHRED_SLOTS: u64 = 8;
const DATA_SHREDS_PER_SLOT: u32 = 4;
const CODE_SHREDS_PER_SLOT: u32 = 2;

// ---- what the writer writes: a pure function of the slot ----

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `len` deterministic bytes named by `(a, b, c)`.
fn bytes_of(a: u64, b: u64, c: u64, len: usize) -> Vec<u8> {
    let mut state = splitmix64(a ^ splitmix64(b ^ splitmix64(c)));
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = splitmix64(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn hash_of(tag: u64, slot: u64) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(&bytes_of(tag, slot, 0, 32));
    out
}

fn block_id(slot: u64) -> [u8; 32] {
    hash_of(1, slot)
}

fn bank_hash(slot: u64) -> [u8; 32] {
    hash_of(2, slot)
}

fn pubkey(account: u64) -> [u8; 32] {
    hash_of(3, account)
}

const VOTER: [u8; 32] = [0x56; 32];

/// The accounts root `slot` rewrites.
fn accounts_written_by(slot: u64) -> impl Iterator<Item = u64> {
    (0..ACCOUNTS_PER_ROOT).map(move |j| (slot * WINDOW_STEP + j) % ACCOUNT_UNIVERSE)
}

fn writes_account(slot: u64, account: u64) -> bool {
    (account + ACCOUNT_UNIVERSE - (slot * WINDOW_STEP) % ACCOUNT_UNIVERSE) % ACCOUNT_UNIVERSE
        < ACCOUNTS_PER_ROOT
}

/// The content root `slot` gives `account`: mostly small, some spanning several pages.
fn account_content(slot: u64, account: u64) -> Vec<u8> {
    let pick = splitmix64(slot << 20 | account);
    let len = if pick.is_multiple_of(64) {
        40_000
    } else {
        16 + (pick % 2_000) as usize
    };
    let mut content = bytes_of(4, slot, account, len);
    // Readable in a failure message.
    content[..8].copy_from_slice(&slot.to_le_bytes());
    content[8..16].copy_from_slice(&account.to_le_bytes());
    content
}

fn block(slot: u64) -> Vec<u8> {
    bytes_of(5, slot, 0, 3_000 + (slot % 7) as usize * 500)
}

fn shred(slot: u64, kind: ShredKind, index: u32) -> Vec<u8> {
    bytes_of(
        6,
        slot,
        u64::from(kind.as_u8()) << 32 | u64::from(index),
        1_200,
    )
}

fn tower(slot: u64) -> Vec<u8> {
    bytes_of(7, slot, 0, 600)
}

fn vote(slot: u64) -> Vec<u8> {
    bytes_of(8, slot, 0, 200)
}

fn slot_meta(slot: u64) -> SlotMeta {
    SlotMeta {
        parent_slot: slot - 1,
        received_data_shreds: DATA_SHREDS_PER_SLOT,
        num_data_shreds: Some(DATA_SHREDS_PER_SLOT),
        is_full: true,
        is_dead: false,
        first_shred_at_ms: slot * 400,
    }
}

/// One slot's worth of work, as a validator would do it: shreds arrive, the block is stored,
/// a vote is seen, the slot is rooted with its accounts, the tower is saved.
fn write_slot(ledger: &Ledger, slot: u64) -> Result<(), bb_ledger::LedgerError> {
    let mut shreds = Vec::new();
    for (kind, count) in [
        (ShredKind::Data, DATA_SHREDS_PER_SLOT),
        (ShredKind::Code, CODE_SHREDS_PER_SLOT),
    ] {
        for index in 0..count {
            shreds.push((index, kind, shred(slot, kind, index)));
        }
    }
    let records: Vec<ShredRecord<'_>> = shreds
        .iter()
        .map(|(index, kind, bytes)| ShredRecord {
            slot,
            index: *index,
            kind: *kind,
            bytes,
        })
        .collect();
    ledger.insert_shreds(&records)?;
    ledger.put_block(slot, &slot_meta(slot), &block(slot))?;
    ledger.put_vote(slot, &VOTER, &vote(slot))?;

    let accounts: Vec<([u8; 32], Vec<u8>)> = accounts_written_by(slot)
        .map(|a| (pubkey(a), account_content(slot, a)))
        .collect();
    ledger.commit_root(&RootCommit {
        slot,
        block_id: block_id(slot),
        bank_hash: bank_hash(slot),
        accounts: &accounts,
        removed_accounts: &[],
        purge_below: Some(slot.saturating_sub(KEEP_SHRED_SLOTS)),
        ..RootCommit::default()
    })?;
    ledger.save_tower(&tower(slot))
}

// ---- the child ----

/// The writer. A no-op unless [`CHILD_ENV`] names a directory: then it resumes after the
/// latest root and roots one slot after another, printing `committed <slot>` after each,
/// until it is killed (or, as a safety net, after a minute or once its stdout is gone).
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let ledger = Ledger::open(Path::new(&dir)).expect("child: open the ledger");
    let mut slot = ledger
        .latest_root()
        .expect("child: read the latest root")
        .map_or(0, |(root, _)| root);
    let started = Instant::now();
    // Written straight to the file descriptor: the test harness captures `println!`.
    let mut out = std::io::stdout();
    while started.elapsed() < Duration::from_secs(60) {
        slot += 1;
        write_slot(&ledger, slot).expect("child: write a slot");
        if writeln!(out, "committed {slot}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

// ---- the parent ----

/// Kills and reaps the child however the test ends, so a failed assertion leaves no writer
/// behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const READ: &str = "read the reopened ledger";

/// Opens the ledger after a kill and checks everything the writer can have left: roots
/// `1..=root` with `root` one of `min_root` or `min_root + 1`. Returns the root.
/// Checks the ledger after a kill; returns its latest root and the slot of its saved tower.
/// `tower_floor` is the tower's slot after the previous kill.
fn verify_after_crash(dir: &Path, min_root: u64, tower_floor: u64) -> (u64, u64) {
    let mut ledger = Ledger::open(dir).expect("the ledger opens after SIGKILL");
    let report = ledger
        .check_integrity()
        .expect("the ledger passes its integrity check after SIGKILL");
    assert!(
        !report.redb_repaired,
        "open should already have recovered: {report:?}"
    );

    let root = ledger.latest_root().expect(READ).map_or(0, |(slot, id)| {
        assert_eq!(id, block_id(slot), "block id of root {slot}");
        slot
    });
    assert!(
        root == min_root || root == min_root + 1,
        "latest root {root}, but the writer had committed {min_root} (at most one more may \
         have landed unreported)"
    );
    assert_eq!(report.latest_root, (root > 0).then_some(root));

    let roots = ledger.roots_range(..).expect(READ);
    let expected: Vec<(u64, [u8; 32])> = (1..=root).map(|s| (s, block_id(s))).collect();
    assert_eq!(roots, expected, "every root up to {root}, no other");
    for slot in 1..=root {
        assert_eq!(
            ledger.bank_hash(slot).expect(READ),
            Some(bank_hash(slot)),
            "slot {slot}"
        );
        assert_eq!(
            ledger.get_block(slot).expect(READ),
            Some(block(slot)),
            "slot {slot}"
        );
        assert_eq!(
            ledger.get_slot_meta(slot).expect(READ),
            Some(slot_meta(slot))
        );
    }
    // The block and vote of the slot after the root are written unsynced: a kill before
    // the root's synced commit may lose them, never tear them.
    let next = root + 1;
    let next_block = ledger.get_block(next).expect(READ);
    assert!(
        next_block.is_none() || next_block == Some(block(next)),
        "block {next} is torn"
    );
    let next_votes = ledger.votes_for_slot(next).expect(READ);
    assert!(
        next_votes.is_empty() || next_votes == vec![(VOTER, vote(next))],
        "votes of {next} are torn"
    );
    if root > 0 {
        assert_eq!(
            ledger.votes_for_slot(root).expect(READ),
            vec![(VOTER, vote(root))]
        );
    }

    // Each account holds what the latest root that wrote it gave it; one never written is absent.
    let mut present = 0;
    for account in 0..ACCOUNT_UNIVERSE {
        let writer = (1..=root).rev().find(|&s| writes_account(s, account));
        let stored = ledger.get_account(&pubkey(account)).expect(READ);
        assert_eq!(
            stored,
            writer.map(|s| account_content(s, account)),
            "account {account} after root {root} (last written by {writer:?})"
        );
        present += u64::from(writer.is_some());
    }
    assert_eq!(ledger.account_count().expect(READ), present);
    assert_eq!(report.accounts, present);

    // Shreds of the last few slots are kept; older ones were purged with the root.
    let keep_from = root.saturating_sub(KEEP_SHRED_SLOTS);
    for slot in 1..=root {
        let data = ledger.shreds_in_slot(slot, ShredKind::Data).expect(READ);
        let code = ledger.shreds_in_slot(slot, ShredKind::Code).expect(READ);
        if slot < keep_from {
            assert!(data.is_empty() && code.is_empty(), "slot {slot} not purged");
        } else {
            let expected: Vec<(u32, Vec<u8>)> = (0..DATA_SHREDS_PER_SLOT)
                .map(|i| (i, shred(slot, ShredKind::Data, i)))
                .collect();
            assert_eq!(data, expected, "data shreds of slot {slot}");
            assert_eq!(code.len(), CODE_SHREDS_PER_SLOT as usize, "slot {slot}");
        }
    }

    // The tower is saved right after each root: it is that root's or, if the kill fell
    // between the two commits, an older one. Older than the root before only if earlier
    // kills fell between the two commits as well (the writer resumes after the latest
    // root, so it never rewrites a tower it missed): never older than the previous
    // round's, never newer than the root.
    let saved = ledger.load_tower().expect(READ);
    let tower_slot = match saved {
        Some(bytes) => (tower_floor.max(1)..=root)
            .rev()
            .find(|&s| tower(s) == bytes)
            .unwrap_or_else(|| panic!("tower is not of a root from {tower_floor} to {root}")),
        None => {
            assert!(root <= 1, "no tower after root {root}");
            0
        }
    };
    (root, tower_slot)
}

#[test]
fn survives_sigkill_at_random_moments_many_times() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    println!("crash test seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut root = 0;
    let mut tower_slot = 0;
    let mut kills_mid_run = 0;

    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &ledger_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut child = KillOnDrop(child);
        let reader = thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness may print its own text (`test crash_child_writer ... `) on
                // the line before the first report.
                if let Some((_, slot)) = line.rsplit_once("committed ") {
                    last = Some(slot.trim().parse::<u64>().unwrap());
                }
            }
            last
        });

        let after = rng.random_range(KILL_AFTER_MS);
        thread::sleep(Duration::from_millis(after));
        let status = child.0.try_wait().unwrap();
        assert!(status.is_none(), "the writer exited by itself: {status:?}");
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        // The pipe reaches end-of-file once the child is gone, so this holds every report.
        let reported = reader.join().unwrap();
        drop(child);

        let min_root = reported.map_or(root, |r| r.max(root));
        let before = root;
        (root, tower_slot) = verify_after_crash(&ledger_dir, min_root, tower_slot);
        if root > before {
            kills_mid_run += 1;
        }
        println!(
            "round {round}: killed after {after} ms, writer reported {reported:?}, root {root}"
        );
    }

    println!(
        "{KILLS} kills in {:.1} s, {kills_mid_run} of them after progress, final root {root}",
        started.elapsed().as_secs_f64()
    );
    // Without progress the test would prove nothing.
    assert!(
        root >= 10,
        "the writer made too little progress: root {root}"
    );
}
