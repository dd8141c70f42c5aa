//! Who may stay connected: a small behaviour that refuses peers found to be on another
//! network and keeps connections to staked validators open while they are idle.
//!
//! Without it libp2p closes a connection once no protocol needs it (gossipsub keeps only
//! mesh peers), and a peer of another genesis could reconnect as soon as it was dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::task::{Context, Poll, Waker};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use tokio::time::Instant;

/// The reason a connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("peer belongs to another network")]
pub(crate) struct OtherNetwork;

#[derive(Debug, Default)]
pub(crate) struct Admission {
    staked: HashSet<PeerId>,
    /// Peers of another network, refused until the instant.
    banned: HashMap<PeerId, Instant>,
    connections: HashMap<PeerId, HashSet<ConnectionId>>,
    pending: VecDeque<ToSwarm<Infallible, bool>>,
    waker: Option<Waker>,
}

impl Admission {
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned
            .get(peer)
            .is_some_and(|until| *until > Instant::now())
    }

    /// Refuses `peer` until `until` and closes its connections.
    pub(crate) fn ban(&mut self, peer: PeerId, until: Instant) {
        let now = Instant::now();
        self.banned.retain(|_, t| *t > now);
        self.banned.insert(peer, until);
        self.push(ToSwarm::CloseConnection {
            peer_id: peer,
            connection: libp2p::swarm::CloseConnection::All,
        });
    }

    /// Lifts a ban early.
    pub(crate) fn unban(&mut self, peer: &PeerId) {
        self.banned.remove(peer);
    }

    /// Replaces the set of peers whose connections are kept alive.
    pub(crate) fn set_staked(&mut self, staked: HashSet<PeerId>) {
        let changed: Vec<PeerId> = self.staked.symmetric_difference(&staked).copied().collect();
        for peer in changed {
            let keep = staked.contains(&peer);
            for connection in self.connections.get(&peer).into_iter().flatten() {
                self.pending.push_back(ToSwarm::NotifyHandler {
                    peer_id: peer,
                    handler: NotifyHandler::One(*connection),
                    event: keep,
                });
            }
        }
        self.staked = staked;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn push(&mut self, event: ToSwarm<Infallible, bool>) {
        self.pending.push_back(event);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn admit(&self, peer: &PeerId) -> Result<KeepAlive, ConnectionDenied> {
        if self.is_banned(peer) {
            return Err(ConnectionDenied::new(OtherNetwork));
        }
        Ok(KeepAlive {
            keep_alive: self.staked.contains(peer),
        })
    }
}

impl NetworkBehaviour for Admission {
    type ConnectionHandler = KeepAlive;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(&peer)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(&peer)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .insert(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(set) = self.connections.get_mut(&e.peer_id) {
                    set.remove(&e.connection_id);
                    if set.is_empty() {
                        self.connections.remove(&e.peer_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(event) = self.pending.pop_front() {
            return Poll::Ready(event);
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A connection handler that speaks no protocol and only says whether to keep the
/// connection open; the behaviour flips it when the staked set changes.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    keep_alive: bool,
}

impl ConnectionHandler for KeepAlive {
    type FromBehaviour = bool;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        self.keep_alive
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, keep_alive: bool) {
        self.keep_alive = keep_alive;
    }

    fn on_connection_event(
        &mut self,
        _: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        // No protocol is ever negotiated on this handler, so no event carries anything.
    }
}
