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
    /// Demerits for misbehaviour now (banned at 100).
    pub demerits: f64,
    /// Times this node banned it.
    pub bans: u32,
    /// While banned: milliseconds left.
    pub banned_for_ms: Option<u64>,
    /// Why it is banned now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban_reason: Option<String>,
    /// Its messages dropped over the rate limit.
    pub rate_limited: u64,
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
            demerits: p.demerits,
            bans: p.bans,
            banned_for_ms: p.banned_for_ms,
            ban_reason: (!p.ban_reason.is_empty()).then_some(p.ban_reason),
            rate_limited: p.rate_limited,
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

/// "ok", "35 demerits", or "BANNED 58s (rate-limit), 2 bans".
pub fn standing(p: &PeerRow) -> String {
    match (p.banned_for_ms, &p.ban_reason) {
        (Some(ms), reason) => format!(
            "BANNED {}s ({}), {} ban{}",
            ms.div_ceil(1000),
            reason.as_deref().unwrap_or("?"),
            p.bans,
            if p.bans == 1 { "" } else { "s" }
        ),
        (None, _) if p.demerits >= 1.0 => format!("{:.0} demerits", p.demerits),
        (None, _) if p.bans > 0 => format!("ok ({} past bans)", p.bans),
        (None, _) => "ok".into(),
    }
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
            "standing",
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
            standing(p),
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
    let banned = report
        .peers
        .iter()
        .filter(|p| p.banned_for_ms.is_some())
        .count();
    if banned > 0 {
        text.push_str(&format!("; {banned} banned"));
    }
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
                    demerits: 0.0,
                    bans: 0,
                    banned_for_ms: None,
                    ban_reason: None,
                    rate_limited: 0,
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
                    demerits: 0.0,
                    bans: 1,
                    banned_for_ms: Some(58_400),
                    ban_reason: Some("rate-limit".into()),
                    rate_limited: 5000,
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
        assert!(b.contains("BANNED 59s (rate-limit), 1 ban"), "{b}");
        assert!(a.contains(" ok "), "{a}");
        assert!(text.contains("1 of 2 peers connected; 1 banned"), "{text}");
        assert!(text.contains("bb_peerA clock is -250 ms"), "{text}");
    }
}
