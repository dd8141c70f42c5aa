//! `status`: every node of a localnet (or the one named) in one table.

use std::collections::BTreeMap;

use bb_cli::{EXIT_OK, Output};
use bb_rpc::pb::{GetStatusResponse, SlotHash};
use serde::Serialize;

use crate::table::{self, short_addr, short_hash};
use crate::target::{NodeRef, Target};

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Index in the localnet; absent for a node given by `--rpc`.
    pub node: Option<usize>,
    pub url: String,
    pub up: bool,
    /// Why the node did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusInfo>,
    /// The identity the manifest lists (for a node that is down).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub manifest_identity: String,
}

#[derive(Debug, Serialize)]
pub struct SlotAt {
    pub slot: u64,
    pub bank_hash: String,
    pub block_id: String,
}

#[derive(Debug, Serialize)]
pub struct StatusInfo {
    pub identity: String,
    pub version: String,
    pub genesis_hash: String,
    pub slot: u64,
    pub processed: Option<SlotAt>,
    pub confirmed: Option<SlotAt>,
    pub finalized: Option<SlotAt>,
    pub root: Option<SlotAt>,
    pub epoch: u64,
    pub leader: String,
    pub peer_count: u32,
    pub reachable_stake_share: f64,
    pub stake: u64,
    pub total_stake: u64,
    pub uptime_ms: u64,
    pub slot_duration_ms: u64,
    pub recent_blockhash: String,
}

fn slot_at(s: Option<SlotHash>) -> Option<SlotAt> {
    s.map(|s| SlotAt {
        slot: s.slot,
        bank_hash: s.bank_hash,
        block_id: s.block_id,
    })
}

impl From<GetStatusResponse> for StatusInfo {
    fn from(s: GetStatusResponse) -> Self {
        StatusInfo {
            identity: s.identity,
            version: s.version,
            genesis_hash: s.genesis_hash,
            slot: s.slot,
            processed: slot_at(s.processed),
            confirmed: slot_at(s.confirmed),
            finalized: slot_at(s.finalized),
            root: slot_at(s.root),
            epoch: s.epoch,
            leader: s.leader,
            peer_count: s.peer_count,
            reachable_stake_share: s.reachable_stake_share,
            stake: s.stake,
            total_stake: s.total_stake,
            uptime_ms: s.uptime_ms,
            slot_duration_ms: s.slot_duration_ms,
            recent_blockhash: s.recent_blockhash,
        }
    }
}

pub async fn run(out: Output, target: &Target) -> anyhow::Result<u8> {
    let asked = target.all.iter().map(|node| query(target, node));
    let nodes = futures::future::join_all(asked).await;
    if nodes.iter().all(|n| !n.up) {
        return Err(all_down(target, &nodes));
    }
    let report = StatusReport { nodes };
    out.emit(&report, || render(&report));
    Ok(EXIT_OK)
}

async fn query(target: &Target, node: &NodeRef) -> NodeStatus {
    let answer = if node.stopped {
        let i = node.index.unwrap_or_default();
        Err(anyhow::anyhow!(
            "stopped (start it with `bb-localnet start --node {i}`)"
        ))
    } else {
        match target.connect_to(node).await {
            Ok(client) => client.status().await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }
    };
    let (up, error, status) = match answer {
        Ok(s) => (true, None, Some(StatusInfo::from(s))),
        Err(e) => (false, Some(bb_cli::one_line(&e)), None),
    };
    NodeStatus {
        node: node.index,
        url: node.url.clone(),
        up,
        error,
        status,
        manifest_identity: node.identity.clone(),
    }
}

/// One line for "nobody answers": the lone node's own error, or a count and the first.
fn all_down(target: &Target, nodes: &[NodeStatus]) -> anyhow::Error {
    let first = nodes
        .first()
        .and_then(|n| n.error.clone())
        .unwrap_or_else(|| "no nodes".into());
    if nodes.len() == 1 {
        return anyhow::anyhow!(first);
    }
    let place = target
        .localnet
        .as_ref()
        .map(|d| format!(" of the localnet in {}", d.display()))
        .unwrap_or_default();
    anyhow::anyhow!("none of the {} nodes{place} answers ({first})", nodes.len())
}

fn slot_cell(s: &Option<SlotAt>, with_hash: bool) -> String {
    match s {
        Some(s) if with_hash => format!("{} ({})", s.slot, short_hash(&s.bank_hash)),
        Some(s) => s.slot.to_string(),
        None => "-".into(),
    }
}

pub fn render(report: &StatusReport) -> String {
    let mut t = table::table(
        &[
            "node",
            "identity",
            "slot",
            "processed",
            "confirmed",
            "finalized",
            "epoch",
            "leader",
            "peers",
            "version",
        ],
        &[0, 2, 3, 4, 6, 8],
    );
    for n in &report.nodes {
        let node = n.node.map_or_else(|| n.url.clone(), |i| i.to_string());
        match &n.status {
            Some(s) => t.add_row(vec![
                node,
                short_addr(&s.identity),
                s.slot.to_string(),
                slot_cell(&s.processed, false),
                slot_cell(&s.confirmed, false),
                slot_cell(&s.finalized, true),
                s.epoch.to_string(),
                short_addr(&s.leader),
                s.peer_count.to_string(),
                s.version.clone(),
            ]),
            None => t.add_row(vec![
                node,
                short_addr(&n.manifest_identity),
                "down".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]),
        };
    }
    let mut text = t.to_string();
    for n in report.nodes.iter().filter(|n| !n.up) {
        let who = n
            .node
            .map_or_else(|| n.url.clone(), |i| format!("node {i}"));
        text.push_str(&format!(
            "\n{who} is down: {}",
            n.error.as_deref().unwrap_or("")
        ));
    }
    for line in disagreements(report) {
        text.push('\n');
        text.push_str(&line);
    }
    text
}

/// Warnings when nodes that answer are not on one network or one finalized chain.
pub fn disagreements(report: &StatusReport) -> Vec<String> {
    let up: Vec<(String, &StatusInfo)> = report
        .nodes
        .iter()
        .filter_map(|n| {
            let who = n
                .node
                .map_or_else(|| n.url.clone(), |i| format!("node {i}"));
            n.status.as_ref().map(|s| (who, s))
        })
        .collect();
    let mut lines = Vec::new();
    let mut genesis: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (who, s) in &up {
        genesis.entry(&s.genesis_hash).or_default().push(who);
    }
    if genesis.len() > 1 {
        let groups: Vec<String> = genesis
            .iter()
            .map(|(h, w)| format!("{} on {}", w.join(", "), short_hash(h)))
            .collect();
        lines.push(format!(
            "warning: the nodes are on different genesis hashes: {}",
            groups.join("; ")
        ));
    }
    let mut finalized: BTreeMap<u64, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for (who, s) in &up {
        if let Some(f) = &s.finalized {
            finalized
                .entry(f.slot)
                .or_default()
                .entry(&f.bank_hash)
                .or_default()
                .push(who);
        }
    }
    for (slot, hashes) in finalized {
        if hashes.len() > 1 {
            let groups: Vec<String> = hashes
                .iter()
                .map(|(h, w)| format!("{} say {}", w.join(", "), short_hash(h)))
                .collect();
            lines.push(format!(
                "warning: the nodes disagree on the bank hash of finalized slot {slot}: {}",
                groups.join("; ")
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(i: usize, finalized: u64, hash: &str) -> NodeStatus {
        NodeStatus {
            node: Some(i),
            url: format!("http://127.0.0.1:{}", 9000 + i),
            up: true,
            error: None,
            manifest_identity: String::new(),
            status: Some(StatusInfo {
                identity: "bb_4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi".into(),
                version: "0.1.0".into(),
                genesis_hash: "G".into(),
                slot: finalized + 3,
                processed: Some(SlotAt {
                    slot: finalized + 2,
                    bank_hash: "P".into(),
                    block_id: "B".into(),
                }),
                confirmed: None,
                finalized: Some(SlotAt {
                    slot: finalized,
                    bank_hash: hash.into(),
                    block_id: "B".into(),
                }),
                root: None,
                epoch: 1,
                leader: "bb_AAAAAAAAAAAAAA".into(),
                peer_count: 2,
                reachable_stake_share: 1.0,
                stake: 100,
                total_stake: 300,
                uptime_ms: 1,
                slot_duration_ms: 400,
                recent_blockhash: String::new(),
            }),
        }
    }

    #[test]
    fn down_nodes_are_rows_not_errors() {
        let report = StatusReport {
            nodes: vec![
                up(0, 40, "HashOfForty"),
                NodeStatus {
                    node: Some(1),
                    url: "http://127.0.0.1:9001".into(),
                    up: false,
                    error: Some(
                        "cannot reach node at http://127.0.0.1:9001: connection refused".into(),
                    ),
                    status: None,
                    manifest_identity: "bb_Zzzzzzzzzz".into(),
                },
            ],
        };
        let text = render(&report);
        let row1 = text.lines().find(|l| l.contains("bb_Zzzzzz")).unwrap();
        assert!(row1.contains("down"), "{text}");
        let row0 = text.lines().find(|l| l.contains("bb_4vJ9JU")).unwrap();
        assert!(row0.contains("40 (HashOfFo)"), "{text}");
        assert!(row0.contains("bb_AAAAAA"), "{text}");
        assert!(text.contains("node 1 is down: cannot reach"), "{text}");
        assert!(disagreements(&report).is_empty());
    }

    #[test]
    fn different_finalized_bank_hashes_are_warned_about() {
        let report = StatusReport {
            nodes: vec![up(0, 40, "AAA"), up(1, 40, "AAA"), up(2, 40, "BBB")],
        };
        let w = disagreements(&report);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("slot 40") && w[0].contains("node 2 say BBB"),
            "{w:?}"
        );
    }
}
