//! Compiles the service's public API (../proto) into gRPC clients, as any client of pertinent
//! would. protoc comes from the `protoc-bin-vendored` crate; a `PROTOC` already set wins.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment yet.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let well_known = protoc_bin_vendored::include_path()?;
    let proto = PathBuf::from("../proto");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(
            &[
                proto.join("pertinent/v1/pertinent.proto"),
                proto.join("pertinent/v1/gate.proto"),
            ],
            &[proto.clone(), well_known],
        )?;
    println!("cargo:rerun-if-changed=../proto");
    Ok(())
}
