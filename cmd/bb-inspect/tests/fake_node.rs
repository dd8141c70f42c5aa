//! bb-inspect against a real gRPC server on 127.0.0.1 that serves a real chain: a test
//! double of a validator whose blocks are produced by the bank from a real genesis, and
//! whose votes are signed by the real validator keys. It can be told to lie (a wrong bank
//! hash, a flipped bit in a block, a forged vote), and bb-inspect must notice.

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use bb_core::{
    Block, Canonical, Genesis, GenesisAccount, GenesisValidator, Hash, Keypair, Transaction, Vote,
};
use bb_rpc::Node;
use bb_rpc::pb::{
    BlockSummary, Commitment, GetBalanceRequest, GetBalanceResponse, GetBlockRequest,
    GetBlockResponse, GetLeaderScheduleRequest, GetLeaderScheduleResponse, GetPeersRequest,
    GetPeersResponse, GetStatusRequest, GetStatusResponse, GetVotesRequest, GetVotesResponse,
    LeaderRun, Peer, SlotHash, StreamBlocksRequest, StreamBlocksResponse,
    SubmitTransactionsRequest, SubmitTransactionsResponse, VoteInfo,
};
use bb_rpc::pb::{
    CreateSnapshotRequest, DownloadSnapshotRequest, GetGenesisRequest, GetGenesisResponse,
    ListSnapshotsRequest, ListSnapshotsResponse, RootedBlock, SnapshotChunk, SnapshotInfo,
    StreamRootedBlocksRequest,
};
use bb_rpc::pb::{GetSlashingRequest, GetSlashingResponse, SlashingEvidence, SlashingPenalty};
use bb_rpc::tonic::{self, Request, Response, Status};
use bb_runtime::{Bank, produce_block};

const STAKE: u64 = 100;
/// Slots with blocks: 1..=12 without 7 (its leader was down).
const SLOTS: [u64; 11] = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12];

fn keys() -> Vec<Keypair> {
    (1..=3u8).map(|i| Keypair::from_seed(&[i; 32])).collect()
}

fn genesis() -> Genesis {
    Genesis {
        version: 1,
        network: "inspect-fake".into(),
        creation_time_ms: 0,
        slot_ms: 400,
        ticks_per_slot: 4,
        hashes_per_tick: 8,
        slots_per_epoch: 32,
        leader_slots_per_rotation: 4,
        slash_penalty_bps: bb_core::DEFAULT_SLASH_PENALTY_BPS,
        validators: keys()
            .iter()
            .map(|k| GenesisValidator {
                identity: k.pubkey(),
                stake: STAKE,
            })
            .collect(),
        accounts: vec![GenesisAccount {
            address: Keypair::from_seed(&[9; 32]).pubkey(),
            balance: 1_000_000,
        }],
    }
}

/// What the double lies about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    Nothing,
    BankHashAt(u64),
    FlippedEntryAt(u64),
    ForgedVoteAt(u64),
}

struct Stored {
    block: Block,
    bank_hash: Hash,
}

struct ChainNode {
    genesis: Genesis,
    keys: Vec<Keypair>,
    blocks: BTreeMap<u64, Stored>,
    /// The bank after the last block: knows the leader schedules.
    tip: Arc<Bank>,
    lie: Lie,
}

impl ChainNode {
    fn new(lie: Lie) -> ChainNode {
        let genesis = genesis();
        let keys = keys();
        let payer = Keypair::from_seed(&[9; 32]);
        let mut parent = Bank::new_genesis(&genesis).expect("genesis loads");
        let mut blocks = BTreeMap::new();
        for (n, slot) in SLOTS.into_iter().enumerate() {
            let leader_key = parent.slot_leader(slot).expect("scheduled");
            let leader = keys
                .iter()
                .find(|k| k.pubkey() == leader_key)
                .expect("a known leader");
            let tx = Transaction::transfer(
                &payer,
                keys[n % 3].pubkey(),
                10 + n as u64,
                1,
                parent.last_blockhash(),
            );
            let produced = produce_block(&parent, leader, slot, &[vec![tx]]).expect("produced");
            let bank_hash = produced.bank.hash().expect("frozen");
            blocks.insert(
                slot,
                Stored {
                    block: produced.block,
                    bank_hash,
                },
            );
            parent = Arc::new(produced.bank);
        }
        ChainNode {
            genesis,
            keys,
            blocks,
            tip: parent,
            lie,
        }
    }

    fn last(&self) -> u64 {
        *SLOTS.last().expect("slots")
    }

    fn bank_hash(&self, slot: u64) -> Hash {
        let honest = self.blocks[&slot].bank_hash;
        if self.lie == Lie::BankHashAt(slot) {
            bb_core::hash(b"a lie")
        } else {
            honest
        }
    }

    fn summary(&self, slot: u64) -> BlockSummary {
        let b = &self.blocks[&slot].block;
        BlockSummary {
            slot,
            parent_slot: b.header.parent_slot,
            block_id: b.id().to_string(),
            parent_id: b.header.parent_id.to_string(),
            leader: b.header.leader.to_address(),
            bank_hash: Some(self.bank_hash(slot).to_string()),
            blockhash: b.header.poh_end.to_string(),
            transaction_count: b.header.transaction_count,
            tick_count: b.header.tick_count,
            commitment: Commitment::Finalized.into(),
        }
    }

    fn slot_hash(&self, slot: u64) -> SlotHash {
        SlotHash {
            slot,
            bank_hash: self.bank_hash(slot).to_string(),
            block_id: self.blocks[&slot].block.id().to_string(),
        }
    }
}

type BlockStream =
    Pin<Box<dyn futures::Stream<Item = Result<StreamBlocksResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Node for ChainNode {
    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let last = self.last();
        Ok(Response::new(GetStatusResponse {
            identity: self.keys[0].pubkey().to_address(),
            version: "0.1.0".into(),
            genesis_hash: self.genesis.hash().to_string(),
            slot: last + 1,
            processed: Some(self.slot_hash(last)),
            confirmed: Some(self.slot_hash(last)),
            finalized: Some(self.slot_hash(last)),
            root: Some(self.slot_hash(last)),
            epoch: 0,
            leader: self
                .tip
                .slot_leader(last + 1)
                .map(|k| k.to_address())
                .unwrap_or_default(),
            peer_count: 2,
            reachable_stake_share: 1.0,
            uptime_ms: 5_000,
            stake: STAKE,
            total_stake: 3 * STAKE,
            slot_duration_ms: 400,
            recent_blockhash: self.blocks[&last].block.header.poh_end.to_string(),
        }))
    }

    async fn get_peers(
        &self,
        _: Request<GetPeersRequest>,
    ) -> Result<Response<GetPeersResponse>, Status> {
        let peers = self.keys[1..]
            .iter()
            .enumerate()
            .map(|(i, k)| Peer {
                identity: k.pubkey().to_address(),
                libp2p_address: format!("/ip4/127.0.0.1/tcp/{}", 8001 + i),
                shred_address: String::new(),
                rpc_address: String::new(),
                stake: STAKE,
                last_slot: Some(self.last()),
                rtt_ms: Some(1),
                connected: true,
                clock_skew_ms: Some(2),
                version: "0.1.0".into(),
                ..Peer::default()
            })
            .collect();
        Ok(Response::new(GetPeersResponse {
            peers,
            total_stake: 3 * STAKE,
        }))
    }

    async fn get_votes(
        &self,
        request: Request<GetVotesRequest>,
    ) -> Result<Response<GetVotesResponse>, Status> {
        let slot = request.into_inner().slot;
        let Some(stored) = self.blocks.get(&slot) else {
            return Err(Status::not_found(format!("no votes for slot {slot}")));
        };
        let votes = self
            .keys
            .iter()
            .map(|k| {
                let mut signed = Vote {
                    voter: k.pubkey(),
                    slot,
                    block_id: stored.block.id(),
                    bank_hash: stored.bank_hash,
                    confirmation_count: 2,
                    root: None,
                    timestamp_ms: 1_700_000_000_000,
                }
                .sign(k);
                if self.lie == Lie::ForgedVoteAt(slot) && k.pubkey() == self.keys[2].pubkey() {
                    signed.vote.confirmation_count = 30; // changed after signing
                }
                VoteInfo {
                    voter: k.pubkey().to_address(),
                    stake: STAKE,
                    slot,
                    block_id: signed.vote.block_id.to_string(),
                    bank_hash: signed.vote.bank_hash.to_string(),
                    confirmation_count: signed.vote.confirmation_count,
                    root: None,
                    timestamp_ms: signed.vote.timestamp_ms,
                    signature: signed.signature.to_string(),
                    signed_vote: signed.to_bytes(),
                }
            })
            .collect();
        Ok(Response::new(GetVotesResponse {
            slot,
            votes,
            total_stake: 3 * STAKE,
            voted_stake: 3 * STAKE,
        }))
    }

    async fn get_leader_schedule(
        &self,
        request: Request<GetLeaderScheduleRequest>,
    ) -> Result<Response<GetLeaderScheduleResponse>, Status> {
        let epoch = request.into_inner().epoch.unwrap_or(0);
        if epoch > 1 {
            return Err(Status::not_found(format!("no schedule for epoch {epoch}")));
        }
        let schedule = self
            .tip
            .leader_schedule(epoch)
            .map_err(|e| Status::not_found(e.to_string()))?;
        let mut runs: Vec<LeaderRun> = Vec::new();
        for slot in schedule.first_slot()..=schedule.last_slot() {
            let leader = schedule.leader_at(slot).expect("in epoch").to_address();
            match runs.last_mut() {
                Some(r) if r.leader == leader => r.slot_count += 1,
                _ => runs.push(LeaderRun {
                    leader,
                    start_slot: slot,
                    slot_count: 1,
                }),
            }
        }
        Ok(Response::new(GetLeaderScheduleResponse {
            epoch,
            first_slot: schedule.first_slot(),
            slots_per_epoch: self.genesis.slots_per_epoch,
            slots_per_rotation: schedule.slots_per_rotation(),
            runs,
        }))
    }

    async fn get_block(
        &self,
        request: Request<GetBlockRequest>,
    ) -> Result<Response<GetBlockResponse>, Status> {
        let r = request.into_inner();
        let Some(stored) = self.blocks.get(&r.slot) else {
            return Err(Status::not_found(format!("no block for slot {}", r.slot)));
        };
        let block_bytes = if r.summary_only {
            Vec::new()
        } else {
            let mut block = stored.block.clone();
            if self.lie == Lie::FlippedEntryAt(r.slot) {
                block.entries[0].hash.0[3] ^= 0x10;
            }
            block.to_bytes()
        };
        Ok(Response::new(GetBlockResponse {
            block: Some(self.summary(r.slot)),
            block_bytes,
        }))
    }

    type StreamBlocksStream = BlockStream;

    async fn stream_blocks(
        &self,
        _: Request<StreamBlocksRequest>,
    ) -> Result<Response<Self::StreamBlocksStream>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn submit_transactions(
        &self,
        _: Request<SubmitTransactionsRequest>,
    ) -> Result<Response<SubmitTransactionsResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn get_balance(
        &self,
        _: Request<GetBalanceRequest>,
    ) -> Result<Response<GetBalanceResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn get_genesis(
        &self,
        _: Request<GetGenesisRequest>,
    ) -> Result<Response<GetGenesisResponse>, Status> {
        Ok(Response::new(GetGenesisResponse {
            genesis_json: self.genesis.to_json_pretty().into_bytes(),
            genesis_hash: self.genesis.hash().to_string(),
        }))
    }

    async fn list_snapshots(
        &self,
        _: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn create_snapshot(
        &self,
        _: Request<CreateSnapshotRequest>,
    ) -> Result<Response<SnapshotInfo>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    type DownloadSnapshotStream =
        Pin<Box<dyn futures::Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

    async fn download_snapshot(
        &self,
        _: Request<DownloadSnapshotRequest>,
    ) -> Result<Response<Self::DownloadSnapshotStream>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn get_slashing(
        &self,
        _: Request<GetSlashingRequest>,
    ) -> Result<Response<GetSlashingResponse>, Status> {
        // Validator 3 voted for two blocks of slot 5; the block of slot 6 recorded it and
        // epoch 1 cut its stake by 10 %.
        let k = &self.keys[2];
        let vote = |id: u8| {
            Vote {
                voter: k.pubkey(),
                slot: 5,
                block_id: Hash([id; 32]),
                bank_hash: Hash([id; 32]),
                confirmation_count: 1,
                root: None,
                timestamp_ms: 0,
            }
            .sign(k)
        };
        let mut second = vote(2);
        if matches!(self.lie, Lie::ForgedVoteAt(_)) {
            // Claims the validator voted a block it never signed.
            second.vote.block_id = Hash([3; 32]);
        }
        let evidence = bb_core::Evidence::double_vote(vote(1), second);
        Ok(Response::new(GetSlashingResponse {
            evidence: vec![SlashingEvidence {
                offender: k.pubkey().to_address(),
                slot: 5,
                kind: "double-vote".into(),
                source: "detected".into(),
                first_seen_ms: 1_700_000_002_000,
                recorded_in_slot: Some(6),
                evidence: evidence.to_bytes(),
            }],
            penalties: vec![SlashingPenalty {
                offender: k.pubkey().to_address(),
                epoch: 1,
                old_stake: STAKE,
                new_stake: STAKE - STAKE / 10,
            }],
            slash_penalty_bps: 1000,
        }))
    }

    type StreamRootedBlocksStream =
        Pin<Box<dyn futures::Stream<Item = Result<RootedBlock, Status>> + Send>>;

    async fn stream_rooted_blocks(
        &self,
        _: Request<StreamRootedBlocksRequest>,
    ) -> Result<Response<Self::StreamRootedBlocksStream>, Status> {
        Err(Status::unimplemented("not in this double"))
    }
}

/// A [`ChainNode`] served on 127.0.0.1 from a thread of its own until dropped.
struct Served {
    url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(lie: Lie) -> Served {
        let node = ChainNode::new(lie);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let (_reporter, health) = bb_rpc::health_service();
                let shutdown = async {
                    let _ = rx.await;
                };
                bb_rpc::serve(listener, node, health, shutdown)
                    .await
                    .expect("serves");
            });
        });
        Served {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn inspect(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bb-inspect"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("bb-inspect runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Runs a command against `node` with the genesis file in `dir`.
fn run(dir: &Path, node: &Served, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--rpc", &node.url, "--genesis", "genesis.json"]);
    inspect(dir, &all)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

fn setup(lie: Lie) -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("genesis.json"), genesis().to_json_pretty())
        .expect("genesis written");
    (dir, Served::start(lie))
}

/// A failed check: exit 1 and one line on stderr naming it.
fn assert_fails(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {} stderr: {err}",
        text(&o.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

#[test]
fn integrity_of_an_honest_chain_replays_every_bank_hash() {
    let (dir, node) = setup(Lie::Nothing);
    let o = run(dir.path(), &node, &["integrity"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        "checked 11 blocks from slot 1 to 12, 1 skipped slot, all links, PoH, signatures and bank hashes match"
    );

    let o = run(
        dir.path(),
        &node,
        &["integrity", "--from", "5", "--to", "10", "--json"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = json(&o);
    assert_eq!(j["ok"], true);
    assert_eq!(j["checked_blocks"], 5, "{j}");
    assert_eq!(j["skipped_slots"], 1, "{j}");
    assert_eq!(j["replayed_before_from"], 4, "{j}");

    // Without the genesis: links, signatures and PoH only, and it says so.
    let o = inspect(
        dir.path(),
        &["integrity", "--from", "3", "--rpc", &node.url],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("checked 9 blocks from slot 3 to 12")
            && text(&o.stdout).contains("bank hashes not checked"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn integrity_names_the_slot_whose_bank_hash_the_node_got_wrong() {
    let (dir, node) = setup(Lie::BankHashAt(9));
    let o = run(dir.path(), &node, &["integrity"]);
    assert_fails(&o, "slot 9: bank hash differs: node says ");
    assert!(
        text(&o.stderr).contains(", replay gives "),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());

    let o = run(dir.path(), &node, &["integrity", "--json"]);
    assert_fails(&o, "slot 9: bank hash differs");
    let j = json(&o);
    assert_eq!(j["ok"], false);
    assert_eq!(j["failure"]["slot"], 9);
}

#[test]
fn integrity_and_block_catch_a_flipped_bit() {
    let (dir, node) = setup(Lie::FlippedEntryAt(4));
    let o = run(dir.path(), &node, &["integrity"]);
    assert_fails(&o, "slot 4: block body");
    // Up to slot 3 all is well.
    let o = run(dir.path(), &node, &["integrity", "--to", "3"]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let o = run(dir.path(), &node, &["block", "--slot", "4", "--json"]);
    assert_fails(&o, "the block of slot 4 fails: body, PoH");
    let j = json(&o);
    let failed: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "failed")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["body", "PoH"], "{j}");
}

#[test]
fn block_shows_an_honest_block_and_every_check_passes() {
    let (dir, node) = setup(Lie::Nothing);
    let o = run(dir.path(), &node, &["block", "--slot", "8"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("parent slot   6"), "{out}");
    assert!(out.contains("commitment    finalized"), "{out}");
    for check in [
        "block id",
        "leader signature",
        "body",
        "PoH",
        "network",
        "parent link",
        "scheduled leader",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(check) && l.contains('│'))
            .unwrap_or_else(|| panic!("{check}: {out}"));
        assert!(line.contains(" ok "), "{line}");
    }
    let o = run(dir.path(), &node, &["block", "--slot", "7"]);
    assert_fails(&o, "node has no block for slot 7");
}

#[test]
fn votes_are_verified_and_stake_share_is_counted() {
    let (dir, node) = setup(Lie::Nothing);
    let o = run(dir.path(), &node, &["votes", "--slot", "5"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("3/3 validators, 100.0% of stake for block "),
        "{out}"
    );
    assert!(out.contains("(2/3 reached)"), "{out}");
    let o = run(dir.path(), &node, &["votes", "--slot", "5", "--json"]);
    let j = json(&o);
    assert_eq!(j["votes"].as_array().unwrap().len(), 3);
    assert_eq!(j["votes"][0]["lockout"], 4);
    assert_eq!(j["invalid_votes"], 0);
    assert_eq!(j["staked_validators"], 3);

    let o = run(dir.path(), &node, &["votes", "--slot", "7"]);
    assert_fails(&o, "node has no votes for slot 7");
}

#[test]
fn a_forged_vote_is_flagged_and_not_counted() {
    let (dir, node) = setup(Lie::ForgedVoteAt(5));
    let o = run(dir.path(), &node, &["votes", "--slot", "5"]);
    assert_fails(&o, "1 of 3 votes for slot 5 failed verification");
    let out = text(&o.stdout);
    assert!(out.contains("BAD: signature does not verify"), "{out}");
    assert!(out.contains("2/3 validators, 66.7% of stake"), "{out}");
}

#[test]
fn slashing_evidence_is_checked_here_and_penalties_listed() {
    let (dir, node) = setup(Lie::Nothing);
    let o = run(dir.path(), &node, &["slashing"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("double-vote"), "{out}");
    assert!(out.contains("each cuts 10.0%"), "{out}");
    let o = run(dir.path(), &node, &["slashing", "--json"]);
    let j = json(&o);
    let offender = node_key_address(2);
    assert_eq!(j["evidence"][0]["offender"], offender.as_str());
    assert_eq!(j["evidence"][0]["verified"], true, "{j}");
    assert_eq!(j["evidence"][0]["recorded_in_slot"], 6);
    assert_eq!(j["penalties"][0]["new_stake"], 90);
    assert_eq!(j["invalid_evidence"], 0);

    let (dir, node) = setup(Lie::ForgedVoteAt(5));
    let o = run(dir.path(), &node, &["slashing"]);
    assert_fails(&o, "1 of 1 pieces of evidence failed verification");
    assert!(text(&o.stdout).contains("BAD: proves nothing"));
}

fn node_key_address(i: usize) -> String {
    keys()[i].pubkey().to_address()
}

#[test]
fn status_peers_and_schedule_read_the_node() {
    let (dir, node) = setup(Lie::Nothing);
    let o = run(dir.path(), &node, &["status"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let me = keys()[0].pubkey().to_address();
    assert!(out.contains(&me[..9]) && out.contains("12 ("), "{out}");

    let o = run(dir.path(), &node, &["peers", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = json(&o);
    assert_eq!(j["peers"].as_array().unwrap().len(), 2);
    assert_eq!(j["connected"], 2);

    let o = run(dir.path(), &node, &["schedule", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j = json(&o);
    assert_eq!(j["epoch"], 0);
    let total: u64 = j["leaders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["slots"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 32);
    assert!(j["problems"].as_array().unwrap().is_empty(), "{j}");
    assert_eq!(j["current_slot"], 13);
    let o = run(dir.path(), &node, &["schedule", "--epoch", "9"]);
    assert_fails(&o, "node has no leader schedule for epoch 9");
}

#[test]
fn status_of_a_localnet_shows_a_down_node_as_a_row() {
    let (dir, node) = setup(Lie::Nothing);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        dir.path().join("manifest.json"),
        format!(
            r#"{{"genesis_hash": "x", "nodes": [
                {{"index": 0, "rpc_url": "{}", "identity": "bb_zero", "state": "running"}},
                {{"index": 1, "rpc_url": "http://127.0.0.1:{closed_port}", "identity": "bb_one"}},
                {{"index": 2, "rpc_url": "http://127.0.0.1:1", "identity": "bb_two", "state": "stopped"}}
            ]}}"#,
            node.url
        ),
    )
    .unwrap();
    let o = inspect(dir.path(), &["status", "--localnet", "."]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.lines()
            .any(|l| l.contains("bb_one") && l.contains("down")),
        "{out}"
    );
    assert!(out.contains("node 2 is down: stopped"), "{out}");
    let o = inspect(dir.path(), &["status", "--localnet", ".", "--json"]);
    let j = json(&o);
    let up: Vec<bool> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["up"].as_bool().unwrap())
        .collect();
    assert_eq!(up, vec![true, false, false]);
    // The localnet's genesis.json is found without --genesis: integrity replays.
    let o = inspect(dir.path(), &["integrity", "--localnet", ".", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(json(&o)["replayed"], true);
}
