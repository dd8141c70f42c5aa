//! `bb-localnet up`: keys, a genesis and N `bb-validator` processes on this machine,
//! watched from "spawned" to the first finalized slot, then a live table until Ctrl-C
//! (or, with `--detach`, left running).
//!
//! Nothing is left half-started: every check that can fail runs before anything is
//! written, a node that exits while the localnet starts stops all the others, and a port
//! taken between picking and binding makes `up` start over with new ports.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use bb_cli::Output;
use bb_cli::keyfile::{Overwrite, write_keypair};
use bb_cli::progress::Stages;
use bb_core::genesis::GENESIS_VERSION;
use bb_core::{Genesis, GenesisAccount, GenesisValidator, Keypair, Pubkey};
use serde::Serialize;
use tokio::time::{Instant, sleep, sleep_until};

use crate::manage::{stop_every_node, stop_nodes};
use crate::manifest::{
    DirLock, FaucetKey, MANIFEST_FILE, MANIFEST_VERSION, Manifest, NodeEntry, NodeState, Ports,
    now_ms, write_atomically,
};
use crate::process::{self, Children, describe_exit, log_tail};
use crate::signals::StopSignals;
use crate::watch::{Poller, Progress, render, rows};

/// Stake of each validator unless `--stakes` says otherwise.
pub const DEFAULT_STAKE: u64 = 100;
/// Stake of each `--spare` validator: small, so the started nodes keep well over 2/3.
pub const SPARE_STAKE: u64 = DEFAULT_STAKE / 10;
/// Funded keys written to `D/faucet/`.
pub const FAUCET_KEYS: usize = 4;
pub const FAUCET_BALANCE: u64 = 1 << 40;
pub const MAX_NODES: usize = 128;
/// PoH and leader-rotation parameters of every genesis bb-localnet writes (`up` and
/// `genesis`): a testnet and a localnet with the same slot length behave alike.
pub(crate) const TICKS_PER_SLOT: u64 = 8;
pub(crate) const HASHES_PER_TICK: u64 = 1000;
/// Up to this many validators a localnet keeps a lone validator's costs: full PoH ticks
/// ([`HASHES_PER_TICK`]) and the validator's own ledger cache. Beyond it, `up` scales
/// both down (see [`UpArgs::hashes_per_tick`] and [`UpArgs::ledger_cache_mb`]).
const SMALL_LOCALNET: u64 = 16;
/// The fewest hashes per tick `up` chooses by itself.
const MIN_AUTO_HASHES_PER_TICK: u64 = 100;
/// The ledger caches of all a big localnet's validators together, in MiB.
const LOCALNET_LEDGER_CACHE_MB: u64 = 1024;
/// The smallest ledger cache `up` gives a validator by itself.
const MIN_AUTO_LEDGER_CACHE_MB: u64 = 8;
/// The slot length of a localnet that fits the machine.
pub(crate) const DEFAULT_SLOT_MS: u64 = 400;
/// CPU one validator needs per slot on a localnet (one core's milliseconds): every
/// validator replays every block and checks every other validator's vote, so a slot's
/// work grows with the number of validators sharing the machine. Measured on 2 cores
/// (BENCH.md, "Scale probe"): 50 validators used 1.8 cores at 400 ms, 70 saturated both,
/// 100 keep up at 1000 ms.
const CPU_MS_PER_VALIDATOR_SLOT: u64 = 20;
pub(crate) const LEADER_SLOTS_PER_ROTATION: u64 = 4;
/// Tries with fresh ports when a node finds its port taken.
const START_ATTEMPTS: usize = 3;
const STAGES: [&str; 5] = [
    "spawned",
    "peers connected",
    "first block",
    "first confirmed",
    "first finalized",
];

pub const UP_HELP: &str = "\
Files (in --dir, default ./.bb-localnet):
  manifest.json            nodes, pids, ports, URLs and arguments (read by bb-inspect)
  genesis.json             the network's genesis (network \"localnet\")
  node-I/identity.json     node I's key; node-I/ledger/ its ledger; node-I/validator.log its log
  faucet/faucet-K.json     4 funded keys

If the directory holds a localnet that is running, `up` refuses (run `bb-localnet down`
first). If it holds one whose nodes have all stopped, `up` says so and replaces it with
a fresh network (new keys, genesis and ledgers); use `bb-localnet start --node I` instead
to bring a stopped node of the old one back.

Without --detach, `up` shows the nodes in a live table until Ctrl-C, which stops every
node (SIGTERM, then SIGKILL after 10 s). With --detach it returns once a slot is
finalized and leaves the nodes running.

Fault kinds for --fault I=KIND[:ARG] (test only; passed to node I as --fault KIND[:ARG]):
  drop-shreds:P   drop each incoming shred with probability P
  delay-ms:D      hold every outgoing shred and vote D ms
  serve-tampered  corrupt catch-up answers (blocks and snapshot downloads)
  double-vote     sign and gossip a second, conflicting vote with every vote (slashable)
  equivocate      as leader, sign a second version of every block and send it too (slashable)
  withhold-shreds as leader, send only a quarter of each FEC set (too few to rebuild)
  garbage         send peers random bytes as gossip, shreds and repair requests
  flood:RATE      publish RATE signed, useless contact-info messages per second

Examples:
  bb-localnet up --nodes 3
  bb-localnet up --nodes 4 --detach --slot-ms 200 --epoch-slots 64
  bb-localnet up --nodes 3 --stakes 3,2,1 --fault 2=drop-shreds:0.33 --detach";

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    #[command(flatten)]
    pub dir: crate::DirArg,
    /// Slot length in milliseconds. Default: 400, or longer when this machine's cores
    /// are too few for the validators: 20 ms of one core per validator per slot (on 2
    /// cores, 400 ms up to 40 validators, 1000 ms for 100).
    #[arg(long = "slot-ms", value_name = "MS")]
    pub slot_ms: Option<u64>,
    /// Slots per epoch (a multiple of 4).
    #[arg(long = "epoch-slots", default_value_t = 32)]
    pub epoch_slots: u64,
    /// PoH hashes per tick (8 ticks a slot). Default: 1000 up to 16 validators, and for
    /// more, 16000 / validators (at least 100): every validator re-hashes every block on
    /// this one machine's cores, so the machine's PoH work stays what 16 nodes cost.
    #[arg(long = "hashes-per-tick", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub hashes_per_tick: Option<u64>,
    /// Share of an offender's stake cut at the epoch boundary after its offense is
    /// recorded, in basis points (1000 = 10 %).
    #[arg(long = "slash-penalty-bps", value_name = "BPS", default_value_t = bb_core::DEFAULT_SLASH_PENALTY_BPS)]
    pub slash_penalty_bps: u32,
    /// Passed to every node as --rate-limit (messages per second per peer and kind).
    #[arg(long = "rate-limit", value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Passed to every node as --ledger-cache-mb. Default: the validator's own (128) up to
    /// 16 validators, and 1024 / validators (at least 8) for more, so the localnet's
    /// ledger caches together stay within 1 GiB.
    #[arg(long = "ledger-cache-mb", value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub ledger_cache_mb: Option<u64>,
    /// Passed to every node as --max-pending-txs (transactions a leader holds before it
    /// answers forwards "leader busy").
    #[arg(long = "max-pending-txs", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_txs: Option<u64>,
    /// Stake of each node, comma-separated, one per node (default: equal).
    #[arg(long, value_delimiter = ',', value_name = "S,S,..")]
    pub stakes: Option<Vec<u64>>,
    /// Turbine fanout, passed to every node as --turbine-fanout.
    #[arg(long, value_name = "F")]
    pub fanout: Option<u32>,
    /// A fault for node I, I=KIND[:ARG] (repeatable; test only).
    #[arg(long = "fault", value_name = "I=KIND[:ARG]")]
    pub faults: Vec<FaultSpec>,
    /// Validators staked in the genesis but not started, for `bb-localnet add` to sync and
    /// start later; each holds a tenth of a node's default stake.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub spare: usize,
    /// Passed to every node as --snapshot-interval (a snapshot every N rooted slots).
    #[arg(long = "snapshot-interval", value_name = "N")]
    pub snapshot_interval: Option<u64>,
    /// Return once the first slot is finalized and leave the nodes running.
    #[arg(long)]
    pub detach: bool,
    /// How long to wait for the first finalized slot, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

/// `--fault I=KIND[:ARG]`: a fault injection for node I.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub node: usize,
    /// `KIND[:ARG]`, passed as it is to the node's `--fault`.
    pub fault: String,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let (index, fault) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not I=KIND[:ARG] (e.g. 1=drop-shreds:0.33)"))?;
        let node = index
            .trim()
            .parse()
            .map_err(|_| format!("{index:?} in {s:?} is not a node index"))?;
        let kind = fault.split(':').next().unwrap_or_default();
        if kind.is_empty()
            || !kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "{fault:?} in {s:?} is not KIND[:ARG] (e.g. drop-shreds:0.33)"
            ));
        }
        Ok(FaultSpec {
            node,
            fault: fault.to_string(),
        })
    }
}

impl UpArgs {
    /// Every check on the arguments alone, before anything is written.
    fn check(&self) -> anyhow::Result<()> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            bail!("--nodes {} is out of range 1..={MAX_NODES}", self.nodes);
        }
        if self.nodes + self.spare > MAX_NODES {
            bail!(
                "--nodes {} plus --spare {} exceeds {MAX_NODES} validators",
                self.nodes,
                self.spare
            );
        }
        if let Some(stakes) = &self.stakes
            && stakes.len() != self.nodes
        {
            bail!(
                "--stakes has {} values for {} nodes; give one per node",
                stakes.len(),
                self.nodes
            );
        }
        if let Some(f) = self.faults.iter().find(|f| f.node >= self.nodes) {
            bail!(
                "--fault {}={}: node {} is out of range 0..={}",
                f.node,
                f.fault,
                f.node,
                self.nodes - 1
            );
        }
        if self.fanout == Some(0) {
            bail!("--fanout must be at least 1");
        }
        if self.timeout == 0 {
            bail!("--timeout must be at least 1 second");
        }
        // The genesis rules (slot length, epoch length, stakes), on throwaway keys.
        let fake = |i: usize| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Keypair::from_seed(&seed).pubkey()
        };
        let validators: Vec<Pubkey> = (0..self.nodes + self.spare).map(fake).collect();
        let faucet: Vec<Pubkey> = (0..FAUCET_KEYS).map(|i| fake(1000 + i)).collect();
        self.genesis(&validators, &faucet, 0)
            .validate()
            .map_err(|e| anyhow::anyhow!("{e} (check --slot-ms, --epoch-slots and --stakes)"))
    }

    /// Validators in the genesis: the started nodes and the spares.
    fn validators(&self) -> u64 {
        (self.nodes + self.spare) as u64
    }

    /// `--slot-ms`, or the default for this many validators (spares included) on `cores`.
    pub fn slot_ms(&self, cores: usize) -> u64 {
        self.slot_ms.unwrap_or_else(|| {
            let cores = (cores as u64).max(1);
            DEFAULT_SLOT_MS.max((self.validators() * CPU_MS_PER_VALIDATOR_SLOT).div_ceil(cores))
        })
    }

    /// `--ledger-cache-mb`, or what a localnet of this many validators (spares included)
    /// gives each; `None`: the validator's default.
    pub fn ledger_cache_mb(&self) -> Option<u64> {
        let n = self.validators();
        self.ledger_cache_mb.or_else(|| {
            (n > SMALL_LOCALNET)
                .then(|| (LOCALNET_LEDGER_CACHE_MB / n).max(MIN_AUTO_LEDGER_CACHE_MB))
        })
    }

    /// `--hashes-per-tick`, or the default for this many validators (spares included).
    ///
    /// On one machine the PoH verification of a slot costs N times one replay, so a
    /// hundred nodes at 1000 hashes per tick spent a sixth of both cores re-hashing
    /// blocks. A localnet's PoH proves nothing about wall-clock time anyway: every node
    /// shares the same CPU.
    pub fn hashes_per_tick(&self) -> u64 {
        self.hashes_per_tick.unwrap_or_else(|| {
            let n = self.validators();
            if n <= SMALL_LOCALNET {
                HASHES_PER_TICK
            } else {
                (HASHES_PER_TICK * SMALL_LOCALNET / n).max(MIN_AUTO_HASHES_PER_TICK)
            }
        })
    }

    fn genesis(&self, validators: &[Pubkey], faucet: &[Pubkey], creation_time_ms: u64) -> Genesis {
        Genesis {
            version: GENESIS_VERSION,
            network: "localnet".into(),
            creation_time_ms,
            slot_ms: self.slot_ms(cores()),
            ticks_per_slot: TICKS_PER_SLOT,
            hashes_per_tick: self.hashes_per_tick(),
            slots_per_epoch: self.epoch_slots,
            leader_slots_per_rotation: LEADER_SLOTS_PER_ROTATION,
            slash_penalty_bps: self.slash_penalty_bps,
            validators: validators
                .iter()
                .enumerate()
                .map(|(i, identity)| GenesisValidator {
                    identity: *identity,
                    stake: if i >= self.nodes {
                        SPARE_STAKE
                    } else {
                        self.stakes
                            .as_ref()
                            .and_then(|s| s.get(i).copied())
                            .unwrap_or(DEFAULT_STAKE)
                    },
                })
                .collect(),
            accounts: faucet
                .iter()
                .map(|address| GenesisAccount {
                    address: *address,
                    balance: FAUCET_BALANCE,
                })
                .collect(),
        }
    }
}

pub fn up(out: Output, a: UpArgs) -> anyhow::Result<u8> {
    if out.json && !a.detach {
        bail!(
            "--json needs --detach: the live table is for people (use `bb-localnet status --json` for data)"
        );
    }
    a.check()?;
    let cores = cores();
    let slot_ms = a.slot_ms(cores);
    if a.slot_ms.is_none() && slot_ms > DEFAULT_SLOT_MS {
        out.note(&format!(
            "slots of {slot_ms} ms: {} validators on {cores} cores need about \
             {CPU_MS_PER_VALIDATOR_SLOT} ms of a core each per slot (--slot-ms sets it)",
            a.validators()
        ));
    }
    let bin = process::validator_bin()?;
    let dir = prepare_dir(&a.dir.dir)?;
    let lock = DirLock::acquire(&dir)?;
    take_over(&dir, out)?;
    let keys = Keys::create(&dir, a.nodes + a.spare)?;
    let rt = crate::runtime()?;
    rt.block_on(run(out, &a, &bin, &dir, &keys, lock))
}

/// The cores this process may run on: the validators share them.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Creates the directory (0700) and returns its absolute path.
fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Makes `dir` ready for a new localnet: refuses one that runs and a directory with
/// files that are not a localnet's; clears a stopped localnet (saying so).
fn take_over(dir: &Path, out: Output) -> anyhow::Result<()> {
    if let Some(old) = Manifest::read(dir)? {
        let live = old.live_pids();
        if !live.is_empty() {
            let pids: Vec<String> = live.iter().map(|(_, pid)| pid.to_string()).collect();
            bail!(
                "a localnet is already running in {} (pids {}); `bb-localnet down --dir {}` first",
                dir.display(),
                pids.join(", "),
                dir.display()
            );
        }
        let crashed: Vec<String> = old
            .nodes
            .iter()
            .filter(|n| n.state == NodeState::Running)
            .filter_map(|n| n.pid.map(|p| p.to_string()))
            .collect();
        if crashed.is_empty() {
            out.note(&format!(
                "replacing the stopped localnet in {} with a fresh one",
                dir.display()
            ));
        } else {
            out.note(&format!(
                "the localnet in {} is not running (pids {} are gone); replacing it with a fresh one",
                dir.display(),
                crashed.join(", ")
            ));
        }
    } else if let Some(stranger) = entries(dir)?.into_iter().find(|n| !is_ours(n)) {
        bail!(
            "{} holds {stranger:?} and no localnet ({MANIFEST_FILE}); choose another --dir or empty it",
            dir.display()
        );
    }
    for name in entries(dir)? {
        if is_ours(&name) && name != ".lock" {
            let path = dir.join(&name);
            let result = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            result.with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

fn entries(dir: &Path) -> anyhow::Result<Vec<String>> {
    let read = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(read
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Whether `name` in a localnet directory is something `up` writes.
fn is_ours(name: &str) -> bool {
    matches!(name, "manifest.json" | "genesis.json" | "faucet" | ".lock")
        || name.starts_with(".manifest.json.tmp-")
        || name.starts_with(".genesis.json.tmp-")
        || name
            .strip_prefix("node-")
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// The keys of a new localnet, written to their files.
#[derive(Debug)]
struct Keys {
    validators: Vec<(Pubkey, PathBuf)>,
    faucet: Vec<(Pubkey, PathBuf)>,
}

impl Keys {
    fn create(dir: &Path, nodes: usize) -> anyhow::Result<Keys> {
        let make = |path: PathBuf| -> anyhow::Result<(Pubkey, PathBuf)> {
            let key = Keypair::generate();
            write_keypair(&path, &key, Overwrite::Refuse)?;
            Ok((key.pubkey(), path))
        };
        Ok(Keys {
            validators: (0..nodes)
                .map(|i| make(dir.join(format!("node-{i}")).join("identity.json")))
                .collect::<anyhow::Result<_>>()?,
            faucet: (0..FAUCET_KEYS)
                .map(|k| make(dir.join("faucet").join(format!("faucet-{k}.json"))))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// How long after `up` writes the genesis its slot 0 begins: time for every node to
/// start and meet the others first.
fn start_lead(nodes: usize) -> u64 {
    3_000 + 100 * nodes as u64
}

/// Writes the genesis and manifest for one attempt, then spawns every node.
fn launch(
    a: &UpArgs,
    bin: &Path,
    dir: &Path,
    keys: &Keys,
    children: &mut Children,
) -> anyhow::Result<Manifest> {
    let validators: Vec<Pubkey> = keys.validators.iter().map(|(k, _)| *k).collect();
    let faucet: Vec<Pubkey> = keys.faucet.iter().map(|(k, _)| *k).collect();
    let genesis = a.genesis(&validators, &faucet, now_ms() + start_lead(a.nodes));
    genesis.validate()?;
    let genesis_path = dir.join("genesis.json");
    write_atomically(&genesis_path, genesis.to_json_pretty().as_bytes())?;
    let ports = crate::ports::pick(a.nodes + a.spare)?;
    let peer_ids: Vec<String> = validators
        .iter()
        .map(|k| {
            bb_net::peer_id_of(k)
                .map(|p| p.to_string())
                .with_context(|| format!("{k} is not a valid Ed25519 key"))
        })
        .collect::<anyhow::Result<_>>()?;
    let p2p_address = |i: usize| format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", ports[i].p2p, peer_ids[i]);
    let mut passthrough = Vec::new();
    if let Some(n) = a.snapshot_interval {
        passthrough.extend(["--snapshot-interval".to_string(), n.to_string()]);
    }
    if let Some(n) = a.rate_limit {
        passthrough.extend(["--rate-limit".to_string(), n.to_string()]);
    }
    if let Some(n) = a.max_pending_txs {
        passthrough.extend(["--max-pending-txs".to_string(), n.to_string()]);
    }
    if let Some(mb) = a.ledger_cache_mb() {
        passthrough.extend(["--ledger-cache-mb".to_string(), mb.to_string()]);
    }
    let nodes: Vec<NodeEntry> = (0..a.nodes + a.spare)
        .map(|i| {
            let node_dir = dir.join(format!("node-{i}"));
            // Node 0 bootstraps from node 1, every other node from node 0: any one of
            // them can restart and find the network again.
            let bootstrap = match (i, a.nodes) {
                (_, 1) => None,
                (0, _) => Some(p2p_address(1)),
                _ => Some(p2p_address(0)),
            };
            let faults: Vec<String> = a
                .faults
                .iter()
                .filter(|f| f.node == i)
                .map(|f| f.fault.clone())
                .collect();
            let mut entry = node_entry(
                i,
                &keys.validators[i],
                &peer_ids[i],
                genesis.validators[i].stake,
                ports[i],
                &node_dir,
                &genesis_path,
                bootstrap,
                a.fanout,
                &passthrough,
                faults,
            );
            if i >= a.nodes {
                entry.state = NodeState::Spare;
            }
            entry
        })
        .collect();
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        created_ms: now_ms(),
        dir: dir.to_path_buf(),
        network: genesis.network.clone(),
        genesis_hash: genesis.hash().to_string(),
        genesis: genesis_path,
        slot_ms: genesis.slot_ms,
        slots_per_epoch: genesis.slots_per_epoch,
        faucet: keys
            .faucet
            .iter()
            .map(|(k, path)| FaucetKey {
                address: k.to_address(),
                key_file: path.clone(),
                balance: FAUCET_BALANCE,
            })
            .collect(),
        nodes,
    };
    // The manifest comes first: from here on, whatever runs is on record.
    manifest.save()?;
    for i in 0..a.nodes {
        let spawned = fs::create_dir_all(&manifest.nodes[i].ledger)
            .with_context(|| format!("cannot create {}", manifest.nodes[i].ledger.display()))
            .and_then(|()| process::spawn_node(bin, &manifest.nodes[i]));
        match spawned {
            Ok(child) => {
                manifest.nodes[i].mark_started(child.id());
                children.insert(child);
            }
            Err(e) => {
                // The caller holds the directory lock: stop what started right here.
                stop_nodes(&mut manifest, children);
                manifest.save()?;
                return Err(e.context(format!("node {i}")));
            }
        }
    }
    manifest.save()?;
    Ok(manifest)
}

#[allow(clippy::too_many_arguments)]
fn node_entry(
    index: usize,
    key: &(Pubkey, PathBuf),
    peer_id: &str,
    stake: u64,
    ports: Ports,
    node_dir: &Path,
    genesis: &Path,
    bootstrap: Option<String>,
    fanout: Option<u32>,
    passthrough: &[String],
    faults: Vec<String>,
) -> NodeEntry {
    let listen = format!("/ip4/127.0.0.1/tcp/{}", ports.p2p);
    let shred_addr = format!("127.0.0.1:{}", ports.shred);
    let rpc_addr = format!("127.0.0.1:{}", ports.rpc);
    let metrics_addr = format!("127.0.0.1:{}", ports.metrics);
    let ledger = node_dir.join("ledger");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = vec![
        "--identity".to_string(),
        path(&key.1),
        "--genesis".into(),
        path(genesis),
        "--ledger".into(),
        path(&ledger),
        "--listen".into(),
        listen.clone(),
        "--shred-addr".into(),
        shred_addr.clone(),
        "--rpc-addr".into(),
        rpc_addr.clone(),
        "--metrics-addr".into(),
        metrics_addr.clone(),
    ];
    if let Some(b) = bootstrap {
        args.extend(["--bootstrap".into(), b]);
    }
    if let Some(f) = fanout {
        args.extend(["--turbine-fanout".into(), f.to_string()]);
    }
    args.extend(passthrough.iter().cloned());
    for fault in &faults {
        args.extend(["--fault".into(), fault.clone()]);
    }
    NodeEntry {
        index,
        identity: key.0.to_address(),
        peer_id: peer_id.to_string(),
        identity_file: key.1.clone(),
        stake,
        state: NodeState::Stopped,
        pid: None,
        last_pid: None,
        started_ms: None,
        stopped_ms: None,
        ports,
        p2p_address: format!("{listen}/p2p/{peer_id}"),
        listen,
        shred_addr,
        rpc_url: format!("http://{rpc_addr}"),
        metrics_url: format!("http://{metrics_addr}/metrics"),
        ledger,
        log: node_dir.join("validator.log"),
        faults,
        args,
    }
}

/// How the start of a localnet ended.
#[derive(Debug)]
enum Startup {
    Finalized,
    TimedOut,
    Interrupted(&'static str),
    Exited {
        index: usize,
        status: std::process::ExitStatus,
    },
}

async fn run(
    out: Output,
    a: &UpArgs,
    bin: &Path,
    dir: &Path,
    keys: &Keys,
    lock: DirLock,
) -> anyhow::Result<u8> {
    let mut signals = StopSignals::listen()?;
    let mut children = Children::default();
    let mut lock = Some(lock);
    let timeout = Duration::from_secs(a.timeout);
    let mut attempt = 0;
    let manifest = loop {
        attempt += 1;
        let held = match lock.take() {
            Some(l) => l,
            None => DirLock::acquire(dir)?,
        };
        let manifest = launch(a, bin, dir, keys, &mut children)?;
        drop(held);
        let mut stages = Stages::new(out, &STAGES);
        stages.reach(0);
        let end = watch_startup(&manifest, &mut children, &mut stages, timeout, &mut signals).await;
        let stuck_at = stages.current().unwrap_or_default().to_string();
        match end {
            Startup::Finalized => break manifest,
            Startup::TimedOut if !a.detach => {
                stages.note(&format!(
                    "warning: no {stuck_at} within {}s; showing the nodes anyway (Ctrl-C stops them; logs: bb-localnet logs --node I)",
                    a.timeout
                ));
                break manifest;
            }
            Startup::TimedOut => {
                drop(stages);
                stop_every_node(dir, &mut children)?;
                bail!(
                    "no {stuck_at} within {}s; stopped every node (see `bb-localnet logs --node 0 --dir {}`)",
                    a.timeout,
                    dir.display()
                );
            }
            Startup::Interrupted(sig) => {
                drop(stages);
                stop_every_node(dir, &mut children)?;
                bail!("interrupted ({sig}) while starting; stopped every node");
            }
            Startup::Exited { index, status } => {
                drop(stages);
                let node = &manifest.nodes[index];
                let tail = log_tail(&node.log, 20);
                let busy = tail.iter().any(|l| says_port_busy(l));
                stop_every_node(dir, &mut children)?;
                if busy && attempt < START_ATTEMPTS {
                    out.note(&format!(
                        "node {index} found a port taken; starting over with new ports"
                    ));
                    for n in &manifest.nodes {
                        let _ = fs::remove_dir_all(&n.ledger);
                    }
                    continue;
                }
                if !tail.is_empty() {
                    eprintln!("last lines of {}:", node.log.display());
                    for line in &tail {
                        eprintln!("  {line}");
                    }
                }
                bail!(
                    "node {index} exited while the localnet was starting ({}); stopped every node",
                    describe_exit(status)
                );
            }
        }
    };
    if a.detach {
        children.release();
        report_detached(out, &manifest);
        return Ok(bb_cli::EXIT_OK);
    }
    live(dir, manifest, &mut children, &mut signals).await
}

fn says_port_busy(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("address already in use") || l.contains("addrinuse") || l.contains("os error 98")
}

async fn watch_startup(
    manifest: &Manifest,
    children: &mut Children,
    stages: &mut Stages,
    timeout: Duration,
    signals: &mut StopSignals,
) -> Startup {
    let deadline = Instant::now() + timeout;
    // Spare validators are not started: the network starts without them.
    let mut started = manifest.clone();
    started.nodes.retain(|n| n.state != NodeState::Spare);
    let mut poller = Poller::new(&started);
    loop {
        for (pid, status) in children.reap() {
            if let Some(node) = manifest.nodes.iter().find(|n| n.pid == Some(pid)) {
                return Startup::Exited {
                    index: node.index,
                    status,
                };
            }
        }
        let statuses = tokio::select! {
            s = poller.poll() => s,
            sig = signals.recv() => return Startup::Interrupted(sig),
            _ = sleep_until(deadline) => return Startup::TimedOut,
        };
        let p = Progress::of(&statuses);
        // In order; a later stage reached implies the ones before it (a node a fault
        // injection got banned never sees every peer, yet the others finalize).
        let reached = [
            true,
            p.all_connected,
            p.max_processed > 0,
            p.max_confirmed > 0,
            p.max_finalized > 0,
        ];
        if let Some(last) = reached.iter().rposition(|r| *r) {
            stages.reach(last);
        }
        if stages.finished() {
            return Startup::Finalized;
        }
        let peers: Vec<String> = statuses
            .iter()
            .map(|s| s.as_ref().map_or("-".into(), |s| s.peer_count.to_string()))
            .collect();
        stages.detail(&format!(
            "{}/{} nodes answering, peers {}, processed slot {}",
            p.answering,
            statuses.len(),
            peers.join(","),
            p.max_processed
        ));
        tokio::select! {
            _ = sleep(Duration::from_millis(250)) => {}
            sig = signals.recv() => return Startup::Interrupted(sig),
            _ = sleep_until(deadline) => return Startup::TimedOut,
        }
    }
}

#[derive(Debug, Serialize)]
struct Detached<'a> {
    dir: &'a Path,
    genesis_hash: &'a str,
    nodes: Vec<DetachedNode<'a>>,
}

#[derive(Debug, Serialize)]
struct DetachedNode<'a> {
    index: usize,
    identity: &'a str,
    pid: Option<u32>,
    rpc_url: &'a str,
    metrics_url: &'a str,
    log: &'a Path,
}

fn report_detached(out: Output, m: &Manifest) {
    let report = Detached {
        dir: &m.dir,
        genesis_hash: &m.genesis_hash,
        nodes: m
            .nodes
            .iter()
            .map(|n| DetachedNode {
                index: n.index,
                identity: &n.identity,
                pid: n.pid,
                rpc_url: &n.rpc_url,
                metrics_url: &n.metrics_url,
                log: &n.log,
            })
            .collect(),
    };
    out.emit(&report, || {
        let d = m.dir.display();
        let mut text = format!(
            "localnet of {} nodes running in {d} (genesis {})\n",
            m.nodes.len(),
            m.genesis_hash
        );
        for n in &m.nodes {
            text.push_str(&format!(
                "  node {}  {}  pid {}  rpc {}  metrics {}\n",
                n.index,
                n.identity,
                bb_cli::table::opt(n.pid),
                n.rpc_url,
                n.metrics_url
            ));
        }
        text.push_str(&format!(
            "\nLook at it:\n  bb-localnet status --dir {d}\n  bb-inspect status --localnet {d}\n  \
             bb-localnet logs --node 0 -f --dir {d}\nStop it:\n  bb-localnet down --dir {d}\n"
        ));
        text
    });
}

/// The live table, redrawn about twice a second, until a stop signal; then every node
/// is stopped.
async fn live(
    dir: &Path,
    first: Manifest,
    children: &mut Children,
    signals: &mut StopSignals,
) -> anyhow::Result<u8> {
    let mut poller = Poller::new(&first);
    let mut manifest = first;
    let tty = std::io::stdout().is_terminal();
    let mut drawn = 0usize;
    let mut last_print: Option<Instant> = None;
    let reason = loop {
        children.reap();
        // Another command (`kill`, `start`, `down`) may have changed the nodes.
        if let Ok(m) = Manifest::load(dir) {
            manifest = m;
        }
        if manifest.nodes.iter().all(|n| n.state != NodeState::Running) {
            eprintln!("every node was stopped by another command; done");
            return Ok(bb_cli::EXIT_OK);
        }
        let statuses = tokio::select! {
            s = poller.poll() => s,
            sig = signals.recv() => break sig,
        };
        let rows = rows(&manifest, Some(statuses));
        let running = rows.iter().filter(|r| r.alive).count();
        let epoch = rows.iter().filter_map(|r| r.epoch).max();
        let frame = format!(
            "localnet {} · genesis {} · epoch {} · {running}/{} running · Ctrl-C stops every node\n{}\n",
            dir.display(),
            manifest.genesis_hash.chars().take(8).collect::<String>(),
            bb_cli::table::opt(epoch),
            rows.len(),
            render(&rows)
        );
        if tty {
            let mut stdout = std::io::stdout().lock();
            if drawn > 0 {
                let _ = write!(stdout, "\x1b[{drawn}A\x1b[J");
            }
            let _ = stdout.write_all(frame.as_bytes());
            let _ = stdout.flush();
            drawn = frame.lines().count();
        } else if last_print.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            // Not a terminal: a fresh table every 10 s instead of redrawing.
            bb_cli::output::print_line(frame.trim_end());
            last_print = Some(Instant::now());
        }
        tokio::select! {
            _ = sleep(Duration::from_millis(500)) => {}
            sig = signals.recv() => break sig,
        }
    };
    eprintln!("{reason}: stopping every node (SIGTERM, SIGKILL after 10 s)...");
    let report = stop_every_node(dir, children)?;
    eprintln!("{}", crate::manage::describe_stops(&report));
    Ok(bb_cli::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        up: UpArgs,
    }

    fn args(extra: &[&str]) -> UpArgs {
        let mut argv = vec!["t"];
        argv.extend(extra);
        T::try_parse_from(argv).unwrap().up
    }

    #[test]
    fn fault_specs_parse_and_name_what_is_wrong() {
        assert_eq!(
            "2=drop-shreds:0.33".parse::<FaultSpec>().unwrap(),
            FaultSpec {
                node: 2,
                fault: "drop-shreds:0.33".into()
            }
        );
        assert_eq!("0=double-vote".parse::<FaultSpec>().unwrap().node, 0);
        for bad in ["drop-shreds", "x=garbage", "1=", "1=:3", "1=Drop"] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn slots_grow_only_when_the_machine_is_short_of_cores() {
        let slot = |extra: &[&str], cores| args(extra).slot_ms(cores);
        assert_eq!(slot(&[], 2), DEFAULT_SLOT_MS);
        assert_eq!(slot(&["--nodes", "40"], 2), 400);
        assert_eq!(slot(&["--nodes", "50"], 2), 500);
        assert_eq!(slot(&["--nodes", "100"], 2), 1000);
        assert_eq!(slot(&["--nodes", "90", "--spare", "10"], 2), 1000);
        assert_eq!(slot(&["--nodes", "100"], 8), 400);
        assert_eq!(slot(&["--nodes", "100"], 0), 2000);
        assert_eq!(slot(&["--nodes", "100", "--slot-ms", "400"], 2), 400);
        assert_eq!(slot(&["--slot-ms", "250"], 1), 250);
    }

    #[test]
    fn big_localnets_give_each_ledger_a_smaller_cache() {
        let mb = |extra: &[&str]| args(extra).ledger_cache_mb();
        assert_eq!(mb(&[]), None);
        assert_eq!(mb(&["--nodes", "16"]), None);
        assert_eq!(mb(&["--nodes", "32"]), Some(32));
        assert_eq!(mb(&["--nodes", "100"]), Some(10));
        assert_eq!(mb(&["--nodes", "128"]), Some(8));
        assert_eq!(mb(&["--nodes", "3", "--ledger-cache-mb", "8"]), Some(8));
        assert!(T::try_parse_from(["t", "--ledger-cache-mb", "0"]).is_err());
    }

    #[test]
    fn poh_work_per_machine_is_capped_for_big_localnets() {
        let hpt = |extra: &[&str]| args(extra).hashes_per_tick();
        assert_eq!(hpt(&[]), HASHES_PER_TICK);
        assert_eq!(hpt(&["--nodes", "16"]), HASHES_PER_TICK);
        assert_eq!(hpt(&["--nodes", "32"]), 500);
        assert_eq!(hpt(&["--nodes", "100"]), 160);
        assert_eq!(hpt(&["--nodes", "128"]), 125);
        assert_eq!(hpt(&["--nodes", "14", "--spare", "4"]), 888);
        assert_eq!(hpt(&["--nodes", "100", "--hashes-per-tick", "2000"]), 2000);
        assert!(T::try_parse_from(["t", "--hashes-per-tick", "0"]).is_err());
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_written() {
        let err = |extra: &[&str]| args(extra).check().unwrap_err().to_string();
        assert!(err(&["--nodes", "0"]).contains("out of range"));
        assert!(err(&["--nodes", "3", "--stakes", "1,2"]).contains("one per node"));
        assert!(err(&["--nodes", "3", "--fault", "3=garbage"]).contains("node 3 is out of range"));
        assert!(err(&["--epoch-slots", "30"]).contains("multiple"));
        assert!(err(&["--slot-ms", "5"]).contains("slot_ms"));
        assert!(err(&["--stakes", "1,0,1"]).contains("zero stake"));
        assert!(
            args(&["--nodes", "4", "--stakes", "4,3,2,1"])
                .check()
                .is_ok()
        );
    }

    #[test]
    fn node_args_carry_ports_bootstrap_fanout_and_faults() {
        let dir = Path::new("/ln");
        let key = (
            Keypair::from_seed(&[1; 32]).pubkey(),
            dir.join("node-1/identity.json"),
        );
        let ports = Ports {
            p2p: 21000,
            shred: 21001,
            rpc: 21002,
            metrics: 21003,
        };
        let n = node_entry(
            1,
            &key,
            "12D3Koo",
            100,
            ports,
            &dir.join("node-1"),
            &dir.join("genesis.json"),
            Some("/ip4/127.0.0.1/tcp/20000/p2p/12D3Foo".into()),
            Some(6),
            &[],
            vec!["delay-ms:50".into()],
        );
        let joined = n.args.join(" ");
        assert_eq!(
            joined,
            "--identity /ln/node-1/identity.json --genesis /ln/genesis.json --ledger /ln/node-1/ledger \
             --listen /ip4/127.0.0.1/tcp/21000 --shred-addr 127.0.0.1:21001 --rpc-addr 127.0.0.1:21002 \
             --metrics-addr 127.0.0.1:21003 --bootstrap /ip4/127.0.0.1/tcp/20000/p2p/12D3Foo \
             --turbine-fanout 6 --fault delay-ms:50"
        );
        assert_eq!(n.rpc_url, "http://127.0.0.1:21002");
        assert_eq!(n.p2p_address, "/ip4/127.0.0.1/tcp/21000/p2p/12D3Koo");
    }

    #[test]
    fn only_localnet_files_are_ours_to_replace() {
        for ours in [
            "manifest.json",
            "genesis.json",
            "faucet",
            "node-0",
            "node-12",
            ".lock",
        ] {
            assert!(is_ours(ours), "{ours}");
        }
        for theirs in ["node-", "node-x", "notes.txt", "ledger", "node-1.bak"] {
            assert!(!is_ours(theirs), "{theirs}");
        }
    }

    #[test]
    fn a_directory_with_other_files_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = take_over(dir.path(), Output::new(true))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notes.txt") && err.contains("no localnet"),
            "{err}"
        );
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_stopped_localnet_is_cleared_for_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::manifest::tests::sample(dir.path(), 2);
        m.save().unwrap();
        fs::create_dir_all(dir.path().join("node-0/ledger")).unwrap();
        fs::write(dir.path().join("genesis.json"), "{}").unwrap();
        take_over(dir.path(), Output::new(true)).unwrap();
        assert!(entries(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn busy_ports_are_recognised_in_the_log() {
        assert!(says_port_busy(
            "Error: cannot bind 127.0.0.1:9000: Address already in use (os error 98)"
        ));
        assert!(!says_port_busy("listening on 127.0.0.1:9000"));
    }
}
