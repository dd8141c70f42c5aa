//! The network task's inputs and outputs: the [`NetClient`] that sends it [`Command`]s,
//! and the [`NetEvent`]s it hands up to the node.

use std::time::Duration;

use bb_core::Pubkey;
use libp2p::Multiaddr;
use tokio::sync::{mpsc, oneshot};

use crate::config::{MAX_GOSSIP_BYTES, MAX_REQUEST_BYTES, Topic};
use crate::error::NetError;
use crate::guard::Misbehaviour;

/// Gossipsub's id of one message: what the node names when it reports its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub Vec<u8>);

/// The node's verdict on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: deliver it and forward it to the mesh.
    Accept,
    /// Invalid: drop it, score the peer that forwarded it down in gossipsub, and charge
    /// its author demerits for the misbehaviour (see [`crate::guard`]).
    Reject(Misbehaviour),
    /// Not useful (stale, duplicate content): drop it without penalty.
    Ignore,
}

/// What the network knows of one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    pub pubkey: Pubkey,
    /// Addresses it listens on, as learned from identify, Kademlia, mDNS or dialing it.
    pub addresses: Vec<Multiaddr>,
    /// Last ping round-trip time.
    pub rtt: Option<Duration>,
    /// Connected and known to be on our network.
    pub connected: bool,
    /// Demerits now (a ban at [`crate::BAN_THRESHOLD`]).
    pub demerits: f64,
    /// Bans so far.
    pub bans: u32,
    /// The current ban: time left and why.
    pub banned: Option<(Duration, Misbehaviour)>,
    /// Messages dropped over the rate limit.
    pub rate_limited: u64,
}

/// What the network hands up to the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message waiting for the node's verdict: the node must call
    /// [`NetClient::report_validation`] with `message_id` and `from` exactly once; until it
    /// accepts, the message is not forwarded.
    Gossip {
        topic: Topic,
        /// The peer that sent it to us: whoever the payload names as author, this peer is
        /// scored and charged by the verdict.
        from: Pubkey,
        message_id: MessageId,
        bytes: Vec<u8>,
    },
    /// A repair request; the answer goes back through `respond`. Dropping `respond`
    /// leaves the requester without an answer.
    Request {
        from: Pubkey,
        bytes: Vec<u8>,
        respond: oneshot::Sender<Vec<u8>>,
    },
    /// A peer of our network connected (its identify info matched our genesis).
    PeerConnected(Pubkey),
    /// The last connection to a peer we had reported connected closed.
    PeerDisconnected(Pubkey),
    /// A peer announced another network and was disconnected and refused for a while.
    GenesisMismatch { peer: Pubkey, theirs: String },
    /// A peer was banned: disconnected, refused and its messages dropped for `length`.
    PeerBanned {
        peer: Pubkey,
        reason: Misbehaviour,
        length: Duration,
        /// Bans it has had, this one included.
        count: u32,
    },
}

/// The network task's inputs.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: Topic,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    ReportValidation {
        message_id: MessageId,
        from: Pubkey,
        acceptance: Acceptance,
    },
    Penalize {
        peer: Pubkey,
        why: Misbehaviour,
    },
    SetBlocked {
        blocked: Vec<(Pubkey, Duration)>,
    },
    Request {
        peer: Pubkey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    SetStaked {
        staked: Vec<Pubkey>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// A cheap handle to the network task. Clone it freely; the task stops on
/// [`NetClient::shutdown`] or when every handle is dropped.
#[derive(Debug, Clone)]
pub struct NetClient {
    commands: mpsc::Sender<Command>,
    local: Pubkey,
}

impl NetClient {
    pub(crate) fn new(commands: mpsc::Sender<Command>, local: Pubkey) -> Self {
        NetClient { commands, local }
    }

    /// This node's validator key (its libp2p identity).
    pub fn local_pubkey(&self) -> Pubkey {
        self.local
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Publishes signed bytes on a topic. Fails with [`NetError::NoPeers`] while no
    /// connected peer has subscribed to it.
    pub async fn publish(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), NetError> {
        if bytes.len() > MAX_GOSSIP_BYTES {
            return Err(NetError::TooLarge {
                what: "gossip message",
                len: bytes.len(),
                max: MAX_GOSSIP_BYTES,
            });
        }
        self.ask(|reply| Command::Publish {
            topic,
            bytes,
            reply,
        })
        .await?
    }

    /// Reports the node's verdict on a [`NetEvent::Gossip`] message that `from` sent us;
    /// a rejection charges `from` demerits.
    pub async fn report_validation(
        &self,
        message_id: MessageId,
        from: Pubkey,
        acceptance: Acceptance,
    ) -> Result<(), NetError> {
        self.send(Command::ReportValidation {
            message_id,
            from,
            acceptance,
        })
        .await
    }

    /// Replaces the operator's block list: each peer is disconnected and refused for its
    /// duration; peers of the previous list that are not in this one are let back in.
    /// (`bb-localnet partition` cuts a network this way.)
    pub async fn set_blocked(&self, blocked: Vec<(Pubkey, Duration)>) -> Result<(), NetError> {
        self.send(Command::SetBlocked { blocked }).await
    }

    /// Charges `peer` demerits for misbehaviour the node found (e.g. a malformed
    /// request); enough of them ban it.
    pub async fn penalize(&self, peer: Pubkey, why: Misbehaviour) -> Result<(), NetError> {
        self.send(Command::Penalize { peer, why }).await
    }

    /// Sends a repair request to `peer` and waits for its answer.
    pub async fn request(&self, peer: Pubkey, bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(NetError::TooLarge {
                what: "request",
                len: bytes.len(),
                max: MAX_REQUEST_BYTES,
            });
        }
        self.ask(|reply| Command::Request { peer, bytes, reply })
            .await?
    }

    /// Every peer of our network the node knows of, connected or not.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// The addresses this node listens on (ports resolved).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Replaces the set of validators to keep connected.
    pub async fn set_staked(&self, staked: Vec<Pubkey>) -> Result<(), NetError> {
        self.send(Command::SetStaked { staked }).await
    }

    /// Stops the network task and waits until its listeners are closed. Returns at once
    /// if it has already stopped.
    pub async fn shutdown(&self) {
        // An error means the task is gone already, which is what was asked for.
        let _ = self.ask(|done| Command::Shutdown { done }).await;
    }
}
