//! Catching up a live network (real processes): nodes added by every sync mode reach the
//! cluster's finalized slot and vote; a peer serving tampered blocks or snapshots is
//! caught and named without touching the target directory; an interrupted sync resumes
//! without downloading again.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn sync(net: &Localnet, args: &[&str]) -> std::process::Output {
    Command::new(bin("bb-sync"))
        .args(args)
        .arg("--localnet")
        .arg(net.dir())
        .output()
        .expect("bb-sync runs")
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every voter address in `bb-inspect votes --slot S`.
fn voters(net: &Localnet, node: usize, slot: u64) -> Vec<String> {
    let out = Command::new(bin("bb-inspect"))
        .args([
            "votes",
            "--slot",
            &slot.to_string(),
            "--json",
            "--node",
            &node.to_string(),
        ])
        .arg("--localnet")
        .arg(net.dir())
        .output()
        .expect("bb-inspect runs");
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["votes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["voter"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn nodes_join_a_live_network_by_every_sync_mode_and_tampering_is_caught() {
    // Node 2 serves tampered blocks and snapshots to syncing clients; 3 spares to add.
    let net = Localnet::up(&[
        "--nodes",
        "3",
        "--spare",
        "3",
        "--snapshot-interval",
        "16",
        "--fault",
        "2=serve-tampered",
    ]);
    let urls = net.rpc_urls();
    let rt = runtime();
    let ok = rt.block_on(wait_for(Duration::from_secs(90), || async {
        finalized(&urls[0]).await >= 40
    }));
    assert!(ok, "no finalized slot 40\n{}", net.logs());
    let scratch = tempfile::tempdir().expect("tempdir");

    // bb-snapshot over gRPC: node 0 snapshots its root; the file is downloaded and checks
    // out. From the tampering node 2, the corrupt file is refused and not kept.
    let snap = |node: &str| {
        Command::new(bin("bb-snapshot"))
            .args(["create", "--json", "--node", node, "-o"])
            .arg(format!(
                "{}/",
                scratch.path().join(format!("snap-{node}")).display()
            ))
            .arg("--localnet")
            .arg(net.dir())
            .output()
            .expect("bb-snapshot runs")
    };
    let out = snap("0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = json(&out);
    let file = info["path"].as_str().expect("path").to_string();
    let verified = Command::new(bin("bb-snapshot"))
        .args(["verify", "--json", &file])
        .output()
        .expect("bb-snapshot runs");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(json(&verified)["bank_hash"], info["bank_hash"]);
    let out = snap("2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not valid") && err.contains("chunk"), "{err}");
    assert!(
        dir_listing(&scratch.path().join("snap-2")).is_empty(),
        "the bad file was kept"
    );

    // A tampering peer: named, and the target directory is never created.
    let target = scratch.path().join("tampered");
    for mode in ["full", "warp"] {
        let out = sync(
            &net,
            &[
                mode,
                "--from",
                "node2",
                "--ledger",
                target.to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(err.contains("node 2"), "{mode}: the peer is named: {err}");
        match mode {
            "full" => assert!(err.contains("tampered block for slot"), "{err}"),
            _ => assert!(err.contains("chunk"), "the corrupt chunk is named: {err}"),
        }
        assert!(!target.exists(), "{mode}: the target was touched");
    }
    // An existing ledger is left exactly as it was.
    let existing = scratch.path().join("existing");
    let out = sync(
        &net,
        &[
            "full",
            "--from",
            "node0",
            "--ledger",
            existing.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = dir_listing(&existing);
    let db = std::fs::read(existing.join("ledger.redb")).expect("ledger file");
    let out = sync(
        &net,
        &[
            "full",
            "--from",
            "node2",
            "--ledger",
            existing.to_str().unwrap(),
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(dir_listing(&existing), before);
    assert_eq!(
        std::fs::read(existing.join("ledger.redb")).expect("ledger file"),
        db
    );

    // Interrupted and resumed: what was downloaded is not downloaded again.
    let resumed = scratch.path().join("resumed");
    let mut slow = Command::new(bin("bb-sync"))
        .args([
            "full",
            "--from",
            "node1",
            "--limit-rate",
            "1000",
            "--ledger",
        ])
        .arg(&resumed)
        .arg("--localnet")
        .arg(net.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bb-sync starts");
    std::thread::sleep(Duration::from_secs(6));
    slow.kill().expect("kill bb-sync");
    let _ = slow.wait();
    assert!(
        !resumed.exists(),
        "a killed sync left a half-built ledger in place"
    );
    let out = sync(
        &net,
        &[
            "full",
            "--from",
            "node1",
            "--ledger",
            resumed.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert!(
        report["blocks_reused"].as_u64().unwrap_or(0) > 0,
        "nothing was reused: {report}"
    );
    assert!(
        report["blocks_replayed"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );

    // Each sync mode adds a voting validator.
    let manifest = net.manifest();
    for (mode, index) in [("warp", 3usize), ("snapshot", 4), ("full", 5)] {
        let cluster = rt.block_on(finalized(&urls[0]));
        let started = Instant::now();
        let out = net.run(&["add", "--sync", mode, "--json"]);
        assert!(
            out.status.success(),
            "add --sync {mode}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            net.logs()
        );
        let added = json(&out);
        assert_eq!(added[0]["index"].as_u64(), Some(index as u64), "{added}");
        let url = added[0]["rpc_url"].as_str().expect("rpc_url").to_string();
        let identity = manifest["nodes"][index]["identity"]
            .as_str()
            .expect("identity")
            .to_string();
        let caught_up = rt.block_on(wait_for(Duration::from_secs(60), || async {
            finalized(&url).await >= cluster
        }));
        assert!(
            caught_up,
            "{mode}: node {index} did not reach slot {cluster}\n{}",
            net.logs()
        );
        // Its votes are on record at node 0 for a slot after it joined.
        let mut seen = false;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen && Instant::now() < deadline {
            let now = rt.block_on(finalized(&urls[0]));
            seen = (cluster..=now)
                .rev()
                .take(20)
                .any(|s| voters(&net, 0, s).contains(&identity));
            if !seen {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        assert!(
            seen,
            "{mode}: no vote of node {index} in bb-inspect votes\n{}",
            net.logs()
        );
        eprintln!(
            "{mode}: node {index} added and voting in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    // A node stopped for a while catches up by snapshot sync, keeps its tower, and votes
    // again: the new root settles its old votes (their chain is fetched as headers).
    let victim = 1;
    let out = net.run(&["kill", "--node", &victim.to_string()]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_secs(8));
    let out = net.run(&["start", "--node", &victim.to_string(), "--sync", "snapshot"]);
    assert!(
        out.status.success(),
        "start --sync: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        net.logs()
    );
    let metrics = net.metrics_url(victim);
    let voted = rt.block_on(wait_for(Duration::from_secs(60), || async {
        metric(&metrics, "bb_votes_cast_total").await.unwrap_or(0.0) > 0.0
    }));
    assert!(
        voted,
        "node {victim} did not vote after its sync\n{}",
        net.logs()
    );
}
