//! Real swarms on 127.0.0.1 talking over TCP: discovery, gossip with validation,
//! repair requests, genesis separation and redial of staked peers.

use std::time::Duration;

use bb_core::{Hash, Keypair, Pubkey};
use bb_net::{
    Acceptance, MessageKind, Misbehaviour, Multiaddr, NetClient, NetConfig, NetError, NetEvent,
    Network, RequestFailure, Topic, peer_id_of, pubkey_of,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// What a test node's event handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Gossip {
        topic: Topic,
        from: Pubkey,
        bytes: Vec<u8>,
    },
    Request(Pubkey),
    Connected(Pubkey),
    Disconnected(Pubkey),
    Mismatch {
        peer: Pubkey,
        theirs: String,
    },
    Banned {
        peer: Pubkey,
        reason: Misbehaviour,
    },
}

struct Node {
    client: NetClient,
    pubkey: Pubkey,
    seen: mpsc::UnboundedReceiver<Seen>,
}

fn genesis(name: &str) -> Hash {
    bb_core::hash(name.as_bytes())
}

fn seed(n: u8) -> [u8; 32] {
    Keypair::from_seed(&[n; 32]).secret_seed()
}

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")
}

fn config(n: u8, genesis: Hash, listen: Multiaddr, bootstrap: Vec<Multiaddr>) -> NetConfig {
    NetConfig {
        seed: seed(n),
        listen,
        bootstrap,
        genesis_hash: genesis,
        mdns: false,
        staked: vec![],
        rate_limit: bb_net::DEFAULT_RATE_LIMIT,
        gossip_author: test_author,
    }
}

/// The tests' payload format: a payload of 32 bytes or more names its author in the
/// first 32 (a stand-in for the node's signed payloads; nothing here checks the claim,
/// and the network must not rely on it).
fn test_author(_: Topic, bytes: &[u8]) -> Option<Pubkey> {
    let key: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    Some(Pubkey(key))
}

fn authored(author: Pubkey, text: &str) -> Vec<u8> {
    let mut bytes = author.0.to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Starts a node whose handler accepts every gossip message (except those starting with
/// `garbage`, which it rejects as malformed) and answers every request with
/// `answer from <n>: <request>`, reporting what it saw.
async fn start(n: u8, config: NetConfig) -> Node {
    let (client, mut events) = Network::spawn(config).await.expect("node starts");
    let (tx, seen) = mpsc::unbounded_channel();
    let handler = client.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let seen = match event {
                NetEvent::Gossip {
                    topic,
                    from,
                    message_id,
                    bytes,
                } => {
                    let text = bytes.get(32..).unwrap_or_default();
                    let verdict = if bytes.starts_with(b"garbage") || text.starts_with(b"garbage") {
                        Acceptance::Reject(Misbehaviour::Malformed)
                    } else {
                        Acceptance::Accept
                    };
                    handler
                        .report_validation(message_id, from, verdict)
                        .await
                        .ok();
                    Seen::Gossip { topic, from, bytes }
                }
                NetEvent::Request {
                    from,
                    bytes,
                    respond,
                } => {
                    // A handler that drops `respond` leaves the requester without an answer.
                    if bytes != b"unanswerable" {
                        let mut answer = format!("answer from {n}: ").into_bytes();
                        answer.extend_from_slice(&bytes);
                        respond.send(answer).ok();
                    }
                    Seen::Request(from)
                }
                NetEvent::PeerConnected(p) => Seen::Connected(p),
                NetEvent::PeerDisconnected(p) => Seen::Disconnected(p),
                NetEvent::GenesisMismatch { peer, theirs } => Seen::Mismatch { peer, theirs },
                NetEvent::PeerBanned { peer, reason, .. } => Seen::Banned { peer, reason },
            };
            if tx.send(seen).is_err() {
                break;
            }
        }
    });
    let pubkey = client.local_pubkey();
    assert_eq!(pubkey, Keypair::from_seed(&[n; 32]).pubkey());
    Node {
        client,
        pubkey,
        seen,
    }
}

async fn listen_addr(node: &Node) -> Multiaddr {
    let addrs = node.client.listen_addrs().await.expect("listen addrs");
    let addr = addrs.into_iter().next().expect("one listen address");
    assert!(
        addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"),
        "{addr}"
    );
    addr
}

/// Waits up to `within` for an event the predicate picks.
async fn wait_for<T>(
    node: &mut Node,
    within: Duration,
    mut pick: impl FnMut(&Seen) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, node.seen.recv()).await {
            Ok(Some(seen)) => {
                if let Some(found) = pick(&seen) {
                    return found;
                }
            }
            Ok(None) => panic!("node {} stopped", node.pubkey),
            Err(_) => panic!(
                "node {} did not see the event within {within:?}",
                node.pubkey
            ),
        }
    }
}

/// Polls `peers()` until every key in `want` is listed as connected.
async fn wait_connected(node: &Node, want: &[Pubkey], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let peers = node.client.peers().await.expect("peers");
        let ok = want
            .iter()
            .all(|k| peers.iter().any(|p| p.pubkey == *k && p.connected));
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} sees {:?}, wanted {want:?} connected",
            node.pubkey,
            peers
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_find_each_other_and_accepted_gossip_reaches_all() {
    let g = genesis("three");
    let mut n0 = start(10, config(10, g, loopback(), vec![])).await;
    let a0 = listen_addr(&n0).await;
    let mut n1 = start(11, config(11, g, loopback(), vec![a0.clone()])).await;
    let n2 = start(12, config(12, g, loopback(), vec![a0])).await;

    // Nodes 1 and 2 only know node 0: they must find each other through Kademlia.
    let within = Duration::from_secs(30);
    wait_connected(&n0, &[n1.pubkey, n2.pubkey], within).await;
    wait_connected(&n1, &[n0.pubkey, n2.pubkey], within).await;
    wait_connected(&n2, &[n0.pubkey, n1.pubkey], within).await;
    let peers = n1.client.peers().await.unwrap();
    let p2 = peers.iter().find(|p| p.pubkey == n2.pubkey).unwrap();
    assert!(!p2.addresses.is_empty(), "address of node 2 known: {p2:?}");

    // Publishing fails until a peer has subscribed to the topic; then it goes through.
    let vote = b"a signed vote from node 2".to_vec();
    let deadline = Instant::now() + within;
    loop {
        match n2.client.publish(Topic::Votes, vote.clone()).await {
            Ok(()) => break,
            Err(NetError::NoPeers) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("publish failed: {e}"),
        }
    }
    for node in [&mut n0, &mut n1] {
        wait_for(node, within, |s| {
            matches!(s, Seen::Gossip { topic: Topic::Votes, bytes, .. } if *bytes == vote)
                .then_some(())
        })
        .await;
    }

    // Oversized messages never leave the node.
    let too_big = vec![0u8; bb_net::MAX_GOSSIP_BYTES + 1];
    assert!(matches!(
        n2.client.publish(Topic::Votes, too_big).await,
        Err(NetError::TooLarge { .. })
    ));
    for node in [&n0, &n1, &n2] {
        node.client.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_request_gets_the_answer_of_the_peers_handler() {
    let g = genesis("repair");
    let mut n0 = start(20, config(20, g, loopback(), vec![])).await;
    let a0 = listen_addr(&n0).await;
    let mut n1 = start(21, config(21, g, loopback(), vec![a0])).await;
    let p0 = n0.pubkey;
    wait_for(&mut n1, Duration::from_secs(20), |s| {
        (*s == Seen::Connected(p0)).then_some(())
    })
    .await;

    let answer = n1
        .client
        .request(n0.pubkey, b"shred 5 of slot 9".to_vec())
        .await
        .expect("answer");
    assert_eq!(answer, b"answer from 20: shred 5 of slot 9".to_vec());
    let p1 = n1.pubkey;
    wait_for(&mut n0, Duration::from_secs(5), |s| {
        (*s == Seen::Request(p1)).then_some(())
    })
    .await;

    let err = n1
        .client
        .request(n0.pubkey, b"unanswerable".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Request {
                reason: RequestFailure::NoAnswer,
                ..
            }
        ),
        "{err}"
    );

    // A request to a validator nobody can reach fails, it does not hang.
    let stranger = Keypair::from_seed(&[99; 32]).pubkey();
    let err = n1
        .client
        .request(stranger, b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Request { .. }), "{err}");
    n0.client.shutdown().await;
    n1.client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_with_another_genesis_is_dropped_and_never_connected() {
    let ours = genesis("ours");
    let theirs = genesis("theirs");
    let mut n0 = start(30, config(30, ours, loopback(), vec![])).await;
    let a0 = listen_addr(&n0).await;
    let mut n1 = start(31, config(31, theirs, loopback(), vec![a0])).await;

    // Whichever side reads the other's identify first drops the connection, so the other
    // side may never hear the peer's version: at least one must report the mismatch.
    let (p0, p1) = (n0.pubkey, n1.pubkey);
    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    let mismatch = loop {
        tokio::select! {
            Some(seen) = n0.seen.recv() => match seen {
                Seen::Mismatch { peer, theirs } if peer == p1 => break (0, theirs),
                Seen::Connected(p) => panic!("node 0 reported {p} connected"),
                _ => {}
            },
            Some(seen) = n1.seen.recv() => match seen {
                Seen::Mismatch { peer, theirs } if peer == p0 => break (1, theirs),
                Seen::Connected(p) => panic!("node 1 reported {p} connected"),
                _ => {}
            },
            _ = &mut deadline => panic!("no GenesisMismatch within 20 s"),
        }
    };
    let expected = match mismatch.0 {
        0 => bb_net::protocol_version(&theirs),
        _ => bb_net::protocol_version(&ours),
    };
    assert_eq!(mismatch.1, expected);

    // Node 1 keeps retrying its bootstrap peer; node 0 keeps refusing it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Ok(seen) = n0.seen.try_recv() {
        assert!(!matches!(seen, Seen::Connected(_)), "node 0 saw {seen:?}");
    }
    while let Ok(seen) = n1.seen.try_recv() {
        assert!(!matches!(seen, Seen::Connected(_)), "node 1 saw {seen:?}");
    }
    let peers = n0.client.peers().await.unwrap();
    assert!(peers.iter().all(|p| p.pubkey != p1), "{peers:?}");
    n0.client.shutdown().await;
    n1.client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_staked_peer_is_redialed_after_restart_on_the_same_port() {
    let g = genesis("redial");
    let staked = Keypair::from_seed(&[41; 32]).pubkey();
    let mut c0 = config(40, g, loopback(), vec![]);
    c0.staked = vec![staked];
    let mut n0 = start(40, c0).await;
    let a0 = listen_addr(&n0).await;

    // Node 1 finds node 0 once; node 0 learns where node 1 listens.
    let n1 = start(41, config(41, g, loopback(), vec![a0])).await;
    let a1 = listen_addr(&n1).await;
    wait_for(&mut n0, Duration::from_secs(20), |s| {
        (*s == Seen::Connected(staked)).then_some(())
    })
    .await;

    n1.client.shutdown().await;
    wait_for(&mut n0, Duration::from_secs(10), |s| {
        (*s == Seen::Disconnected(staked)).then_some(())
    })
    .await;

    // Down for a while (node 0's first redials fail), then back on the same port with no
    // bootstrap peers: only node 0 can restore the connection.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    let n1 = start(41, config(41, g, a1.clone(), vec![])).await;
    assert_eq!(listen_addr(&n1).await, a1);
    wait_for(&mut n0, Duration::from_secs(10), |s| {
        (*s == Seen::Connected(staked)).then_some(())
    })
    .await;
    eprintln!("redialed {:?} after the restart", restarted.elapsed());
    n0.client.shutdown().await;
    n1.client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_taken_port_is_refused() {
    let g = genesis("port");
    let n0 = start(60, config(60, g, loopback(), vec![])).await;
    let a0 = listen_addr(&n0).await;
    let second = Network::spawn(config(61, g, a0, vec![])).await;
    assert!(
        matches!(second, Err(NetError::Listen { .. })),
        "{:?}",
        second.map(|_| ())
    );
    n0.client.shutdown().await;
}

#[test]
fn peer_id_proves_the_validator_key() {
    for n in [1u8, 2, 200] {
        let validator = Keypair::from_seed(&[n; 32]);
        let peer = peer_id_of(&validator.pubkey()).expect("ed25519 key");
        assert_eq!(pubkey_of(&peer), Some(validator.pubkey()));
        let libp2p_key = bb_net::keypair_from_seed(&validator.secret_seed()).unwrap();
        assert_eq!(libp2p_key.public().to_peer_id(), peer);
    }
}

/// mDNS multicasts beyond the machine, so this runs only inside a network namespace:
/// `scripts/mdns-netns-test.sh` creates one with a dummy interface, sets
/// `BB_MDNS_TEST_IP` to its address and runs `cargo test -p bb-net -- --ignored mdns`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "multicast: run by scripts/mdns-netns-test.sh inside `ip netns`"]
async fn mdns_finds_a_peer_on_the_local_link() {
    let ip = std::env::var("BB_MDNS_TEST_IP")
        .expect("BB_MDNS_TEST_IP: run scripts/mdns-netns-test.sh, never on the host network");
    let listen: Multiaddr = format!("/ip4/{ip}/tcp/0").parse().expect("multiaddr");
    let g = genesis("mdns");
    let mut c0 = config(50, g, listen.clone(), vec![]);
    c0.mdns = true;
    let mut c1 = config(51, g, listen, vec![]);
    c1.mdns = true;
    let mut n0 = start(50, c0).await;
    let n1 = start(51, c1).await;
    let p1 = n1.pubkey;
    wait_for(&mut n0, Duration::from_secs(30), |s| {
        (*s == Seen::Connected(p1)).then_some(())
    })
    .await;
    n0.client.shutdown().await;
    n1.client.shutdown().await;
}

/// Publishes until a peer has subscribed (the first publish after connecting can fail).
async fn publish_soon(node: &Node, topic: Topic, bytes: Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match node.client.publish(topic, bytes.clone()).await {
            Ok(()) => return,
            Err(NetError::NoPeers) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("publish failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_over_the_rate_limit_is_banned_and_cut_off() {
    let g = genesis("flood");
    let mut limited = config(40, g, loopback(), vec![]);
    limited.rate_limit = 20;
    let mut n0 = start(40, limited).await;
    let a0 = listen_addr(&n0).await;
    let n1 = start(41, config(41, g, loopback(), vec![a0])).await;
    wait_connected(&n0, &[n1.pubkey], Duration::from_secs(30)).await;

    // 200 messages a second: ten times the limit.
    publish_soon(&n1, Topic::Votes, b"flood 0".to_vec()).await;
    let flood = tokio::spawn({
        let client = n1.client.clone();
        async move {
            for i in 1..2_000u32 {
                let _ = client
                    .publish(Topic::Votes, format!("flood {i}").into_bytes())
                    .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let mut delivered = 0usize;
    let reason = wait_for(&mut n0, Duration::from_secs(20), |seen| match seen {
        Seen::Gossip { from, .. } if *from == n1.pubkey => {
            delivered += 1;
            None
        }
        Seen::Banned { peer, reason } if *peer == n1.pubkey => Some(*reason),
        _ => None,
    })
    .await;
    flood.abort();
    assert_eq!(
        reason,
        Misbehaviour::RateLimited(MessageKind::Gossip(Topic::Votes))
    );
    // The burst plus 20 a second until the ban, not the 200 a second sent.
    assert!(delivered < 200, "{delivered} flood messages got through");
    let peers = n0.client.peers().await.expect("peers");
    let p1 = peers
        .iter()
        .find(|p| p.pubkey == n1.pubkey)
        .expect("listed");
    assert!(p1.banned.is_some(), "{p1:?}");
    assert_eq!(p1.bans, 1);
    assert!(p1.rate_limited > 0);
    // Cut off: the connection is closed and not let back in.
    let deadline = Instant::now() + Duration::from_secs(10);
    while n0
        .client
        .peers()
        .await
        .expect("peers")
        .iter()
        .any(|p| p.pubkey == n1.pubkey && p.connected)
    {
        assert!(
            Instant::now() < deadline,
            "the banned peer is still connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_messages_the_node_rejects_is_banned() {
    let g = genesis("garbage");
    let mut n0 = start(50, config(50, g, loopback(), vec![])).await;
    let a0 = listen_addr(&n0).await;
    let n1 = start(51, config(51, g, loopback(), vec![a0])).await;
    wait_connected(&n0, &[n1.pubkey], Duration::from_secs(30)).await;
    // Once subscribed, the rest go out at once; node 0 may cut node 1 off before the
    // last of them, which then has no peer to go to.
    publish_soon(&n1, Topic::Contact, b"garbage 0".to_vec()).await;
    for i in 1..10u32 {
        let _ = n1
            .client
            .publish(Topic::Contact, format!("garbage {i}").into_bytes())
            .await;
    }
    let reason = wait_for(&mut n0, Duration::from_secs(20), |seen| match seen {
        Seen::Banned { peer, reason } if *peer == n1.pubkey => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, Misbehaviour::Malformed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_is_charged_for_what_it_sends_whoever_it_names_as_author() {
    let g = genesis("forged");
    let mut n0 = start(60, config(60, g, loopback(), vec![])).await;
    let a0 = listen_addr(&n0).await;
    let n1 = start(61, config(61, g, loopback(), vec![a0.clone()])).await;
    let n2 = start(62, config(62, g, loopback(), vec![a0])).await;
    wait_connected(&n0, &[n1.pubkey, n2.pubkey], Duration::from_secs(30)).await;
    // Node 1 knows node 0 is subscribed once node 0 has had a message from it.
    let hello = authored(n1.pubkey, "hello from node 1");
    publish_soon(&n1, Topic::Votes, hello.clone()).await;
    wait_for(&mut n0, Duration::from_secs(20), |seen| {
        matches!(seen, Seen::Gossip { bytes, .. } if *bytes == hello).then_some(())
    })
    .await;
    // Node 1 sends junk in node 2's name (on the contact topic, whose lighter score
    // weight keeps gossipsub from graylisting node 1 before the guard bans it).
    for i in 0..10u32 {
        let forged = authored(n2.pubkey, &format!("garbage {i}"));
        let _ = n1.client.publish(Topic::Contact, forged).await;
    }
    let banned = wait_for(&mut n0, Duration::from_secs(20), |seen| match seen {
        Seen::Banned { peer, reason } => Some((*peer, *reason)),
        _ => None,
    })
    .await;
    assert_eq!(banned, (n1.pubkey, Misbehaviour::Malformed));
    let peers = n0.client.peers().await.expect("peers");
    let p2 = peers
        .iter()
        .find(|p| p.pubkey == n2.pubkey)
        .expect("listed");
    assert!(p2.banned.is_none() && p2.demerits == 0.0, "{p2:?}");
    assert!(p2.connected, "{p2:?}");
    // And node 2's own messages still get through.
    let own = authored(n2.pubkey, "a vote of node 2");
    publish_soon(&n2, Topic::Votes, own.clone()).await;
    wait_for(&mut n0, Duration::from_secs(20), |seen| {
        matches!(seen, Seen::Gossip { bytes, .. } if *bytes == own).then_some(())
    })
    .await;
    for node in [&n0, &n1, &n2] {
        node.client.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_flood_is_limited_by_author_and_never_bans_the_relay() {
    let g = genesis("relayed-flood");
    // Node 0 takes 20 votes a second from any one author; the relay, node 2, takes the
    // default 100. Node 0 refuses node 1, so node 1's flood reaches it only via node 2.
    let mut strict = config(70, g, loopback(), vec![]);
    strict.rate_limit = 20;
    let mut n0 = start(70, strict).await;
    let a0 = listen_addr(&n0).await;
    let n2 = start(72, config(72, g, loopback(), vec![a0])).await;
    let a2 = listen_addr(&n2).await;
    let n1 = start(71, config(71, g, loopback(), vec![a2])).await;
    n0.client
        .set_blocked(vec![(n1.pubkey, Duration::from_secs(600))])
        .await
        .expect("block");
    wait_connected(&n0, &[n2.pubkey], Duration::from_secs(30)).await;
    wait_connected(&n2, &[n0.pubkey, n1.pubkey], Duration::from_secs(30)).await;

    // 100 a second in node 1's name for four seconds: within node 2's limit, five
    // times node 0's.
    publish_soon(&n1, Topic::Votes, authored(n1.pubkey, "flood 0")).await;
    let flood = tokio::spawn({
        let client = n1.client.clone();
        async move {
            for i in 1..400u32 {
                let _ = client
                    .publish(Topic::Votes, authored(n1.pubkey, &format!("flood {i}")))
                    .await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let mut delivered = 0usize;
    let deadline = Instant::now() + Duration::from_secs(6);
    while let Ok(Some(seen)) = timeout(
        deadline.saturating_duration_since(Instant::now()),
        n0.seen.recv(),
    )
    .await
    {
        match seen {
            Seen::Gossip { from, bytes, .. } if bytes.starts_with(&n1.pubkey.0) => {
                assert_eq!(from, n2.pubkey, "node 1 is refused, so node 2 relays");
                delivered += 1;
            }
            Seen::Banned { peer, reason } => panic!("node 0 banned {peer} ({reason})"),
            _ => {}
        }
    }
    flood.abort();
    // Node 1's burst and refill at node 0's limit, not the 100 a second relayed.
    assert!(delivered > 0, "nothing relayed");
    assert!(
        delivered <= 20 + 6 * 20,
        "{delivered} flood messages got through"
    );
    let peers = n0.client.peers().await.expect("peers");
    let p2 = peers
        .iter()
        .find(|p| p.pubkey == n2.pubkey)
        .expect("listed");
    assert!(p2.banned.is_none() && p2.demerits == 0.0, "{p2:?}");
    for node in [&n0, &n1, &n2] {
        node.client.shutdown().await;
    }
}
