//! `integrity [--from A --to B]`: fetches a range of blocks from a node and checks the
//! chain they form with [`crate::chain`]: parent links, rising slots, PoH continuity,
//! leader signatures and, with the genesis, bank hashes by replay from slot 0.
//!
//! Two passes: block summaries first (small; they say which blocks form the chain), then
//! the chain's full blocks in order, checked on a thread of their own while the next few
//! are being fetched.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use bb_cli::{EXIT_OK, Output};
use bb_core::{Block, Canonical, Hash, Slot};
use bb_rpc::NodeClient;
use bb_rpc::pb::{BlockSummary, Commitment};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::chain::{Anchor, ChainCheck, Failure, Reported, Tally, pick_top, plan_chain};
use crate::target::{NO_GENESIS_HINT, Target};

/// Summaries asked for at once.
const SUMMARY_CONCURRENCY: usize = 16;
/// Full blocks fetched ahead of the checker.
const BLOCK_PREFETCH: usize = 4;
/// Ranges shorter than this get no progress bar.
const PROGRESS_MIN_BLOCKS: u64 = 50;

#[derive(Debug, Serialize)]
pub struct IntegrityReport {
    pub node: String,
    pub from: Slot,
    /// The last slot checked: `--to`, or the newest block below it.
    pub to: Slot,
    /// `--to` when the node has no blocks that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_to: Option<Slot>,
    pub ok: bool,
    /// Chain blocks checked inside `from..=to`.
    pub checked_blocks: u64,
    /// Slots in `from..=to` with no block on the chain.
    pub skipped_slots: u64,
    /// Blocks in `from..=to` that are not on the chain (abandoned forks); not checked.
    pub off_chain_blocks: Vec<Slot>,
    /// Chain blocks below `from` replayed from the genesis to reach it.
    pub replayed_before_from: u64,
    /// Whether bank hashes were re-derived by replay (needs the genesis).
    pub replayed: bool,
    pub bank_hashes_matched: u64,
    /// Blocks the node reported no bank hash for.
    pub bank_hashes_unreported: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureJson>,
}

#[derive(Debug, Serialize)]
pub struct FailureJson {
    pub slot: Slot,
    pub reason: String,
}

impl IntegrityReport {
    /// The one-line verdict of a clean run.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "checked {} from slot {} to {}, {}",
            count(self.checked_blocks, "block"),
            self.from,
            self.to,
            count(self.skipped_slots, "skipped slot")
        );
        if let Some(asked) = self.requested_to {
            line.push_str(&format!(
                " (the node has no blocks after slot {} up to {asked})",
                self.to
            ));
        }
        if !self.off_chain_blocks.is_empty() {
            line.push_str(&format!(
                ", {} on abandoned forks left aside",
                count(self.off_chain_blocks.len() as u64, "block")
            ));
        }
        if self.replayed {
            line.push_str(", all links, PoH, signatures and bank hashes match");
            if self.replayed_before_from > 0 {
                line.push_str(&format!(
                    " (replayed {} from the genesis to reach slot {})",
                    count(self.replayed_before_from, "earlier block"),
                    self.from
                ));
            }
            if self.bank_hashes_unreported > 0 {
                line.push_str(&format!(
                    "; {} no bank hash on the node to compare",
                    match self.bank_hashes_unreported {
                        1 => "1 block had".to_string(),
                        n => format!("{n} blocks had"),
                    }
                ));
            }
        } else {
            line.push_str(&format!(
                ", all links, PoH and signatures match; bank hashes not checked (no genesis: {NO_GENESIS_HINT})"
            ));
        }
        line
    }
}

/// "1 block", "2 blocks".
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

pub async fn run(
    out: Output,
    target: &Target,
    from: Option<Slot>,
    to: Option<Slot>,
) -> anyhow::Result<u8> {
    let client = target.connect().await?;
    let status = client.status().await?;
    if let Some((path, g)) = &target.genesis
        && g.hash().to_string() != status.genesis_hash
    {
        anyhow::bail!(
            "the node at {} is on another network: its genesis hash is {}, {} has {}",
            client.url(),
            status.genesis_hash,
            path.display(),
            g.hash()
        );
    }
    let to = match (to, &status.finalized) {
        (Some(to), _) => to,
        (None, Some(f)) => f.slot,
        (None, None) => anyhow::bail!(
            "the node has no finalized block yet: pass --to SLOT to check newer blocks"
        ),
    };
    let from = from.unwrap_or(1).max(1);
    if from > to {
        anyhow::bail!("--from {from} is above --to {to}");
    }
    let mut check = match target.genesis() {
        Some(g) => Some(ChainCheck::with_replay(g).context("the genesis does not load")?),
        None => None,
    };
    // Replay needs every block from the genesis on.
    let start = if check.is_some() { 1 } else { from };

    // Nothing exists past the node's clock: a far --to costs no calls for empty slots.
    let newest = status
        .slot
        .max(status.processed.as_ref().map_or(0, |p| p.slot));
    let summaries = fetch_summaries(&client, start, to.min(newest).max(start), out).await?;
    let mut report = IntegrityReport {
        node: target.selected.label(),
        from,
        to,
        requested_to: None,
        ok: false,
        checked_blocks: 0,
        skipped_slots: 0,
        off_chain_blocks: Vec::new(),
        replayed_before_from: 0,
        replayed: check.is_some(),
        bank_hashes_matched: 0,
        bank_hashes_unreported: 0,
        failure: None,
    };
    let top = pick_top(
        summaries
            .range(from..=to)
            .map(|(s, b)| (*s, b.commitment() != Commitment::Unspecified)),
    );
    let Some(top) = top else {
        anyhow::bail!("the node has no blocks from slot {from} to {to}");
    };
    // Slots above the newest block are not "skipped": they have not happened here yet.
    if top < to {
        report.to = top;
        report.requested_to = Some(to);
    }
    let to = top;
    let parents: BTreeMap<Slot, Slot> =
        summaries.iter().map(|(s, b)| (*s, b.parent_slot)).collect();
    let outcome = match plan_chain(&parents, start, top) {
        Err(f) => Err(f),
        Ok(plan) => {
            report.off_chain_blocks = plan
                .off_chain
                .iter()
                .copied()
                .filter(|s| (from..=to).contains(s))
                .collect();
            let in_range = plan.chain.iter().filter(|s| **s >= from).count() as u64;
            report.skipped_slots = (to - from + 1)
                .saturating_sub(in_range)
                .saturating_sub(report.off_chain_blocks.len() as u64);
            report.replayed_before_from = plan.chain.len() as u64 - in_range;
            let checker = match check.take() {
                Some(c) => Ok(c),
                None => anchor(&client, &status.genesis_hash, plan.anchor, plan.chain[0])
                    .await?
                    .map(|a| ChainCheck::without_replay(a, None)),
            };
            match checker {
                Err(f) => Err(f),
                Ok(checker) => check_chain(&client, checker, &plan.chain, &summaries, out).await?,
            }
        }
    };
    match outcome {
        Ok(tally) => {
            report.ok = true;
            report.checked_blocks = tally.blocks - report.replayed_before_from;
            report.bank_hashes_matched = tally.bank_hashes_matched;
            report.bank_hashes_unreported = tally.bank_hashes_unreported;
            out.emit(&report, || report.summary());
            Ok(EXIT_OK)
        }
        Err(failure) => {
            report.failure = Some(FailureJson {
                slot: failure.slot,
                reason: failure.reason.clone(),
            });
            if out.json {
                out.emit(&report, String::new);
            }
            Err(anyhow::anyhow!(failure.to_string()))
        }
    }
}

/// The summaries of every block the node has in `start..=to`, by slot.
async fn fetch_summaries(
    client: &NodeClient,
    start: Slot,
    to: Slot,
    out: Output,
) -> anyhow::Result<BTreeMap<Slot, BlockSummary>> {
    let bar = progress(out, to - start + 1, "reading block summaries");
    let found: Vec<Option<(Slot, BlockSummary)>> = futures::stream::iter(start..=to)
        .map(|slot| {
            let bar = bar.clone();
            async move {
                let answer = client.block_summary(slot).await;
                bar.inc(1);
                match answer {
                    Ok(a) => Ok(a.block.map(|b| (slot, b))),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => {
                        Err(anyhow::Error::from(e)).context(format!("block summary of slot {slot}"))
                    }
                }
            }
        })
        .buffered(SUMMARY_CONCURRENCY)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    Ok(found.into_iter().flatten().collect())
}

/// Where a chain that does not start at the genesis continues from: the node's summary
/// of the block below the range (there is no replay to re-derive it without a genesis).
async fn anchor(
    client: &NodeClient,
    genesis_hash: &str,
    anchor: Slot,
    first: Slot,
) -> anyhow::Result<Result<Anchor, Failure>> {
    if anchor == 0 {
        let Ok(h) = genesis_hash.parse::<Hash>() else {
            anyhow::bail!("the node's genesis hash {genesis_hash:?} is not a hash");
        };
        return Ok(Ok(Anchor::genesis(h)));
    }
    let summary = match client.block_summary(anchor).await {
        Ok(a) => a.block,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e).context(format!("block summary of slot {anchor}")),
    };
    let Some(summary) = summary else {
        return Ok(Err(Failure::new(
            first,
            format!("its parent slot {anchor} has no block on the node"),
        )));
    };
    match (
        summary.block_id.parse::<Hash>(),
        summary.blockhash.parse::<Hash>(),
    ) {
        (Ok(block_id), Ok(poh_end)) => Ok(Ok(Anchor {
            slot: anchor,
            block_id,
            poh_end,
        })),
        _ => Ok(Err(Failure::new(
            anchor,
            "the node's block summary has malformed hashes",
        ))),
    }
}

/// Why fetching a block stopped the run.
enum Fetch {
    /// Something wrong with what the node sent: a finding.
    Bad(Failure),
    /// The node could not be asked: an error of the run.
    Fatal(anyhow::Error),
}

/// Fetches the chain's blocks in order and checks them on a thread of their own.
async fn check_chain(
    client: &NodeClient,
    checker: ChainCheck,
    chain: &[Slot],
    summaries: &BTreeMap<Slot, BlockSummary>,
    out: Output,
) -> anyhow::Result<Result<Tally, Failure>> {
    let bar = progress(out, chain.len() as u64, "checking blocks");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Reported, Block)>(BLOCK_PREFETCH);
    let thread_bar = bar.clone();
    let worker = std::thread::spawn(move || -> Result<Tally, Failure> {
        let mut checker = checker;
        while let Some((reported, block)) = rx.blocking_recv() {
            checker.check(&reported, &block)?;
            thread_bar.inc(1);
        }
        Ok(checker.tally)
    });
    let mut blocks = futures::stream::iter(chain.iter().copied())
        .map(|slot| fetch_block(client, slot, summaries.get(&slot)))
        .buffered(BLOCK_PREFETCH);
    let mut stopped = None;
    while let Some(next) = blocks.next().await {
        match next {
            Ok(item) => {
                if tx.send(item).await.is_err() {
                    break; // the checker found a problem and stopped
                }
            }
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    drop(tx);
    drop(blocks);
    let checked = tokio::task::spawn_blocking(move || worker.join())
        .await
        .context("the checker thread")?;
    bar.finish_and_clear();
    let tally = match checked {
        Ok(result) => result,
        Err(_) => anyhow::bail!("the checker thread panicked"),
    };
    // A problem the checker found comes first: it is at an earlier slot than any fetch.
    match (tally, stopped) {
        (Err(f), _) => Ok(Err(f)),
        (Ok(_), Some(Fetch::Bad(f))) => Ok(Err(f)),
        (Ok(_), Some(Fetch::Fatal(e))) => Err(e),
        (Ok(t), None) => Ok(Ok(t)),
    }
}

async fn fetch_block(
    client: &NodeClient,
    slot: Slot,
    summary: Option<&BlockSummary>,
) -> Result<(Reported, Block), Fetch> {
    let answer = match client.block(slot).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => {
            return Err(Fetch::Bad(Failure::new(
                slot,
                "the node listed a block here but no longer serves it",
            )));
        }
        Err(e) => {
            return Err(Fetch::Fatal(
                anyhow::Error::from(e).context(format!("block of slot {slot}")),
            ));
        }
    };
    let bad = |reason: String| Fetch::Bad(Failure::new(slot, reason));
    let block = Block::from_bytes(&answer.block_bytes)
        .map_err(|e| bad(format!("the block bytes do not decode: {e}")))?;
    let Some(s) = answer.block.as_ref().or(summary) else {
        return Err(bad("the node sent no block summary".into()));
    };
    let block_id = s.block_id.parse::<Hash>().map_err(|e| {
        bad(format!(
            "the node's block id {:?} is not a hash: {e}",
            s.block_id
        ))
    })?;
    let bank_hash = match &s.bank_hash {
        None => None,
        Some(h) => Some(
            h.parse::<Hash>()
                .map_err(|e| bad(format!("the node's bank hash {h:?} is not a hash: {e}")))?,
        ),
    };
    Ok((
        Reported {
            slot,
            block_id,
            bank_hash,
        },
        block,
    ))
}

/// A progress bar on stderr for long runs; hidden under `--json`, for short runs, and
/// when stderr is not a terminal.
fn progress(out: Output, len: u64, what: &'static str) -> ProgressBar {
    if out.json || len < PROGRESS_MIN_BLOCKS {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> IntegrityReport {
        IntegrityReport {
            node: "node 0".into(),
            from: 1,
            to: 134,
            requested_to: None,
            ok: true,
            checked_blocks: 120,
            skipped_slots: 14,
            off_chain_blocks: vec![],
            replayed_before_from: 0,
            replayed: true,
            bank_hashes_matched: 120,
            bank_hashes_unreported: 0,
            failure: None,
        }
    }

    #[test]
    fn a_clean_run_says_what_was_checked() {
        assert_eq!(
            report().summary(),
            "checked 120 blocks from slot 1 to 134, 14 skipped slots, all links, PoH, signatures and bank hashes match"
        );
        let mut r = report();
        r.replayed = false;
        r.off_chain_blocks = vec![5, 6];
        r.skipped_slots = 1;
        r.requested_to = Some(500);
        let s = r.summary();
        assert!(
            s.contains(
                ", 1 skipped slot (the node has no blocks after slot 134 up to 500), 2 blocks on abandoned forks"
            ),
            "{s}"
        );
        assert!(
            s.contains("bank hashes not checked (no genesis: pass --genesis FILE"),
            "{s}"
        );
        let mut r = report();
        r.from = 50;
        r.replayed_before_from = 44;
        r.bank_hashes_unreported = 2;
        let s = r.summary();
        assert!(
            s.contains("(replayed 44 earlier blocks from the genesis to reach slot 50)"),
            "{s}"
        );
        assert!(s.contains("2 blocks had no bank hash"), "{s}");
    }
}
