//! Generates the gRPC code for `proto/bb/v1/*.proto` with no `protoc`: `protox` (a pure-Rust
//! protobuf compiler) builds the FileDescriptorSet, `tonic-prost-build` turns it into Rust,
//! and the encoded set is written to `OUT_DIR/bb_descriptor.bin` for server reflection.

use std::env;
use std::error::Error;
use std::fs;
use std::path::PathBuf;

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let api_dir = proto_root.join("bb/v1");
    println!("cargo:rerun-if-changed={}", api_dir.display());
    println!("cargo:rerun-if-changed=build.rs");

    // Every .proto of the API, in a stable order so the output does not depend on the
    // directory listing.
    let mut files: Vec<PathBuf> = fs::read_dir(&api_dir)
        .map_err(|e| format!("reading {}: {e}", api_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .proto files in {}", api_dir.display()).into());
    }
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    // protox keeps comments (source info), so reflection clients such as grpcurl show them.
    let fds = protox::compile(&files, [&proto_root])?;
    fs::write(out_dir.join("bb_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
