//! `schedule [--epoch E]`: the leaders of an epoch as runs of slots, and how many slots
//! each leader has.

use std::collections::BTreeMap;

use anyhow::Context as _;
use bb_cli::{EXIT_OK, Output};
use bb_rpc::pb::GetLeaderScheduleResponse;
use serde::Serialize;

use crate::table::{self, percent};
use crate::target::Target;

#[derive(Debug, Serialize)]
pub struct ScheduleReport {
    pub node: String,
    pub epoch: u64,
    pub first_slot: u64,
    pub slots_per_epoch: u64,
    pub slots_per_rotation: u64,
    /// The node's current slot, if it falls in this epoch.
    pub current_slot: Option<u64>,
    pub runs: Vec<Run>,
    pub leaders: Vec<LeaderSlots>,
    /// What is wrong with the schedule's shape (gaps, overlaps), if anything.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub start_slot: u64,
    pub slot_count: u64,
    pub leader: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderSlots {
    pub leader: String,
    pub slots: u64,
    pub share: f64,
}

/// Slots per leader, most first.
pub fn leader_counts(runs: &[Run], slots_per_epoch: u64) -> Vec<LeaderSlots> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for r in runs {
        let c = counts.entry(&r.leader).or_default();
        *c = c.saturating_add(r.slot_count);
    }
    let mut out: Vec<LeaderSlots> = counts
        .into_iter()
        .map(|(leader, slots)| LeaderSlots {
            leader: leader.to_string(),
            slots,
            share: table::share(slots, slots_per_epoch),
        })
        .collect();
    out.sort_by(|a, b| b.slots.cmp(&a.slots).then(a.leader.cmp(&b.leader)));
    out
}

/// Whether the runs cover exactly the epoch's slots, in order, as the API promises.
pub fn shape_problems(s: &GetLeaderScheduleResponse) -> Vec<String> {
    let mut problems = Vec::new();
    let mut next = s.first_slot;
    for r in &s.runs {
        if r.start_slot != next {
            problems.push(format!(
                "a run starts at slot {}, expected {next}",
                r.start_slot
            ));
        }
        if r.slot_count == 0 {
            problems.push(format!("the run at slot {} is empty", r.start_slot));
        }
        next = r.start_slot.saturating_add(r.slot_count);
    }
    let end = s.first_slot.saturating_add(s.slots_per_epoch);
    if next != end {
        problems.push(format!(
            "the runs end at slot {next}, the epoch at slot {end}"
        ));
    }
    problems
}

pub async fn run(out: Output, target: &Target, epoch: Option<u64>) -> anyhow::Result<u8> {
    let client = target.connect().await?;
    let (schedule, status) = futures::join!(client.schedule(epoch), client.status());
    let s = match (schedule, epoch) {
        (Ok(s), _) => s,
        (Err(e), Some(epoch)) if e.is_not_found() => {
            anyhow::bail!("node has no leader schedule for epoch {epoch}")
        }
        (Err(e), _) => return Err(e).context("leader schedule"),
    };
    let problems = shape_problems(&s);
    let end = s.first_slot.saturating_add(s.slots_per_epoch);
    let current_slot = status
        .ok()
        .map(|st| st.slot)
        .filter(|slot| (s.first_slot..end).contains(slot));
    let runs: Vec<Run> = s
        .runs
        .iter()
        .map(|r| Run {
            start_slot: r.start_slot,
            slot_count: r.slot_count,
            leader: r.leader.clone(),
        })
        .collect();
    let report = ScheduleReport {
        node: target.selected.label(),
        epoch: s.epoch,
        first_slot: s.first_slot,
        slots_per_epoch: s.slots_per_epoch,
        slots_per_rotation: s.slots_per_rotation,
        current_slot,
        leaders: leader_counts(&runs, s.slots_per_epoch),
        runs,
        problems,
    };
    out.emit(&report, || render(&report));
    Ok(EXIT_OK)
}

pub fn render(r: &ScheduleReport) -> String {
    let last = r
        .first_slot
        .saturating_add(r.slots_per_epoch)
        .saturating_sub(1);
    let mut text = format!(
        "epoch {}: slots {}..={} ({} slots, {} per rotation)\n",
        r.epoch, r.first_slot, last, r.slots_per_epoch, r.slots_per_rotation
    );
    let mut runs = table::table(&["start slot", "slots", "leader"], &[0, 1]);
    for run in &r.runs {
        let now = r.current_slot.filter(|s| {
            (run.start_slot..run.start_slot.saturating_add(run.slot_count)).contains(s)
        });
        let start = match now {
            Some(s) => format!("{} (now: {s})", run.start_slot),
            None => run.start_slot.to_string(),
        };
        runs.add_row(vec![start, run.slot_count.to_string(), run.leader.clone()]);
    }
    text.push_str(&runs.to_string());
    let mut leaders = table::table(&["leader", "slots", "share"], &[1, 2]);
    for l in &r.leaders {
        leaders.add_row(vec![
            l.leader.clone(),
            l.slots.to_string(),
            percent(l.slots, r.slots_per_epoch),
        ]);
    }
    text.push('\n');
    text.push_str(&leaders.to_string());
    for p in &r.problems {
        text.push_str(&format!("\nwarning: the node's schedule is malformed: {p}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use bb_rpc::pb::LeaderRun;

    use super::*;

    fn run(start: u64, count: u64, leader: &str) -> Run {
        Run {
            start_slot: start,
            slot_count: count,
            leader: leader.into(),
        }
    }

    #[test]
    fn slots_are_counted_per_leader() {
        let runs = [
            run(32, 4, "a"),
            run(36, 8, "b"),
            run(44, 4, "a"),
            run(48, 16, "c"),
        ];
        let counts = leader_counts(&runs, 32);
        assert_eq!(counts[0].leader, "c");
        assert_eq!(counts[0].slots, 16);
        assert_eq!((counts[1].leader.as_str(), counts[1].slots), ("a", 8));
        assert!((counts[2].share - 0.25).abs() < 1e-9);
        let report = ScheduleReport {
            node: "node 0".into(),
            epoch: 1,
            first_slot: 32,
            slots_per_epoch: 32,
            slots_per_rotation: 4,
            current_slot: Some(38),
            runs: runs.to_vec(),
            leaders: counts,
            problems: vec![],
        };
        let text = render(&report);
        assert!(text.starts_with("epoch 1: slots 32..=63"), "{text}");
        assert!(text.contains("36 (now: 38)"), "{text}");
        assert!(text.contains("50.0%"), "{text}");
    }

    #[test]
    fn gaps_and_short_schedules_are_named() {
        let mut s = GetLeaderScheduleResponse {
            epoch: 0,
            first_slot: 0,
            slots_per_epoch: 8,
            slots_per_rotation: 4,
            runs: vec![
                LeaderRun {
                    leader: "a".into(),
                    start_slot: 0,
                    slot_count: 4,
                },
                LeaderRun {
                    leader: "b".into(),
                    start_slot: 4,
                    slot_count: 4,
                },
            ],
        };
        assert!(shape_problems(&s).is_empty());
        s.runs[1].start_slot = 5;
        let p = shape_problems(&s);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("starts at slot 5, expected 4"));
    }
}
