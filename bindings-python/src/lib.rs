//! `allowly._native`: the Allowly engine for Python. The binding converts types and errors only;
//! every decision, format and check is core's (`allowly-core`), and every operation is reached by
//! name through the catalog (`Engine.call`, `catalog()`).

mod answer;
mod convert;
mod engine;
mod errors;
mod verify;

// PyO3's `#[pymodule]` expands to FFI glue with `unsafe` blocks; the allowance is limited to the
// module item, and our own code has none (the crate denies `unsafe_code`).
#[allow(unsafe_code)]
#[pyo3::pymodule]
mod _native {
    #[pymodule_export]
    use crate::answer::ActionAnswer;
    #[pymodule_export]
    use crate::engine::{after_fork_in_child, after_fork_in_parent, before_fork, catalog, Engine};
    #[pymodule_export]
    use crate::errors::error_kind_of_status;
    #[pymodule_export]
    use crate::verify::{
        decode_receipt, load_keys_from_json, verify_checkpoint, verify_export, verify_receipt, verify_receipts, KeySet,
    };

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("ENGINE_VERSION", allowly_core::engine::engine_version())?;
        Ok(())
    }
}
