//! `bb-net`: the validator's libp2p swarm behind a small async API.
//!
//! # Bird's-eye view
//!
//! ```text
//!            NetClient (Clone)                                   node
//!   publish / report_validation / request /        ┌──────────────────────────────┐
//!   peers / listen_addrs / set_staked / shutdown   │ decodes, verifies signatures, │
//!                 │ mpsc<Command>                  │ decides Accept/Reject/Ignore, │
//!                 ▼          answers on oneshots   │ answers repair requests       │
//!   ┌─────────────────────────────┐  mpsc<NetEvent>└──────────────▲───────────────┘
//!   │ EventLoop task (owns Swarm) │ ──────────────────────────────┘
//!   │  TCP + Noise + Yamux        │   Gossip / Request / PeerConnected /
//!   │  identify  ping  gossipsub  │   PeerDisconnected / GenesisMismatch
//!   │  kademlia  repair (cbor)    │
//!   │  mdns (only if asked)       │
//!   │  admission (ban, keepalive) │
//!   └─────────────────────────────┘
//! ```
//!
//! One task owns the [`libp2p::Swarm`]; everything else holds a [`NetClient`], which sends
//! it commands over a channel and gets answers on oneshot channels. No locks, no shared
//! swarm. The task hands [`NetEvent`]s up on a bounded channel without ever blocking: if
//! the node falls behind, gossip is dropped (ignored, so no peer is blamed) and a warning
//! is logged.
//!
//! * **Identity.** The libp2p key is the validator's Ed25519 key ([`keypair_from_seed`]),
//!   so a Noise-authenticated [`PeerId`] proves the validator: [`pubkey_of`] and
//!   [`peer_id_of`] convert between the two.
//! * **One network per genesis.** The identify protocol version is `bb/1/<genesis>`;
//!   gossip topics are `bb/<genesis>/{contact,votes,slashing}`; Kademlia, gossipsub and
//!   repair negotiate protocol ids that carry the genesis hash. A peer that identifies
//!   with another version is disconnected, refused for a while, kept out of Kademlia and
//!   the address book, and reported as [`NetEvent::GenesisMismatch`]; it is never
//!   reported connected.
//! * **Gossip.** Unsigned envelopes around payloads the node signs and judges one by one:
//!   nothing is forwarded before the node calls [`NetClient::report_validation`] with
//!   [`Acceptance::Accept`]; [`Acceptance::Reject`] charges and scores down the peer
//!   that sent it. Copies are dropped by content id before the node sees them.
//! * **Discovery.** Bootstrap addresses, Kademlia (server mode, periodic bootstrap) and
//!   identify fill the address book; mDNS only when [`NetConfig::mdns`] is set.
//! * **Staked peers** are kept connected: idle connections to them stay open, and a lost
//!   one is redialed with backoff from 1 s doubling to 60 s, reset on success.
//! * **Repair** is request-response over `/bb/<genesis>/repair/1`, bytes in and out.
//! * **Rate limits and bans** ([`guard`]): every gossip message (by the author its
//!   payload names, read by the node's [`NetConfig::gossip_author`]) and request (by
//!   peer) is counted per kind against [`NetConfig::rate_limit`] per second. Excess a
//!   peer sent itself, and messages the node rejects, cost the sending peer demerits,
//!   and enough of them ban it for a period that doubles with each ban
//!   ([`NetEvent::PeerBanned`]). A banned peer's connections are closed and refused and
//!   whatever it authored is dropped, also when another peer relays it. Naming someone
//!   else as author never costs that someone anything.
//!
//! # What it must never do
//!
//! No consensus logic and no decoding of protocol messages: bytes pass through opaque,
//! checked only against size limits ([`MAX_GOSSIP_BYTES`], [`MAX_REQUEST_BYTES`],
//! [`MAX_RESPONSE_BYTES`]). Whether a vote or a repair request is valid is the node's
//! call. It never blocks the swarm on the node, and never binds an address it was not
//! given.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), bb_net::NetError> {
//! use bb_net::{Acceptance, Misbehaviour, NetConfig, NetEvent, Network, Topic};
//!
//! let config = NetConfig {
//!     seed: [7; 32],
//!     listen: "/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr"),
//!     bootstrap: vec![],
//!     genesis_hash: bb_core::hash(b"genesis"),
//!     mdns: false,
//!     staked: vec![],
//!     rate_limit: bb_net::DEFAULT_RATE_LIMIT,
//!     gossip_author: bb_net::no_author,
//! };
//! let (client, mut events) = Network::spawn(config).await?;
//! client.publish(Topic::Votes, b"signed vote".to_vec()).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         NetEvent::Gossip { message_id, from, bytes, .. } => {
//!             let verdict = if bytes.is_empty() {
//!                 Acceptance::Reject(Misbehaviour::Malformed)
//!             } else {
//!                 Acceptance::Accept
//!             };
//!             client.report_validation(message_id, from, verdict).await?;
//!         }
//!         NetEvent::Request { respond, .. } => {
//!             let _ = respond.send(b"no such shred".to_vec());
//!         }
//!         _ => {}
//!     }
//! }
//! client.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admission;
mod behaviour;
mod config;
mod error;
mod event_loop;
pub mod guard;
mod identity;
mod ingress;
mod wire;

use std::time::Duration;

use libp2p::{SwarmBuilder, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

pub use config::{
    GossipAuthor, MAX_GOSSIP_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, NetConfig,
    REDIAL_INITIAL, REDIAL_MAX, REQUEST_TIMEOUT, Topic, no_author, protocol_version,
};
pub use error::{NetError, RequestFailure};
pub use guard::{
    BAN_THRESHOLD, DEFAULT_RATE_LIMIT, Guard, MessageKind, Misbehaviour, Standing, Verdict,
};
pub use identity::{keypair_from_seed, peer_id_of, pubkey_of};
pub use ingress::{Acceptance, MessageId, NetClient, NetEvent, PeerInfo};
pub use libp2p::{Multiaddr, PeerId};

use behaviour::NodeBehaviour;
use event_loop::{EventLoop, Setup};

/// Commands queued from clients before the task takes them.
const COMMAND_QUEUE: usize = 1024;
/// Events queued for the node before new gossip is dropped.
const EVENT_QUEUE: usize = 8192;
/// A connection no protocol needs is closed after this long (staked peers excepted).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the network task.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Builds the swarm, starts listening, dials the bootstrap peers and spawns the task
    /// that owns it all. Returns once the listener is up, so
    /// [`NetClient::listen_addrs`] already knows the port. Must run inside a tokio
    /// runtime.
    pub async fn spawn(
        config: NetConfig,
    ) -> Result<(NetClient, mpsc::Receiver<NetEvent>), NetError> {
        let key = keypair_from_seed(&config.seed)?;
        let local = pubkey_of(&key.public().to_peer_id())
            .ok_or_else(|| NetError::Identity("not an Ed25519 key".into()))?;
        let behaviour = NodeBehaviour::new(&key, &config.genesis_hash, config.mdns)?;

        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Setup(format!("noise: {e}")))?
            .with_behaviour(|_| behaviour)
            .map_err(|e| NetError::Setup(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();

        for topic in Topic::ALL {
            let topic = libp2p::gossipsub::IdentTopic::new(topic.name(&config.genesis_hash));
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&topic)
                .map_err(|e| NetError::Setup(format!("subscribe: {e}")))?;
        }
        ensure_port_free(&config.listen)?;
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| NetError::Listen {
                addr: config.listen.to_string(),
                reason: e.to_string(),
            })?;

        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let event_loop = EventLoop::new(Setup {
            swarm,
            commands: command_rx,
            events: event_tx,
            genesis: config.genesis_hash,
            bootstrap: config.bootstrap,
            staked: config.staked,
            rate_limit: config.rate_limit,
            gossip_author: config.gossip_author,
            ready: ready_tx,
        });
        tokio::spawn(async move {
            // `run` consumes the loop: by the time it returns the swarm and its listeners
            // are dropped, so a restart can bind the same port at once.
            if let Some(done) = event_loop.run().await {
                let _ = done.send(());
            }
        });
        match ready_rx.await {
            Ok(Ok(())) => Ok((NetClient::new(command_tx, local), event_rx)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetError::Stopped),
        }
    }
}

/// libp2p's TCP listener sets `SO_REUSEPORT`, so a second node on a taken port would
/// bind "successfully" and silently share the port's incoming connections with the first.
/// A plain bind (no `SO_REUSEPORT`) first turns that into a clear error.
fn ensure_port_free(listen: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    use std::net::{IpAddr, SocketAddr, TcpListener};

    let mut ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    for part in listen.iter() {
        match part {
            Protocol::Ip4(a) => ip = Some(a.into()),
            Protocol::Ip6(a) => ip = Some(a.into()),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => TcpListener::bind(SocketAddr::new(ip, port))
            .map(drop)
            .map_err(|e| NetError::Listen {
                addr: listen.to_string(),
                reason: e.to_string(),
            }),
        _ => Ok(()),
    }
}
