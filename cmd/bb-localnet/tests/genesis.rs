//! `bb-localnet genesis` as an operator runs it: addresses in, a genesis file out that
//! every node accepts, and one line on stderr with exit code 1 for anything wrong.

use std::path::Path;
use std::process::{Command, Output};

use bb_core::{Genesis, Keypair};
use serde_json::Value;

fn bb_localnet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-localnet"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("bb-localnet runs")
}

fn address(i: u8) -> String {
    Keypair::from_seed(&[i; 32]).pubkey().to_address()
}

/// Exit code 1 and exactly one line on stderr, containing `needle`.
fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

#[test]
fn writes_a_genesis_every_node_accepts_and_prints_its_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (v1, v2, v3, faucet) = (address(1), address(2), address(3), address(4));
    let out = bb_localnet(
        dir.path(),
        &[
            "--json",
            "genesis",
            "--validator",
            &format!("{v1}:100"),
            "--validator",
            &format!("{v2}:200"),
            "--validator",
            &v3,
            "--account",
            &format!("{faucet}:1000000"),
            "--network",
            "lab",
            "--start-in",
            "60",
            "-o",
            "genesis.json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints one document");
    let bytes = std::fs::read(dir.path().join("genesis.json")).expect("genesis written");
    let genesis = Genesis::from_json(&bytes).expect("a valid genesis");
    assert_eq!(report["genesis_hash"], genesis.hash().to_string());
    assert_eq!(genesis.network, "lab");
    let stakes: Vec<(String, u64)> = genesis
        .validators
        .iter()
        .map(|v| (v.identity.to_address(), v.stake))
        .collect();
    assert_eq!(stakes, vec![(v1.clone(), 100), (v2, 200), (v3, 100)]);
    assert_eq!(genesis.accounts[0].address.to_address(), faucet);
    assert_eq!(report["total_stake"], 400);
    // The peer id each validator's key gives it, for the others' --bootstrap.
    let peer = report["validators"][0]["peer_id"]
        .as_str()
        .expect("peer_id");
    assert!(peer.starts_with("12D3KooW"), "{peer}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let start = genesis.creation_time_ms;
    assert!(
        start > now_ms + 50_000 && start <= now_ms + 60_000,
        "{start} vs {now_ms}"
    );

    // Text output names the file and the hash.
    let out = bb_localnet(
        dir.path(),
        &["genesis", "--validator", &v1, "-o", "single.json"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let single = Genesis::from_json(&std::fs::read(dir.path().join("single.json")).expect("file"))
        .expect("valid");
    assert!(stdout.contains("Wrote single.json"), "{stdout}");
    assert!(
        stdout.contains(&format!("genesis hash: {}", single.hash())),
        "{stdout}"
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_1_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = address(1);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--validator"),
        (
            vec!["--validator".into(), "bb_notakey".into()],
            "not a bb_ address",
        ),
        (
            vec!["--validator".into(), format!("{v1}:lots")],
            "not a stake",
        ),
        (
            vec![
                "--validator".into(),
                v1.clone(),
                "--account".into(),
                v1.clone(),
            ],
            "bb_ADDRESS:BALANCE",
        ),
        (
            vec![
                "--validator".into(),
                v1.clone(),
                "--validator".into(),
                v1.clone(),
            ],
            "listed twice",
        ),
        (vec!["--validator".into(), format!("{v1}:0")], "zero stake"),
        (
            vec![
                "--validator".into(),
                v1.clone(),
                "--epoch-slots".into(),
                "30".into(),
            ],
            "slots_per_epoch",
        ),
    ];
    for (args, needle) in cases {
        let mut all: Vec<&str> = vec!["genesis", "-o", "genesis.json"];
        all.extend(args.iter().map(String::as_str));
        let out = bb_localnet(dir.path(), &all);
        assert_refused(&out, needle);
        assert!(!dir.path().join("genesis.json").exists(), "{args:?}");
    }
}

#[test]
fn an_existing_genesis_is_kept_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("genesis.json");
    std::fs::write(&path, "mine").expect("write");
    let v1 = address(1);
    let out = bb_localnet(dir.path(), &["genesis", "--validator", &v1]);
    assert_refused(&out, "--force");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "mine");
    let out = bb_localnet(dir.path(), &["genesis", "--validator", &v1, "--force"]);
    assert!(out.status.success());
    Genesis::from_json(&std::fs::read(&path).expect("read")).expect("replaced by a genesis");
}
