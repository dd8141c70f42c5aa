//! What a simulation run reports, as text and as JSON. Same arguments, same bytes.

use std::fmt::Write as _;

use bb_core::Slot;
use serde::Serialize;

/// Median and 99th percentile of a latency, in simulated milliseconds and in slots.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyStats {
    pub samples: usize,
    pub median_ms: u64,
    pub p99_ms: u64,
    pub median_slots: f64,
    pub p99_slots: f64,
}

impl LatencyStats {
    pub(crate) fn from_ms(values: &mut [u64], slot_ms: u64) -> LatencyStats {
        values.sort_unstable();
        let pick = |q: f64| -> u64 {
            if values.is_empty() {
                return 0;
            }
            let i = ((values.len() - 1) as f64 * q).round() as usize;
            values[i.min(values.len() - 1)]
        };
        let (median_ms, p99_ms) = (pick(0.5), pick(0.99));
        let slots = |ms: u64| (ms as f64 / slot_ms.max(1) as f64 * 100.0).round() / 100.0;
        LatencyStats {
            samples: values.len(),
            median_ms,
            p99_ms,
            median_slots: slots(median_ms),
            p99_slots: slots(p99_ms),
        }
    }
}

/// One node at the end of the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    pub index: usize,
    pub identity: String,
    pub stake: u64,
    pub alive_at_end: bool,
    pub crashed: bool,
    pub root: Slot,
    pub root_bank_hash: String,
    pub confirmed: Slot,
    pub finalized: Slot,
    pub votes_cast: u64,
    /// Double votes by others this node caught (and turned into evidence).
    pub double_votes_seen: u64,
    /// Slots this node learned had two versions signed by their leader.
    pub duplicate_slots_seen: u64,
    /// Times this node dropped its version of a duplicate slot for the confirmed one.
    pub versions_replaced: u64,
    /// The fault this node ran (`--fault`), if any.
    pub fault: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimReport {
    pub nodes_count: usize,
    pub slots: Slot,
    pub seed: u64,
    pub slot_ms: u64,
    pub slots_produced: u64,
    /// Slots up to the highest root with no block on the rooted chain.
    pub slots_skipped: u64,
    /// Blocks produced but left off the rooted chain.
    pub blocks_orphaned: u64,
    pub highest_root: Slot,
    /// From the start of a block's slot until a node sees it confirmed, over all nodes.
    pub confirmation: LatencyStats,
    /// From the start of a block's slot until a node sees it finalized, over all nodes.
    pub finalization: LatencyStats,
    /// Two honest nodes rooting conflicting blocks. Must be empty.
    pub safety_violations: Vec<String>,
    pub last_fault_end_slot: Slot,
    /// Whether some live node finalized a slot after the last fault ended.
    pub finalized_after_faults: bool,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    /// Messages from faulty nodes that receivers refused (broken signatures).
    pub messages_rejected: u64,
    pub messages_per_node_per_slot: f64,
    /// A hash of every rooted block and every node's root, bank hash and finalized slot.
    pub digest: String,
    pub nodes: Vec<NodeReport>,
}

impl SimReport {
    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "simulated {} nodes x {} slots of {} ms (seed {})",
            self.nodes_count, self.slots, self.slot_ms, self.seed
        );
        let _ = writeln!(
            s,
            "slots: {} produced, {} skipped, {} blocks orphaned; highest root {}",
            self.slots_produced, self.slots_skipped, self.blocks_orphaned, self.highest_root
        );
        for (name, l) in [
            ("confirmation", &self.confirmation),
            ("finalization", &self.finalization),
        ] {
            let _ = writeln!(
                s,
                "{name}: median {} ms ({} slots), p99 {} ms ({} slots), {} samples",
                l.median_ms, l.median_slots, l.p99_ms, l.p99_slots, l.samples
            );
        }
        let _ = writeln!(
            s,
            "messages: {} sent, {} dropped, {} refused, {:.1} per node per slot",
            self.messages_sent,
            self.messages_dropped,
            self.messages_rejected,
            self.messages_per_node_per_slot
        );
        if self.safety_violations.is_empty() {
            let _ = writeln!(s, "safety: no violations");
        } else {
            let _ = writeln!(s, "safety: {} VIOLATIONS", self.safety_violations.len());
            for v in &self.safety_violations {
                let _ = writeln!(s, "  {v}");
            }
        }
        if self.last_fault_end_slot > 0 {
            let _ = writeln!(
                s,
                "faults ended at slot {}; finalization resumed after: {}",
                self.last_fault_end_slot,
                if self.finalized_after_faults {
                    "yes"
                } else {
                    "NO"
                }
            );
        }
        let faulty = self.nodes.iter().any(|n| n.fault.is_some());
        if faulty {
            let _ = writeln!(
                s,
                "byzantine: {} double votes caught, {} duplicate slots seen, {} versions replaced (summed over nodes)",
                self.nodes.iter().map(|n| n.double_votes_seen).sum::<u64>(),
                self.nodes
                    .iter()
                    .map(|n| n.duplicate_slots_seen)
                    .sum::<u64>(),
                self.nodes.iter().map(|n| n.versions_replaced).sum::<u64>(),
            );
        }
        let _ = writeln!(
            s,
            "{:>4} {:<10} {:>6} {:>6} {:>9} {:>9} {:>6} {:<8}",
            "node", "identity", "stake", "root", "confirmed", "finalized", "votes", "state"
        );
        for n in &self.nodes {
            let state = match (n.alive_at_end, n.crashed, &n.fault) {
                (_, _, Some(f)) => f.as_str(),
                (true, false, _) => "up",
                (true, true, _) => "restarted",
                (false, _, _) => "down",
            };
            let _ = writeln!(
                s,
                "{:>4} {:<10} {:>6} {:>6} {:>9} {:>9} {:>6} {:<8}",
                n.index, n.identity, n.stake, n.root, n.confirmed, n.finalized, n.votes_cast, state
            );
        }
        let _ = writeln!(s, "digest: {}", self.digest);
        s
    }
}
