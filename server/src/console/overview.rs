//! Overview: the workspace at a glance, drawn on the server (an SVG chart, no script). Every figure
//! links to the receipts or approvals it counts, and each count is what that filtered list holds.

use std::sync::Arc;

use allowly_core::engine::{Counted, DayOfDecisions, Overview};
use allowly_core::model::AuthorizationView;
use allowly_core::ops::percent_encode;
use allowly_core::Timestamp;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};

use super::layout::{error_notice, page, respond};
use super::{signed_in, to_sign_in};
use crate::api::{blocking, App};

/// The verbs of a decision, bottom of a stacked bar first.
const VERBS: [&str; 4] = ["allow", "confirm", "escalate", "deny"];

pub async fn show(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let body = match blocking(&app, &session.workspace_id, move || Ok(engine.overview()?)).await {
        Ok(overview) => html! {
            p class="muted" { "Workspace " code { (session.workspace_id) } " · the last 30 days, UTC" }
            (figures(&overview))
            (decisions_chart(&overview))
            div class="columns" {
                (most_denied("Most denied actions", "Action", "action", &overview.most_denied_actions, &overview))
                (most_denied("Most denied reasons", "Reason", "reason", &overview.most_denied_reasons, &overview))
            }
            (budgets(&overview.budgets))
        },
        Err(err) => error_notice(&err.message),
    };
    respond(StatusCode::OK, page("Overview", "/console", Some(&session), body))
}

fn count(day: &DayOfDecisions, verb: &str) -> u64 {
    match verb {
        "allow" => day.allow,
        "confirm" => day.confirm,
        "escalate" => day.escalate,
        _ => day.deny,
    }
}

/// The receipts behind a count: `decision` on the days from `since` to `until`, and `more` filters.
fn receipts_link(decision: &str, since: Timestamp, until: Timestamp, more: &[(&str, &str)]) -> String {
    let (since, until) = (since.to_string(), until.to_string());
    let pairs = [("decision", decision), ("since", &since), ("until", &until)];
    let query: Vec<String> =
        pairs.iter().chain(more).map(|(name, value)| format!("{name}={}", percent_encode(value))).collect();
    format!("/console/receipts?{}", query.join("&"))
}

fn covered(overview: &Overview) -> (Timestamp, Timestamp) {
    let first = overview.days.first().map_or(overview.now, |d| d.day);
    (first, overview.now.start_of_day().plus_days(1))
}

fn figures(overview: &Overview) -> Markup {
    let today = overview.days.last().cloned().unwrap_or_default();
    let (first, end) = covered(overview);
    let denied: u64 = overview.days.iter().map(|d| d.deny).sum();
    let waiting = overview.pending_confirmations + overview.pending_escalations;
    html! {
        dl class="figures" {
            div { dt { "Decisions today" } dd { (today.total()) } }
            div { dt { "Decisions in the last minute" } dd { (overview.decisions_last_minute) } }
            div {
                dt { "Denied in 30 days" }
                dd { a href=(receipts_link("deny", first, end, &[])) { (denied) } }
            }
            div {
                dt { "Approvals waiting" }
                dd {
                    a id="approvals-waiting" href="/console/approvals" { (waiting) " waiting" }
                    @if let Some(oldest) = overview.oldest_pending {
                        span class="hint block" { "oldest asked " (ago(overview.now, oldest)) }
                    }
                }
            }
        }
    }
}

/// "5 minutes ago" from `now`.
fn ago(now: Timestamp, then: Timestamp) -> String {
    let seconds = (now.millis() - then.millis()).max(0) / 1000;
    let (n, unit) = match seconds {
        s if s < 60 => return "just now".to_string(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

const CHART_WIDTH: u64 = 720;
const CHART_HEIGHT: u64 = 180;
/// Room left of the bars for the scale, above them for its top label, right for the last day's.
const AXIS: u64 = 36;
const TOP: u64 = 20;
const RIGHT: u64 = 16;
const LABELS: u64 = 20;

/// Decisions per day as stacked bars (an SVG drawn here), and the same counts as a table.
fn decisions_chart(overview: &Overview) -> Markup {
    let days = &overview.days;
    let top = nice_ceiling(days.iter().map(DayOfDecisions::total).max().unwrap_or(0));
    let slot = (CHART_WIDTH - AXIS - RIGHT) as f64 / days.len().max(1) as f64;
    let scale = |n: u64| n as f64 * CHART_HEIGHT as f64 / top as f64;
    let bottom = (TOP + CHART_HEIGHT) as f64;
    let view_box = format!("0 0 {CHART_WIDTH} {}", TOP + CHART_HEIGHT + LABELS);
    html! {
        section aria-labelledby="per-day" {
            div class="bar" {
                h2 id="per-day" { "Decisions per day" }
                ul class="legend" aria-label="Colours" {
                    @for verb in VERBS { li { span class={ "swatch " (verb) } {} (verb) } }
                }
            }
            figure class="chart" {
                // A group, not an image: each bar is a link (named by its title) to the receipts it counts.
                svg viewBox=(view_box) role="group" aria-labelledby="per-day" preserveAspectRatio="xMidYMid meet" {
                    @for fraction in [0.0, 0.5, 1.0] {
                        @let y = bottom - CHART_HEIGHT as f64 * fraction;
                        line class="grid" x1=(AXIS) x2=(CHART_WIDTH - RIGHT) y1=(fmt(y)) y2=(fmt(y)) {}
                        text class="axis" x=(AXIS - 6) y=(fmt(y + 4.0)) text-anchor="end" { ((top as f64 * fraction).round() as u64) }
                    }
                    @for (n, day) in days.iter().enumerate() {
                        @let x = AXIS as f64 + n as f64 * slot;
                        @for (verb, value, below) in stacked(day) {
                            a href=(receipts_link(verb, day.day, day.day.plus_days(1), &[])) {
                                title { (day_label(day.day)) ": " (value) " " (verb) }
                                rect class=(verb) x=(fmt(x + slot * 0.15)) y=(fmt(bottom - scale(below + value)))
                                    width=(fmt(slot * 0.7)) height=(fmt(scale(value))) {}
                            }
                        }
                        @if n + 1 == days.len() {
                            text class="axis" x=(fmt(x + slot)) y=(fmt(bottom + 15.0)) text-anchor="end" { (short_day(day.day)) }
                        } @else if n % 5 == 4 {
                            text class="axis" x=(fmt(x + slot / 2.0)) y=(fmt(bottom + 15.0)) text-anchor="middle" { (short_day(day.day)) }
                        }
                    }
                }
            }
            @let active: Vec<&DayOfDecisions> = days.iter().rev().filter(|d| d.total() > 0).collect();
            details class="table" {
                summary { "The counts as a table" }
                @if active.is_empty() {
                    p class="muted" { "No decision in the last 30 days." }
                }
                div class="scroll" {
                    table {
                        caption { "Decisions in the last 30 days" }
                        thead { tr { th scope="col" { "Day" } @for verb in VERBS { th scope="col" class="number" { (verb) } } } }
                        tbody {
                            @for day in &active {
                                tr {
                                    th scope="row" { time datetime=(day.day.to_string()) { (day_label(day.day)) } }
                                    @for verb in VERBS {
                                        td class="number" {
                                            a href=(receipts_link(verb, day.day, day.day.plus_days(1), &[])) { (count(day, verb)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A day's bar, bottom up: each verb with a count, its count and the counts below it.
fn stacked(day: &DayOfDecisions) -> Vec<(&'static str, u64, u64)> {
    let mut below = 0;
    let mut segments = Vec::new();
    for verb in VERBS {
        let value = count(day, verb);
        if value > 0 {
            segments.push((verb, value, below));
            below += value;
        }
    }
    segments
}

/// A round number at or above `n` for the top of the chart's scale (at least 4).
fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1;
    while step * 10 < n.max(1) {
        step *= 10;
    }
    let top = n.div_ceil(step).max(1) * step;
    // Even, so the middle grid line is a whole number.
    (if top % 2 == 1 { top + step } else { top }).max(4)
}

fn fmt(value: f64) -> String {
    format!("{value:.1}")
}

/// `2026-12-07`, the day of a midnight timestamp.
fn day_label(day: Timestamp) -> String {
    day.to_string().chars().take(10).collect()
}

/// `Dec 7`.
fn short_day(day: Timestamp) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let label = day_label(day);
    let month = label.get(5..7).and_then(|m| m.parse::<usize>().ok()).unwrap_or(1);
    let date = label.get(8..10).and_then(|d| d.parse::<u32>().ok()).unwrap_or(1);
    format!("{} {date}", MONTHS[month.clamp(1, 12) - 1])
}

fn most_denied(title: &str, column: &str, filter: &str, counted: &[Counted], overview: &Overview) -> Markup {
    let (first, end) = covered(overview);
    let most = counted.first().map_or(1, |c| c.count.max(1));
    html! {
        section {
            div class="scroll" {
                table {
                    caption { (title) }
                    thead { tr { th scope="col" { (column) } th scope="col" class="number" { "Denials" } td {} } }
                    tbody {
                        @for c in counted {
                            tr {
                                td { a href=(receipts_link("deny", first, end, &[(filter, &c.name)])) { code { (c.name) } } }
                                td class="number" { (c.count) }
                                td class="share" { (share_bar(c.count, most, "deny")) }
                            }
                        }
                    }
                }
            }
            @if counted.is_empty() { p class="muted" { "No denial in the last 30 days." } }
        }
    }
}

fn budgets(budgeted: &[AuthorizationView]) -> Markup {
    html! {
        section aria-labelledby="budgets" {
            h2 id="budgets" { "Budget used" }
            @if budgeted.is_empty() {
                p class="muted" { "No active authorization has a budget." }
            } @else {
                div class="scroll" {
                    table {
                        caption class="visually-hidden" { "Budget used per authorization" }
                        thead { tr {
                            th scope="col" { "Authorization" } th scope="col" { "User" } th scope="col" { "Agent" }
                            th scope="col" class="number" { "Spent" } th scope="col" class="number" { "Cap" } th scope="col" { "Used" }
                        } }
                        tbody {
                            @for a in budgeted {
                                @let cap = a.budget_limit_micros.unwrap_or(0);
                                tr {
                                    td { a href={ "/console/authorizations/" (a.authorization_id) } { code { (a.authorization_id) } } }
                                    td { (a.user_id) }
                                    td { (a.agent_id) }
                                    td class="number" { (money(a.budget_spent_micros)) }
                                    td class="number" { (money(cap)) }
                                    @let spent = u64::try_from(a.budget_spent_micros).unwrap_or(0);
                                    @let cap_units = u64::try_from(cap).unwrap_or(0).max(1);
                                    td class="share" {
                                        (share_bar(spent.min(cap_units), cap_units, if spent * 10 >= cap_units * 9 { "deny" } else { "used" }))
                                        " " span class="small muted" { (spent * 100 / cap_units) "%" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A horizontal bar of `value` out of `whole`, beside the number it draws (so hidden from
/// screen readers, which read the number).
fn share_bar(value: u64, whole: u64, class: &str) -> Markup {
    let width = (value as f64 / whole.max(1) as f64 * 100.0).clamp(0.0, 100.0);
    html! {
        svg class="share" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" focusable="false" {
            rect class="whole" x="0" y="0" width="100" height="8" rx="2" {}
            rect class=(class) x="0" y="0" width=(fmt(width)) height="8" rx="2" {}
        }
    }
}

/// Micros as units with two decimals (`1.50`): budgets are in the app's currency, unnamed here.
fn money(micros: i64) -> String {
    format!("{:.2}", micros as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_ends_on_a_round_number_at_or_above_the_tallest_bar() {
        assert_eq!([0, 1, 3, 7, 12, 95, 101, 1999].map(nice_ceiling), [4, 4, 4, 8, 20, 100, 200, 2000]);
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = Timestamp::from_millis(10 * 86_400_000);
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now, now.plus_seconds(-120)), "2 minutes ago");
        assert_eq!(ago(now, now.plus_seconds(-3600)), "1 hour ago");
        assert_eq!(ago(now, now.plus_days(-3)), "3 days ago");
        assert_eq!(short_day(Timestamp::parse("2026-12-07T00:00:00.000Z").unwrap_or(now)), "Dec 7");
    }
}
