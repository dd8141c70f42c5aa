//! `bb-sim`: a deterministic simulator of a bb cluster.
//!
//! Many nodes in one process, each a real `bb_engine::Validator` (the bank from
//! `bb-runtime`; `Tower`, `ForkChoice`, `VoteTracker` from `bb-consensus`), connected by a
//! simulated network with per-message latency, loss and partitions, on a simulated clock,
//! with crashes and restarts from what a node persisted. Everything random comes from one
//! seed, so a run (and a failing seed) replays exactly: the same config gives the same
//! [`SimReport`], byte for byte.
//!
//! What is abstracted: a block travels as one message (Turbine's erasure coding is tested
//! on its own; a lost block message stands for a block that lost more than half its
//! shreds), and gossip is direct sends plus a periodic re-send of each node's latest vote.
//! Vote signatures are made for real and checked once at the source (the simulated network
//! cannot forge messages), except those from a node given a fault, which every receiver
//! checks; blocks are signed and fully replayed by every node. Network abuse is modelled
//! at the message level (`garbage`: messages with broken signatures; `flood`: copies of a
//! vote), not as bytes: the byte-level guard is `bb-net`'s and is tested with real sockets.

mod engine;
pub mod report;
pub mod spec;

pub use report::{LatencyStats, NodeReport, SimReport};
pub use spec::{CrashSpec, FaultKind, FaultSpec, LatencyRange, PartitionSpec, SpecError};

use bb_core::Slot;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub slots: Slot,
    pub seed: u64,
    /// Probability that any one message is lost.
    pub loss: f64,
    pub latency: LatencyRange,
    pub partitions: Vec<PartitionSpec>,
    pub crashes: Vec<CrashSpec>,
    /// Byzantine nodes, each with one fault for the whole run.
    pub faults: Vec<FaultSpec>,
    /// Stake per node; equal stakes when `None`.
    pub stakes: Option<Vec<u64>>,
    pub slot_ms: u64,
    pub slots_per_epoch: u64,
    pub txs_per_block: usize,
}

impl SimConfig {
    /// A fault-free cluster with the usual timing.
    pub fn new(nodes: usize, slots: Slot, seed: u64) -> Self {
        SimConfig {
            nodes,
            slots,
            seed,
            loss: 0.0,
            latency: LatencyRange {
                min_ms: 50,
                max_ms: 150,
            },
            partitions: Vec::new(),
            crashes: Vec::new(),
            faults: Vec::new(),
            stakes: None,
            slot_ms: 400,
            slots_per_epoch: 64,
            txs_per_block: 2,
        }
    }

    /// Checks the config before a run.
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |m: String| Err(SpecError::new(m));
        if self.nodes == 0 || self.nodes > 10_000 {
            return err(format!("--nodes must be 1 to 10000, not {}", self.nodes));
        }
        if self.slots == 0 {
            return err("--slots must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.loss) {
            return err(format!("--loss must be in [0, 1), not {}", self.loss));
        }
        if let Some(s) = &self.stakes {
            if s.len() != self.nodes {
                return err(format!(
                    "--stakes lists {} stakes for {} nodes",
                    s.len(),
                    self.nodes
                ));
            }
            if s.contains(&0) {
                return err("--stakes: every node needs stake above zero".into());
            }
        }
        for p in &self.partitions {
            p.validate(self.nodes)?;
        }
        for c in &self.crashes {
            if c.node >= self.nodes {
                return err(format!(
                    "--crash names node {}, but there are {} nodes",
                    c.node, self.nodes
                ));
            }
        }
        let mut faulty = std::collections::BTreeSet::new();
        for f in &self.faults {
            if f.node >= self.nodes {
                return err(format!(
                    "--fault names node {}, but there are {} nodes",
                    f.node, self.nodes
                ));
            }
            if !faulty.insert(f.node) {
                return err(format!("--fault names node {} twice", f.node));
            }
        }
        if self.slot_ms < 10 {
            return err("slot length must be at least 10 ms".into());
        }
        Ok(())
    }

    /// The slot at which the last partition heals or the last crashed node restarts.
    pub fn last_fault_end(&self) -> Slot {
        let p = self.partitions.iter().map(|p| p.to);
        let c = self.crashes.iter().filter_map(|c| c.restart);
        p.chain(c).max().unwrap_or(0)
    }
}

/// Runs a simulation to the end.
pub fn run(config: SimConfig) -> Result<SimReport, SpecError> {
    config.validate()?;
    // One simulated cluster is one thread's work: a single-threaded pool keeps the bank's
    // parallel paths from spinning idle workers on tiny blocks (and runs stay reproducible
    // in cost as well as in result).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| SpecError::new(format!("cannot start the simulator's thread: {e}")))?;
    Ok(pool.install(|| engine::Simulation::new(config).run()))
}
