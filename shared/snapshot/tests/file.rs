//! Snapshot files: round trips, every flipped byte found and named, tampering behind valid
//! checksums caught by the hashes, and the rooted state of a ledger.

use std::path::{Path, PathBuf};

use bb_core::{Hash, Pubkey};
use bb_ledger::Ledger;
use bb_runtime::{BankForks, SnapshotFields};
use bb_snapshots::test_utils::{build_ledger, extend};
use bb_snapshots::{
    NoProgress, SnapshotError, bank_from_ledger, list_snapshots, load_snapshot,
    open_stopped_ledger, prune_snapshots, read_info, verify_file, write_snapshot,
};

fn write(fields: &SnapshotFields, accounts: &[(Pubkey, u64)], dest: &Path) -> PathBuf {
    write_snapshot(fields, accounts.iter().copied(), dest, &NoProgress)
        .expect("write")
        .path
}

/// Whether the message names where the file is bad.
fn names_a_region(msg: &str) -> bool {
    [
        "the header",
        "chunk ",
        "the trailer",
        "signature",
        "format version",
        "end of the file",
    ]
    .iter()
    .any(|r| msg.contains(r))
}

#[test]
fn write_verify_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let net = build_ledger(&dir.path().join("ledger"), 30, 20);
    let (fields, accounts) = net.root.snapshot().unwrap();
    let out = dir.path().join("out");
    let info = write_snapshot(&fields, accounts.iter().copied(), &out, &NoProgress).unwrap();
    assert_eq!(
        info.path.file_name().unwrap().to_string_lossy(),
        format!("snapshot-{}-{}.bbsnap", fields.slot, fields.bank_hash)
    );
    assert_eq!(info.account_count, accounts.len() as u64);
    assert_eq!(
        info.size_bytes,
        std::fs::metadata(&info.path).unwrap().len()
    );
    assert_eq!(read_info(&info.path).unwrap(), info);
    assert_eq!(verify_file(&info.path, &NoProgress).unwrap(), info);

    let bank = load_snapshot(&info.path, &net.genesis, &NoProgress).unwrap();
    assert_eq!(bank.hash(), net.root.hash());
    assert_eq!(bank.snapshot().unwrap(), (fields, accounts));
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_snapshot_spanning_many_chunks_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let net = build_ledger(&dir.path().join("ledger"), 3, 0);
    let (mut fields, _) = net.root.snapshot().unwrap();
    // 100,000 accounts: four account chunks, the last one partial.
    let accounts: Vec<(Pubkey, u64)> = (0..100_000u64)
        .map(|i| (Pubkey(bb_core::hashv(&[&i.to_le_bytes()]).0), i + 1))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let mut lt = bb_runtime::LtHash::identity();
    for (k, b) in &accounts {
        lt.add_account(k, *b);
    }
    for (k, s) in &fields.stakes {
        lt.add_stake(k, *s);
    }
    for (epoch, list) in &fields.epoch_stakes {
        for (k, s) in list {
            lt.add_epoch_stake(*epoch, k, *s);
        }
    }
    fields.state_hash = lt.checksum();
    fields.bank_hash = fields.implied_bank_hash();
    let path = write(&fields, &accounts, dir.path());
    let info = verify_file(&path, &NoProgress).unwrap();
    assert_eq!(info.account_count, 100_000);

    // Flip a sample of bytes across the file: every flip is found and named.
    let clean = std::fs::read(&path).unwrap();
    let step = clean.len() / 97;
    for at in (0..clean.len()).step_by(step).chain([clean.len() - 1]) {
        let mut bad = clean.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let err = verify_file(&path, &NoProgress).expect_err("a flipped byte is found");
        let msg = err.to_string();
        assert!(names_a_region(&msg), "byte {at}: {msg}");
    }
    std::fs::write(&path, &clean).unwrap();
    verify_file(&path, &NoProgress).unwrap();
}

#[test]
fn every_flipped_byte_of_a_small_snapshot_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let net = build_ledger(&dir.path().join("ledger"), 6, 8);
    let (fields, accounts) = net.root.snapshot().unwrap();
    assert!(
        fields.status_cache_len() > 0,
        "the status cache has a chunk"
    );
    let path = write(&fields, &accounts, dir.path());
    let clean = std::fs::read(&path).unwrap();
    let mut regions = std::collections::BTreeSet::new();
    for at in 0..clean.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = clean.clone();
            bad[at] ^= bit;
            std::fs::write(&path, &bad).unwrap();
            let msg = match verify_file(&path, &NoProgress) {
                Ok(_) => panic!("flipping bit {bit:#x} of byte {at} went unnoticed"),
                Err(e) => e.to_string(),
            };
            assert!(names_a_region(&msg), "byte {at}: {msg}");
            assert!(
                msg.starts_with(&*path.file_name().unwrap().to_string_lossy()),
                "{msg}"
            );
            let load = load_snapshot(&path, &net.genesis, &NoProgress);
            assert!(load.is_err(), "load accepted a flip at byte {at}");
            regions.insert(msg.split(" is corrupt").next().unwrap_or("").to_string());
        }
    }
    // Header, the bank-fields chunk, the status chunk, the account chunk, the trailer.
    assert!(
        regions.iter().any(|r| r.contains("the header")),
        "{regions:?}"
    );
    assert!(
        regions.iter().any(|r| r.contains("bank fields")),
        "{regions:?}"
    );
    assert!(
        regions.iter().any(|r| r.contains("status cache entries")),
        "{regions:?}"
    );
    assert!(
        regions.iter().any(|r| r.contains("accounts 0..")),
        "{regions:?}"
    );
    assert!(
        regions.iter().any(|r| r.contains("the trailer")),
        "{regions:?}"
    );

    // Cut short, or with bytes appended.
    std::fs::write(&path, &clean[..clean.len() - 10]).unwrap();
    let msg = verify_file(&path, &NoProgress).unwrap_err().to_string();
    assert!(names_a_region(&msg), "{msg}");
    let mut longer = clean.clone();
    longer.extend_from_slice(b"junk");
    std::fs::write(&path, &longer).unwrap();
    let msg = verify_file(&path, &NoProgress).unwrap_err().to_string();
    assert!(msg.contains("end of the file"), "{msg}");
}

#[test]
fn tampering_behind_valid_checksums_is_caught_by_the_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let net = build_ledger(&dir.path().join("ledger"), 6, 8);
    let (fields, accounts) = net.root.snapshot().unwrap();

    let mut richer = accounts.clone();
    richer[2].1 += 1;
    let path = write(&fields, &richer, &dir.path().join("a"));
    let err = verify_file(&path, &NoProgress).unwrap_err();
    assert!(matches!(err, SnapshotError::StateHash { .. }), "{err}");
    assert!(err.to_string().contains("state hash mismatch"), "{err}");
    let err = load_snapshot(&path, &net.genesis, &NoProgress).unwrap_err();
    assert!(matches!(err, SnapshotError::StateHash { .. }), "{err}");

    let mut stake = fields.clone();
    stake.stakes[0].1 += 5;
    let path = write(&stake, &accounts, &dir.path().join("b"));
    assert!(matches!(
        verify_file(&path, &NoProgress),
        Err(SnapshotError::StateHash { .. })
    ));

    let mut sigs = fields.clone();
    sigs.signature_count += 1;
    let path = write(&sigs, &accounts, &dir.path().join("c"));
    let err = verify_file(&path, &NoProgress).unwrap_err();
    assert!(matches!(err, SnapshotError::BankHash { .. }), "{err}");

    // Another network's genesis.
    let path = write(&fields, &accounts, &dir.path().join("d"));
    let mut other = net.genesis.clone();
    other.network = "elsewhere".into();
    let err = load_snapshot(&path, &other, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("genesis"), "{err}");

    // The writer refuses accounts out of order and leaves nothing behind.
    let mut unsorted = accounts.clone();
    unsorted.swap(0, 1);
    let out = dir.path().join("e");
    let err = write_snapshot(&fields, unsorted.into_iter(), &out, &NoProgress).unwrap_err();
    assert!(matches!(err, SnapshotError::Invalid(_)), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn not_a_snapshot_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bbsnap");
    std::fs::write(&path, b"hello").unwrap();
    let msg = verify_file(&path, &NoProgress).unwrap_err().to_string();
    assert!(msg.contains("too short"), "{msg}");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let msg = read_info(&path).unwrap_err().to_string();
    assert!(msg.contains("not a bb snapshot"), "{msg}");
    let msg = verify_file(&dir.path().join("missing"), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cannot open"), "{msg}");
}

#[test]
fn list_newest_first_ignores_temporary_files_and_prune_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let net = build_ledger(&ledger_dir, 3, 4);
    let ledger = Ledger::open(&ledger_dir).unwrap();
    let mut forks = BankForks::new(net.root.clone()).unwrap();
    let snaps = dir.path().join("snaps");
    let mut slots = Vec::new();
    for end in [6, 9, 12] {
        extend(
            &ledger,
            &mut forks,
            &net.validators,
            &net.users,
            end - 2..=end,
        );
        let (fields, accounts) = forks.root_bank().snapshot().unwrap();
        slots.push(fields.slot);
        write(&fields, &accounts, &snaps);
    }
    std::fs::write(snaps.join(".snapshot-99-x.bbsnap.tmp-1"), b"partial").unwrap();
    std::fs::write(snaps.join("notes.txt"), b"hello").unwrap();
    let listed: Vec<u64> = list_snapshots(&snaps)
        .unwrap()
        .iter()
        .map(|s| s.slot)
        .collect();
    slots.reverse();
    assert_eq!(listed, slots);
    let removed = prune_snapshots(&snaps, 1).unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(list_snapshots(&snaps).unwrap().len(), 1);
    assert!(list_snapshots(&dir.path().join("none")).unwrap().is_empty());
}

#[test]
fn bank_from_ledger_replays_the_rooted_chain_from_the_newest_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let net = build_ledger(&ledger_dir, 40, 10);
    let ledger = open_stopped_ledger(&ledger_dir).unwrap();

    // From the genesis.
    let bank = bank_from_ledger(&ledger, &net.genesis, None, &NoProgress).unwrap();
    assert_eq!(bank.hash(), net.root.hash());
    assert_eq!(bank.slot(), 39);

    // An earlier root.
    let at_22 = bank_from_ledger(&ledger, &net.genesis, Some(22), &NoProgress).unwrap();
    assert_eq!(at_22.slot(), 22);
    assert_eq!(Some(at_22.hash().unwrap().0), ledger.bank_hash(22).unwrap());
    let err = bank_from_ledger(&ledger, &net.genesis, Some(25), &NoProgress).unwrap_err();
    assert!(
        matches!(err, SnapshotError::NotRooted { slot: 25, .. }),
        "{err}"
    );

    // With a snapshot at 22, the same state at the tip.
    let (fields, accounts) = at_22.snapshot().unwrap();
    write(&fields, &accounts, &ledger_dir.join("snapshots"));
    let bank = bank_from_ledger(&ledger, &net.genesis, None, &NoProgress).unwrap();
    assert_eq!(bank.hash(), net.root.hash());
    assert_eq!(bank.accounts(), net.root.accounts());
}

#[test]
fn a_gap_in_the_rooted_chain_names_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let net = build_ledger(&ledger_dir, 8, 4);
    let ledger = Ledger::open(&ledger_dir).unwrap();
    // Slot 10's block builds on 9, but 9 is never rooted: roots jump from 8 to 10.
    let mut forks = BankForks::new(net.root.clone()).unwrap();
    let parent = forks.root_bank();
    let leader = parent.slot_leader(9).unwrap();
    let key = net
        .validators
        .iter()
        .find(|k| k.pubkey() == leader)
        .unwrap();
    let b9 = bb_runtime::produce_block(&parent, key, 9, &[]).unwrap();
    let b9 = forks.insert(b9.bank).unwrap();
    let leader = b9.slot_leader(10).unwrap();
    let key = net
        .validators
        .iter()
        .find(|k| k.pubkey() == leader)
        .unwrap();
    let b10 = bb_runtime::produce_block(&b9, key, 10, &[]).unwrap();
    let meta = bb_ledger::SlotMeta {
        parent_slot: 9,
        is_full: true,
        ..Default::default()
    };
    use bb_core::Canonical;
    ledger.put_block(10, &meta, &b10.block.to_bytes()).unwrap();
    ledger
        .commit_root(&bb_ledger::RootCommit {
            slot: 10,
            block_id: b10.block.id().0,
            bank_hash: b10.bank.hash().unwrap().0,
            ..Default::default()
        })
        .unwrap();
    let err = bank_from_ledger(&ledger, &net.genesis, None, &NoProgress).unwrap_err();
    assert!(
        matches!(err, SnapshotError::Chain { slot: 10, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("slot 10"), "{err}");
    let _ = Hash::default();
}

#[test]
fn a_download_is_kept_only_if_it_verifies_and_is_the_one_announced() {
    let dir = tempfile::tempdir().unwrap();
    let net = build_ledger(&dir.path().join("ledger"), 12, 5);
    let (fields, accounts) = net.root.snapshot().unwrap();
    let path = write(&fields, &accounts, &dir.path().join("out"));
    let hash = fields.bank_hash.to_string();
    let info = bb_snapshots::verify_download(&path, fields.slot, &hash, &NoProgress).unwrap();
    assert_eq!(info.bank_hash, fields.bank_hash);
    // Another slot than announced: refused and removed.
    let err =
        bb_snapshots::verify_download(&path, fields.slot + 1, &hash, &NoProgress).unwrap_err();
    assert!(
        matches!(err, bb_snapshots::DownloadRefused::NotAnnounced { .. }),
        "{err}"
    );
    assert!(!path.exists());
    // A corrupt file: refused as invalid and removed.
    let path = write(&fields, &accounts, &dir.path().join("out2"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = bb_snapshots::verify_download(&path, fields.slot, &hash, &NoProgress).unwrap_err();
    assert!(
        matches!(err, bb_snapshots::DownloadRefused::Invalid(_)),
        "{err}"
    );
    assert!(!path.exists());
}
