//! `bb-localnet`: run bb clusters on one machine.
//!
//! - `up`, `status`, `down`, `kill`, `start`, `restart`, `logs`, `partition`: a localnet of real
//!   `bb-validator` processes, with its keys, genesis, ledgers, logs and a manifest in one
//!   directory (see [`manifest`] for the layout).
//! - `genesis`: the genesis file of a network whose validators run on separate hosts (see
//!   `testnet/` for the rest of what their operators need).
//! - `sim`: the deterministic simulator (one process, simulated network and clock).
//!
//! The process handling never kills by name: only pids from the manifest, and only
//! while they are still the node's process (see [`process`]).

mod add;
mod genesis;
mod load;
mod manage;
mod manifest;
mod partition;
mod ports;
mod process;
mod signals;
mod up;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bb_cli::{EXIT_OK, Output};
use bb_sim::{CrashSpec, FaultSpec, LatencyRange, PartitionSpec, SimConfig};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bb-localnet",
    version,
    about = "Run bb clusters on one machine",
    after_help = "Examples:\n  bb-localnet up --nodes 3\n  bb-localnet status\n  bb-localnet kill --node 1 && bb-localnet start --node 1\n  bb-localnet down\n  bb-localnet genesis --validator bb_5Hq...:100 --validator bb_9xK...:100 -o genesis.json\n  bb-localnet sim --nodes 16 --slots 300 --seed 7 --loss 0.05"
)]
struct Cli {
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// `--dir D`: where the localnet lives.
#[derive(clap::Args, Debug, Clone)]
pub struct DirArg {
    /// The localnet directory.
    #[arg(long, value_name = "D", default_value = "./.bb-localnet")]
    pub dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a localnet: keys, a genesis and N bb-validator processes; watch them until
    /// Ctrl-C (or --detach).
    #[command(after_help = up::UP_HELP)]
    Up(up::UpArgs),
    /// Show every node: pid, whether it runs, slots, peers, leader.
    #[command(
        after_help = "Examples:\n  bb-localnet status\n  bb-localnet status --dir /tmp/net --json"
    )]
    Status(manage::StatusArgs),
    /// Stop every node (SIGTERM, then SIGKILL after 10 s). Keys, genesis, ledgers and logs
    /// stay in the directory.
    #[command(after_help = "Example:\n  bb-localnet down --dir /tmp/net")]
    Down(manage::DownArgs),
    /// Stop one node abruptly (default SIGKILL, a crash) or cleanly (--signal term).
    #[command(
        after_help = "Examples:\n  bb-localnet kill --node 1\n  bb-localnet kill --node 2 --signal term"
    )]
    Kill(manage::KillArgs),
    /// Start a stopped node again with the arguments in the manifest (its ledger and
    /// tower are kept); waits until its gRPC API answers.
    #[command(after_help = "Example:\n  bb-localnet start --node 1")]
    Start(manage::StartArgs),
    /// Stop a node cleanly and start it again.
    #[command(after_help = "Example:\n  bb-localnet restart --node 0")]
    Restart(manage::StartArgs),
    /// Print a node's log (stdout and stderr of every run).
    #[command(
        after_help = "Examples:\n  bb-localnet logs --node 0\n  bb-localnet logs --node 2 -n 50 -f"
    )]
    Logs(manage::LogsArgs),
    /// Offer a steady load of signed transfers and report what became of them.
    #[command(after_help = load::LOAD_HELP)]
    Load(load::LoadArgs),
    /// Cut the network between groups of nodes for a while (it heals by itself).
    #[command(after_help = partition::PARTITION_HELP)]
    Partition(partition::PartitionArgs),
    /// Sync spare validators (see `up --spare`) from a running node and start them.
    #[command(after_help = add::ADD_HELP)]
    Add(add::AddArgs),
    /// Write the genesis of a network whose validators run on separate hosts, from their
    /// addresses (`bb-keygen pubkey`).
    #[command(after_help = genesis::GENESIS_HELP)]
    Genesis(genesis::GenesisArgs),
    /// Simulate a cluster deterministically: real bank, tower and fork choice over a
    /// simulated network and clock. The same arguments always print the same bytes.
    #[command(after_help = SIM_HELP)]
    Sim(SimArgs),
}

const SIM_HELP: &str = "\
Fault specs:
  --partition GROUPS@FROM-TO   split the network from slot FROM up to (not including) TO.
                               GROUPS are node lists split by '/', nodes by ','; nodes not
                               named form one more group.  e.g. 0,1/2,3@20-60
  --crash NODE@AT[-RESTART]    node NODE stops at slot AT and, if RESTART is given, comes
                               back then with its ledger and tower.  e.g. 2@30-60 or 3@0
  --latency-ms A-B             per-message latency, uniform in [A, B] ms (default 50-150)
  --loss P                     each message is lost with probability P (0 <= P < 1)
  --fault NODE=KIND[:ARG]      node NODE is byzantine for the whole run. KIND is one of
                                 double-vote      signs a twin of every vote for another block
                                 equivocate       as leader, signs two versions of each block
                                                  and sends each peer one of them
                                 withhold-shreds  as leader, sends nobody its blocks (they can
                                                  still be repaired from it)
                                 garbage          sends votes and blocks with broken signatures
                                 flood:RATE       sends RATE copies a second of its latest vote
                               e.g. 3=equivocate or 1=flood:1000
Each of --partition, --crash and --fault may be repeated.

Examples:
  bb-localnet sim --nodes 4 --slots 200 --seed 1
  bb-localnet sim --nodes 8 --slots 400 --seed 42 --loss 0.2 --partition 0,1,2/3,4,5,6,7@50-90 --crash 2@100-140
  bb-localnet sim --nodes 4 --slots 300 --seed 3 --stakes 3,2,2,2 --crash 0@0 --json
  bb-localnet sim --nodes 7 --slots 300 --seed 5 --fault 6=equivocate --fault 5=double-vote";

#[derive(clap::Args, Debug)]
struct SimArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Slots to simulate.
    #[arg(long, default_value_t = 200)]
    slots: u64,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Latency range in milliseconds, A-B.
    #[arg(long = "latency-ms", default_value = "50-150", value_parser = parse_latency)]
    latency_ms: LatencyRange,
    /// A network partition, GROUPS@FROM-TO (repeatable).
    #[arg(long, value_parser = parse_partition)]
    partition: Vec<PartitionSpec>,
    /// A crash, NODE@AT[-RESTART] (repeatable).
    #[arg(long, value_parser = parse_crash)]
    crash: Vec<CrashSpec>,
    /// A byzantine node, NODE=KIND[:ARG] (repeatable; kinds below).
    #[arg(long, value_parser = parse_fault)]
    fault: Vec<FaultSpec>,
    /// Stakes per node, comma-separated (default: equal).
    #[arg(long, value_delimiter = ',')]
    stakes: Option<Vec<u64>>,
    /// Slot length in simulated milliseconds.
    #[arg(long = "slot-ms", default_value_t = 400)]
    slot_ms: u64,
    /// Slots per epoch.
    #[arg(long = "epoch-slots", default_value_t = 64)]
    epoch_slots: u64,
    /// Transfers the leader puts in each block.
    #[arg(long = "txs-per-block", default_value_t = 2)]
    txs_per_block: usize,
}

fn parse_latency(s: &str) -> Result<LatencyRange, String> {
    s.parse().map_err(|e: bb_sim::SpecError| e.to_string())
}

fn parse_partition(s: &str) -> Result<PartitionSpec, String> {
    s.parse().map_err(|e: bb_sim::SpecError| e.to_string())
}

fn parse_crash(s: &str) -> Result<CrashSpec, String> {
    s.parse().map_err(|e: bb_sim::SpecError| e.to_string())
}

fn parse_fault(s: &str) -> Result<FaultSpec, String> {
    s.parse().map_err(|e: bb_sim::SpecError| e.to_string())
}

fn main() -> ExitCode {
    bb_cli::run(|cli: Cli| {
        let out = Output::new(cli.json);
        match cli.command {
            Command::Up(args) => up::up(out, args),
            Command::Status(args) => manage::status(out, args),
            Command::Down(args) => manage::down(out, args),
            Command::Kill(args) => manage::kill(out, args),
            Command::Start(args) => manage::start(out, args),
            Command::Restart(args) => manage::restart(out, args),
            Command::Logs(args) => manage::logs(out, args),
            Command::Add(args) => add::add(out, args),
            Command::Partition(args) => partition::partition(out, args),
            Command::Load(args) => load::load(out, args),
            Command::Genesis(args) => genesis::genesis(out, args),
            Command::Sim(args) => sim(out, args),
        }
    })
}

/// A single-threaded tokio runtime for the commands that talk to nodes.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn sim(out: Output, a: SimArgs) -> anyhow::Result<u8> {
    let config = SimConfig {
        loss: a.loss,
        latency: a.latency_ms,
        partitions: a.partition,
        crashes: a.crash,
        faults: a.fault,
        stakes: a.stakes,
        slot_ms: a.slot_ms,
        slots_per_epoch: a.epoch_slots,
        txs_per_block: a.txs_per_block,
        ..SimConfig::new(a.nodes, a.slots, a.seed)
    };
    let report = bb_sim::run(config).context("invalid simulation")?;
    out.emit(&report, || report.to_text());
    Ok(EXIT_OK)
}
