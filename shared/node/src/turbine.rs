//! Turbine over UDP: the leader shreds its block and sends each shred to the root of that
//! shred's tree; every node checks what it receives, retransmits to its children, rebuilds
//! missing shreds from any 32 of a set, and hands complete blocks to the engine.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bb_core::{Block, Canonical, Keypair, Pubkey, Slot};
use bb_net::{Guard, MessageKind, Misbehaviour, Verdict};
use bb_turbine::{BlockAssembler, Insert, RetransmitTree, Shred, ShredKind, Shredder};
use rand::RngExt;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::engine::EngineMsg;
use crate::fault::Faults;
use crate::state::Shared;

/// How long after its last contact a peer still counts as present in the tree: at least
/// ten seconds, and three advertising periods (they grow with the network).
fn present_for(validators: usize) -> Duration {
    (crate::gossip::contact_interval(validators) * 3).max(Duration::from_secs(10))
}
/// How long a computed [`View`] is used before it is built again from the peer table.
const VIEW_FOR: Duration = Duration::from_secs(1);
/// Slots ahead of the clock (or behind the newest) an assembler is kept for.
const SLOT_WINDOW: u64 = 512;

/// The kernel buffer asked for on the shred socket, each way. A leader sends a 1 MiB
/// block as about 1,800 shreds at once; the default receive buffer (208 KiB here) holds
/// about 90 of them, and under load most of each block was lost and repaired instead.
/// The kernel caps the size at `net.core.rmem_max` / `wmem_max`; when it grants less
/// than half of this, the node says so once at start.
pub const SHRED_SOCKET_BUFFER: usize = 8 << 20;

/// Binds the shred socket with [`SHRED_SOCKET_BUFFER`] each way, or what the kernel
/// allows. Returns the sizes the kernel reports, receive then send: Linux reports twice
/// what it grants (the other half is its bookkeeping).
pub fn bind_shred_socket(addr: SocketAddr) -> std::io::Result<(UdpSocket, usize, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a kernel cap only makes the buffers smaller, reported below.
    let _ = socket.set_recv_buffer_size(SHRED_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SHRED_SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let (recv, send) = (socket.recv_buffer_size()?, socket.send_buffer_size()?);
    Ok((UdpSocket::from_std(socket.into())?, recv, send))
}

/// The UDP side of one node.
pub struct Turbine {
    pub socket: Arc<UdpSocket>,
    pub shared: Arc<Shared>,
    pub identity: Keypair,
    pub fanout: usize,
    pub faults: Faults,
    pub engine: mpsc::Sender<EngineMsg>,
    /// Shreds per second accepted from one source address.
    pub shred_rate_limit: u32,
    /// The tree and addresses last computed, reused for [`VIEW_FOR`].
    pub view: Mutex<Option<Arc<View>>>,
}

/// Who is present and where, as of `at`: the tree over them and their shred addresses.
/// Every received shred needs both; building them reads the whole peer table, so they are
/// built at most once per [`VIEW_FOR`] rather than once per shred (at a hundred nodes,
/// a copy of the peer table per shred was most of a validator's allocations).
pub struct View {
    at: Instant,
    tree: RetransmitTree,
    addrs: HashMap<Pubkey, SocketAddr>,
}

impl View {
    fn addr_of(&self, who: &Pubkey) -> Option<SocketAddr> {
        self.addrs.get(who).copied()
    }
}

impl Turbine {
    /// The tree over the validators present now (staked validators whose contact info is
    /// fresh, and this node) with their shred addresses; at most [`VIEW_FOR`] old.
    fn view(&self) -> Arc<View> {
        let now = Instant::now();
        if let Ok(cached) = self.view.lock()
            && let Some(v) = cached.as_ref()
            && now.duration_since(v.at) < VIEW_FOR
        {
            return v.clone();
        }
        let mut addrs = HashMap::new();
        let present_for = present_for(self.shared.stakes.len());
        let mut nodes: Vec<(Pubkey, u64)> = Vec::with_capacity(self.shared.stakes.len());
        if let Ok(peers) = self.shared.peers.read() {
            for (k, stake) in self.shared.stakes.iter() {
                if *k == self.shared.identity {
                    nodes.push((*k, *stake));
                    continue;
                }
                let Some(p) = peers.get(k) else { continue };
                let present = p
                    .last_contact
                    .is_some_and(|t| now.duration_since(t) < present_for);
                if let Some(addr) = p.shred_addr
                    && present
                {
                    nodes.push((*k, *stake));
                    addrs.insert(*k, addr);
                }
            }
        }
        let view = Arc::new(View {
            at: now,
            tree: RetransmitTree::new(&nodes, self.fanout),
            addrs,
        });
        if let Ok(mut cached) = self.view.lock() {
            *cached = Some(view.clone());
        }
        view
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.shared.metrics.sent("shred");
        if let Err(e) = self.socket.send_to(bytes, to).await {
            debug!(%to, "sending a shred: {e}");
        }
    }

    /// Shreds our block and sends every shred to its tree's root.
    pub async fn broadcast(&self, block: Arc<Block>) {
        if let Some(d) = self.faults.delay {
            tokio::time::sleep(d).await;
        }
        let slot = block.header.slot;
        let shredder = Shredder::new(self.identity.clone());
        let bytes = block.to_bytes();
        let sets = match tokio::task::block_in_place(|| {
            shredder.shred(slot, block.header.parent_slot, &bytes)
        }) {
            Ok(sets) => sets,
            Err(e) => {
                warn!(slot, "cannot shred our block: {e}");
                return;
            }
        };
        let view = self.view();
        let me = self.identity.pubkey();
        // Test-only fault `withhold-shreds`: a quarter of each set, too few to rebuild it;
        // the others must repair the block from us or skip our slot.
        let per_set = if self.faults.withhold_shreds {
            bb_turbine::SHREDS_PER_SET / 4
        } else {
            usize::MAX
        };
        for set in &sets {
            for shred in set.shreds().iter().take(per_set) {
                if let Some(root) = view.tree.first_hop(&me, slot, shred.index(), shred.kind())
                    && let Some(addr) = view.addr_of(&root)
                {
                    self.send(shred.as_bytes(), addr).await;
                }
            }
        }
    }

    /// Receives shreds until the socket fails.
    pub async fn receive(self: Arc<Self>) {
        let mut buf = vec![0u8; 2048];
        let mut assemblers: BTreeMap<Slot, BlockAssembler> = BTreeMap::new();
        let me = self.identity.pubkey();
        // Shreds carry no sender identity: they are counted, charged and banned by source
        // address, here only (a spoofed address must not get a validator banned from
        // gossip). A network-layer ban (for gossip abuse) does not reach this far: a
        // banned validator's blocks are still valid consensus data, and dropping them
        // would turn its every leader slot into a skipped one for the whole cluster.
        // Peers on the operator's block list are dropped.
        let mut guard: Guard<SocketAddr> = Guard::new(self.shred_rate_limit);
        let mut blocked_peers: HashSet<SocketAddr> = HashSet::new();
        let mut refreshed = Instant::now();
        // This node's root, read once a second: a slot below it is settled here, so its
        // shreds are late and its assembler is dropped. An assembler keeps about 5 KB
        // per FEC set after its block is out (the set's tree and one witness shred),
        // which the clock window alone would keep for 512 slots.
        let mut root = self.shared.status().root.slot;
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    warn!("shred socket: {e}");
                    continue;
                }
            };
            let now = tokio::time::Instant::now();
            if refreshed.elapsed() >= Duration::from_secs(1) {
                refreshed = Instant::now();
                blocked_peers = self.blocked_shred_addrs();
                guard.prune(now);
                root = self.shared.status().root.slot;
            }
            if blocked_peers.contains(&from) {
                self.shared.metrics.shreds_rate_limited.inc();
                continue;
            }
            if let Verdict::Drop { ban } = guard.allow(from, MessageKind::Shred, now) {
                self.shared.metrics.shreds_rate_limited.inc();
                if let Some(ban) = ban {
                    warn!(%from, reason = %ban.reason, seconds = ban.length.as_secs(), "shred source banned");
                }
                continue;
            }
            if self.faults.drop_shreds > 0.0
                && rand::rng().random::<f64>() < self.faults.drop_shreds
            {
                continue;
            }
            let bytes = &buf[..len];
            let shred = match Shred::from_bytes(bytes) {
                Ok(s) => s,
                Err(_) => {
                    self.shared.metrics.shreds_invalid.inc();
                    if let Some(ban) = guard.penalize(from, Misbehaviour::Malformed, now) {
                        warn!(%from, reason = %ban.reason, seconds = ban.length.as_secs(), "shred source banned");
                    }
                    continue;
                }
            };
            let slot = shred.slot();
            let clock = self.shared.clock_slot();
            if slot + SLOT_WINDOW < clock || slot > clock + 2 {
                self.shared.metrics.shreds_invalid.inc();
                continue;
            }
            if slot < root {
                // Settled here; a node that still lacks the block repairs it.
                continue;
            }
            let Some(leader) = self.shared.leader_of(slot) else {
                continue;
            };
            if leader == me {
                continue;
            }
            let assembler = assemblers
                .entry(slot)
                .or_insert_with(|| BlockAssembler::new(slot, leader));
            // Inline: a proof check, one signature per set, at most one set's recovery
            // (tens of microseconds). `block_in_place` here handed the worker to a new
            // thread for every shred; with a hundred validators on one machine that was
            // sixty threads per node and most of the machine in context switches.
            let result = assembler.insert_shred(&shred);
            match result {
                Ok(Insert::Duplicate) => {}
                Ok(Insert::Accepted {
                    id: _,
                    recovered,
                    block,
                }) => {
                    self.shared.metrics.shreds_received.inc();
                    self.shared.metrics.received("shred");
                    self.shared
                        .metrics
                        .shreds_recovered
                        .inc_by(recovered.len() as u64);
                    let view = self.view();
                    self.retransmit(&view, &leader, &shred).await;
                    for r in &recovered {
                        self.retransmit(&view, &leader, r).await;
                    }
                    if let Some(block_bytes) = block {
                        match Block::from_bytes(&block_bytes) {
                            Ok(b) => {
                                let _ = self
                                    .engine
                                    .send(EngineMsg::Block {
                                        block: Arc::new(b),
                                        from: None,
                                    })
                                    .await;
                            }
                            Err(e) => warn!(slot, "a signed, complete block does not decode: {e}"),
                        }
                    }
                }
                Err(bb_turbine::ShredError::Equivocation(eq)) => {
                    self.shared.metrics.shreds_invalid.inc();
                    let evidence = bb_core::Evidence::duplicate_block(
                        leader,
                        eq.slot,
                        eq.first.clone(),
                        eq.second.clone(),
                    );
                    let _ = self.engine.send(EngineMsg::FoundEvidence(evidence)).await;
                }
                Err(e) => {
                    self.shared.metrics.shreds_invalid.inc();
                    debug!(slot, %from, "shred refused: {e}");
                    // Not charged: a shred that fails here may be an honest relay's
                    // (a late one, or a schedule seen differently at an epoch edge).
                }
            }
            // Forget slots below the root or far behind the clock: memory stays bounded.
            let horizon = clock.saturating_sub(SLOT_WINDOW).max(root);
            if assemblers
                .first_key_value()
                .is_some_and(|(s, _)| *s < horizon)
            {
                assemblers = assemblers.split_off(&horizon);
            }
        }
    }

    /// The shred addresses of peers on the operator's block list, now.
    fn blocked_shred_addrs(&self) -> HashSet<SocketAddr> {
        let now = Instant::now();
        self.shared
            .peers
            .read()
            .map(|peers| {
                peers
                    .values()
                    .filter(|p| p.blocked_until.is_some_and(|t| t > now))
                    .filter_map(|p| p.shred_addr)
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn retransmit(&self, view: &View, leader: &Pubkey, shred: &Shred) {
        let kind: ShredKind = shred.kind();
        let me = self.identity.pubkey();
        for child in view
            .tree
            .children(leader, shred.slot(), shred.index(), kind, &me)
        {
            if let Some(addr) = view.addr_of(&child) {
                self.send(shred.as_bytes(), addr).await;
            }
        }
    }
}
