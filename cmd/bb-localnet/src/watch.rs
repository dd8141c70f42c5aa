//! Looking at running nodes: each node's `GetStatus` over gRPC, polled together, and
//! the table and JSON rows made from the answers. A node that does not answer is a row
//! with dashes and the reason, never an error of the whole command.

use std::time::Duration;

use bb_cli::table::{opt, short_addr, table};
use bb_rpc::NodeClient;
use bb_rpc::pb::GetStatusResponse;
use futures::future::join_all;
use serde::Serialize;

use crate::manifest::{Manifest, NodeEntry, NodeState};

/// How long one poll waits for a node to connect and answer.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(1000);

/// Polls the nodes of a localnet, keeping a connection to each once it answers.
#[derive(Debug)]
pub struct Poller {
    urls: Vec<String>,
    clients: Vec<Option<NodeClient>>,
}

impl Poller {
    pub fn new(manifest: &Manifest) -> Poller {
        Poller {
            urls: manifest.nodes.iter().map(|n| n.rpc_url.clone()).collect(),
            clients: vec![None; manifest.nodes.len()],
        }
    }

    /// Every node's status, in node order; `Err` holds why a node did not answer.
    pub async fn poll(&mut self) -> Vec<Result<GetStatusResponse, String>> {
        let calls = self
            .urls
            .iter()
            .zip(self.clients.iter())
            .map(|(url, client)| status_of(url.clone(), client.clone()));
        let answers = join_all(calls).await;
        answers
            .into_iter()
            .enumerate()
            .map(|(i, (client, status))| {
                self.clients[i] = client;
                status
            })
            .collect()
    }
}

async fn status_of(
    url: String,
    client: Option<NodeClient>,
) -> (Option<NodeClient>, Result<GetStatusResponse, String>) {
    let client = match client {
        Some(c) => c,
        None => match NodeClient::connect(&url, POLL_TIMEOUT).await {
            Ok(c) => c,
            Err(e) => return (None, Err(e.to_string())),
        },
    };
    let status = client.status().await.map_err(|e| e.to_string());
    (Some(client), status)
}

/// One node as `status` and the live table show it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub index: usize,
    pub identity: String,
    pub pid: Option<u32>,
    /// Whether its process is running now.
    pub alive: bool,
    /// `running`, `stopped` (by bb-localnet) or `exited` (died on its own or was killed
    /// from outside).
    pub state: &'static str,
    pub rpc_url: String,
    pub metrics_url: String,
    /// The slot by the genesis clock.
    pub slot: Option<u64>,
    pub processed: Option<u64>,
    pub confirmed: Option<u64>,
    pub finalized: Option<u64>,
    pub epoch: Option<u64>,
    pub peers: Option<u32>,
    /// The leader of `slot` (an address).
    pub leader: Option<String>,
    /// The leader's node index, if it is a node of this localnet.
    pub leader_node: Option<usize>,
    /// Why the node did not answer, if it is alive and did not.
    pub error: Option<String>,
}

impl NodeRow {
    pub fn new(
        manifest: &Manifest,
        node: &NodeEntry,
        status: Option<Result<GetStatusResponse, String>>,
    ) -> NodeRow {
        let pid = node.alive();
        let alive = pid.is_some();
        let state = match (alive, node.state) {
            (true, _) => "running",
            (false, NodeState::Stopped) => "stopped",
            (false, NodeState::Running) => "exited",
            (false, NodeState::Spare) => "spare",
        };
        let (status, error) = match status {
            Some(Ok(s)) if alive => (Some(s), None),
            Some(Err(e)) if alive => (None, Some(e)),
            _ => (None, None),
        };
        let leader = status
            .as_ref()
            .map(|s| s.leader.clone())
            .filter(|l| !l.is_empty());
        let leader_node = leader.as_ref().and_then(|l| {
            manifest
                .nodes
                .iter()
                .find(|n| &n.identity == l)
                .map(|n| n.index)
        });
        let slot_of = |f: fn(&GetStatusResponse) -> Option<u64>| status.as_ref().and_then(f);
        NodeRow {
            index: node.index,
            identity: node.identity.clone(),
            pid: pid.or(node.pid.filter(|_| node.state == NodeState::Running)),
            alive,
            state,
            rpc_url: node.rpc_url.clone(),
            metrics_url: node.metrics_url.clone(),
            slot: slot_of(|s| Some(s.slot)),
            processed: slot_of(|s| s.processed.as_ref().map(|h| h.slot)),
            confirmed: slot_of(|s| s.confirmed.as_ref().map(|h| h.slot)),
            finalized: slot_of(|s| s.finalized.as_ref().map(|h| h.slot)),
            epoch: slot_of(|s| Some(s.epoch)),
            peers: status.as_ref().map(|s| s.peer_count),
            leader,
            leader_node,
            error,
        }
    }
}

/// Rows for every node of `manifest`, with the answers of one poll (if any).
pub fn rows(
    manifest: &Manifest,
    statuses: Option<Vec<Result<GetStatusResponse, String>>>,
) -> Vec<NodeRow> {
    let mut statuses = statuses.map(|s| s.into_iter());
    manifest
        .nodes
        .iter()
        .map(|node| {
            let status = statuses.as_mut().and_then(Iterator::next);
            NodeRow::new(manifest, node, status)
        })
        .collect()
}

/// Polls every node of `manifest` once.
pub async fn poll_once(manifest: &Manifest) -> Vec<NodeRow> {
    let statuses = Poller::new(manifest).poll().await;
    rows(manifest, Some(statuses))
}

/// The table of nodes people see in `status` and under `up`.
pub fn render(rows: &[NodeRow]) -> String {
    let mut t = table(
        &[
            "node",
            "identity",
            "pid",
            "state",
            "slot",
            "processed",
            "confirmed",
            "finalized",
            "peers",
            "leader",
        ],
        &[0, 2, 4, 5, 6, 7, 8],
    );
    for r in rows {
        let leader = match (&r.leader, r.leader_node) {
            (_, Some(i)) => format!("node {i}"),
            (Some(addr), None) => short_addr(addr),
            (None, None) => "-".into(),
        };
        let state = if r.alive && r.error.is_some() {
            "no answer"
        } else {
            r.state
        };
        t.add_row(vec![
            r.index.to_string(),
            short_addr(&r.identity),
            opt(r.pid),
            state.to_string(),
            opt(r.slot),
            opt(r.processed),
            opt(r.confirmed),
            opt(r.finalized),
            opt(r.peers),
            leader,
        ]);
    }
    t.to_string()
}

/// How far a starting localnet has come, from one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub answering: usize,
    /// Every node answers with at least N-1 peers.
    pub all_connected: bool,
    pub max_processed: u64,
    pub max_confirmed: u64,
    pub max_finalized: u64,
}

impl Progress {
    pub fn of(statuses: &[Result<GetStatusResponse, String>]) -> Progress {
        let n = statuses.len();
        let ok: Vec<&GetStatusResponse> = statuses.iter().filter_map(|s| s.as_ref().ok()).collect();
        let max = |f: fn(&GetStatusResponse) -> Option<u64>| {
            ok.iter().filter_map(|s| f(s)).max().unwrap_or(0)
        };
        Progress {
            answering: ok.len(),
            all_connected: ok.len() == n
                && ok
                    .iter()
                    .all(|s| s.peer_count as usize >= n.saturating_sub(1)),
            max_processed: max(|s| s.processed.as_ref().map(|h| h.slot)),
            max_confirmed: max(|s| s.confirmed.as_ref().map(|h| h.slot)),
            max_finalized: max(|s| s.finalized.as_ref().map(|h| h.slot)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_rpc::pb::SlotHash;

    fn status(peers: u32, processed: u64, finalized: Option<u64>) -> GetStatusResponse {
        GetStatusResponse {
            peer_count: peers,
            processed: Some(SlotHash {
                slot: processed,
                ..Default::default()
            }),
            finalized: finalized.map(|slot| SlotHash {
                slot,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn progress_needs_every_node_connected_to_all_others() {
        let p = Progress::of(&[Ok(status(2, 5, None)), Ok(status(1, 3, None))]);
        assert!(p.all_connected, "two nodes need one peer each");
        let p = Progress::of(&[
            Ok(status(2, 5, None)),
            Ok(status(1, 3, None)),
            Err("down".into()),
        ]);
        assert!(!p.all_connected);
        assert_eq!((p.answering, p.max_processed, p.max_finalized), (2, 5, 0));
        let p = Progress::of(&[
            Ok(status(2, 9, Some(4))),
            Ok(status(2, 9, None)),
            Ok(status(2, 9, None)),
        ]);
        assert!(p.all_connected);
        assert_eq!(p.max_finalized, 4);
    }

    #[test]
    fn rows_of_stopped_nodes_have_no_numbers_and_say_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::manifest::tests::sample(dir.path(), 2);
        let rows = rows(
            &m,
            Some(vec![Ok(status(1, 7, Some(3))), Err("refused".into())]),
        );
        assert_eq!(rows[0].state, "stopped");
        assert_eq!(
            rows[0].finalized, None,
            "a stopped node's old answer is not shown"
        );
        assert_eq!(rows[1].error, None);
        let text = render(&rows);
        assert!(
            text.contains("stopped") && text.contains("finalized"),
            "{text}"
        );
    }
}
