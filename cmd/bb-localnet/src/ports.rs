//! Free ports on 127.0.0.1 for the nodes to listen on.
//!
//! Ports are taken below the kernel's ephemeral range where it can be read (Linux), so
//! the outgoing connections the nodes open while starting do not grab a port a later
//! node is about to listen on; each is checked free for both TCP and UDP. All sockets
//! stay bound until every port is chosen, so no port is handed out twice. A port can
//! still be taken by someone else between the check and the node's bind: `up` then
//! starts over with new ports.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use anyhow::bail;

use crate::manifest::Ports;

/// Picks `n` sets of free ports.
pub fn pick(n: usize) -> anyhow::Result<Vec<Ports>> {
    let mut picker = Picker::new();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Ports {
            p2p: picker.next()?,
            shred: picker.next()?,
            rpc: picker.next()?,
            metrics: picker.next()?,
        });
    }
    Ok(out)
}

struct Picker {
    held: Vec<(TcpListener, UdpSocket)>,
    range: Option<(u16, u16)>,
    state: u64,
}

impl Picker {
    fn new() -> Picker {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Picker {
            held: Vec::new(),
            range: below_ephemeral_range(),
            state: seed | 1,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64: enough to spread picks; nothing depends on its quality.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn next(&mut self) -> anyhow::Result<u16> {
        if let Some((lo, hi)) = self.range {
            for _ in 0..200 {
                let port = lo + (self.random() % u64::from(hi - lo)) as u16;
                if self.try_hold(port) {
                    return Ok(port);
                }
            }
        }
        // Fall back to ports the kernel picks.
        for _ in 0..200 {
            let Ok(tcp) = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)) else {
                continue;
            };
            let Ok(port) = tcp.local_addr().map(|a| a.port()) else {
                continue;
            };
            if let Ok(udp) = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)) {
                self.held.push((tcp, udp));
                return Ok(port);
            }
        }
        bail!("cannot find a free port on 127.0.0.1")
    }

    fn try_hold(&mut self, port: u16) -> bool {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        match (TcpListener::bind(addr), UdpSocket::bind(addr)) {
            (Ok(tcp), Ok(udp)) => {
                self.held.push((tcp, udp));
                true
            }
            _ => false,
        }
    }
}

/// A range of ports below the ephemeral ones (Linux: `ip_local_port_range`), if it has
/// room: e.g. 20000..32768 for the usual 32768..60999.
fn below_ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = text.split_whitespace().next()?.parse().ok()?;
    let lo = 20_000u16.min(low / 2).max(10_000);
    (low > lo + 2_000).then_some((lo, low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free_for_tcp_and_udp() {
        let picked = pick(4).unwrap();
        let mut all: Vec<u16> = picked
            .iter()
            .flat_map(|p| [p.p2p, p.shred, p.rpc, p.metrics])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 16);
    }

    #[test]
    fn each_picked_port_is_held_for_both_tcp_and_udp_until_all_are_chosen() {
        // Checked on the sockets the picker holds, not by binding again after it let
        // go: by then any other process on the machine may have taken a port.
        let mut picker = Picker::new();
        let mut picked: Vec<u16> = (0..16).map(|_| picker.next().unwrap()).collect();
        assert_eq!(picker.held.len(), 16);
        for ((tcp, udp), port) in picker.held.iter().zip(&picked) {
            assert_eq!(tcp.local_addr().unwrap().port(), *port, "tcp {port}");
            assert_eq!(udp.local_addr().unwrap().port(), *port, "udp {port}");
        }
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 16);
    }
}
