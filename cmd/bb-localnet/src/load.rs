//! `bb-localnet load`: a steady stream of signed transfers into the localnet's validators
//! over gRPC (they screen them and forward them to the leaders: Gulf Stream), and what
//! became of them: accepted or rejected (by reason), then processed, confirmed and
//! finalized, with the time from submission to each level as this client saw it.
//!
//! Senders are fresh accounts funded from the faucet first, so the load never queues on
//! a few hot accounts; each transfer differs (amount = a running counter), so none is a
//! duplicate. A block is fetched once, when it is processed; its transactions are then
//! marked confirmed and finalized when the node announces the same block id at those
//! levels.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bb_cli::Output;
use bb_core::{Block, Canonical, Hash, Keypair, Pubkey, Signature, Transaction};
use bb_rpc::{Commitment, NodeClient};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::manifest::Manifest;

pub const LOAD_HELP: &str = "\
Sends transfers at a steady rate through every running node's gRPC (SubmitTransactions)
for --duration seconds, after funding --accounts fresh sender accounts from the faucet,
then waits up to --settle seconds for what was accepted to finalize. Reports offered,
accepted, processed, confirmed and finalized transactions per second, rejections by
reason, and confirmation and finalization latency (p50/p90/p99, from submission to this
client seeing the block at that level). Confirmation is also split in two: submission to
the end of the slot whose block took the transfer, and that slot end to confirmation,
with a count of the slot ends transfers waited past the one they were submitted in.

Rejected transfers are never resubmitted, so the offered rate stays the one asked for
even when the network is overloaded: `leader busy` means the leaders' pending queues
were full (back-pressure, see bb-validator --max-pending-txs), `no leader reachable`
that no leader answered in time.

Examples:
  bb-localnet load --tps 1000 --duration 30
  bb-localnet load --tps 10000 --duration 300 --accounts 4000 --json";

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub dir: crate::DirArg,
    /// Transfers per second to offer.
    #[arg(long, value_name = "X")]
    pub tps: u64,
    /// How long to offer them, in seconds.
    #[arg(long, value_name = "S")]
    pub duration: u64,
    /// Sender accounts to fund and rotate through.
    #[arg(long, value_name = "K", default_value_t = 1000)]
    pub accounts: usize,
    /// After the load, how long to wait for accepted transfers to finalize, in seconds.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub settle: u64,
    /// Submit only to these nodes (repeatable; default: every running node).
    #[arg(long = "node", value_name = "I")]
    pub nodes: Vec<usize>,
}

/// Transactions per SubmitTransactions call.
const SUBMIT_BATCH: usize = 1024;
/// Submit calls in flight at once.
const IN_FLIGHT: usize = 16;
/// The reason class of transfers refused because the leaders' queues were full.
const LEADER_BUSY: &str = "leader busy";
/// The sending loop's period.
const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Tracker {
    /// Accepted and not yet finalized: when each was submitted, and when it was processed
    /// and confirmed.
    pending: HashMap<Signature, Track>,
    /// Blocks fetched when processed: id and the tracked signatures they hold.
    blocks: BTreeMap<u64, (Hash, Vec<Signature>)>,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    processed: u64,
    confirmed: u64,
    finalized: u64,
    confirm_ms: Vec<u64>,
    /// For each confirmed transfer: submission → the end of its block's slot, and that
    /// end → confirmed; how many slot ends it waited past the one of its submission.
    to_slot_end_ms: Vec<u64>,
    after_slot_end_ms: Vec<u64>,
    slots_waited: BTreeMap<u64, u64>,
    finalize_ms: Vec<u64>,
    /// The blockhash of the newest confirmed block: every node has it, unlike the
    /// newest processed one.
    confirmed_blockhash: Option<Hash>,
}

#[derive(Debug, Clone, Copy)]
struct Track {
    sent: Instant,
    /// The slot the clock was in at submission.
    sent_slot: u64,
    processed: bool,
    confirmed: bool,
}

type Shared = Arc<Mutex<Tracker>>;

/// The network's slot clock as this client sees it: slot `s` ends at genesis creation +
/// (s + 1) × slot length (wall time), mapped onto the monotonic clock once.
#[derive(Debug, Clone, Copy)]
struct SlotClock {
    /// The monotonic instant and the Unix milliseconds read together.
    at: Instant,
    unix_ms: u64,
    genesis_ms: u64,
    slot_ms: u64,
}

impl SlotClock {
    fn new(genesis_ms: u64, slot_ms: u64) -> SlotClock {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        SlotClock {
            at: Instant::now(),
            unix_ms,
            genesis_ms,
            slot_ms: slot_ms.max(1),
        }
    }

    /// Unix milliseconds at `t`.
    fn unix_ms_at(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.at).as_millis() as u64;
        let before = self.at.saturating_duration_since(t).as_millis() as u64;
        (self.unix_ms + since).saturating_sub(before)
    }

    fn slot_at(&self, t: Instant) -> u64 {
        self.unix_ms_at(t).saturating_sub(self.genesis_ms) / self.slot_ms
    }

    fn slot_end_unix_ms(&self, slot: u64) -> u64 {
        self.genesis_ms
            .saturating_add(slot.saturating_add(1).saturating_mul(self.slot_ms))
    }
}

impl Tracker {
    /// Counts `track` confirmed `now`, in the block of `slot`.
    fn confirm(&mut self, track: &Track, slot: u64, now: Instant, clock: &SlotClock) {
        self.confirmed += 1;
        self.confirm_ms
            .push(now.duration_since(track.sent).as_millis() as u64);
        let end = clock.slot_end_unix_ms(slot);
        self.to_slot_end_ms
            .push(end.saturating_sub(clock.unix_ms_at(track.sent)));
        self.after_slot_end_ms
            .push(clock.unix_ms_at(now).saturating_sub(end));
        *self
            .slots_waited
            .entry(slot.saturating_sub(track.sent_slot))
            .or_default() += 1;
    }
}

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Serialize)]
struct Latency {
    count: usize,
    p50_ms: Option<u64>,
    p90_ms: Option<u64>,
    p99_ms: Option<u64>,
    p50_slots: Option<f64>,
}

fn latency(mut v: Vec<u64>, slot_ms: u64) -> Latency {
    v.sort_unstable();
    let q = |p: f64| (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * p).round() as usize]);
    Latency {
        count: v.len(),
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        p50_slots: q(0.5).map(|ms| ms as f64 / slot_ms.max(1) as f64),
    }
}

#[derive(Debug, Serialize)]
struct Report {
    duration_s: f64,
    /// The rate asked for (`--tps`); `offered_tps` is what the client managed, lower when
    /// its calls in flight were all waiting on the nodes.
    asked_tps: u64,
    offered: u64,
    offered_tps: f64,
    accepted: u64,
    /// Refused transfers by reason class ("leader busy" is back-pressure: the leaders'
    /// queues were full); none is resubmitted.
    rejected: BTreeMap<String, u64>,
    rejected_tps: BTreeMap<String, f64>,
    processed: u64,
    confirmed: u64,
    finalized: u64,
    processed_tps: f64,
    confirmed_tps: f64,
    finalized_tps: f64,
    confirmation: Latency,
    /// Where confirmation time went: waiting for the end of the slot whose block took
    /// the transfer, and after that end until this client saw the block confirmed.
    confirmation_to_slot_end: Latency,
    confirmation_after_slot_end: Latency,
    /// Confirmed transfers by the number of slot ends they waited past the end of the
    /// slot they were submitted in (0: the block of that very slot took them).
    slots_waited: BTreeMap<u64, u64>,
    finalization: Latency,
}

pub fn load(out: Output, a: LoadArgs) -> anyhow::Result<u8> {
    if a.tps == 0 || a.duration == 0 {
        bail!("--tps and --duration must be at least 1");
    }
    if a.accounts == 0 {
        bail!("--accounts must be at least 1");
    }
    let m = Manifest::load(&a.dir.dir)?;
    for i in &a.nodes {
        m.node(*i)?;
    }
    let urls: Vec<String> = m
        .nodes
        .iter()
        .filter(|n| a.nodes.is_empty() || a.nodes.contains(&n.index))
        .filter(|n| n.alive().is_some())
        .map(|n| n.rpc_url.clone())
        .collect();
    if urls.is_empty() {
        bail!(
            "no node of the localnet in {} is running",
            a.dir.dir.display()
        );
    }
    let faucet: Vec<Keypair> = m
        .faucet
        .iter()
        .map(|f| bb_cli::keyfile::read_keypair(&f.key_file))
        .collect::<anyhow::Result<_>>()?;
    if faucet.is_empty() {
        bail!("the localnet has no faucet keys to fund senders from");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let genesis = bb_cli::target::read_genesis(&m.genesis)?;
    let clock = SlotClock::new(genesis.creation_time_ms, genesis.slot_ms);
    let report = runtime.block_on(run(out, &a, &urls, &faucet, clock))?;
    out.emit(&report, || human(&report));
    Ok(bb_cli::EXIT_OK)
}

fn human(r: &Report) -> String {
    let lat = |l: &Latency| match (l.p50_ms, l.p90_ms, l.p99_ms) {
        (Some(a), Some(b), Some(c)) => format!(
            "p50 {a} ms ({:.1} slots), p90 {b} ms, p99 {c} ms ({} transfers)",
            l.p50_slots.unwrap_or(0.0),
            l.count
        ),
        _ => "none".to_string(),
    };
    let rejected = if r.rejected.is_empty() {
        "none".to_string()
    } else {
        r.rejected
            .iter()
            .map(|(k, v)| {
                let tps = r.rejected_tps.get(k).copied().unwrap_or(0.0);
                format!("{v} {k} ({tps:.0} TPS)")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let waited = if r.slots_waited.is_empty() {
        "none".to_string()
    } else {
        r.slots_waited
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let behind = if r.offered_tps < r.asked_tps as f64 * 0.95 {
        format!(
            " (asked {} TPS: the nodes answered too slowly to keep up)",
            r.asked_tps
        )
    } else {
        String::new()
    };
    format!(
        "offered    {} transfers in {:.1} s = {:.0} TPS{behind}\n\
         accepted   {}\nrejected   {rejected}\n\
         processed  {} = {:.0} TPS\nconfirmed  {} = {:.0} TPS\nfinalized  {} = {:.0} TPS\n\
         confirmation latency  {}\n  to its slot's end  {}\n  after it           {}\n  slot ends waited past the submission's: {waited}\nfinalization latency  {}",
        r.offered,
        r.duration_s,
        r.offered_tps,
        r.accepted,
        r.processed,
        r.processed_tps,
        r.confirmed,
        r.confirmed_tps,
        r.finalized,
        r.finalized_tps,
        lat(&r.confirmation),
        lat(&r.confirmation_to_slot_end),
        lat(&r.confirmation_after_slot_end),
        lat(&r.finalization)
    )
}

async fn run(
    out: Output,
    a: &LoadArgs,
    urls: &[String],
    faucet: &[Keypair],
    clock: SlotClock,
) -> anyhow::Result<Report> {
    let slot_ms = clock.slot_ms;
    let mut clients = Vec::new();
    for u in urls {
        clients.push(NodeClient::connect(u, Duration::from_secs(5)).await?);
    }
    let tracker: Shared = Arc::new(Mutex::new(Tracker::default()));
    let watcher = clients[0].clone();
    let from_slot = watcher.status().await?.slot;
    let mut watchers = tokio::task::JoinSet::new();
    for level in [
        Commitment::Processed,
        Commitment::Confirmed,
        Commitment::Finalized,
    ] {
        watchers.spawn(watch(
            watcher.clone(),
            tracker.clone(),
            from_slot,
            level,
            clock,
        ));
    }

    // Fund the senders and wait until the funding is confirmed.
    let senders: Vec<Keypair> = (0..a.accounts).map(|_| Keypair::generate()).collect();
    // Each sender's k-th transfer moves k units (so no two are alike) plus a fee of 1.
    let per = (a.tps * a.duration).div_ceil(a.accounts as u64);
    let per_sender = per.saturating_mul(per + 1) / 2 + per + 1_000;
    let mut faucet_balance: u64 = 0;
    for f in faucet {
        faucet_balance =
            faucet_balance.saturating_add(watcher.balance(&f.pubkey().to_address()).await?.balance);
    }
    let needed = per_sender.saturating_mul(a.accounts as u64);
    if needed > faucet_balance {
        bail!(
            "the faucet holds {faucet_balance}, this load needs {needed}: use more --accounts or a shorter --duration"
        );
    }
    let blockhash = recent_blockhash(&watcher).await?;
    let funding: Vec<Transaction> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Transaction::transfer(
                &faucet[i % faucet.len()],
                s.pubkey(),
                per_sender,
                0,
                blockhash,
            )
        })
        .collect();
    out.note(&format!("funding {} sender accounts...", senders.len()));
    let sigs: Vec<Signature> = funding.iter().map(|t| t.signature).collect();
    submit(&clients[0], funding, &tracker, &clock).await?;
    {
        let t = lock(&tracker);
        if !t.rejected.is_empty() {
            bail!("the node refused funding transfers: {:?}", t.rejected);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = {
            let t = lock(&tracker);
            sigs.iter()
                .filter(|s| t.pending.get(*s).is_some_and(|p| !p.confirmed))
                .count()
        };
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{left} funding transfers were not confirmed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    {
        // Count only the load from here on.
        let mut t = lock(&tracker);
        let blocks = std::mem::take(&mut t.blocks);
        let confirmed_blockhash = t.confirmed_blockhash;
        *t = Tracker {
            blocks,
            confirmed_blockhash,
            ..Tracker::default()
        };
    }

    // The load.
    let receivers: Vec<Pubkey> = (0..64).map(|_| Keypair::generate().pubkey()).collect();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let total = a.tps * a.duration;
    let mut sent: u64 = 0;
    let confirmed = lock(&tracker).confirmed_blockhash;
    let mut blockhash = match confirmed {
        Some(h) => h,
        None => recent_blockhash(&watcher).await?,
    };
    let mut refreshed = Instant::now();
    let mut next_line = Instant::now() + Duration::from_secs(1);
    let mut tick = tokio::time::interval(TICK);
    let mut node = 0usize;
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * a.tps as f64) as u64).min(total);
        if refreshed.elapsed() > Duration::from_secs(1) {
            if let Some(h) = lock(&tracker).confirmed_blockhash {
                blockhash = h;
            }
            refreshed = Instant::now();
        }
        while sent < due {
            let n = ((due - sent) as usize).min(SUBMIT_BATCH);
            let first = sent;
            let batch: Vec<Transaction> = (0..n as u64)
                .map(|i| {
                    let k = first + i;
                    let from = &senders[(k % senders.len() as u64) as usize];
                    let to = receivers[(k % receivers.len() as u64) as usize];
                    Transaction::transfer(from, to, 1 + k / senders.len() as u64, 1, blockhash)
                })
                .collect();
            sent += n as u64;
            let client = clients[node % clients.len()].clone();
            node += 1;
            let tracker = tracker.clone();
            let permit = permits.clone().acquire_owned().await?;
            tokio::spawn(async move {
                let _ = submit(&client, batch, &tracker, &clock).await;
                drop(permit);
            });
        }
        if Instant::now() >= next_line && !out.json {
            next_line += Duration::from_secs(1);
            let t = lock(&tracker);
            let rejected: u64 = t.rejected.values().sum();
            let busy = t.rejected.get(LEADER_BUSY).copied().unwrap_or(0);
            eprintln!(
                "{:>5.1} s  offered {sent}  accepted {}  rejected {rejected} (leader busy {busy})  processed {}  confirmed {}  finalized {}",
                started.elapsed().as_secs_f64(),
                t.accepted,
                t.processed,
                t.confirmed,
                t.finalized
            );
        }
    }
    let duration = started.elapsed().as_secs_f64();
    // Let the last submissions land, then wait for finalization.
    let _ = permits.acquire_many(IN_FLIGHT as u32).await;
    let settle_until = Instant::now() + Duration::from_secs(a.settle);
    while Instant::now() < settle_until {
        let (left, fin) = {
            let t = lock(&tracker);
            (t.pending.len(), t.finalized)
        };
        if left == 0 {
            break;
        }
        if !out.json {
            eprintln!("settling: {left} accepted transfers not finalized yet ({fin} finalized)");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    watchers.abort_all();
    let t = lock(&tracker);
    let per = |n: u64| n as f64 / duration;
    Ok(Report {
        duration_s: duration,
        asked_tps: a.tps,
        offered: sent,
        offered_tps: per(sent),
        accepted: t.accepted,
        rejected: t.rejected.clone(),
        rejected_tps: t
            .rejected
            .iter()
            .map(|(k, v)| (k.clone(), per(*v)))
            .collect(),
        processed: t.processed,
        confirmed: t.confirmed,
        finalized: t.finalized,
        processed_tps: per(t.processed),
        confirmed_tps: per(t.confirmed),
        finalized_tps: per(t.finalized),
        confirmation: latency(t.confirm_ms.clone(), slot_ms),
        confirmation_to_slot_end: latency(t.to_slot_end_ms.clone(), slot_ms),
        confirmation_after_slot_end: latency(t.after_slot_end_ms.clone(), slot_ms),
        slots_waited: t.slots_waited.clone(),
        finalization: latency(t.finalize_ms.clone(), slot_ms),
    })
}

async fn recent_blockhash(client: &NodeClient) -> anyhow::Result<Hash> {
    let s = client.status().await?;
    s.recent_blockhash
        .parse::<Hash>()
        .map_err(|e| anyhow::anyhow!("{}: bad recent blockhash: {e}", client.url()))
}

/// Submits one batch and records what was accepted and why the rest was not. The batch is
/// tracked before the call: its block may be replayed before the node's answer arrives.
async fn submit(
    client: &NodeClient,
    batch: Vec<Transaction>,
    tracker: &Shared,
    clock: &SlotClock,
) -> anyhow::Result<()> {
    let sent = Instant::now();
    let sent_slot = clock.slot_at(sent);
    {
        let mut t = lock(tracker);
        for tx in &batch {
            t.pending.insert(
                tx.signature,
                Track {
                    sent,
                    sent_slot,
                    processed: false,
                    confirmed: false,
                },
            );
        }
    }
    let bytes: Vec<Vec<u8>> = batch.iter().map(Transaction::to_bytes).collect();
    let answer = client.submit(bytes).await;
    let mut t = lock(tracker);
    match answer {
        Ok(r) => {
            for (tx, result) in batch.iter().zip(r.results) {
                if result.accepted {
                    t.accepted += 1;
                } else {
                    t.pending.remove(&tx.signature);
                    let reason = reason_class(&result.reason);
                    *t.rejected.entry(reason).or_default() += 1;
                }
            }
            Ok(())
        }
        Err(e) => {
            for tx in &batch {
                t.pending.remove(&tx.signature);
            }
            let reason = format!(
                "rpc error: {}",
                e.code()
                    .map_or("unreachable".to_string(), |c| format!("{c:?}"))
            );
            *t.rejected.entry(reason).or_default() += batch.len() as u64;
            Err(e.into())
        }
    }
}

/// Groups rejection reasons: the text up to the first colon or digit-bearing detail.
fn reason_class(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or(reason).trim();
    if head.is_empty() {
        "unknown".to_string()
    } else {
        head.to_string()
    }
}

/// Follows blocks reaching `level` and marks the tracked transfers in them.
async fn watch(
    client: NodeClient,
    tracker: Shared,
    from_slot: u64,
    level: Commitment,
    clock: SlotClock,
) {
    let Ok(mut stream) = client.stream_blocks(from_slot, level).await else {
        return;
    };
    while let Ok(Some(item)) = stream.message().await {
        let Some(summary) = item.block else { continue };
        let slot = summary.slot;
        let Ok(id) = summary.block_id.parse::<Hash>() else {
            continue;
        };
        if level == Commitment::Confirmed
            && let Ok(h) = summary.blockhash.parse::<Hash>()
        {
            lock(&tracker).confirmed_blockhash = Some(h);
        }
        let known = lock(&tracker).blocks.get(&slot).map(|(h, _)| *h);
        if known != Some(id) {
            // Fetch the block once (or again if the fork changed) and note its transfers.
            let Ok(resp) = client.block(slot).await else {
                continue;
            };
            let Ok(block) = Block::from_bytes(&resp.block_bytes) else {
                continue;
            };
            if block.id() != id {
                continue;
            }
            let sigs: Vec<Signature> = block
                .entries
                .iter()
                .flat_map(|e| e.transactions.iter().map(|t| t.signature))
                .collect();
            let mut t = lock(&tracker);
            let tracked: Vec<Signature> = sigs
                .into_iter()
                .filter(|s| t.pending.contains_key(s))
                .collect();
            t.blocks.insert(slot, (id, tracked));
            // Blocks far below are of no more use.
            if t.blocks.len() > 4096 {
                let first = *t.blocks.keys().next().unwrap_or(&0);
                t.blocks.remove(&first);
            }
        }
        let now = Instant::now();
        let mut t = lock(&tracker);
        let sigs = t
            .blocks
            .get(&slot)
            .filter(|(h, _)| *h == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        for sig in sigs {
            let Some(track) = t.pending.get(&sig).copied() else {
                continue;
            };
            let ms = now.duration_since(track.sent).as_millis() as u64;
            match level {
                Commitment::Finalized => {
                    t.pending.remove(&sig);
                    t.finalized += 1;
                    t.finalize_ms.push(ms);
                    if !track.confirmed {
                        t.confirm(&track, slot, now, &clock);
                    }
                    if !track.processed {
                        t.processed += 1;
                    }
                }
                Commitment::Confirmed if !track.confirmed => {
                    t.confirm(&track, slot, now, &clock);
                    if !track.processed {
                        t.processed += 1;
                    }
                    if let Some(p) = t.pending.get_mut(&sig) {
                        p.confirmed = true;
                        p.processed = true;
                    }
                }
                Commitment::Processed if !track.processed => {
                    t.processed += 1;
                    if let Some(p) = t.pending.get_mut(&sig) {
                        p.processed = true;
                    }
                }
                _ => {}
            }
        }
    }
}
