//! Hundreds of seeded clusters with faults: no two honest nodes ever root conflicting
//! blocks, and finalization resumes once the faults end.

use bb_sim::{CrashSpec, FaultKind, FaultSpec, LatencyRange, PartitionSpec, SimConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A cluster of 4-16 nodes with every kind of fault, in windows that overlap at random
/// within the first 150 slots: node 0 holds 1/3 of the stake and is offline for a while,
/// one partition splits the others and heals, one other node crashes and restarts from
/// its ledger, and up to 20% of messages are lost throughout. Then 250 fault-free slots.
fn faulty_config(seed: u64) -> SimConfig {
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes = rng.random_range(4..=16usize);
    let others = nodes - 1;
    // Node 0 gets exactly half of the others' total: a third of all stake.
    let mut stakes = vec![2u64; nodes];
    stakes[0] = others as u64;
    let mut members: Vec<usize> = (1..nodes).collect();
    for i in (1..members.len()).rev() {
        let j = rng.random_range(0..=i);
        members.swap(i, j);
    }
    let cut = rng.random_range(1..members.len());
    let from = rng.random_range(10..100u64);
    let partition = PartitionSpec {
        groups: vec![members[..cut].to_vec(), members[cut..].to_vec()],
        from,
        to: from + rng.random_range(10..50u64),
    };
    let crash_at = rng.random_range(10..110u64);
    let crash = CrashSpec {
        node: rng.random_range(1..nodes),
        at: crash_at,
        restart: Some(crash_at + rng.random_range(5..40u64)),
    };
    let offline_at = rng.random_range(1..100u64);
    let offline = CrashSpec {
        node: 0,
        at: offline_at,
        restart: Some(offline_at + rng.random_range(10..50u64)),
    };
    SimConfig {
        loss: rng.random_range(0.0..0.2),
        latency: LatencyRange {
            min_ms: 20,
            max_ms: rng.random_range(20..150u64),
        },
        partitions: vec![partition],
        crashes: vec![offline, crash],
        stakes: Some(stakes),
        txs_per_block: 1,
        ..SimConfig::new(nodes, 400, seed)
    }
}

/// Runs `check` on every seed of the range in the environment variable `var` (`A..B`, to
/// replay a failure or to soak longer), else of `default`, split over two threads, and
/// fails with every complaint it returned.
fn check_seeds(var: &str, default: std::ops::Range<u64>, check: fn(u64) -> Vec<String>) {
    let range = std::env::var(var).ok().and_then(|r| {
        let (a, b) = r.split_once("..")?;
        Some(a.parse::<u64>().ok()?..b.parse::<u64>().ok()?)
    });
    let seeds: Vec<u64> = range.unwrap_or(default).collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .flat_map(|&seed| check(seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_safety_violation_and_finalization_resumes_across_hundreds_of_faulty_seeds() {
    check_seeds("BB_SIM_SEEDS", 0..200, |seed| {
        let mut bad = Vec::new();
        let config = faulty_config(seed);
        let report = bb_sim::run(config.clone()).expect("valid config");
        if !report.safety_violations.is_empty() {
            bad.push(format!(
                "seed {seed}: safety {:?}",
                report.safety_violations
            ));
        }
        if !report.finalized_after_faults {
            bad.push(format!(
                "seed {seed}: no finalization after faults ended at {} ({} nodes)\n{}",
                report.last_fault_end_slot,
                config.nodes,
                report.to_text()
            ));
        }
        bad
    });
}

#[test]
fn same_config_same_report() {
    let a = bb_sim::run(faulty_config(7)).unwrap();
    let b = bb_sim::run(faulty_config(7)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_text(), b.to_text());
    let c = bb_sim::run(faulty_config(8)).unwrap();
    assert_ne!(a.digest, c.digest);
}

#[test]
fn a_healthy_cluster_finalizes_with_low_latency() {
    let r = bb_sim::run(SimConfig::new(4, 120, 1)).unwrap();
    assert!(r.safety_violations.is_empty());
    assert_eq!(r.slots_skipped, 0, "{}", r.to_text());
    assert!(r.highest_root >= 60, "{}", r.to_text());
    // Confirmation within about a slot and a half of the slot's start.
    assert!(r.confirmation.median_slots <= 2.0, "{}", r.to_text());
    assert!(r.nodes.iter().all(|n| n.finalized >= 60), "{}", r.to_text());
}

#[test]
fn a_cluster_without_two_thirds_never_finalizes_during_the_split() {
    // 3/3 split of 6 equal nodes for the whole run: neither side reaches 2/3.
    let mut c = SimConfig::new(6, 150, 5);
    c.partitions.push("0,1,2/3,4,5@1-151".parse().unwrap());
    let r = bb_sim::run(c).unwrap();
    assert!(r.safety_violations.is_empty());
    assert!(r.nodes.iter().all(|n| n.finalized == 0), "{}", r.to_text());
}

#[test]
fn a_crashed_leader_costs_only_its_slots() {
    let mut c = SimConfig::new(4, 160, 9);
    c.crashes.push("1@40".parse().unwrap());
    let r = bb_sim::run(c).unwrap();
    assert!(r.safety_violations.is_empty());
    assert!(
        r.finalized_after_faults
            || r.nodes
                .iter()
                .filter(|n| n.alive_at_end)
                .all(|n| n.finalized > 60),
        "{}",
        r.to_text()
    );
}

#[test]
fn a_node_stopped_at_slot_zero_never_votes_and_its_slots_are_skipped() {
    let mut c = SimConfig::new(4, 120, 3);
    c.crashes.push("2@0".parse().unwrap());
    let r = bb_sim::run(c).unwrap();
    let down = &r.nodes[2];
    assert!(down.crashed && !down.alive_at_end, "{}", r.to_text());
    assert_eq!(down.votes_cast, 0, "{}", r.to_text());
    assert!(r.slots_skipped > 0, "its leader slots: {}", r.to_text());
    assert!(r.safety_violations.is_empty());
    assert!(
        r.nodes
            .iter()
            .filter(|n| n.alive_at_end)
            .all(|n| n.finalized > 60),
        "{}",
        r.to_text()
    );
}

/// A cluster of 4-8 equal-stake nodes where one node is byzantine for the whole run (one
/// of every fault kind, by seed), with up to 5% loss and latency up to 150 ms.
fn byzantine_config(seed: u64) -> SimConfig {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xb12a);
    let nodes = rng.random_range(4..=8usize);
    let kinds = [
        FaultKind::Equivocate,
        FaultKind::DoubleVote,
        FaultKind::WithholdShreds,
        FaultKind::Garbage,
        FaultKind::Flood(500),
    ];
    let kind = kinds[(seed % kinds.len() as u64) as usize];
    SimConfig {
        loss: rng.random_range(0.0..0.05),
        latency: LatencyRange {
            min_ms: 20,
            max_ms: rng.random_range(20..150u64),
        },
        faults: vec![FaultSpec {
            node: rng.random_range(0..nodes),
            kind,
        }],
        txs_per_block: 1,
        ..SimConfig::new(nodes, 200, seed)
    }
}

#[test]
fn one_byzantine_node_of_any_kind_breaks_neither_safety_nor_finality() {
    check_seeds("BB_SIM_BYZANTINE_SEEDS", 0..20, |seed| {
        let config = byzantine_config(seed);
        let fault = config.faults[0];
        let report = bb_sim::run(config.clone()).expect("valid config");
        let honest: Vec<_> = report.nodes.iter().filter(|n| n.fault.is_none()).collect();
        let lowest = honest.iter().map(|n| n.finalized).min().unwrap_or(0);
        let noticed = match fault.kind {
            FaultKind::Equivocate => honest.iter().map(|n| n.duplicate_slots_seen).sum::<u64>() > 0,
            FaultKind::DoubleVote => honest.iter().all(|n| n.double_votes_seen > 0),
            FaultKind::Garbage => report.messages_rejected > 0,
            _ => true,
        };
        if report.safety_violations.is_empty() && lowest >= config.slots / 3 && noticed {
            return Vec::new();
        }
        vec![format!(
            "seed {seed} ({} on node {}): lowest honest finalized {lowest}, noticed {noticed}\n{}",
            fault.kind,
            fault.node,
            report.to_text()
        )]
    });
}
