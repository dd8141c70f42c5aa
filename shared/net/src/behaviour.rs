//! The libp2p protocols a validator speaks, configured for one network (genesis).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bb_core::{Hash, hashv};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, gossipsub, identify, identity, kad, mdns, ping, request_response};

use crate::admission::Admission;
use crate::config::{
    KAD_BOOTSTRAP_INTERVAL, MAX_GOSSIP_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
    REQUEST_TIMEOUT, Topic, gossip_protocol_prefix, kad_protocol, protocol_version,
    repair_protocol,
};
use crate::error::NetError;
use crate::wire::{RepairRequest, RepairResponse};

pub(crate) type Repair = request_response::cbor::Behaviour<RepairRequest, RepairResponse>;

#[derive(NetworkBehaviour)]
pub(crate) struct NodeBehaviour {
    pub(crate) admission: Admission,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) repair: Repair,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Wire overhead of a gossipsub message around its payload: signature, key, topic,
/// sequence number and protobuf framing.
const GOSSIP_ENVELOPE_BYTES: usize = 4 * 1024;

impl NodeBehaviour {
    pub(crate) fn new(
        key: &identity::Keypair,
        genesis: &Hash,
        mdns_on: bool,
    ) -> Result<Self, NetError> {
        let local = key.public().to_peer_id();
        let setup = |e: String| NetError::Setup(e);

        let identify = identify::Behaviour::new(
            identify::Config::new(protocol_version(genesis), key.public())
                .with_agent_version(format!("bb-validator/{}", env!("CARGO_PKG_VERSION")))
                .with_push_listen_addr_updates(true),
        );

        let ping = ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15)));

        let gossipsub = gossip(genesis)?;

        let kad_name = StreamProtocol::try_from_owned(kad_protocol(genesis))
            .map_err(|e| setup(e.to_string()))?;
        let mut kad_config = kad::Config::new(kad_name);
        kad_config
            .set_periodic_bootstrap_interval(Some(KAD_BOOTSTRAP_INTERVAL))
            .set_query_timeout(Duration::from_secs(30))
            // Records are not used; peers are what Kademlia is for here.
            .set_record_filtering(kad::StoreInserts::FilterBoth);
        let mut kad =
            kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kad_config);
        // Without a confirmed external address Kademlia stays a client and never answers
        // lookups; validators on private or loopback addresses must still serve.
        kad.set_mode(Some(kad::Mode::Server));

        let repair_name = StreamProtocol::try_from_owned(repair_protocol(genesis))
            .map_err(|e| setup(e.to_string()))?;
        let codec = request_response::cbor::codec::Codec::default()
            // CBOR adds a few bytes of framing to the byte string.
            .set_request_size_maximum((MAX_REQUEST_BYTES + 64) as u64)
            .set_response_size_maximum((MAX_RESPONSE_BYTES + 64) as u64);
        let repair = Repair::with_codec(
            codec,
            [(repair_name, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
        );

        let mdns = if mdns_on {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), local)
                    .map_err(|e| setup(format!("mdns: {e}")))?,
            )
        } else {
            None
        };

        Ok(NodeBehaviour {
            admission: Admission::default(),
            identify,
            ping,
            gossipsub,
            kad,
            repair,
            mdns: Toggle::from(mdns),
        })
    }
}

/// Gossipsub for up to ~100 validators: messages the node judges one by one,
/// content-addressed ids, and peer scoring that punishes invalid messages hard and little
/// else (vote traffic is bursty and slashing evidence is rare, so delivery-rate penalties
/// would punish honest quiet peers).
///
/// Envelopes are unsigned (`Anonymous`: no author, sequence number or signature, and a
/// message carrying any of them is refused). Every bb gossip payload is signed by the
/// validator it speaks for, and the node checks that signature once per message, since
/// gossipsub drops repeated copies by content id before the node sees them. An envelope
/// signature would be checked on every copy from every mesh peer, before that drop: with
/// 30 validators on one machine that check was a third of all CPU.
fn gossip(genesis: &Hash) -> Result<gossipsub::Behaviour, NetError> {
    let setup = |e: String| NetError::Setup(format!("gossipsub: {e}"));
    let config = gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(gossip_protocol_prefix(genesis))
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES + GOSSIP_ENVELOPE_BYTES)
        // One message per content: the same vote relayed by many peers is one message.
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(hashv(&[m.topic.as_str().as_bytes(), &m.data]).0.to_vec())
        })
        .heartbeat_interval(Duration::from_secs(1))
        // A publisher sends to every peer it has (flood publish, gossipsub's default), so
        // a message is one hop from everyone connected to its author (validators connect
        // to every staked peer), and the mesh is the backup. Every mesh peer forwards
        // every message once, so each node gets about `mesh_n` + 1 copies of everything:
        // with every validator voting every slot, that is the network's whole cost (100
        // validators, 2 mesh peers: 300 copies a slot per node, against 500 with 4 and
        // 900 with 8). Lazy gossip (below) heals what both paths miss.
        .mesh_n(2)
        .mesh_n_low(1)
        .mesh_n_high(3)
        .mesh_outbound_min(1)
        // Lazy gossip (IHAVE) goes to a few peers outside the mesh, naming the last two
        // heartbeats' messages: enough to heal a lost copy, small enough to stay cheap
        // when a hundred validators vote every slot. Exactly `gossip_lazy` peers: the
        // default factor (a quarter of the peers outside the mesh, when more) sent each
        // node's IHAVE of a few hundred ids to 24 peers a second at 100 validators, and
        // decoding and looking up the ids received was the biggest single cost there.
        .gossip_lazy(3)
        .gossip_factor(0.0)
        .history_length(5)
        .history_gossip(2)
        .duplicate_cache_time(Duration::from_secs(120))
        // A message may wait 10 s in a peer's send queue (not 1 s for forwards and 5 s
        // for our own), so a queue that refuses messages is full, not merely late: on a
        // saturated machine forwards routinely wait over a second, and those expiries
        // are reported like refusals (bb-net cuts a link refused for 10 heartbeats in a
        // row). 1000 queued messages is 10 s of a mesh peer's traffic at 100 validators,
        // and bounds what one stuck peer holds.
        .publish_queue_duration(Duration::from_secs(10))
        .forward_queue_duration(Duration::from_secs(10))
        .connection_handler_queue_len(1000)
        .build()
        .map_err(|e| setup(e.to_string()))?;

    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
            .map_err(|e| setup(e.to_string()))?;

    let mut topics = HashMap::new();
    for topic in Topic::ALL {
        let hash = gossipsub::IdentTopic::new(topic.name(genesis)).hash();
        topics.insert(hash, topic_score(topic));
    }
    let params = gossipsub::PeerScoreParams {
        topics,
        topic_score_cap: 50.0,
        app_specific_weight: 0.0,
        // A localnet runs every validator on one address; only real hosts are counted.
        ip_colocation_factor_weight: -5.0,
        ip_colocation_factor_threshold: 10.0,
        ip_colocation_factor_whitelist: [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .into_iter()
        .collect(),
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
        decay_interval: Duration::from_secs(1),
        decay_to_zero: 0.01,
        retain_score: Duration::from_secs(3600),
        // A validator slow to drain its queue (a busy machine, a flood being relayed)
        // must still get its votes through; abuse is the guard's job (rate limits, bans).
        slow_peer_weight: 0.0,
        ..Default::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -50.0,
        publish_threshold: -100.0,
        graylist_threshold: -200.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 3.0,
    };
    behaviour
        .with_peer_score(params, thresholds)
        .map_err(setup)?;
    Ok(behaviour)
}

/// Score parameters of one topic: a little credit for time in the mesh and for first
/// deliveries, a heavy, slowly fading penalty per invalid message.
fn topic_score(topic: Topic) -> gossipsub::TopicScoreParams {
    let weight = match topic {
        Topic::Votes => 1.0,
        Topic::Contact => 0.5,
        Topic::Slashing => 0.5,
    };
    gossipsub::TopicScoreParams {
        topic_weight: weight,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 300.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(300)),
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_message_deliveries_decay: 0.5,
        mesh_message_deliveries_cap: 100.0,
        mesh_message_deliveries_threshold: 1.0,
        mesh_message_deliveries_window: Duration::from_millis(10),
        mesh_message_deliveries_activation: Duration::from_secs(30),
        mesh_failure_penalty_weight: 0.0,
        mesh_failure_penalty_decay: 0.5,
        // Squared count: three invalid votes put a peer past the gossip threshold.
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(
            3600,
        )),
    }
}
