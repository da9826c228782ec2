//! The workspace at a glance, for the console's Overview: decisions per day, what is denied most,
//! approvals waiting, budgets against their caps. Every number is one a filtered audit lookup
//! (`GET /v1/receipts`, the approval lists) would give for the same data.

use std::collections::HashMap;

use super::Allowly;
use crate::error::Result;
use crate::model::{AuthorizationStatus, AuthorizationView, Page, PromptStatus};
use crate::ops::{ListAuthorizations, PageArgs};
use crate::time::Timestamp;

/// Days the overview covers, today included.
pub const OVERVIEW_DAYS: i64 = 30;
/// Entries in each "most denied" list.
const MOST_DENIED: usize = 5;
/// Budgeted authorizations shown against their caps.
const BUDGETS_SHOWN: usize = 8;
/// Active authorizations looked through for them (the store keeps no index of budgets).
const BUDGETS_SCANNED: usize = 2_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Overview {
    pub now: Timestamp,
    /// One entry per day, oldest first, the last one today (UTC).
    pub days: Vec<DayOfDecisions>,
    /// Denials of the covered days by action, then by reason: most first, at most five each.
    pub most_denied_actions: Vec<Counted>,
    pub most_denied_reasons: Vec<Counted>,
    /// Decisions issued in the minute before `now`.
    pub decisions_last_minute: u64,
    pub pending_confirmations: u64,
    pub pending_escalations: u64,
    /// When the longest-waiting pending confirmation or escalation was asked.
    pub oldest_pending: Option<Timestamp>,
    /// Active authorizations with a budget, the most used share first, at most eight (of the
    /// first 2,000 active ones in creation order).
    pub budgets: Vec<AuthorizationView>,
}

/// Action receipts of one day (UTC) by decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayOfDecisions {
    /// Midnight at the start of the day.
    pub day: Timestamp,
    pub allow: u64,
    pub confirm: u64,
    pub escalate: u64,
    pub deny: u64,
}

impl DayOfDecisions {
    pub fn total(&self) -> u64 {
        self.allow + self.confirm + self.escalate + self.deny
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub name: String,
    pub count: u64,
}

impl Allowly {
    /// The overview as it stands now.
    pub fn overview(&self) -> Result<Overview> {
        let now = self.clock.now();
        let first_day = now.start_of_day().plus_days(1 - OVERVIEW_DAYS);
        let (tallies, last_minute) =
            self.read(|tx| Ok((tx.tally_decisions(first_day)?, tx.tally_decisions(now.plus_seconds(-60))?)))?;

        let mut days: Vec<DayOfDecisions> =
            (0..OVERVIEW_DAYS).map(|n| DayOfDecisions { day: first_day.plus_days(n), ..Default::default() }).collect();
        let mut denied_actions: HashMap<&str, u64> = HashMap::new();
        let mut denied_reasons: HashMap<&str, u64> = HashMap::new();
        for tally in &tallies {
            let slot = usize::try_from(tally.day - first_day.day_number()).ok().and_then(|n| days.get_mut(n));
            if let Some(day) = slot {
                match tally.decision.as_str() {
                    "allow" => day.allow += tally.count,
                    "confirm" => day.confirm += tally.count,
                    "escalate" => day.escalate += tally.count,
                    "deny" => day.deny += tally.count,
                    _ => {}
                }
            }
            if tally.decision == "deny" {
                *denied_actions.entry(&tally.action).or_default() += tally.count;
                *denied_reasons.entry(tally.denial_reason.as_deref().unwrap_or("")).or_default() += tally.count;
            }
        }
        let (pending_confirmations, pending_escalations, oldest_pending) = self.pending_approvals()?;
        Ok(Overview {
            now,
            days,
            most_denied_actions: most(denied_actions),
            most_denied_reasons: most(denied_reasons),
            decisions_last_minute: last_minute.iter().map(|t| t.count).sum(),
            pending_confirmations,
            pending_escalations,
            oldest_pending,
            budgets: self.budgets_in_use()?,
        })
    }

    /// Pending confirmations, pending escalations, and when the oldest of them was asked.
    fn pending_approvals(&self) -> Result<(u64, u64, Option<Timestamp>)> {
        let (confirmations, oldest_confirmation) = every_page(
            |cursor| self.list_confirmations(Some(PromptStatus::Pending), super::MAX_PAGE_SIZE, cursor),
            |item| &item.created_at,
        )?;
        let (escalations, oldest_escalation) = every_page(
            |cursor| self.list_escalations(Some(PromptStatus::Pending), super::MAX_PAGE_SIZE, cursor),
            |item| &item.created_at,
        )?;
        let oldest = oldest_confirmation.into_iter().chain(oldest_escalation).min();
        Ok((confirmations, escalations, oldest))
    }

    /// Active authorizations with a budget (among the first [`BUDGETS_SCANNED`] active ones, in
    /// creation order), the largest share spent first.
    fn budgets_in_use(&self) -> Result<Vec<AuthorizationView>> {
        let share = |a: &AuthorizationView| match a.budget_limit_micros {
            Some(limit) if limit > 0 => a.budget_spent_micros as f64 / limit as f64,
            _ => 0.0,
        };
        let mut budgeted: Vec<AuthorizationView> = Vec::new();
        let (mut cursor, mut scanned) = (None::<String>, 0);
        while scanned < BUDGETS_SCANNED {
            let active = ListAuthorizations {
                status: Some(AuthorizationStatus::Active),
                page: PageArgs::new(super::MAX_PAGE_SIZE, cursor.as_deref()),
                ..ListAuthorizations::default()
            };
            let page = self.list_authorizations(&active)?;
            scanned += page.items.len().max(1);
            budgeted.extend(page.items.into_iter().filter(|a| a.budget_limit_micros.is_some()));
            match (page.has_more, page.next_cursor) {
                (true, Some(next)) => cursor = Some(next),
                _ => break,
            }
        }
        budgeted.sort_by(|a, b| share(b).total_cmp(&share(a)));
        budgeted.truncate(BUDGETS_SHOWN);
        Ok(budgeted)
    }
}

/// How many items the pages of a list hold in all, and the earliest `created_at` among them.
fn every_page<T>(
    mut page: impl FnMut(Option<&str>) -> Result<Page<T>>,
    created_at: impl Fn(&T) -> &str,
) -> Result<(u64, Option<Timestamp>)> {
    let (mut count, mut earliest) = (0, None::<Timestamp>);
    let mut cursor: Option<String> = None;
    loop {
        let found = page(cursor.as_deref())?;
        count += found.items.len() as u64;
        for at in found.items.iter().filter_map(|item| Timestamp::parse(created_at(item))) {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        match (found.has_more, found.next_cursor) {
            (true, Some(next)) => cursor = Some(next),
            _ => return Ok((count, earliest)),
        }
    }
}

/// The largest counts first (ties by name), at most [`MOST_DENIED`].
fn most(counts: HashMap<&str, u64>) -> Vec<Counted> {
    let mut counted: Vec<Counted> =
        counts.into_iter().map(|(name, count)| Counted { name: name.to_string(), count }).collect();
    counted.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    counted.truncate(MOST_DENIED);
    counted
}
