//! Generates the gRPC code from `proto/herald/v1/herald.proto` with a vendored `protoc`
//! (a fresh machine has none), plus the descriptor set the reflection service serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let proto = "../../proto/herald/v1/herald.proto";
    println!("cargo:rerun-if-changed={proto}");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("herald_descriptor.bin"))
        .bytes(".herald.v1")
        .compile_with_config(config, &[proto], &["../../proto"])?;
    Ok(())
}
