// Generated from the Rust types of allowly-core (ts-rs) by bindings-node/scripts/gen-types.sh.
// Do not edit: change the Rust types, then run the script; scripts/node-test.sh fails while this
// file differs from what the script generates. Wire shapes: snake_case, as the HTTP API.

/**
 * Which credential a route takes.
 */
export type Access = "public" | "runtime" | "setup";

export type ActionResult = { decision: Decision, reason: string, 
/**
 * The signed receipt of this decision; only a local fallback result (docs/decisions.md) has none.
 */
receipt: ReceiptEnvelope | null, receipt_id?: string, 
/**
 * True for a result decided locally because the engine could not be reached or its store failed.
 */
is_fallback?: boolean, fallback_mode?: string, budget: BudgetInfo | null, escalation: EscalationInfo | null, policy_eval: JsonValue | null, confirm_nonce?: string, confirm_expires_at?: string, confirm_prompt_hint?: string, confirmation_id?: string, escalation_id?: string, escalation_to?: string, escalation_expires_at?: string, superseded_by?: string, };

/**
 * A newly created API key; `key` is shown this once and stored only as a hash.
 */
export type ApiKeyCreated = { key: string, key_id: string, kind: ApiKeyKind, workspace_id: string, created_at: string, };

/**
 * The two kinds of API key (docs/http-api.md): `setup` manages policies, keys and listings; `runtime`
 * checks, authorizes and resolves.
 */
export type ApiKeyKind = "setup" | "runtime";

/**
 * The answer of [`ListApiKeys`].
 */
export type ApiKeyList = { items: Array<ApiKeyView>, };

/**
 * An API key as listed (never with its secret).
 */
export type ApiKeyView = { key_id: string, kind: ApiKeyKind, label: string | null, created_at: string, revoked_at: string | null, };

/**
 * `DELETE /v1/policies/{policy_id}`: archives every edition (answered with 204).
 */
export type ArchivePolicy = { policy_id: string, idempotency_key?: string | null, };

export type AuthorizationCreate = { user_id: string, policy_id: string, policy_version?: number | null, actions?: Array<string> | null, expires_at?: string | null, budget_limit_micros?: number | null, 
/**
 * Sent as `{}` when `None`, as the official client sends it.
 */
metadata?: JsonValue | null, replaces?: string | null, 
/**
 * Sent as the `Idempotency-Key` header, never in a body.
 */
idempotency_key?: string | null, };

export type AuthorizationCreated = { authorization_id: string, policy_ref: PolicyRef, actions: Array<string>, created_at: string, expires_at: string, receipt: ReceiptEnvelope, authorization_provenance: JsonValue, budget_limit_micros: number | null, budget_spent_micros: number, replaced_authorization_id: string | null, revocation_receipt: ReceiptEnvelope | null, };

/**
 * An authorization moved to a newly published edition (the hosted service's publish does this).
 */
export type AuthorizationMigration = { user_id: string, previous_authorization_id: string, authorization_id: string, };

export type AuthorizationRevoked = { authorization_id: string, revoked_at: string, receipt: ReceiptEnvelope, revoked_confirmations: Array<string>, };

export type AuthorizationStatus = "active" | "revoked" | "expired";

/**
 * `GET /v1/authorizations` item.
 */
export type AuthorizationView = { authorization_id: string, user_id: string, agent_id: string, policy_ref: PolicyRef, actions: Array<string>, status: AuthorizationStatus, created_at: string, expires_at: string, revoked_at: string | null, budget_limit_micros: number | null, budget_spent_micros: number, metadata: { [key in string]: JsonValue }, replaces: string | null, superseded_by: string | null, };

/**
 * Where an operation's fields (other than the path id and the idempotency key) travel.
 */
export type Body = "query" | "none" | "optional" | "json";

export type BudgetInfo = { limit_micros: number, spent_micros: number, estimated_cost_micros: number, spent_after_micros: number | null, };

export type BudgetSettlement = { check_receipt_id: string, authorization_id: string, estimated_cost_micros: number, actual_cost_micros: number, delta_micros: number, spent_before_micros: number, spent_after_micros: number, receipt: ReceiptEnvelope, };

/**
 * `check`: one decision per requested action.
 */
export type CheckRequest = { authorization_id: string, actions: Array<string>, resource?: string | null, session_id?: string | null, estimated_cost_micros?: number | null, context?: JsonValue | null, client_timestamp?: string | null, 
/**
 * Sent as the `Idempotency-Key` header, never in a body.
 */
idempotency_key?: string | null, };

export type CheckResponse = { authorization_id: string, user_id: string | null, agent_id: string | null, authorization_expires_at: string | null, engine_version: string, 
/**
 * In the order of the request's actions.
 */
results: { [key in string]: ActionResult }, };

/**
 * A checkpoint issued by `create_checkpoints`.
 */
export type CheckpointInfo = { receipt_id: string, period_start: string, receipt_count: number, merkle_root: string, };

export type CheckpointVerdict = { receipt_id: string, period_start: string, members: number, };

/**
 * A confirmation in a list (`GET /v1/confirmations`): its status and who it is for.
 */
export type ConfirmationItem = { 
/**
 * The user and agent of its authorization (`None` if the authorization cannot be read).
 */
user_id: string | null, agent_id: string | null, created_at: string, confirmation_id: string, authorization_id: string, action: string, resource: string | null, status: PromptStatus, expires_at: string, resolved_at: string | null, source_receipt_id: string | null, resolution_receipt_id: string | null, child_authorization_id: string | null, authority_status: string, authority_expires_at: string | null, };

export type ConfirmationResolved = { decision: string, authorization_id: string | null, expires_at: string | null, receipt: ReceiptEnvelope | null, };

/**
 * `GET /v1/confirmations/{confirmation_id}/status`, by the confirmation's id or its nonce.
 */
export type ConfirmationStatus = { confirmation_id: string, };

export type ConfirmationStatusView = { confirmation_id: string, authorization_id: string, action: string, resource: string | null, status: PromptStatus, expires_at: string, resolved_at: string | null, source_receipt_id: string | null, resolution_receipt_id: string | null, child_authorization_id: string | null, authority_status: string, authority_expires_at: string | null, };

/**
 * `POST /v1/setup/api-keys`: a new key, whose secret is in this answer only.
 */
export type CreateApiKey = { kind: ApiKeyKind, label?: string | null, };

/**
 * `POST /v1/policies`: publishes an edition from a create body (the definition's fields and
 * `policy_id`, see docs/policy-format.md).
 */
export type CreatePolicy = { idempotency_key?: string | null, } & ({ [key in string]: number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null });

/**
 * A policy decision. Serializes as its lowercase wire name.
 */
export type Decision = "allow" | "deny" | "confirm" | "escalate";

export type EscalationInfo = { escalation_id: string, status: string, escalation_to: string | null, expires_at: string | null, };

/**
 * An escalation in a list (`GET /v1/escalations`): its status, who it is for and who decides.
 */
export type EscalationItem = { user_id: string | null, agent_id: string | null, created_at: string, 
/**
 * The approver the policy routes it to.
 */
escalation_to: string | null, resolved_by: string | null, note: string | null, escalation_id: string, authorization_id: string, action: string, resource: string | null, status: PromptStatus, expires_at: string, resolved_at: string | null, source_receipt_id: string | null, resolution_receipt_id: string | null, authority_status: string, consumed_at: string | null, };

export type EscalationResolved = { escalation_id: string, status: string, resolved_by: string | null, resolved_at: string | null, receipt: ReceiptEnvelope | null, };

/**
 * `GET /v1/escalations/{escalation_id}`.
 */
export type EscalationStatus = { escalation_id: string, };

export type EscalationStatusView = { escalation_id: string, authorization_id: string, action: string, resource: string | null, status: PromptStatus, expires_at: string, resolved_at: string | null, source_receipt_id: string | null, resolution_receipt_id: string | null, authority_status: string, consumed_at: string | null, };

/**
 * `GET /v1/authorizations/{authorization_id}`.
 */
export type GetAuthorization = { authorization_id: string, };

/**
 * `GET /v1/workspaces/{workspace_id}/keys` (no key): every signing key, retired ones included.
 */
export type GetKeyDocument = { workspace_id: string, };

/**
 * `GET /v1/policies/{policy_id}`: the newest active edition, or edition `version`.
 */
export type GetPolicy = { policy_id: string, version?: number, };

/**
 * `GET /v1/receipts/{receipt_id}`: the signed receipt.
 */
export type GetReceipt = { receipt_id: string, };

/**
 * Whether a route takes an `Idempotency-Key`.
 */
export type Idempotency = "none" | "optional" | "required";

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

/**
 * The public key document of GET /v1/workspaces/{id}/keys, exact field names and order of docs/verifying-receipts.md.
 * (Serialize the struct itself to keep that order; [`KeyDocument::to_value`] sorts members.)
 */
export type KeyDocument = { workspace_id: string, keys: Array<PublishedKey>, };

/**
 * `GET /v1/setup/api-keys`.
 */
export type ListApiKeys = Record<symbol, never>;

/**
 * `GET /v1/authorizations`: one page in creation order (by id, oldest first), each given member
 * a filter that must match. `status` is the status as it stands now (an active authorization past
 * its `expires_at` is `expired`); a page may then hold fewer than `limit`: follow `next_cursor`
 * while `has_more`.
 */
export type ListAuthorizations = { user_id?: string | null, agent_id?: string | null, status?: AuthorizationStatus | null, limit?: number, cursor?: string | null, };

/**
 * `GET /v1/confirmations`: confirmations newest first, by `status` as it stands now (`pending`:
 * still waiting for the user). A page may hold fewer than `limit` when the status filter drops
 * rows; follow `next_cursor` while `has_more`.
 */
export type ListConfirmations = { status?: PromptStatus | null, limit?: number, cursor?: string | null, };

/**
 * `GET /v1/escalations`: escalations newest first, by `status` as it stands now (`pending`:
 * waiting for an approver). Pages as [`ListConfirmations`].
 */
export type ListEscalations = { status?: PromptStatus | null, limit?: number, cursor?: string | null, };

/**
 * `GET /v1/policies`: one page of the active policies.
 */
export type ListPolicies = { limit?: number, cursor?: string | null, };

/**
 * `GET /v1/receipts`: the audit lookup. The workspace's receipts newest first, each member a
 * filter that must match; `since` (inclusive) and `until` (exclusive) are RFC 3339 instants.
 */
export type ListReceipts = { user_id?: string | null, agent_id?: string | null, action?: string | null, 
/**
 * A lifecycle event (`authorization.revoke`).
 */
event?: string | null, decision?: string | null, reason?: string | null, authorization_id?: string | null, since?: string | null, until?: string | null, limit?: number, cursor?: string | null, };

/**
 * The HTTP method of a route.
 */
export type Method = "GET" | "POST" | "DELETE";

export type Page<T> = { items: Array<T>, has_more: boolean, next_cursor: string | null, 
/**
 * Stored rows of this page that could not be read, in their place among `items` by id; absent
 * when there are none (docs/http-api.md, "Pagination").
 */
unreadable?: Array<UnreadableItem>, };

/**
 * The answer to publishing a policy (`POST /v1/setup/policies/publish`): the edition that is now
 * the newest. This engine publishes editions only; it migrates no authorizations, archives no
 * other policy and revokes no confirmation, so those members are always empty.
 */
export type PolicyPublished = { policy_ref: PolicyRef, agent_id: string, created_by: string, created_at: string, authorization_migrations: Array<AuthorizationMigration>, archived_policy_ids: Array<string>, revoked_confirmation_count: number, };

/**
 * An edition's identity: `{policy_id, policy_version, definition_sha256}`.
 */
export type PolicyRef = { policy_id: string, policy_version: number, definition_sha256: string, };

export type PolicyView = { policy_ref: PolicyRef, definition: JsonValue, description: string | null, created_by: string | null, created_at: string | null, deleted_at: string | null, };

/**
 * `POST /v1/setup/policies/preview`: a provisional evaluation of a definition on a context.
 */
export type PreviewPolicy = { definition: JsonValue, action: string, context?: JsonValue | null, };

export type PromptStatus = "pending" | "approved" | "rejected" | "expired";

/**
 * `POST /v1/setup/policies/publish`: the create body, answered in the publish shape.
 */
export type PublishPolicy = { idempotency_key?: string | null, } & ({ [key in string]: number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null });

export type PublishedKey = { key_id: string, alg: string, public_key: string, public_key_fingerprint: string, active_from: string, 
/**
 * `null` while the key is current; always present.
 */
active_until: string | null, };

/**
 * Receipt envelope of the HTTP API: `signed` with the JWS, or the `pending` shape that the
 * official client requires on lifecycle responses (the receipt is signed already).
 */
export type ReceiptEnvelope = { "status": "signed", receipt: SignedReceipt, } | { "status": "pending", receipt_id: string, ready_at_estimate: string | null, url: string, };

/**
 * One receipt of an audit lookup (`GET /v1/receipts`): what it says, and the signed receipt.
 */
export type ReceiptSummary = { receipt_id: string, issued_at: string, 
/**
 * The action decided (`None` for a lifecycle receipt).
 */
action: string | null, 
/**
 * The lifecycle event (`None` for a decision).
 */
event: string | null, decision: string, reason: string, user_id: string, agent_id: string, authorization_id: string | null, resource: string | null, receipt: SignedReceipt, };

/**
 * The verdict on one receipt.
 */
export type ReceiptVerdict = { valid: boolean, 
/**
 * 1-based line of an export.
 */
line: number | null, receipt_id: string | null, 
/**
 * `decision` (an action was decided) or `event` (a lifecycle event).
 */
kind: string | null, 
/**
 * The action decided, or the event.
 */
subject: string | null, decision: string | null, issued_at: string | null, key_id: string | null, key_fingerprint: string | null, error: VerifyFailure | null, };

export type Resolution = "approved" | "rejected";

/**
 * `POST /v1/confirmations/{confirm_nonce}`: approve (for `ttl_seconds`, default 60) or reject.
 */
export type ResolveConfirmation = { nonce: string, approved: boolean, ttl_seconds?: number | null, idempotency_key?: string | null, };

/**
 * `POST /v1/escalations/{escalation_id}/resolve`.
 */
export type ResolveEscalation = { escalation_id: string, resolution: Resolution, resolved_by: string, 
/**
 * Sent as `null` when absent, as the official client sends it.
 */
note?: string | null, idempotency_key?: string | null, };

/**
 * `DELETE /v1/setup/api-keys/{key_id}` (answered with 204).
 */
export type RevokeApiKey = { key_id: string, };

/**
 * `DELETE /v1/authorizations/{authorization_id}`, with `revoked_by` and `notes` in an optional body.
 */
export type RevokeAuthorization = { authorization_id: string, revoked_by?: string | null, notes?: string | null, idempotency_key?: string | null, };

/**
 * `POST /v1/setup/keys/rotate`: retires the signing key and starts a new one (the answer).
 */
export type RotateSigningKey = Record<symbol, never>;

/**
 * How an operation is reached over HTTP, and what its success status is.
 */
export type Route = { 
/**
 * The operation's name in every binding (`create_authorization`).
 */
operation: string, method: Method, 
/**
 * The path template; `{id}` stands for [`Route::path_field`].
 */
path: string, 
/**
 * The field the path's `{id}` carries.
 */
path_field: string | null, access: Access, idempotency: Idempotency, body: Body, 
/**
 * The status of a success (204: no body).
 */
status: number, 
/**
 * A policy definition travels in the body: the larger body limit applies.
 */
large_body: boolean, };

/**
 * `POST /v1/budget-settlements`: the actual cost of a checked action, against its reservation.
 */
export type SettleBudget = { check_receipt_id: string, actual_cost_micros: number, idempotency_key?: string | null, };

/**
 * A signed receipt: a flattened JWS whose three members are unpadded base64url.
 */
export type SignedReceipt = { protected: string, payload: string, signature: string, };

/**
 * A listed row that could not be read (damaged, or holding a value this engine refuses): named so
 * that one such row never hides the rest of a list, nor goes unnoticed.
 */
export type UnreadableItem = { 
/**
 * The authorization id, or `policy_id@version` for a policy edition.
 */
id: string, 
/**
 * `authorization_unreadable` or `stored_row_unreadable`, the error that reading it gives.
 */
code: string, message: string, };

/**
 * Why a receipt did not verify, with the reference verifier's exception class.
 */
export type VerifyFailure = { 
/**
 * `SignatureMismatchError`, `UnknownKeyError`, `KeyOutsideActiveWindowError`, `SchemaError`
 * or `VerificationError`.
 */
class: string, code: string, message: string, };

/**
 * `POST /v1/verify`: verifies what a person pasted (one receipt, its API envelope, a check
 * response, or a JSONL export). No key is needed: verification needs no secret, and nothing is
 * read from or written to the store but this workspace's public keys.
 */
export type VerifyReceipts = { 
/**
 * What to verify: text as pasted (a receipt, its envelope, a check response or JSON Lines),
 * or that document as JSON.
 */
input: JsonValue, 
/**
 * The key document to verify against; this workspace's by default.
 */
key_document?: JsonValue | null, 
/**
 * The fingerprints trusted to sign (`sha256:<64 hex>`); this workspace's keys by default.
 */
trusted_key_fingerprints?: Array<string> | null, 
/**
 * The checkpoint evidence document of an export.
 */
checkpoint_evidence?: JsonValue | null, };

/**
 * The verdict on everything that was pasted.
 */
export type VerifyReport = { 
/**
 * Every receipt verified, there was at least one, and the evidence (if any) verified.
 */
valid: boolean, 
/**
 * What the input was read as: `receipt`, `receipt_envelope`, `check_response` or `export`.
 */
input: string, ok: number, invalid: number, receipts: Array<ReceiptVerdict>, 
/**
 * The checkpoints of the evidence that verified.
 */
checkpoints: Array<CheckpointVerdict>, 
/**
 * Why the checkpoint evidence did not verify.
 */
evidence_error: VerifyFailure | null, };

/** Every operation of the catalog (`core/src/ops`) by name: its arguments (the HTTP request's path id, query or body and `idempotency_key`, merged) and its answer (the HTTP answer's body; `null` for 204). */
export interface Operations {
  check: { args: CheckRequest; answer: CheckResponse };
  create_authorization: { args: AuthorizationCreate; answer: AuthorizationCreated };
  list_authorizations: { args: ListAuthorizations; answer: Page<AuthorizationView> };
  get_authorization: { args: GetAuthorization; answer: AuthorizationView };
  revoke_authorization: { args: RevokeAuthorization; answer: AuthorizationRevoked };
  confirmation_status: { args: ConfirmationStatus; answer: ConfirmationStatusView };
  list_confirmations: { args: ListConfirmations; answer: Page<ConfirmationItem> };
  resolve_confirmation: { args: ResolveConfirmation; answer: ConfirmationResolved };
  escalation_status: { args: EscalationStatus; answer: EscalationStatusView };
  list_escalations: { args: ListEscalations; answer: Page<EscalationItem> };
  resolve_escalation: { args: ResolveEscalation; answer: EscalationResolved };
  settle_budget: { args: SettleBudget; answer: BudgetSettlement };
  get_receipt: { args: GetReceipt; answer: ReceiptEnvelope };
  list_receipts: { args: ListReceipts; answer: Page<ReceiptSummary> };
  verify_receipts: { args: VerifyReceipts; answer: VerifyReport };
  create_policy: { args: CreatePolicy; answer: PolicyView };
  list_policies: { args: ListPolicies; answer: Page<PolicyView> };
  get_policy: { args: GetPolicy; answer: PolicyView };
  archive_policy: { args: ArchivePolicy; answer: null };
  preview_policy: { args: PreviewPolicy; answer: JsonValue };
  publish_policy: { args: PublishPolicy; answer: PolicyPublished };
  list_api_keys: { args: ListApiKeys; answer: ApiKeyList };
  create_api_key: { args: CreateApiKey; answer: ApiKeyCreated };
  revoke_api_key: { args: RevokeApiKey; answer: null };
  rotate_signing_key: { args: RotateSigningKey; answer: PublishedKey };
  get_key_document: { args: GetKeyDocument; answer: KeyDocument };
}

export type OperationName = keyof Operations;

/** What kind of failure an error is (`err.kind`); each kind is one error class. */
export type ErrorKind = "invalid_request" | "unauthorized" | "forbidden" | "not_found" | "conflict" | "rate_limited" | "unavailable" | "timeout" | "unreachable" | "protocol" | "verification" | "internal";
