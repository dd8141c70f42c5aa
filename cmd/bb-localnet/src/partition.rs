//! `partition --groups 0,1,2/3,4,5 --for SECONDS`: cut the network between groups of
//! nodes, and let it heal by itself.
//!
//! Each node gets a block list (`LEDGER/blocklist.json`, which the validator re-reads as
//! it changes) naming every node of the other groups until the partition's end: their
//! libp2p connections are closed and refused and their shreds dropped, on both sides. Nodes
//! not named in any group keep talking to everyone. The lists expire on their own, so the
//! network heals even if nothing runs at that time; `--heal` ends a partition early.

use std::collections::BTreeSet;
use std::str::FromStr;

use anyhow::{Context, bail};
use bb_cli::{EXIT_OK, Output};
use serde::Serialize;

use crate::DirArg;
use crate::manifest::{Manifest, now_ms, write_atomically};

/// The block list's name in a ledger directory (read by bb-validator).
const BLOCKLIST_FILE: &str = "blocklist.json";

pub const PARTITION_HELP: &str = "\
GROUPS are node indexes split by '/', nodes by ','; a node may be in one group only, and
nodes not named keep talking to every group.

Examples:
  bb-localnet partition --groups 0,1,2/3,4,5 --for 30
  bb-localnet partition --groups 0/1 --for 10 --dir /tmp/net
  bb-localnet partition --heal";

#[derive(clap::Args, Debug)]
pub struct PartitionArgs {
    /// The groups, e.g. 0,1,2/3,4,5.
    #[arg(long, value_name = "GROUPS", required_unless_present = "heal")]
    pub groups: Option<Groups>,
    /// How long the partition lasts, in seconds.
    #[arg(long = "for", value_name = "SECONDS", required_unless_present = "heal", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: Option<u64>,
    /// End any partition now.
    #[arg(long, conflicts_with_all = ["groups", "duration"])]
    pub heal: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

/// Disjoint groups of node indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups(pub Vec<Vec<usize>>);

impl FromStr for Groups {
    type Err = String;

    fn from_str(s: &str) -> Result<Groups, String> {
        let mut seen = BTreeSet::new();
        let mut groups = Vec::new();
        for part in s.split('/') {
            let mut group = Vec::new();
            for n in part.split(',') {
                let i: usize = n
                    .trim()
                    .parse()
                    .map_err(|_| format!("{n:?} in {s:?} is not a node index"))?;
                if !seen.insert(i) {
                    return Err(format!("node {i} is in more than one group of {s:?}"));
                }
                group.push(i);
            }
            groups.push(group);
        }
        if groups.len() < 2 {
            return Err(format!(
                "{s:?} names one group; a partition needs two or more, split by '/'"
            ));
        }
        Ok(Groups(groups))
    }
}

#[derive(Debug, Serialize)]
struct Report {
    groups: Vec<Vec<usize>>,
    /// When the partition heals by itself, ms since the Unix epoch (absent for --heal).
    heals_at_ms: Option<u64>,
}

pub fn partition(out: Output, a: PartitionArgs) -> anyhow::Result<u8> {
    let m = Manifest::load(&a.dir.dir)?;
    let (groups, until) = match (a.heal, a.groups, a.duration) {
        (true, _, _) => (Vec::new(), None),
        (false, Some(g), Some(secs)) => (g.0, Some(now_ms() + secs * 1000)),
        _ => bail!("--groups and --for are needed (or --heal)"),
    };
    for i in groups.iter().flatten() {
        m.node(*i)?;
    }
    for node in &m.nodes {
        let mine = groups.iter().position(|g| g.contains(&node.index));
        let blocked: Vec<serde_json::Value> = match (mine, until) {
            (Some(g), Some(until)) => groups
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != g)
                .flat_map(|(_, other)| other.iter())
                .map(|j| serde_json::json!({ "identity": m.nodes[*j].identity, "until_ms": until }))
                .collect(),
            _ => Vec::new(),
        };
        if blocked.is_empty() && !node.ledger.join(BLOCKLIST_FILE).exists() {
            continue;
        }
        std::fs::create_dir_all(&node.ledger)
            .with_context(|| format!("cannot create {}", node.ledger.display()))?;
        let json = serde_json::json!({ "peers": blocked });
        write_atomically(
            &node.ledger.join(BLOCKLIST_FILE),
            serde_json::to_string_pretty(&json)?.as_bytes(),
        )?;
    }
    let report = Report {
        groups: groups.clone(),
        heals_at_ms: until,
    };
    out.emit(&report, || match until {
        Some(until) => format!(
            "partitioned {} for {} s; it heals by itself (or run `bb-localnet partition --heal`)",
            groups
                .iter()
                .map(|g| g
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(","))
                .collect::<Vec<_>>()
                .join(" | "),
            until.saturating_sub(now_ms()).div_ceil(1000)
        ),
        None => "healed: every node may talk to every other again".into(),
    });
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_and_bad_ones_are_named() {
        assert_eq!(
            "0,1,2/3,4,5".parse::<Groups>(),
            Ok(Groups(vec![vec![0, 1, 2], vec![3, 4, 5]]))
        );
        assert!("0,1".parse::<Groups>().unwrap_err().contains("one group"));
        assert!("0,1/1,2".parse::<Groups>().unwrap_err().contains("node 1"));
        assert!("0/x".parse::<Groups>().unwrap_err().contains("\"x\""));
    }
}
