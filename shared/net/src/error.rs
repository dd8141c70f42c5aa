//! What can go wrong between the node and the network.

use std::time::Duration;

/// Why a network call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("bad identity key: {0}")]
    Identity(String),
    #[error("cannot build the libp2p stack: {0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("no connected peer is subscribed to the topic yet")]
    NoPeers,
    #[error("this exact message was already published")]
    Duplicate,
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("not an Ed25519 public key: {0}")]
    InvalidPeer(String),
    #[error("request to {peer} failed: {reason}")]
    Request {
        peer: String,
        reason: RequestFailure,
    },
    #[error("the network task has stopped")]
    Stopped,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailure {
    #[error("could not connect")]
    Dial,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection closed before the answer")]
    ConnectionClosed,
    #[error("the peer does not serve repair for this network")]
    Unsupported,
    #[error("the peer did not answer")]
    NoAnswer,
    #[error("i/o: {0}")]
    Io(String),
}
