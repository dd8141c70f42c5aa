//! Per-peer rate limits, misbehaviour scores and bans.
//!
//! Every message a peer sends is counted in a token bucket for its kind (each gossip
//! topic, repair requests): at most `rate` per second with a one-second burst, and never
//! more than the kind's own cap ([`MessageKind::cap`]) — an honest validator publishes a
//! vote per slot and its contact info every two seconds, so a flood of either is plain.
//! Over the limit, the message is dropped, and a peer that goes over costs itself
//! demerits: on the first message dropped in a second, and again for each further
//! limit's worth dropped in that second, so ten times the limit bans in about a second.
//! Messages the node finds invalid (bad signatures, malformed or oversized bytes) cost
//! demerits too. Demerits fade with time. A peer that reaches [`BAN_THRESHOLD`] is banned: its
//! connections are closed and refused, and whatever it authored is dropped, for a period
//! that doubles with each ban (from [`FIRST_BAN`] up to [`MAX_BAN`]).
//!
//! Time is passed in, so the rules are tested without waiting.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use crate::config::Topic;

/// Messages per second per peer and kind, unless configured otherwise.
pub const DEFAULT_RATE_LIMIT: u32 = 1000;
/// Demerits at which a peer is banned.
pub const BAN_THRESHOLD: f64 = 100.0;
/// Demerits that fade per second.
pub const DEMERIT_DECAY_PER_SEC: f64 = 2.0;
/// The first ban's length; each later ban doubles it.
pub const FIRST_BAN: Duration = Duration::from_secs(60);
/// Bans stop growing here.
pub const MAX_BAN: Duration = Duration::from_secs(3600);
/// A peer silent this long is forgotten, unless it is banned or has been.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What a peer sent, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Gossip(Topic),
    /// Request-response: repair requests and forwarded transactions.
    Request,
    /// Turbine shreds (counted by the node, which owns the UDP socket).
    Shred,
}

impl MessageKind {
    /// The most messages of this kind per second one honest peer could have a reason to
    /// send, whatever the configured rate: about 40 times what the protocol needs.
    pub fn cap(self) -> Option<u32> {
        match self {
            // Contact info: one every 2 s.
            MessageKind::Gossip(Topic::Contact) => Some(20),
            // Votes: one per slot (and a relay never counts: gossip is counted by author).
            MessageKind::Gossip(Topic::Votes) => Some(100),
            MessageKind::Gossip(Topic::Slashing) => Some(100),
            MessageKind::Request | MessageKind::Shred => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Gossip(Topic::Contact) => "contact",
            MessageKind::Gossip(Topic::Votes) => "vote",
            MessageKind::Gossip(Topic::Slashing) => "slashing",
            MessageKind::Request => "request",
            MessageKind::Shred => "shred",
        }
    }
}

/// Why a peer lost standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// Sent more messages of one kind than the rate limit in some second.
    RateLimited(MessageKind),
    /// A signature in what it sent does not verify.
    InvalidSignature,
    /// Bytes that do not decode, or a message that breaks the protocol's rules.
    Malformed,
    /// A message over its size limit.
    Oversized,
    /// It announced another network (genesis).
    OtherNetwork,
}

impl Misbehaviour {
    /// Demerits one instance costs.
    pub fn demerits(self) -> f64 {
        match self {
            Misbehaviour::RateLimited(_) => 25.0,
            Misbehaviour::InvalidSignature => 25.0,
            Misbehaviour::Malformed => 20.0,
            Misbehaviour::Oversized => 50.0,
            Misbehaviour::OtherNetwork => BAN_THRESHOLD,
        }
    }

    /// A short label for metrics and tables.
    pub fn label(self) -> &'static str {
        match self {
            Misbehaviour::RateLimited(_) => "rate-limit",
            Misbehaviour::InvalidSignature => "invalid-signature",
            Misbehaviour::Malformed => "malformed",
            Misbehaviour::Oversized => "oversized",
            Misbehaviour::OtherNetwork => "other-network",
        }
    }
}

impl fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misbehaviour::RateLimited(kind) => {
                write!(f, "over the rate limit for {} messages", kind.name())
            }
            Misbehaviour::InvalidSignature => f.write_str("invalid signatures"),
            Misbehaviour::Malformed => f.write_str("malformed messages"),
            Misbehaviour::Oversized => f.write_str("oversized messages"),
            Misbehaviour::OtherNetwork => f.write_str("another network's genesis"),
        }
    }
}

/// A ban just imposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    pub reason: Misbehaviour,
    pub length: Duration,
    /// Bans this peer has had, this one included.
    pub count: u32,
}

/// How a peer stands, for `peers` listings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub demerits: f64,
    pub bans: u32,
    /// The current ban: time left and why.
    pub banned: Option<(Duration, Misbehaviour)>,
    /// The most recent ban's reason, if it ever had one.
    pub last_reason: Option<Misbehaviour>,
    /// Messages dropped over the rate limit, all kinds.
    pub rate_limited: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// The one-second window of drops being counted, and how many it has seen.
    window: Option<(Instant, u64)>,
}

#[derive(Debug, Clone)]
struct PeerState {
    buckets: HashMap<MessageKind, Bucket>,
    demerits: f64,
    demerits_at: Instant,
    bans: u32,
    banned_until: Option<Instant>,
    last_reason: Option<Misbehaviour>,
    rate_limited: u64,
    seen: Instant,
}

impl PeerState {
    fn new(now: Instant) -> Self {
        PeerState {
            buckets: HashMap::new(),
            demerits: 0.0,
            demerits_at: now,
            bans: 0,
            banned_until: None,
            last_reason: None,
            rate_limited: 0,
            seen: now,
        }
    }

    /// Demerits at `now`, after fading since they were last updated.
    fn demerits_at(&self, now: Instant) -> f64 {
        let secs = now
            .saturating_duration_since(self.demerits_at)
            .as_secs_f64();
        (self.demerits - secs * DEMERIT_DECAY_PER_SEC).max(0.0)
    }

    fn decay(&mut self, now: Instant) {
        self.demerits = self.demerits_at(now);
        self.demerits_at = now;
    }

    fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allow,
    /// Over the limit (or from a banned peer): drop it. `ban` is set if this message
    /// tipped the peer into a ban.
    Drop { ban: Option<Ban> },
}

/// The rate limiter and ban list of one node, keyed by who sent (a libp2p peer; the node
/// also keeps one by UDP source address for shreds, which carry no identity).
#[derive(Debug)]
pub struct Guard<K = PeerId> {
    rate: f64,
    peers: HashMap<K, PeerState>,
}

impl<K: Hash + Eq + Copy> Guard<K> {
    /// `rate`: messages per second per peer and kind (at least 1).
    pub fn new(rate: u32) -> Self {
        Guard {
            rate: f64::from(rate.max(1)),
            peers: HashMap::new(),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// The limit for `kind`: the configured rate, or the kind's cap if lower.
    pub fn limit(&self, kind: MessageKind) -> u32 {
        let rate = self.rate as u32;
        kind.cap().map_or(rate, |cap| cap.min(rate))
    }

    /// Counts one message of `kind` from `peer`, which sent it itself: over the limit,
    /// it is dropped and `peer` costs itself demerits.
    pub fn allow(&mut self, peer: K, kind: MessageKind, now: Instant) -> Verdict {
        self.count(peer, kind, now, true)
    }

    /// Counts one message of `kind` that names `author` but came through another peer.
    /// Over the author's limit it is dropped, and it is dropped while the author is
    /// banned, but it costs nobody demerits: the relay did not write it, and the claim of
    /// authorship is unproven when the message is counted.
    pub fn allow_relayed(&mut self, author: K, kind: MessageKind, now: Instant) -> Verdict {
        self.count(author, kind, now, false)
    }

    fn count(&mut self, peer: K, kind: MessageKind, now: Instant, blame: bool) -> Verdict {
        let limit = f64::from(self.limit(kind));
        let state = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerState::new(now));
        state.seen = now;
        if state.is_banned(now) {
            return Verdict::Drop { ban: None };
        }
        let bucket = state.buckets.entry(kind).or_insert(Bucket {
            tokens: limit,
            at: now,
            window: None,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * limit;
        bucket.tokens = (bucket.tokens + refill).min(limit);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Allow;
        }
        state.rate_limited += 1;
        // Demerits on the first drop of a second, and per further limit's worth of drops.
        let (start, drops) = match bucket.window {
            Some((start, drops))
                if now.saturating_duration_since(start) < Duration::from_secs(1) =>
            {
                (start, drops + 1)
            }
            _ => (now, 1),
        };
        bucket.window = Some((start, drops));
        if !blame || (drops - 1) % (limit as u64).max(1) != 0 {
            return Verdict::Drop { ban: None };
        }
        Verdict::Drop {
            ban: self.penalize(peer, Misbehaviour::RateLimited(kind), now),
        }
    }

    /// Charges `peer` for `why`; returns the ban if this tipped it over.
    pub fn penalize(&mut self, peer: K, why: Misbehaviour, now: Instant) -> Option<Ban> {
        let state = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerState::new(now));
        state.seen = now;
        if state.is_banned(now) {
            return None;
        }
        state.decay(now);
        state.demerits += why.demerits();
        if state.demerits < BAN_THRESHOLD {
            return None;
        }
        state.bans += 1;
        let length = FIRST_BAN
            .saturating_mul(1u32 << (state.bans - 1).min(16))
            .min(MAX_BAN);
        state.banned_until = Some(now + length);
        state.last_reason = Some(why);
        state.demerits = 0.0;
        state.buckets.clear();
        Some(Ban {
            reason: why,
            length,
            count: state.bans,
        })
    }

    pub fn is_banned(&self, peer: &K, now: Instant) -> bool {
        self.peers.get(peer).is_some_and(|s| s.is_banned(now))
    }

    /// How `peer` stands now (a peer never counted stands clean).
    pub fn standing(&self, peer: &K, now: Instant) -> Standing {
        let Some(state) = self.peers.get(peer) else {
            return Standing {
                demerits: 0.0,
                bans: 0,
                banned: None,
                last_reason: None,
                rate_limited: 0,
            };
        };
        Standing {
            demerits: state.demerits_at(now),
            bans: state.bans,
            banned: state
                .banned_until
                .filter(|t| *t > now)
                .zip(state.last_reason)
                .map(|(t, r)| (t - now, r)),
            last_reason: state.last_reason,
            rate_limited: state.rate_limited,
        }
    }

    /// Every peer with a record (counted recently, or ever banned).
    pub fn peers(&self) -> impl Iterator<Item = &K> {
        self.peers.keys()
    }

    /// Forgets peers that have been quiet for long and were never banned, so the table
    /// stays as small as the set of active peers.
    pub fn prune(&mut self, now: Instant) {
        self.peers
            .retain(|_, s| s.bans > 0 || now.saturating_duration_since(s.seen) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOTES: MessageKind = MessageKind::Gossip(Topic::Votes);
    const REQUESTS: MessageKind = MessageKind::Request;

    #[test]
    fn the_rate_is_a_one_second_burst_refilled_continuously() {
        let mut g: Guard = Guard::new(10);
        let p = PeerId::random();
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(g.allow(p, VOTES, t), Verdict::Allow);
        }
        assert!(matches!(g.allow(p, VOTES, t), Verdict::Drop { ban: None }));
        // Another kind has its own bucket.
        assert_eq!(g.allow(p, MessageKind::Request, t), Verdict::Allow);
        // A tenth of a second refills one message.
        let later = t + Duration::from_millis(100);
        assert_eq!(g.allow(p, VOTES, later), Verdict::Allow);
        assert!(matches!(g.allow(p, VOTES, later), Verdict::Drop { .. }));
        assert_eq!(g.standing(&p, later).rate_limited, 2);
    }

    #[test]
    fn a_sustained_flood_is_banned_within_seconds_and_bans_grow() {
        let mut g: Guard = Guard::new(100);
        let p = PeerId::random();
        let start = Instant::now();
        let mut banned_at = None;
        // 10x the limit: 1000 messages per second, 1 ms apart.
        for ms in 0..20_000u64 {
            let now = start + Duration::from_millis(ms);
            if let Verdict::Drop { ban: Some(ban) } = g.allow(p, VOTES, now) {
                assert_eq!(ban.reason, Misbehaviour::RateLimited(VOTES));
                assert_eq!(ban.length, FIRST_BAN);
                banned_at = Some(ms);
                break;
            }
        }
        let at = banned_at.expect("banned");
        assert!(at < 1_500, "banned after {at} ms");
        let now = start + Duration::from_millis(at);
        assert!(g.is_banned(&p, now));
        assert!(matches!(
            g.allow(p, VOTES, now),
            Verdict::Drop { ban: None }
        ));
        let standing = g.standing(&p, now);
        assert_eq!(standing.bans, 1);
        assert!(standing.banned.is_some());
        // After the ban, the same again: twice as long.
        let after = now + FIRST_BAN;
        assert!(!g.is_banned(&p, after));
        let mut second = None;
        for ms in 0..20_000u64 {
            let now = after + Duration::from_millis(ms);
            if let Verdict::Drop { ban: Some(ban) } = g.allow(p, VOTES, now) {
                second = Some(ban);
                break;
            }
        }
        assert_eq!(
            second.map(|b| (b.length, b.count)),
            Some((2 * FIRST_BAN, 2))
        );
    }

    #[test]
    fn a_relayed_flood_is_limited_by_author_but_blames_nobody() {
        let mut g: Guard = Guard::new(100);
        let author = PeerId::random();
        let start = Instant::now();
        let mut allowed = 0;
        // 10x the limit for five seconds, all of it relayed: a sender flooding in
        // someone else's name would look just like this.
        for ms in 0..5_000u64 {
            let now = start + Duration::from_millis(ms);
            match g.allow_relayed(author, VOTES, now) {
                Verdict::Allow => allowed += 1,
                Verdict::Drop { ban } => assert_eq!(ban, None),
            }
        }
        // The burst plus the refill, not the flood.
        assert!((500..=700).contains(&allowed), "{allowed} allowed");
        let end = start + Duration::from_secs(5);
        assert_eq!(g.standing(&author, end).bans, 0);
        assert_eq!(g.standing(&author, end).demerits, 0.0);
        // A banned author's messages are dropped also when relayed.
        let banned = PeerId::random();
        for _ in 0..4 {
            g.penalize(banned, Misbehaviour::InvalidSignature, end);
        }
        assert!(g.is_banned(&banned, end));
        assert_eq!(
            g.allow_relayed(banned, VOTES, end),
            Verdict::Drop { ban: None }
        );
    }

    #[test]
    fn each_kind_is_capped_near_what_an_honest_peer_needs() {
        let g: Guard = Guard::new(1000);
        assert_eq!(g.limit(MessageKind::Gossip(Topic::Contact)), 20);
        assert_eq!(g.limit(VOTES), 100);
        assert_eq!(g.limit(REQUESTS), 1000);
        let g: Guard = Guard::new(5);
        assert_eq!(g.limit(VOTES), 5, "a lower configured rate wins");
    }

    #[test]
    fn slightly_over_the_limit_costs_little_ten_times_over_bans_at_once() {
        let p = PeerId::random();
        let start = Instant::now();
        // 20 % over a limit of 100 for 3 seconds: a few demerits, no ban.
        let mut g: Guard = Guard::new(100);
        for i in 0..360u64 {
            let now = start + Duration::from_micros(i * 8_333);
            assert!(!matches!(
                g.allow(p, REQUESTS, now),
                Verdict::Drop { ban: Some(_) }
            ));
        }
        assert!(g.standing(&p, start + Duration::from_secs(3)).demerits < BAN_THRESHOLD);
        // Ten times over: banned within the first second.
        let mut g: Guard = Guard::new(100);
        let banned = (0..1000u64).find(|i| {
            let now = start + Duration::from_millis(*i);
            matches!(g.allow(p, REQUESTS, now), Verdict::Drop { ban: Some(_) })
        });
        assert!(banned.is_some_and(|ms| ms < 1000), "{banned:?}");
    }

    #[test]
    fn a_peer_within_the_limit_is_never_banned() {
        let mut g: Guard = Guard::new(100);
        let p = PeerId::random();
        let start = Instant::now();
        // 90 per second for a minute.
        for i in 0..5_400u64 {
            let now = start + Duration::from_micros(i * 11_112);
            assert_eq!(g.allow(p, VOTES, now), Verdict::Allow, "message {i}");
        }
        assert_eq!(
            g.standing(&p, start + Duration::from_secs(60)).demerits,
            0.0
        );
    }

    #[test]
    fn garbage_bans_quickly_and_demerits_fade() {
        let mut g: Guard = Guard::new(100);
        let p = PeerId::random();
        let t = Instant::now();
        for _ in 0..4 {
            assert_eq!(g.penalize(p, Misbehaviour::Malformed, t), None);
        }
        // Four malformed messages fade in 40 s.
        let later = t + Duration::from_secs(40);
        assert_eq!(g.standing(&p, later).demerits, 0.0);
        for _ in 0..4 {
            assert_eq!(g.penalize(p, Misbehaviour::Malformed, later), None);
        }
        let ban = g
            .penalize(p, Misbehaviour::Malformed, later)
            .expect("fifth bans");
        assert_eq!(ban.reason, Misbehaviour::Malformed);
        assert_eq!(
            g.standing(&p, later).banned.map(|(_, r)| r),
            Some(Misbehaviour::Malformed)
        );
    }

    #[test]
    fn quiet_clean_peers_are_forgotten_banned_ones_are_not() {
        let mut g: Guard = Guard::new(10);
        let (quiet, bad) = (PeerId::random(), PeerId::random());
        let t = Instant::now();
        g.allow(quiet, VOTES, t);
        g.penalize(bad, Misbehaviour::OtherNetwork, t);
        g.prune(t + FORGET_AFTER);
        let left: Vec<&PeerId> = g.peers().collect();
        assert_eq!(left, vec![&bad]);
    }
}
