//! `peers`: the validators a node knows of, and how it is connected to them.

use bb_cli::{EXIT_OK, Output};
use bb_rpc::pb::Peer;
use serde::Serialize;

use crate::table::{self, opt, percent};
use crate::target::Target;

#[derive(Debug, Serialize)]
pub struct PeersReport {
    pub node: String,
    pub total_stake: u64,
    pub connected: usize,
    pub peers: Vec<PeerRow>,
}

#[derive(Debug, Serialize)]
pub struct PeerRow {
    pub identity: String,
    pub address: String,
    pub shred_address: String,
    pub rpc_address: String,
    pub stake: u64,
    pub last_slot: Option<u64>,
    pub rtt_ms: Option<u32>,
    pub connected: bool,
    pub clock_skew_ms: Option<i64>,
    pub version: String,
}

impl From<Peer> for PeerRow {
    fn from(p: Peer) -> Self {
        PeerRow {
            identity: p.identity,
            address: p.libp2p_address,
            shred_address: p.shred_address,
            rpc_address: p.rpc_address,
            stake: p.stake,
            last_slot: p.last_slot,
            rtt_ms: p.rtt_ms,
            connected: p.connected,
            clock_skew_ms: p.clock_skew_ms,
            version: p.version,
        }
    }
}

pub async fn run(out: Output, target: &Target) -> anyhow::Result<u8> {
    let client = target.connect().await?;
    let answer = client.peers().await?;
    let mut peers: Vec<PeerRow> = answer.peers.into_iter().map(PeerRow::from).collect();
    // Most stake first: the peers that matter for consensus lead.
    peers.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.identity.cmp(&b.identity)));
    let report = PeersReport {
        node: target.selected.label(),
        total_stake: answer.total_stake,
        connected: peers.iter().filter(|p| p.connected).count(),
        peers,
    };
    out.emit(&report, || render(&report));
    Ok(EXIT_OK)
}

pub fn render(report: &PeersReport) -> String {
    if report.peers.is_empty() {
        return format!("{} knows no peers yet", report.node);
    }
    let mut t = table::table(
        &[
            "identity",
            "address",
            "stake",
            "last slot",
            "rtt ms",
            "connected",
            "version",
        ],
        &[2, 3, 4],
    );
    for p in &report.peers {
        t.add_row(vec![
            p.identity.clone(),
            if p.address.is_empty() {
                "-".into()
            } else {
                p.address.clone()
            },
            format!("{} ({})", p.stake, percent(p.stake, report.total_stake)),
            opt(p.last_slot),
            opt(p.rtt_ms),
            if p.connected { "yes" } else { "no" }.into(),
            if p.version.is_empty() {
                "-".into()
            } else {
                p.version.clone()
            },
        ]);
    }
    let mut text = t.to_string();
    text.push_str(&format!(
        "\n{}: {} of {} peers connected",
        report.node,
        report.connected,
        report.peers.len()
    ));
    for p in &report.peers {
        if let Some(skew) = p.clock_skew_ms.filter(|s| s.abs() > 100) {
            text.push_str(&format!(
                "\nwarning: {} clock is {skew:+} ms off this node's",
                p.identity
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_show_stake_share_rtt_and_skew_warnings() {
        let report = PeersReport {
            node: "node 0".into(),
            total_stake: 300,
            connected: 1,
            peers: vec![
                PeerRow {
                    identity: "bb_peerA".into(),
                    address: "/ip4/127.0.0.1/tcp/8001".into(),
                    shred_address: String::new(),
                    rpc_address: String::new(),
                    stake: 100,
                    last_slot: Some(57),
                    rtt_ms: Some(1),
                    connected: true,
                    clock_skew_ms: Some(-250),
                    version: "0.1.0".into(),
                },
                PeerRow {
                    identity: "bb_peerB".into(),
                    address: String::new(),
                    shred_address: String::new(),
                    rpc_address: String::new(),
                    stake: 100,
                    last_slot: None,
                    rtt_ms: None,
                    connected: false,
                    clock_skew_ms: None,
                    version: String::new(),
                },
            ],
        };
        let text = render(&report);
        let a = text.lines().find(|l| l.contains("bb_peerA")).unwrap();
        assert!(
            a.contains("100 (33.3%)") && a.contains("57") && a.contains("yes"),
            "{a}"
        );
        let b = text
            .lines()
            .find(|l| l.contains("bb_peerB") && l.contains('│'))
            .unwrap();
        assert!(b.contains(" no "), "{b}");
        assert!(text.contains("1 of 2 peers connected"), "{text}");
        assert!(text.contains("bb_peerA clock is -250 ms"), "{text}");
    }
}
