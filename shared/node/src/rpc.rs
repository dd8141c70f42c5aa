//! The gRPC `bb.v1.Node` service: answers from the shared status view, and asks the engine
//! thread for anything that needs banks or the ledger.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bb_ledger::Ledger;

use bb_core::{Block, Canonical, Pubkey, SignedVote, Transaction, VerifiedTxs};
use bb_net::NetClient;
use bb_rpc::Commitment;
use bb_rpc::pb::*;
use bb_rpc::tonic::{Request, Response, Status};
use bb_runtime::TransactionError;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::Faults;
use crate::engine::{EngineMsg, Query};
use crate::gulfstream::{Forwarded, Refusal};
use crate::state::{Shared, SlotHashes};

/// A peer's standing (demerits, bans) as the network layer sees it, as `Peer` fields.
fn standing(info: Option<&bb_net::PeerInfo>) -> Peer {
    let Some(info) = info else {
        return Peer::default();
    };
    Peer {
        demerits: info.demerits,
        bans: info.bans,
        banned_for_ms: info
            .banned
            .map(|(left, _)| left.as_millis().min(u128::from(u64::MAX)) as u64),
        ban_reason: info
            .banned
            .map(|(_, why)| why.label().to_string())
            .unwrap_or_default(),
        rate_limited: info.rate_limited,
        ..Peer::default()
    }
}

/// The service; cheap to clone.
#[derive(Clone)]
pub struct NodeService {
    pub shared: Arc<Shared>,
    pub engine: mpsc::Sender<EngineMsg>,
    pub net: NetClient,
    pub ledger: Arc<Ledger>,
    pub snapshots_dir: PathBuf,
    pub genesis_json: Arc<Vec<u8>>,
    pub faults: Faults,
}

type BlockStream = Pin<Box<dyn Stream<Item = Result<StreamBlocksResponse, Status>> + Send>>;
type RootedStream = Pin<Box<dyn Stream<Item = Result<RootedBlock, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

/// A `SubmitTransactions` batch on its way through screening: a result per transaction,
/// in request order (the refused with their reason), and the transactions still in, with
/// where their results are.
#[derive(Debug)]
struct Screened {
    results: Vec<TransactionResult>,
    txs: Vec<Transaction>,
    at: Vec<usize>,
}

impl Screened {
    /// Decodes the batch and verifies the signatures in bulk, on all cores (run it off
    /// the async workers). The undecodable keep the decoder's reason, the forged get
    /// the bank's (`signature does not verify`); the rest are not accepted yet.
    fn decode_and_verify(raw: &[Vec<u8>], verified: &VerifiedTxs) -> Screened {
        let mut results = Vec::with_capacity(raw.len());
        let mut decoded = Vec::with_capacity(raw.len());
        let mut decoded_at = Vec::with_capacity(raw.len());
        for (at, bytes) in raw.iter().enumerate() {
            let result = match Transaction::from_bytes(bytes) {
                Err(e) => TransactionResult {
                    signature: String::new(),
                    accepted: false,
                    reason: e.to_string(),
                },
                Ok(tx) => {
                    decoded.push(tx);
                    decoded_at.push(at);
                    TransactionResult {
                        signature: tx.signature.to_string(),
                        accepted: false,
                        reason: String::new(),
                    }
                }
            };
            results.push(result);
        }
        let Err(forged) = verified.verify(&decoded) else {
            return Screened {
                results,
                txs: decoded,
                at: decoded_at,
            };
        };
        let mut is_forged = vec![false; decoded.len()];
        for i in forged {
            if let Some(f) = is_forged.get_mut(i) {
                *f = true;
            }
        }
        let mut txs = Vec::with_capacity(decoded.len());
        let mut at = Vec::with_capacity(decoded.len());
        for ((tx, i), forged) in decoded.into_iter().zip(decoded_at).zip(is_forged) {
            if forged {
                results[i].reason = TransactionError::InvalidSignature.to_string();
            } else {
                txs.push(tx);
                at.push(i);
            }
        }
        Screened { results, txs, at }
    }

    /// Applies the bank's checks of `txs` (one per transaction, or why none could be
    /// checked). Returns every result, and the accepted transactions with where their
    /// results are; a transaction the answer does not cover is refused, never accepted.
    fn settle(
        self,
        checks: Result<Vec<Result<(), TransactionError>>, String>,
    ) -> (Vec<TransactionResult>, Vec<Transaction>, Vec<usize>) {
        let Screened {
            mut results,
            txs,
            at,
        } = self;
        let mut good = Vec::with_capacity(txs.len());
        let mut good_at = Vec::with_capacity(txs.len());
        for (k, (tx, i)) in txs.into_iter().zip(at).enumerate() {
            let check = match &checks {
                Ok(list) => match list.get(k) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("the node did not check this transaction".to_string()),
                },
                Err(why) => Err(why.clone()),
            };
            match check {
                Ok(()) => {
                    results[i].accepted = true;
                    good.push(tx);
                    good_at.push(i);
                }
                Err(reason) => results[i].reason = reason,
            }
        }
        (results, good, good_at)
    }
}

/// Rooted blocks read from the ledger per batch (one blocking read each).
const ROOTED_BATCH: u64 = 64;
/// Transactions per Gulf Stream forward: one request must stay under the request size
/// limit (`wire::Request::MAX_SIZE`).
const FORWARD_CHUNK: usize = 300;
/// Bytes per snapshot chunk.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Corrupts one byte of a block body as a tampering peer would (fault injection only):
/// the header, and so the block id, stays as it was.
fn tamper_block(mut block: Block) -> Block {
    if let Some(tx) = block
        .entries
        .iter_mut()
        .flat_map(|e| e.transactions.iter_mut())
        .next()
    {
        tx.transfer.amount ^= 1;
    } else if let Some(entry) = block.entries.first_mut() {
        entry.hash.0[0] ^= 1;
    }
    block
}

fn snapshot_info(s: &bb_snapshots::SnapshotInfo) -> SnapshotInfo {
    SnapshotInfo {
        slot: s.slot,
        bank_hash: s.bank_hash.to_string(),
        block_id: s.block_id.to_string(),
        size: s.size_bytes,
        account_count: s.account_count,
        created_ms: s.created_ms,
        file_name: s
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    }
}

fn slot_hash(s: SlotHashes) -> SlotHash {
    SlotHash {
        slot: s.slot,
        bank_hash: s.bank_hash.to_string(),
        block_id: s.block_id.to_string(),
    }
}

impl NodeService {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Query) -> Result<T, Status> {
        crate::engine::ask(&self.engine, make)
            .await
            .ok_or_else(|| Status::unavailable("the node is shutting down"))
    }

    fn summary(
        &self,
        block: &Block,
        bank_hash: Option<bb_core::Hash>,
        level: Commitment,
    ) -> BlockSummary {
        let h = &block.header;
        BlockSummary {
            slot: h.slot,
            parent_slot: h.parent_slot,
            block_id: block.id().to_string(),
            parent_id: h.parent_id.to_string(),
            leader: h.leader.to_address(),
            bank_hash: bank_hash.map(|b| b.to_string()),
            blockhash: h.poh_end.to_string(),
            transaction_count: h.transaction_count,
            tick_count: h.tick_count,
            commitment: level.into(),
        }
    }

    /// Every transaction of a submission refused as "leader busy" (those that do not
    /// decode, for that).
    fn all_busy(&self, raw: &[Vec<u8>]) -> SubmitTransactionsResponse {
        let mut busy = 0;
        let results = raw
            .iter()
            .map(|bytes| match Transaction::from_bytes(bytes) {
                Err(e) => TransactionResult {
                    signature: String::new(),
                    accepted: false,
                    reason: e.to_string(),
                },
                Ok(tx) => {
                    busy += 1;
                    TransactionResult {
                        signature: tx.signature.to_string(),
                        accepted: false,
                        reason: Refusal::LeaderBusy.reason(),
                    }
                }
            })
            .collect::<Vec<_>>();
        let m = &self.shared.metrics;
        m.rejected(crate::metrics::REJECTED_LEADER_BUSY, busy);
        m.rejected(
            crate::metrics::REJECTED_INVALID,
            results.len() as u64 - busy,
        );
        SubmitTransactionsResponse {
            results,
            forwarded_to: Vec::new(),
        }
    }

    fn level_of(&self, slot: u64) -> Commitment {
        let s = self.shared.status();
        if slot <= s.finalized.slot {
            Commitment::Finalized
        } else if slot <= s.confirmed.slot {
            Commitment::Confirmed
        } else {
            Commitment::Processed
        }
    }
}

#[bb_rpc::tonic::async_trait]
impl bb_rpc::Node for NodeService {
    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let shared = &self.shared;
        let s = shared.status();
        let slot = shared.clock_slot();
        let peers = shared.peers.read().map(|p| p.clone()).unwrap_or_default();
        let connected: Vec<Pubkey> = peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(k, _)| *k)
            .collect();
        let (reachable, total) = shared.reachable_stake();
        Ok(Response::new(GetStatusResponse {
            identity: shared.identity.to_address(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            genesis_hash: shared.genesis_hash.to_string(),
            slot,
            processed: Some(slot_hash(s.processed)),
            confirmed: Some(slot_hash(s.confirmed)),
            finalized: Some(slot_hash(s.finalized)),
            root: Some(slot_hash(s.root)),
            epoch: s.epoch,
            leader: shared
                .leader_of(slot)
                .map(|l| l.to_address())
                .unwrap_or_default(),
            peer_count: connected.len() as u32,
            reachable_stake_share: if total == 0 {
                0.0
            } else {
                reachable as f64 / total as f64
            },
            uptime_ms: shared.started.elapsed().as_millis() as u64,
            stake: shared.stakes.get(&shared.identity).copied().unwrap_or(0),
            total_stake: total,
            slot_duration_ms: shared.genesis.slot_ms,
            recent_blockhash: s.recent_blockhash.to_string(),
        }))
    }

    async fn get_peers(
        &self,
        _: Request<GetPeersRequest>,
    ) -> Result<Response<GetPeersResponse>, Status> {
        let infos = self.net.peers().await.unwrap_or_default();
        let views = self
            .shared
            .peers
            .read()
            .map(|p| p.clone())
            .unwrap_or_default();
        let mut peers = Vec::new();
        for (key, stake) in &self.shared.stakes {
            if *key == self.shared.identity {
                continue;
            }
            let view = views.get(key).cloned().unwrap_or_default();
            let info = infos.iter().find(|i| i.pubkey == *key);
            let mut standing = standing(info);
            if let Some(left) = view
                .blocked_until
                .map(|t| t.saturating_duration_since(std::time::Instant::now()))
                .filter(|d| !d.is_zero())
                && standing.banned_for_ms.is_none()
            {
                standing.banned_for_ms = Some(left.as_millis().min(u128::from(u64::MAX)) as u64);
                standing.ban_reason = "blocked".into();
            }
            peers.push(Peer {
                identity: key.to_address(),
                libp2p_address: if view.gossip_addr.is_empty() {
                    info.and_then(|i| i.addresses.first())
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                } else {
                    view.gossip_addr.clone()
                },
                shred_address: view.shred_addr.map(|a| a.to_string()).unwrap_or_default(),
                rpc_address: view.rpc_addr.clone(),
                stake: *stake,
                last_slot: view.latest_slot,
                rtt_ms: info
                    .and_then(|i| i.rtt)
                    .map(|d| d.as_millis().min(u32::MAX as u128) as u32),
                connected: info.is_some_and(|i| i.connected) || view.connected,
                clock_skew_ms: view.clock_skew_ms,
                version: view.version.clone(),
                ..standing
            });
        }
        // Unstaked peers are listed only if they have misbehaved: an operator wants to
        // see who was banned and why.
        for info in infos
            .iter()
            .filter(|i| !self.shared.stakes.contains_key(&i.pubkey) && i.bans > 0)
        {
            peers.push(Peer {
                identity: info.pubkey.to_address(),
                libp2p_address: info
                    .addresses
                    .first()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                connected: info.connected,
                ..standing(Some(info))
            });
        }
        Ok(Response::new(GetPeersResponse {
            peers,
            total_stake: self.shared.total_stake(),
        }))
    }

    async fn get_votes(
        &self,
        request: Request<GetVotesRequest>,
    ) -> Result<Response<GetVotesResponse>, Status> {
        let slot = request.into_inner().slot;
        let stored = self.ask(|reply| Query::Votes { slot, reply }).await?;
        if stored.is_empty() {
            return Err(Status::not_found(format!("no votes seen for slot {slot}")));
        }
        let mut votes = Vec::new();
        let mut voted = 0;
        for (bytes, stake) in stored {
            let Ok(v) = SignedVote::from_bytes(&bytes) else {
                continue;
            };
            voted += stake;
            votes.push(VoteInfo {
                voter: v.vote.voter.to_address(),
                stake,
                slot: v.vote.slot,
                block_id: v.vote.block_id.to_string(),
                bank_hash: v.vote.bank_hash.to_string(),
                confirmation_count: v.vote.confirmation_count,
                root: v.vote.root,
                timestamp_ms: v.vote.timestamp_ms,
                signature: v.signature.to_string(),
                signed_vote: bytes,
            });
        }
        Ok(Response::new(GetVotesResponse {
            slot,
            votes,
            total_stake: self.shared.total_stake(),
            voted_stake: voted,
        }))
    }

    async fn get_leader_schedule(
        &self,
        request: Request<GetLeaderScheduleRequest>,
    ) -> Result<Response<GetLeaderScheduleResponse>, Status> {
        let g = &self.shared.genesis;
        let epoch = request
            .into_inner()
            .epoch
            .unwrap_or_else(|| self.shared.clock_slot() / g.slots_per_epoch.max(1));
        let schedule = self
            .ask(|reply| Query::Schedule { epoch, reply })
            .await?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "the node cannot compute the schedule of epoch {epoch}"
                ))
            })?;
        let mut runs: Vec<LeaderRun> = Vec::new();
        for slot in schedule.first_slot()..=schedule.last_slot() {
            let Some(leader) = schedule.leader_at(slot) else {
                continue;
            };
            let address = leader.to_address();
            match runs.last_mut() {
                Some(run) if run.leader == address && run.start_slot + run.slot_count == slot => {
                    run.slot_count += 1
                }
                _ => runs.push(LeaderRun {
                    leader: address,
                    start_slot: slot,
                    slot_count: 1,
                }),
            }
        }
        Ok(Response::new(GetLeaderScheduleResponse {
            epoch,
            first_slot: schedule.first_slot(),
            slots_per_epoch: g.slots_per_epoch,
            slots_per_rotation: g.leader_slots_per_rotation,
            runs,
        }))
    }

    async fn get_block(
        &self,
        request: Request<GetBlockRequest>,
    ) -> Result<Response<GetBlockResponse>, Status> {
        let r = request.into_inner();
        let slot = r.slot;
        let (block, bank_hash, on_chain) = self
            .ask(|reply| Query::Block { slot, reply })
            .await?
            .ok_or_else(|| Status::not_found(format!("no block at slot {slot}")))?;
        // A stored block off this node's chain (an abandoned fork, the losing version of
        // an equivocated slot) has no commitment, whatever its slot number.
        let level = if on_chain {
            self.level_of(slot)
        } else {
            Commitment::Unspecified
        };
        Ok(Response::new(GetBlockResponse {
            block: Some(self.summary(&block, bank_hash, level)),
            block_bytes: if r.summary_only {
                Vec::new()
            } else {
                block.to_bytes()
            },
        }))
    }

    type StreamBlocksStream = BlockStream;
    type StreamRootedBlocksStream = RootedStream;
    type DownloadSnapshotStream = ChunkStream;

    async fn get_genesis(
        &self,
        _: Request<GetGenesisRequest>,
    ) -> Result<Response<GetGenesisResponse>, Status> {
        Ok(Response::new(GetGenesisResponse {
            genesis_json: self.genesis_json.as_ref().clone(),
            genesis_hash: self.shared.genesis_hash.to_string(),
        }))
    }

    async fn get_slashing(
        &self,
        request: Request<GetSlashingRequest>,
    ) -> Result<Response<GetSlashingResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n.min(10_000) as usize,
        };
        let ledger = self.ledger.clone();
        let (records, penalties) = tokio::task::spawn_blocking(move || {
            let records = crate::slashing::newest(&ledger, limit)?;
            let penalties = ledger.penalties()?;
            Ok::<_, bb_ledger::LedgerError>((records, penalties))
        })
        .await
        .map_err(|e| Status::internal(format!("reading slashing records: {e}")))?
        .map_err(|e| Status::internal(format!("reading slashing records: {e}")))?;
        let evidence = records
            .into_iter()
            .map(|r| {
                let offense = r.evidence.offense();
                SlashingEvidence {
                    offender: offense.offender.to_address(),
                    slot: offense.slot,
                    kind: offense.kind.name().to_string(),
                    source: r.source.name().to_string(),
                    first_seen_ms: r.first_seen_ms,
                    recorded_in_slot: r.recorded_in,
                    evidence: r.evidence.to_bytes(),
                }
            })
            .collect();
        let penalties = penalties
            .into_iter()
            .map(|(epoch, offender, old, new)| SlashingPenalty {
                offender: bb_core::Pubkey(offender).to_address(),
                epoch,
                old_stake: old,
                new_stake: new,
            })
            .collect();
        Ok(Response::new(GetSlashingResponse {
            evidence,
            penalties,
            slash_penalty_bps: self.shared.genesis.slash_penalty_bps,
        }))
    }

    async fn stream_rooted_blocks(
        &self,
        request: Request<StreamRootedBlocksRequest>,
    ) -> Result<Response<RootedStream>, Status> {
        let r = request.into_inner();
        let ledger = self.ledger.clone();
        let tamper = self.faults.serve_tampered;
        let latest = {
            let ledger = ledger.clone();
            tokio::task::spawn_blocking(move || ledger.latest_root())
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::internal(e.to_string()))?
        };
        let Some((latest, _)) = latest else {
            return Err(Status::not_found("the node has no rooted block yet"));
        };
        let to = if r.to_slot == 0 {
            latest
        } else {
            r.to_slot.min(latest)
        };
        let (tx, rx) = mpsc::channel::<Result<RootedBlock, Status>>(16);
        tokio::task::spawn_blocking(move || {
            let mut from = r.from_slot.max(1);
            while from <= to {
                let upto = from.saturating_add(ROOTED_BATCH - 1).min(to);
                let roots = match ledger.roots_range(from..=upto) {
                    Ok(roots) => roots,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(e.to_string())));
                        return;
                    }
                };
                for (slot, _) in roots {
                    let item = (|| {
                        let bytes = ledger
                            .get_block(slot)
                            .map_err(|e| Status::internal(e.to_string()))?
                            .ok_or_else(|| {
                                Status::not_found(format!("rooted slot {slot} has no stored block"))
                            })?;
                        let bank_hash = ledger
                            .bank_hash(slot)
                            .map_err(|e| Status::internal(e.to_string()))?
                            .map(|h| bb_core::Hash(h).to_string())
                            .unwrap_or_default();
                        let block_bytes = if r.headers_only || tamper {
                            let mut block = Block::from_bytes(&bytes)
                                .map_err(|e| Status::internal(e.to_string()))?;
                            if r.headers_only {
                                block.entries.clear();
                            } else {
                                block = tamper_block(block);
                            }
                            block.to_bytes()
                        } else {
                            bytes
                        };
                        Ok(RootedBlock {
                            slot,
                            block_bytes,
                            bank_hash,
                        })
                    })();
                    let failed = item.is_err();
                    if tx.blocking_send(item).is_err() || failed {
                        return;
                    }
                }
                from = upto + 1;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn list_snapshots(
        &self,
        _: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        let dir = self.snapshots_dir.clone();
        let list = tokio::task::spawn_blocking(move || bb_snapshots::list_snapshots(&dir))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ListSnapshotsResponse {
            snapshots: list.iter().map(snapshot_info).collect(),
        }))
    }

    async fn create_snapshot(
        &self,
        _: Request<CreateSnapshotRequest>,
    ) -> Result<Response<SnapshotInfo>, Status> {
        let info = self
            .ask(|reply| Query::CreateSnapshot { reply })
            .await?
            .map_err(Status::unavailable)?;
        Ok(Response::new(snapshot_info(&info)))
    }

    async fn download_snapshot(
        &self,
        request: Request<DownloadSnapshotRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let r = request.into_inner();
        let dir = self.snapshots_dir.clone();
        let found = tokio::task::spawn_blocking(move || bb_snapshots::list_snapshots(&dir))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?
            .into_iter()
            .find(|s| {
                s.slot == r.slot
                    && (r.bank_hash.is_empty() || s.bank_hash.to_string() == r.bank_hash)
            })
            .ok_or_else(|| {
                Status::not_found(format!("this node keeps no snapshot of slot {}", r.slot))
            })?;
        let tamper = self.faults.serve_tampered;
        let (tx, rx) = mpsc::channel::<Result<SnapshotChunk, Status>>(4);
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let send_err = |e: std::io::Error| {
                let _ =
                    tx.blocking_send(Err(Status::internal(format!("reading the snapshot: {e}"))));
            };
            let mut file = match std::fs::File::open(&found.path) {
                Ok(f) => f,
                Err(e) => return send_err(e),
            };
            let total = match file.metadata() {
                Ok(m) => m.len(),
                Err(e) => return send_err(e),
            };
            let mut offset = r.offset.min(total);
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                return send_err(e);
            }
            let middle = total / 2;
            while offset < total {
                let want = SNAPSHOT_CHUNK.min((total - offset) as usize);
                let mut data = vec![0u8; want];
                if let Err(e) = file.read_exact(&mut data) {
                    return send_err(e);
                }
                if tamper && (offset..offset + want as u64).contains(&middle) {
                    data[(middle - offset) as usize] ^= 0x40;
                }
                let chunk = SnapshotChunk {
                    offset,
                    data,
                    total_size: total,
                };
                offset += want as u64;
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn stream_blocks(
        &self,
        request: Request<StreamBlocksRequest>,
    ) -> Result<Response<BlockStream>, Status> {
        let r = request.into_inner();
        let wanted = match r.commitment() {
            Commitment::Unspecified => Commitment::Confirmed,
            c => c,
        };
        let mut events = self.shared.block_events.subscribe();
        let service = self.clone();
        let (tx, rx) = mpsc::channel::<Result<StreamBlocksResponse, Status>>(64);
        tokio::spawn(async move {
            let mut next = r.from_slot;
            loop {
                // Send every stored block up to the level's slot, then wait for more.
                let s = service.shared.status();
                let upto = match wanted {
                    Commitment::Processed => s.processed.slot,
                    Commitment::Finalized => s.finalized.slot,
                    _ => s.confirmed.slot,
                };
                while next <= upto {
                    let slot = next;
                    next += 1;
                    let Ok(Some((block, hash, true))) =
                        service.ask(|reply| Query::Block { slot, reply }).await
                    else {
                        continue;
                    };
                    let item = StreamBlocksResponse {
                        block: Some(service.summary(&block, hash, wanted)),
                    };
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
                // Wake when a block reaches the level asked for (or events were missed).
                loop {
                    match events.recv().await {
                        Ok(ev) if ev.level == wanted && ev.slot >= next => break,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(_) => return,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn submit_transactions(
        &self,
        request: Request<SubmitTransactionsRequest>,
    ) -> Result<Response<SubmitTransactionsResponse>, Status> {
        let raw = request.into_inner().transactions;
        if raw.len() > bb_rpc::MAX_SUBMIT_TRANSACTIONS {
            return Err(Status::invalid_argument(format!(
                "{} transactions in one call; the limit is {}",
                raw.len(),
                bb_rpc::MAX_SUBMIT_TRANSACTIONS
            )));
        }
        if crate::gossip::leaders_all_full(&self.shared) {
            // Every leader we would forward to refused earlier this slot: turn the batch
            // away before spending any work on it.
            return Ok(Response::new(self.all_busy(&raw)));
        }
        // Decoding and signatures in batch on all cores, off the async workers and the
        // engine thread; the engine only looks the survivors up in its bank, in one
        // round trip.
        let verified = self.shared.verified.clone();
        let screened =
            tokio::task::spawn_blocking(move || Screened::decode_and_verify(&raw, &verified))
                .await
                .map_err(|e| Status::internal(format!("verifying signatures: {e}")))?;
        let checks = if screened.txs.is_empty() {
            Ok(Vec::new())
        } else {
            let txs = screened.txs.clone();
            self.ask(|reply| Query::CheckTransactions { txs, reply })
                .await?
        };
        // The screened transactions and where their results are.
        let (mut results, good, good_at) = screened.settle(checks);
        let invalid = results.len() - good.len();
        if invalid > 0 {
            self.shared
                .metrics
                .rejected(crate::metrics::REJECTED_INVALID, invalid as u64);
        }
        // Forward in chunks that fit one request; a transaction stays accepted only if a
        // leader took it. Once a chunk is not taken whole (the leaders are full or out of
        // reach), the rest are refused for the same reason without being sent: a busy
        // leader is not asked again within one call.
        let mut forwarded_to = Vec::new();
        let mut refused: Option<Refusal> = None;
        let mut start = 0;
        for chunk in good.chunks(FORWARD_CHUNK) {
            let outcome = match &refused {
                Some(r) => Forwarded::refused(r.clone()),
                None => {
                    crate::gossip::forward_transactions(
                        &self.net,
                        &self.shared,
                        &self.engine,
                        chunk.to_vec(),
                    )
                    .await
                }
            };
            for l in &outcome.leaders {
                let a = l.to_address();
                if !forwarded_to.contains(&a) {
                    forwarded_to.push(a);
                }
            }
            if let Some(refusal) = outcome.refusal {
                let taken = outcome.taken.min(chunk.len());
                let not_taken = &good_at[start + taken..start + chunk.len()];
                let reason = refusal.reason();
                for &i in not_taken {
                    results[i].accepted = false;
                    results[i].reason.clone_from(&reason);
                }
                self.shared
                    .metrics
                    .rejected(refusal.label(), not_taken.len() as u64);
                refused = Some(refusal);
            }
            start += chunk.len();
        }
        Ok(Response::new(SubmitTransactionsResponse {
            results,
            forwarded_to,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<GetBalanceRequest>,
    ) -> Result<Response<GetBalanceResponse>, Status> {
        let r = request.into_inner();
        let who: Pubkey = r.address.parse().map_err(|e| {
            Status::invalid_argument(format!("'{}' is not an address: {e}", r.address))
        })?;
        let level = match r.commitment() {
            Commitment::Unspecified => Commitment::Finalized,
            c => c,
        };
        let (balance, slot) = self
            .ask(|reply| Query::Balance { who, level, reply })
            .await?;
        Ok(Response::new(GetBalanceResponse {
            balance,
            slot,
            commitment: level.into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::{Hash, Keypair};

    #[test]
    fn a_forward_chunk_fits_one_request() {
        let from = Keypair::from_seed(&[3; 32]);
        let txs = (0..FORWARD_CHUNK as u64)
            .map(|k| Transaction::transfer(&from, Pubkey([4; 32]), k, u64::MAX, Hash([5; 32])))
            .collect();
        let bytes = crate::wire::Request::Forward(txs).to_bytes();
        assert!(bytes.len() <= <crate::wire::Request as Canonical>::MAX_SIZE);
    }

    #[test]
    fn screening_keeps_request_order_and_each_reason() {
        let from = Keypair::from_seed(&[3; 32]);
        let pay = |amount| Transaction::transfer(&from, Pubkey([4; 32]), amount, 1, Hash([5; 32]));
        let (a, b, c) = (pay(1), pay(2), pay(3));
        let mut forged = pay(4);
        forged.transfer.amount = 40;
        let raw = vec![
            a.to_bytes(),
            vec![0xff; 3],
            forged.to_bytes(),
            b.to_bytes(),
            c.to_bytes(),
        ];
        let screened = Screened::decode_and_verify(&raw, &VerifiedTxs::new(16));
        assert_eq!(screened.txs, vec![a, b, c]);
        assert_eq!(screened.at, vec![0, 3, 4]);
        assert!(!screened.results[1].reason.is_empty());
        assert!(screened.results[1].signature.is_empty());
        assert_eq!(screened.results[2].reason, "signature does not verify");
        assert_eq!(screened.results[2].signature, forged.signature.to_string());

        let (results, good, good_at) = Screened::decode_and_verify(&raw, &VerifiedTxs::new(16))
            .settle(Ok(vec![
                Ok(()),
                Err(TransactionError::AlreadyProcessed),
                Ok(()),
            ]));
        let accepted: Vec<bool> = results.iter().map(|r| r.accepted).collect();
        assert_eq!(accepted, vec![true, false, false, false, true]);
        assert_eq!(
            results[3].reason,
            "transaction already processed on this fork"
        );
        assert_eq!((good, good_at), (vec![a, c], vec![0, 4]));
        let signatures: Vec<&str> = results.iter().map(|r| r.signature.as_str()).collect();
        let id = |t: &Transaction| t.signature.to_string();
        assert_eq!(
            signatures,
            [id(&a), String::new(), id(&forged), id(&b), id(&c)]
        );
    }

    #[test]
    fn screening_accepts_nothing_the_bank_did_not_check() {
        let from = Keypair::from_seed(&[3; 32]);
        let raw: Vec<Vec<u8>> = (0..3)
            .map(|k| Transaction::transfer(&from, Pubkey([4; 32]), k, 1, Hash([5; 32])).to_bytes())
            .collect();
        let (results, good, _) = Screened::decode_and_verify(&raw, &VerifiedTxs::new(16))
            .settle(Err("the node has no bank yet".into()));
        assert!(good.is_empty());
        assert!(
            results
                .iter()
                .all(|r| r.reason == "the node has no bank yet")
        );
        let (results, good, good_at) =
            Screened::decode_and_verify(&raw, &VerifiedTxs::new(16)).settle(Ok(vec![Ok(())]));
        assert_eq!((good.len(), good_at), (1, vec![0]));
        assert!(
            results[1..]
                .iter()
                .all(|r| !r.accepted && !r.reason.is_empty())
        );
    }
}
