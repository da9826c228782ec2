//! The wire-5 conformance vectors of `tests/vectors/wire5.json`, shared by the tests that read them.
//! They are part of the repository: a missing or unreadable file fails the test, never skips it.

use std::path::PathBuf;

use serde_json::Value;

/// `tests/vectors/wire5.json` at the repository's root, or the file `ALLOWLY_WIRE5_VECTORS` names
/// (`scripts/test.sh` points it at a missing file to prove that the tests then fail).
pub fn path() -> PathBuf {
    match std::env::var_os("ALLOWLY_WIRE5_VECTORS") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/wire5.json"),
    }
}

/// The parsed vectors document.
pub fn load() -> Result<Value, Box<dyn std::error::Error>> {
    let path = path();
    let bytes = std::fs::read(&path).map_err(|err| format!("cannot read the vectors {}: {err}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}
