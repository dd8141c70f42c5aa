//! Which node a command talks to: `--rpc URL`, or node `--node I` of the localnet in
//! `--localnet DIR` (default `./.bb-localnet`), and where a genesis file comes from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use bb_core::Genesis;
use bb_rpc::NodeClient;
use serde::Deserialize;

/// The localnet directory used when neither `--rpc` nor `--localnet` is given.
pub const DEFAULT_LOCALNET_DIR: &str = "./.bb-localnet";

/// The flags every command shares to pick its node(s) and genesis.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Talk to the node at this gRPC URL (http://HOST:PORT) instead of a localnet.
    #[arg(long, global = true, value_name = "URL")]
    pub rpc: Option<String>,
    /// The localnet directory written by `bb-localnet up` [default: ./.bb-localnet].
    #[arg(long, global = true, value_name = "DIR")]
    pub localnet: Option<PathBuf>,
    /// Which node of the localnet to talk to [default: 0; `status` shows every node].
    #[arg(long, global = true, value_name = "I")]
    pub node: Option<usize>,
    /// The network's genesis file, for checks that need it (PoH tick lengths, replay).
    /// [default: DIR/genesis.json of the localnet, if there is one]
    #[arg(long, global = true, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// How long to wait for a node to connect and to answer each call.
    #[arg(long, global = true, value_name = "MS", default_value_t = 3000)]
    pub timeout_ms: u64,
}

/// `DIR/manifest.json` as `bb-localnet up` writes it. Only what this tool needs is
/// required; everything else is read if present and otherwise ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub nodes: Vec<ManifestNode>,
    /// The genesis file (`DIR/genesis.json` if not given).
    #[serde(default)]
    pub genesis: Option<PathBuf>,
}

/// One node of a localnet manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestNode {
    pub index: usize,
    pub rpc_url: String,
    #[serde(default)]
    pub identity: String,
    /// `running` or `stopped` (by `bb-localnet`); absent means running.
    #[serde(default)]
    pub state: Option<String>,
}

impl ManifestNode {
    /// Stopped on purpose by `bb-localnet` (not crashed): not worth dialing.
    pub fn stopped(&self) -> bool {
        self.state.as_deref() == Some("stopped")
    }
}

impl Manifest {
    /// Parses a manifest; the error says what is wrong with it.
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let mut manifest: Manifest = serde_json::from_str(text)?;
        manifest.nodes.sort_by_key(|n| n.index);
        if let Some(w) = manifest.nodes.windows(2).find(|w| w[0].index == w[1].index) {
            anyhow::bail!("node {} is listed twice", w[0].index);
        }
        Ok(manifest)
    }
}

/// A node to talk to, as the user knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    /// Its index in the localnet; `None` for a node given by `--rpc`.
    pub index: Option<usize>,
    pub url: String,
    /// Its identity address from the manifest; empty if not known.
    pub identity: String,
    /// The localnet manifest says it was stopped.
    pub stopped: bool,
}

impl NodeRef {
    /// "node 2 (http://127.0.0.1:9000)" or the URL alone.
    pub fn label(&self) -> String {
        match self.index {
            Some(i) => format!("node {i} ({})", self.url),
            None => self.url.clone(),
        }
    }
}

/// Everything resolved from the shared flags.
#[derive(Debug)]
pub struct Target {
    /// The node a single-node command talks to.
    pub selected: NodeRef,
    /// Every node `status` shows: all of a localnet, or only the one named by
    /// `--rpc` / `--node`.
    pub all: Vec<NodeRef>,
    /// The genesis, and the file it came from.
    pub genesis: Option<(PathBuf, Genesis)>,
    /// The localnet directory, if one is used (for messages).
    pub localnet: Option<PathBuf>,
    pub timeout: Duration,
}

impl Target {
    /// Resolves the flags: reads the manifest and the genesis file as needed.
    pub fn resolve(args: &NodeArgs) -> anyhow::Result<Target> {
        let timeout = Duration::from_millis(args.timeout_ms.max(1));
        if args.rpc.is_some() && args.node.is_some() {
            anyhow::bail!("--rpc and --node do not go together: --node picks a node of a localnet");
        }
        let explicit_genesis = match &args.genesis {
            Some(path) => Some((path.clone(), read_genesis(path)?)),
            None => None,
        };
        if let Some(url) = &args.rpc {
            let url = bb_rpc::normalize_url(url)?;
            let node = NodeRef {
                index: None,
                url,
                identity: String::new(),
                stopped: false,
            };
            // An explicit --localnet beside --rpc still lends its genesis.
            let genesis = match (explicit_genesis, &args.localnet) {
                (Some(g), _) => Some(g),
                (None, Some(dir)) => match read_manifest(dir)?.genesis {
                    Some(path) if path.is_file() => Some((path.clone(), read_genesis(&path)?)),
                    _ => localnet_genesis(dir)?,
                },
                (None, None) => None,
            };
            return Ok(Target {
                selected: node.clone(),
                all: vec![node],
                genesis,
                localnet: args.localnet.clone(),
                timeout,
            });
        }
        let dir = args
            .localnet
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCALNET_DIR));
        let manifest = read_manifest(&dir)?;
        let nodes: Vec<NodeRef> = manifest
            .nodes
            .iter()
            .map(|n| NodeRef {
                index: Some(n.index),
                // Shown normalized; a bad URL is reported when it is dialed.
                url: bb_rpc::normalize_url(&n.rpc_url).unwrap_or_else(|_| n.rpc_url.clone()),
                identity: n.identity.clone(),
                stopped: n.stopped(),
            })
            .collect();
        let wanted = args.node.unwrap_or(0);
        let Some(selected) = nodes.iter().find(|n| n.index == Some(wanted)).cloned() else {
            let have: Vec<String> = manifest.nodes.iter().map(|n| n.index.to_string()).collect();
            anyhow::bail!(
                "the localnet in {} has no node {wanted} (it has nodes {})",
                dir.display(),
                have.join(", ")
            );
        };
        let all = if args.node.is_some() {
            vec![selected.clone()]
        } else {
            nodes
        };
        let genesis = match (explicit_genesis, &manifest.genesis) {
            (Some(g), _) => Some(g),
            (None, Some(path)) if path.is_file() => Some((path.clone(), read_genesis(path)?)),
            (None, _) => localnet_genesis(&dir)?,
        };
        Ok(Target {
            selected,
            all,
            genesis,
            localnet: Some(dir),
            timeout,
        })
    }

    pub fn genesis(&self) -> Option<&Genesis> {
        self.genesis.as_ref().map(|(_, g)| g)
    }

    /// Connects to the selected node.
    pub async fn connect(&self) -> anyhow::Result<NodeClient> {
        self.connect_to(&self.selected).await
    }

    pub async fn connect_to(&self, node: &NodeRef) -> anyhow::Result<NodeClient> {
        let client = NodeClient::connect(&node.url, self.timeout).await?;
        Ok(client)
    }
}

/// A hint for commands that need a genesis and have none.
pub const NO_GENESIS_HINT: &str = "pass --genesis FILE or --localnet DIR";

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("manifest.json");
    let no_localnet = || {
        anyhow::anyhow!(
            "no localnet in {}: start one with `bb-localnet up --nodes 3`, or pass --rpc URL",
            dir.display()
        )
    };
    if !dir.is_dir() {
        return Err(no_localnet());
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_localnet()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Manifest::parse(&text).with_context(|| format!("invalid localnet manifest {}", path.display()))
}

/// `DIR/genesis.json` if the localnet has one.
fn localnet_genesis(dir: &Path) -> anyhow::Result<Option<(PathBuf, Genesis)>> {
    let path = dir.join("genesis.json");
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some((path.clone(), read_genesis(&path)?)))
}

/// Reads and checks a genesis file; the error names the file.
pub fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read genesis {}", path.display()))?;
    Genesis::from_json(&bytes).with_context(|| format!("genesis {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_reads_what_it_needs_and_ignores_the_rest() {
        let text = r#"{
            "genesis_hash": "abc",
            "nodes": [
                {"index": 1, "rpc_url": "http://127.0.0.1:9001", "identity": "bb_x",
                 "pid": 42, "metrics_url": "http://127.0.0.1:9101", "ledger": "node-1",
                 "state": "stopped", "ports": {"rpc": 9001}},
                {"index": 0, "rpc_url": "http://127.0.0.1:9000"}
            ]
        }"#;
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.nodes.len(), 2);
        assert_eq!(m.nodes[0].index, 0, "sorted by index");
        assert_eq!(m.nodes[0].identity, "");
        assert_eq!(m.nodes[1].identity, "bb_x");
        assert!(m.nodes[1].stopped() && !m.nodes[0].stopped());
        assert_eq!(m.genesis, None);
    }

    #[test]
    fn manifest_without_required_fields_is_refused() {
        let err = Manifest::parse(r#"{"nodes": [{"index": 0}]}"#).unwrap_err();
        assert!(err.to_string().contains("rpc_url"), "{err}");
        let err = Manifest::parse(r#"{"nodes": [{"rpc_url": "x"}]}"#).unwrap_err();
        assert!(err.to_string().contains("index"), "{err}");
        assert!(Manifest::parse(r#"{}"#).is_err());
        let twice = r#"{"nodes": [{"index": 0, "rpc_url": "a"}, {"index": 0, "rpc_url": "b"}]}"#;
        assert!(
            Manifest::parse(twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    fn args(dir: &Path) -> NodeArgs {
        NodeArgs {
            rpc: None,
            localnet: Some(dir.to_path_buf()),
            node: None,
            genesis: None,
            timeout_ms: 100,
        }
    }

    #[test]
    fn a_missing_localnet_says_how_to_start_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = Target::resolve(&args(dir.path())).unwrap_err().to_string();
        assert!(err.starts_with("no localnet in "), "{err}");
        assert!(err.contains("bb-localnet up --nodes 3"), "{err}");
        assert!(err.contains("--rpc URL"), "{err}");
    }

    #[test]
    fn localnet_nodes_are_selected_by_index() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"nodes": [{"index": 0, "rpc_url": "http://127.0.0.1:9000"},
                          {"index": 1, "rpc_url": "127.0.0.1:9001"}]}"#,
        )
        .unwrap();
        let t = Target::resolve(&args(dir.path())).unwrap();
        assert_eq!(t.selected.index, Some(0));
        assert_eq!(t.all.len(), 2);
        assert!(t.genesis.is_none());

        let mut one = args(dir.path());
        one.node = Some(1);
        let t = Target::resolve(&one).unwrap();
        assert_eq!(t.selected.url, "http://127.0.0.1:9001");
        assert_eq!(t.all, vec![t.selected.clone()]);

        one.node = Some(5);
        let err = Target::resolve(&one).unwrap_err().to_string();
        assert!(err.contains("no node 5") && err.contains("0, 1"), "{err}");
    }

    #[test]
    fn rpc_needs_no_localnet_and_refuses_node() {
        let mut a = args(Path::new("/nonexistent"));
        a.localnet = None;
        a.rpc = Some("127.0.0.1:8899".into());
        let t = Target::resolve(&a).unwrap();
        assert_eq!(t.selected.url, "http://127.0.0.1:8899");
        a.node = Some(1);
        assert!(Target::resolve(&a).is_err());
    }
}
