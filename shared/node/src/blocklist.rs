//! The operator's block list: `LEDGER/blocklist.json`, re-read whenever it changes.
//!
//! ```json
//! { "peers": [ { "identity": "bb_…", "until_ms": 1795000000000 } ] }
//! ```
//!
//! Each listed validator is disconnected and refused until `until_ms` (ms since the Unix
//! epoch), and its shreds are dropped; the list heals by itself when the times pass, so a
//! tool that wrote it and died leaves nothing cut for good. `bb-localnet partition` uses
//! it to split a network into groups; an operator can use it to shut out a peer by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bb_core::Pubkey;
use bb_net::NetClient;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::state::{Shared, now_ms};

/// The file's name inside the ledger directory.
pub const BLOCKLIST_FILE: &str = "blocklist.json";
/// Largest block list read.
const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocklist {
    pub peers: Vec<Blocked>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocked {
    /// The validator's identity address (`bb_…`).
    pub identity: String,
    /// Blocked until this instant, ms since the Unix epoch.
    pub until_ms: u64,
}

impl Blocklist {
    /// Parses untrusted JSON; every identity must be a valid address.
    pub fn parse(bytes: &[u8]) -> Result<Vec<(Pubkey, u64)>, String> {
        let list: Blocklist = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        list.peers
            .iter()
            .map(|b| {
                let key: Pubkey = b
                    .identity
                    .parse()
                    .map_err(|e| format!("{}: {e}", b.identity))?;
                Ok((key, b.until_ms))
            })
            .collect()
    }
}

/// The block list's path for a ledger directory.
pub fn path(ledger_dir: &Path) -> PathBuf {
    ledger_dir.join(BLOCKLIST_FILE)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// Watches the block list and applies it, until the node stops.
pub async fn watch(ledger_dir: PathBuf, net: NetClient, shared: Arc<Shared>) {
    let path = path(&ledger_dir);
    let mut seen: Option<Option<SystemTime>> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let stamp = modified(&path);
        if seen == Some(stamp) {
            continue;
        }
        seen = Some(stamp);
        let entries = match stamp {
            None => Vec::new(),
            Some(_) => match read(&path) {
                Ok(entries) => entries,
                Err(e) => {
                    warn!(path = %path.display(), "block list ignored: {e}");
                    continue;
                }
            },
        };
        let now = now_ms();
        let blocked: Vec<(Pubkey, Duration)> = entries
            .into_iter()
            .filter(|(k, until)| *until > now && *k != shared.identity)
            .map(|(k, until)| (k, Duration::from_millis(until - now)))
            .collect();
        info!(peers = blocked.len(), "block list applied");
        if let Ok(mut peers) = shared.peers.write() {
            let at = Instant::now();
            for view in peers.values_mut() {
                view.blocked_until = None;
            }
            for (k, d) in &blocked {
                peers.entry(*k).or_default().blocked_until = Some(at + *d);
            }
        }
        if net.set_blocked(blocked).await.is_err() {
            return;
        }
    }
}

fn read(path: &Path) -> Result<Vec<(Pubkey, u64)>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_BYTES {
        return Err(format!("{len} bytes, over the limit of {MAX_BYTES}"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    Blocklist::parse(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_lists_and_names_what_is_wrong() {
        let k = bb_core::Keypair::from_seed(&[1; 32]).pubkey();
        let json = format!(
            r#"{{"peers":[{{"identity":"{}","until_ms":5}}]}}"#,
            k.to_address()
        );
        assert_eq!(Blocklist::parse(json.as_bytes()), Ok(vec![(k, 5)]));
        assert_eq!(Blocklist::parse(br#"{"peers":[]}"#), Ok(vec![]));
        let bad = Blocklist::parse(br#"{"peers":[{"identity":"bb_nope","until_ms":5}]}"#);
        assert!(bad.unwrap_err().contains("bb_nope"));
        assert!(Blocklist::parse(b"{").is_err());
        assert!(Blocklist::parse(br#"{"peers":[],"extra":1}"#).is_err());
    }
}
