//! `bb-inspect`: look at running bb validators over gRPC.
//!
//! Every command asks one node (or, for `status`, every node of a localnet) and prints a
//! table, or one JSON document with `--json`. What can be checked is checked here rather
//! than believed: vote signatures are verified from the votes' canonical bytes, blocks
//! are decoded and their signatures, bodies and PoH re-verified, and `integrity` replays
//! the chain from the genesis to compare bank hashes.

mod block;
mod chain;
mod integrity;
mod peers;
mod schedule;
mod slashing;
mod status;
mod table;
use bb_cli::target;
mod votes;

use std::process::ExitCode;

use anyhow::Context as _;
use bb_cli::Output;
use clap::{Parser, Subcommand};

use crate::target::{NodeArgs, Target};

#[derive(Parser, Debug)]
#[command(
    name = "bb-inspect",
    version,
    about = "Look at running bb validators: status, peers, votes, leader schedule, blocks, chain integrity",
    after_help = "Which node: --rpc URL, or --localnet DIR --node I; with neither, node 0 of the \
localnet in ./.bb-localnet.

Examples:
  bb-inspect status
  bb-inspect votes --slot 1200
  bb-inspect block --slot 57 --rpc http://127.0.0.1:8899
  bb-inspect integrity --localnet ./.bb-localnet --node 2
  bb-inspect schedule --epoch 3 --json"
)]
struct Cli {
    /// Print results as one JSON document.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    node: NodeArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every node of the localnet in one table (or the node named by --rpc / --node).
    #[command(
        after_help = "Examples:\n  bb-inspect status\n  bb-inspect status --localnet /tmp/net --json\n  bb-inspect status --rpc http://127.0.0.1:8899"
    )]
    Status,
    /// The validators the node knows of: address, stake, last slot, round-trip time.
    #[command(after_help = "Examples:\n  bb-inspect peers\n  bb-inspect peers --node 2")]
    Peers,
    /// Who voted on a slot: block and bank hash, stake, lockout, signature (re-verified
    /// here), and the share of stake each block reached.
    #[command(
        after_help = "Examples:\n  bb-inspect votes --slot 1200\n  bb-inspect votes --slot 1200 --node 1 --json"
    )]
    Votes {
        /// The slot whose votes to show.
        #[arg(long, value_name = "N")]
        slot: u64,
    },
    /// The leader schedule of an epoch: runs of slots and slots per leader.
    #[command(after_help = "Examples:\n  bb-inspect schedule\n  bb-inspect schedule --epoch 3")]
    Schedule {
        /// The epoch [default: the current one].
        #[arg(long, value_name = "E")]
        epoch: Option<u64>,
    },
    /// One block: its summary, and its id, leader signature, body, PoH, parent link and
    /// scheduled leader checked here from its bytes. Exit 1 if a check fails.
    #[command(
        after_help = "Examples:\n  bb-inspect block --slot 57\n  bb-inspect block --slot 57 --genesis genesis.json --json"
    )]
    Block {
        /// The slot of the block.
        #[arg(long, value_name = "N")]
        slot: u64,
    },
    /// Check the chain from slot A to B: parent links, rising slots, PoH continuity,
    /// leader signatures, and (with the genesis) bank hashes by replay from slot 0.
    /// Names the first bad slot and exits 1; exits 0 with a summary when all is well.
    #[command(
        after_help = "Examples:\n  bb-inspect integrity                      # slot 1 to the node's finalized slot\n  bb-inspect integrity --from 100 --to 200\n  bb-inspect integrity --rpc http://127.0.0.1:8899 --genesis genesis.json"
    )]
    Integrity {
        /// First slot to check [default: 1].
        #[arg(long, value_name = "A")]
        from: Option<u64>,
        /// Last slot to check [default: the node's finalized slot].
        #[arg(long, value_name = "B")]
        to: Option<u64>,
    },
    /// Slashing: the evidence of misbehaviour the node holds (each proof checked here
    /// with its own signatures), whether the chain recorded it, and the stake cuts
    /// applied at epoch boundaries. Exit 1 if any evidence fails its check.
    #[command(
        after_help = "Examples:\n  bb-inspect slashing\n  bb-inspect slashing --node 2 --json"
    )]
    Slashing {
        /// Most pieces of evidence to list, newest offense first.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
    },
}

fn main() -> ExitCode {
    bb_cli::run(|cli: Cli| {
        let out = Output::new(cli.json);
        let target = Target::resolve(&cli.node)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async {
            match cli.command {
                Command::Status => status::run(out, &target).await,
                Command::Peers => peers::run(out, &target).await,
                Command::Votes { slot } => votes::run(out, &target, slot).await,
                Command::Schedule { epoch } => schedule::run(out, &target, epoch).await,
                Command::Block { slot } => block::run(out, &target, slot).await,
                Command::Integrity { from, to } => integrity::run(out, &target, from, to).await,
                Command::Slashing { limit } => slashing::run(out, &target, limit).await,
            }
        })
    })
}
