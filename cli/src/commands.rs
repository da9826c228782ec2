//! Command handlers: turn parsed arguments into engine calls and hand the answers to `output`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use allowly_core::api::Api;
use allowly_core::canonical;
use allowly_core::engine::ApiKeyParts;
use allowly_core::engine::DATABASE_FILE;
use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckResponse, ReceiptEnvelope, Resolution};
use allowly_core::policy::Decision;
use allowly_core::receipt::decode_receipt;
use allowly_core::{Allowly, Error, RemoteClient, RemoteOptions};

use crate::serve::Workspaces;
use serde_json::{json, Value};

use crate::args::{
    AuthorizationsCommand, BudgetCommand, CheckArgs, CheckpointsCommand, Command, ConfirmationsCommand,
    CreateAuthorizationArgs, EscalationsCommand, KeysCommand, PoliciesCommand, ReceiptsCommand, ResolveEscalationArgs,
};
use crate::output::{self, InitReport, Output};
use crate::progress::Progress;
use crate::settings::Settings;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_DENY: i32 = 3;
pub const EXIT_CONFIRM: i32 = 4;
pub const EXIT_ESCALATE: i32 = 5;

/// An export reports progress on stderr every this many receipts.
const EXPORT_PROGRESS_EVERY: u64 = 10_000;

/// Runs one command and returns the process exit code.
pub fn run(command: &Command, settings: &Settings) -> i32 {
    let program = if settings.home_typed {
        format!("allowly --home {}", shell_word(&settings.home.display().to_string()))
    } else {
        "allowly".into()
    };
    let out = &Output { json: settings.json, program };
    let home = &settings.home;
    let result = match command {
        // Offline: needs no workspace, and has its own exit codes.
        Command::Verify(args) => return crate::verify::run(args, out),
        Command::Init(_) => init(home, out),
        // The server, keys and tenants work on the home as a whole.
        Command::Serve(args) => return crate::serve::serve(home, args),
        Command::ApiKeys(args) => Workspaces::of(home, args.database_url.as_deref())
            .and_then(|workspaces| crate::serve::api_keys(&workspaces, &args.command, out)),
        Command::Workspaces(args) => Workspaces::of(home, args.database_url.as_deref())
            .and_then(|workspaces| crate::serve::workspaces(&workspaces, &args.command, out)),
        // Rotation in a home or database opens the workspace itself; with --url the server rotates.
        Command::Keys(KeysCommand::Rotate(args)) if settings.url.is_none() => {
            Workspaces::of(home, args.database_url.as_deref())
                .and_then(|workspaces| crate::serve::rotate_key(&workspaces, args.workspace.as_deref(), out))
        }
        command => open_target(settings).and_then(|target| dispatch(&target, command, out)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            out.error(&err);
            EXIT_ERROR
        }
    }
}

/// `text` quoted for a POSIX shell when it needs to be.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Where a command runs: the embedded workspace in --home, or a server given by --url.
enum Target {
    Embedded(Allowly),
    Remote(RemoteClient),
}

impl Target {
    fn api(&self) -> &dyn Api {
        match self {
            Target::Embedded(engine) => engine,
            Target::Remote(client) => client,
        }
    }

    /// The embedded engine, for the operations the HTTP API does not offer. The commands that
    /// need it do not take --url; this guards the ones that do, for their local-only forms.
    fn embedded(&self, operation: &str) -> Result<&Allowly, Error> {
        match self {
            Target::Embedded(engine) => Ok(engine),
            Target::Remote(_) => Err(Error::invalid(
                "url",
                format!("`{operation}` works on a local data directory only; drop --url and use --home"),
            )),
        }
    }
}

fn open_target(settings: &Settings) -> Result<Target, Error> {
    let Some(url) = &settings.url else {
        return open_existing(&settings.home).map(Target::Embedded);
    };
    let key = settings
        .api_key
        .as_deref()
        .ok_or_else(|| Error::invalid("api_key", "--url needs --api-key (or ALLOWLY_API_KEY)"))?;
    let options = RemoteOptions {
        // The key names its workspace, which the key document's URL needs.
        workspace_id: ApiKeyParts::parse(key).map(|parts| parts.workspace_id.to_string()),
        ..RemoteOptions::default()
    };
    Ok(Target::Remote(allowly_core::connect(url, key, options)?))
}

fn dispatch(target: &Target, command: &Command, out: &Output) -> Result<i32, Error> {
    let engine = target.api();
    match command {
        // Handled by `run` without opening a workspace.
        Command::Init(_) | Command::Verify(_) | Command::Serve(_) | Command::ApiKeys(_) | Command::Workspaces(_) => {
            Ok(EXIT_USAGE)
        }
        Command::Policies(command) => policies(target, command, out).map(|()| EXIT_OK),
        Command::Authorizations(command) => authorizations(engine, command, out).map(|()| EXIT_OK),
        Command::Check(args) => check(target, args, out),
        Command::Confirmations(command) => confirmations(engine, command, out).map(|()| EXIT_OK),
        Command::Escalations(command) => escalations(engine, command, out).map(|()| EXIT_OK),
        Command::Budget(BudgetCommand::Settle { check_receipt_id, actual_cost_micros, idempotency_key, .. }) => {
            let settled = engine.settle_budget(check_receipt_id, *actual_cost_micros, idempotency_key.as_deref())?;
            out.emit(&settled, output::budget_settlement).map(|()| EXIT_OK)
        }
        Command::Receipts(command) => receipts(target, command, out).map(|()| EXIT_OK),
        Command::Keys(command) => keys(target, command, out).map(|()| EXIT_OK),
        Command::Checkpoints(CheckpointsCommand::Create(_)) => {
            let created = target.embedded("checkpoints create")?.create_checkpoints()?;
            out.emit(&json!({ "checkpoints": created }), |_| output::checkpoints(&created)).map(|()| EXIT_OK)
        }
    }
}

/// Opens the workspace in `home`, refusing to create one: only `init` does that, so a mistyped
/// `--home` does not silently start an empty workspace with a new key.
pub fn open_existing(home: &Path) -> Result<Allowly, Error> {
    if !home.join(DATABASE_FILE).is_file() {
        return Err(Error::NotFound {
            code: "workspace_not_found",
            message: format!("no workspace in `{}`: run `allowly init` there, or pass --home", home.display()),
        });
    }
    Allowly::open_embedded(home)
}

fn init(home: &Path, out: &Output) -> Result<i32, Error> {
    let database = home.join(DATABASE_FILE);
    let created = !database.is_file();
    let engine = Allowly::open_embedded(home)?;
    let document = engine.key_document()?;
    let active = document
        .keys
        .iter()
        .find(|key| key.active_until.is_none())
        .ok_or_else(|| Error::signing("the workspace has no active key"))?;
    let report = InitReport {
        workspace_id: engine.workspace_id().to_string(),
        created,
        key_id: active.key_id.clone(),
        public_key_fingerprint: active.public_key_fingerprint.clone(),
        data_path: absolute(home).display().to_string(),
        database: absolute(&database).display().to_string(),
        engine_version: engine.engine_version().to_string(),
    };
    out.emit(&report, output::init)?;
    Ok(EXIT_OK)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

// -------------------------------------------------------------------------------------------------
// Policies and authorizations

fn policies(target: &Target, command: &PoliciesCommand, out: &Output) -> Result<(), Error> {
    let engine = target.api();
    match command {
        PoliciesCommand::Apply { file, .. } => {
            let bytes = read_input(file)?;
            let body = parse_json("body", &bytes)?;
            let view = engine.create_policy(&body)?;
            out.emit(&view, output::policy)
        }
        PoliciesCommand::List { page, .. } => {
            let listed = engine.list_policies(page.limit, page.cursor.as_deref())?;
            out.emit(&listed, output::policies)
        }
        PoliciesCommand::Show { policy_id, version, .. } => {
            let view = match version {
                Some(version) => target.embedded("policies show --version")?.get_policy_edition(policy_id, *version)?,
                None => engine.get_policy(policy_id)?,
            };
            out.emit(&view, output::policy_with_definition)
        }
        PoliciesCommand::Archive { policy_id, .. } => {
            engine.archive_policy(policy_id, None)?;
            out.emit(&json!({ "policy_id": policy_id, "archived": true }), |_| format!("archived policy {policy_id}"))
        }
    }
}

fn authorizations(engine: &dyn Api, command: &AuthorizationsCommand, out: &Output) -> Result<(), Error> {
    match command {
        AuthorizationsCommand::Create(args) => {
            let created = engine.create_authorization(&authorization_request(args)?)?;
            out.emit(&created, output::authorization_created)
        }
        AuthorizationsCommand::List { page, .. } => {
            let listed = engine.list_authorizations(&allowly_core::ops::ListAuthorizations {
                page: allowly_core::ops::PageArgs::new(page.limit, page.cursor.as_deref()),
                ..Default::default()
            })?;
            out.emit(&listed, output::authorizations)
        }
        AuthorizationsCommand::Show { authorization_id, .. } => {
            out.emit(&engine.get_authorization(authorization_id)?, output::authorization)
        }
        AuthorizationsCommand::Revoke { authorization_id, revoked_by, notes, .. } => {
            let revoked =
                engine.revoke_authorization(authorization_id, revoked_by.as_deref(), notes.as_deref(), None)?;
            out.emit(&revoked, output::authorization_revoked)
        }
    }
}

fn authorization_request(args: &CreateAuthorizationArgs) -> Result<AuthorizationCreate, Error> {
    Ok(AuthorizationCreate {
        user_id: args.user_id.clone(),
        policy_id: args.policy_id.clone(),
        policy_version: args.policy_version,
        // No --action means every action of the edition.
        actions: (!args.actions.is_empty()).then(|| args.actions.clone()),
        expires_at: args.expires_at.clone(),
        budget_limit_micros: args.budget_limit_micros,
        metadata: args.metadata.as_deref().map(|text| json_argument("metadata", text)).transpose()?,
        replaces: args.replaces.clone(),
        idempotency_key: args.idempotency_key.clone(),
    })
}

// -------------------------------------------------------------------------------------------------
// Checks and their follow-ups

fn check(target: &Target, args: &CheckArgs, out: &Output) -> Result<i32, Error> {
    let request = CheckRequest {
        authorization_id: args.authorization_id.clone(),
        actions: args.actions.clone(),
        resource: args.resource.clone(),
        session_id: args.session_id.clone(),
        estimated_cost_micros: args.estimated_cost_micros,
        context: args.context.as_deref().map(|text| json_argument("context", text)).transpose()?,
        client_timestamp: None,
        idempotency_key: args.idempotency_key.clone(),
    };
    let response = target.api().check_or_fallback(&request)?;
    out.emit(&response, |response| output::check(response, &out.program))?;
    // Whatever the format: stdout has the answer a script reads, and it looks like any other.
    if let Some(warning) = fallback_warning(target, &response) {
        output::stderr(&warning);
    }
    Ok(check_exit_code(&response))
}

/// When `response` is the local fallback of docs/decisions.md (the runtime, or the embedded store, could
/// not decide), two lines for stderr that say so: nobody decided, why, and that no receipt exists.
fn fallback_warning(target: &Target, response: &CheckResponse) -> Option<String> {
    let fallbacks: Vec<_> = response.results.iter().map(|(_, result)| result).filter(|r| r.is_fallback).collect();
    // `fallback_{open|closed}_{failure}`
    let failure = fallbacks.first()?.reason.rsplit('_').next().unwrap_or_default();
    let (who, why) = match target {
        Target::Remote(client) => (
            format!("the runtime at {}", client.base_url()),
            match failure {
                "timeout" => format!(
                    "it did not answer within {} ms, or answered 408 (timeout)",
                    client.options().check_timeout_ms
                ),
                "unreachable" => "it could not be reached, or answered 5xx (unreachable)".into(),
                other => other.to_string(),
            },
        ),
        Target::Embedded(_) => ("the engine".into(), format!("the data directory's store is {failure}")),
    };
    let allowed = fallbacks.iter().filter(|result| result.decision == Decision::Allow).count();
    let fallback = match allowed {
        0 => "fail-closed fallback (deny)",
        n if n == fallbacks.len() => "fail-open fallback (allow)",
        _ => "fallback (deny, allow for the actions mapped to fail-open)",
    };
    Some(format!(
        "warning: {who} did not decide this check: {why}\n\
         warning: the answer is the local {fallback}, not a policy decision; no receipt exists"
    ))
}

/// The exit code of the strongest decision (deny > escalate > confirm > allow), so a script can
/// branch on a check without reading its output.
pub fn check_exit_code(response: &CheckResponse) -> i32 {
    let strongest =
        response.results.iter().map(|(_, result)| result.decision).max_by_key(|decision| decision.strength());
    match strongest {
        Some(Decision::Allow) => EXIT_OK,
        Some(Decision::Confirm) => EXIT_CONFIRM,
        Some(Decision::Escalate) => EXIT_ESCALATE,
        // No result at all is not an allow.
        Some(Decision::Deny) | None => EXIT_DENY,
    }
}

fn confirmations(engine: &dyn Api, command: &ConfirmationsCommand, out: &Output) -> Result<(), Error> {
    match command {
        ConfirmationsCommand::Approve { nonce, ttl_seconds, .. } => {
            out.emit(&engine.resolve_confirmation(nonce, true, *ttl_seconds, None)?, output::confirmation_resolved)
        }
        ConfirmationsCommand::Reject { nonce, ttl_seconds, .. } => {
            out.emit(&engine.resolve_confirmation(nonce, false, *ttl_seconds, None)?, output::confirmation_resolved)
        }
        ConfirmationsCommand::Status { confirmation_id, .. } => {
            out.emit(&engine.confirmation_status(confirmation_id)?, output::confirmation_status)
        }
    }
}

fn escalations(engine: &dyn Api, command: &EscalationsCommand, out: &Output) -> Result<(), Error> {
    let resolve = |args: &ResolveEscalationArgs, resolution| {
        engine.resolve_escalation(&args.escalation_id, resolution, &args.resolved_by, args.note.as_deref(), None)
    };
    match command {
        EscalationsCommand::Approve(args) => {
            out.emit(&resolve(args, Resolution::Approved)?, output::escalation_resolved)
        }
        EscalationsCommand::Reject(args) => {
            out.emit(&resolve(args, Resolution::Rejected)?, output::escalation_resolved)
        }
        EscalationsCommand::Status { escalation_id, .. } => {
            out.emit(&engine.escalation_status(escalation_id)?, output::escalation_status)
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Receipts, keys

fn receipts(target: &Target, command: &ReceiptsCommand, out: &Output) -> Result<(), Error> {
    match command {
        ReceiptsCommand::Show { receipt_id: Some(receipt_id), .. } => {
            // `GET /v1/receipts/{id}` shape.
            let envelope = ReceiptEnvelope::Signed { receipt: target.api().receipt(receipt_id)? };
            out.emit(&envelope, |envelope| match envelope {
                ReceiptEnvelope::Signed { receipt } => match decode_receipt(&receipt.to_value()) {
                    Ok(payload) => output::receipt(&payload),
                    Err(err) => format!("receipt {receipt_id} does not decode: {err}"),
                },
                ReceiptEnvelope::Pending { receipt_id, .. } => format!("receipt {receipt_id} is pending"),
            })
        }
        ReceiptsCommand::Show { receipt_id: None, limit, .. } => {
            let engine = target.embedded("receipts show (recent)")?;
            let recent = engine.recent_receipts(*limit)?;
            let items: Vec<Value> = recent
                .iter()
                .map(|stored| {
                    json!({
                        "receipt_id": stored.receipt_id,
                        "workspace_id": engine.workspace_id(),
                        "created_at": stored.issued_at.to_string(),
                        "receipt": stored.receipt,
                    })
                })
                .collect();
            out.emit(&json!({ "items": items }), |_| {
                let payloads: Vec<Value> =
                    recent.iter().filter_map(|stored| decode_receipt(&stored.receipt.to_value()).ok()).collect();
                output::receipts(&payloads)
            })
        }
        ReceiptsCommand::Export { out: path, checkpoint_evidence, .. } => {
            let engine = target.embedded("receipts export")?;
            // A progress line on a terminal; elsewhere (logs, CI) a plain line now and then.
            let mut bar = Progress::on_terminal("exported");
            let mut reported = 0u64;
            let mut progress = |count: u64| {
                if bar.is_drawn() {
                    bar.set(count);
                } else if count / EXPORT_PROGRESS_EVERY > reported / EXPORT_PROGRESS_EVERY {
                    output::stderr(&format!("exported {count} receipts..."));
                }
                reported = count;
            };
            // The engine's I/O errors do not name the file; catch the usual mistake here, before
            // anything is written.
            for target in std::iter::once(path).chain(checkpoint_evidence) {
                let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(Error::io(format!(
                        "cannot write `{}`: no directory `{}`",
                        target.display(),
                        parent.display()
                    )));
                }
            }
            let summary = engine.export_receipts(path, checkpoint_evidence.as_deref(), &mut progress).map_err(
                |err| match err {
                    Error::Io { message, source } => {
                        Error::Io { message: format!("export to `{}` failed: {message}", path.display()), source }
                    }
                    other => other,
                },
            )?;
            bar.finish();
            let report = json!({
                "receipts": summary.receipts,
                "checkpoints": summary.checkpoints,
                "out": path.display().to_string(),
                "checkpoint_evidence": checkpoint_evidence.as_ref().map(|p| p.display().to_string()),
            });
            out.emit(&report, |_| {
                let mut text = format!("exported {} receipts to {}", summary.receipts, path.display());
                if let Some(evidence) = checkpoint_evidence {
                    text.push_str(&format!("\nwrote {} checkpoints to {}", summary.checkpoints, evidence.display()));
                    if summary.checkpoints == 0 {
                        text.push_str(
                            "\n(no checkpoints yet: `allowly checkpoints create` covers whole past UTC days)",
                        );
                    }
                }
                text
            })
        }
    }
}

fn keys(target: &Target, command: &KeysCommand, out: &Output) -> Result<(), Error> {
    match command {
        KeysCommand::List(_) => out.emit(&target.api().key_document()?, output::keys),
        // Always JSON: this document is what verifiers (and `allowly verify --keys`) read.
        KeysCommand::Document(_) => out.json_value(&target.api().key_document()?),
        KeysCommand::Rotate(args) => match target {
            Target::Remote(client) if args.database_url.is_none() && args.workspace.is_none() => {
                out.emit(&client.rotate_signing_key()?, output::key_rotated)
            }
            Target::Remote(_) => Err(Error::invalid(
                "url",
                "--database-url and --workspace name where to rotate locally; with --url the server's workspace rotates",
            )),
            Target::Embedded(engine) => crate::serve::rotate_on(engine, out).map(|_| ()),
        },
    }
}

// -------------------------------------------------------------------------------------------------
// Input

/// The bytes of a file, or of standard input for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|err| Error::io(format!("cannot read standard input: {err}")).caused_by(err))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|err| Error::io(format!("cannot read `{}`: {err}", path.display())).caused_by(err))
}

/// A JSON argument given inline or as `@path`.
fn json_argument(field: &str, text: &str) -> Result<Value, Error> {
    match text.strip_prefix('@') {
        Some(path) => parse_json(field, &read_input(Path::new(path))?),
        None => parse_json(field, text.as_bytes()),
    }
}

/// Parses user JSON. Numbers are left as they are: the engine rejects floats and unsafe integers
/// with a typed error naming the field.
fn parse_json(field: &str, bytes: &[u8]) -> Result<Value, Error> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|err| Error::invalid(field, format!("is not valid JSON: {err}")))?;
    // serde_json keeps the last of duplicate names; a rule silently dropped that way is worse than an error.
    canonical::parse_document(bytes).map_err(|err| Error::invalid(field, err.to_string()))?;
    Ok(value)
}
