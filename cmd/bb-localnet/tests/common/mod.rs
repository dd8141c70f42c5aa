//! What the multi-process tests share: a localnet in a temporary directory that is always
//! taken down, and small polling helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bb_rpc::NodeClient;
use serde_json::Value;

pub fn bin(name: &str) -> PathBuf {
    let localnet = PathBuf::from(env!("CARGO_BIN_EXE_bb-localnet"));
    let path = localnet.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p {name})",
        path.display()
    );
    path
}

/// A localnet that is taken down when dropped.
pub struct Localnet {
    dir: tempfile::TempDir,
}

impl Localnet {
    pub fn up(args: &[&str]) -> Localnet {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = Localnet { dir };
        // bb-localnet finds bb-validator next to itself.
        let _ = bin("bb-validator");
        let out = net.run(&[&["up", "--detach"], args].concat());
        assert!(
            out.status.success(),
            "bb-localnet up failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            net.logs()
        );
        net
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin("bb-localnet"))
            .args(args)
            .arg("--dir")
            .arg(self.dir.path())
            .output()
            .expect("bb-localnet runs")
    }

    pub fn manifest(&self) -> Value {
        let text =
            std::fs::read_to_string(self.dir.path().join("manifest.json")).expect("manifest");
        serde_json::from_str(&text).expect("manifest is JSON")
    }

    pub fn rpc_urls(&self) -> Vec<String> {
        self.manifest()["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["rpc_url"].as_str().expect("rpc_url").to_string())
            .collect()
    }

    pub fn metrics_url(&self, node: usize) -> String {
        self.manifest()["nodes"][node]["metrics_url"]
            .as_str()
            .expect("metrics_url")
            .to_string()
    }

    pub fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = entry.path().join("validator.log");
            if let Ok(text) = std::fs::read_to_string(&log) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                all.push_str(&format!("--- {} ---\n", log.display()));
                for l in tail.into_iter().rev() {
                    all.push_str(l);
                    all.push('\n');
                }
            }
        }
        all
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Localnet {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn client(url: &str) -> NodeClient {
    NodeClient::connect(url, Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls until `cond` holds or the timeout passes; returns whether it held.
pub async fn wait_for<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

pub async fn finalized(url: &str) -> u64 {
    match NodeClient::connect(url, Duration::from_secs(2)).await {
        Ok(c) => c
            .status()
            .await
            .ok()
            .and_then(|s| s.finalized)
            .map_or(0, |f| f.slot),
        Err(_) => 0,
    }
}

pub async fn metric(url: &str, name: &str) -> Option<f64> {
    // The metrics endpoint is plain HTTP; read it with a raw TCP request.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()?
        .to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The finalized slot of each node (0 for a node that does not answer).
pub async fn finalized_all(urls: &[String]) -> Vec<u64> {
    let mut out = Vec::with_capacity(urls.len());
    for u in urls {
        out.push(finalized(u).await);
    }
    out
}

/// Waits until every node finalized at least `slot`; returns whether they did in time.
pub async fn wait_all_finalized(urls: &[String], slot: u64, within: Duration) -> bool {
    wait_for(within, || async {
        finalized_all(urls).await.iter().all(|f| *f >= slot)
    })
    .await
}

/// `(slot, block id)` of every block up to `upto` that the node reports finalized: its
/// finalized chain, for comparing nodes.
pub async fn finalized_chain(url: &str, upto: u64) -> Vec<(u64, String)> {
    let c = client(url).await;
    let mut chain = Vec::new();
    for slot in 1..=upto {
        if let Ok(b) = c.block(slot).await
            && let Some(s) = b.block
            && s.commitment == bb_rpc::Commitment::Finalized as i32
        {
            chain.push((slot, s.block_id));
        }
    }
    chain
}

/// Asserts that every node reports the same finalized chain up to the lowest finalized
/// slot among them, and that it is longer than `at_least` blocks.
pub async fn assert_one_finalized_chain(urls: &[String], at_least: usize) {
    let lowest = finalized_all(urls).await.into_iter().min().unwrap_or(0);
    let mut chains = Vec::new();
    for u in urls {
        chains.push(finalized_chain(u, lowest).await);
    }
    assert!(
        chains[0].len() > at_least,
        "only {} finalized blocks",
        chains[0].len()
    );
    for (i, chain) in chains.iter().enumerate() {
        assert_eq!(
            chain, &chains[0],
            "node {i} finalized another chain than node 0"
        );
    }
}
