//! The one dispatch of the operation catalog onto the engine's methods.

use super::Allowly;
use crate::error::{Error, Result};
use crate::model::ReceiptEnvelope;
use crate::ops::{Answer, ApiKeyList, Request};
use crate::receipt::{KeyDocument, PublishedKey};

impl Allowly {
    /// Runs any operation of the catalog and answers what the HTTP API answers for it. `created_by`
    /// names who publishes a policy edition (`embedded`, or `api_key:<key id>` on a server).
    ///
    /// A check is decided as [`Allowly::check`] decides it, without the fallback an SDK adds.
    pub fn execute(&self, request: Request, created_by: &str) -> Result<Answer> {
        Ok(match request {
            Request::Check(check) => Answer::Check(self.check(&check)?),
            Request::CreateAuthorization(create) => Answer::CreateAuthorization(self.create_authorization(&create)?),
            Request::ListAuthorizations(list) => Answer::ListAuthorizations(self.list_authorizations(&list)?),
            Request::GetAuthorization(get) => Answer::GetAuthorization(self.get_authorization(&get.authorization_id)?),
            Request::RevokeAuthorization(revoke) => {
                Answer::RevokeAuthorization(self.idempotent(revoke.idempotency_key.as_deref()).revoke_authorization(
                    &revoke.authorization_id,
                    revoke.revoked_by.as_deref(),
                    revoke.notes.as_deref(),
                )?)
            }
            Request::ConfirmationStatus(status) => {
                Answer::ConfirmationStatus(self.confirmation_status(&status.confirmation_id)?)
            }
            Request::ResolveConfirmation(resolve) => {
                Answer::ResolveConfirmation(self.idempotent(resolve.idempotency_key.as_deref()).resolve_confirmation(
                    &resolve.nonce,
                    resolve.approved,
                    resolve.ttl_seconds,
                )?)
            }
            Request::ListConfirmations(list) => {
                let (limit, cursor) = list.page.validate()?;
                Answer::ListConfirmations(self.list_confirmations(list.status, limit, cursor)?)
            }
            Request::ListEscalations(list) => {
                let (limit, cursor) = list.page.validate()?;
                Answer::ListEscalations(self.list_escalations(list.status, limit, cursor)?)
            }
            Request::EscalationStatus(status) => {
                Answer::EscalationStatus(self.escalation_status(&status.escalation_id)?)
            }
            Request::ResolveEscalation(resolve) => {
                Answer::ResolveEscalation(self.idempotent(resolve.idempotency_key.as_deref()).resolve_escalation(
                    &resolve.escalation_id,
                    resolve.resolution,
                    &resolve.resolved_by,
                    resolve.note.as_deref(),
                )?)
            }
            Request::SettleBudget(settle) => Answer::SettleBudget(self.settle_budget(
                &settle.check_receipt_id,
                settle.actual_cost_micros,
                settle.idempotency_key.as_deref(),
            )?),
            Request::GetReceipt(get) => {
                Answer::GetReceipt(ReceiptEnvelope::Signed { receipt: self.receipt(&get.receipt_id)?.receipt })
            }
            Request::ListReceipts(list) => Answer::ListReceipts(self.list_receipts(&list)?),
            Request::VerifyReceipts(verify) => Answer::VerifyReceipts(self.verify_receipts(&verify)?),
            Request::CreatePolicy(create) => Answer::CreatePolicy(
                self.idempotent(create.idempotency_key.as_deref()).create_policy(&create.body.into())?,
            ),
            Request::ListPolicies(list) => {
                let (limit, cursor) = list.page.validate()?;
                Answer::ListPolicies(self.list_policies(limit, cursor)?)
            }
            Request::GetPolicy(get) => Answer::GetPolicy(match get.version {
                None => self.get_policy(&get.policy_id)?,
                Some(version) if version >= 1 => self.get_policy_edition(&get.policy_id, version)?,
                Some(_) => return Err(Error::invalid("version", "must be a positive integer")),
            }),
            Request::ArchivePolicy(archive) => Answer::ArchivePolicy(
                self.idempotent(archive.idempotency_key.as_deref()).archive_policy(&archive.policy_id)?,
            ),
            Request::PreviewPolicy(preview) => {
                let context = preview.context.unwrap_or_else(|| serde_json::json!({}));
                Answer::PreviewPolicy(self.preview_policy(&preview.definition, &preview.action, &context)?)
            }
            Request::PublishPolicy(publish) => Answer::PublishPolicy(
                self.idempotent(publish.idempotency_key.as_deref()).publish_policy(&publish.body.into(), created_by)?,
            ),
            Request::ListApiKeys(_) => Answer::ListApiKeys(ApiKeyList { items: self.list_api_keys()? }),
            Request::CreateApiKey(create) => {
                Answer::CreateApiKey(self.create_api_key(create.kind, create.label.as_deref())?)
            }
            Request::RevokeApiKey(revoke) => Answer::RevokeApiKey(self.revoke_api_key(&revoke.key_id)?),
            Request::RotateSigningKey(_) => Answer::RotateSigningKey(self.rotate_signing_key()?),
            Request::GetKeyDocument(get) => {
                if get.workspace_id != self.workspace_id() {
                    return Err(Error::not_found("workspace_not_found", "workspace", &get.workspace_id));
                }
                Answer::GetKeyDocument(self.key_document()?)
            }
        })
    }

    /// Retires the signing key and starts a new one: [`Allowly::rotate_key`], answered as the key
    /// document publishes the new key.
    pub fn rotate_signing_key(&self) -> Result<PublishedKey> {
        let fresh = self.rotate_key()?;
        KeyDocument::from_records(self.workspace_id(), &[fresh])
            .keys
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("the rotated key was not published"))
    }
}
