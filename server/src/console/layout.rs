//! The page shell every console screen shares: head, navigation, main landmark, footer; and the
//! headers every console answer carries (a strict Content-Security-Policy: no inline script or
//! style, nothing from elsewhere; no framing; nothing cached).

use allowly_core::Timestamp;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::Session;

/// The screens in the navigation, in order: (label, path). A screen is listed once it exists.
pub const SCREENS: [(&str, &str); 7] = [
    ("Overview", "/console"),
    ("Verify", "/console/verify"),
    ("Scopes", "/console/scopes"),
    ("Receipts", "/console/receipts"),
    ("Approvals", "/console/approvals"),
    ("Authorizations", "/console/authorizations"),
    ("Keys", "/console/keys"),
];

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page: `title` names it in the tab and the heading; `current` is its navigation path.
pub fn page(title: &str, current: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Allowly" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console" { "Allowly" }
                    nav aria-label="Console" {
                        ul {
                            @for (label, path) in SCREENS {
                                li {
                                    @if path == current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div class="who" {
                        @if let Some(session) = session {
                            span class="muted" { "Signed in with " code { (session.key_id) } }
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" class="link" { "Sign out" }
                            }
                        } @else {
                            a href="/console/sign-in" { "Sign in" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An HTML answer with the console's security headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    secure(&mut response, "text/html; charset=utf-8");
    response
}

/// The console's headers on any answer.
pub fn secure(response: &mut Response, content_type: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An error above a form, announced to screen readers.
pub fn error_notice(text: &str) -> Markup {
    html! { p class="notice error" role="alert" { (text) } }
}

/// A wire timestamp (`2026-12-07T10:13:18.858Z`) for people: `7 Dec 2026, 10:13:18 UTC`, in a
/// `<time>` whose `datetime` and title keep the exact instant. Anything else is shown as it is.
pub fn when(timestamp: &str) -> Markup {
    html! { time datetime=(timestamp) title=(timestamp) { (friendly(timestamp)) } }
}

/// [`when`], followed by how far it is from now (`in 9 min`, `2 days ago`).
pub fn when_relative(timestamp: &str) -> Markup {
    html! {
        (when(timestamp))
        @if let Some(distance) = Timestamp::parse(timestamp).map(|t| distance(t, Timestamp::now())) {
            " " span class="muted small nowrap" { "(" (distance) ")" }
        }
    }
}

/// A code such as `authorization_granted_action_active` that may wrap after its underscores and
/// dots, never inside a word.
pub fn breakable(code: &str) -> Markup {
    html! {
        @for (index, part) in code.split_inclusive(['_', '.']).enumerate() {
            @if index > 0 { wbr; }
            (part)
        }
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn friendly(timestamp: &str) -> String {
    let part = |range: std::ops::Range<usize>| timestamp.get(range).and_then(|text| text.parse::<usize>().ok());
    let shaped = timestamp.len() >= 20 && timestamp.as_bytes().get(10) == Some(&b'T') && timestamp.ends_with('Z');
    match (shaped, part(0..4), part(5..7), part(8..10), timestamp.get(11..19)) {
        (true, Some(year), Some(month @ 1..=12), Some(day), Some(clock)) => {
            format!("{day} {} {year}, {clock} UTC", MONTHS[month - 1])
        }
        _ => timestamp.to_string(),
    }
}

/// `in 9 min`, `2 days ago`, `just now`: the largest whole unit.
fn distance(then: Timestamp, now: Timestamp) -> String {
    let seconds = (then.millis() - now.millis()) / 1000;
    let size = seconds.unsigned_abs();
    let (count, unit) = match size {
        0..=44 => return "just now".to_string(),
        45..=5_399 => (size.div_ceil(60).max(1), "min"),
        5_400..=129_599 => ((size + 1_800) / 3_600, "h"),
        _ => ((size + 43_200) / 86_400, "day"),
    };
    let unit = if unit == "day" && count != 1 { "days" } else { unit };
    if seconds > 0 {
        format!("in {count} {unit}")
    } else {
        format!("{count} {unit} ago")
    }
}

/// A text field of a filter form: label, value, and an example as its placeholder.
pub fn filter_field(name: &str, label: &str, value: &str, example: &str) -> Markup {
    html! {
        div class="field" {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value) placeholder={ "e.g. " (example) } autocomplete="off" spellcheck="false";
        }
    }
}

/// A file to save (`Content-Disposition: attachment`) with the console's headers.
pub fn attachment(bytes: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut response = bytes.into_response();
    secure(&mut response, content_type);
    let disposition = format!("attachment; filename=\"{}\"", filename.replace(['"', '\\'], ""));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_dates() {
        assert_eq!(friendly("2026-12-07T10:13:18.858Z"), "7 Dec 2026, 10:13:18 UTC");
        assert_eq!(friendly("2027-01-06T00:00:00Z"), "6 Jan 2027, 00:00:00 UTC");
        assert_eq!(friendly("yesterday"), "yesterday");
        assert_eq!(friendly("2026-13-07T10:13:18.858Z"), "2026-13-07T10:13:18.858Z");
        let now = Timestamp(1_800_000_000_000);
        assert_eq!(distance(now.plus_seconds(10), now), "just now");
        assert_eq!(distance(now.plus_seconds(599), now), "in 10 min");
        assert_eq!(distance(now.plus_seconds(-120), now), "2 min ago");
        assert_eq!(distance(now.plus_seconds(3 * 3600), now), "in 3 h");
        assert_eq!(distance(now.plus_days(30), now), "in 30 days");
        assert_eq!(distance(now.plus_days(-1), now), "24 h ago");
        assert_eq!(distance(now.plus_days(-2), now), "2 days ago");
    }
}
