//! Compiles proto/ into OUT_DIR, with a file descriptor set for server reflection.
//! protoc comes from the `protoc-bin-vendored` crate, so no system install is needed; a
//! `PROTOC` already set in the environment wins.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment yet.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let well_known = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // Malformed request bodies are INVALID_ARGUMENT, not INTERNAL (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::ApiCodec")
        .file_descriptor_set_path(out_dir.join("pertinent_descriptor.bin"))
        .compile_protos(
            &[
                PathBuf::from("proto/pertinent/v1/pertinent.proto"),
                PathBuf::from("proto/pertinent/v1/gate.proto"),
            ],
            &[PathBuf::from("proto"), well_known],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
