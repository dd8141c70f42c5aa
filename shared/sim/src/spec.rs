//! The simulator's fault specifications and their text syntax (as typed on the command line).
//!
//! - Partition: `GROUPS@FROM-TO`, groups of node indices split by `/`, nodes by `,`, slots
//!   `FROM` (inclusive) to `TO` (exclusive): `0,1/2,3@20-60`. Nodes not named form one
//!   more group together.
//! - Crash: `NODE@AT[-RESTART]`: node `NODE` stops at slot `AT` and, if given, comes back
//!   at slot `RESTART` with what it had persisted (its ledger and tower): `2@30-60`.
//! - Latency: `A-B` milliseconds, uniform per message: `50-150`.
//! - Fault: `NODE=KIND[:ARG]`, a byzantine node for the whole run: `3=equivocate`,
//!   `1=flood:1000`. Kinds: `double-vote`, `equivocate`, `withhold-shreds`, `garbage`,
//!   `flood:RATE` (see [`FaultKind`]).

use std::str::FromStr;

use bb_core::Slot;
use serde::Serialize;

/// A network split for a range of slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionSpec {
    pub groups: Vec<Vec<usize>>,
    pub from: Slot,
    pub to: Slot,
}

/// A node stopping (and maybe restarting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CrashSpec {
    pub node: usize,
    pub at: Slot,
    pub restart: Option<Slot>,
}

/// A latency range in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencyRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

/// A byzantine behaviour, as `bb-localnet up --fault` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Every vote is followed by a signed twin for another block of the same slot.
    DoubleVote,
    /// As leader, sign a second version of each block (built on the parent's parent) and
    /// send each peer one of the two at random.
    Equivocate,
    /// As leader, send nobody the block (it stands for too few shreds to rebuild it); it
    /// is still served to repair requests, as a real node's ledger would.
    WithholdShreds,
    /// Each slot, send every peer a vote with a broken signature and a copy of a block
    /// with a broken signature.
    Garbage,
    /// Each slot, send every peer `RATE` per second of copies of the latest vote.
    Flood(u32),
}

/// One node running one fault for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FaultSpec {
    pub node: usize,
    pub kind: FaultKind,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::DoubleVote => write!(f, "double-vote"),
            FaultKind::Equivocate => write!(f, "equivocate"),
            FaultKind::WithholdShreds => write!(f, "withhold-shreds"),
            FaultKind::Garbage => write!(f, "garbage"),
            FaultKind::Flood(rate) => write!(f, "flood:{rate}"),
        }
    }
}

/// Why a spec did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(String);

impl SpecError {
    pub fn new(message: String) -> Self {
        SpecError(message)
    }
}

fn num<T: FromStr>(s: &str, what: &str, spec: &str) -> Result<T, SpecError> {
    s.trim()
        .parse()
        .map_err(|_| SpecError(format!("{what} '{s}' in '{spec}' is not a number")))
}

fn slot_range(s: &str, spec: &str) -> Result<(Slot, Slot), SpecError> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| SpecError(format!("'{spec}': slots must be FROM-TO, like 20-60")))?;
    let (a, b) = (num(a, "slot", spec)?, num(b, "slot", spec)?);
    if a >= b {
        return Err(SpecError(format!("'{spec}': FROM must be below TO")));
    }
    Ok((a, b))
}

impl FromStr for PartitionSpec {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let (groups, slots) = spec.split_once('@').ok_or_else(|| {
            SpecError(format!(
                "'{spec}': a partition is GROUPS@FROM-TO, like 0,1/2,3@20-60"
            ))
        })?;
        let (from, to) = slot_range(slots, spec)?;
        let mut parsed = Vec::new();
        for g in groups.split('/') {
            let nodes: Result<Vec<usize>, SpecError> =
                g.split(',').map(|n| num(n, "node", spec)).collect();
            parsed.push(nodes?);
        }
        if parsed.len() < 2 && parsed.iter().all(|g| g.is_empty()) {
            return Err(SpecError(format!("'{spec}': name at least one group")));
        }
        Ok(PartitionSpec {
            groups: parsed,
            from,
            to,
        })
    }
}

impl FromStr for CrashSpec {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let (node, slots) = spec.split_once('@').ok_or_else(|| {
            SpecError(format!(
                "'{spec}': a crash is NODE@AT[-RESTART], like 2@30-60"
            ))
        })?;
        let node = num(node, "node", spec)?;
        let (at, restart) = match slots.split_once('-') {
            Some(_) => {
                let (a, r) = slot_range(slots, spec)?;
                (a, Some(r))
            }
            None => (num(slots, "slot", spec)?, None),
        };
        Ok(CrashSpec { node, at, restart })
    }
}

impl FromStr for LatencyRange {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let (a, b) = match spec.split_once('-') {
            Some((a, b)) => (num(a, "latency", spec)?, num(b, "latency", spec)?),
            None => {
                let v = num(spec, "latency", spec)?;
                (v, v)
            }
        };
        if a > b {
            return Err(SpecError(format!("latency '{spec}': A must not exceed B")));
        }
        Ok(LatencyRange {
            min_ms: a,
            max_ms: b,
        })
    }
}

impl FromStr for FaultSpec {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let (node, kind) = spec.split_once('=').ok_or_else(|| {
            SpecError(format!(
                "'{spec}': a fault is NODE=KIND[:ARG], like 3=equivocate or 1=flood:1000"
            ))
        })?;
        let node = num(node, "node", spec)?;
        let (name, arg) = kind.split_once(':').unwrap_or((kind, ""));
        let no_arg = |k: FaultKind| {
            if arg.is_empty() {
                Ok(k)
            } else {
                Err(SpecError(format!("'{spec}': {name} takes no argument")))
            }
        };
        let kind = match name {
            "double-vote" => no_arg(FaultKind::DoubleVote)?,
            "equivocate" => no_arg(FaultKind::Equivocate)?,
            "withhold-shreds" => no_arg(FaultKind::WithholdShreds)?,
            "garbage" => no_arg(FaultKind::Garbage)?,
            "flood" => {
                let rate: u32 = num(arg, "flood rate", spec)?;
                if rate == 0 || rate > 100_000 {
                    return Err(SpecError(format!(
                        "'{spec}': flood rate must be 1 to 100000 per second"
                    )));
                }
                FaultKind::Flood(rate)
            }
            other => {
                return Err(SpecError(format!(
                    "'{spec}': unknown fault '{other}' (double-vote, equivocate, withhold-shreds, garbage, flood:RATE)"
                )));
            }
        };
        Ok(FaultSpec { node, kind })
    }
}

impl PartitionSpec {
    /// Checks node indices against the cluster size.
    pub fn validate(&self, nodes: usize) -> Result<(), SpecError> {
        for n in self.groups.iter().flatten() {
            if *n >= nodes {
                return Err(SpecError(format!(
                    "partition names node {n}, but there are {nodes} nodes"
                )));
            }
        }
        Ok(())
    }

    /// The group number of each node while the partition holds (unnamed nodes share one).
    pub fn group_of(&self, node: usize) -> usize {
        self.groups
            .iter()
            .position(|g| g.contains(&node))
            .unwrap_or(self.groups.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let p: PartitionSpec = "0,1/2,3@20-60".parse().unwrap();
        assert_eq!(p.groups, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!((p.from, p.to), (20, 60));
        assert_eq!(p.group_of(4), 2);
        let c: CrashSpec = "2@30-60".parse().unwrap();
        assert_eq!(
            c,
            CrashSpec {
                node: 2,
                at: 30,
                restart: Some(60)
            }
        );
        let c: CrashSpec = "1@5".parse().unwrap();
        assert_eq!(c.restart, None);
        let l: LatencyRange = "50-150".parse().unwrap();
        assert_eq!((l.min_ms, l.max_ms), (50, 150));
        let f: FaultSpec = "3=equivocate".parse().unwrap();
        assert_eq!((f.node, f.kind), (3, FaultKind::Equivocate));
        let f: FaultSpec = "1=flood:1000".parse().unwrap();
        assert_eq!(f.kind, FaultKind::Flood(1000));
        for k in ["double-vote", "withhold-shreds", "garbage", "flood:7"] {
            let f: FaultSpec = format!("0={k}").parse().unwrap();
            assert_eq!(f.kind.to_string(), k);
        }
    }

    #[test]
    fn bad_specs_say_why() {
        assert!(
            "0,1"
                .parse::<PartitionSpec>()
                .unwrap_err()
                .to_string()
                .contains("GROUPS@FROM-TO")
        );
        assert!(
            "0,x@1-2"
                .parse::<PartitionSpec>()
                .unwrap_err()
                .to_string()
                .contains("'x'")
        );
        assert!("0@5-5".parse::<PartitionSpec>().is_err());
        assert!("2".parse::<CrashSpec>().is_err());
        assert!("9-1".parse::<LatencyRange>().is_err());
        for bad in [
            "equivocate",
            "1=",
            "1=nap",
            "1=garbage:2",
            "1=flood",
            "1=flood:0",
            "x=garbage",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }
}
