//! What a node tells the network when it starts, the limits it enforces, and the names
//! (topics, protocols) that tie everything to one genesis.

use std::fmt;
use std::time::Duration;

use bb_core::{Hash, Pubkey};
use libp2p::Multiaddr;

/// Largest gossip payload handed to or accepted from the network.
pub const MAX_GOSSIP_BYTES: usize = 64 * 1024;
/// Largest repair request.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest repair response (a range of blocks).
pub const MAX_RESPONSE_BYTES: usize = 80 * 1024 * 1024;
/// How long a repair request may take, end to end.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// First redial delay for a lost staked peer; it doubles on each failure.
pub const REDIAL_INITIAL: Duration = Duration::from_secs(1);
/// The redial delay stops doubling here.
pub const REDIAL_MAX: Duration = Duration::from_secs(60);
/// How long a peer of another network is refused after it was found out.
pub const OTHER_NETWORK_BAN: Duration = Duration::from_secs(10 * 60);
/// How often Kademlia refreshes the routing table by looking itself up.
pub const KAD_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// How a node joins the network.
#[derive(Clone)]
pub struct NetConfig {
    /// The validator's Ed25519 secret seed: the libp2p identity is this key.
    pub seed: [u8; 32],
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/8900` (port 0 picks a free one).
    pub listen: Multiaddr,
    /// Peers to dial at start; a trailing `/p2p/<peer id>` is optional.
    pub bootstrap: Vec<Multiaddr>,
    /// The network's name: topics and protocol ids carry it, peers with another are refused.
    pub genesis_hash: Hash,
    /// Multicast discovery on the local link. Off by default: it reaches beyond the machine.
    pub mdns: bool,
    /// Validators to keep connected: kept alive when idle, redialed when lost.
    pub staked: Vec<Pubkey>,
    /// Messages per second accepted from one peer, per kind (each gossip topic, requests);
    /// see [`crate::guard`].
    pub rate_limit: u32,
    /// Who claims to have written a gossip message (see [`GossipAuthor`]).
    pub gossip_author: GossipAuthor,
}

/// Reads who claims to have written a gossip message, without checking anything: the
/// node verifies the payload's signature when it judges the message. Gossip travels in
/// unsigned envelopes (checking an envelope signature on every relayed copy was most of
/// an idle validator's CPU), so the payload's own signer is the only author there is. The
/// network counts gossip against the claimed author's rate limit and drops what a banned
/// author wrote; `None` (a payload with no single author, such as slashing evidence)
/// counts it against the peer that sent it. The claim never costs the claimed author
/// anything: only the peer that sent a message is blamed for it.
pub type GossipAuthor = fn(Topic, &[u8]) -> Option<Pubkey>;

/// A [`GossipAuthor`] for payloads that name no author: gossip is counted by sender.
pub fn no_author(_: Topic, _: &[u8]) -> Option<Pubkey> {
    None
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the seed.
        f.debug_struct("NetConfig")
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("genesis_hash", &self.genesis_hash)
            .field("mdns", &self.mdns)
            .field("staked", &self.staked.len())
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

/// A gossip topic. Each is named by the genesis hash: `bb/<genesis>/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Signed contact info: who a validator is and where to reach it.
    Contact,
    /// Signed Tower BFT votes.
    Votes,
    /// Evidence of a validator signing two conflicting things.
    Slashing,
}

impl Topic {
    pub const ALL: [Topic; 3] = [Topic::Contact, Topic::Votes, Topic::Slashing];

    fn suffix(self) -> &'static str {
        match self {
            Topic::Contact => "contact",
            Topic::Votes => "votes",
            Topic::Slashing => "slashing",
        }
    }

    /// The topic's name on the wire for the network of `genesis`.
    pub fn name(self, genesis: &Hash) -> String {
        format!("bb/{genesis}/{}", self.suffix())
    }
}

/// The identify protocol version: peers whose version differs are of another network.
pub fn protocol_version(genesis: &Hash) -> String {
    format!("bb/1/{genesis}")
}

pub(crate) fn kad_protocol(genesis: &Hash) -> String {
    format!("/bb/{genesis}/kad/1")
}

pub(crate) fn repair_protocol(genesis: &Hash) -> String {
    format!("/bb/{genesis}/repair/1")
}

/// Gossipsub's protocol prefix: a peer of another network cannot even join our gossip.
/// The `unsigned` marks the envelope format: peers that sign envelopes cannot join.
pub(crate) fn gossip_protocol_prefix(genesis: &Hash) -> String {
    format!("/bb/{genesis}/meshsub-unsigned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_genesis_hash() {
        let g = bb_core::hash(b"genesis");
        assert_eq!(Topic::Votes.name(&g), format!("bb/{g}/votes"));
        assert_eq!(protocol_version(&g), format!("bb/1/{g}"));
        assert_eq!(repair_protocol(&g), format!("/bb/{g}/repair/1"));
        for p in [kad_protocol(&g), repair_protocol(&g)] {
            assert!(libp2p::StreamProtocol::try_from_owned(p).is_ok());
        }
    }
}
