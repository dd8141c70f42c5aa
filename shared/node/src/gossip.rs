//! The libp2p side of a node: validates gossip before it is forwarded (votes and contact
//! info must be signed by a staked validator of our genesis), serves repair and forwarded
//! transactions, sends what the engine dispatches, and advertises our contact info.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bb_core::{Canonical, Evidence, Keypair, Pubkey, SignedVote};
use bb_engine::EvidenceOutcome;
use bb_net::{Acceptance, Misbehaviour, NetClient, NetEvent, Topic};
use rand::RngExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::engine::{Dispatch, EngineMsg, Query, ask};
use crate::fault::Faults;
use crate::gulfstream::{FORWARD_TIMEOUT, Forwarded, LeaderAnswer};
use crate::state::{Shared, now_ms};
use crate::turbine::Turbine;
use crate::wire::{ContactInfo, Request, Response, SignedContactInfo};

/// Clock skew above which we warn.
const SKEW_WARN_MS: i64 = 100;

/// Handles network events until the network stops.
pub async fn handle_events(
    mut events: mpsc::Receiver<NetEvent>,
    net: NetClient,
    shared: Arc<Shared>,
    engine: mpsc::Sender<EngineMsg>,
) {
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    while events.recv_many(&mut batch, EVENT_BATCH).await > 0 {
        let mut votes = check_votes(&shared, &batch).into_iter();
        for event in batch.drain(..) {
            handle_event(event, &mut votes, &net, &shared, &engine).await;
        }
    }
}

/// Events taken from the network's queue at once, at most: the votes among them have
/// their signatures checked together.
const EVENT_BATCH: usize = 64;

/// What the checks before the engine made of one gossiped vote.
type CheckedVote = Result<SignedVote, Misbehaviour>;

/// The votes among `events`, in order, decoded and checked: staked voter, and the
/// signatures of all of them verified as one batch. A hundred validators vote every slot
/// and their votes arrive together, so this halves the signature work per vote.
fn check_votes(shared: &Shared, events: &[NetEvent]) -> Vec<CheckedVote> {
    let mut checked: Vec<CheckedVote> = events
        .iter()
        .filter_map(|e| match e {
            NetEvent::Gossip {
                topic: Topic::Votes,
                bytes,
                ..
            } => Some(bytes),
            _ => None,
        })
        .map(|bytes| {
            shared.metrics.received("vote");
            let vote = SignedVote::from_bytes(bytes).map_err(|_| Misbehaviour::Malformed)?;
            // Only a staked validator's vote, signed by it, is forwarded.
            if !shared.stakes.contains_key(&vote.vote.voter) {
                return Err(Misbehaviour::Malformed);
            }
            Ok(vote)
        })
        .collect();
    let decoded: Vec<SignedVote> = checked.iter().filter_map(|c| c.ok()).collect();
    let mut verdicts = bb_core::verify_votes(&decoded).into_iter();
    for c in &mut checked {
        if c.is_ok() && verdicts.next() == Some(false) {
            *c = Err(Misbehaviour::InvalidSignature);
        }
    }
    checked
}

async fn handle_event(
    event: NetEvent,
    votes: &mut impl Iterator<Item = CheckedVote>,
    net: &NetClient,
    shared: &Arc<Shared>,
    engine: &mpsc::Sender<EngineMsg>,
) {
    match event {
        NetEvent::Gossip {
            topic,
            from,
            message_id,
            bytes,
        } => {
            let verdict = match topic {
                Topic::Votes => match votes.next() {
                    Some(checked) => on_vote(engine, checked, bytes).await,
                    None => Acceptance::Ignore,
                },
                Topic::Contact => on_contact(shared, &bytes),
                Topic::Slashing => on_evidence(shared, engine, &bytes).await,
            };
            let _ = net.report_validation(message_id, from, verdict).await;
        }
        NetEvent::Request {
            from,
            bytes,
            respond,
        } => {
            let engine = engine.clone();
            let shared = shared.clone();
            let net = net.clone();
            tokio::spawn(async move {
                let answer = serve_request(&shared, &engine, &net, from, &bytes).await;
                let _ = respond.send(answer.to_bytes());
            });
        }
        NetEvent::PeerConnected(p) => {
            info!(peer = %p.short(), "peer connected");
            set_connected(shared, p, true);
        }
        NetEvent::PeerDisconnected(p) => {
            info!(peer = %p.short(), "peer disconnected");
            set_connected(shared, p, false);
        }
        NetEvent::GenesisMismatch { peer, theirs } => {
            warn!(peer = %peer.short(), theirs, "dropped a peer of another network");
        }
        NetEvent::PeerBanned {
            peer,
            reason,
            length,
            count,
        } => {
            warn!(
                peer = %peer.short(),
                %reason,
                seconds = length.as_secs(),
                bans = count,
                "peer banned"
            );
            shared
                .metrics
                .peer_bans
                .get_or_create(&crate::metrics::KindLabel {
                    kind: reason.label().into(),
                })
                .inc();
            if let Ok(mut peers) = shared.peers.write() {
                peers.entry(peer).or_default().banned_until =
                    Some((Instant::now() + length, reason));
            }
        }
    }
}

fn set_connected(shared: &Shared, peer: Pubkey, connected: bool) {
    if let Ok(mut peers) = shared.peers.write() {
        peers.entry(peer).or_default().connected = connected;
        let n = peers.values().filter(|p| p.connected).count();
        shared.metrics.peers_connected.set(n as i64);
        drop(peers);
        shared.check_reachable();
    }
}

/// Who a gossip payload says wrote it, unchecked (the network counts gossip by it; see
/// [`bb_net::GossipAuthor`]): a vote's voter, contact info's validator. Slashing evidence
/// speaks for nobody in particular and is counted by the peer that sent it.
pub(crate) fn gossip_author(topic: Topic, bytes: &[u8]) -> Option<Pubkey> {
    match topic {
        Topic::Votes => SignedVote::from_bytes(bytes).ok().map(|v| v.vote.voter),
        Topic::Contact => SignedContactInfo::from_bytes(bytes)
            .ok()
            .map(|c| c.info.identity),
        Topic::Slashing => None,
    }
}

/// A vote [`check_votes`] looked at: forwarded to the engine if it passed.
async fn on_vote(
    engine: &mpsc::Sender<EngineMsg>,
    checked: CheckedVote,
    raw: Vec<u8>,
) -> Acceptance {
    match checked {
        Ok(vote) => {
            let _ = engine.send(EngineMsg::Vote { vote, raw }).await;
            Acceptance::Accept
        }
        Err(why) => Acceptance::Reject(why),
    }
}

/// Slashing evidence: forwarded only if it proves an offense this node did not know of.
/// Anyone may publish it (the proof is in the signatures), but proof of nothing is
/// rejected and scores the forwarder down.
async fn on_evidence(
    shared: &Shared,
    engine: &mpsc::Sender<EngineMsg>,
    bytes: &[u8],
) -> Acceptance {
    shared.metrics.received("slashing");
    let Ok(evidence) = Evidence::from_bytes(bytes) else {
        return Acceptance::Reject(Misbehaviour::Malformed);
    };
    let (reply, verdict) = tokio::sync::oneshot::channel();
    if engine
        .send(EngineMsg::Evidence { evidence, reply })
        .await
        .is_err()
    {
        return Acceptance::Ignore;
    }
    match verdict.await {
        Ok(EvidenceOutcome::New(_)) => Acceptance::Accept,
        Ok(EvidenceOutcome::Invalid(e)) => {
            debug!("invalid slashing evidence: {e}");
            Acceptance::Reject(match e {
                bb_core::EvidenceError::BadSignature => Misbehaviour::InvalidSignature,
                _ => Misbehaviour::Malformed,
            })
        }
        Ok(EvidenceOutcome::Known(_) | EvidenceOutcome::Stale(_)) | Err(_) => Acceptance::Ignore,
    }
}

fn on_contact(shared: &Shared, bytes: &[u8]) -> Acceptance {
    shared.metrics.received("contact");
    let Ok(signed) = SignedContactInfo::from_bytes(bytes) else {
        return Acceptance::Reject(Misbehaviour::Malformed);
    };
    let info = &signed.info;
    let source = info.identity;
    if info.genesis_hash != shared.genesis_hash || !shared.stakes.contains_key(&source) {
        return Acceptance::Reject(Misbehaviour::Malformed);
    }
    if signed.verify().is_err() {
        return Acceptance::Reject(Misbehaviour::InvalidSignature);
    }
    let skew = now_ms() as i64 - info.wallclock_ms as i64;
    if let Ok(mut peers) = shared.peers.write() {
        let p = peers.entry(source).or_default();
        let was_skewed = p.clock_skew_ms.is_some_and(|s| s.abs() > SKEW_WARN_MS);
        if skew.abs() > SKEW_WARN_MS && !was_skewed {
            warn!(peer = %source.short(), skew_ms = skew, "peer clock differs by more than 100 ms");
        }
        p.gossip_addr = info.gossip_addr.clone();
        p.shred_addr = info.shred_addr.parse().ok();
        p.rpc_addr = info.rpc_addr.clone();
        p.version = info.version.clone();
        p.latest_slot = Some(info.latest_slot);
        p.clock_skew_ms = Some(skew);
        p.last_contact = Some(Instant::now());
    }
    Acceptance::Accept
}

async fn serve_request(
    shared: &Shared,
    engine: &mpsc::Sender<EngineMsg>,
    net: &NetClient,
    from: Pubkey,
    bytes: &[u8],
) -> Response {
    shared.metrics.received("request");
    let Ok(request) = Request::from_bytes(bytes) else {
        debug!(peer = %from.short(), "malformed request");
        let _ = net.penalize(from, Misbehaviour::Malformed).await;
        return Response::Blocks(Vec::new());
    };
    let blocks = match request {
        Request::Ancestors { slot, count } => {
            let count = (count as usize).clamp(1, crate::wire::MAX_RANGE as usize);
            ask(engine, |reply| Query::Ancestors { slot, count, reply }).await
        }
        Request::Range { from, to } => ask(engine, |reply| Query::Range { from, to, reply }).await,
        Request::Forward(txs) => {
            // Signatures are checked here, off the engine thread and before the slot
            // ends (remembered, so our block and the next leader's replay skip them). A
            // peer forwards only what it screened: a forged one loses the whole batch.
            // A full queue refuses (and counts) the batch before any work is spent on it.
            if shared.pending.is_full() {
                let taken = crate::gulfstream::offer_to_engine(shared, engine, txs).await;
                return Response::Accepted(u32::try_from(taken).unwrap_or(u32::MAX));
            }
            let verified = shared.verified.clone();
            let checked = tokio::task::spawn_blocking(move || {
                let ok = verified.verify(&txs).is_ok();
                (txs, ok)
            })
            .await;
            let txs = match checked {
                Ok((txs, true)) => txs,
                Ok((_, false)) => {
                    debug!(peer = %from.short(), "forwarded a transaction whose signature does not verify");
                    let _ = net.penalize(from, Misbehaviour::InvalidSignature).await;
                    return Response::Accepted(0);
                }
                Err(_) => return Response::Accepted(0),
            };
            // Only what the pending queue really took is acknowledged: the forwarder
            // tells its client the rest were refused (leader busy).
            let taken = crate::gulfstream::offer_to_engine(shared, engine, txs).await;
            return Response::Accepted(u32::try_from(taken).unwrap_or(u32::MAX));
        }
    };
    Response::Blocks(
        blocks
            .unwrap_or_default()
            .iter()
            .map(|b| b.to_bytes())
            .collect(),
    )
}

/// Carries out what the engine dispatches: votes to gossip, blocks to Turbine, repairs.
pub async fn dispatch(
    mut inbox: mpsc::UnboundedReceiver<Dispatch>,
    net: NetClient,
    turbine: Arc<Turbine>,
    shared: Arc<Shared>,
    engine: mpsc::Sender<EngineMsg>,
    faults: Faults,
) {
    while let Some(d) = inbox.recv().await {
        match d {
            Dispatch::Vote(v) => {
                let net = net.clone();
                let shared = shared.clone();
                let delay = faults.delay;
                tokio::spawn(async move {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    shared.metrics.sent("vote");
                    if let Err(e) = net.publish(Topic::Votes, v.to_bytes()).await {
                        debug!(slot = v.vote.slot, "publishing a vote: {e}");
                    }
                });
            }
            Dispatch::Evidence(evidence) => {
                shared.metrics.sent("slashing");
                if let Err(e) = net.publish(Topic::Slashing, evidence.to_bytes()).await {
                    debug!("publishing slashing evidence: {e}");
                }
            }
            Dispatch::Block(b) => {
                let turbine = turbine.clone();
                tokio::spawn(async move { turbine.broadcast(b).await });
            }
            Dispatch::Repair { slot, hint } => {
                let net = net.clone();
                let shared = shared.clone();
                let engine = engine.clone();
                tokio::spawn(async move { repair(net, shared, engine, slot, hint).await });
            }
        }
    }
}

/// Asks one peer for a block and its ancestors, and feeds the answer to the engine.
async fn repair(
    net: NetClient,
    shared: Arc<Shared>,
    engine: mpsc::Sender<EngineMsg>,
    slot: bb_core::Slot,
    hint: Option<Pubkey>,
) {
    let connected: Vec<Pubkey> = shared
        .peers
        .read()
        .map(|p| {
            p.iter()
                .filter(|(_, v)| v.connected)
                .map(|(k, _)| *k)
                .collect()
        })
        .unwrap_or_default();
    if connected.is_empty() {
        return;
    }
    let peer = match hint {
        Some(h) if connected.contains(&h) => h,
        _ => connected[rand::rng().random_range(0..connected.len())],
    };
    shared.metrics.sent("repair");
    let request = Request::Ancestors { slot, count: 32 };
    let answer = match tokio::time::timeout(
        Duration::from_secs(5),
        net.request(peer, request.to_bytes()),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            debug!(slot, peer = %peer.short(), "repair failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let Ok(response) = Response::from_bytes(&answer) else {
        warn!(peer = %peer.short(), "malformed repair answer");
        return;
    };
    for block in response.blocks() {
        let _ = engine
            .send(EngineMsg::Block {
                block: Arc::new(block),
                from: Some(peer),
            })
            .await;
    }
}

/// How often a validator advertises its contact info in a network of `validators`: every
/// two seconds up to 20 validators, then less often, so each node checks about ten
/// contact signatures a second however many validators there are (at a hundred, a
/// two-second period was fifty a second per node, all of them on one machine's cores in
/// a localnet).
pub fn contact_interval(validators: usize) -> Duration {
    const BASE: Duration = Duration::from_secs(2);
    const UP_TO: usize = 20;
    BASE * u32::try_from(validators.div_ceil(UP_TO).max(1)).unwrap_or(u32::MAX)
}

/// Advertises our signed contact info every [`contact_interval`].
pub async fn advertise(
    net: NetClient,
    shared: Arc<Shared>,
    identity: Keypair,
    gossip_addr: String,
    shred_addr: String,
    rpc_addr: String,
) {
    let mut tick = tokio::time::interval(contact_interval(shared.stakes.len()));
    loop {
        tick.tick().await;
        let info = ContactInfo {
            identity: identity.pubkey(),
            genesis_hash: shared.genesis_hash,
            gossip_addr: gossip_addr.clone(),
            shred_addr: shred_addr.clone(),
            rpc_addr: rpc_addr.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            latest_slot: shared.status().processed.slot,
            wallclock_ms: now_ms(),
        }
        .sign(&identity);
        shared.metrics.sent("contact");
        if let Err(e) = net.publish(Topic::Contact, info.to_bytes()).await {
            debug!("advertising contact info: {e}");
        }
    }
}

/// Sends transactions to the current and next leaders (Gulf Stream); ours go straight to
/// the engine. Both leaders are asked at once, each within [`FORWARD_TIMEOUT`]; the answer
/// says how many of the batch (from its start) a leader took and why the rest was not.
pub async fn forward_transactions(
    net: &NetClient,
    shared: &Shared,
    engine: &mpsc::Sender<EngineMsg>,
    txs: Vec<bb_core::Transaction>,
) -> Forwarded {
    let (slot, leaders) = forward_leaders(shared);
    let n = txs.len();
    let asks = leaders.into_iter().map(|leader| {
        let txs = txs.clone();
        async move {
            if leader_is_full(shared, &leader, slot) {
                // It refused earlier this slot and drains only at the slot's end.
                return (leader, LeaderAnswer::Took(0));
            }
            let answer = if leader == shared.identity {
                match tokio::time::timeout(
                    FORWARD_TIMEOUT,
                    crate::gulfstream::offer_to_engine(shared, engine, txs),
                )
                .await
                {
                    Ok(taken) => LeaderAnswer::Took(taken),
                    Err(_) => LeaderAnswer::Unreached(format!(
                        "this node's own engine did not answer within {} s",
                        FORWARD_TIMEOUT.as_secs()
                    )),
                }
            } else {
                shared.metrics.sent("forward");
                let bytes = Request::Forward(txs).to_bytes();
                match tokio::time::timeout(FORWARD_TIMEOUT, net.request(leader, bytes)).await {
                    Err(_) => LeaderAnswer::Unreached(format!(
                        "leader {} did not answer within {} s",
                        leader.short(),
                        FORWARD_TIMEOUT.as_secs()
                    )),
                    Ok(Err(e)) => {
                        debug!(leader = %leader.short(), "forwarding transactions: {e}");
                        LeaderAnswer::Unreached(format!("leader {} failed ({e})", leader.short()))
                    }
                    Ok(Ok(bytes)) => match Response::from_bytes(&bytes) {
                        Ok(Response::Accepted(taken)) => {
                            LeaderAnswer::Took(usize::try_from(taken).unwrap_or(usize::MAX))
                        }
                        _ => LeaderAnswer::Unreached(format!(
                            "leader {} sent an answer that is not a forward receipt",
                            leader.short()
                        )),
                    },
                }
            };
            if matches!(answer, LeaderAnswer::Took(k) if k < n) && leader != shared.identity {
                shared.busy_leaders.mark(leader, slot);
            }
            (leader, answer)
        }
    });
    let answers = futures::future::join_all(asks).await;
    Forwarded::from_answers(n, &answers)
}

/// Whether every leader a forward would go to now is known to be full (this slot), so a
/// submission can be refused before any work is spent on it.
pub fn leaders_all_full(shared: &Shared) -> bool {
    let (slot, leaders) = forward_leaders(shared);
    !leaders.is_empty() && leaders.iter().all(|l| leader_is_full(shared, l, slot))
}

/// Whether `leader` is known to have no room in `slot`: our own queue by its level,
/// another leader by its answer earlier in the slot.
fn leader_is_full(shared: &Shared, leader: &Pubkey, slot: bb_core::Slot) -> bool {
    if *leader == shared.identity {
        shared.pending.is_full()
    } else {
        shared.busy_leaders.is_busy(leader, slot)
    }
}

/// The slot now and the leaders Gulf Stream forwards to in it.
fn forward_leaders(shared: &Shared) -> (bb_core::Slot, Vec<Pubkey>) {
    let slot = shared.clock_slot();
    let per = shared.genesis.leader_slots_per_rotation.max(1);
    // The current and next leaders, skipping those this node has banned or blocked
    // (they cannot be reached): the next rotation's leader stands in.
    let now = Instant::now();
    let shut_out = |k: &Pubkey| {
        shared.peers.read().is_ok_and(|p| {
            p.get(k).is_some_and(|v| {
                v.banned_until.is_some_and(|(t, _)| t > now)
                    || v.blocked_until.is_some_and(|t| t > now)
            })
        })
    };
    let mut leaders: Vec<Pubkey> = Vec::new();
    for s in [slot, slot + 1, slot + per, slot + 2 * per, slot + 3 * per] {
        if leaders.len() >= 2 {
            break;
        }
        if let Some(l) = shared.leader_of(s)
            && !shut_out(&l)
            && !leaders.contains(&l)
        {
            leaders.push(l);
        }
    }
    (slot, leaders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_signatures_per_node_stay_near_ten_a_second() {
        assert_eq!(contact_interval(0), Duration::from_secs(2));
        assert_eq!(contact_interval(3), Duration::from_secs(2));
        assert_eq!(contact_interval(20), Duration::from_secs(2));
        assert_eq!(contact_interval(21), Duration::from_secs(4));
        assert_eq!(contact_interval(100), Duration::from_secs(10));
        for n in [1usize, 20, 50, 100, 128, 1000] {
            let per_second = n as f64 / contact_interval(n).as_secs_f64();
            assert!(per_second <= 10.0, "{n} validators: {per_second} a second");
        }
    }
}
