//! `bb-localnet genesis`: the genesis file of a network whose validators run on separate
//! hosts, built from the addresses their operators send in (`bb-keygen pubkey`).
//!
//! It never sees or writes a key: each host keeps its own. It uses the same PoH and
//! leader-rotation parameters as `up`, so a testnet and a localnet with the same slot
//! length behave alike.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use bb_cli::{EXIT_OK, Output};
use bb_core::genesis::GENESIS_VERSION;
use bb_core::{Genesis, GenesisAccount, GenesisValidator, Pubkey};
use serde::Serialize;

use crate::manifest::{now_ms, write_atomically};
use crate::up::{DEFAULT_STAKE, HASHES_PER_TICK, LEADER_SLOTS_PER_ROTATION, TICKS_PER_SLOT};

/// The longest `--start-in`: more is a unit mistake (it is seconds, not milliseconds).
const MAX_START_IN_SECS: u64 = 30 * 24 * 3600;

pub const GENESIS_HELP: &str = "\
Each host makes its key and sends its address to whoever builds the genesis:
  bb-keygen new -o identity.json && bb-keygen pubkey identity.json

The genesis is then copied, byte for byte, to every host (its hash names the network:
peers with another genesis are refused). Slot 0 starts --start-in seconds after the file
is written; start the validators before then. The peer id printed for each validator
goes into the others' --bootstrap /ip4/HOST/tcp/PORT/p2p/PEER_ID.

Examples:
  bb-localnet genesis --validator bb_5Hq...:100 --validator bb_9xK...:100 \\
      --validator bb_Ct2...:100 --account bb_Fau...:1000000000 -o genesis.json
  bb-localnet genesis --network staging --slot-ms 400 --epoch-slots 64 --start-in 600 \\
      --validator bb_5Hq... --validator bb_9xK... -o genesis.json --force --json";

#[derive(clap::Args, Debug)]
pub struct GenesisArgs {
    /// A validator and its stake, bb_ADDRESS[:STAKE] (repeatable; stake 100 if not given).
    #[arg(long = "validator", value_name = "bb_ADDR[:STAKE]", required = true)]
    pub validators: Vec<ValidatorSpec>,
    /// An account funded at genesis, bb_ADDRESS:BALANCE (repeatable).
    #[arg(long = "account", value_name = "bb_ADDR:BALANCE")]
    pub accounts: Vec<AccountSpec>,
    /// The network's name (part of its genesis hash).
    #[arg(long, value_name = "NAME", default_value = "testnet")]
    pub network: String,
    /// Slot length in milliseconds.
    #[arg(long = "slot-ms", default_value_t = 400)]
    pub slot_ms: u64,
    /// Slots per epoch (a multiple of 4).
    #[arg(long = "epoch-slots", default_value_t = 32)]
    pub epoch_slots: u64,
    /// Share of an offender's stake cut at the epoch boundary after its offense is
    /// recorded, in basis points (1000 = 10 %).
    #[arg(long = "slash-penalty-bps", value_name = "BPS", default_value_t = bb_core::DEFAULT_SLASH_PENALTY_BPS)]
    pub slash_penalty_bps: u32,
    /// Seconds from now until slot 0 starts: time to copy the file to every host and
    /// start the validators.
    #[arg(long = "start-in", value_name = "SECS", default_value_t = 300)]
    pub start_in: u64,
    /// Where to write the genesis.
    #[arg(
        short = 'o',
        long = "out",
        value_name = "FILE",
        default_value = "genesis.json"
    )]
    pub out: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `--validator bb_ADDRESS[:STAKE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSpec {
    pub identity: Pubkey,
    pub stake: u64,
}

/// `--account bb_ADDRESS:BALANCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    pub address: Pubkey,
    pub balance: u64,
}

fn parse_address(s: &str, whole: &str) -> Result<Pubkey, String> {
    s.trim().parse().map_err(|e| {
        if s == whole {
            format!("{s:?} is not a bb_ address ({e})")
        } else {
            format!("{s:?} in {whole:?} is not a bb_ address ({e})")
        }
    })
}

fn parse_amount(s: &str, what: &str, whole: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} in {whole:?} is not a {what} (a whole number)"))
}

impl FromStr for ValidatorSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ValidatorSpec, String> {
        // Base58 has no ':', so the first one ends the address.
        let (address, stake) = match s.split_once(':') {
            Some((a, stake)) => (a, Some(stake)),
            None => (s, None),
        };
        Ok(ValidatorSpec {
            identity: parse_address(address, s)?,
            stake: match stake {
                Some(stake) => parse_amount(stake, "stake", s)?,
                None => DEFAULT_STAKE,
            },
        })
    }
}

impl FromStr for AccountSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<AccountSpec, String> {
        let (address, balance) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not bb_ADDRESS:BALANCE"))?;
        Ok(AccountSpec {
            address: parse_address(address, s)?,
            balance: parse_amount(balance, "balance", s)?,
        })
    }
}

impl GenesisArgs {
    /// The genesis these arguments describe, slot 0 starting `start_in` seconds after
    /// `now_ms`; checked by the rules every node applies.
    fn genesis(&self, now_ms: u64) -> anyhow::Result<Genesis> {
        if self.start_in > MAX_START_IN_SECS {
            bail!(
                "--start-in {} is over 30 days (it counts seconds)",
                self.start_in
            );
        }
        let genesis = Genesis {
            version: GENESIS_VERSION,
            network: self.network.clone(),
            creation_time_ms: now_ms.saturating_add(self.start_in * 1000),
            slot_ms: self.slot_ms,
            ticks_per_slot: TICKS_PER_SLOT,
            hashes_per_tick: HASHES_PER_TICK,
            slots_per_epoch: self.epoch_slots,
            leader_slots_per_rotation: LEADER_SLOTS_PER_ROTATION,
            slash_penalty_bps: self.slash_penalty_bps,
            validators: self
                .validators
                .iter()
                .map(|v| GenesisValidator {
                    identity: v.identity,
                    stake: v.stake,
                })
                .collect(),
            accounts: self
                .accounts
                .iter()
                .map(|a| GenesisAccount {
                    address: a.address,
                    balance: a.balance,
                })
                .collect(),
        };
        genesis.validate()?;
        Ok(genesis)
    }
}

#[derive(Debug, Serialize)]
struct GenesisReport {
    path: PathBuf,
    genesis_hash: String,
    network: String,
    /// Start of slot 0, milliseconds since the Unix epoch.
    creation_time_ms: u64,
    slot_ms: u64,
    slots_per_epoch: u64,
    total_stake: u64,
    validators: Vec<ValidatorRow>,
    accounts: usize,
}

#[derive(Debug, Serialize)]
struct ValidatorRow {
    identity: String,
    stake: u64,
    /// The libp2p peer id the validator's key gives it (for `--bootstrap .../p2p/ID`).
    peer_id: String,
}

pub fn genesis(out: Output, a: GenesisArgs) -> anyhow::Result<u8> {
    let genesis = a.genesis(now_ms())?;
    let report = GenesisReport {
        path: a.out.clone(),
        genesis_hash: genesis.hash().to_string(),
        network: genesis.network.clone(),
        creation_time_ms: genesis.creation_time_ms,
        slot_ms: genesis.slot_ms,
        slots_per_epoch: genesis.slots_per_epoch,
        total_stake: genesis.total_stake(),
        validators: genesis
            .validators
            .iter()
            .map(|v| {
                Ok(ValidatorRow {
                    identity: v.identity.to_address(),
                    stake: v.stake,
                    peer_id: bb_net::peer_id_of(&v.identity)
                        .with_context(|| format!("{} is not a valid Ed25519 key", v.identity))?
                        .to_string(),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        accounts: genesis.accounts.len(),
    };
    let text = genesis.to_json_pretty() + "\n";
    write_new(&a.out, text.as_bytes(), a.force)?;
    out.emit(&report, || render(&report, a.start_in));
    Ok(EXIT_OK)
}

/// Writes `bytes` to `path` whole (a crash leaves the old file or the new one), refusing
/// to replace an existing file unless `force`.
fn write_new(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("{} is a directory", path.display());
    }
    if !force && path.exists() {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    write_atomically(path, bytes)
}

fn render(r: &GenesisReport, start_in: u64) -> String {
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    let mut text = format!(
        "Wrote {}: network {:?}, {} (total stake {}), {}\n",
        r.path.display(),
        r.network,
        plural(r.validators.len(), "validator"),
        r.total_stake,
        plural(r.accounts, "funded account"),
    );
    text += &format!("genesis hash: {}\n", r.genesis_hash);
    text += &format!(
        "slot 0 starts at {} (in {start_in} s; {} ms slots, {}-slot epochs): start the validators before then\n",
        utc(r.creation_time_ms),
        r.slot_ms,
        r.slots_per_epoch
    );
    text += "validators (peer id for the others' --bootstrap /ip4/HOST/tcp/PORT/p2p/PEER_ID):\n";
    for v in &r.validators {
        text += &format!(
            "  {}  stake {}  peer id {}\n",
            v.identity, v.stake, v.peer_id
        );
    }
    text += &format!(
        "Next: copy {} to every host, byte for byte, and start each validator with it.",
        r.path.display()
    );
    text
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time in milliseconds.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (mut days, rem) = (secs / 86_400, secs % 86_400);
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in lengths {
        if days < length {
            break;
        }
        days -= length;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02} {:02}:{:02}:{:02} UTC",
        days + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::Keypair;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: GenesisArgs,
    }

    fn address(i: u8) -> String {
        Keypair::from_seed(&[i; 32]).pubkey().to_address()
    }

    fn args(extra: &[&str]) -> Result<GenesisArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("genesis").chain(extra.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn a_validator_spec_takes_an_optional_stake() {
        let a = address(1);
        let with: ValidatorSpec = format!("{a}:250").parse().unwrap();
        assert_eq!(with.identity.to_address(), a);
        assert_eq!(with.stake, 250);
        let without: ValidatorSpec = a.parse().unwrap();
        assert_eq!(without.stake, DEFAULT_STAKE);
    }

    #[test]
    fn bad_specs_are_refused_naming_the_part_at_fault() {
        let a = address(1);
        let err = "bb_notanaddress:10".parse::<ValidatorSpec>().unwrap_err();
        assert!(err.contains("not a bb_ address"), "{err}");
        let err = "5Hq:10".parse::<ValidatorSpec>().unwrap_err();
        assert!(err.contains("not a bb_ address"), "{err}");
        let err = format!("{a}:lots").parse::<ValidatorSpec>().unwrap_err();
        assert!(err.contains("\"lots\"") && err.contains("stake"), "{err}");
        let err = format!("{a}:-5").parse::<ValidatorSpec>().unwrap_err();
        assert!(err.contains("stake"), "{err}");
        let err = a.parse::<AccountSpec>().unwrap_err();
        assert!(err.contains("bb_ADDRESS:BALANCE"), "{err}");
        let err = format!("{a}:1e9").parse::<AccountSpec>().unwrap_err();
        assert!(err.contains("balance"), "{err}");
    }

    #[test]
    fn the_genesis_has_the_given_validators_accounts_and_start() {
        let (v1, v2, acc) = (address(1), address(2), address(3));
        let a = args(&[
            "--validator",
            &format!("{v1}:300"),
            "--validator",
            &v2,
            "--account",
            &format!("{acc}:5000"),
            "--network",
            "lab",
            "--slot-ms",
            "200",
            "--epoch-slots",
            "64",
            "--start-in",
            "90",
        ])
        .unwrap();
        let g = a.genesis(1_000_000).unwrap();
        assert_eq!(g.network, "lab");
        assert_eq!(g.creation_time_ms, 1_000_000 + 90_000);
        assert_eq!((g.slot_ms, g.slots_per_epoch), (200, 64));
        assert_eq!(
            (
                g.ticks_per_slot,
                g.hashes_per_tick,
                g.leader_slots_per_rotation
            ),
            (TICKS_PER_SLOT, HASHES_PER_TICK, LEADER_SLOTS_PER_ROTATION)
        );
        assert_eq!(g.slash_penalty_bps, bb_core::DEFAULT_SLASH_PENALTY_BPS);
        let stakes: Vec<(String, u64)> = g
            .validators
            .iter()
            .map(|v| (v.identity.to_address(), v.stake))
            .collect();
        assert_eq!(stakes, vec![(v1, 300), (v2, DEFAULT_STAKE)]);
        assert_eq!(g.accounts.len(), 1);
        assert_eq!(g.accounts[0].address.to_address(), acc);
        assert_eq!(g.accounts[0].balance, 5000);
        // What is written is what every node will read, with the same hash.
        let read = Genesis::from_json(g.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(read.hash(), g.hash());
    }

    #[test]
    fn genesis_rules_are_checked_before_anything_is_written() {
        let v1 = address(1);
        let refused = |extra: &[&str]| {
            let mut all = vec!["--validator", &v1];
            all.extend_from_slice(extra);
            args(&all).unwrap().genesis(0).unwrap_err().to_string()
        };
        assert!(refused(&["--validator", &v1]).contains("listed twice"));
        assert!(refused(&["--epoch-slots", "30"]).contains("slots_per_epoch"));
        assert!(refused(&["--slot-ms", "5"]).contains("slot_ms"));
        assert!(refused(&["--slash-penalty-bps", "20000"]).contains("slash_penalty_bps"));
        assert!(refused(&["--network", ""]).contains("network name"));
        assert!(refused(&["--start-in", "86400000"]).contains("30 days"));
        let zero = format!("{}:0", address(2));
        assert!(refused(&["--validator", &zero]).contains("zero stake"));
        // At least one validator is needed.
        assert!(args(&["--network", "x"]).is_err());
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, b"old").unwrap();
        let err = write_new(&path, b"new", false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_new(&path, b"new", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(write_new(dir.path(), b"x", true).is_err());
    }

    #[test]
    fn utc_renders_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399_000), "2100-02-28 23:59:59 UTC");
    }
}
