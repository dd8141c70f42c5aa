//! bb-snapshot as an operator meets it: the real binary on ledgers built offline.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use bb_ledger::Ledger;
use bb_snapshots::test_utils::build_ledger;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-snapshot"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("bb-snapshot runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// A user error: exit 1, exactly one line on stderr naming `needle`, no panic.
fn assert_user_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn create_verify_restore_and_create_again_give_the_same_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = build_ledger(&dir.join("ledger"), 40, 12);
    {
        let ledger = Ledger::open(&dir.join("ledger")).unwrap();
        ledger.save_tower(b"the vote tower").unwrap();
    }

    let created = json(&run(dir, &["create", "--ledger", "ledger", "--json"]));
    assert_eq!(created["slot"], 39);
    assert_eq!(
        created["bank_hash"],
        net.root.hash().unwrap().to_string().as_str()
    );
    let file = created["path"].as_str().unwrap().to_string();
    assert!(file.contains("ledger/snapshots/snapshot-39-"), "{file}");

    let verified = json(&run(dir, &["verify", &file, "--json"]));
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["state_hash"], created["state_hash"]);
    let text = run(dir, &["verify", &file]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("state hash"));

    let listed = json(&run(dir, &["list", "--ledger", "ledger", "--json"]));
    assert_eq!(listed["snapshots"][0]["slot"], 39);
    let table = run(dir, &["list", "--ledger", "ledger"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("39"));

    // Into a new directory.
    let restored = json(&run(
        dir,
        &[
            "restore",
            &file,
            "--ledger",
            "restored",
            "--genesis",
            "ledger/genesis.json",
            "--json",
        ],
    ));
    assert_eq!(restored["slot"], 39);
    assert_eq!(restored["tower_kept"], false);
    assert!(dir.join("restored/genesis.json").is_file());
    let again = json(&run(dir, &["create", "--ledger", "restored", "--json"]));
    assert_eq!(again["slot"], created["slot"]);
    assert_eq!(again["bank_hash"], created["bank_hash"]);
    assert_eq!(again["state_hash"], created["state_hash"]);
    let ledger = Ledger::open(&dir.join("restored")).unwrap();
    assert_eq!(ledger.latest_root().unwrap().map(|r| r.0), Some(39));
    assert_eq!(
        ledger.account_count().unwrap(),
        net.root.accounts().len() as u64
    );
    drop(ledger);

    // Over the existing ledger: refused without --yes (no terminal), then replaced,
    // keeping its vote tower.
    let o = run(dir, &["restore", &file, "--ledger", "ledger"]);
    assert_user_error(&o, "--yes");
    let ledger = Ledger::open(&dir.join("ledger")).unwrap();
    assert_eq!(ledger.latest_root().unwrap().map(|r| r.0), Some(39));
    assert!(ledger.get_block(38).unwrap().is_some(), "unchanged");
    drop(ledger);
    let replaced = json(&run(
        dir,
        &["restore", &file, "--ledger", "ledger", "--yes", "--json"],
    ));
    assert_eq!(replaced["replaced_a_ledger"], true);
    assert_eq!(replaced["tower_kept"], true);
    let ledger = Ledger::open(&dir.join("ledger")).unwrap();
    assert_eq!(
        ledger.load_tower().unwrap().as_deref(),
        Some(&b"the vote tower"[..])
    );
    assert!(ledger.get_block(38).unwrap().is_none(), "a fresh ledger");
    drop(ledger);
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = json(&run(dir, &["create", "--ledger", "ledger", "--json"]));
    assert_eq!(again["state_hash"], created["state_hash"]);
}

#[test]
fn a_flipped_byte_fails_verify_naming_the_region() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build_ledger(&dir.join("ledger"), 12, 6);
    let created = json(&run(
        dir,
        &["create", "--ledger", "ledger", "-o", "out", "--json"],
    ));
    let file = created["path"].as_str().unwrap().to_string();
    let clean = std::fs::read(dir.join(&file)).unwrap();
    for (at, region) in [
        (20, "the header"),
        (clean.len() / 2, "chunk"),
        (clean.len() - 60, "chunk"),
        (clean.len() - 5, "the trailer"),
    ] {
        let mut bad = clean.clone();
        bad[at] ^= 0x04;
        std::fs::write(dir.join(&file), &bad).unwrap();
        let o = run(dir, &["verify", &file]);
        assert_user_error(&o, region);
        assert!(stderr(&o).contains("is corrupt"), "{}", stderr(&o));
        let o = run(
            dir,
            &[
                "restore",
                &file,
                "--ledger",
                "r",
                "--genesis",
                "ledger/genesis.json",
            ],
        );
        assert_user_error(&o, region);
        assert!(
            !dir.join("r").exists(),
            "nothing restored from a corrupt file"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_user_error(&run(dir, &[]), "command");
    assert_user_error(&run(dir, &["create"]), "--ledger");
    assert_user_error(&run(dir, &["create", "--ledger", "nowhere"]), "genesis");
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("empty/genesis.json"), b"{}").unwrap();
    assert_user_error(&run(dir, &["create", "--ledger", "empty"]), "genesis");
    assert_user_error(&run(dir, &["verify", "missing.bbsnap"]), "cannot open");
    std::fs::write(dir.join("junk.bbsnap"), vec![1u8; 100]).unwrap();
    assert_user_error(&run(dir, &["verify", "junk.bbsnap"]), "not a bb snapshot");
    assert_user_error(&run(dir, &["list"]), "--dir");
    assert_user_error(&run(dir, &["list", "--dir", "a", "--ledger", "b"]), "--dir");
    assert_user_error(&run(dir, &["restore", "x.bbsnap"]), "--ledger");
    assert_user_error(&run(dir, &["frobnicate"]), "frobnicate");

    let net = build_ledger(&dir.join("ledger"), 4, 2);
    assert_user_error(
        &run(dir, &["create", "--ledger", "ledger", "--slot", "5"]),
        "not a rooted slot",
    );
    std::fs::create_dir(dir.join("noledger")).unwrap();
    std::fs::write(
        dir.join("noledger/genesis.json"),
        net.genesis.to_json_pretty(),
    )
    .unwrap();
    assert_user_error(&run(dir, &["create", "--ledger", "noledger"]), "no ledger");
    // A ledger directory with foreign files is never replaced.
    let created = json(&run(dir, &["create", "--ledger", "ledger", "--json"]));
    let file = created["path"].as_str().unwrap().to_string();
    std::fs::write(dir.join("noledger/notes.txt"), b"mine").unwrap();
    assert_user_error(
        &run(dir, &["restore", &file, "--ledger", "noledger", "--yes"]),
        "notes.txt",
    );
    assert!(dir.join("noledger/notes.txt").is_file());
}

#[test]
fn a_ledger_in_use_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build_ledger(&dir.join("ledger"), 4, 2);
    let held = Ledger::open(&dir.join("ledger")).unwrap();
    assert_user_error(
        &run(dir, &["create", "--ledger", "ledger"]),
        "stop it first",
    );
    drop(held);
    assert!(run(dir, &["create", "--ledger", "ledger"]).status.success());
}
