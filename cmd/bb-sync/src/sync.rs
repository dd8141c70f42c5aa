//! The three ways to catch up, on one skeleton:
//!
//! 1. a trusted *base*: the genesis bank (`full`), or a downloaded snapshot whose file
//!    checks out (`snapshot`: the peer's newest; `warp`: one the peer makes of its root);
//! 2. the rooted chain above the base, each header linked to the one before it, signed by
//!    its scheduled leader, each body matching its header; stored in the staging ledger;
//! 3. a *proof*: the highest slot whose (block id, bank hash) carries signed votes of
//!    >= 2/3 of the stake, checked here vote by vote;
//! 4. replay from the base up to the proven slot: every bank hash must equal the one the
//!    peer claimed, and the proven one above all (a snapshot base is proven the same way:
//!    the proof's bank hash chains back through every replayed block to it);
//! 5. the staged ledger gets its roots, a snapshot at the proven slot and the kept tower,
//!    and moves into place.
//!
//! Anything the peer sends that fails a check stops the sync with an error naming the
//! peer and the slot, chunk or vote; the target directory is never written before step 5.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bb_cli::Output;
use bb_cli::bar::{Bar, Unit};
use bb_core::{Block, Canonical, Genesis, Hash, Slot};
use bb_ledger::{Ledger, RootCommit, SlotMeta};
use bb_rpc::NodeClient;
use bb_runtime::Bank;
use bb_snapshots::NoProgress;
use serde::Serialize;

use crate::chain::{ChainChecker, Link};
use crate::proof::{self, Proven, StakeTable};
use crate::stage::{Plan, SnapshotChoice, Stage};

/// How far below the top of the chain a proof is looked for.
const PROOF_CANDIDATES: usize = 64;
/// Slots of history (with bodies) a snapshot or warp sync keeps below its snapshot.
pub const HISTORY_SLOTS: u64 = 1000;
/// How often staged blocks are made durable while they stream in: a killed run loses at
/// most this much download.
const STAGE_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Snapshot,
    Warp,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Snapshot => "snapshot",
            Mode::Warp => "warp",
        }
    }
}

/// Everything a sync needs, resolved from the command line.
#[derive(Debug)]
pub struct Job {
    pub mode: Mode,
    pub client: NodeClient,
    /// The peer as the user named it, for messages.
    pub peer: String,
    pub genesis: Genesis,
    pub genesis_json: Vec<u8>,
    pub target: PathBuf,
    pub limit_rate: Option<u64>,
    pub out: Output,
}

/// What a finished sync reports (`--json`).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub peer: String,
    pub ledger: PathBuf,
    pub genesis_hash: String,
    /// The slot the new ledger is rooted at: proven by votes.
    pub root: Slot,
    pub bank_hash: String,
    pub block_id: String,
    pub proof_voters: usize,
    pub proof_stake_share: f64,
    pub snapshot_slot: Option<Slot>,
    pub blocks_downloaded: u64,
    pub blocks_reused: u64,
    pub blocks_replayed: u64,
    pub bytes_downloaded: u64,
    pub bytes_reused: u64,
    pub tower_kept: bool,
    pub elapsed_ms: u64,
}

/// Keeps downloads under `--limit-rate`.
#[derive(Debug)]
struct Pace {
    limit: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Pace {
    /// Counts `n` more bytes; returns how long to wait to stay under the limit.
    fn delay(&mut self, n: usize) -> Duration {
        self.bytes += n as u64;
        match self.limit {
            Some(limit) => {
                let due = Duration::from_secs_f64(self.bytes as f64 / limit.max(1) as f64);
                due.saturating_sub(self.started.elapsed())
            }
            None => Duration::ZERO,
        }
    }

    async fn account(&mut self, n: usize) {
        let wait = self.delay(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A base state the chain is replayed from.
struct Base {
    bank: Arc<Bank>,
    slot: Slot,
    block_id: Hash,
}

pub async fn run(job: Job) -> anyhow::Result<Report> {
    let started = Instant::now();
    let genesis_hash = job.genesis.hash();
    let stage = Stage::for_target(&job.target)?;
    if stage.recover()? {
        job.out
            .note("finished a swap an earlier run was interrupted in");
    }
    let (mut plan, reused) = stage.open(job.mode.name(), &genesis_hash.to_string())?;
    if reused {
        job.out.note(&format!(
            "resuming from {} (what it holds is not downloaded again)",
            stage.dir.display()
        ));
    }
    // The tower of the ledger being replaced: kept, and its oldest vote tells how far
    // back the new ledger must know the chain.
    let old_tower = read_tower(&job.target)?;
    let ledger_dir = stage.ledger_dir();
    let staged = Ledger::open(&ledger_dir)
        .with_context(|| format!("cannot open the staging ledger {}", ledger_dir.display()))?;
    crate::stage::write_synced(&ledger_dir.join("genesis.json"), &job.genesis_json)?;
    let mut pace = Pace {
        limit: job.limit_rate,
        started: Instant::now(),
        bytes: 0,
    };
    let mut report = Report {
        mode: job.mode.name().to_string(),
        peer: job.peer.clone(),
        ledger: job.target.clone(),
        genesis_hash: genesis_hash.to_string(),
        ..Report::default()
    };

    // 1. The base.
    let base = match job.mode {
        Mode::Full => {
            let bank = Bank::new_genesis(&job.genesis)?;
            Base {
                bank,
                slot: 0,
                block_id: genesis_hash,
            }
        }
        Mode::Snapshot | Mode::Warp => {
            let base = snapshot_base(&job, &stage, &mut plan, &mut pace, &mut report).await?;
            report.snapshot_slot = Some(base.slot);
            base
        }
    };

    // 2. Below a snapshot: the chain leading to it, which must rebuild the snapshot's
    // unhashed fields. Above the base: the rooted chain, headers checked first, then bodies.
    if job.mode != Mode::Full {
        let history = fetch_history(
            &job,
            &staged,
            &base,
            old_tower.as_ref().map(|t| t.1),
            &mut pace,
            &mut report,
        )
        .await?;
        check_unhashed_fields(&job, &staged, &base, &history)?;
    }
    let links = fetch_headers(&job, &base).await?;
    fetch_bodies(&job, &staged, &links, &mut pace, &mut report).await?;

    // 3. The proof, on the hashes the peer claims; replay then has to reproduce them.
    let (proven, upto) = prove(&job, &base, &links).await?;
    report.proof_voters = proven.voters;
    report.proof_stake_share = proven.stake_share;

    // 4. Replay from the base to the proven slot.
    let bank = replay(&job, &staged, &base, &links[..upto], &mut report)?;
    if bank.hash() != Some(proven.bank_hash) || bank.slot() != proven.slot {
        bail!(
            "replay reached slot {} with bank hash {}, but the votes prove slot {} with {}",
            bank.slot(),
            bank.hash().unwrap_or_default(),
            proven.slot,
            proven.bank_hash
        );
    }

    // 5. Roots, snapshot and tower into the staged ledger, then into place.
    let rooted: Vec<(u64, [u8; 32], [u8; 32])> = links[..upto]
        .iter()
        .map(|l| (l.slot, l.block_id.0, l.bank_hash.0))
        .collect();
    if staged.latest_root()?.is_none_or(|(r, _)| r < proven.slot) {
        let (root, ancestors) = match rooted.split_last() {
            Some((last, rest)) => (*last, rest.to_vec()),
            None => ((base.slot, base.block_id.0, proven.bank_hash.0), Vec::new()),
        };
        let ancestors: Vec<_> = match staged.latest_root()? {
            Some((r, _)) => ancestors.into_iter().filter(|a| a.0 > r).collect(),
            None => ancestors,
        };
        staged.commit_root(&RootCommit {
            slot: root.0,
            block_id: root.1,
            bank_hash: root.2,
            rooted_ancestors: &ancestors,
            ..RootCommit::default()
        })?;
    }
    if job.mode == Mode::Full || bank.slot() != base.slot {
        let (fields, accounts) = bank.snapshot()?;
        bb_snapshots::write_snapshot(
            &fields,
            accounts.into_iter(),
            &ledger_dir.join("snapshots"),
            &NoProgress,
        )
        .context("cannot write the snapshot of the synced state")?;
    }
    if let Some((tower, _)) = &old_tower {
        staged.save_tower(tower)?;
        report.tower_kept = true;
    }
    drop(staged);
    plan.ready = true;
    stage.save(&plan)?;
    stage.swap_in()?;

    report.root = proven.slot;
    report.bank_hash = proven.bank_hash.to_string();
    report.block_id = proven.block_id.to_string();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Downloads (or resumes) the snapshot the mode wants, verifies the file and rebuilds its
/// bank.
async fn snapshot_base(
    job: &Job,
    stage: &Stage,
    plan: &mut Plan,
    pace: &mut Pace,
    report: &mut Report,
) -> anyhow::Result<Base> {
    let dir = stage.ledger_dir().join("snapshots");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let peer = &job.peer;
    let mut choice = plan.snapshot.clone();
    for attempt in 0..2 {
        let c = match choice.take() {
            Some(c) => c,
            None => {
                let info = match job.mode {
                    Mode::Warp => job.client.create_snapshot().await?,
                    _ => job
                        .client
                        .list_snapshots()
                        .await?
                        .snapshots
                        .into_iter()
                        .max_by_key(|s| s.slot)
                        .with_context(|| {
                            format!(
                                "{peer} keeps no snapshots yet; try `bb-sync warp` (it asks the peer to make one)"
                            )
                        })?,
                };
                let c = SnapshotChoice {
                    slot: info.slot,
                    bank_hash: info.bank_hash,
                    file_name: info.file_name,
                    size: info.size,
                };
                if c.file_name.is_empty()
                    || c.file_name.contains('/')
                    || c.file_name.starts_with('.')
                {
                    bail!(
                        "{peer} names its snapshot {:?}, which is not a file name",
                        c.file_name
                    );
                }
                plan.snapshot = Some(c.clone());
                stage.save(plan)?;
                c
            }
        };
        let path = dir.join(&c.file_name);
        let reused_before = report.bytes_reused;
        let downloaded = download(job, &c, &path, pace, report).await;
        let resumed = report.bytes_reused > reused_before;
        match downloaded {
            Ok(()) => {}
            Err(e) if attempt == 0 && e.is_not_found() => {
                // The peer pruned the snapshot meanwhile: choose again.
                plan.snapshot = None;
                stage.save(plan)?;
                let mut part = path.clone().into_os_string();
                part.push(".partial");
                let _ = std::fs::remove_file(part);
                continue;
            }
            Err(e) => return Err(anyhow::anyhow!("{peer}: {e}")),
        }
        match bb_snapshots::verify_download(&path, c.slot, &c.bank_hash, &NoProgress) {
            Ok(_) => {}
            Err(bb_snapshots::DownloadRefused::Invalid(e)) => {
                // A bad file is not resumed: the next run downloads it again.
                plan.snapshot = None;
                stage.save(plan)?;
                if attempt == 0 && resumed {
                    // Part of it came from an earlier run: perhaps another copy of the
                    // same snapshot. Download it whole once more before blaming the peer.
                    choice = Some(c);
                    continue;
                }
                bail!("the snapshot {peer} served is not valid: {e}");
            }
            Err(e) => bail!("the snapshot {peer} served is not the one it announced: {e}"),
        }
        let bank = bb_snapshots::load_snapshot(&path, &job.genesis, &NoProgress)
            .with_context(|| format!("the snapshot {peer} served"))?;
        return Ok(Base {
            slot: bank.slot(),
            block_id: bank.block_id().unwrap_or_default(),
            bank,
        });
    }
    bail!("{peer} pruned every snapshot it offered before the download finished")
}

/// Downloads a snapshot file to `path`, resuming a partial download.
async fn download(
    job: &Job,
    c: &SnapshotChoice,
    path: &Path,
    pace: &mut Pace,
    report: &mut Report,
) -> Result<(), bb_rpc::DownloadError> {
    let mut bar = Bar::new(job.out, "snapshot", c.size, Unit::Bytes);
    let bar_ref = &mut bar;
    let pace_ref = &mut *pace;
    let (fetched, reused) = job
        .client
        .download_snapshot_file(c.slot, &c.bank_hash, c.size, path, |n| {
            bar_ref.inc(n as u64);
            tokio::time::sleep(pace_ref.delay(n))
        })
        .await?;
    bar.finish();
    report.bytes_downloaded += fetched;
    report.bytes_reused += reused;
    Ok(())
}

/// The headers of the rooted chain above the base, checked link by link.
async fn fetch_headers(job: &Job, base: &Base) -> anyhow::Result<Vec<Link>> {
    let peer = &job.peer;
    // Bounded by the peer's root now: the stream cannot run on forever.
    let to = job.client.status().await?.root.map_or(0, |r| r.slot);
    if to <= base.slot {
        return Ok(Vec::new());
    }
    let mut stream = match job.client.rooted_blocks(base.slot + 1, to, true).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let bank = base.bank.clone();
    let mut schedules: BTreeMap<u64, Arc<bb_runtime::LeaderSchedule>> = BTreeMap::new();
    // Leaders by the base's stakes; replay re-checks them with each parent bank's.
    let mut checker = ChainChecker::new(base.slot, base.block_id, |slot| {
        let epoch = bank.epoch_schedule().epoch(slot);
        if let Some(s) = schedules.get(&epoch) {
            return s
                .leader_at(slot)
                .ok_or_else(|| "outside the schedule".to_string());
        }
        let s = Arc::new(bank.leader_schedule(epoch).map_err(|e| e.to_string())?);
        schedules.insert(epoch, s.clone());
        s.leader_at(slot)
            .ok_or_else(|| "outside the schedule".to_string())
    });
    let mut bar = Bar::new(job.out, "headers", 0, Unit::Items("headers"));
    let mut links = Vec::new();
    while let Some(item) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{peer}: header stream: {}", s.message()))?
    {
        let block = Block::from_bytes(&item.block_bytes).map_err(|e| {
            anyhow::anyhow!(
                "{peer} sent a header for slot {} that does not decode: {e}",
                item.slot
            )
        })?;
        let bank_hash = parse_hash(&item.bank_hash)
            .with_context(|| format!("{peer} sent slot {} with a bad bank hash", item.slot))?;
        let link = checker
            .check(item.slot, &block, bank_hash)
            .map_err(|e| anyhow::anyhow!("{peer} sent a broken chain: {e}"))?;
        links.push(link);
        bar.set_len(links.len() as u64);
        bar.inc(1);
    }
    bar.finish();
    Ok(links)
}

fn parse_hash(s: &str) -> anyhow::Result<Hash> {
    s.parse::<Hash>().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Fetches every body of `links` not staged yet; each must match its checked header.
async fn fetch_bodies(
    job: &Job,
    staged: &Ledger,
    links: &[Link],
    pace: &mut Pace,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(last) = links.last() else {
        return Ok(());
    };
    // Staged by an earlier run: kept only if it is the block the checked header names.
    let mut have: BTreeSet<Slot> = BTreeSet::new();
    for slot in staged.blocks_range(links[0].slot..=last.slot)? {
        let same = staged
            .get_block(slot)?
            .and_then(|b| Block::from_bytes(&b).ok())
            .is_some_and(|b| links.iter().any(|l| l.slot == slot && l.block_id == b.id()));
        if same {
            have.insert(slot);
        }
    }
    let wanted: BTreeMap<Slot, &Link> = links.iter().map(|l| (l.slot, l)).collect();
    report.blocks_reused += wanted.keys().filter(|s| have.contains(s)).count() as u64;
    let Some(first_missing) = wanted.keys().find(|s| !have.contains(s)).copied() else {
        return Ok(());
    };
    let missing = wanted.keys().filter(|s| !have.contains(s)).count() as u64;
    let mut bar = Bar::new(job.out, "blocks", missing, Unit::Items("blocks"));
    let peer = &job.peer;
    let mut stream = job
        .client
        .rooted_blocks(first_missing, last.slot, false)
        .await?;
    let mut got = 0;
    // Blocks are staged unsynced; a sync now and then keeps what a killed run downloaded.
    let mut synced_at = std::time::Instant::now();
    while let Some(item) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{peer}: block stream: {}", s.message()))?
    {
        pace.account(item.block_bytes.len()).await;
        let Some(link) = wanted.get(&item.slot) else {
            bail!(
                "{peer} sent slot {} which is not in the chain it announced",
                item.slot
            );
        };
        if !have.insert(item.slot) {
            continue;
        }
        store_block(staged, link, &item.block_bytes, peer)?;
        report.blocks_downloaded += 1;
        report.bytes_downloaded += item.block_bytes.len() as u64;
        got += 1;
        bar.inc(1);
        if synced_at.elapsed() >= STAGE_SYNC_INTERVAL {
            staged.sync()?;
            synced_at = std::time::Instant::now();
        }
    }
    staged.sync()?;
    bar.finish();
    if got < missing {
        bail!(
            "{peer} ended the block stream with {} of {missing} blocks missing",
            missing - got
        );
    }
    Ok(())
}

/// Checks a body against its header and stages it.
fn store_block(staged: &Ledger, link: &Link, bytes: &[u8], peer: &str) -> anyhow::Result<()> {
    let slot = link.slot;
    let block = Block::from_bytes(bytes).map_err(|e| {
        anyhow::anyhow!("{peer} sent a block for slot {slot} that does not decode: {e}")
    })?;
    if block.id() != link.block_id {
        bail!(
            "{peer} sent a block for slot {slot} whose header is not the one checked (id {} instead of {})",
            block.id(),
            link.block_id
        );
    }
    block.verify_body().map_err(|e| {
        anyhow::anyhow!(
            "{peer} sent a tampered block for slot {slot}: its body does not match its header: {e}"
        )
    })?;
    let meta = SlotMeta {
        parent_slot: link.parent_slot,
        is_full: true,
        ..SlotMeta::default()
    };
    staged.put_block(slot, &meta, bytes)?;
    Ok(())
}

/// Snapshot and warp: the chain below the snapshot's block, linked back from it header by
/// header. Bodies are fetched for the last [`HISTORY_SLOTS`] slots (history for queries
/// and peers' repairs, and what [`check_unhashed_fields`] rebuilds the snapshot's
/// blockhash queue and status cache from); below that, down to `headers_from` (the
/// oldest vote of a tower being carried over), headers only, recorded as slot metas so
/// the node can tell which of its old votes the new root settles.
async fn fetch_history(
    job: &Job,
    staged: &Ledger,
    base: &Base,
    headers_from: Option<Slot>,
    pace: &mut Pace,
    report: &mut Report,
) -> anyhow::Result<Vec<Link>> {
    if base.slot == 0 {
        return Ok(Vec::new());
    }
    let peer = &job.peer;
    let bodies_from = base.slot.saturating_sub(HISTORY_SLOTS).max(1);
    let from = headers_from.unwrap_or(bodies_from).min(bodies_from).max(1);
    let mut stream = job.client.rooted_blocks(from, base.slot, true).await?;
    // (slot, id, parent slot, parent id), rising: bounded by the slot range.
    let mut headers: Vec<(Slot, Hash, Slot, Hash)> = Vec::new();
    while let Some(item) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{peer}: header stream: {}", s.message()))?
    {
        if item.slot < from
            || item.slot > base.slot
            || headers.last().is_some_and(|h| h.0 >= item.slot)
        {
            bail!(
                "{peer} sent a header for slot {} outside the rising range {from}..={} asked for",
                item.slot,
                base.slot
            );
        }
        let block = Block::from_bytes(&item.block_bytes).map_err(|e| {
            anyhow::anyhow!(
                "{peer} sent a header for slot {} that does not decode: {e}",
                item.slot
            )
        })?;
        block.verify_signature().map_err(|_| {
            anyhow::anyhow!(
                "{peer} sent a header for slot {} with a bad leader signature",
                item.slot
            )
        })?;
        let h = &block.header;
        headers.push((item.slot, block.id(), h.parent_slot, h.parent_id));
    }
    // Walk back from the snapshot's own block: each header must be its successor's parent.
    let mut chain: Vec<Link> = Vec::new();
    let mut expected = (base.slot, base.block_id);
    for &(slot, id, parent_slot, parent_id) in headers.iter().rev() {
        if slot > expected.0 {
            continue;
        }
        if slot != expected.0 || id != expected.1 {
            if expected.0 < from {
                break;
            }
            bail!(
                "{peer} sent history that does not lead to the snapshot: slot {slot} (id {id}) where slot {} (id {}) was due",
                expected.0,
                expected.1
            );
        }
        chain.push(Link {
            slot,
            block_id: id,
            parent_slot,
            bank_hash: Hash::default(),
        });
        expected = (parent_slot, parent_id);
        if parent_slot == 0 {
            break;
        }
    }
    if chain.first().map(|l| l.slot) != Some(base.slot) {
        bail!(
            "{peer} sent no header for the snapshot's own slot {}",
            base.slot
        );
    }
    chain.reverse();
    let (bodies, headers_only): (Vec<Link>, Vec<Link>) =
        chain.into_iter().partition(|l| l.slot >= bodies_from);
    for link in &headers_only {
        let meta = SlotMeta {
            parent_slot: link.parent_slot,
            ..SlotMeta::default()
        };
        if staged.get_slot_meta(link.slot)?.is_none() {
            staged.put_slot_meta(link.slot, &meta)?;
        }
    }
    fetch_bodies(job, staged, &bodies, pace, report).await?;
    Ok(bodies)
}

/// The parts of a snapshot outside its state hash — the blockhash queue and the status
/// cache — are rebuilt from what was verified and must match exactly: the queue is the
/// `poh_end` of the last blocks of the chain leading to the snapshot's block, the status
/// cache the signatures of their transactions. (Stakes, epoch stakes and slashing records
/// are leaves of the state hash, which the vote proof and replay already pin down.) A peer
/// cannot edit them to skew duplicate checks or expiry.
fn check_unhashed_fields(
    job: &Job,
    staged: &Ledger,
    base: &Base,
    history: &[Link],
) -> anyhow::Result<()> {
    let peer = &job.peer;
    let fields = base.bank.snapshot_fields()?;
    // The chain's blockhashes, oldest first: the genesis hash, then each block's poh_end.
    let reaches_genesis = history.first().is_some_and(|l| l.parent_slot == 0);
    let mut hashes: Vec<Hash> = Vec::with_capacity(history.len() + 1);
    if reaches_genesis {
        hashes.push(job.genesis.hash());
    }
    let mut blocks = Vec::with_capacity(history.len());
    for link in history {
        let bytes = staged
            .get_block(link.slot)?
            .with_context(|| format!("the staged block of slot {} is missing", link.slot))?;
        let block = Block::from_bytes(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "the staged block of slot {} does not decode: {e}",
                link.slot
            )
        })?;
        hashes.push(block.header.poh_end);
        blocks.push(block);
    }
    let queue = &fields.blockhash_queue;
    let queued: Vec<Hash> = queue.iter().map(|(h, _)| *h).collect();
    let complete = reaches_genesis || hashes.len() >= bb_runtime::MAX_RECENT_BLOCKHASHES;
    let tail = &hashes[hashes.len().saturating_sub(queued.len())..];
    if !complete || tail != queued.as_slice() {
        bail!(
            "the snapshot {peer} served has a blockhash queue that is not the chain's last {} blockhashes",
            queued.len()
        );
    }
    let consecutive = queue.windows(2).all(|w| w[1].1 == w[0].1 + 1)
        && queue
            .last()
            .is_none_or(|(_, h)| h + 1 == fields.blockhash_queue_height);
    if !consecutive {
        bail!("the snapshot {peer} served has a blockhash queue with gaps in its heights");
    }
    // Every transaction of those blocks whose blockhash is still queued, and nothing else.
    let in_queue: BTreeSet<Hash> = queued.iter().copied().collect();
    let mut rebuilt: BTreeMap<Hash, Vec<(bb_core::Signature, Slot)>> = BTreeMap::new();
    for block in &blocks {
        for tx in block.entries.iter().flat_map(|e| e.transactions.iter()) {
            if in_queue.contains(&tx.transfer.recent_blockhash) {
                rebuilt
                    .entry(tx.transfer.recent_blockhash)
                    .or_default()
                    .push((tx.signature, block.header.slot));
            }
        }
    }
    let mut rebuilt: Vec<(Hash, Vec<(bb_core::Signature, Slot)>)> = rebuilt.into_iter().collect();
    for (_, sigs) in &mut rebuilt {
        sigs.sort();
    }
    let mut claimed = fields.status_cache.clone();
    claimed.retain(|(_, sigs)| !sigs.is_empty());
    for (_, sigs) in &mut claimed {
        sigs.sort();
    }
    claimed.sort();
    if claimed != rebuilt {
        bail!(
            "the snapshot {peer} served has a status cache ({} signatures) that is not the one its chain's last blocks give ({})",
            claimed.iter().map(|(_, s)| s.len()).sum::<usize>(),
            rebuilt.iter().map(|(_, s)| s.len()).sum::<usize>()
        );
    }
    Ok(())
}

/// Finds the highest slot of the base or the chain whose block and claimed bank hash are
/// proven by votes. Returns the proof and how many links lead up to it.
async fn prove(job: &Job, base: &Base, links: &[Link]) -> anyhow::Result<(Proven, usize)> {
    let genesis = StakeTable {
        name: "genesis",
        stakes: job
            .genesis
            .validators
            .iter()
            .map(|v| (v.identity, v.stake))
            .collect(),
    };
    let mut candidates: Vec<(Slot, Hash, Hash, usize)> = links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.slot, l.block_id, l.bank_hash, i + 1))
        .collect();
    candidates.push((
        base.slot,
        base.block_id,
        base.bank.hash().unwrap_or_default(),
        0,
    ));
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    if base.slot == 0 && links.is_empty() {
        bail!("{} has no rooted blocks yet: nothing to sync", job.peer);
    }
    let mut last_error = None;
    for (slot, block_id, bank_hash, upto) in candidates.into_iter().take(PROOF_CANDIDATES) {
        if slot == 0 {
            break;
        }
        let votes = match job.client.votes(slot).await {
            Ok(v) => v
                .votes
                .into_iter()
                .map(|v| v.signed_vote)
                .collect::<Vec<_>>(),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        // The stakes that weigh votes at `slot`, as the state the sync will trust records
        // them, beside the genesis anchor: a forged state cannot invent its own voters.
        let epoch = base.bank.epoch_schedule().epoch(slot);
        let state = StakeTable {
            name: "synced state's",
            stakes: base
                .bank
                .epoch_stakes(epoch)
                .map(|s| s.iter().map(|(k, v)| (*k, *v)).collect())
                .unwrap_or_else(|| base.bank.stakes().iter().map(|(k, v)| (*k, *v)).collect()),
        };
        match proof::weigh(&votes, slot, block_id, bank_hash, &[genesis.clone(), state]) {
            Ok(p) => return Ok((p, upto)),
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => bail!(
            "{} could not prove any of its newest {PROOF_CANDIDATES} rooted slots by votes; the last try: {e}",
            job.peer
        ),
        None => bail!("{} holds no votes for its newest rooted slots", job.peer),
    }
}

/// Replays the staged blocks of `links` from the base; every bank hash must be the one the
/// peer claimed.
fn replay(
    job: &Job,
    staged: &Ledger,
    base: &Base,
    links: &[Link],
    report: &mut Report,
) -> anyhow::Result<Arc<Bank>> {
    let mut bank = base.bank.clone();
    let mut bar = Bar::new(job.out, "replay", links.len() as u64, Unit::Items("blocks"));
    for link in links {
        let slot = link.slot;
        let bytes = staged
            .get_block(slot)?
            .with_context(|| format!("the staged block of slot {slot} is missing"))?;
        let block = Block::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("the staged block of slot {slot} does not decode: {e}"))?;
        if block.id() != link.block_id {
            bail!("the staged block of slot {slot} is not the one its checked header names");
        }
        let next = Bank::replay_rooted(&bank, &block).map_err(|e| {
            anyhow::anyhow!(
                "{}: the block of slot {slot} does not replay: {e}",
                job.peer
            )
        })?;
        let hash = next.hash().unwrap_or_default();
        if hash != link.bank_hash {
            bail!(
                "{}: slot {slot} replays to bank hash {hash}, but the peer claims {}",
                job.peer,
                link.bank_hash
            );
        }
        bank = next;
        report.blocks_replayed += 1;
        bar.inc(1);
    }
    bar.finish();
    Ok(bank)
}

/// The tower of the ledger being replaced (a validator must never forget what it voted,
/// or it could vote twice), with its oldest vote's slot.
fn read_tower(target: &Path) -> anyhow::Result<Option<(Vec<u8>, Slot)>> {
    let Some(bytes) = Ledger::read_tower_of(target).with_context(|| {
        format!(
            "cannot read the tower of the ledger in {} (is its validator running?)",
            target.display()
        )
    })?
    else {
        return Ok(None);
    };
    let record = bb_engine::TowerRecord::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("the tower in {} does not decode: {e}", target.display()))?;
    let oldest = record
        .votes
        .first()
        .map(|v| v.0)
        .or(record.root)
        .unwrap_or(0);
    Ok(Some((bytes, oldest)))
}
