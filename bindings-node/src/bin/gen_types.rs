//! Writes `generated/types.d.ts`: the TypeScript declarations of every request and answer type of
//! the operation catalog (`allowly_core::ops`), derived by `ts-rs` from the Rust types themselves,
//! and the `Operations` map from each operation's catalog name to its argument and answer types.
//! `index.d.ts` imports these; nothing there repeats a wire type by hand.
//!
//! Run by `scripts/gen-types.sh` (`--check` regenerates into a temporary folder and fails on any
//! difference). Built only with the crate's `typescript` feature: the addon does not carry ts-rs.
//!
//! Usage: `allowly-node-gen-types <output file>`

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use allowly_core::error::ErrorKind;
use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckpointInfo};
use allowly_core::ops::{self, Operation, Route};
use ts_rs::{Config, TypeVisitor, TS};

/// Every declared type, by its TypeScript name.
struct Declarations<'a> {
    cfg: &'a Config,
    seen: HashSet<String>,
    decls: BTreeMap<String, String>,
}

impl Declarations<'_> {
    /// Declares `T` (when it is a named type, not a primitive or a container) and what it uses.
    fn add<T: TS + 'static + ?Sized>(&mut self) {
        self.visit::<T>();
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

impl TypeVisitor for Declarations<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if T::output_path().is_none() {
            return;
        }
        let name = T::ident(self.cfg);
        if !self.seen.insert(name.clone()) {
            return;
        }
        let docs = T::docs().unwrap_or_default();
        self.decls.insert(name, format!("{docs}export {}\n", T::decl(self.cfg)));
        T::visit_dependencies(self);
    }
}

/// One line of the `Operations` map.
struct Entry {
    name: &'static str,
    args: String,
    answer: String,
}

/// The catalog's operation types, in catalog order; checked against `ops::CATALOG` below so that a
/// new operation cannot be left out.
macro_rules! operations {
    ($decls:expr, $($op:ty),* $(,)?) => {{
        let mut entries = Vec::new();
        $(
            $decls.add::<$op>();
            $decls.add::<<$op as Operation>::Answer>();
            entries.push(Entry {
                name: <$op as Operation>::ROUTE.operation,
                args: <$op as TS>::name($decls.cfg),
                answer: <<$op as Operation>::Answer as TS>::name($decls.cfg),
            });
        )*
        entries
    }};
}

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: allowly-node-gen-types <output file>");
        std::process::exit(2);
    };
    // Integers travel as JSON numbers (the SDK refuses values beyond ±(2^53 − 1)).
    let cfg = Config::new().with_large_int("number");
    let mut decls = Declarations { cfg: &cfg, seen: HashSet::new(), decls: BTreeMap::new() };

    let entries = operations!(
        decls,
        CheckRequest,
        AuthorizationCreate,
        ops::ListAuthorizations,
        ops::GetAuthorization,
        ops::RevokeAuthorization,
        ops::ConfirmationStatus,
        ops::ListConfirmations,
        ops::ResolveConfirmation,
        ops::EscalationStatus,
        ops::ListEscalations,
        ops::ResolveEscalation,
        ops::SettleBudget,
        ops::GetReceipt,
        ops::ListReceipts,
        ops::VerifyReceipts,
        ops::CreatePolicy,
        ops::ListPolicies,
        ops::GetPolicy,
        ops::ArchivePolicy,
        ops::PreviewPolicy,
        ops::PublishPolicy,
        ops::ListApiKeys,
        ops::CreateApiKey,
        ops::RevokeApiKey,
        ops::RotateSigningKey,
        ops::GetKeyDocument,
    );
    let listed: Vec<&str> = entries.iter().map(|entry| entry.name).collect();
    let catalog: Vec<&str> = ops::CATALOG.iter().map(|route| route.operation).collect();
    if listed != catalog {
        eprintln!(
            "bindings-node/src/bin/gen_types.rs lists the operations {listed:?}, but ops::CATALOG has {catalog:?}: \
             add the new operation types to `operations!`"
        );
        std::process::exit(1);
    }
    // Types of the binding's own surface: the catalog's routes and the embedded-only checkpoints.
    decls.add::<Route>();
    decls.add::<CheckpointInfo>();

    let mut text = String::from(
        "// Generated from the Rust types of allowly-core (ts-rs) by bindings-node/scripts/gen-types.sh.\n\
         // Do not edit: change the Rust types, then run the script; scripts/node-test.sh fails while this\n\
         // file differs from what the script generates. Wire shapes: snake_case, as the HTTP API.\n",
    );
    for decl in decls.decls.values() {
        text.push('\n');
        text.push_str(decl);
    }
    text.push_str(
        "\n/** Every operation of the catalog (`core/src/ops`) by name: its arguments (the HTTP request's path id, \
         query or body and `idempotency_key`, merged) and its answer (the HTTP answer's body; `null` for 204). */\n\
         export interface Operations {\n",
    );
    for entry in &entries {
        let _ = writeln!(text, "  {}: {{ args: {}; answer: {} }};", entry.name, entry.args, entry.answer);
    }
    text.push_str("}\n\nexport type OperationName = keyof Operations;\n");
    let kinds: Vec<String> = ErrorKind::ALL.iter().map(|kind| format!("\"{}\"", kind.as_str())).collect();
    let _ = writeln!(
        text,
        "\n/** What kind of failure an error is (`err.kind`); each kind is one error class. */\nexport type ErrorKind = {};",
        kinds.join(" | ")
    );

    if let Err(err) = std::fs::write(&out, text) {
        eprintln!("cannot write {out}: {err}");
        std::process::exit(1);
    }
}
