//! What `allowly` prints: the HTTP API's JSON with `--json`, short aligned text for people otherwise.

use std::fmt::Write as _;
use std::io::Write as _;

use allowly_core::model::{
    AuthorizationCreated, AuthorizationRevoked, AuthorizationView, BudgetSettlement, CheckResponse, CheckpointInfo,
    ConfirmationResolved, ConfirmationStatusView, EscalationResolved, EscalationStatusView, Page, PolicyView,
};
use allowly_core::policy::Decision;
use allowly_core::receipt::KeyDocument;
use allowly_core::Error;
use serde::Serialize;
use serde_json::{json, Value};

/// Where results and errors go, in the format the caller asked for.
#[derive(Clone, Debug)]
pub struct Output {
    pub json: bool,
    /// How to invoke this program again on the same workspace, for suggested follow-up commands.
    pub program: String,
}

impl Output {
    /// Prints `value` as pretty JSON with `--json`, or the text `human` builds from it.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) -> Result<(), Error> {
        if self.json {
            self.json_value(value)
        } else {
            stdout(&human(value))
        }
    }

    /// Prints JSON whatever the format (documents meant for other tools, e.g. the key document).
    pub fn json_value<T: Serialize>(&self, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|err| Error::io(format!("cannot encode output: {err}")).caused_by(err))?;
        stdout(&text)
    }

    /// Reports a failed command: `{"error":{...}}` on stdout with `--json` (so a script reading
    /// stdout always gets a document), `error[code]: message` on stderr otherwise.
    pub fn error(&self, err: &Error) {
        if self.json {
            let body = json!({"error": {"code": err.code(), "message": err.to_string(), "fields": err.fields()}});
            // Nothing more can be reported if stdout is gone; the exit code still says it failed.
            let _ = self.json_value(&body);
        } else {
            stderr(&error_text(err));
        }
    }
}

/// `error[code]: message`, or for several invalid fields (a policy with many mistakes) one line
/// per field, since the message lists them all on one line.
fn error_text(err: &Error) -> String {
    let fields = err.fields();
    if fields.len() <= 1 {
        return format!("error[{}]: {err}", err.code());
    }
    let mut text = format!("error[{}]: {} invalid fields", err.code(), fields.len());
    for field in fields {
        let _ = write!(text, "\n  `{}`: {}", field.field, field.message);
    }
    text
}

/// Writes one block of text and a newline to stdout. A closed pipe (`allowly ... | head`) is not
/// an error worth reporting; other write failures are.
pub fn stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io(format!("cannot write output: {err}")).caused_by(err))
        }
        _ => Ok(()),
    }
}

pub fn stderr(text: &str) {
    // stderr is where failures are reported; if it is gone there is nowhere left to say so.
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.trim_end_matches('\n').to_string()
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

fn micros(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

// -------------------------------------------------------------------------------------------------
// Workspace and policies

/// What `init` reports.
#[derive(Debug, Serialize)]
pub struct InitReport {
    pub workspace_id: String,
    pub created: bool,
    pub key_id: String,
    pub public_key_fingerprint: String,
    pub data_path: String,
    pub database: String,
    pub engine_version: String,
}

pub fn init(report: &InitReport) -> String {
    let headline = if report.created { "created workspace" } else { "workspace already exists" };
    let rows = vec![
        vec!["workspace".into(), report.workspace_id.clone()],
        vec!["signing key".into(), format!("{}  {}", report.key_id, report.public_key_fingerprint)],
        vec!["data".into(), report.data_path.clone()],
        vec!["database".into(), report.database.clone()],
    ];
    format!("{headline}\n{}\n\nverifiers trust the workspace id and key fingerprint above", table(&rows))
}

pub fn policy(view: &PolicyView) -> String {
    let r = &view.policy_ref;
    let mut rows = vec![
        vec!["policy".into(), r.policy_id.clone()],
        vec!["version".into(), r.policy_version.to_string()],
        vec!["definition_sha256".into(), r.definition_sha256.clone()],
        vec!["agent".into(), view.definition.get("agent_id").and_then(Value::as_str).unwrap_or("-").to_string()],
        vec!["created".into(), or_dash(view.created_at.as_deref())],
    ];
    if let Some(description) = &view.description {
        rows.push(vec!["description".into(), description.clone()]);
    }
    if let Some(archived) = &view.deleted_at {
        rows.push(vec!["archived".into(), archived.clone()]);
    }
    let mut text = table(&rows);
    text.push_str("\n\nactions:\n");
    let actions = view.definition.get("actions").and_then(Value::as_array).cloned().unwrap_or_default();
    let action_rows: Vec<Vec<String>> = actions
        .iter()
        .map(|entry| {
            let policy = entry.get("policy").unwrap_or(&Value::Null);
            let text_of = |key: &str| policy.get(key).and_then(Value::as_str).unwrap_or("").to_string();
            let rules = policy.get("rules").and_then(Value::as_array).map_or(0, Vec::len);
            vec![
                format!("  {}", text_of("action")),
                text_of("decision"),
                if policy.get("target").is_some_and(|t| !t.is_null()) { text_of("target") } else { "-".into() },
                format!("{rules} rule{}", if rules == 1 { "" } else { "s" }),
            ]
        })
        .collect();
    text.push_str(&table(&action_rows));
    text
}

pub fn policy_with_definition(view: &PolicyView) -> String {
    format!("{}\n\ndefinition:\n{}", policy(view), pretty(&view.definition))
}

pub fn policies(page: &Page<PolicyView>) -> String {
    if page.items.is_empty() && page.unreadable.is_empty() {
        return "no policies yet: publish one with `allowly policies apply FILE`".into();
    }
    let mut rows = vec![vec!["POLICY".into(), "VERSION".into(), "AGENT".into(), "ACTIONS".into(), "CREATED".into()]];
    for view in &page.items {
        let actions = view.definition.get("actions").and_then(Value::as_array).map_or(0, Vec::len);
        rows.push(vec![
            view.policy_ref.policy_id.clone(),
            view.policy_ref.policy_version.to_string(),
            view.definition.get("agent_id").and_then(Value::as_str).unwrap_or("-").to_string(),
            actions.to_string(),
            or_dash(view.created_at.as_deref()),
        ]);
    }
    with_cursor(table(&rows), page)
}

fn with_cursor<T>(mut text: String, page: &Page<T>) -> String {
    // Rows the store holds but cannot read are named, so they are neither hidden nor mistaken for none.
    for row in &page.unreadable {
        let _ = write!(text, "\n\nunreadable {}: {} ({})", row.id, row.message, row.code);
    }
    if let Some(cursor) = page.next_cursor.as_deref().filter(|_| page.has_more) {
        let _ = write!(text, "\n\nmore: --cursor {cursor}");
    }
    text
}

// -------------------------------------------------------------------------------------------------
// Authorizations

pub fn authorization_created(created: &AuthorizationCreated) -> String {
    let r = &created.policy_ref;
    let mut rows = vec![
        vec!["authorization".into(), created.authorization_id.clone()],
        vec!["policy".into(), format!("{} v{}", r.policy_id, r.policy_version)],
        vec!["actions".into(), created.actions.join(", ")],
        vec!["expires".into(), created.expires_at.clone()],
        vec!["budget limit".into(), micros(created.budget_limit_micros)],
        vec!["receipt".into(), envelope_id(&created.receipt)],
    ];
    if let Some(replaced) = &created.replaced_authorization_id {
        rows.push(vec!["replaces".into(), format!("{replaced} (revoked)")]);
    }
    table(&rows)
}

fn envelope_id(envelope: &allowly_core::model::ReceiptEnvelope) -> String {
    use allowly_core::model::ReceiptEnvelope;
    match envelope {
        ReceiptEnvelope::Pending { receipt_id, .. } => receipt_id.clone(),
        ReceiptEnvelope::Signed { receipt } => allowly_core::receipt::decode_receipt(&receipt.to_value())
            .ok()
            .and_then(|payload| payload.get("receipt_id").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "-".into()),
    }
}

pub fn authorization(view: &AuthorizationView) -> String {
    let r = &view.policy_ref;
    let status =
        serde_json::to_value(view.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut rows = vec![
        vec!["authorization".into(), view.authorization_id.clone()],
        vec!["status".into(), status],
        vec!["user".into(), view.user_id.clone()],
        vec!["agent".into(), view.agent_id.clone()],
        vec!["policy".into(), format!("{} v{} ({})", r.policy_id, r.policy_version, r.definition_sha256)],
        vec!["actions".into(), view.actions.join(", ")],
        vec!["created".into(), view.created_at.clone()],
        vec!["expires".into(), view.expires_at.clone()],
        vec!["budget".into(), format!("{} spent of {}", view.budget_spent_micros, micros(view.budget_limit_micros))],
    ];
    if let Some(revoked) = &view.revoked_at {
        rows.push(vec!["revoked".into(), revoked.clone()]);
    }
    if let Some(by) = &view.superseded_by {
        rows.push(vec!["superseded by".into(), by.clone()]);
    }
    if let Some(replaces) = &view.replaces {
        rows.push(vec!["replaces".into(), replaces.clone()]);
    }
    if !view.metadata.is_empty() {
        rows.push(vec!["metadata".into(), Value::Object(view.metadata.clone()).to_string()]);
    }
    table(&rows)
}

pub fn authorizations(page: &Page<AuthorizationView>) -> String {
    if page.items.is_empty() && page.unreadable.is_empty() {
        return "no authorizations yet: create one with `allowly authorizations create`".into();
    }
    let mut rows = vec![vec![
        "AUTHORIZATION".into(),
        "STATUS".into(),
        "USER".into(),
        "AGENT".into(),
        "POLICY".into(),
        "EXPIRES".into(),
        "BUDGET".into(),
    ]];
    for view in &page.items {
        let status =
            serde_json::to_value(view.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        rows.push(vec![
            view.authorization_id.clone(),
            status,
            view.user_id.clone(),
            view.agent_id.clone(),
            format!("{} v{}", view.policy_ref.policy_id, view.policy_ref.policy_version),
            view.expires_at.clone(),
            format!("{}/{}", view.budget_spent_micros, micros(view.budget_limit_micros)),
        ]);
    }
    with_cursor(table(&rows), page)
}

pub fn authorization_revoked(revoked: &AuthorizationRevoked) -> String {
    let mut text = format!(
        "revoked {} at {}\nreceipt {}",
        revoked.authorization_id,
        revoked.revoked_at,
        envelope_id(&revoked.receipt)
    );
    if !revoked.revoked_confirmations.is_empty() {
        let _ = write!(text, "\nclosed pending confirmations: {}", revoked.revoked_confirmations.join(", "));
    }
    text
}

// -------------------------------------------------------------------------------------------------
// Checks

pub fn check(response: &CheckResponse, program: &str) -> String {
    let rows: Vec<Vec<String>> = response
        .results
        .iter()
        .map(|(action, result)| {
            vec![
                action.to_string(),
                result.decision.as_str().to_string(),
                result.reason.clone(),
                result.receipt_id.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut text = table(&rows);
    for (action, result) in response.results.iter() {
        match result.decision {
            Decision::Confirm => {
                let _ = write!(
                    text,
                    "\n\n{action}: waiting for the user's confirmation {} until {}",
                    result.confirmation_id.as_deref().unwrap_or("-"),
                    result.confirm_expires_at.as_deref().unwrap_or("-"),
                );
                if let Some(nonce) = &result.confirm_nonce {
                    let _ = write!(text, "\n  approve: {program} confirmations approve {nonce}");
                    let _ = write!(text, "\n  reject:  {program} confirmations reject {nonce}");
                }
            }
            Decision::Escalate => {
                let id = result.escalation_id.as_deref().unwrap_or("-");
                let _ = write!(
                    text,
                    "\n\n{action}: escalation {id} routed to {} until {}",
                    result.escalation_to.as_deref().unwrap_or("an approver"),
                    result.escalation_expires_at.as_deref().unwrap_or("-"),
                );
                let _ = write!(text, "\n  approve: {program} escalations approve {id} --resolved-by <approver>");
                let _ = write!(text, "\n  reject:  {program} escalations reject {id} --resolved-by <approver>");
            }
            Decision::Deny if result.superseded_by.is_some() => {
                let _ = write!(text, "\n\n{action}: superseded by {}", result.superseded_by.as_deref().unwrap_or("-"));
            }
            _ => {}
        }
    }
    // The budget is the same for every action of a check; report it once.
    let budgeted = response
        .results
        .iter()
        .find_map(|(_, r)| r.budget.as_ref().map(|b| (b, r.receipt_id.as_deref().unwrap_or("-"))));
    if let Some((budget, receipt_id)) = budgeted {
        match budget.spent_after_micros {
            Some(after) => {
                let _ = write!(
                    text,
                    "\n\nbudget: reserved {} micros, {after} of {} spent\n  settle: {program} budget settle --check-receipt-id {receipt_id} --actual-cost-micros <actual>",
                    budget.estimated_cost_micros, budget.limit_micros,
                );
            }
            None => {
                let _ = write!(
                    text,
                    "\n\nbudget: nothing reserved; {} of {} micros spent, this check estimated {}",
                    budget.spent_micros, budget.limit_micros, budget.estimated_cost_micros,
                );
            }
        }
    }
    text
}

// -------------------------------------------------------------------------------------------------
// Confirmations, escalations, budgets

pub fn confirmation_resolved(resolved: &ConfirmationResolved) -> String {
    let receipt = resolved.receipt.as_ref().map_or_else(|| "-".into(), envelope_id);
    match &resolved.expires_at {
        Some(until) => format!("confirmation approved: the action is allowed until {until}\nreceipt {receipt}"),
        None => format!("confirmation {}\nreceipt {receipt}", resolved.decision.replace('_', " ")),
    }
}

pub fn confirmation_status(view: &ConfirmationStatusView) -> String {
    let status =
        serde_json::to_value(view.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    table(&[
        vec!["confirmation".into(), view.confirmation_id.clone()],
        vec!["status".into(), status],
        vec!["authorization".into(), view.authorization_id.clone()],
        vec!["action".into(), view.action.clone()],
        vec!["resource".into(), or_dash(view.resource.as_deref())],
        vec!["expires".into(), view.expires_at.clone()],
        vec!["authority".into(), view.authority_status.clone()],
    ])
}

pub fn escalation_resolved(resolved: &EscalationResolved) -> String {
    let receipt = resolved.receipt.as_ref().map_or_else(|| "-".into(), envelope_id);
    let by = resolved.resolved_by.as_deref().unwrap_or("-");
    let mut text = format!("escalation {} {} by {by}\nreceipt {receipt}", resolved.escalation_id, resolved.status);
    if resolved.status == "approved" {
        text.push_str("\nthe next check of this action is allowed once");
    }
    text
}

pub fn escalation_status(view: &EscalationStatusView) -> String {
    let status =
        serde_json::to_value(view.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    table(&[
        vec!["escalation".into(), view.escalation_id.clone()],
        vec!["status".into(), status],
        vec!["authorization".into(), view.authorization_id.clone()],
        vec!["action".into(), view.action.clone()],
        vec!["resource".into(), or_dash(view.resource.as_deref())],
        vec!["expires".into(), view.expires_at.clone()],
        vec!["authority".into(), view.authority_status.clone()],
        vec!["consumed".into(), or_dash(view.consumed_at.as_deref())],
    ])
}

pub fn budget_settlement(settled: &BudgetSettlement) -> String {
    table(&[
        vec!["settled".into(), settled.check_receipt_id.clone()],
        vec!["authorization".into(), settled.authorization_id.clone()],
        vec!["estimated".into(), settled.estimated_cost_micros.to_string()],
        vec!["actual".into(), settled.actual_cost_micros.to_string()],
        vec!["spent".into(), format!("{} -> {}", settled.spent_before_micros, settled.spent_after_micros)],
        vec!["receipt".into(), envelope_id(&settled.receipt)],
    ])
}

// -------------------------------------------------------------------------------------------------
// Receipts, keys, checkpoints

/// One line of a receipt listing from its (unverified, display-only) payload.
pub fn receipt_row(payload: &Value) -> Vec<String> {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or("-").to_string();
    let subject = payload.get("action").or_else(|| payload.get("event")).and_then(Value::as_str).unwrap_or("-");
    vec![text("issued_at"), text("receipt_id"), subject.to_string(), text("decision"), text("reason")]
}

pub fn receipts(payloads: &[Value]) -> String {
    if payloads.is_empty() {
        return "no receipts yet".into();
    }
    let mut rows =
        vec![vec!["ISSUED".into(), "RECEIPT".into(), "ACTION/EVENT".into(), "DECISION".into(), "REASON".into()]];
    rows.extend(payloads.iter().map(receipt_row));
    table(&rows)
}

pub fn receipt(payload: &Value) -> String {
    let text = |key: &str| match payload.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    };
    let (subject_label, subject) = match payload.get("action") {
        Some(action) => ("action", action.as_str().unwrap_or("-").to_string()),
        None => ("event", text("event")),
    };
    let policy = match payload.get("policy_ref") {
        Some(Value::Object(r)) => format!(
            "{} v{}",
            r.get("policy_id").and_then(Value::as_str).unwrap_or("-"),
            r.get("policy_version").map_or_else(|| "-".into(), Value::to_string)
        ),
        _ => "-".into(),
    };
    let rows = vec![
        vec!["receipt".into(), text("receipt_id")],
        vec!["issued".into(), text("issued_at")],
        vec![subject_label.into(), subject],
        vec!["decision".into(), text("decision")],
        vec!["reason".into(), text("reason")],
        vec!["user".into(), text("user_id")],
        vec!["agent".into(), text("agent_id")],
        vec!["authorization".into(), text("authorization_id")],
        vec!["policy".into(), policy],
        vec!["resource".into(), text("resource")],
    ];
    let context = payload.get("context").cloned().unwrap_or(Value::Null);
    let mut out = format!("{}\n\ncontext:\n{}", table(&rows), pretty(&context));
    if let Some(eval) = payload.get("policy_eval") {
        let _ = write!(out, "\n\npolicy_eval:\n{}", pretty(eval));
    }
    out
}

pub fn keys(document: &KeyDocument) -> String {
    let mut rows = vec![vec!["KEY".into(), "FINGERPRINT".into(), "ACTIVE FROM".into(), "ACTIVE UNTIL".into()]];
    for key in &document.keys {
        rows.push(vec![
            key.key_id.clone(),
            key.public_key_fingerprint.clone(),
            key.active_from.clone(),
            key.active_until.clone().unwrap_or_else(|| "(current)".into()),
        ]);
    }
    format!("workspace {}\n{}", document.workspace_id, table(&rows))
}

pub fn key_rotated(key: &allowly_core::receipt::PublishedKey) -> String {
    format!(
        "new signing key {}  {}\nactive from {}; earlier keys stay published so their receipts keep verifying\nverifiers must add this fingerprint to their trusted keys",
        key.key_id, key.public_key_fingerprint, key.active_from
    )
}

pub fn checkpoints(created: &[CheckpointInfo]) -> String {
    if created.is_empty() {
        return "no new checkpoint: every whole UTC day with receipts is checkpointed already (today is checkpointed tomorrow)".into();
    }
    let mut rows = vec![vec!["DAY".into(), "CHECKPOINT".into(), "RECEIPTS".into(), "MERKLE ROOT".into()]];
    for checkpoint in created {
        rows.push(vec![
            checkpoint.period_start.chars().take(10).collect(),
            checkpoint.receipt_id.clone(),
            checkpoint.receipt_count.to_string(),
            checkpoint.merkle_root.clone(),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use allowly_core::{Error, FieldError};

    #[test]
    fn several_invalid_fields_print_one_per_line() {
        let one = Error::invalid("agent_id", "is required");
        assert_eq!(super::error_text(&one), "error[invalid_request]: invalid `agent_id`: is required");
        let field = |field: &str, message: &str| FieldError { field: field.into(), message: message.into() };
        let three = Error::InvalidRequest {
            message: "the policy has 3 errors: ...".into(),
            fields: vec![
                field("agent_id", "is required"),
                field("actions[0].policy.decision", "must be one of allow, deny, confirm, escalate"),
                field("actions[0].policy.rules[0].conditions[0].value", "must be a boolean"),
            ],
        };
        assert_eq!(
            super::error_text(&three),
            "error[invalid_request]: 3 invalid fields\n  `agent_id`: is required\n  \
             `actions[0].policy.decision`: must be one of allow, deny, confirm, escalate\n  \
             `actions[0].policy.rules[0].conditions[0].value`: must be a boolean"
        );
    }
}
