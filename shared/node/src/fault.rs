//! Fault injection, for tests only: off unless asked for, and loud in the log when on.

use std::str::FromStr;
use std::time::Duration;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Drop each incoming shred with this probability.
    DropShreds(f64),
    /// Hold every outgoing shred and vote this long before sending.
    DelayMs(u64),
    /// Serve catch-up clients corrupted data: one changed byte in every block body the
    /// rooted-block stream sends, and one in every snapshot download.
    ServeTampered,
    /// With every vote, also sign and gossip a second vote for another block of the same
    /// slot: a slashable double vote.
    DoubleVote,
    /// As leader, sign a second version of every block (built on the parent's parent)
    /// and send it right after the first: a slashable duplicate block.
    Equivocate,
    /// As leader, send only a quarter of each FEC set's shreds: too few to rebuild.
    WithholdShreds,
    /// Send peers junk: random bytes as gossip (votes, contact info), as shreds and as
    /// repair requests, a few times a second each.
    Garbage,
    /// Publish this many (validly signed, useless) contact-info messages per second.
    Flood(u32),
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "drop-shreds" => {
                let p: f64 = arg.parse().map_err(|_| {
                    format!("drop-shreds needs a probability, like drop-shreds:0.33 (got '{arg}')")
                })?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("drop-shreds probability {p} is not within 0..=1"));
                }
                Ok(Fault::DropShreds(p))
            }
            "delay-ms" => {
                let ms: u64 = arg.parse().map_err(|_| {
                    format!("delay-ms needs milliseconds, like delay-ms:50 (got '{arg}')")
                })?;
                Ok(Fault::DelayMs(ms))
            }
            "serve-tampered" if arg.is_empty() => Ok(Fault::ServeTampered),
            "serve-tampered" => Err(format!("serve-tampered takes no argument (got '{arg}')")),
            "double-vote" if arg.is_empty() => Ok(Fault::DoubleVote),
            "double-vote" => Err(format!("double-vote takes no argument (got '{arg}')")),
            "equivocate" if arg.is_empty() => Ok(Fault::Equivocate),
            "equivocate" => Err(format!("equivocate takes no argument (got '{arg}')")),
            "withhold-shreds" if arg.is_empty() => Ok(Fault::WithholdShreds),
            "withhold-shreds" => Err(format!("withhold-shreds takes no argument (got '{arg}')")),
            "garbage" if arg.is_empty() => Ok(Fault::Garbage),
            "garbage" => Err(format!("garbage takes no argument (got '{arg}')")),
            "flood" => {
                let rate: u32 = arg.parse().map_err(|_| {
                    format!("flood needs messages per second, like flood:10000 (got '{arg}')")
                })?;
                if rate == 0 {
                    return Err("flood rate must be at least 1".into());
                }
                Ok(Fault::Flood(rate))
            }
            other => Err(format!(
                "unknown fault '{other}' (this build knows drop-shreds:P, delay-ms:D, serve-tampered, double-vote, equivocate, withhold-shreds, garbage and flood:RATE)"
            )),
        }
    }
}

/// The faults a node runs with.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub drop_shreds: f64,
    pub delay: Option<Duration>,
    pub serve_tampered: bool,
    pub double_vote: bool,
    pub equivocate: bool,
    pub withhold_shreds: bool,
    pub garbage: bool,
    /// Contact-info messages per second to publish.
    pub flood: Option<u32>,
}

impl Faults {
    pub fn from_list(list: &[Fault]) -> Faults {
        let mut f = Faults::default();
        for fault in list {
            match *fault {
                Fault::DropShreds(p) => f.drop_shreds = p,
                Fault::DelayMs(ms) => f.delay = Some(Duration::from_millis(ms)),
                Fault::ServeTampered => f.serve_tampered = true,
                Fault::DoubleVote => f.double_vote = true,
                Fault::Equivocate => f.equivocate = true,
                Fault::WithholdShreds => f.withhold_shreds = true,
                Fault::Garbage => f.garbage = true,
                Fault::Flood(rate) => f.flood = Some(rate),
            }
        }
        f
    }

    pub fn any(&self) -> bool {
        self.drop_shreds > 0.0
            || self.delay.is_some()
            || self.serve_tampered
            || self.double_vote
            || self.equivocate
            || self.withhold_shreds
            || self.garbage
            || self.flood.is_some()
    }
}

/// Runs the `garbage` and `flood` faults until the node stops (returns at once if neither
/// is on).
pub async fn misbehave(
    faults: Faults,
    net: bb_net::NetClient,
    shared: std::sync::Arc<crate::state::Shared>,
    identity: bb_core::Keypair,
    socket: std::sync::Arc<tokio::net::UdpSocket>,
    contact: crate::wire::ContactInfo,
) {
    use bb_core::Canonical;
    use bb_net::Topic;
    use rand::RngExt;

    if !faults.garbage && faults.flood.is_none() {
        return;
    }
    // Flood in batches every 10 ms; garbage every 200 ms.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        if let Some(rate) = faults.flood {
            let batch = (rate / 100).max(1);
            for _ in 0..batch {
                let info = crate::wire::ContactInfo {
                    latest_slot: shared.status().processed.slot,
                    // A fresh value per message: each is a new gossip message.
                    wallclock_ms: crate::state::now_ms().wrapping_add(n),
                    ..contact.clone()
                }
                .sign(&identity);
                n += 1;
                let _ = net.publish(Topic::Contact, info.to_bytes()).await;
            }
        }
        if faults.garbage && n.is_multiple_of(20) {
            let junk = |len: usize| -> Vec<u8> {
                let mut rng = rand::rng();
                (0..len).map(|_| rng.random::<u8>()).collect()
            };
            let _ = net.publish(Topic::Votes, junk(200)).await;
            let _ = net.publish(Topic::Contact, junk(300)).await;
            let peers: Vec<(bb_core::Pubkey, Option<std::net::SocketAddr>)> = shared
                .peers
                .read()
                .map(|p| p.iter().map(|(k, v)| (*k, v.shred_addr)).collect())
                .unwrap_or_default();
            for (peer, addr) in peers {
                if let Some(addr) = addr {
                    let _ = socket.send_to(&junk(1200), addr).await;
                }
                let net = net.clone();
                let bytes = junk(64);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(2), net.request(peer, bytes))
                        .await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_faults_and_names_bad_ones() {
        assert_eq!(
            "drop-shreds:0.33".parse::<Fault>(),
            Ok(Fault::DropShreds(0.33))
        );
        assert_eq!("delay-ms:50".parse::<Fault>(), Ok(Fault::DelayMs(50)));
        assert!("drop-shreds:2".parse::<Fault>().is_err());
        assert_eq!("serve-tampered".parse::<Fault>(), Ok(Fault::ServeTampered));
        assert!("serve-tampered:1".parse::<Fault>().is_err());
        assert_eq!("double-vote".parse::<Fault>(), Ok(Fault::DoubleVote));
        assert_eq!("garbage".parse::<Fault>(), Ok(Fault::Garbage));
        assert_eq!("equivocate".parse::<Fault>(), Ok(Fault::Equivocate));
        assert_eq!(
            "withhold-shreds".parse::<Fault>(),
            Ok(Fault::WithholdShreds)
        );
        assert_eq!("flood:10000".parse::<Fault>(), Ok(Fault::Flood(10_000)));
        assert!("flood".parse::<Fault>().is_err());
        assert!("flood:0".parse::<Fault>().is_err());
        assert!("double-vote:2".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().unwrap_err().contains("explode"));
    }
}
