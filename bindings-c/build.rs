//! Generates `include/allowly.h` from the crate's `extern "C"` items with the pinned cbindgen.
//! `scripts/c-test.sh` fails if the generated header differs from the committed one.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // Read when the script runs, not baked in when it is compiled: a build script compiled for a
    // checkout elsewhere (a shared target directory) must not write into that checkout.
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(err) => {
            println!("cargo:warning=cannot read cbindgen.toml: {err}");
            std::process::exit(1);
        }
    };
    // ALLOWLY_HEADER_OUT lets the header check write elsewhere instead of the committed file.
    let out = std::env::var_os("ALLOWLY_HEADER_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir.join("include").join("allowly.h"));
    println!("cargo:rerun-if-env-changed=ALLOWLY_HEADER_OUT");
    match cbindgen::Builder::new().with_crate(&crate_dir).with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(out);
        }
        Err(err) => {
            println!("cargo:warning=cbindgen failed: {err}");
            std::process::exit(1);
        }
    }
}
