//! `bb-rpc`: the gRPC API of a bb validator, as every binary sees it.
//!
//! - [`pb`]: the messages, the `Node` server trait ([`pb::node_server::Node`]) and the raw
//!   client, generated at build time from `proto/bb/v1/*.proto` (with `protox`, so no
//!   `protoc` is needed).
//! - [`NodeClient`]: the small typed client the tools use: one call per RPC, errors that name
//!   the node's URL ([`RpcError`]).
//! - Server helpers for the validator: [`node_server`] (the `Node` service with bb's message
//!   size limits), [`health_service`] (standard `grpc.health.v1.Health`),
//!   [`reflection_service`] (standard `grpc.reflection.v1`, so `grpcurl` and friends work
//!   without the .proto files) and [`serve`], which runs all three on a listener.
//!
//! # Message sizes
//! A block is up to 64 MiB in canonical encoding (`bb_core::encoding::MAX_DECODE_BYTES`),
//! while gRPC implementations refuse messages over 4 MiB by default. Both sides here accept
//! up to [`MAX_MESSAGE_BYTES`] (80 MiB: a full block plus its summary and framing). Other
//! gRPC clients need the same setting to fetch large blocks, e.g. `grpcurl
//! -max-msg-sz 83886080`.

mod client;

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

pub use client::{DownloadError, NodeClient, RpcError, normalize_url};
pub use tonic;
pub use tonic_health::ServingStatus;
pub use tonic_health::server::HealthReporter;

/// Code generated from `proto/bb/v1/*.proto` (package `bb.v1`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used
)]
pub mod pb {
    tonic::include_proto!("bb.v1");
}

pub use pb::Commitment;
pub use pb::node_server::{Node, NodeServer};

/// The encoded `FileDescriptorSet` of `proto/bb/v1/*.proto` (with comments), as served by
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bb_descriptor.bin"));

/// The full gRPC name of the node service, as health checks and reflection know it.
pub const NODE_SERVICE_NAME: &str = pb::node_server::SERVICE_NAME;

/// Largest gRPC message either side accepts: 80 MiB, room for a 64 MiB block and its
/// framing. (gRPC's usual default is 4 MiB, too small for a full block.)
pub const MAX_MESSAGE_BYTES: usize = 80 << 20;

/// The most transactions one `SubmitTransactions` call may carry (the proto documents it).
pub const MAX_SUBMIT_TRANSACTIONS: usize = 4096;

/// Wraps a `Node` implementation in its gRPC server with bb's message size limits.
pub fn node_server<T: Node>(node: T) -> NodeServer<T> {
    NodeServer::new(node)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The standard gRPC health service and the handle that sets what it reports.
///
/// The overall server status (service name `""`) starts as SERVING; `bb.v1.Node` is
/// unknown until the caller reports it, e.g.
/// `reporter.set_service_status(NODE_SERVICE_NAME, ServingStatus::Serving).await` once the
/// node is ready to answer (or `NotServing` while it catches up).
pub fn health_service() -> (HealthReporter, HealthServer<impl Health>) {
    tonic_health::server::health_reporter()
}

/// The standard gRPC server reflection service (v1), describing `bb.v1`, the health service
/// and reflection itself.
///
/// Fails only if a descriptor set does not decode, which the tests rule out for ours.
pub fn reflection_service()
-> Result<ServerReflectionServer<impl ServerReflection>, tonic_reflection::server::Error> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// Why [`serve`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `node`, the given health service and reflection on `listener` until `shutdown`
/// completes, then finishes the requests in flight and returns.
///
/// Take the listener from `TcpListener::bind` (port 0 picks a free port; read it back with
/// `local_addr`). Accepted sockets get `TCP_NODELAY`, as gRPC expects.
pub async fn serve<T, H, F>(
    listener: TcpListener,
    node: T,
    health: HealthServer<H>,
    shutdown: F,
) -> Result<(), ServeError>
where
    T: Node,
    H: Health,
    F: Future<Output = ()> + Send,
{
    let reflection = reflection_service()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(node_server(node))
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn descriptor_set_describes_the_node_service() {
        let files = file_names(FILE_DESCRIPTOR_SET);
        assert!(
            files.contains(&("bb/v1/node.proto".to_string(), "bb.v1".to_string())),
            "{files:?}"
        );
        assert_eq!(NODE_SERVICE_NAME, "bb.v1.Node");
    }

    #[test]
    fn reflection_service_builds() {
        assert!(reflection_service().is_ok());
    }

    /// (file name, package) of every file in an encoded set, read with a minimal local
    /// mirror of `google.protobuf.FileDescriptorSet` (no prost-types dependency needed).
    fn file_names(bytes: &[u8]) -> Vec<(String, String)> {
        #[derive(Clone, PartialEq, prost::Message)]
        struct File {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(string, tag = "2")]
            package: String,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Set {
            #[prost(message, repeated, tag = "1")]
            file: Vec<File>,
        }
        let set = Set::decode(bytes).expect("the descriptor set decodes");
        set.file.into_iter().map(|f| (f.name, f.package)).collect()
    }
}
