#!/usr/bin/env bash
# Runs bb-net's mDNS test inside a throwaway network namespace, so its multicast never
# leaves this machine. Needs root (ip netns). The namespace has only loopback and a veth
# pair whose both ends stay inside it (mDNS ignores loopback); it is deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

NS="bb-mdns-$$"
IFACE="bbmdns0"
PEER="bbmdns1"
IP="10.213.0.1"

if [[ $(id -u) -ne 0 ]]; then
    echo "error: needs root to create a network namespace" >&2
    exit 1
fi

# Build outside the namespace; inside there is no network at all.
cargo test -p bb-net --test network --no-run

cleanup() { ip netns delete "$NS" 2>/dev/null || true; }
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add "$IFACE" type veth peer name "$PEER"
ip -n "$NS" addr add "$IP/24" dev "$IFACE"
ip -n "$NS" link set "$IFACE" up
ip -n "$NS" link set "$PEER" up
# Multicast leaves through the veth and is looped back to the listeners in the namespace.
ip -n "$NS" route add 224.0.0.0/4 dev "$IFACE"

ip netns exec "$NS" env BB_MDNS_TEST_IP="$IP" \
    cargo test --offline -p bb-net --test network -- --ignored mdns
