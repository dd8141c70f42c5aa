//! The gRPC transport end to end on real sockets: a `Node` test double holding fixed data,
//! served with health and reflection on 127.0.0.1, queried with the typed client, the
//! standard health client and the reflection client.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bb_core::{Canonical, Hash, Keypair, SignedVote, Vote, hash};
use bb_rpc::pb::{
    BlockSummary, Commitment, GetBalanceRequest, GetBalanceResponse, GetBlockRequest,
    GetBlockResponse, GetLeaderScheduleRequest, GetLeaderScheduleResponse, GetPeersRequest,
    GetPeersResponse, GetStatusRequest, GetStatusResponse, GetVotesRequest, GetVotesResponse,
    LeaderRun, Peer, SlotHash, StreamBlocksRequest, StreamBlocksResponse,
    SubmitTransactionsRequest, SubmitTransactionsResponse, TransactionResult, VoteInfo,
};
use bb_rpc::pb::{
    CreateSnapshotRequest, DownloadSnapshotRequest, GetGenesisRequest, GetGenesisResponse,
    ListSnapshotsRequest, ListSnapshotsResponse, RootedBlock, SnapshotChunk, SnapshotInfo,
    StreamRootedBlocksRequest,
};
use bb_rpc::{NODE_SERVICE_NAME, Node, NodeClient, RpcError, ServeError, ServingStatus};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const TIMEOUT: Duration = Duration::from_secs(5);
/// The only slot the double has a block for.
const BLOCK_SLOT: u64 = 5;

/// A node with one block, one vote and fixed answers everywhere else.
struct FixedNode {
    identity: Keypair,
    vote: SignedVote,
    block_bytes: Vec<u8>,
}

impl FixedNode {
    fn new() -> Self {
        let identity = Keypair::from_seed(&[9; 32]);
        let vote = Vote {
            voter: identity.pubkey(),
            slot: BLOCK_SLOT,
            block_id: hash(b"block 5"),
            bank_hash: hash(b"bank 5"),
            confirmation_count: 3,
            root: Some(1),
            timestamp_ms: 1_700_000_000_000,
        }
        .sign(&identity);
        FixedNode {
            identity,
            vote,
            // Not a real block: the transport does not look inside the bytes.
            block_bytes: vec![0xAB; 5 * 1024 * 1024],
        }
    }

    fn summary(&self, slot: u64, commitment: Commitment) -> BlockSummary {
        BlockSummary {
            slot,
            parent_slot: slot.saturating_sub(1),
            block_id: hash(&slot.to_le_bytes()).to_string(),
            parent_id: Hash::ZERO.to_string(),
            leader: self.identity.pubkey().to_address(),
            bank_hash: Some(hash(b"bank").to_string()),
            blockhash: hash(b"poh end").to_string(),
            transaction_count: 2,
            tick_count: 64,
            commitment: commitment.into(),
        }
    }
}

type BlockStream = Pin<Box<dyn Stream<Item = Result<StreamBlocksResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Node for FixedNode {
    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let at = |slot: u64| SlotHash {
            slot,
            bank_hash: hash(&slot.to_be_bytes()).to_string(),
            block_id: hash(&slot.to_le_bytes()).to_string(),
        };
        Ok(Response::new(GetStatusResponse {
            identity: self.identity.pubkey().to_address(),
            version: "0.1.0".into(),
            genesis_hash: hash(b"genesis").to_string(),
            slot: 12,
            processed: Some(at(11)),
            confirmed: Some(at(10)),
            finalized: Some(at(4)),
            root: None,
            epoch: 0,
            leader: self.identity.pubkey().to_address(),
            peer_count: 2,
            reachable_stake_share: 1.0,
            uptime_ms: 60_000,
            stake: 100,
            total_stake: 300,
            slot_duration_ms: 400,
            recent_blockhash: hash(b"poh end").to_string(),
        }))
    }

    async fn get_peers(
        &self,
        _: Request<GetPeersRequest>,
    ) -> Result<Response<GetPeersResponse>, Status> {
        Ok(Response::new(GetPeersResponse {
            peers: vec![Peer {
                identity: Keypair::from_seed(&[1; 32]).pubkey().to_address(),
                libp2p_address: "/ip4/127.0.0.1/tcp/8001".into(),
                shred_address: "127.0.0.1:9001".into(),
                rpc_address: "http://127.0.0.1:8900".into(),
                stake: 200,
                last_slot: Some(11),
                rtt_ms: None,
                connected: true,
                clock_skew_ms: Some(-3),
                version: "0.1.0".into(),
                ..Peer::default()
            }],
            total_stake: 300,
        }))
    }

    async fn get_votes(
        &self,
        request: Request<GetVotesRequest>,
    ) -> Result<Response<GetVotesResponse>, Status> {
        let slot = request.into_inner().slot;
        let votes = if slot == BLOCK_SLOT {
            let v = &self.vote.vote;
            vec![VoteInfo {
                voter: v.voter.to_address(),
                stake: 100,
                slot: v.slot,
                block_id: v.block_id.to_string(),
                bank_hash: v.bank_hash.to_string(),
                confirmation_count: v.confirmation_count,
                root: v.root,
                timestamp_ms: v.timestamp_ms,
                signature: self.vote.signature.to_string(),
                signed_vote: self.vote.to_bytes(),
            }]
        } else {
            Vec::new()
        };
        let voted_stake = votes.iter().map(|v| v.stake).sum();
        Ok(Response::new(GetVotesResponse {
            slot,
            votes,
            total_stake: 300,
            voted_stake,
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
        let first_slot = epoch * 32;
        let runs = (0..8)
            .map(|i| LeaderRun {
                leader: Keypair::from_seed(&[i % 2; 32]).pubkey().to_address(),
                start_slot: first_slot + u64::from(i) * 4,
                slot_count: 4,
            })
            .collect();
        Ok(Response::new(GetLeaderScheduleResponse {
            epoch,
            first_slot,
            slots_per_epoch: 32,
            slots_per_rotation: 4,
            runs,
        }))
    }

    async fn get_block(
        &self,
        request: Request<GetBlockRequest>,
    ) -> Result<Response<GetBlockResponse>, Status> {
        let request = request.into_inner();
        if request.slot != BLOCK_SLOT {
            return Err(Status::not_found(format!(
                "no block at slot {}",
                request.slot
            )));
        }
        Ok(Response::new(GetBlockResponse {
            block: Some(self.summary(BLOCK_SLOT, Commitment::Finalized)),
            block_bytes: if request.summary_only {
                Vec::new()
            } else {
                self.block_bytes.clone()
            },
        }))
    }

    type StreamBlocksStream = BlockStream;

    async fn stream_blocks(
        &self,
        request: Request<StreamBlocksRequest>,
    ) -> Result<Response<BlockStream>, Status> {
        let from = request.into_inner().from_slot;
        let items: Vec<Result<StreamBlocksResponse, Status>> = (from..from + 3)
            .map(|slot| {
                Ok(StreamBlocksResponse {
                    block: Some(self.summary(slot, Commitment::Confirmed)),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn submit_transactions(
        &self,
        request: Request<SubmitTransactionsRequest>,
    ) -> Result<Response<SubmitTransactionsResponse>, Status> {
        let results = request
            .into_inner()
            .transactions
            .iter()
            .map(|bytes| match bb_core::Transaction::from_bytes(bytes) {
                Ok(tx) => TransactionResult {
                    signature: tx.id().to_string(),
                    accepted: true,
                    reason: String::new(),
                },
                Err(e) => TransactionResult {
                    signature: String::new(),
                    accepted: false,
                    reason: e.to_string(),
                },
            })
            .collect();
        Ok(Response::new(SubmitTransactionsResponse {
            results,
            forwarded_to: vec![self.identity.pubkey().to_address()],
        }))
    }

    async fn get_balance(
        &self,
        request: Request<GetBalanceRequest>,
    ) -> Result<Response<GetBalanceResponse>, Status> {
        let request = request.into_inner();
        if request.address.parse::<bb_core::Pubkey>().is_err() {
            return Err(Status::invalid_argument(format!(
                "not an address: {:?}",
                request.address
            )));
        }
        let commitment = match request.commitment() {
            Commitment::Unspecified => Commitment::Finalized,
            other => other,
        };
        Ok(Response::new(GetBalanceResponse {
            balance: 1_000,
            slot: 4,
            commitment: commitment.into(),
        }))
    }

    async fn get_genesis(
        &self,
        _: Request<GetGenesisRequest>,
    ) -> Result<Response<GetGenesisResponse>, Status> {
        Ok(Response::new(GetGenesisResponse {
            genesis_json: b"{}".to_vec(),
            genesis_hash: Hash([7; 32]).to_string(),
        }))
    }

    async fn list_snapshots(
        &self,
        _: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        Ok(Response::new(ListSnapshotsResponse {
            snapshots: vec![snapshot_info()],
        }))
    }

    async fn create_snapshot(
        &self,
        _: Request<CreateSnapshotRequest>,
    ) -> Result<Response<SnapshotInfo>, Status> {
        Ok(Response::new(snapshot_info()))
    }

    type DownloadSnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

    async fn download_snapshot(
        &self,
        request: Request<DownloadSnapshotRequest>,
    ) -> Result<Response<Self::DownloadSnapshotStream>, Status> {
        let r = request.into_inner();
        if r.slot != SNAPSHOT_SLOT {
            return Err(Status::not_found(format!("no snapshot of slot {}", r.slot)));
        }
        let file = snapshot_file();
        let total = file.len() as u64;
        let chunks: Vec<Result<SnapshotChunk, Status>> = file
            .chunks(1000)
            .enumerate()
            .map(|(i, c)| (i as u64 * 1000, c))
            .filter(|(at, c)| at + c.len() as u64 > r.offset)
            .map(|(at, c)| {
                let skip = r.offset.saturating_sub(at) as usize;
                Ok(SnapshotChunk {
                    offset: at + skip as u64,
                    data: c[skip..].to_vec(),
                    total_size: total,
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn get_slashing(
        &self,
        _: Request<bb_rpc::pb::GetSlashingRequest>,
    ) -> Result<Response<bb_rpc::pb::GetSlashingResponse>, Status> {
        Ok(Response::new(bb_rpc::pb::GetSlashingResponse {
            evidence: Vec::new(),
            penalties: Vec::new(),
            slash_penalty_bps: 1000,
        }))
    }

    type StreamRootedBlocksStream = Pin<Box<dyn Stream<Item = Result<RootedBlock, Status>> + Send>>;

    async fn stream_rooted_blocks(
        &self,
        request: Request<StreamRootedBlocksRequest>,
    ) -> Result<Response<Self::StreamRootedBlocksStream>, Status> {
        let r = request.into_inner();
        let items: Vec<Result<RootedBlock, Status>> = (r.from_slot..=r.to_slot.max(r.from_slot))
            .map(|slot| {
                Ok(RootedBlock {
                    slot,
                    block_bytes: if r.headers_only {
                        vec![1]
                    } else {
                        vec![1, 2, 3]
                    },
                    bank_hash: Hash([slot as u8; 32]).to_string(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }
}

/// A served test double; dropping it without `stop` leaves the server to the runtime's end.
struct Served {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
    health: tonic_health::server::HealthReporter,
}

impl Served {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("the server stops within the timeout")
            .expect("the server task did not panic");
        result.expect("the server ended cleanly");
    }
}

const SNAPSHOT_SLOT: u64 = 42;

fn snapshot_file() -> Vec<u8> {
    (0..2500u32).map(|i| (i % 251) as u8).collect()
}

fn snapshot_info() -> SnapshotInfo {
    SnapshotInfo {
        slot: SNAPSHOT_SLOT,
        bank_hash: Hash([4; 32]).to_string(),
        block_id: Hash([5; 32]).to_string(),
        size: snapshot_file().len() as u64,
        account_count: 3,
        created_ms: 1,
        file_name: "snapshot-42-x.bbsnap".into(),
    }
}

#[tokio::test]
async fn snapshots_and_rooted_blocks_stream_and_resume_from_an_offset() {
    let served = serve_fixed_node().await;
    let client = NodeClient::connect(&served.addr.to_string(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(client.genesis().await.unwrap().genesis_json, b"{}");
    let listed = client.list_snapshots().await.unwrap().snapshots;
    assert_eq!(listed, vec![snapshot_info()]);
    assert_eq!(client.create_snapshot().await.unwrap(), snapshot_info());
    // A download resumed at byte 1500 gets exactly the rest of the file.
    let mut got = Vec::new();
    let mut stream = client
        .download_snapshot(SNAPSHOT_SLOT, "", 1500)
        .await
        .unwrap();
    while let Some(chunk) = stream.message().await.unwrap() {
        assert_eq!(chunk.offset, 1500 + got.len() as u64);
        assert_eq!(chunk.total_size, 2500);
        got.extend(chunk.data);
    }
    assert_eq!(got, snapshot_file()[1500..]);
    let err = client.download_snapshot(7, "", 0).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let mut blocks = client.rooted_blocks(3, 5, true).await.unwrap();
    let mut slots = Vec::new();
    while let Some(b) = blocks.message().await.unwrap() {
        assert_eq!(b.block_bytes, vec![1]);
        slots.push(b.slot);
    }
    assert_eq!(slots, vec![3, 4, 5]);
    served.stop().await;
}

async fn serve_fixed_node() -> Served {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (health, health_service) = bb_rpc::health_service();
    health
        .set_service_status(NODE_SERVICE_NAME, ServingStatus::Serving)
        .await;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bb_rpc::serve(
        listener,
        FixedNode::new(),
        health_service,
        async {
            let _ = stopped.await;
        },
    ));
    Served {
        addr,
        stop,
        task,
        health,
    }
}

async fn channel(url: String) -> Channel {
    Endpoint::from_shared(url)
        .expect("a valid URL")
        .connect_timeout(TIMEOUT)
        .connect()
        .await
        .expect("the test server accepts connections")
}

#[tokio::test]
async fn typed_client_reads_every_call() {
    let served = serve_fixed_node().await;
    // No scheme: the client adds http://.
    let client = NodeClient::connect(&served.addr.to_string(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(client.url(), served.url());

    let status = client.status().await.unwrap();
    assert_eq!(
        status.identity,
        Keypair::from_seed(&[9; 32]).pubkey().to_address()
    );
    assert!(status.identity.starts_with("bb_"));
    assert_eq!(status.slot, 12);
    assert_eq!(status.confirmed.as_ref().map(|c| c.slot), Some(10));
    assert_eq!(status.root, None);

    let peers = client.peers().await.unwrap();
    assert_eq!(peers.peers.len(), 1);
    assert_eq!(peers.peers[0].rtt_ms, None);
    assert_eq!(peers.peers[0].last_slot, Some(11));

    // The vote bytes travel intact: the client can decode and re-verify the signature.
    let votes = client.votes(BLOCK_SLOT).await.unwrap();
    assert_eq!(votes.votes.len(), 1);
    let vote = &votes.votes[0];
    let signed = SignedVote::from_bytes(&vote.signed_vote).unwrap();
    assert_eq!(signed.verify(), Ok(()));
    assert_eq!(signed.signature.to_string(), vote.signature);
    assert_eq!(signed.vote.root, vote.root);
    assert!(client.votes(99).await.unwrap().votes.is_empty());

    let schedule = client.schedule(None).await.unwrap();
    assert_eq!(schedule.epoch, 0);
    let covered: u64 = schedule.runs.iter().map(|r| r.slot_count).sum();
    assert_eq!(covered, schedule.slots_per_epoch);
    assert_eq!(client.schedule(Some(1)).await.unwrap().first_slot, 32);

    // 5 MiB: over gRPC's usual 4 MiB limit, so the client's larger limit is in force.
    let block = client.block(BLOCK_SLOT).await.unwrap();
    assert_eq!(block.block_bytes.len(), 5 * 1024 * 1024);
    assert_eq!(block.block.as_ref().map(|b| b.slot), Some(BLOCK_SLOT));
    assert_eq!(
        block.block.as_ref().map(BlockSummary::commitment),
        Some(Commitment::Finalized)
    );
    assert!(
        client
            .block_summary(BLOCK_SLOT)
            .await
            .unwrap()
            .block_bytes
            .is_empty()
    );

    let mut stream = client
        .stream_blocks(7, Commitment::Confirmed)
        .await
        .unwrap();
    let mut slots = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        slots.extend(item.block.map(|b| b.slot));
    }
    assert_eq!(slots, vec![7, 8, 9]);

    let sender = Keypair::from_seed(&[4; 32]);
    let tx = bb_core::Transaction::transfer(&sender, sender.pubkey(), 1, 1, Hash::ZERO);
    let submitted = client
        .submit(vec![tx.to_bytes(), b"garbage".to_vec()])
        .await
        .unwrap();
    assert_eq!(submitted.results.len(), 2);
    assert!(submitted.results[0].accepted);
    assert_eq!(submitted.results[0].signature, tx.id().to_string());
    assert!(!submitted.results[1].accepted);
    assert!(!submitted.results[1].reason.is_empty());

    let balance = client.balance(&sender.pubkey().to_address()).await.unwrap();
    assert_eq!(balance.balance, 1_000);
    assert_eq!(balance.commitment(), Commitment::Finalized);
    let err = client.balance("not-an-address").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));

    served.stop().await;
}

#[tokio::test]
async fn messages_over_four_mib_pass_both_ways() {
    let served = serve_fixed_node().await;
    let client = NodeClient::connect(&served.url(), TIMEOUT).await.unwrap();
    // 6 MiB of requests: over the usual 4 MiB gRPC default, under bb's 80 MiB.
    let big = vec![vec![0u8; 1024 * 1024]; 6];
    let answer = client.submit(big).await.unwrap();
    assert_eq!(answer.results.len(), 6);
    assert!(answer.results.iter().all(|r| !r.accepted));
    served.stop().await;
}

#[tokio::test]
async fn unknown_slot_is_not_found() {
    let served = serve_fixed_node().await;
    let client = NodeClient::connect(&served.url(), TIMEOUT).await.unwrap();
    let err = client.block(BLOCK_SLOT + 1).await.unwrap_err();
    match &err {
        RpcError::Status { code, message, url } => {
            assert_eq!(*code, Code::NotFound);
            assert_eq!(message, "no block at slot 6");
            assert_eq!(url, &served.url());
        }
        other => panic!("expected a NOT_FOUND status, got {other:?}"),
    }
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        format!("no block at slot 6 (NOT_FOUND from {})", served.url())
    );
    assert!(client.schedule(Some(7)).await.unwrap_err().is_not_found());
    served.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_node_service() {
    let served = serve_fixed_node().await;
    let mut reflection = ServerReflectionClient::new(channel(served.url()).await);

    let ask = |message_request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol("bb.v1.Node".into())),
    ];
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let listed = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"bb.v1.Node"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    let file = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(file)) = file.message_response else {
        panic!("expected a file descriptor, got {file:?}");
    };
    assert!(!file.file_descriptor_proto.is_empty());
    served.stop().await;
}

#[tokio::test]
async fn health_answers_serving() {
    let served = serve_fixed_node().await;
    let mut health = HealthClient::new(channel(served.url()).await);
    for service in ["", NODE_SERVICE_NAME] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), WireStatus::Serving, "service {service:?}");
    }
    served
        .health
        .set_service_status(NODE_SERVICE_NAME, ServingStatus::NotServing)
        .await;
    let answer = health
        .check(HealthCheckRequest {
            service: NODE_SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status(), WireStatus::NotServing);
    served.stop().await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_names_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}");
    let err = NodeClient::connect(&url, TIMEOUT).await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Unreachable { url: u, .. } if *u == url),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot reach node at {url}: connection refused")
    );
}

#[tokio::test]
async fn a_node_that_went_away_is_unreachable() {
    let served = serve_fixed_node().await;
    let url = served.url();
    let client = NodeClient::connect(&url, TIMEOUT).await.unwrap();
    client.status().await.unwrap();
    served.stop().await;
    let err = client.status().await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Unreachable { url: u, .. } if *u == url),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach node at {url}: "))
    );
}

#[tokio::test]
async fn invalid_urls_are_refused_before_connecting() {
    let err = NodeClient::connect("https://127.0.0.1:1", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::InvalidUrl { .. }), "{err:?}");
}
