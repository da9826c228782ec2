//! The command line: every subcommand, flag and help text of `allowly`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Printed after `allowly --help`: the contract scripts branch on.
const AFTER_HELP: &str = "\
Exit codes:
  0  success (for `check`: every action is allow; for `verify`: everything verified)
  1  error: the engine refused the request or failed (`error[<code>]: ...` on stderr, or
     {\"error\":{\"code\",\"message\",\"fields\"}} on stdout with --json); for `verify`: invalid
  2  usage error (bad flags or arguments; for `verify`: unreadable keys or input files)
  3  check: at least one action is deny
  4  check: at least one action is confirm (and none is deny or escalate)
  5  check: at least one action is escalate (and none is deny)

The data directory is --home, else $ALLOWLY_HOME, else ./.allowly. --home, --json, --url and
--api-key go before or after the command; each command takes only those it uses (its --help
lists them) and refuses the others.
JSON arguments (--context, --metadata) take JSON text or @path; `policies apply -` reads stdin.";

#[derive(Debug, Parser)]
#[command(
    name = "allowly",
    version,
    about = "Authorize, check and prove AI agents' actions on an embedded Allowly workspace",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub before: Before,

    #[command(subcommand)]
    pub command: Command,
}

/// The shared flags typed before the command (`allowly --json check ...`). Each is the command's
/// own flag (same meaning, same environment variable), and refused, like a flag typed after the
/// command, by a command that does not take it: see [`crate::settings`].
#[derive(Debug, Args)]
pub struct Before {
    /// The workspace's data directory (else $ALLOWLY_HOME, else ./.allowly), for the commands that
    /// work on one.
    #[arg(long = "home", id = "before_home", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print the HTTP API's JSON instead of text, for the commands that have a JSON form.
    #[arg(long = "json", id = "before_json")]
    pub json: bool,

    /// Run against an `allowly serve` runtime (else $ALLOWLY_URL), for the commands that can.
    #[arg(long = "url", id = "before_url", value_name = "URL")]
    pub url: Option<String>,

    /// The API key for --url (else $ALLOWLY_API_KEY).
    #[arg(long = "api-key", id = "before_api_key", value_name = "KEY")]
    pub api_key: Option<String>,
}

// The shared flags, flattened into each command that uses them, so that a command takes (and its
// help lists) exactly those. `crate::settings` reads them by these ids.

/// `--home`.
#[derive(Debug, Args)]
pub struct Home {
    /// The workspace's data directory (holds allowly.db and its signing keys).
    #[arg(long, env = "ALLOWLY_HOME", default_value = ".allowly", value_name = "DIR")]
    pub home: PathBuf,
}

/// `--url` and `--api-key`.
#[derive(Debug, Args)]
pub struct Remote {
    /// Run the command against an `allowly serve` runtime instead of the local data directory.
    #[arg(long, env = "ALLOWLY_URL", value_name = "URL")]
    pub url: Option<String>,

    /// The API key for --url (a setup key for policies, a runtime key for the rest).
    #[arg(long, env = "ALLOWLY_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// `--json`.
#[derive(Debug, Args)]
pub struct Json {
    /// Print the HTTP API's JSON instead of text meant for people (errors too, on stdout).
    #[arg(long)]
    pub json: bool,
}

/// The flags of a command that works on the local data directory only.
#[derive(Debug, Args)]
pub struct Local {
    #[command(flatten)]
    pub home: Home,
    #[command(flatten)]
    pub json: Json,
}

/// The flags of a command that works on the local data directory, or against a runtime with --url.
#[derive(Debug, Args)]
pub struct Anywhere {
    #[command(flatten)]
    pub home: Home,
    #[command(flatten)]
    pub remote: Remote,
    #[command(flatten)]
    pub json: Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the workspace and its signing key (nothing changes if it exists).
    Init(Local),
    /// Publish and read policy editions.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Create, read and revoke authorizations.
    #[command(subcommand)]
    Authorizations(AuthorizationsCommand),
    /// Decide actions under an authorization (exit 0 allow, 3 deny, 4 confirm, 5 escalate).
    Check(CheckArgs),
    /// Resolve the user's confirmations.
    #[command(subcommand)]
    Confirmations(ConfirmationsCommand),
    /// Resolve escalations routed to an approver.
    #[command(subcommand)]
    Escalations(EscalationsCommand),
    /// Settle budgets against actual costs.
    #[command(subcommand)]
    Budget(BudgetCommand),
    /// Read and export signed receipts.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// The workspace's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Daily checkpoints over the receipts.
    #[command(subcommand)]
    Checkpoints(CheckpointsCommand),
    /// Verify a receipt or an export offline (exit 0 valid, 1 invalid, 2 usage error).
    Verify(VerifyArgs),
    /// Serve the HTTP API on this home (first start creates the workspace and prints its keys once).
    Serve(ServeArgs),
    /// API keys of the home's workspaces (setup: policies and keys; runtime: checks and approvals).
    ApiKeys(ApiKeysArgs),
    /// The workspaces (tenants) of the home.
    Workspaces(WorkspacesArgs),
}

impl Command {
    /// The form of this command, if any, that works on the local data directory only although
    /// the command takes --url for its other forms.
    pub fn local_only_form(&self) -> Option<&'static str> {
        match self {
            Command::Policies(PoliciesCommand::Show { version: Some(_), .. }) => {
                Some("`allowly policies show --version`")
            }
            Command::Receipts(ReceiptsCommand::Show { receipt_id: None, .. }) => {
                Some("`allowly receipts show` without a RECEIPT_ID (the recent receipts)")
            }
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// A PostgreSQL database shared by several servers, instead of the SQLite home.
    #[arg(long, env = "ALLOWLY_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Base URL clients reach this server at (for receipt links); default http://<listen address>.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Blocking threads running one workspace's engine calls at once (default 2 on SQLite, 32 on
    /// PostgreSQL); its other requests wait their turn, first come first served.
    #[arg(long, value_name = "N")]
    pub engine_threads: Option<usize>,
    /// How often to issue the daily checkpoints of the UTC days that have ended, in every
    /// workspace; 0 leaves them to `allowly checkpoints create`.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub checkpoint_interval: u64,
    /// Format of the request log on stderr (filter with ALLOWLY_LOG, e.g. `warn`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Client connections open at once; at the limit new ones wait until one closes.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub max_connections: usize,
    /// Connections open at once from one client address; more are closed at once.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers; also how long a connection may sit idle.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout_seconds: u64,
    /// Time a client has to send a request body (408 after).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub body_timeout_seconds: u64,
    /// Failed authentications a client address may make per minute (429 past it); 0: no limit.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub auth_failures_per_minute: u32,
    /// Requests an API key may make per minute (429 past it); 0: no limit.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub key_requests_per_minute: u32,
    /// Requests that write (checks included) an API key may make per minute; 0: no limit.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub key_writes_per_minute: u32,
    /// Also serve /metrics without a key on this address (keep it private); on --listen it takes a setup key.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub home: Home,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ApiKeysArgs {
    #[command(subcommand)]
    pub command: ApiKeysCommand,
    /// The PostgreSQL database of `allowly serve --database-url`, instead of the home.
    #[arg(long, global = true, env = "ALLOWLY_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key; its secret is printed this once.
    Create {
        /// `setup` (policies, keys, everything) or `runtime` (checks, authorizations, approvals, receipts, budgets).
        #[arg(long, value_enum)]
        kind: KeyKind,
        /// A note to recognize the key by.
        #[arg(long)]
        label: Option<String>,
        /// The workspace (default: the first workspace of the home or database).
        #[arg(long, value_name = "WS")]
        workspace: Option<String>,
        #[command(flatten)]
        on: Local,
    },
    /// Every key (never its secret), revoked ones included.
    List {
        /// The workspace (default: the first workspace of the home or database).
        #[arg(long, value_name = "WS")]
        workspace: Option<String>,
        #[command(flatten)]
        on: Local,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        key_id: String,
        /// The workspace (default: the first workspace of the home or database).
        #[arg(long, value_name = "WS")]
        workspace: Option<String>,
        #[command(flatten)]
        on: Local,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyKind {
    Setup,
    Runtime,
}

#[derive(Debug, Args)]
pub struct WorkspacesArgs {
    #[command(subcommand)]
    pub command: WorkspacesCommand,
    /// The PostgreSQL database of `allowly serve --database-url`, instead of the home.
    #[arg(long, global = true, env = "ALLOWLY_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace with a setup and a runtime key (printed once): the first, or a new tenant.
    Create(Local),
    /// The workspaces of the home (or database).
    List(Local),
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Publish a new edition from a JSON file (the HTTP create body: definition fields + `policy_id`).
    Apply {
        /// The policy file, or `-` for standard input.
        file: PathBuf,
        #[command(flatten)]
        on: Anywhere,
    },
    /// The newest edition of every active policy.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        on: Anywhere,
    },
    /// One policy: its newest edition, or the one given by --version.
    Show {
        policy_id: String,
        /// A specific edition, archived ones included (local data directory only).
        #[arg(long, value_name = "N")]
        version: Option<i64>,
        #[command(flatten)]
        on: Anywhere,
    },
    /// Archive every edition of a policy (existing authorizations keep their snapshot).
    Archive {
        policy_id: String,
        #[command(flatten)]
        on: Anywhere,
    },
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1 to 100).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuthorizationsCommand {
    /// Authorize a user's agent from a policy edition.
    Create(CreateAuthorizationArgs),
    /// Authorizations in creation order (by id).
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        on: Anywhere,
    },
    /// One authorization with its status and budget.
    Show {
        authorization_id: String,
        #[command(flatten)]
        on: Anywhere,
    },
    /// Revoke an authorization and its pending confirmations.
    Revoke {
        authorization_id: String,
        /// Who revoked it (written into the receipt).
        #[arg(long, value_name = "WHO")]
        revoked_by: Option<String>,
        /// Why (written into the receipt).
        #[arg(long)]
        notes: Option<String>,
        #[command(flatten)]
        on: Anywhere,
    },
}

#[derive(Debug, Args)]
pub struct CreateAuthorizationArgs {
    /// The user who grants the authorization.
    #[arg(long)]
    pub user_id: String,
    /// The policy whose edition is snapshotted.
    #[arg(long)]
    pub policy_id: String,
    /// The edition to snapshot (default: the newest).
    #[arg(long, value_name = "N")]
    pub policy_version: Option<i64>,
    /// Grant only these actions of the policy (repeatable; default: all of them).
    #[arg(long = "action", value_name = "ACTION")]
    pub actions: Vec<String>,
    /// RFC 3339 expiry (default: the policy's `default_expiry_days`).
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
    /// Spending cap in micros (50000000 = $50.00) for checks with --estimated-cost-micros.
    #[arg(long, value_name = "MICROS")]
    pub budget_limit_micros: Option<i64>,
    /// A JSON object, as text or @path.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// An authorization this one supersedes (it is revoked in the same step).
    #[arg(long, value_name = "AUTHORIZATION_ID")]
    pub replaces: Option<String>,
    /// Makes a retried create return the first answer.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub on: Anywhere,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The authorization to check under (an unknown id is a signed deny, not an error).
    #[arg(long)]
    pub authorization_id: String,
    /// An action to decide (repeatable, 1 to 25).
    #[arg(long = "action", value_name = "ACTION", required = true)]
    pub actions: Vec<String>,
    /// What the actions touch (matched against the policy's `resource_pattern`).
    #[arg(long)]
    pub resource: Option<String>,
    /// Recorded in the receipts' context.
    #[arg(long)]
    pub session_id: Option<String>,
    /// A JSON object, as text or @path (at most 4 KiB of canonical JSON, integers only).
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// Cost to reserve against the authorization's budget (denied with budget_exceeded over the cap).
    #[arg(long, value_name = "MICROS")]
    pub estimated_cost_micros: Option<i64>,
    /// Makes a retried check return the first answer and reserve nothing twice.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub on: Anywhere,
}

#[derive(Debug, Subcommand)]
pub enum ConfirmationsCommand {
    /// Approve a pending confirmation by its nonce.
    Approve {
        nonce: String,
        /// How long the approval stays usable (default 60).
        #[arg(long, value_name = "SECONDS")]
        ttl_seconds: Option<i64>,
        #[command(flatten)]
        on: Anywhere,
    },
    /// Reject a pending confirmation by its nonce.
    Reject {
        nonce: String,
        /// How long the rejection stands (default 60).
        #[arg(long, value_name = "SECONDS")]
        ttl_seconds: Option<i64>,
        #[command(flatten)]
        on: Anywhere,
    },
    /// The status of a confirmation, by its id (`cnf_...`) or its nonce (`cnf_nonce_...`).
    Status {
        /// The confirmation id or the nonce the check answered.
        #[arg(value_name = "ID_OR_NONCE")]
        confirmation_id: String,
        #[command(flatten)]
        on: Anywhere,
    },
}

#[derive(Debug, Subcommand)]
pub enum EscalationsCommand {
    /// Approve a pending escalation (good for one allowed check).
    Approve(ResolveEscalationArgs),
    /// Reject a pending escalation.
    Reject(ResolveEscalationArgs),
    /// The status of an escalation.
    Status {
        escalation_id: String,
        #[command(flatten)]
        on: Anywhere,
    },
}

#[derive(Debug, Args)]
pub struct ResolveEscalationArgs {
    pub escalation_id: String,
    /// The approver (written into the receipt).
    #[arg(long, value_name = "WHO")]
    pub resolved_by: String,
    /// Why (written into the receipt).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    #[command(flatten)]
    pub on: Anywhere,
}

#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Replace a check's reserved estimate with its actual cost (once per check).
    Settle {
        /// A receipt of the budgeted check.
        #[arg(long, value_name = "RECEIPT_ID")]
        check_receipt_id: String,
        /// What the check's actions really cost.
        #[arg(long, value_name = "MICROS")]
        actual_cost_micros: i64,
        /// Makes a retried settlement return the first answer.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        #[command(flatten)]
        on: Anywhere,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// One receipt, or the most recent ones without an id (local data directory only).
    Show {
        receipt_id: Option<String>,
        /// How many recent receipts to list.
        #[arg(long, default_value_t = 20, conflicts_with = "receipt_id")]
        limit: usize,
        #[command(flatten)]
        on: Anywhere,
    },
    /// Write every receipt as JSONL (gzip if FILE ends in .gz).
    Export {
        /// Where to write the JSONL export.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also write the checkpoint evidence document.
        #[arg(long, value_name = "FILE")]
        checkpoint_evidence: Option<PathBuf>,
        #[command(flatten)]
        on: Local,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every signing key with its fingerprint and active window.
    List(Anywhere),
    /// Retire the active key now and start a new one (old receipts keep verifying): in the home,
    /// in a PostgreSQL database (--database-url) while its servers keep signing, or on a server
    /// (--url with a setup key).
    Rotate(RotateArgs),
    /// The public key document (always JSON; what `verify --keys` reads).
    Document(Anywhere),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The PostgreSQL database of `allowly serve --database-url`, instead of the home.
    #[arg(long, env = "ALLOWLY_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The workspace (default: the first workspace of the home or database).
    #[arg(long, value_name = "WS")]
    pub workspace: Option<String>,
    #[command(flatten)]
    pub on: Anywhere,
}

#[derive(Debug, Subcommand)]
pub enum CheckpointsCommand {
    /// Checkpoint every whole UTC day not yet checkpointed.
    Create(Local),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A receipt (one JSON object) or an export (JSONL, optionally .gz).
    pub input: PathBuf,
    /// The workspace's key document (`allowly keys document`).
    #[arg(long, value_name = "KEYS.json")]
    pub keys: PathBuf,
    /// The workspace the receipts must belong to.
    #[arg(long, value_name = "WS")]
    pub workspace_id: String,
    /// A fingerprint (`sha256:<hex>`) of a key you trust (repeatable).
    #[arg(long = "trusted-key-fingerprint", value_name = "FP", required = true)]
    pub trusted_key_fingerprints: Vec<String>,
    /// Checkpoint evidence to check against an export.
    #[arg(long, value_name = "FILE")]
    pub checkpoint_evidence: Option<PathBuf>,
    #[command(flatten)]
    pub json: Json,
}
