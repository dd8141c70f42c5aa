//! `block --slot N`: one block's summary, and the block re-checked here from its bytes:
//! id, leader signature, body, PoH, link to its parent, scheduled leader.

use anyhow::Context as _;
use bb_cli::{EXIT_OK, EXIT_USER_ERROR, Output};
use bb_core::{Block, Canonical, Hash};
use bb_rpc::pb::{BlockSummary, Commitment};
use bb_rpc::{NodeClient, RpcError};
use serde::Serialize;

use crate::chain::verify_poh;
use crate::table;
use crate::target::{NO_GENESIS_HINT, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub result: Verdict,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, result: Verdict, detail: impl Into<String>) -> Check {
        Check {
            name,
            result,
            detail: detail.into(),
        }
    }

    fn of(name: &'static str, outcome: Result<String, String>) -> Check {
        match outcome {
            Ok(d) => Check::new(name, Verdict::Ok, d),
            Err(d) => Check::new(name, Verdict::Failed, d),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BlockReport {
    pub node: String,
    pub slot: u64,
    pub parent_slot: u64,
    pub block_id: String,
    pub parent_id: String,
    pub leader: String,
    pub bank_hash: Option<String>,
    pub blockhash: String,
    pub commitment: String,
    pub transactions: u64,
    pub ticks: u64,
    /// Counted from the decoded block; absent if it did not decode.
    pub entries: Option<usize>,
    pub bytes: usize,
    pub checks: Vec<Check>,
}

impl BlockReport {
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.result == Verdict::Failed)
            .map(|c| c.name)
            .collect()
    }
}

pub fn commitment_name(c: Commitment) -> &'static str {
    match c {
        Commitment::Unspecified => "not on the best fork",
        Commitment::Processed => "processed",
        Commitment::Confirmed => "confirmed",
        Commitment::Finalized => "finalized",
    }
}

pub async fn run(out: Output, target: &Target, slot: u64) -> anyhow::Result<u8> {
    let client = target.connect().await?;
    let answer = match client.block(slot).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => anyhow::bail!("node has no block for slot {slot}"),
        Err(e) => return Err(e).context(format!("block of slot {slot}")),
    };
    let summary = answer
        .block
        .with_context(|| format!("the node's answer for slot {slot} has no block summary"))?;
    let mut report = BlockReport {
        node: target.selected.label(),
        slot: summary.slot,
        parent_slot: summary.parent_slot,
        block_id: summary.block_id.clone(),
        parent_id: summary.parent_id.clone(),
        leader: summary.leader.clone(),
        bank_hash: summary.bank_hash.clone(),
        blockhash: summary.blockhash.clone(),
        commitment: commitment_name(summary.commitment()).into(),
        transactions: summary.transaction_count,
        ticks: summary.tick_count,
        entries: None,
        bytes: answer.block_bytes.len(),
        checks: Vec::new(),
    };
    match Block::from_bytes(&answer.block_bytes) {
        Err(e) => report.checks.push(Check::new(
            "decode",
            Verdict::Failed,
            format!("the block bytes do not decode: {e}"),
        )),
        Ok(block) => {
            report.entries = Some(block.entries.len());
            report.checks = check_block(&client, target, slot, &summary, &block).await;
        }
    }
    out.emit(&report, || render(&report));
    let failed = report.failed();
    if !failed.is_empty() {
        eprintln!(
            "error: the block of slot {slot} fails: {}",
            failed.join(", ")
        );
        return Ok(EXIT_USER_ERROR);
    }
    Ok(EXIT_OK)
}

/// Every check of one decoded block, in order.
async fn check_block(
    client: &NodeClient,
    target: &Target,
    slot: u64,
    summary: &BlockSummary,
    block: &Block,
) -> Vec<Check> {
    let h = &block.header;
    let mut checks = local_checks(
        slot,
        summary,
        block,
        target.genesis().map(|g| g.hashes_per_tick),
    );
    // The network, when a genesis file says which one it should be.
    let node_genesis = client.status().await.ok().map(|s| s.genesis_hash);
    if let Some(g) = target.genesis() {
        let file = g.hash().to_string();
        checks.push(match &node_genesis {
            Some(node) if *node == file => Check::new(
                "network",
                Verdict::Ok,
                "genesis hash matches the genesis file",
            ),
            Some(node) => Check::new(
                "network",
                Verdict::Failed,
                format!("the node's genesis hash {node} is not the genesis file's {file}"),
            ),
            None => Check::new(
                "network",
                Verdict::Skipped,
                "the node did not say its genesis hash",
            ),
        });
    }
    checks.push(parent_link(client, target, block, node_genesis.as_deref()).await);
    checks.push(scheduled_leader(client, target, slot, &h.leader.to_address()).await);
    checks
}

/// The checks that need nothing but the block and its summary.
pub fn local_checks(
    slot: u64,
    summary: &BlockSummary,
    block: &Block,
    hashes_per_tick: Option<u64>,
) -> Vec<Check> {
    let h = &block.header;
    let id = block.id().to_string();
    let mut checks = vec![
        Check::of(
            "block id",
            if id == summary.block_id && h.slot == slot {
                Ok(format!("the header hashes to {id}"))
            } else if h.slot != slot {
                Err(format!("the node sent the block of slot {}", h.slot))
            } else {
                Err(format!(
                    "node says {}, the header hashes to {id}",
                    summary.block_id
                ))
            },
        ),
        Check::of(
            "leader signature",
            block
                .verify_signature()
                .map(|()| format!("signed by {}", h.leader))
                .map_err(|e| format!("{}: {e}", h.leader)),
        ),
        Check::of(
            "body",
            block
                .verify_body()
                .map(|()| "entries, counts and poh_end match the header".to_string())
                .map_err(|e| e.to_string()),
        ),
    ];
    if summary.leader != h.leader.to_address() {
        checks.push(Check::new(
            "summary",
            Verdict::Failed,
            format!(
                "the node says the leader is {}, the block is by {}",
                summary.leader, h.leader
            ),
        ));
    }
    checks.push(match verify_poh(&h.poh_start, &block.entries, hashes_per_tick) {
        Err(e) => Check::new("PoH", Verdict::Failed, e),
        Ok(()) if hashes_per_tick.is_some() => Check::new(
            "PoH",
            Verdict::Ok,
            format!("{} entries, tick lengths included", block.entries.len()),
        ),
        Ok(()) => Check::new(
            "PoH",
            Verdict::Ok,
            format!(
                "hash chain of {} entries; tick lengths not checked without the genesis ({NO_GENESIS_HINT})",
                block.entries.len()
            ),
        ),
    });
    checks
}

/// The block's parent id and PoH start against the parent the node has (or the genesis).
async fn parent_link(
    client: &NodeClient,
    target: &Target,
    block: &Block,
    node_genesis: Option<&str>,
) -> Check {
    let h = &block.header;
    let (parent_id, parent_poh_end, what) = if h.parent_slot == 0 {
        let genesis = match target.genesis() {
            Some(g) => Some(g.hash()),
            None => node_genesis.and_then(|s| s.parse::<Hash>().ok()),
        };
        let Some(genesis) = genesis else {
            return Check::new(
                "parent link",
                Verdict::Skipped,
                "the genesis hash is not known",
            );
        };
        (genesis, genesis, "the genesis".to_string())
    } else {
        let parent = match client.block_summary(h.parent_slot).await {
            Ok(p) => p.block,
            Err(e) if e.is_not_found() => {
                return Check::new(
                    "parent link",
                    Verdict::Skipped,
                    format!("the node has no block for parent slot {}", h.parent_slot),
                );
            }
            Err(e) => return Check::new("parent link", Verdict::Skipped, e.to_string()),
        };
        let Some(parent) = parent else {
            return Check::new(
                "parent link",
                Verdict::Skipped,
                "the node sent no parent summary",
            );
        };
        let (Ok(id), Ok(poh)) = (
            parent.block_id.parse::<Hash>(),
            parent.blockhash.parse::<Hash>(),
        ) else {
            return Check::new(
                "parent link",
                Verdict::Failed,
                format!(
                    "the node's summary of slot {} has malformed hashes",
                    h.parent_slot
                ),
            );
        };
        (id, poh, format!("the block at slot {}", h.parent_slot))
    };
    if h.parent_id != parent_id {
        Check::new(
            "parent link",
            Verdict::Failed,
            format!(
                "the block names parent {}, {what} is {parent_id}",
                h.parent_id
            ),
        )
    } else if h.poh_start != parent_poh_end {
        Check::new(
            "parent link",
            Verdict::Failed,
            format!(
                "PoH starts at {}, {what} ended at {parent_poh_end}",
                h.poh_start
            ),
        )
    } else {
        Check::new(
            "parent link",
            Verdict::Ok,
            format!("builds on {what}, PoH continues from it"),
        )
    }
}

/// The block's leader against the node's leader schedule for the slot.
async fn scheduled_leader(client: &NodeClient, target: &Target, slot: u64, leader: &str) -> Check {
    let slots_per_epoch = match target.genesis() {
        Some(g) => Some(g.slots_per_epoch),
        None => client.schedule(None).await.ok().map(|s| s.slots_per_epoch),
    };
    let Some(spe) = slots_per_epoch.filter(|s| *s > 0) else {
        return Check::new(
            "scheduled leader",
            Verdict::Skipped,
            "the epoch length is not known",
        );
    };
    let epoch = slot / spe;
    let schedule = match client.schedule(Some(epoch)).await {
        Ok(s) => s,
        Err(e) => {
            let why = match e {
                RpcError::Status { .. } if e.is_not_found() => {
                    format!("the node has no schedule for epoch {epoch}")
                }
                other => other.to_string(),
            };
            return Check::new("scheduled leader", Verdict::Skipped, why);
        }
    };
    let scheduled = schedule
        .runs
        .iter()
        .find(|r| (r.start_slot..r.start_slot.saturating_add(r.slot_count)).contains(&slot));
    match scheduled {
        None => Check::new(
            "scheduled leader",
            Verdict::Skipped,
            format!("the node's schedule for epoch {epoch} does not cover slot {slot}"),
        ),
        Some(r) if r.leader == leader => Check::new(
            "scheduled leader",
            Verdict::Ok,
            format!("slot {slot} is {leader}'s by the node's schedule"),
        ),
        Some(r) => Check::new(
            "scheduled leader",
            Verdict::Failed,
            format!(
                "slot {slot} belongs to {}, the block is by {leader}",
                r.leader
            ),
        ),
    }
}

pub fn render(r: &BlockReport) -> String {
    let mut text = String::new();
    let fields: [(&str, String); 12] = [
        ("slot", r.slot.to_string()),
        ("parent slot", r.parent_slot.to_string()),
        ("block id", r.block_id.clone()),
        ("parent id", r.parent_id.clone()),
        ("leader", r.leader.clone()),
        (
            "bank hash",
            r.bank_hash
                .clone()
                .unwrap_or_else(|| "(not replayed by this node)".into()),
        ),
        ("blockhash", r.blockhash.clone()),
        ("commitment", r.commitment.clone()),
        ("transactions", r.transactions.to_string()),
        ("ticks", r.ticks.to_string()),
        ("entries", table::opt(r.entries)),
        ("size", format!("{} bytes", r.bytes)),
    ];
    for (k, v) in fields {
        text.push_str(&format!("{k:<13} {v}\n"));
    }
    let mut t = table::table(&["check", "result", "detail"], &[]);
    for c in &r.checks {
        let result = match c.result {
            Verdict::Ok => "ok",
            Verdict::Failed => "FAILED",
            Verdict::Skipped => "skipped",
        };
        t.add_row(vec![
            c.name.to_string(),
            result.to_string(),
            c.detail.clone(),
        ]);
    }
    text.push_str(&t.to_string());
    text
}

#[cfg(test)]
mod tests {
    use bb_core::{Keypair, PohRecorder, Transaction, hash};

    use super::*;

    fn block() -> (Block, BlockSummary) {
        let leader = Keypair::from_seed(&[7; 32]);
        let start = hash(b"parent poh");
        let mut poh = PohRecorder::new(start, 10);
        let tx = Transaction::transfer(&leader, leader.pubkey(), 1, 1, Hash::ZERO);
        let entries = vec![poh.record(vec![tx]).unwrap(), poh.tick(), poh.tick()];
        let b = Block::new_signed(&leader, 9, 8, hash(b"parent"), start, entries);
        let s = BlockSummary {
            slot: 9,
            parent_slot: 8,
            block_id: b.id().to_string(),
            parent_id: b.header.parent_id.to_string(),
            leader: leader.pubkey().to_address(),
            bank_hash: None,
            blockhash: b.header.poh_end.to_string(),
            transaction_count: 1,
            tick_count: 2,
            commitment: Commitment::Confirmed.into(),
        };
        (b, s)
    }

    fn verdicts(checks: &[Check]) -> Vec<(&'static str, Verdict)> {
        checks.iter().map(|c| (c.name, c.result)).collect()
    }

    #[test]
    fn an_honest_block_passes_every_local_check() {
        let (b, s) = block();
        let checks = local_checks(9, &s, &b, Some(10));
        assert!(checks.iter().all(|c| c.result == Verdict::Ok), "{checks:?}");
        let no_genesis = local_checks(9, &s, &b, None);
        let poh = no_genesis.iter().find(|c| c.name == "PoH").unwrap();
        assert!(poh.detail.contains("tick lengths not checked"), "{poh:?}");
        // The wrong tick length is caught once the genesis says what it is.
        let wrong = local_checks(9, &s, &b, Some(11));
        assert!(verdicts(&wrong).contains(&("PoH", Verdict::Failed)));
    }

    #[test]
    fn a_flipped_bit_fails_body_and_poh() {
        let (mut b, s) = block();
        b.entries[1].hash.0[0] ^= 1;
        let v = verdicts(&local_checks(9, &s, &b, Some(10)));
        assert!(v.contains(&("block id", Verdict::Ok)));
        assert!(v.contains(&("leader signature", Verdict::Ok)));
        assert!(v.contains(&("body", Verdict::Failed)));
        assert!(v.contains(&("PoH", Verdict::Failed)));
        let (b, mut s) = block();
        s.leader = "bb_someoneelse".into();
        s.block_id = Hash::ZERO.to_string();
        let v = verdicts(&local_checks(9, &s, &b, None));
        assert!(v.contains(&("block id", Verdict::Failed)));
        assert!(v.contains(&("summary", Verdict::Failed)));
    }

    #[test]
    fn the_report_lists_fields_and_checks() {
        let (b, s) = block();
        let report = BlockReport {
            node: "node 0".into(),
            slot: 9,
            parent_slot: 8,
            block_id: s.block_id.clone(),
            parent_id: s.parent_id.clone(),
            leader: s.leader.clone(),
            bank_hash: None,
            blockhash: s.blockhash.clone(),
            commitment: "confirmed".into(),
            transactions: 1,
            ticks: 2,
            entries: Some(3),
            bytes: b.to_bytes().len(),
            checks: local_checks(9, &s, &b, Some(10)),
        };
        let text = render(&report);
        assert!(text.contains("commitment    confirmed"), "{text}");
        assert!(text.contains("(not replayed by this node)"), "{text}");
        assert!(report.failed().is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["result"], "ok");
    }
}
