//! The one task that owns the swarm: it turns [`Command`]s into swarm calls, swarm events
//! into [`NetEvent`]s, keeps the address book, and redials lost staked validators.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bb_core::{Hash, Pubkey};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, kad, mdns, ping};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::behaviour::{NodeBehaviour, NodeBehaviourEvent};
use crate::config::{
    GossipAuthor, MAX_GOSSIP_BYTES, MAX_RESPONSE_BYTES, OTHER_NETWORK_BAN, REDIAL_INITIAL,
    REDIAL_MAX, REQUEST_TIMEOUT, Topic, protocol_version,
};
use crate::error::{NetError, RequestFailure};
use crate::guard::{Ban, Guard, MessageKind, Misbehaviour, Verdict};
use crate::identity::{peer_id_of, pubkey_of};
use crate::ingress::{Acceptance, Command, MessageId, NetEvent, PeerInfo};
use crate::wire::{RepairRequest, RepairResponse};

/// Addresses kept per peer, newest first.
const MAX_ADDRESSES_PER_PEER: usize = 8;
/// Peers kept in the address book; staked validators are always kept.
const MAX_BOOK_PEERS: usize = 4096;
/// How often due redials are checked.
const TICK: Duration = Duration::from_millis(250);
/// Least time between two lookups of staked peers whose address is unknown.
const LOOKUP_INTERVAL: Duration = Duration::from_secs(2);
/// Gossip heartbeats in a row a peer's send queue may refuse messages (full, or a message
/// waited there over 10 s: see `behaviour.rs`) before its connection is closed and
/// redialed. A stream that stops draining does not recover by itself: the
/// queue stays full, every message to the peer is dropped, and the connection lives on
/// (other protocols keep it open). A fresh connection brings a fresh stream.
const STUCK_HEARTBEATS: u32 = 10;
/// A gap longer than this between two slow-peer reports starts the count again.
const STUCK_GAP: Duration = Duration::from_secs(3);

/// Peers whose gossip send queue refused messages, by heartbeats in a row.
#[derive(Debug, Default)]
struct StuckLinks {
    peers: HashMap<PeerId, (u32, Instant)>,
}

impl StuckLinks {
    /// One heartbeat's report that `peer`'s queue was full. True once it has been full
    /// for [`STUCK_HEARTBEATS`] in a row (then the count starts over).
    fn report(&mut self, peer: PeerId, now: Instant) -> bool {
        let (count, last) = self.peers.entry(peer).or_insert((0, now));
        if now.duration_since(*last) > STUCK_GAP {
            *count = 0;
        }
        *count += 1;
        *last = now;
        if *count >= STUCK_HEARTBEATS {
            self.peers.remove(&peer);
            return true;
        }
        false
    }

    fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }
}

/// What we know of one peer.
#[derive(Debug, Default)]
struct PeerRecord {
    addresses: Vec<Multiaddr>,
    rtt: Option<Duration>,
    /// Reported to the node as connected (identify matched our genesis); cleared when
    /// the last connection closes.
    announced: bool,
}

/// Exponential backoff between attempts: `delay` doubles up to [`REDIAL_MAX`].
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next_at: Instant,
    delay: Duration,
}

impl Backoff {
    fn now() -> Self {
        Backoff {
            next_at: Instant::now(),
            delay: REDIAL_INITIAL,
        }
    }

    fn after_initial_delay() -> Self {
        Backoff {
            next_at: Instant::now() + REDIAL_INITIAL,
            delay: REDIAL_INITIAL,
        }
    }

    fn is_due(&self, now: Instant) -> bool {
        self.next_at <= now
    }

    /// Records an attempt made at `now`; the next one waits the current delay.
    fn attempted(&mut self, now: Instant) {
        self.next_at = now + self.delay;
        self.delay = (self.delay * 2).min(REDIAL_MAX);
    }
}

/// An answer the node is working on: the channel to answer on, and the node's reply.
type PendingAnswer = BoxFuture<'static, (ResponseChannel<RepairResponse>, PeerId, Option<Vec<u8>>)>;

pub(crate) struct EventLoop {
    swarm: Swarm<NodeBehaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    genesis: Hash,
    expected_version: String,
    topics: HashMap<gossipsub::TopicHash, Topic>,
    book: HashMap<PeerId, PeerRecord>,
    staked: HashSet<PeerId>,
    /// Staked peers that are not connected, and when to try them next.
    redial: HashMap<PeerId, Backoff>,
    /// Peers whose gossip send queue was full, heartbeats in a row.
    slow: StuckLinks,
    bootstrap: Vec<(Option<PeerId>, Multiaddr)>,
    bootstrap_backoff: Backoff,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    answers: FuturesUnordered<PendingAnswer>,
    /// Rate limits, demerits and bans.
    guard: Guard,
    /// Reads the author a gossip payload claims, for counting.
    gossip_author: GossipAuthor,
    /// Peers the operator blocked, until when.
    blocked: HashMap<PeerId, Instant>,
    /// When the last lookup of a staked peer with no known address started.
    last_lookup: Option<Instant>,
    /// Told once whether the first listener came up.
    ready: Option<oneshot::Sender<Result<(), NetError>>>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local", self.swarm.local_peer_id())
            .field("peers", &self.book.len())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Setup {
    pub(crate) swarm: Swarm<NodeBehaviour>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) genesis: Hash,
    pub(crate) bootstrap: Vec<Multiaddr>,
    pub(crate) staked: Vec<Pubkey>,
    pub(crate) rate_limit: u32,
    pub(crate) gossip_author: GossipAuthor,
    pub(crate) ready: oneshot::Sender<Result<(), NetError>>,
}

impl EventLoop {
    pub(crate) fn new(setup: Setup) -> Self {
        let topics = Topic::ALL
            .into_iter()
            .map(|t| (ident_topic(t, &setup.genesis).hash(), t))
            .collect();
        let bootstrap = setup
            .bootstrap
            .into_iter()
            .map(|addr| split_peer_id(&addr))
            .collect();
        let mut event_loop = EventLoop {
            swarm: setup.swarm,
            commands: setup.commands,
            events: setup.events,
            expected_version: protocol_version(&setup.genesis),
            genesis: setup.genesis,
            topics,
            book: HashMap::new(),
            staked: HashSet::new(),
            redial: HashMap::new(),
            slow: StuckLinks::default(),
            bootstrap,
            bootstrap_backoff: Backoff::now(),
            requests: HashMap::new(),
            answers: FuturesUnordered::new(),
            guard: Guard::new(setup.rate_limit),
            gossip_author: setup.gossip_author,
            blocked: HashMap::new(),
            last_lookup: None,
            ready: Some(setup.ready),
        };
        for (peer, addr) in event_loop.bootstrap.clone() {
            if let Some(peer) = peer {
                event_loop.learn_addresses(peer, std::iter::once(addr.clone()));
                event_loop
                    .swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr);
            }
        }
        event_loop.set_staked(setup.staked);
        event_loop
    }

    /// Runs until told to shut down (returns the sender to acknowledge on, after the
    /// swarm is dropped) or until every client is gone.
    pub(crate) async fn run(mut self) -> Option<oneshot::Sender<()>> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { done }) => return Some(done),
                    Some(command) => self.on_command(command),
                    None => return None,
                },
                Some((channel, peer, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    self.send_answer(channel, peer, answer);
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    // ---- commands -------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                topic,
                bytes,
                reply,
            } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(ident_topic(topic, &self.genesis), bytes)
                    .map(|_| ())
                    .map_err(publish_error);
                let _ = reply.send(result);
            }
            Command::ReportValidation {
                message_id,
                from,
                acceptance,
            } => {
                let Some(peer) = peer_id_of(&from) else {
                    warn!(%from, "validation report names a key that is no peer");
                    return;
                };
                let acceptance = match acceptance {
                    Acceptance::Accept => gossipsub::MessageAcceptance::Accept,
                    Acceptance::Reject(why) => {
                        // The sender is to blame, whoever the payload names: an honest
                        // peer forwards only what it accepted, by the same rules.
                        self.penalize(peer, why);
                        gossipsub::MessageAcceptance::Reject
                    }
                    Acceptance::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &gossipsub::MessageId(message_id.0),
                        &peer,
                        acceptance,
                    );
            }
            Command::Penalize { peer, why } => {
                if let Some(peer) = peer_id_of(&peer) {
                    self.penalize(peer, why);
                }
            }
            Command::SetBlocked { blocked } => self.set_blocked(blocked),
            Command::Request { peer, bytes, reply } => self.request(peer, bytes, reply),
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::SetStaked { staked } => self.set_staked(staked),
            // Handled by `run`.
            Command::Shutdown { .. } => {}
        }
    }

    fn request(
        &mut self,
        peer: Pubkey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    ) {
        let Some(peer_id) = peer_id_of(&peer) else {
            let _ = reply.send(Err(NetError::InvalidPeer(peer.to_string())));
            return;
        };
        if self.swarm.behaviour().admission.is_banned(&peer_id) {
            let _ = reply.send(Err(NetError::Request {
                peer: peer.to_string(),
                reason: RequestFailure::Dial,
            }));
            return;
        }
        let addresses = self
            .book
            .get(&peer_id)
            .map(|r| r.addresses.clone())
            .unwrap_or_default();
        let id = self
            .swarm
            .behaviour_mut()
            .repair
            .send_request_with_addresses(&peer_id, RepairRequest { bytes }, addresses);
        self.requests.insert(id, reply);
    }

    /// Every peer of our network in the book, banned ones included (with why).
    fn peer_infos(&self) -> Vec<PeerInfo> {
        let now = Instant::now();
        self.book
            .iter()
            .filter_map(|(peer, record)| {
                let standing = self.guard.standing(peer, now);
                Some(PeerInfo {
                    pubkey: pubkey_of(peer)?,
                    addresses: record.addresses.clone(),
                    rtt: record.rtt,
                    connected: record.announced,
                    demerits: standing.demerits,
                    bans: standing.bans,
                    banned: standing.banned,
                    rate_limited: standing.rate_limited,
                })
            })
            .collect()
    }

    /// Replaces the operator's block list (see [`crate::NetClient::set_blocked`]).
    fn set_blocked(&mut self, blocked: Vec<(Pubkey, Duration)>) {
        let now = Instant::now();
        let next: HashMap<PeerId, Instant> = blocked
            .iter()
            .filter_map(|(k, d)| Some((peer_id_of(k)?, now + *d)))
            .filter(|(p, _)| p != self.swarm.local_peer_id())
            .collect();
        for peer in self.blocked.keys() {
            if !next.contains_key(peer) && !self.guard.is_banned(peer, now) {
                info!(%peer, "peer unblocked");
                self.swarm.behaviour_mut().admission.unban(peer);
            }
        }
        for (peer, until) in &next {
            // A misbehaviour ban that outlasts the block stays in force.
            let until = match self.guard.standing(peer, now).banned {
                Some((left, _)) => (*until).max(now + left),
                None => *until,
            };
            if !self.blocked.contains_key(peer) {
                info!(%peer, seconds = until.saturating_duration_since(now).as_secs(), "peer blocked by the operator");
            }
            self.swarm.behaviour_mut().admission.ban(*peer, until);
            self.redial.remove(peer);
        }
        self.blocked = next;
    }

    /// Charges demerits; bans the peer if that tipped it over.
    fn penalize(&mut self, peer: PeerId, why: Misbehaviour) {
        if peer == *self.swarm.local_peer_id() {
            return;
        }
        if let Some(ban) = self.guard.penalize(peer, why, Instant::now()) {
            self.ban(peer, ban);
        } else {
            debug!(%peer, %why, "peer charged demerits");
        }
    }

    /// Closes and refuses a banned peer's connections for the ban's length, and tells the
    /// node. A staked peer is redialed once the ban is over (see `on_tick`).
    fn ban(&mut self, peer: PeerId, ban: Ban) {
        warn!(
            %peer,
            reason = %ban.reason,
            seconds = ban.length.as_secs(),
            bans = ban.count,
            "peer banned"
        );
        self.swarm
            .behaviour_mut()
            .admission
            .ban(peer, Instant::now() + ban.length);
        self.redial.remove(&peer);
        if let Some(pubkey) = pubkey_of(&peer) {
            self.emit(NetEvent::PeerBanned {
                peer: pubkey,
                reason: ban.reason,
                length: ban.length,
                count: ban.count,
            });
        }
    }

    fn set_staked(&mut self, staked: Vec<Pubkey>) {
        let local = *self.swarm.local_peer_id();
        let staked: HashSet<PeerId> = staked
            .iter()
            .filter_map(peer_id_of)
            .filter(|p| *p != local)
            .collect();
        self.redial.retain(|peer, _| staked.contains(peer));
        for peer in &staked {
            if !self.swarm.is_connected(peer) {
                self.redial.entry(*peer).or_insert_with(Backoff::now);
            }
        }
        self.swarm
            .behaviour_mut()
            .admission
            .set_staked(staked.clone());
        self.staked = staked;
    }

    // ---- timers ---------------------------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.guard.prune(now);
        // A staked peer whose ban ran out (or that slipped through) is owed a redial too.
        for peer in &self.staked {
            if !self.redial.contains_key(peer)
                && !self.swarm.is_connected(peer)
                && !self.swarm.behaviour().admission.is_banned(peer)
            {
                self.redial.insert(*peer, Backoff::now());
            }
        }
        let due: Vec<PeerId> = self
            .redial
            .iter()
            .filter(|(_, b)| b.is_due(now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            if self.swarm.is_connected(&peer) || self.swarm.behaviour().admission.is_banned(&peer) {
                continue;
            }
            let addresses = self
                .book
                .get(&peer)
                .map(|r| r.addresses.clone())
                .unwrap_or_default();
            if addresses.is_empty() {
                // Nowhere to dial yet: ask the DHT who is near it. One lookup at a time:
                // each one walks the table and fills in addresses of many peers, while a
                // lookup per missing peer made a hundred starting validators flood each
                // other's Kademlia with hundreds of thousands of requests.
                if self
                    .last_lookup
                    .is_none_or(|at| now.duration_since(at) >= LOOKUP_INTERVAL)
                {
                    debug!(%peer, "looking up staked peer");
                    self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                    self.last_lookup = Some(now);
                }
            } else {
                debug!(%peer, "redialing staked peer");
                let opts = DialOpts::peer_id(peer)
                    .addresses(addresses)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    debug!(%peer, error = %e, "redial not started");
                }
            }
            if let Some(backoff) = self.redial.get_mut(&peer) {
                backoff.attempted(now);
            }
        }

        // With no peer at all, go back to the bootstrap list (it may have been down).
        if self.swarm.connected_peers().next().is_none()
            && !self.bootstrap.is_empty()
            && self.bootstrap_backoff.is_due(now)
        {
            self.bootstrap_backoff.attempted(now);
            for (peer, addr) in self.bootstrap.clone() {
                let opts = match peer {
                    Some(peer) => DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build(),
                    None => DialOpts::unknown_peer_id().address(addr).build(),
                };
                if let Err(e) = self.swarm.dial(opts) {
                    debug!(error = %e, "bootstrap dial not started");
                }
            }
        }
    }

    // ---- swarm events ---------------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<NodeBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                warn!(%error, "listener error");
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Err(NetError::Listen {
                        addr: format!("{addresses:?}"),
                        reason: format!("{reason:?}"),
                    }));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                debug!(peer = %peer_id, ?endpoint, "connection established");
                // A reconnected staked peer starts its backoff afresh next time.
                self.redial.remove(&peer_id);
                self.bootstrap_backoff = Backoff::after_initial_delay();
                if let ConnectedPoint::Dialer { address, .. } = endpoint {
                    self.learn_addresses(peer_id, std::iter::once(address));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, ?cause, num_established, "connection closed");
                if num_established == 0 {
                    self.on_peer_gone(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    /// Gossipsub reports, once a heartbeat, each peer whose send queue refused messages.
    /// A peer reported [`STUCK_HEARTBEATS`] heartbeats in a row is disconnected; a staked
    /// one is then redialed like any lost staked peer.
    fn on_slow_peer(&mut self, peer: PeerId, failed: usize) {
        debug!(%peer, failed, "gossip send queue full");
        if self.slow.report(peer, Instant::now()) {
            warn!(%peer, "gossip to this peer stopped draining; reconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_peer_gone(&mut self, peer: PeerId) {
        self.slow.forget(&peer);
        if let Some(record) = self.book.get_mut(&peer)
            && std::mem::take(&mut record.announced)
            && let Some(pubkey) = pubkey_of(&peer)
        {
            self.emit(NetEvent::PeerDisconnected(pubkey));
        }
        if self.staked.contains(&peer) && !self.swarm.behaviour().admission.is_banned(&peer) {
            info!(%peer, "lost a staked peer; redialing");
            self.redial.insert(peer, Backoff::after_initial_delay());
        }
    }

    fn on_behaviour_event(&mut self, event: NodeBehaviourEvent) {
        match event {
            NodeBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identify(peer_id, info);
            }
            NodeBehaviourEvent::Identify(_) => {}
            NodeBehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Some(record) = self.book.get_mut(&peer) {
                    record.rtt = Some(rtt);
                }
            }
            NodeBehaviourEvent::Ping(_) => {}
            NodeBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            NodeBehaviourEvent::Gossipsub(gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            }) => self.on_slow_peer(
                peer_id,
                failed_messages.priority + failed_messages.non_priority,
            ),
            NodeBehaviourEvent::Gossipsub(_) => {}
            NodeBehaviourEvent::Kad(event) => self.on_kad(event),
            NodeBehaviourEvent::Repair(event) => self.on_repair(event),
            NodeBehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if self.swarm.behaviour().admission.is_banned(&peer) {
                        continue;
                    }
                    self.learn_addresses(peer, std::iter::once(addr.clone()));
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    let _ = self.swarm.dial(opts);
                }
            }
            NodeBehaviourEvent::Mdns(mdns::Event::Expired(_)) => {}
            NodeBehaviourEvent::Admission(never) => match never {},
        }
    }

    fn on_identify(&mut self, peer: PeerId, info: identify::Info) {
        if info.protocol_version != self.expected_version {
            self.on_other_network(peer, info.protocol_version);
            return;
        }
        let listen: Vec<Multiaddr> = info
            .listen_addrs
            .iter()
            .map(|a| split_peer_id(a).1)
            .filter(is_dialable)
            .collect();
        for addr in &listen {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, addr.clone());
        }
        self.learn_addresses(peer, listen.into_iter());
        if !self.swarm.is_connected(&peer) {
            return;
        }
        // A connected peer of our network is always in the book, even with no address.
        let record = self.book.entry(peer).or_default();
        if !record.announced {
            record.announced = true;
            if let Some(pubkey) = pubkey_of(&peer) {
                info!(%pubkey, "peer connected");
                self.emit(NetEvent::PeerConnected(pubkey));
            }
        }
    }

    /// A peer announced another genesis: refuse it for a while, forget it, tell the node.
    fn on_other_network(&mut self, peer: PeerId, theirs: String) {
        warn!(%peer, %theirs, ours = %self.expected_version, "peer is on another network; disconnecting");
        let behaviour = self.swarm.behaviour_mut();
        behaviour
            .admission
            .ban(peer, Instant::now() + OTHER_NETWORK_BAN);
        behaviour.kad.remove_peer(&peer);
        self.book.remove(&peer);
        self.redial.remove(&peer);
        if let Some(pubkey) = pubkey_of(&peer) {
            self.emit(NetEvent::GenesisMismatch {
                peer: pubkey,
                theirs,
            });
        }
    }

    fn on_gossip(
        &mut self,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let topic = self.topics.get(&message.topic).copied();
        let from = pubkey_of(&propagation_source);
        let verdict = match (topic, from) {
            (Some(topic), Some(from)) if message.data.len() <= MAX_GOSSIP_BYTES => {
                // Counted by the author the payload names: a relayed flood is the
                // author's, not the honest relay's. Only a message its author sent us
                // itself (or one naming no author) can cost its sender demerits here; a
                // relayed one is just dropped over the limit, since the claim is not yet
                // checked and the relay only passes on what it accepted.
                let author =
                    (self.gossip_author)(topic, &message.data).and_then(|a| peer_id_of(&a));
                let now = Instant::now();
                let kind = MessageKind::Gossip(topic);
                let counted = match author {
                    Some(author) if author != propagation_source => {
                        self.guard.allow_relayed(author, kind, now)
                    }
                    _ => self.guard.allow(propagation_source, kind, now),
                };
                match counted {
                    Verdict::Drop { ban } => {
                        if let Some(ban) = ban {
                            self.ban(propagation_source, ban);
                        }
                        gossipsub::MessageAcceptance::Ignore
                    }
                    Verdict::Allow => {
                        let event = NetEvent::Gossip {
                            topic,
                            from,
                            message_id: MessageId(message_id.0.clone()),
                            bytes: message.data,
                        };
                        if self.emit(event) {
                            return;
                        }
                        // The node is behind: drop without blaming the sender.
                        gossipsub::MessageAcceptance::Ignore
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.penalize(propagation_source, Misbehaviour::Oversized);
                gossipsub::MessageAcceptance::Reject
            }
            _ => {
                debug!(peer = %propagation_source, "gossip on an unknown topic rejected");
                gossipsub::MessageAcceptance::Reject
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&message_id, &propagation_source, verdict);
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated {
                peer, addresses, ..
            } => {
                let addrs: Vec<Multiaddr> = addresses.iter().cloned().collect();
                self.learn_addresses(peer, addrs.into_iter());
            }
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(ok)),
                ..
            } => {
                for found in ok.peers {
                    self.learn_addresses(found.peer_id, found.addrs.into_iter());
                }
            }
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(result),
                ..
            } => {
                debug!(?result, "kademlia bootstrap step");
            }
            _ => {}
        }
    }

    fn on_repair(&mut self, event: request_response::Event<RepairRequest, RepairResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let Some(from) = pubkey_of(&peer) else {
                        return;
                    };
                    // Over the limit (or banned): no answer; the requester times out.
                    if let Verdict::Drop { ban } =
                        self.guard.allow(peer, MessageKind::Request, Instant::now())
                    {
                        if let Some(ban) = ban {
                            self.ban(peer, ban);
                        }
                        return;
                    }
                    let (respond, answer) = oneshot::channel();
                    if !self.emit(NetEvent::Request {
                        from,
                        bytes: request.bytes,
                        respond,
                    }) {
                        return;
                    }
                    self.answers.push(Box::pin(async move {
                        let answer = tokio::time::timeout(REQUEST_TIMEOUT, answer)
                            .await
                            .ok()
                            .and_then(Result::ok);
                        (channel, peer, answer)
                    }));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response.bytes));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let reason = match error {
                        OutboundFailure::DialFailure => RequestFailure::Dial,
                        OutboundFailure::Timeout => RequestFailure::Timeout(REQUEST_TIMEOUT),
                        OutboundFailure::ConnectionClosed => RequestFailure::ConnectionClosed,
                        OutboundFailure::UnsupportedProtocols => RequestFailure::Unsupported,
                        OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            RequestFailure::NoAnswer
                        }
                        OutboundFailure::Io(e) => RequestFailure::Io(e.to_string()),
                    };
                    let peer = pubkey_of(&peer).map_or_else(|| peer.to_string(), |p| p.to_string());
                    let _ = reply.send(Err(NetError::Request { peer, reason }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound repair request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn send_answer(
        &mut self,
        channel: ResponseChannel<RepairResponse>,
        peer: PeerId,
        answer: Option<Vec<u8>>,
    ) {
        match answer {
            Some(bytes) if bytes.len() <= MAX_RESPONSE_BYTES => {
                if self
                    .swarm
                    .behaviour_mut()
                    .repair
                    .send_response(channel, RepairResponse { bytes })
                    .is_err()
                {
                    debug!(%peer, "requester left before the answer");
                }
            }
            Some(bytes) => {
                warn!(%peer, len = bytes.len(), max = MAX_RESPONSE_BYTES, "repair answer too large; not sent");
            }
            None => debug!(%peer, "node gave no answer to a repair request"),
        }
    }

    // ---- helpers --------------------------------------------------------------------

    /// Hands an event to the node without ever blocking the swarm. Returns false (and
    /// logs) if the node is not keeping up.
    fn emit(&self, event: NetEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) => {
                let kind = match event {
                    NetEvent::Gossip { .. } => "gossip",
                    NetEvent::Request { .. } => "request",
                    NetEvent::PeerConnected(_) => "peer connected",
                    NetEvent::PeerDisconnected(_) => "peer disconnected",
                    NetEvent::GenesisMismatch { .. } => "genesis mismatch",
                    NetEvent::PeerBanned { .. } => "peer banned",
                };
                warn!(
                    kind,
                    "node is not keeping up with network events; dropped one"
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Adds addresses to the book, newest first. A staked peer waiting on a long
    /// backoff because nothing was known of it is tried again at once.
    fn learn_addresses(&mut self, peer: PeerId, addrs: impl Iterator<Item = Multiaddr>) {
        if peer == *self.swarm.local_peer_id() || self.swarm.behaviour().admission.is_banned(&peer)
        {
            return;
        }
        if !self.book.contains_key(&peer)
            && self.book.len() >= MAX_BOOK_PEERS
            && !self.staked.contains(&peer)
        {
            return;
        }
        let record = self.book.entry(peer).or_default();
        let had_none = record.addresses.is_empty();
        for addr in addrs {
            let addr = split_peer_id(&addr).1;
            if !is_dialable(&addr) {
                continue;
            }
            record.addresses.retain(|a| *a != addr);
            record.addresses.insert(0, addr);
        }
        record.addresses.truncate(MAX_ADDRESSES_PER_PEER);
        if had_none
            && !record.addresses.is_empty()
            && let Some(backoff) = self.redial.get_mut(&peer)
        {
            *backoff = Backoff::now();
        }
    }
}

fn ident_topic(topic: Topic, genesis: &Hash) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(topic.name(genesis))
}

fn publish_error(e: gossipsub::PublishError) -> NetError {
    match e {
        gossipsub::PublishError::NoPeersSubscribedToTopic => NetError::NoPeers,
        gossipsub::PublishError::Duplicate => NetError::Duplicate,
        other => NetError::Publish(other.to_string()),
    }
}

/// Splits a trailing `/p2p/<peer id>` off an address.
pub(crate) fn split_peer_id(addr: &Multiaddr) -> (Option<PeerId>, Multiaddr) {
    let mut addr = addr.clone();
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => {
            addr.pop();
            (Some(peer), addr)
        }
        _ => (None, addr),
    }
}

/// Whether our transport can dial an address: a specified IP (no DNS in this stack).
fn is_dialable(addr: &Multiaddr) -> bool {
    addr.iter().next().is_some_and(|p| match p {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redial_backoff_doubles_from_one_second_to_a_minute() {
        let start = Instant::now();
        let mut backoff = Backoff {
            next_at: start,
            delay: REDIAL_INITIAL,
        };
        let mut waits = Vec::new();
        let mut now = start;
        for _ in 0..9 {
            assert!(backoff.is_due(now));
            backoff.attempted(now);
            waits.push((backoff.next_at - now).as_secs());
            now = backoff.next_at;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_link_is_stuck_after_ten_full_heartbeats_in_a_row_and_a_gap_starts_over() {
        let mut links = StuckLinks::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let start = Instant::now();
        let beat = |k: u64| start + Duration::from_secs(k);
        for k in 0..u64::from(STUCK_HEARTBEATS) - 1 {
            assert!(!links.report(a, beat(k)), "heartbeat {k}");
            assert!(!links.report(b, beat(k)));
        }
        assert!(
            links.report(a, beat(9)),
            "the tenth full heartbeat in a row"
        );
        assert!(
            !links.report(a, beat(10)),
            "the count starts over after a cut"
        );
        // b skips a few heartbeats (its queue drained meanwhile): counted afresh.
        assert!(!links.report(b, beat(14)));
        for k in 15..23 {
            assert!(!links.report(b, beat(k)));
        }
        assert!(links.report(b, beat(23)));
        // A peer that left is forgotten.
        links.report(a, beat(30));
        links.forget(&a);
        assert!(links.peers.is_empty());
    }

    #[test]
    fn peer_id_suffix_is_split_off_and_unspecified_addresses_are_not_dialed() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/9000/p2p/{peer}")
            .parse()
            .unwrap();
        let (found, bare) = split_peer_id(&addr);
        assert_eq!(found, Some(peer));
        assert_eq!(
            bare,
            "/ip4/127.0.0.1/tcp/9000".parse::<Multiaddr>().unwrap()
        );
        assert!(is_dialable(&bare));
        assert!(!is_dialable(&"/ip4/0.0.0.0/tcp/9000".parse().unwrap()));
    }
}
