//! The typed client every tool uses to talk to a node.

use std::error::Error as StdError;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use crate::MAX_MESSAGE_BYTES;
use crate::pb::node_client::NodeClient as RawClient;
use crate::pb::{
    Commitment, CreateSnapshotRequest, DownloadSnapshotRequest, GetBalanceRequest,
    GetBalanceResponse, GetBlockRequest, GetBlockResponse, GetGenesisRequest, GetGenesisResponse,
    GetLeaderScheduleRequest, GetLeaderScheduleResponse, GetPeersRequest, GetPeersResponse,
    GetSlashingRequest, GetSlashingResponse, GetStatusRequest, GetStatusResponse, GetVotesRequest,
    GetVotesResponse, ListSnapshotsRequest, ListSnapshotsResponse, RootedBlock, SnapshotChunk,
    SnapshotInfo, StreamBlocksRequest, StreamBlocksResponse, StreamRootedBlocksRequest,
    SubmitTransactionsRequest, SubmitTransactionsResponse,
};

/// Why a snapshot download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("{0}")]
    Protocol(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl DownloadError {
    /// The node does not keep (any more) the snapshot asked for.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DownloadError::Rpc(e) if e.is_not_found())
    }
}

/// Why a call to a node failed. Every message names the node's URL, so a tool can print it
/// as its one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL given is not one a node can be reached at.
    #[error("invalid node URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// No connection: nothing listens there, the host is down or unknown, the connection
    /// broke, or the node did not answer in time.
    #[error("cannot reach node at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The node answered with an error status (e.g. `NotFound` for a slot it has no block
    /// for).
    #[error("{message} ({} from {url})", code_name(*code))]
    Status {
        url: String,
        code: Code,
        message: String,
    },
}

impl RpcError {
    /// The gRPC status code the node answered with, if it answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            RpcError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the node said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }
}

/// The canonical gRPC name of a status code, e.g. `NOT_FOUND`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Turns what a user typed into the URL a client connects to: `127.0.0.1:8899` becomes
/// `http://127.0.0.1:8899`; a URL with a scheme is kept as it is (minus surrounding spaces
/// and a trailing `/`).
///
/// Only `http` is accepted: the node API is plain HTTP/2 on a local or private address
/// (no TLS is built in).
pub fn normalize_url(url: &str) -> Result<String, RpcError> {
    let trimmed = url.trim();
    let invalid = |reason: &str| RpcError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let rest = match trimmed.split_once("://") {
        None => trimmed,
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(invalid(
                "https is not supported: the node API is plain http (e.g. http://127.0.0.1:8899)",
            ));
        }
        Some((scheme, _)) => {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?}; use http://HOST:PORT"
            )));
        }
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(invalid("no host"));
    }
    let full = format!("http://{rest}");
    let uri: tonic::codegen::http::Uri = full.parse().map_err(|e| invalid(&format!("{e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(invalid("a node URL has no path; use http://HOST:PORT"));
    }
    Ok(full)
}

/// A connection to one node's gRPC API. Cheap to clone; clones share the connection, and
/// calls may run concurrently.
///
/// Every method is one RPC and returns the generated response message. A call that cannot
/// reach the node gives [`RpcError::Unreachable`]; an error status from the node gives
/// [`RpcError::Status`]. For anything not wrapped here, [`NodeClient::raw`] is the generated
/// client on the same connection.
#[derive(Debug, Clone)]
pub struct NodeClient {
    url: String,
    timeout: Duration,
    inner: RawClient<Channel>,
}

impl NodeClient {
    /// Connects to the node at `url` (`http://HOST:PORT`, or just `HOST:PORT`).
    ///
    /// `timeout` bounds the connection attempt and, afterwards, how long each call waits
    /// for the node's answer to start (a stream, once started, runs until it ends). The
    /// connection comes back by itself after a node restarts. Responses of up to
    /// [`MAX_MESSAGE_BYTES`] are accepted, enough for a full 64 MiB block.
    pub async fn connect(url: &str, timeout: Duration) -> Result<NodeClient, RpcError> {
        let url = normalize_url(url)?;
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| RpcError::InvalidUrl {
                url: url.clone(),
                reason: error_chain(&e),
            })?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| RpcError::Unreachable {
                url: url.clone(),
                reason: unreachable_reason(&e, timeout),
            })?;
        let inner = RawClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(NodeClient {
            url,
            timeout,
            inner,
        })
    }

    /// The URL this client talks to, normalized (e.g. `http://127.0.0.1:8899`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The generated client on this connection, for calls not wrapped here.
    pub fn raw(&self) -> RawClient<Channel> {
        self.inner.clone()
    }

    /// `GetStatus`: who the node is and where it thinks the chain is.
    pub async fn status(&self) -> Result<GetStatusResponse, RpcError> {
        let answer = self.inner.clone().get_status(GetStatusRequest {}).await;
        self.unary(answer)
    }

    /// `GetPeers`: the validators the node knows of.
    pub async fn peers(&self) -> Result<GetPeersResponse, RpcError> {
        let answer = self.inner.clone().get_peers(GetPeersRequest {}).await;
        self.unary(answer)
    }

    /// `GetSlashing`: the slashing evidence the node holds and the penalties applied.
    pub async fn slashing(&self, limit: u32) -> Result<GetSlashingResponse, RpcError> {
        let answer = self
            .inner
            .clone()
            .get_slashing(GetSlashingRequest { limit })
            .await;
        self.unary(answer)
    }

    /// `GetVotes`: every vote the node has seen for `slot`.
    pub async fn votes(&self, slot: u64) -> Result<GetVotesResponse, RpcError> {
        let answer = self.inner.clone().get_votes(GetVotesRequest { slot }).await;
        self.unary(answer)
    }

    /// `GetLeaderSchedule`: the leaders of `epoch` (`None`: the current epoch).
    pub async fn schedule(
        &self,
        epoch: Option<u64>,
    ) -> Result<GetLeaderScheduleResponse, RpcError> {
        let answer = self
            .inner
            .clone()
            .get_leader_schedule(GetLeaderScheduleRequest { epoch })
            .await;
        self.unary(answer)
    }

    /// `GetBlock`: the block of `slot` with its canonical bytes. A slot with no block is
    /// [`RpcError::Status`] with `Code::NotFound` (see [`RpcError::is_not_found`]).
    pub async fn block(&self, slot: u64) -> Result<GetBlockResponse, RpcError> {
        self.get_block(slot, false).await
    }

    /// `GetBlock` without the block bytes: only its summary.
    pub async fn block_summary(&self, slot: u64) -> Result<GetBlockResponse, RpcError> {
        self.get_block(slot, true).await
    }

    async fn get_block(&self, slot: u64, summary_only: bool) -> Result<GetBlockResponse, RpcError> {
        let answer = self
            .inner
            .clone()
            .get_block(GetBlockRequest { slot, summary_only })
            .await;
        self.unary(answer)
    }

    /// `StreamBlocks`: block summaries from `from_slot` on as they reach `commitment`.
    /// Read it with `message().await` until `Ok(None)`.
    pub async fn stream_blocks(
        &self,
        from_slot: u64,
        commitment: Commitment,
    ) -> Result<Streaming<StreamBlocksResponse>, RpcError> {
        let answer = self
            .inner
            .clone()
            .stream_blocks(StreamBlocksRequest {
                from_slot,
                commitment: commitment.into(),
            })
            .await;
        self.unary(answer)
    }

    /// `SubmitTransactions`: canonical transaction bytes, at most
    /// [`MAX_SUBMIT_TRANSACTIONS`](crate::MAX_SUBMIT_TRANSACTIONS) per call; one result per
    /// transaction, in order.
    pub async fn submit(
        &self,
        transactions: Vec<Vec<u8>>,
    ) -> Result<SubmitTransactionsResponse, RpcError> {
        let answer = self
            .inner
            .clone()
            .submit_transactions(SubmitTransactionsRequest { transactions })
            .await;
        self.unary(answer)
    }

    /// `GetBalance` at the node's default commitment (finalized).
    pub async fn balance(&self, address: &str) -> Result<GetBalanceResponse, RpcError> {
        self.balance_at(address, Commitment::Unspecified).await
    }

    /// `GetBalance` at a chosen commitment.
    pub async fn balance_at(
        &self,
        address: &str,
        commitment: Commitment,
    ) -> Result<GetBalanceResponse, RpcError> {
        let answer = self
            .inner
            .clone()
            .get_balance(GetBalanceRequest {
                address: address.to_string(),
                commitment: commitment.into(),
            })
            .await;
        self.unary(answer)
    }

    /// `GetGenesis`: the genesis JSON the node runs with, and its hash.
    pub async fn genesis(&self) -> Result<GetGenesisResponse, RpcError> {
        let answer = self.inner.clone().get_genesis(GetGenesisRequest {}).await;
        self.unary(answer)
    }

    /// `ListSnapshots`: the snapshots the node keeps, newest first.
    pub async fn list_snapshots(&self) -> Result<ListSnapshotsResponse, RpcError> {
        let answer = self
            .inner
            .clone()
            .list_snapshots(ListSnapshotsRequest {})
            .await;
        self.unary(answer)
    }

    /// `CreateSnapshot`: a snapshot of the node's current root, made now if needed.
    pub async fn create_snapshot(&self) -> Result<SnapshotInfo, RpcError> {
        let answer = self
            .inner
            .clone()
            .create_snapshot(CreateSnapshotRequest {})
            .await;
        self.unary(answer)
    }

    /// `DownloadSnapshot`: the file of the snapshot at `slot` from byte `offset` on, in
    /// chunks. `bank_hash` (base58) pins which one; empty takes the node's.
    pub async fn download_snapshot(
        &self,
        slot: u64,
        bank_hash: &str,
        offset: u64,
    ) -> Result<Streaming<SnapshotChunk>, RpcError> {
        let answer = self
            .inner
            .clone()
            .download_snapshot(DownloadSnapshotRequest {
                slot,
                bank_hash: bank_hash.to_string(),
                offset,
            })
            .await;
        self.unary(answer)
    }

    /// Downloads the snapshot file of `slot` (`bank_hash` base58 pins which; `size` is the
    /// size the node announced) to `path`, through `PATH.partial`: an interrupted download
    /// resumes where that file ends, and `path` appears (renamed, synced) only once whole.
    /// `on_chunk(n)` runs after each chunk lands (progress, pacing). Returns the bytes
    /// fetched now and the bytes a previous run had fetched. Checks only that the node sent
    /// the announced bytes in order: the file's contents are for the caller to verify.
    pub async fn download_snapshot_file<F, Fut>(
        &self,
        slot: u64,
        bank_hash: &str,
        size: u64,
        path: &std::path::Path,
        mut on_chunk: F,
    ) -> Result<(u64, u64), DownloadError>
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        let io = |what: &str, e: std::io::Error| DownloadError::Io {
            what: format!("{what} {}", path.display()),
            source: e,
        };
        if tokio::fs::metadata(path).await.is_ok() {
            return Ok((0, size));
        }
        let mut part = path.as_os_str().to_owned();
        part.push(".partial");
        let part = std::path::PathBuf::from(part);
        let have = tokio::fs::metadata(&part)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let have = if have > size { 0 } else { have };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .await
            .map_err(|e| io("cannot open", e))?;
        file.set_len(have)
            .await
            .map_err(|e| io("cannot resize", e))?;
        file.seek(std::io::SeekFrom::Start(have))
            .await
            .map_err(|e| io("cannot seek in", e))?;
        let mut offset = have;
        if offset < size {
            let mut stream = self.download_snapshot(slot, bank_hash, offset).await?;
            loop {
                let chunk = match stream.message().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(status) => return Err(self.status_error(status).into()),
                };
                if chunk.offset != offset
                    || chunk.total_size != size
                    || offset + chunk.data.len() as u64 > size
                {
                    return Err(DownloadError::Protocol(format!(
                        "{} sent {} snapshot bytes at offset {} of {} where offset {offset} of {size} was due",
                        self.url,
                        chunk.data.len(),
                        chunk.offset,
                        chunk.total_size
                    )));
                }
                file.write_all(&chunk.data)
                    .await
                    .map_err(|e| io("cannot write", e))?;
                offset += chunk.data.len() as u64;
                on_chunk(chunk.data.len()).await;
            }
        }
        file.sync_all().await.map_err(|e| io("cannot sync", e))?;
        drop(file);
        if offset != size {
            return Err(DownloadError::Protocol(format!(
                "{} ended the snapshot download at byte {offset} of {size}",
                self.url
            )));
        }
        tokio::fs::rename(&part, path)
            .await
            .map_err(|e| io("cannot rename", e))?;
        Ok((offset - have, have))
    }

    /// `StreamRootedBlocks`: the rooted chain over `[from_slot, to_slot]` (`to_slot` 0: up
    /// to the node's latest root), one block per message, in slot order.
    pub async fn rooted_blocks(
        &self,
        from_slot: u64,
        to_slot: u64,
        headers_only: bool,
    ) -> Result<Streaming<RootedBlock>, RpcError> {
        let answer = self
            .inner
            .clone()
            .stream_rooted_blocks(StreamRootedBlocksRequest {
                from_slot,
                to_slot,
                headers_only,
            })
            .await;
        self.unary(answer)
    }

    fn unary<T>(&self, answer: Result<tonic::Response<T>, Status>) -> Result<T, RpcError> {
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| self.status_error(status))
    }

    /// A status the node sent is [`RpcError::Status`]; one the client made up because the
    /// request never got an answer (it then carries the transport error as its source) is
    /// [`RpcError::Unreachable`].
    fn status_error(&self, status: Status) -> RpcError {
        match status.source() {
            Some(source) => RpcError::Unreachable {
                url: self.url.clone(),
                reason: unreachable_reason(source, self.timeout),
            },
            None => RpcError::Status {
                url: self.url.clone(),
                code: status.code(),
                message: status.message().to_string(),
            },
        }
    }
}

/// A short reason for a failed connection: "connection refused", "timed out after 2s", or
/// the innermost error message.
fn unreachable_reason(err: &(dyn StdError + 'static), timeout: Duration) -> String {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    let mut innermost = err.to_string();
    let mut timed_out = false;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            let short = match io.kind() {
                ErrorKind::ConnectionRefused => Some("connection refused"),
                ErrorKind::ConnectionReset => Some("connection reset"),
                ErrorKind::ConnectionAborted => Some("connection aborted"),
                ErrorKind::HostUnreachable => Some("host unreachable"),
                ErrorKind::NetworkUnreachable => Some("network unreachable"),
                ErrorKind::AddrNotAvailable => Some("address not available"),
                _ => None,
            };
            if let Some(short) = short {
                return short.to_string();
            }
        }
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("timed out") || lower.contains("timeout") || lower.contains("elapsed") {
            timed_out = true;
        }
        if !text.is_empty() {
            innermost = text;
        }
        current = e.source();
    }
    if timed_out {
        format!("timed out after {}", human_duration(timeout))
    } else {
        innermost
    }
}

/// Every message of an error chain, outermost first, joined by ": ".
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.dedup();
    parts.join(": ")
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(
            normalize_url("127.0.0.1:8899").unwrap(),
            "http://127.0.0.1:8899"
        );
        assert_eq!(
            normalize_url(" http://localhost:8899/ ").unwrap(),
            "http://localhost:8899"
        );
        assert_eq!(
            normalize_url("http://[::1]:8899").unwrap(),
            "http://[::1]:8899"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_url_in_the_message() {
        for bad in [
            "",
            "https://127.0.0.1:8899",
            "ftp://host:1",
            "http://",
            "http://host:1/path",
            "http://ho st:1",
        ] {
            let err = normalize_url(bad).expect_err(bad);
            assert!(matches!(err, RpcError::InvalidUrl { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn status_errors_read_as_one_line() {
        let err = RpcError::Status {
            url: "http://127.0.0.1:1".into(),
            code: Code::NotFound,
            message: "no block at slot 7".into(),
        };
        assert_eq!(
            err.to_string(),
            "no block at slot 7 (NOT_FOUND from http://127.0.0.1:1)"
        );
        assert!(err.is_not_found());
    }

    #[test]
    fn reasons_prefer_the_io_error_kind() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            unreachable_reason(&io, Duration::from_secs(2)),
            "connection refused"
        );
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "operation timed out");
        assert_eq!(
            unreachable_reason(&io, Duration::from_millis(1500)),
            "timed out after 1500ms"
        );
    }
}
