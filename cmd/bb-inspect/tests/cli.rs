//! bb-inspect as a user meets it: the real binary, real exit codes, one-line errors.
//! Most tests here need no running node; the last one starts a real 3-node localnet
//! (bb-validator and bb-localnet must be built: `cargo test --workspace` builds them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn inspect(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-inspect"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("bb-inspect runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A user error: exit 1, exactly one line on stderr, no panic text.
fn assert_user_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A local port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free local port");
    l.local_addr().expect("bound").port()
}

#[test]
fn votes_without_slot_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = inspect(dir.path(), &["votes"]);
    assert_user_error(&o, "--slot");
    let o = inspect(dir.path(), &["block", "--slot", "many"]);
    assert_user_error(&o, "many");
}

#[test]
fn a_closed_port_is_one_line_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    for cmd in [
        &["status"][..],
        &["peers"],
        &["votes", "--slot", "3"],
        &["schedule"],
        &["block", "--slot", "3"],
        &["integrity"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--rpc", &url, "--timeout-ms", "2000"]);
        let o = inspect(dir.path(), &args);
        assert_user_error(&o, &url);
        assert!(stdout(&o).is_empty(), "{cmd:?}: {}", stdout(&o));
    }
    // The same under --json: stdout stays empty, the error is still one line.
    let o = inspect(dir.path(), &["status", "--json", "--rpc", &url]);
    assert_user_error(&o, &url);
}

#[test]
fn an_empty_localnet_dir_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("net");
    std::fs::create_dir(&empty).unwrap();
    let o = inspect(
        dir.path(),
        &["status", "--localnet", empty.to_str().unwrap()],
    );
    assert_user_error(&o, "no localnet in ");
    assert!(
        stderr(&o).contains("bb-localnet up --nodes 3"),
        "{}",
        stderr(&o)
    );

    // With no flags at all: node 0 of ./.bb-localnet.
    let o = inspect(dir.path(), &["peers"]);
    assert_user_error(
        &o,
        "no localnet in ./.bb-localnet: start one with `bb-localnet up --nodes 3`, or pass --rpc URL",
    );
}

fn write_manifest(dir: &Path, ports: &[u16]) {
    let nodes: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(r#"{{"index": {i}, "rpc_url": "http://127.0.0.1:{p}", "identity": "bb_node{i}", "pid": 1}}"#)
        })
        .collect();
    std::fs::write(
        dir.join("manifest.json"),
        format!(r#"{{"nodes": [{}]}}"#, nodes.join(",")),
    )
    .expect("manifest written");
}

#[test]
fn a_localnet_whose_nodes_are_all_down_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &[closed_port(), closed_port()]);
    let d = dir.path().to_str().unwrap();
    let o = inspect(
        dir.path(),
        &["status", "--localnet", d, "--timeout-ms", "2000"],
    );
    assert_user_error(&o, "none of the 2 nodes of the localnet");

    let o = inspect(dir.path(), &["peers", "--localnet", d, "--node", "7"]);
    assert_user_error(&o, "has no node 7");
}

#[test]
fn bad_flag_combinations_and_files_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = inspect(
        dir.path(),
        &["status", "--rpc", "127.0.0.1:1", "--node", "1"],
    );
    assert_user_error(&o, "--rpc and --node");
    let o = inspect(dir.path(), &["status", "--rpc", "https://127.0.0.1:1"]);
    assert_user_error(&o, "https is not supported");
    std::fs::write(dir.path().join("genesis.json"), "{ not json").unwrap();
    let o = inspect(
        dir.path(),
        &[
            "integrity",
            "--rpc",
            "127.0.0.1:1",
            "--genesis",
            "genesis.json",
        ],
    );
    assert_user_error(&o, "genesis genesis.json");
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"nodes": [{"index": 0}]}"#,
    )
    .unwrap();
    let o = inspect(dir.path(), &["status", "--localnet", "."]);
    assert_user_error(&o, "invalid localnet manifest");
}

#[test]
fn help_shows_examples_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["votes", "--help"],
        &["integrity", "--help"],
        &["schedule", "--help"],
    ] {
        let o = inspect(dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Example"), "{args:?}: {}", stdout(&o));
    }
}

// ---- A real network -------------------------------------------------------------------

/// A localnet started with `bb-localnet up --detach`; always taken down on drop.
struct Localnet {
    dir: tempfile::TempDir,
}

/// A binary built beside this test's bb-inspect (target/debug/).
fn sibling_bin(name: &str) -> PathBuf {
    let inspect = Path::new(env!("CARGO_BIN_EXE_bb-inspect"));
    inspect.parent().expect("target dir").join(name)
}

impl Localnet {
    fn up(nodes: usize) -> Localnet {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let localnet = sibling_bin("bb-localnet");
        assert!(
            localnet.exists() && sibling_bin("bb-validator").exists(),
            "build bb-localnet and bb-validator first: cargo build -p bb-localnet -p bb-validator"
        );
        let net = Localnet { dir };
        let o = Command::new(localnet)
            .args(["up", "--nodes", &nodes.to_string(), "--detach", "--dir"])
            .arg(net.dir())
            .stdin(Stdio::null())
            .output()
            .expect("bb-localnet runs");
        assert!(o.status.success(), "bb-localnet up: {}", stderr(&o));
        net
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs bb-inspect against this localnet with `--json`.
    fn inspect(&self, args: &[&str]) -> (Output, serde_json::Value) {
        let mut all = args.to_vec();
        all.extend([
            "--localnet",
            self.dir().to_str().expect("a UTF-8 path"),
            "--json",
        ]);
        let o = inspect(self.dir(), &all);
        let json = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o, json)
    }

    /// Waits until every node reports a finalized slot of at least `slot`; returns the
    /// lowest finalized slot.
    fn wait_finalized(&self, slot: u64, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let (_, json) = self.inspect(&["status"]);
            let lowest = json["nodes"].as_array().and_then(|nodes| {
                nodes
                    .iter()
                    .map(|n| n["status"]["finalized"]["slot"].as_u64())
                    .collect::<Option<Vec<u64>>>()
                    .and_then(|v| v.into_iter().min())
            });
            if let Some(f) = lowest.filter(|f| *f >= slot) {
                return f;
            }
            assert!(
                Instant::now() < deadline,
                "no finalized slot {slot} on every node in {within:?}: {json}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Localnet {
    fn drop(&mut self) {
        let _ = Command::new(sibling_bin("bb-localnet"))
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output();
    }
}

#[test]
fn a_live_three_node_localnet_is_inspected_end_to_end() {
    let net = Localnet::up(3);
    let finalized = net.wait_finalized(5, Duration::from_secs(120));

    let (o, status) = net.inspect(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["up"] == true), "{status}");

    let (o, peers) = net.inspect(&["peers"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(peers["peers"].as_array().unwrap().len(), 2, "{peers}");

    let slot = finalized.to_string();
    let (o, votes) = net.inspect(&["votes", "--slot", &slot]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(votes["invalid_votes"], 0, "{votes}");
    assert!(!votes["votes"].as_array().unwrap().is_empty(), "{votes}");
    assert_eq!(votes["blocks"][0]["supermajority"], true, "{votes}");

    let (o, schedule) = net.inspect(&["schedule"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !schedule["runs"].as_array().unwrap().is_empty(),
        "{schedule}"
    );

    let (o, block) = net.inspect(&["block", "--slot", &slot]);
    assert!(o.status.success(), "{}: {block}", stderr(&o));

    let (o, integrity) = net.inspect(&["integrity", "--to", &slot]);
    assert!(o.status.success(), "{}: {integrity}", stderr(&o));
    assert_eq!(integrity["ok"], true, "{integrity}");
    assert_eq!(
        integrity["replayed"], true,
        "the localnet's genesis.json is used"
    );
    assert!(
        integrity["checked_blocks"].as_u64().unwrap() >= 1,
        "{integrity}"
    );
}
