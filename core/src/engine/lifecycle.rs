//! Policy editions, authorizations, confirmations, escalations and budget settlement. Every state
//! change writes its event receipt in the same transaction.

use serde_json::{json, Map, Value};

use super::check::escalation_info;
use super::{Allowly, ReceiptDraft, Signing, Subject};
use crate::canonical::{self, MAX_SAFE_INTEGER};
use crate::error::{Error, FieldError, Result};
use crate::ids;
use crate::model::{
    Authorization, AuthorizationCreate, AuthorizationCreated, AuthorizationFilter, AuthorizationRevoked,
    AuthorizationView, BudgetSettlement, Confirmation, ConfirmationItem, ConfirmationResolved, ConfirmationStatusView,
    Escalation, EscalationItem, EscalationResolved, EscalationStatusView, IdempotencyRecord, Page, PolicyEdition,
    PolicyPublished, PolicyView, PromptStatus, ReceiptEnvelope, Resolution, StoredReceipt, UnreadableItem,
};
use crate::ops::ListAuthorizations;
use crate::policy::{Definition, PolicyCreate, PolicyRef};
use crate::store::{Loaded, Tx, UnreadableRow};
use crate::time::Timestamp;

pub const MAX_METADATA_BYTES: usize = 4096;
pub const MAX_PAGE_SIZE: usize = 100;
/// Most authorizations one page of a status reads (see [`Allowly::list_authorizations`]).
pub const STATUS_SCAN_ROWS: usize = 1000;
/// Approval window of a confirmation approved without `ttl_seconds`.
pub const DEFAULT_CONFIRMATION_TTL_SECONDS: i64 = 60;
/// Longest approval window a confirmation may grant.
pub const MAX_CONFIRMATION_TTL_SECONDS: i64 = 86_400;

impl Allowly {
    /// The `pending` envelope the official client expects on lifecycle responses; the receipt is
    /// already signed and `GET /v1/receipts/{id}` returns it.
    pub fn pending_envelope(&self, receipt: &StoredReceipt) -> ReceiptEnvelope {
        ReceiptEnvelope::Pending {
            receipt_id: receipt.receipt_id.clone(),
            ready_at_estimate: Some(receipt.issued_at.to_string()),
            url: format!("{}/v1/receipts/{}", self.options.public_base_url.trim_end_matches('/'), receipt.receipt_id),
        }
    }

    /// Runs `work` at most once per idempotency key: a retry with the same request digest gets the
    /// first answer back, a different request under the same key is a conflict.
    fn once<T>(
        &self,
        tx: &mut dyn Tx,
        scope: &str,
        key: Option<&str>,
        request: &Value,
        work: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let Some(key) = key else { return work(tx) };
        ids::check_identifier("idempotency_key", key)?;
        if !(1..=256).contains(&key.chars().count()) {
            return Err(Error::invalid("idempotency_key", "must be 1 to 256 characters"));
        }
        // Unambiguous: scopes are fixed names without a `:`, so the key is everything after the first.
        let slot = format!("{scope}:{key}");
        let digest =
            canonical::canonical_sha256_hex(request).map_err(|err| Error::invalid("request", err.to_string()))?;
        if let Some(first) = tx.idempotency(&slot)? {
            if first.request_sha256 != digest {
                return Err(Error::conflict(
                    "idempotency_key_reused",
                    "this idempotency key was used for a different request",
                ));
            }
            return serde_json::from_str(&first.response)
                .map_err(|err| UnreadableRow::new("idempotency record", &slot, err).error());
        }
        let answer = work(tx)?;
        let response = serde_json::to_string(&answer).map_err(|err| Error::store(err.to_string()).caused_by(err))?;
        tx.put_idempotency(&slot, &IdempotencyRecord { request_sha256: digest, response })?;
        Ok(answer)
    }

    // ---------------------------------------------------------------------------------------------
    // Policies

    /// Publishes a new immutable edition from the HTTP create body (definition fields + `policy_id`).
    /// Applying the definition of the newest active edition again returns that edition unchanged.
    pub fn create_policy(&self, body: &Value) -> Result<PolicyView> {
        self.idempotent(None).create_policy(body)
    }

    fn create_policy_keyed(&self, key: Option<&str>, body: &Value) -> Result<PolicyView> {
        let create = PolicyCreate::parse(body)?;
        self.write(|tx| self.once(tx, "policy.create", key, body, |tx| self.create_policy_in(tx, &create)))
    }

    /// The edition `create` makes: a new one, or the newest if it already has this definition.
    fn create_policy_in(&self, tx: &mut dyn Tx, create: &PolicyCreate) -> Result<PolicyView> {
        let now = self.clock.now();
        let latest = tx.policy_edition(&create.policy_id, None)?;
        if let Some(expected) = &create.previous_policy_ref {
            if latest.as_ref().map(|e| &e.policy_ref) != Some(expected) {
                return Err(Error::conflict(
                    "policy_version_conflict",
                    "`previous_policy_ref` is not the newest edition",
                ));
            }
        }
        if let Some(latest) = latest.as_ref().filter(|e| e.archived_at.is_none()) {
            if latest.policy_ref.definition_sha256 == create.definition.sha256
                && latest.description == create.description
            {
                return Ok(policy_view(latest));
            }
        }
        let edition = PolicyEdition {
            policy_ref: PolicyRef {
                policy_id: create.policy_id.clone(),
                policy_version: latest.map_or(1, |e| e.policy_ref.policy_version + 1),
                definition_sha256: create.definition.sha256.clone(),
            },
            definition: create.definition.json.clone(),
            description: create.description.clone(),
            created_at: now,
            archived_at: None,
        };
        tx.put_policy_edition(&edition)?;
        Ok(policy_view(&edition))
    }

    /// Publishes a policy: [`Allowly::create_policy`], answered in the publish shape. `created_by`
    /// names who published it (the server: `api_key:<key id>`).
    pub fn publish_policy(&self, body: &Value, created_by: &str) -> Result<PolicyPublished> {
        self.idempotent(None).publish_policy(body, created_by)
    }

    fn publish_policy_keyed(&self, key: Option<&str>, body: &Value, created_by: &str) -> Result<PolicyPublished> {
        let create = PolicyCreate::parse(body)?;
        self.write(|tx| {
            self.once(tx, "policy.publish", key, body, |tx| {
                let view = self.create_policy_in(tx, &create)?;
                Ok(PolicyPublished {
                    agent_id: view.definition.get("agent_id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    created_by: created_by.to_string(),
                    created_at: view.created_at.unwrap_or_else(|| self.clock.now().to_string()),
                    policy_ref: view.policy_ref,
                    authorization_migrations: Vec::new(),
                    archived_policy_ids: Vec::new(),
                    revoked_confirmation_count: 0,
                })
            })
        })
    }

    /// The newest active edition of a policy.
    pub fn get_policy(&self, policy_id: &str) -> Result<PolicyView> {
        ids::check_identifier("policy_id", policy_id)?;
        self.read(|tx| {
            tx.policy_edition(policy_id, None)?
                .filter(|e| e.archived_at.is_none())
                .map(|e| policy_view(&e))
                .ok_or_else(|| Error::not_found("policy_not_found", "policy", policy_id))
        })
    }

    /// One edition, archived or not (authorizations keep referring to their edition).
    pub fn get_policy_edition(&self, policy_id: &str, version: i64) -> Result<PolicyView> {
        ids::check_identifier("policy_id", policy_id)?;
        self.read(|tx| {
            tx.policy_edition(policy_id, Some(version))?.map(|e| policy_view(&e)).ok_or_else(|| {
                Error::not_found("policy_not_found", "policy edition", &format!("{policy_id}@{version}"))
            })
        })
    }

    /// Every edition of a policy, archived or not, newest first: its version history.
    pub fn policy_editions(&self, policy_id: &str) -> Result<Vec<PolicyView>> {
        ids::check_identifier("policy_id", policy_id)?;
        self.read(|tx| {
            let newest = tx
                .policy_edition(policy_id, None)?
                .ok_or_else(|| Error::not_found("policy_not_found", "policy", policy_id))?;
            let mut editions = vec![policy_view(&newest)];
            for version in (1..newest.policy_ref.policy_version).rev() {
                if let Some(edition) = tx.policy_edition(policy_id, Some(version))? {
                    editions.push(policy_view(&edition));
                }
            }
            Ok(editions)
        })
    }

    /// Newest active edition of every policy, ordered by policy id.
    pub fn list_policies(&self, limit: usize, cursor: Option<&str>) -> Result<Page<PolicyView>> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let editions = self.read(|tx| tx.policy_editions())?;
        let mut newest: Vec<Loaded<PolicyEdition>> = Vec::new();
        for edition in editions {
            match newest.last_mut() {
                Some(last) if edition_policy_id(last) == edition_policy_id(&edition) => *last = edition,
                _ => newest.push(edition),
            }
        }
        // A policy whose newest edition does not load is reported, not left out as if archived.
        let active: Vec<Loaded<PolicyView>> = newest
            .iter()
            .filter(|e| e.as_ref().map_or(true, |e| e.archived_at.is_none()))
            .filter(|e| cursor.is_none_or(|c| edition_policy_id(e) > c))
            .map(|e| e.as_ref().map(policy_view).map_err(Clone::clone))
            .collect();
        Ok(page(active, limit, |p| match p {
            Ok(view) => view.policy_ref.policy_id.clone(),
            Err(row) => row.id.split('@').next().unwrap_or_default().to_string(),
        }))
    }

    /// Archives every edition of a policy. Existing authorizations keep their snapshot.
    pub fn archive_policy(&self, policy_id: &str) -> Result<()> {
        self.idempotent(None).archive_policy(policy_id)
    }

    fn archive_policy_keyed(&self, key: Option<&str>, policy_id: &str) -> Result<()> {
        ids::check_identifier("policy_id", policy_id)?;
        self.write(|tx| {
            self.once(tx, "policy.archive", key, &json!({"policy_id": policy_id}), |tx| {
                let now = self.clock.now();
                let (editions, unreadable): (Vec<_>, Vec<_>) = tx
                    .policy_editions()?
                    .into_iter()
                    .filter(|e| edition_policy_id(e) == policy_id)
                    .partition(Result::is_ok);
                let editions: Vec<PolicyEdition> = editions.into_iter().filter_map(Result::ok).collect();
                if editions.iter().all(|e| e.archived_at.is_some()) {
                    // Editions that do not load authorize nothing already; they are named, not archived.
                    if let Some(Err(row)) = unreadable.first() {
                        return Err(row.error());
                    }
                    return Err(Error::not_found("policy_not_found", "policy", policy_id));
                }
                for mut edition in editions.into_iter().filter(|e| e.archived_at.is_none()) {
                    edition.archived_at = Some(now);
                    tx.put_policy_edition(&edition)?;
                }
                Ok(())
            })
        })
    }

    /// Evaluates a definition on a context without any grant, guard or budget (setup preview).
    pub fn preview_policy(&self, definition: &Value, action: &str, context: &Value) -> Result<Value> {
        let definition = Definition::parse_member(definition, "definition")?;
        let entry = definition
            .action(action)
            .ok_or_else(|| Error::invalid("action", format!("`{action}` is not declared in the definition")))?;
        let Value::Object(context_map) = context else {
            return Err(Error::invalid("context", "must be an object"));
        };
        let size =
            canonical::to_canonical_vec(context).map_err(|err| Error::invalid("context", err.to_string()))?.len();
        if size > super::check::MAX_CONTEXT_BYTES {
            return Err(Error::invalid("context", format!("is {size} bytes of canonical JSON; the limit is 4096")));
        }
        let evaluation = entry.evaluate(context_map).map_err(|err| Error::invalid("context", err.to_string()))?;
        let input_sha256 = entry.input_sha256(context).map_err(|err| Error::invalid("context", err.to_string()))?;
        Ok(json!({
            "provisional": true,
            "definition_sha256": definition.sha256,
            "action": action,
            "policy_eval": evaluation.to_policy_eval(&input_sha256),
        }))
    }

    // ---------------------------------------------------------------------------------------------
    // Authorizations

    /// Creates an authorization from one policy edition and signs its `authorization.create` receipt.
    /// With `replaces`, the predecessor is revoked (superseded) in the same transaction.
    pub fn create_authorization(&self, request: &AuthorizationCreate) -> Result<AuthorizationCreated> {
        let valid = validate_create(request)?;
        let digest_body = json!({
            "user_id": request.user_id, "policy_id": request.policy_id, "policy_version": request.policy_version,
            "actions": request.actions, "expires_at": request.expires_at, "budget_limit_micros": request.budget_limit_micros,
            "metadata": valid.metadata, "replaces": request.replaces,
        });
        self.write(|tx| {
            self.once(tx, "authorization.create", request.idempotency_key.as_deref(), &digest_body, |tx| {
                self.create_authorization_in(tx, request, &valid)
            })
        })
    }

    fn create_authorization_in(
        &self,
        tx: &mut dyn Tx,
        request: &AuthorizationCreate,
        valid: &ValidCreate,
    ) -> Result<AuthorizationCreated> {
        let signing = self.signing(tx)?;
        let now = signing.now;
        let edition = tx.policy_edition(&request.policy_id, request.policy_version)?.ok_or_else(|| {
            let id = match request.policy_version {
                Some(v) => format!("{}@{v}", request.policy_id),
                None => request.policy_id.clone(),
            };
            Error::not_found("policy_not_found", "policy", &id)
        })?;
        if edition.archived_at.is_some() {
            return Err(Error::conflict("policy_archived", format!("policy `{}` is archived", request.policy_id)));
        }
        let definition = self.definition(tx, &edition.policy_ref)?;
        let actions: Vec<String> = match &request.actions {
            Some(subset) => {
                if let Some((i, unknown)) = subset.iter().enumerate().find(|(_, a)| definition.action(a).is_none()) {
                    return Err(Error::invalid(
                        format!("actions[{i}]"),
                        format!("`{unknown}` is not an action of this policy edition"),
                    ));
                }
                subset.clone()
            }
            None => definition.action_names().map(str::to_string).collect(),
        };
        let expires_at = match (valid.expires_at, definition.default_expiry_days) {
            (Some(at), _) => at,
            (None, Some(days)) => now.plus_days(days),
            (None, None) => {
                return Err(Error::invalid("expires_at", "is required: the policy has no `default_expiry_days`"));
            }
        };
        if !expires_at.is_representable() {
            // Only a default expiry from a clock near year 9999 gets here; a sent one was checked.
            return Err(Error::invalid("expires_at", crate::time::RANGE_MESSAGE));
        }
        if expires_at <= now {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let mut predecessor = match &request.replaces {
            None => None,
            Some(id) => {
                let found = tx
                    .authorization(id)?
                    .ok_or_else(|| Error::not_found("authorization_not_found", "authorization", id))?;
                if found.revoked_at.is_some() {
                    return Err(Error::conflict(
                        "authorization_revoked",
                        format!("authorization `{id}` is already revoked"),
                    ));
                }
                Some(found)
            }
        };
        let authorization_id = ids::new_id("auth_", now)?;
        let receipt_id = ids::new_id("rcp_", now)?;
        let authorization = Authorization {
            authorization_id: authorization_id.clone(),
            user_id: request.user_id.clone(),
            agent_id: definition.agent_id.clone(),
            policy_ref: edition.policy_ref.clone(),
            actions: actions.clone(),
            created_at: now,
            expires_at,
            budget_limit_micros: request.budget_limit_micros,
            budget_spent_micros: 0,
            metadata: valid.metadata.clone(),
            revoked_at: None,
            superseded_by: None,
            replaces: request.replaces.clone(),
            receipt_id: receipt_id.clone(),
        };
        tx.put_authorization(&authorization)?;
        let receipt = self.issue(
            tx,
            &signing,
            ReceiptDraft {
                receipt_id: Some(receipt_id),
                issued_at: now,
                subject: Subject::Event("authorization.create"),
                decision: "authorization_granted",
                reason: "authorization_created",
                user_id: &authorization.user_id,
                agent_id: &authorization.agent_id,
                resource: None,
                context: json!({
                    "actions": actions,
                    "expires_at": expires_at.to_string(),
                    "budget_limit_micros": request.budget_limit_micros,
                    "replaces": request.replaces,
                    "source": self.options.provenance_source,
                }),
                authorization_id: Some(&authorization_id),
                policy_ref: Some(&authorization.policy_ref),
                policy_eval: None,
            },
        )?;
        let revocation_receipt = match predecessor.as_mut() {
            None => None,
            Some(old) => {
                old.revoked_at = Some(now);
                old.superseded_by = Some(authorization_id.clone());
                let extra = json!({"revoked_by": "superseded", "superseded_by": authorization_id});
                let (revoked, _) = self.revoke_in(tx, old, &signing, "superseded_by_new_authorization", extra)?;
                Some(self.pending_envelope(&revoked))
            }
        };
        Ok(AuthorizationCreated {
            authorization_id,
            policy_ref: authorization.policy_ref.clone(),
            actions,
            created_at: now.to_string(),
            expires_at: expires_at.to_string(),
            receipt: self.pending_envelope(&receipt),
            authorization_provenance: json!({"source": self.options.provenance_source, "workspace_id": self.workspace_id}),
            budget_limit_micros: request.budget_limit_micros,
            budget_spent_micros: 0,
            replaced_authorization_id: request.replaces.clone(),
            revocation_receipt,
        })
    }

    /// Revokes an authorization and its pending confirmations; signs `authorization.revoke`.
    pub fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
    ) -> Result<AuthorizationRevoked> {
        self.idempotent(None).revoke_authorization(authorization_id, revoked_by, notes)
    }

    fn revoke_authorization_keyed(
        &self,
        key: Option<&str>,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
    ) -> Result<AuthorizationRevoked> {
        ids::check_identifier("authorization_id", authorization_id)?;
        if let Some(revoked_by) = revoked_by {
            ids::check_identifier("revoked_by", revoked_by)?;
            if !(1..=256).contains(&revoked_by.chars().count()) {
                return Err(Error::invalid("revoked_by", "must be 1 to 256 characters"));
            }
        }
        if let Some(notes) = notes {
            if notes.chars().count() > 2048 {
                return Err(Error::invalid("notes", "must be at most 2048 characters"));
            }
            if let Some(problem) = free_text_problem(notes) {
                return Err(Error::invalid("notes", problem));
            }
        }
        self.write(|tx| {
            self.once(
                tx,
                "authorization.revoke",
                key,
                &json!({"authorization_id": authorization_id, "revoked_by": revoked_by, "notes": notes}),
                |tx| {
                    let signing = self.signing(tx)?;
                    let now = signing.now;
                    let mut authorization = tx.authorization(authorization_id)?.ok_or_else(|| {
                        Error::not_found("authorization_not_found", "authorization", authorization_id)
                    })?;
                    if authorization.revoked_at.is_some() {
                        return Err(Error::conflict(
                            "authorization_revoked",
                            format!("authorization `{authorization_id}` is already revoked"),
                        ));
                    }
                    authorization.revoked_at = Some(now);
                    let mut extra = json!({"revoked_by": revoked_by.unwrap_or("user")});
                    if let Some(notes) = notes {
                        extra["notes"] = Value::from(notes);
                    }
                    let (receipt, revoked_confirmations) =
                        self.revoke_in(tx, &authorization, &signing, "authorization_revoked", extra)?;
                    Ok(AuthorizationRevoked {
                        authorization_id: authorization_id.to_string(),
                        revoked_at: now.to_string(),
                        receipt: self.pending_envelope(&receipt),
                        revoked_confirmations,
                    })
                },
            )
        })
    }

    /// Stores a revoked authorization, closes its pending confirmations and signs the receipt.
    fn revoke_in(
        &self,
        tx: &mut dyn Tx,
        authorization: &Authorization,
        signing: &Signing,
        reason: &str,
        extra: Value,
    ) -> Result<(StoredReceipt, Vec<String>)> {
        let now = signing.now;
        tx.put_authorization(authorization)?;
        let mut revoked_confirmations = Vec::new();
        // A pending confirmation that does not load is left as it is: it can be neither resolved nor
        // honoured (every check of a revoked authorization denies first), and it must not keep the
        // authorization from being revoked.
        for mut confirmation in tx.pending_confirmations(&authorization.authorization_id)?.into_iter().flatten() {
            confirmation.status = PromptStatus::Expired;
            confirmation.expires_at = now;
            tx.put_confirmation(&confirmation.prompt_key(), &confirmation)?;
            revoked_confirmations.push(confirmation.confirmation_id);
        }
        let mut context = object(extra);
        context.insert("revoked_confirmations".into(), json!(revoked_confirmations));
        let receipt = self.issue(
            tx,
            signing,
            ReceiptDraft {
                receipt_id: None,
                issued_at: now,
                subject: Subject::Event("authorization.revoke"),
                decision: "authorization_revoked",
                reason,
                user_id: &authorization.user_id,
                agent_id: &authorization.agent_id,
                resource: None,
                context: Value::Object(context),
                authorization_id: Some(&authorization.authorization_id),
                policy_ref: Some(&authorization.policy_ref),
                policy_eval: None,
            },
        )?;
        Ok((receipt, revoked_confirmations))
    }

    pub fn get_authorization(&self, authorization_id: &str) -> Result<AuthorizationView> {
        ids::check_identifier("authorization_id", authorization_id)?;
        let now = self.clock.now();
        self.read(|tx| {
            tx.authorization(authorization_id)?
                .map(|a| authorization_view(&a, now))
                .ok_or_else(|| Error::not_found("authorization_not_found", "authorization", authorization_id))
        })
    }

    /// Authorizations matching every given member of `request`, in creation order (by id); the
    /// cursor is the `next_cursor` of the previous page.
    ///
    /// The user and agent are found through the store's indexes; the status is decided here, on
    /// the rows read in order, since it changes with time. A page of a status reads at most
    /// [`STATUS_SCAN_ROWS`] rows, so a rare status ends a page early (`has_more`, fewer items)
    /// rather than reading the whole workspace; its cursor is the last row read, so the next page
    /// goes on from there. A row that does not load is listed as unreadable whatever the status.
    pub fn list_authorizations(&self, request: &ListAuthorizations) -> Result<Page<AuthorizationView>> {
        let (limit, cursor) = request.page.validate()?;
        let filter = authorization_filter(request)?;
        let status = request.status;
        let now = self.clock.now();
        // Without a status every row read is listed: one read of the page and the row after it.
        let batch = if status.is_some() { MAX_PAGE_SIZE + 1 } else { limit + 1 };
        let mut listed: Vec<Loaded<AuthorizationView>> = Vec::new();
        let mut last_read: Option<String> = None;
        let mut has_more = false;
        self.read(|tx| {
            (listed, last_read, has_more) = (Vec::new(), None, false);
            let mut rows = std::collections::VecDeque::new();
            let mut exhausted = false;
            let mut read = 0;
            loop {
                if rows.is_empty() && !exhausted {
                    let after = last_read.as_deref().or(cursor);
                    rows.extend(tx.authorizations(&filter, after, batch)?);
                    exhausted = rows.len() < batch;
                }
                let Some(row) = rows.pop_front() else { break };
                if listed.len() == limit || read == STATUS_SCAN_ROWS {
                    // A row follows the last one read: the next page starts after that one.
                    has_more = true;
                    break;
                }
                read += 1;
                let view = row.map(|a| authorization_view(&a, now));
                last_read = Some(match &view {
                    Ok(view) => view.authorization_id.clone(),
                    Err(unreadable) => unreadable.id.clone(),
                });
                if view.as_ref().map_or(true, |view| status.is_none_or(|wanted| view.status == wanted)) {
                    listed.push(view);
                }
            }
            Ok(())
        })?;
        Ok(loaded_page(listed, has_more, last_read.filter(|_| has_more)))
    }

    // ---------------------------------------------------------------------------------------------
    // Confirmations and escalations

    /// Approves (for `ttl_seconds`, default 60) or rejects a pending confirmation by its nonce.
    pub fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
    ) -> Result<ConfirmationResolved> {
        self.idempotent(None).resolve_confirmation(nonce, approved, ttl_seconds)
    }

    /// Approves or rejects a pending confirmation by its `cnf_` id, for an approver signed in with
    /// a setup key (the console). The HTTP API resolves by nonce only: whoever holds the nonce
    /// decides, and the id travels where the nonce must not (lists, receipts). Same transaction
    /// and receipt as [`Allowly::resolve_confirmation`].
    pub fn resolve_confirmation_by_id(
        &self,
        confirmation_id: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
    ) -> Result<ConfirmationResolved> {
        ids::check_identifier("confirmation_id", confirmation_id)?;
        let nonce = self
            .read(|tx| tx.confirmation(confirmation_id))?
            .ok_or_else(|| Error::not_found("confirmation_not_found", "confirmation", confirmation_id))?
            .nonce;
        self.resolve_confirmation_keyed(None, &nonce, approved, ttl_seconds)
    }

    fn resolve_confirmation_keyed(
        &self,
        key: Option<&str>,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
    ) -> Result<ConfirmationResolved> {
        ids::check_identifier("nonce", nonce)?;
        let ttl = ttl_seconds.unwrap_or(DEFAULT_CONFIRMATION_TTL_SECONDS);
        if !(1..=MAX_CONFIRMATION_TTL_SECONDS).contains(&ttl) {
            return Err(Error::invalid("ttl_seconds", format!("must be 1 to {MAX_CONFIRMATION_TTL_SECONDS}")));
        }
        self.write(|tx| {
            self.once(
                tx,
                "confirmation.resolve",
                key,
                &json!({"nonce": nonce, "approved": approved, "ttl_seconds": ttl_seconds}),
                |tx| {
                    let signing = self.signing(tx)?;
                    let now = signing.now;
                    let mut confirmation = tx.confirmation_by_nonce(nonce)?.ok_or_else(|| Error::NotFound {
                        code: "confirmation_not_found",
                        message: "no confirmation has this nonce".into(),
                    })?;
                    if confirmation.status != PromptStatus::Pending {
                        return Err(Error::conflict(
                            "confirmation_already_resolved",
                            "this confirmation is no longer pending",
                        ));
                    }
                    if now >= confirmation.expires_at {
                        return Err(Error::conflict(
                            "confirmation_expired",
                            "this confirmation expired before it was resolved",
                        ));
                    }
                    let authorization = self.live_authorization(tx, &confirmation.authorization_id, now)?;
                    confirmation.status = if approved { PromptStatus::Approved } else { PromptStatus::Rejected };
                    confirmation.resolved_at = Some(now);
                    confirmation.expires_at = now.plus_seconds(ttl);
                    let receipt = self.issue(
                        tx,
                        &signing,
                        ReceiptDraft {
                            receipt_id: None,
                            issued_at: now,
                            subject: Subject::Event("confirmation.resolve"),
                            decision: if approved { "confirmation_approved" } else { "confirmation_rejected" },
                            reason: if approved { "user_approved_confirmation" } else { "user_rejected_confirmation" },
                            user_id: &authorization.user_id,
                            agent_id: &authorization.agent_id,
                            resource: confirmation.resource.as_deref(),
                            context: json!({
                                "confirmation_id": confirmation.confirmation_id,
                                "action": confirmation.action,
                                "source_receipt_id": confirmation.source_receipt_id,
                                "ttl_seconds": ttl,
                            }),
                            authorization_id: Some(&authorization.authorization_id),
                            policy_ref: Some(&authorization.policy_ref),
                            policy_eval: None,
                        },
                    )?;
                    confirmation.resolution_receipt_id = Some(receipt.receipt_id.clone());
                    tx.put_confirmation(&confirmation.prompt_key(), &confirmation)?;
                    Ok(ConfirmationResolved {
                        decision: if approved { "approved" } else { "not_approved" }.into(),
                        authorization_id: approved.then(|| authorization.authorization_id.clone()),
                        expires_at: approved.then(|| confirmation.expires_at.to_string()),
                        receipt: Some(self.pending_envelope(&receipt)),
                    })
                },
            )
        })
    }

    /// The status of a confirmation, named by its id (`cnf_...`) or by the nonce that approves it
    /// (`cnf_nonce_...`, what the check answered), so a caller holding either can follow it.
    pub fn confirmation_status(&self, id_or_nonce: &str) -> Result<ConfirmationStatusView> {
        ids::check_identifier("confirmation_id", id_or_nonce)?;
        let now = self.clock.now();
        self.read(|tx| {
            let found = if id_or_nonce.starts_with(ids::CONFIRMATION_NONCE_PREFIX) {
                tx.confirmation_by_nonce(id_or_nonce)?
            } else {
                tx.confirmation(id_or_nonce)?
            };
            let c = found.ok_or_else(|| Error::NotFound {
                code: "confirmation_not_found",
                message: "no confirmation has this id or nonce".into(),
            })?;
            let grant = tx.authorization(&c.authorization_id)?;
            Ok(confirmation_view(&c, grant.as_ref(), now))
        })
    }

    /// Confirmations newest first whose status as it stands now is `status` (all when `None`);
    /// the cursor is the last confirmation id of the previous page.
    pub fn list_confirmations(
        &self,
        status: Option<PromptStatus>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ConfirmationItem>> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let now = self.clock.now();
        let mut items = Vec::new();
        let rows = self.read(|tx| {
            let rows = tx.list_confirmations(stored_status(status), cursor, limit + 1)?;
            items.clear();
            for row in &rows {
                let Ok(c) = row else { continue };
                let grant = tx.authorization(&c.authorization_id)?;
                let view = confirmation_view(c, grant.as_ref(), now);
                if status.is_none_or(|wanted| wanted == view.status) {
                    items.push(ConfirmationItem {
                        user_id: grant.as_ref().map(|a| a.user_id.clone()),
                        agent_id: grant.as_ref().map(|a| a.agent_id.clone()),
                        created_at: c.created_at.to_string(),
                        confirmation: view,
                    });
                }
            }
            Ok(rows)
        })?;
        Ok(filtered_page(rows, items, limit, |c| c.confirmation_id.clone(), |item| &item.confirmation.confirmation_id))
    }

    /// Escalations newest first whose status as it stands now is `status` (all when `None`).
    pub fn list_escalations(
        &self,
        status: Option<PromptStatus>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<EscalationItem>> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let now = self.clock.now();
        let mut items = Vec::new();
        let rows = self.read(|tx| {
            let rows = tx.list_escalations(stored_status(status), cursor, limit + 1)?;
            items.clear();
            for row in &rows {
                let Ok(e) = row else { continue };
                let grant = tx.authorization(&e.authorization_id)?;
                let view = escalation_view(e, grant.as_ref(), now);
                if status.is_none_or(|wanted| wanted == view.status) {
                    items.push(EscalationItem {
                        user_id: grant.as_ref().map(|a| a.user_id.clone()),
                        agent_id: grant.as_ref().map(|a| a.agent_id.clone()),
                        created_at: e.created_at.to_string(),
                        escalation_to: e.escalation_to.clone(),
                        resolved_by: e.resolved_by.clone(),
                        note: e.note.clone(),
                        escalation: view,
                    });
                }
            }
            Ok(rows)
        })?;
        Ok(filtered_page(rows, items, limit, |e| e.escalation_id.clone(), |item| &item.escalation.escalation_id))
    }

    /// Approves or rejects a pending escalation. An approval is good for one allowed check.
    pub fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
    ) -> Result<EscalationResolved> {
        self.idempotent(None).resolve_escalation(escalation_id, resolution, resolved_by, note)
    }

    fn resolve_escalation_keyed(
        &self,
        key: Option<&str>,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
    ) -> Result<EscalationResolved> {
        ids::check_identifier("escalation_id", escalation_id)?;
        ids::check_identifier("resolved_by", resolved_by)?;
        let by_len = resolved_by.chars().count();
        if by_len == 0 || by_len > 256 {
            return Err(Error::invalid("resolved_by", "must be 1 to 256 characters"));
        }
        if note.is_some_and(|n| n.chars().count() > 2048) {
            return Err(Error::invalid("note", "must be at most 2048 characters"));
        }
        if let Some(problem) = note.and_then(free_text_problem) {
            return Err(Error::invalid("note", problem));
        }
        self.write(|tx| {
            self.once(tx, "escalation.resolve", key, &json!({"escalation_id": escalation_id, "resolution": resolution, "resolved_by": resolved_by, "note": note}), |tx| {
            let signing = self.signing(tx)?;
            let now = signing.now;
            let mut escalation = tx
                .escalation(escalation_id)?
                .ok_or_else(|| Error::not_found("escalation_not_found", "escalation", escalation_id))?;
            if escalation.status != PromptStatus::Pending {
                return Err(Error::conflict("escalation_already_resolved", "this escalation is no longer pending"));
            }
            if now >= escalation.expires_at {
                return Err(Error::conflict("escalation_expired", "this escalation expired before it was resolved"));
            }
            let authorization = self.live_authorization(tx, &escalation.authorization_id, now)?;
            let approved = resolution == Resolution::Approved;
            escalation.status = if approved { PromptStatus::Approved } else { PromptStatus::Rejected };
            escalation.resolved_at = Some(now);
            escalation.resolved_by = Some(resolved_by.to_string());
            escalation.note = note.map(str::to_string);
            escalation.expires_at = now.plus_seconds(self.options.escalation_window_seconds);
            let receipt = self.issue(
                tx,
                &signing,
                ReceiptDraft {
                    receipt_id: None,
                    issued_at: now,
                    subject: Subject::Event("escalation.resolve"),
                    decision: if approved { "escalation_approved" } else { "escalation_rejected" },
                    reason: if approved { "escalation_resolved_by_approver" } else { "escalation_rejected_by_approver" },
                    user_id: &authorization.user_id,
                    agent_id: &authorization.agent_id,
                    resource: escalation.resource.as_deref(),
                    context: json!({
                        "escalation": {
                            "id": escalation.escalation_id, "event": "resolved", "status": escalation_info(&escalation).status,
                            "action": escalation.action, "escalation_to": escalation.escalation_to, "resolved_by": resolved_by,
                        },
                        "note": note,
                        "source_receipt_id": escalation.source_receipt_id,
                    }),
                    authorization_id: Some(&authorization.authorization_id),
                    policy_ref: Some(&authorization.policy_ref),
                    policy_eval: None,
                },
            )?;
            escalation.resolution_receipt_id = Some(receipt.receipt_id.clone());
            tx.put_escalation(&escalation.prompt_key(), &escalation)?;
            Ok(EscalationResolved {
                escalation_id: escalation.escalation_id.clone(),
                status: escalation_info(&escalation).status,
                resolved_by: escalation.resolved_by.clone(),
                resolved_at: Some(now.to_string()),
                receipt: Some(self.pending_envelope(&receipt)),
            })
            })
        })
    }

    pub fn escalation_status(&self, escalation_id: &str) -> Result<EscalationStatusView> {
        ids::check_identifier("escalation_id", escalation_id)?;
        let now = self.clock.now();
        self.read(|tx| {
            let e = tx
                .escalation(escalation_id)?
                .ok_or_else(|| Error::not_found("escalation_not_found", "escalation", escalation_id))?;
            let grant = tx.authorization(&e.authorization_id)?;
            Ok(escalation_view(&e, grant.as_ref(), now))
        })
    }

    /// An authorization that is neither revoked nor expired (prompts of dead grants cannot be resolved).
    fn live_authorization(&self, tx: &mut dyn Tx, authorization_id: &str, now: Timestamp) -> Result<Authorization> {
        let authorization = tx
            .authorization(authorization_id)?
            .ok_or_else(|| Error::not_found("authorization_not_found", "authorization", authorization_id))?;
        if authorization.revoked_at.is_some() {
            return Err(Error::conflict(
                "authorization_revoked",
                format!("authorization `{authorization_id}` is revoked"),
            ));
        }
        if now >= authorization.expires_at {
            return Err(Error::conflict(
                "authorization_expired",
                format!("authorization `{authorization_id}` has expired"),
            ));
        }
        Ok(authorization)
    }

    // ---------------------------------------------------------------------------------------------
    // Budgets

    /// Settles a budgeted check against its actual cost: the reservation is replaced by the actual
    /// amount, once. Settling again with the same amount returns the first settlement.
    pub fn settle_budget(
        &self,
        check_receipt_id: &str,
        actual_cost_micros: i64,
        idempotency_key: Option<&str>,
    ) -> Result<BudgetSettlement> {
        ids::check_identifier("check_receipt_id", check_receipt_id)?;
        if !(0..=MAX_SAFE_INTEGER).contains(&actual_cost_micros) {
            return Err(Error::invalid("actual_cost_micros", "must be a safe integer ≥ 0"));
        }
        let request = json!({"check_receipt_id": check_receipt_id, "actual_cost_micros": actual_cost_micros});
        self.write(|tx| {
            self.once(tx, "budget.settle", idempotency_key, &request, |tx| {
                let signing = self.signing(tx)?;
                let now = signing.now;
                let mut reservation = tx.reservation_for_receipt(check_receipt_id)?.ok_or_else(|| Error::NotFound {
                    code: "reservation_not_found",
                    message: format!("receipt `{check_receipt_id}` did not reserve budget"),
                })?;
                if let Some(settled) = &reservation.settlement {
                    if settled.actual_cost_micros == actual_cost_micros {
                        return Ok(settled.clone());
                    }
                    return Err(Error::conflict(
                        "budget_already_settled",
                        "this check was already settled with a different cost",
                    ));
                }
                let mut authorization = tx.authorization(&reservation.authorization_id)?.ok_or_else(|| {
                    UnreadableRow::new("reservation", check_receipt_id, "it names a missing authorization").error()
                })?;
                let estimated = reservation.estimated_cost_micros;
                let spent_before = authorization.budget_spent_micros;
                // Totals travel as JSON numbers and are signed: they stay safe integers, and one
                // this settlement would carry past 2^53-1 is refused before anything is written.
                let delta = actual_cost_micros
                    .checked_sub(estimated)
                    .filter(|d| (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(d));
                let spent_after = delta
                    .and_then(|delta| spent_before.checked_add(delta))
                    .map(|spent| spent.max(0))
                    .filter(|spent| *spent <= MAX_SAFE_INTEGER);
                let (Some(delta), Some(spent_after)) = (delta, spent_after) else {
                    return Err(Error::invalid(
                        "actual_cost_micros",
                        format!("would take the authorization's spent budget past {MAX_SAFE_INTEGER} micros"),
                    ));
                };
                authorization.budget_spent_micros = spent_after;
                tx.put_authorization(&authorization)?;
                let budget = json!({
                    "estimated_cost_micros": estimated, "actual_cost_micros": actual_cost_micros, "delta_micros": delta,
                    "spent_before_micros": spent_before, "spent_after_micros": spent_after,
                });
                let receipt = self.issue(
                    tx,
                    &signing,
                    ReceiptDraft {
                        receipt_id: None,
                        issued_at: now,
                        subject: Subject::Event("budget.settle"),
                        decision: "budget_settled",
                        reason: "budget_settled_by_api",
                        user_id: &authorization.user_id,
                        agent_id: &authorization.agent_id,
                        resource: None,
                        context: json!({"check_receipt_id": check_receipt_id, "budget": budget}),
                        authorization_id: Some(&authorization.authorization_id),
                        policy_ref: Some(&authorization.policy_ref),
                        policy_eval: None,
                    },
                )?;
                let settlement = BudgetSettlement {
                    check_receipt_id: check_receipt_id.to_string(),
                    authorization_id: authorization.authorization_id.clone(),
                    estimated_cost_micros: estimated,
                    actual_cost_micros,
                    delta_micros: delta,
                    spent_before_micros: spent_before,
                    spent_after_micros: spent_after,
                    receipt: ReceiptEnvelope::Signed { receipt: receipt.receipt },
                };
                reservation.settlement = Some(settlement.clone());
                tx.put_reservation(&reservation)?;
                Ok(settlement)
            })
        })
    }
}

/// The lifecycle calls of an engine under one idempotency key (`Allowly::idempotent`). Each call
/// runs at most once per key: its answer is stored with the key in the call's own transaction, so
/// a retry with the same request gets the first answer back from any process or server on the
/// same store, even when the first answer was lost on the way (a broken connection, an unknown
/// commit outcome). The same key with a different request is `409 idempotency_key_reused`; errors
/// are not stored, so a failed call can be retried under its key.
pub struct Idempotent<'e> {
    engine: &'e Allowly,
    key: Option<&'e str>,
}

impl Allowly {
    /// The lifecycle calls under `key` (`None`: plain calls, as `Allowly`'s own methods).
    pub fn idempotent<'e>(&'e self, key: Option<&'e str>) -> Idempotent<'e> {
        Idempotent { engine: self, key }
    }
}

impl Idempotent<'_> {
    pub fn create_policy(&self, body: &Value) -> Result<PolicyView> {
        self.engine.create_policy_keyed(self.key, body)
    }

    pub fn publish_policy(&self, body: &Value, created_by: &str) -> Result<PolicyPublished> {
        self.engine.publish_policy_keyed(self.key, body, created_by)
    }

    pub fn archive_policy(&self, policy_id: &str) -> Result<()> {
        self.engine.archive_policy_keyed(self.key, policy_id)
    }

    pub fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
    ) -> Result<AuthorizationRevoked> {
        self.engine.revoke_authorization_keyed(self.key, authorization_id, revoked_by, notes)
    }

    pub fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
    ) -> Result<ConfirmationResolved> {
        self.engine.resolve_confirmation_keyed(self.key, nonce, approved, ttl_seconds)
    }

    pub fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
    ) -> Result<EscalationResolved> {
        self.engine.resolve_escalation_keyed(self.key, escalation_id, resolution, resolved_by, note)
    }
}

/// The validated, normalized parts of an authorization create request.
struct ValidCreate {
    expires_at: Option<Timestamp>,
    metadata: Map<String, Value>,
}

/// The store's filter of an authorization list; a malformed member is an invalid request naming it.
fn authorization_filter(request: &ListAuthorizations) -> Result<AuthorizationFilter> {
    let member = |field: &str, value: &Option<String>| -> Result<Option<String>> {
        match value.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => ids::check_identifier(field, text).map(|()| Some(text.to_string())),
        }
    };
    Ok(AuthorizationFilter {
        user_id: member("user_id", &request.user_id)?,
        agent_id: member("agent_id", &request.agent_id)?,
    })
}

fn validate_create(request: &AuthorizationCreate) -> Result<ValidCreate> {
    let mut fields = Vec::new();
    let mut push =
        |field: &str, message: &str| fields.push(FieldError { field: field.into(), message: message.into() });
    let len = request.user_id.chars().count();
    if len == 0 || len > 128 {
        push("user_id", "must be 1 to 128 characters");
    }
    if let Some(problem) = ids::identifier_problem(&request.user_id) {
        push("user_id", &problem);
    }
    let len = request.policy_id.chars().count();
    if len == 0 || len > 128 {
        push("policy_id", "must be 1 to 128 characters");
    }
    if let Some(problem) = ids::identifier_problem(&request.policy_id) {
        push("policy_id", &problem);
    }
    if request.policy_version.is_some_and(|v| !(1..=MAX_SAFE_INTEGER).contains(&v)) {
        push("policy_version", "must be a positive safe integer");
    }
    if let Some(actions) = &request.actions {
        if actions.is_empty() || actions.len() > 32 {
            push("actions", "must list 1 to 32 actions");
        }
        for (i, action) in actions.iter().enumerate() {
            let len = action.chars().count();
            if len == 0 || len > 64 || actions[..i].contains(action) {
                push(&format!("actions[{i}]"), "must be a unique name of 1 to 64 characters");
            }
            if let Some(problem) = ids::identifier_problem(action) {
                push(&format!("actions[{i}]"), &problem);
            }
        }
    }
    if request.budget_limit_micros.is_some_and(|v| !(0..=MAX_SAFE_INTEGER).contains(&v)) {
        push("budget_limit_micros", "must be a safe integer ≥ 0");
    }
    if let Some(replaces) = &request.replaces {
        if replaces.is_empty() || replaces.chars().count() > 128 || ids::identifier_problem(replaces).is_some() {
            push("replaces", "must be an authorization id");
        }
    }
    let expires_at = match &request.expires_at {
        None => None,
        Some(text) => match Timestamp::parse_input(text) {
            Ok(at) => Some(at),
            Err(message) => {
                push("expires_at", message);
                None
            }
        },
    };
    let mut text_problems = Vec::new();
    // `null` is the member left out, as over HTTP.
    let metadata = match request.metadata.clone().filter(|m| !m.is_null()).unwrap_or(Value::Object(Map::new())) {
        Value::Object(map) => {
            let value = Value::Object(map);
            match canonical::to_canonical_vec(&value) {
                Ok(bytes) if bytes.len() > MAX_METADATA_BYTES => {
                    push("metadata", "must be at most 4096 bytes of canonical JSON")
                }
                // Walked only once canonical JSON bounded its depth.
                Ok(_) => free_text_in(&value, "metadata", &mut text_problems),
                Err(err) => push("metadata", &err.to_string()),
            }
            match value {
                Value::Object(map) => map,
                _ => Map::new(),
            }
        }
        _ => {
            push("metadata", "must be an object");
            Map::new()
        }
    };
    fields.extend(text_problems);
    if let Some(first) = fields.first() {
        let message = format!("invalid `{}`: {}", first.field, first.message);
        return Err(Error::InvalidRequest { message, fields });
    }
    Ok(ValidCreate { expires_at, metadata })
}

/// Why free text (notes, metadata) cannot be stored: a NUL, which neither a C string nor a
/// PostgreSQL text value can hold, or another control character but tab, line feed and carriage
/// return, which could rewrite what a terminal or a log shows. Names have the stricter
/// [`ids::identifier_problem`].
pub(super) fn free_text_problem(text: &str) -> Option<String> {
    let (at, c) = text.chars().enumerate().find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))?;
    Some(format!(
        "must not contain control characters other than tab and line breaks (U+{:04X} at character {})",
        u32::from(c),
        at + 1
    ))
}

/// Field errors for the keys and strings of `value` that [`free_text_problem`] refuses, by path.
fn free_text_in(value: &Value, path: &str, fields: &mut Vec<FieldError>) {
    match value {
        Value::String(text) => {
            if let Some(message) = free_text_problem(text) {
                fields.push(FieldError { field: path.to_string(), message });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                free_text_in(item, &format!("{path}[{i}]"), fields);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let at = format!("{path}.{key}");
                if let Some(message) = free_text_problem(key) {
                    fields.push(FieldError { field: at.clone(), message: format!("key {message}") });
                }
                free_text_in(item, &at, fields);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn policy_view(edition: &PolicyEdition) -> PolicyView {
    PolicyView {
        policy_ref: edition.policy_ref.clone(),
        definition: edition.definition.clone(),
        description: edition.description.clone(),
        created_by: None,
        created_at: Some(edition.created_at.to_string()),
        deleted_at: edition.archived_at.map(|t| t.to_string()),
    }
}

/// A prompt's status, `authority_status` and `expires_at` as its status view shows them. The prompt's
/// authorization bounds it: once that is revoked or expired, a pending prompt reads `expired` (it can
/// no longer be resolved; its window ends then) and an approval that was still open reads `revoked`
/// or `expired`, never `available` for what no check would allow. An approval whose authorization
/// cannot be found reads `unknown`.
fn standing(
    grant: Option<&Authorization>,
    status: PromptStatus,
    expires_at: Timestamp,
    consumed: bool,
    now: Timestamp,
) -> (PromptStatus, &'static str, Timestamp) {
    let ended = match grant {
        None => None,
        Some(a) => match a.revoked_at {
            Some(at) => Some((at, "revoked")),
            None if now >= a.expires_at => Some((a.expires_at, "expired")),
            None => None,
        },
    };
    match status {
        PromptStatus::Pending => {
            let end = ended.map_or(expires_at, |(at, _)| at.min(expires_at));
            (if now < end { PromptStatus::Pending } else { PromptStatus::Expired }, "none", end)
        }
        PromptStatus::Approved => {
            let authority = match ended {
                _ if consumed => "consumed",
                _ if grant.is_none() => "unknown",
                Some((at, why)) if at < expires_at => why,
                _ if now < expires_at => "available",
                _ => "expired",
            };
            (status, authority, expires_at)
        }
        PromptStatus::Rejected | PromptStatus::Expired => (status, "none", expires_at),
    }
}

fn authorization_view(a: &Authorization, now: Timestamp) -> AuthorizationView {
    AuthorizationView {
        authorization_id: a.authorization_id.clone(),
        user_id: a.user_id.clone(),
        agent_id: a.agent_id.clone(),
        policy_ref: a.policy_ref.clone(),
        actions: a.actions.clone(),
        status: a.status(now),
        created_at: a.created_at.to_string(),
        expires_at: a.expires_at.to_string(),
        revoked_at: a.revoked_at.map(|t| t.to_string()),
        budget_limit_micros: a.budget_limit_micros,
        budget_spent_micros: a.budget_spent_micros,
        metadata: a.metadata.clone(),
        replaces: a.replaces.clone(),
        superseded_by: a.superseded_by.clone(),
    }
}

/// A confirmation's status as it stands at `now` (`GET /v1/confirmations/{id}/status`).
fn confirmation_view(c: &Confirmation, grant: Option<&Authorization>, now: Timestamp) -> ConfirmationStatusView {
    let (status, authority, expires_at) = standing(grant, c.status, c.expires_at, false, now);
    ConfirmationStatusView {
        confirmation_id: c.confirmation_id.clone(),
        authorization_id: c.authorization_id.clone(),
        action: c.action.clone(),
        resource: c.resource.clone(),
        status,
        expires_at: expires_at.to_string(),
        resolved_at: c.resolved_at.filter(|_| status != PromptStatus::Expired).map(|t| t.to_string()),
        source_receipt_id: Some(c.source_receipt_id.clone()),
        resolution_receipt_id: c.resolution_receipt_id.clone(),
        child_authorization_id: (authority == "available").then(|| c.authorization_id.clone()),
        authority_status: authority.into(),
        authority_expires_at: (authority == "available").then(|| c.expires_at.to_string()),
    }
}

/// An escalation's status as it stands at `now` (`GET /v1/escalations/{id}`).
fn escalation_view(e: &Escalation, grant: Option<&Authorization>, now: Timestamp) -> EscalationStatusView {
    let consumed = e.consumed_at.is_some();
    let (status, authority, expires_at) = standing(grant, e.status, e.expires_at, consumed, now);
    EscalationStatusView {
        escalation_id: e.escalation_id.clone(),
        authorization_id: e.authorization_id.clone(),
        action: e.action.clone(),
        resource: e.resource.clone(),
        status,
        expires_at: expires_at.to_string(),
        resolved_at: e.resolved_at.filter(|_| status != PromptStatus::Expired).map(|t| t.to_string()),
        source_receipt_id: Some(e.source_receipt_id.clone()),
        resolution_receipt_id: e.resolution_receipt_id.clone(),
        authority_status: authority.into(),
        consumed_at: e.consumed_at.map(|t| t.to_string()),
    }
}

/// The stored status to list by for a status as it stands now: a prompt stored as pending may
/// have expired since, so an expired one can be stored either way.
fn stored_status(status: Option<PromptStatus>) -> Option<PromptStatus> {
    status.filter(|status| *status != PromptStatus::Expired)
}

/// A page of listed prompts: `rows` as the store read them (`limit + 1` at most, to learn whether
/// there is more), `items` those that passed the status filter. The cursor is the last row read,
/// so the next page starts after it even when the filter dropped it.
fn filtered_page<R, T>(
    mut rows: Vec<Loaded<R>>,
    items: Vec<T>,
    limit: usize,
    id_of_row: impl Fn(&R) -> String,
    id_of_item: impl Fn(&T) -> &String,
) -> Page<T> {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if has_more {
        rows.last().map(|row| match row {
            Ok(row) => id_of_row(row),
            Err(unreadable) => unreadable.id.clone(),
        })
    } else {
        None
    };
    let kept: std::collections::HashSet<String> = rows.iter().flatten().map(&id_of_row).collect();
    let unreadable = rows
        .into_iter()
        .filter_map(Result::err)
        .map(|row| {
            let error = row.error();
            UnreadableItem { id: row.id, code: error.code().to_string(), message: error.to_string() }
        })
        .collect();
    let items = items.into_iter().filter(|item| kept.contains(id_of_item(item))).collect();
    Page { items, has_more, next_cursor, unreadable }
}

/// Cuts a sorted list to one page, with the cursor of the last row when more follow. Rows that do
/// not load count toward the page and are listed in `unreadable`.
pub(super) fn page<T>(mut rows: Vec<Loaded<T>>, limit: usize, cursor_of: impl Fn(&Loaded<T>) -> String) -> Page<T> {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if has_more { rows.last().map(cursor_of) } else { None };
    loaded_page(rows, has_more, next_cursor)
}

/// The page of `rows`, those that do not load listed in `unreadable`.
fn loaded_page<T>(rows: Vec<Loaded<T>>, has_more: bool, next_cursor: Option<String>) -> Page<T> {
    let (mut items, mut unreadable) = (Vec::with_capacity(rows.len()), Vec::new());
    for row in rows {
        match row {
            Ok(item) => items.push(item),
            Err(row) => {
                let error = row.error();
                unreadable.push(UnreadableItem {
                    id: row.id,
                    code: error.code().to_string(),
                    message: error.to_string(),
                });
            }
        }
    }
    Page { items, has_more, next_cursor, unreadable }
}

/// The policy id of a listed edition (an unreadable one is listed as `policy_id@version`).
fn edition_policy_id(edition: &Loaded<PolicyEdition>) -> &str {
    match edition {
        Ok(edition) => &edition.policy_ref.policy_id,
        Err(row) => row.id.split('@').next().unwrap_or_default(),
    }
}
