//! `bb-snapshot`: create, verify, list and restore state snapshots.
//!
//! A snapshot is the full state of a rooted slot in one checksummed file (see
//! `bb-snapshots`). `create` rebuilds the rooted state of a stopped node's ledger and
//! writes it; `verify` rechecks every byte and the state and bank hashes; `restore` turns
//! a snapshot into a fresh ledger, keeping the node's vote tower.

mod bar;
mod fetch;
mod restore;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bb_cli::target::NodeArgs;
use bb_cli::{EXIT_OK, Output};
use bb_core::Genesis;
use bb_snapshots::{SNAPSHOT_DIR_NAME, SnapshotInfo};
use clap::{Parser, Subcommand};
use indicatif::HumanBytes;
use serde::Serialize;

use crate::bar::Bar;

/// Where `list` looks when given no directory.
const DEFAULT_LOCALNET_SNAPSHOTS: &str = ".bb-localnet/node-0/ledger/snapshots";

#[derive(Parser, Debug)]
#[command(
    name = "bb-snapshot",
    version,
    about = "Create, verify, list and restore bb state snapshots",
    after_help = "Examples:
  bb-snapshot create --ledger ./.bb-localnet/node-0/ledger
  bb-snapshot verify snapshot-1200-9xQ…bbsnap
  bb-snapshot list --ledger ./.bb-localnet/node-0/ledger
  bb-snapshot restore snapshot-1200-9xQ…bbsnap --ledger /var/lib/bb/ledger"
)]
struct Cli {
    /// Print results as one JSON document.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Snapshot the rooted state: of a running node over gRPC (node 0 of ./.bb-localnet by
    /// default; it snapshots its latest root, or hands over the one it keeps for --slot),
    /// or of a stopped node's ledger with --ledger (any rooted slot).
    #[command(after_help = "Examples:
  bb-snapshot create                               # node 0 of ./.bb-localnet, latest root
  bb-snapshot create --localnet /tmp/net --node 2 -o /backups/
  bb-snapshot create --rpc http://127.0.0.1:8899 --slot 1200
  bb-snapshot create --ledger ./.bb-localnet/node-0/ledger --slot 1200")]
    Create {
        /// The ledger directory of a stopped node.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["rpc", "localnet", "node"])]
        ledger: Option<PathBuf>,
        /// A running node's gRPC URL.
        #[arg(long, value_name = "URL", conflicts_with_all = ["localnet", "node"])]
        rpc: Option<String>,
        /// The localnet directory [default: ./.bb-localnet].
        #[arg(long, value_name = "DIR")]
        localnet: Option<PathBuf>,
        /// Which node of the localnet [default: 0].
        #[arg(long, value_name = "I")]
        node: Option<usize>,
        /// The network's genesis file [default: DIR/genesis.json].
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// A rooted slot [default: the latest root].
        #[arg(long, value_name = "S")]
        slot: Option<u64>,
        /// A directory or a `.bbsnap` file to write [default: DIR/snapshots/].
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Check every byte of a snapshot, recompute its state hash and bank hash. Exit 1 and
    /// the corrupt region named when anything is off.
    #[command(
        after_help = "Examples:\n  bb-snapshot verify snapshot-1200-9xQ…bbsnap\n  bb-snapshot verify FILE --json"
    )]
    Verify {
        /// The snapshot file.
        file: PathBuf,
    },
    /// The snapshots in a directory, newest first: slot, hash, size, age.
    #[command(after_help = "Examples:
  bb-snapshot list                    # ./.bb-localnet/node-0/ledger/snapshots
  bb-snapshot list --ledger DIR
  bb-snapshot list --dir /backups --json")]
    List {
        /// A directory of snapshots.
        #[arg(long, value_name = "D", conflicts_with = "ledger")]
        dir: Option<PathBuf>,
        /// A ledger directory (its snapshots/ directory is listed).
        #[arg(long, value_name = "DIR")]
        ledger: Option<PathBuf>,
    },
    /// Make DIR a fresh ledger rooted at the snapshot's slot. An existing ledger is replaced
    /// (after a question, or with --yes); its vote tower is kept.
    #[command(after_help = "Examples:
  bb-snapshot restore snapshot-1200-9xQ…bbsnap --ledger ./node/ledger --genesis genesis.json
  bb-snapshot restore FILE --ledger DIR --yes")]
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// The ledger directory to (re)create.
        #[arg(long, value_name = "DIR")]
        ledger: PathBuf,
        /// The network's genesis file [default: DIR/genesis.json].
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// Replace an existing ledger without asking.
        #[arg(long)]
        yes: bool,
    },
}

/// Where `create` takes the state from.
#[derive(Debug)]
enum Source {
    /// A stopped node's ledger, replayed here.
    Ledger { dir: PathBuf },
    /// A running node, which writes the snapshot; the file is downloaded and verified here.
    Node(NodeArgs),
}

fn main() -> ExitCode {
    bb_cli::run(|cli: Cli| {
        let out = Output::new(cli.json);
        match cli.command {
            Command::Create {
                ledger,
                rpc,
                localnet,
                node,
                genesis,
                slot,
                output,
            } => match ledger {
                Some(dir) => create(out, Source::Ledger { dir }, genesis, slot, output),
                None => {
                    let args = NodeArgs {
                        rpc,
                        localnet,
                        node,
                        genesis,
                        timeout_ms: 30_000,
                    };
                    create(out, Source::Node(args), None, slot, output)
                }
            },
            Command::Verify { file } => verify(out, &file),
            Command::List { dir, ledger } => list(out, dir, ledger),
            Command::Restore {
                file,
                ledger,
                genesis,
                yes,
            } => restore::run(out, &file, &ledger, genesis, yes),
        }
    })
}

/// The genesis at `given`, or at `DIR/genesis.json`.
pub(crate) fn load_genesis(
    given: Option<PathBuf>,
    dir: &Path,
) -> anyhow::Result<(PathBuf, Genesis)> {
    let path = match given {
        Some(path) => path,
        None => {
            let path = dir.join("genesis.json");
            if !path.is_file() {
                anyhow::bail!("no genesis file at {}: pass --genesis FILE", path.display());
            }
            path
        }
    };
    let bytes =
        std::fs::read(&path).with_context(|| format!("cannot read genesis {}", path.display()))?;
    let genesis = Genesis::from_json(&bytes)
        .with_context(|| format!("genesis {} is not valid", path.display()))?;
    Ok((path, genesis))
}

fn create(
    out: Output,
    source: Source,
    genesis: Option<PathBuf>,
    slot: Option<u64>,
    output: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let bar = Bar::new(out);
    let (bank, default_dest) = match source {
        Source::Ledger { dir } => {
            let (_, genesis) = load_genesis(genesis, &dir)?;
            let ledger = bb_snapshots::open_stopped_ledger(&dir)?;
            let bank = bb_snapshots::bank_from_ledger(&ledger, &genesis, slot, &bar)?;
            (bank, dir.join(SNAPSHOT_DIR_NAME))
        }
        Source::Node(args) => return fetch::create_from_node(out, &args, slot, output),
    };
    let (fields, accounts) = bank.snapshot()?;
    let dest = output.unwrap_or(default_dest);
    let info = bb_snapshots::write_snapshot(&fields, accounts.into_iter(), &dest, &bar)?;
    bar.finish();
    out.emit(&info, || {
        format!(
            "snapshot of slot {} written to {}\n{}",
            info.slot,
            info.path.display(),
            describe(&info)
        )
    });
    Ok(EXIT_OK)
}

fn describe(info: &SnapshotInfo) -> String {
    format!(
        "slot        {}\nbank hash   {}\nstate hash  {}\nblock id    {}\naccounts    {}\nsize        {}",
        info.slot,
        info.bank_hash,
        info.state_hash,
        info.block_id,
        info.account_count,
        HumanBytes(info.size_bytes)
    )
}

#[derive(Serialize)]
struct Verified<'a> {
    ok: bool,
    #[serde(flatten)]
    info: &'a SnapshotInfo,
}

fn verify(out: Output, file: &Path) -> anyhow::Result<u8> {
    let bar = Bar::new(out);
    let info = bb_snapshots::verify_file(file, &bar)?;
    bar.finish();
    out.emit(
        &Verified {
            ok: true,
            info: &info,
        },
        || {
            format!(
                "{}: ok — every checksum, the state hash and the bank hash check out\n{}",
                info.path.display(),
                describe(&info)
            )
        },
    );
    Ok(EXIT_OK)
}

#[derive(Serialize)]
struct Listed {
    dir: PathBuf,
    snapshots: Vec<SnapshotInfo>,
}

fn list(out: Output, dir: Option<PathBuf>, ledger: Option<PathBuf>) -> anyhow::Result<u8> {
    let dir = match (dir, ledger) {
        (Some(dir), _) => dir,
        (None, Some(ledger)) => ledger.join(SNAPSHOT_DIR_NAME),
        (None, None) => {
            let default = PathBuf::from(DEFAULT_LOCALNET_SNAPSHOTS);
            if !default.is_dir() {
                anyhow::bail!(
                    "no ./{DEFAULT_LOCALNET_SNAPSHOTS} here: pass --dir D or --ledger DIR"
                );
            }
            default
        }
    };
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let snapshots = bb_snapshots::list_snapshots(&dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    out.emit(
        &Listed {
            dir: dir.clone(),
            snapshots: snapshots.clone(),
        },
        || {
            if snapshots.is_empty() {
                return format!("no snapshots in {}", dir.display());
            }
            let mut t = bb_cli::table::table(
                &["slot", "bank hash", "accounts", "size", "age"],
                &[0, 2, 3, 4],
            );
            for s in &snapshots {
                t.add_row(vec![
                    s.slot.to_string(),
                    s.bank_hash.to_string(),
                    s.account_count.to_string(),
                    HumanBytes(s.size_bytes).to_string(),
                    age(now.saturating_sub(s.created_ms)),
                ]);
            }
            t.to_string()
        },
    );
    Ok(EXIT_OK)
}

/// "42s", "5m", "3h", "2d".
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
