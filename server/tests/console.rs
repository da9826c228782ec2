//! The console's security contract over real HTTP: sign-in with a setup key only, session cookie
//! flags, CSRF on every state-changing form, rate-limited failed sign-ins, the security headers,
//! escaping, and a Verify page that works signed out. (The screens themselves are walked in a
//! browser by tests/console/.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_server::Rate;
use common::{Reply, TestResult, TestServer};
use serde_json::json;

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn post_form(s: &TestServer, path: &str, body: &str, cookies: &[String]) -> TestResult<Reply> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        s.addr,
        body.len()
    );
    if !cookies.is_empty() {
        head.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
    }
    head.push_str("\r\n");
    head.push_str(body);
    s.raw(head.as_bytes())
}

fn get(s: &TestServer, path: &str, cookies: &[String]) -> TestResult<Reply> {
    let cookie = if cookies.is_empty() { String::new() } else { format!("Cookie: {}\r\n", cookies.join("; ")) };
    s.raw(format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{cookie}\r\n", s.addr).as_bytes())
}

/// `name=value` of the `Set-Cookie` header naming `name`, and the whole header.
fn set_cookie(reply: &Reply, name: &str) -> Option<(String, String)> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v)
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap_or_default().to_string(), v.clone()))
}

/// The value of the hidden `csrf` input of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap_or_default().to_string()
}

/// Signs in with `key`: the sign-in answer and the cookies to send after it.
fn sign_in(s: &TestServer, key: &str) -> TestResult<(Reply, Vec<String>)> {
    let page = get(s, "/console/sign-in", &[])?;
    let (csrf_cookie, _) = set_cookie(&page, "allowly_console_sign_in").expect("a sign-in cookie");
    let reply =
        post_form(s, "/console/sign-in", &form(&[("setup_key", key), ("csrf", &csrf_of(&page.text))]), &[csrf_cookie])?;
    let session: Vec<String> = set_cookie(&reply, "allowly_console").map(|(pair, _)| pair).into_iter().collect();
    Ok((reply, session))
}

#[test]
fn only_a_setup_key_signs_in_and_the_session_is_guarded() -> TestResult {
    let s = TestServer::start()?;

    // Signed out: the screens send the browser to sign in; the page carries the security headers.
    let overview = get(&s, "/console", &[])?;
    assert!(matches!(overview.status, 303 | 307), "{}", overview.status);
    assert_eq!(overview.header("location"), Some("/console/sign-in"));
    let page = get(&s, "/console/sign-in", &[])?;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page.text.contains("<label for=\"setup_key\">Setup key</label>"), "{}", page.text);
    assert!(page.text.contains(">Sign in</button>"));

    // No CSRF token, or another one: refused before the key is even looked at.
    let no_token = post_form(&s, "/console/sign-in", &form(&[("setup_key", &s.setup)]), &[])?;
    assert_eq!(no_token.status, 403);
    assert!(set_cookie(&no_token, "allowly_console").is_none());

    // A runtime key is refused with a message that says why.
    let (runtime, cookies) = sign_in(&s, &s.runtime)?;
    assert_eq!(runtime.status, 401);
    assert!(runtime.text.contains("runtime key"), "{}", runtime.text);
    assert!(cookies.is_empty());

    // The setup key signs in: an HttpOnly, SameSite=Strict session cookie (not Secure over http).
    let (signed, cookies) = sign_in(&s, &s.setup)?;
    assert_eq!((signed.status, signed.header("location")), (303, Some("/console")));
    let (_, header) = set_cookie(&signed, "allowly_console").expect("a session cookie");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"), "{header}");
    assert!(!header.contains("Secure"), "{header}");
    let home = get(&s, "/console", &cookies)?;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("Overview") && home.text.contains(&s.workspace_id));
    let secret = s.setup.rsplit('.').next().unwrap_or_default();
    assert!(!home.text.contains(secret), "a page must never contain the key");

    // Signing out takes the session's CSRF token; after it the cookie opens nothing.
    let refused = post_form(&s, "/console/sign-out", &form(&[("csrf", "forged")]), &cookies)?;
    assert_eq!(refused.status, 403);
    assert_eq!(get(&s, "/console", &cookies)?.status, 200, "a forged sign-out changed nothing");
    let out = post_form(&s, "/console/sign-out", &form(&[("csrf", &csrf_of(&home.text))]), &cookies)?;
    assert_eq!(out.status, 303);
    assert!(matches!(get(&s, "/console", &cookies)?.status, 303 | 307));

    // A revoked key's session ends.
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let created = s.json("POST", "/v1/setup/api-keys", Some(&s.setup), &json!({"kind": "setup"}))?;
    let second = created.body["key"].as_str().unwrap_or_default().to_string();
    let (_, second_cookies) = sign_in(&s, &second)?;
    assert_eq!(get(&s, "/console", &second_cookies)?.status, 200);
    let key_id = created.body["key_id"].as_str().unwrap_or_default();
    assert_eq!(s.request("DELETE", &format!("/v1/setup/api-keys/{key_id}"), Some(&s.setup), None)?.status, 204);
    assert!(matches!(get(&s, "/console", &second_cookies)?.status, 303 | 307));
    assert_eq!(get(&s, "/console", &cookies)?.status, 200, "other sessions stay");
    Ok(())
}

#[test]
fn failed_sign_ins_are_rate_limited_per_address() -> TestResult {
    let s = TestServer::start_with(|config| config.auth_failures_per_address = Rate::per_minute(3))?;
    let statuses: Vec<u16> = (0..6)
        .map(|_| sign_in(&s, "allowly.setup.ws_x.ak_x.wrong").map(|(r, _)| r.status))
        .collect::<Result<_, _>>()?;
    assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    Ok(())
}

#[test]
fn an_https_public_url_makes_the_session_cookie_secure() -> TestResult {
    let s = TestServer::start_with(|config| config.public_url = Some("https://allowly.example".into()))?;
    let (_, header) = set_cookie(&sign_in(&s, &s.setup)?.0, "allowly_console").expect("a session cookie");
    assert!(header.contains("; Secure"), "{header}");
    Ok(())
}

#[test]
fn verify_works_signed_out_and_escapes_what_it_shows() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let id = s.create_authorization(None)?;
    let checked = s.check(&id, &["account.delete"], json!({}))?;
    let receipt = serde_json::to_string(&checked.body["results"]["account.delete"]["receipt"]["receipt"])?;
    let valid = post_form(&s, "/console/verify", &form(&[("receipt", &receipt)]), &[])?;
    assert_eq!(valid.status, 200, "{}", valid.text);
    assert!(valid.text.contains("role=\"status\""));
    assert!(valid.text.contains("<h2>Valid</h2>"), "{}", valid.text);
    let receipt_id = checked.body["results"]["account.delete"]["receipt_id"].as_str().unwrap_or_default();
    assert!(valid.text.contains(receipt_id));

    let mut altered: serde_json::Value = serde_json::from_str(&receipt)?;
    let signature = altered["signature"].as_str().unwrap_or_default().to_string();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    altered["signature"] = json!(format!("{flipped}{}", signature.get(1..).unwrap_or_default()));
    let invalid = post_form(&s, "/console/verify", &form(&[("receipt", &altered.to_string())]), &[])?;
    assert!(invalid.text.contains("<h2>Invalid</h2>") && invalid.text.contains("SignatureMismatchError"));

    // A file upload without JavaScript: multipart, the file standing for an empty Receipt field.
    let boundary = "allowly-test-boundary";
    let part = |name: &str, file: Option<&str>, content: &str| {
        let filename = file.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{content}\r\n")
    };
    let body =
        format!("{}{}--{boundary}--\r\n", part("receipt", None, ""), part("receipt_file", Some("r.json"), &receipt));
    let head = format!(
        "POST /console/verify HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    );
    let uploaded = s.raw(format!("{head}{body}").as_bytes())?;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text);
    assert!(uploaded.text.contains("<h2>Valid</h2>") && uploaded.text.contains(receipt_id), "{}", uploaded.text);

    // What was pasted comes back escaped, never as markup.
    let hostile = post_form(&s, "/console/verify", &form(&[("receipt", "<script>alert(1)</script>")]), &[])?;
    assert!(hostile.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", hostile.text);
    assert!(!hostile.text.contains("<script>alert(1)"));
    Ok(())
}

#[test]
fn receipts_are_found_by_filter_shown_escaped_and_downloaded_as_the_api_serves_them() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let id = s.create_authorization(None)?;
    let hostile = "<script>alert(1)</script>";
    let denied = s.check(&id, &["account.delete"], json!({"context": {"note": hostile}}))?;
    assert_eq!(denied.status, 200, "{}", denied.text);
    s.check(&id, &["email.read"], json!({}))?;
    let receipt_id = denied.body["results"]["account.delete"]["receipt_id"].as_str().unwrap_or_default().to_string();
    let (_, cookies) = sign_in(&s, &s.setup)?;

    // Signed out, the screen sends the browser to sign in.
    assert!(matches!(get(&s, "/console/receipts", &[])?.status, 303 | 307));
    let all = get(&s, "/console/receipts", &cookies)?;
    assert_eq!(all.status, 200, "{}", all.text);
    assert!(all.text.contains(&receipt_id) && all.text.contains("email.read"));
    let denies = get(&s, "/console/receipts?decision=deny&user_id=user_1", &cookies)?;
    assert!(denies.text.contains(&receipt_id), "{}", denies.text);
    assert!(!denies.text.contains("email.read"), "only the deny is listed");
    let bad = get(&s, "/console/receipts?since=whenever", &cookies)?;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("role=\"alert\""), "{}", bad.text);

    // The receipt page: its context escaped, its signature checked, its payload shown.
    let shown = get(&s, &format!("/console/receipts/{receipt_id}"), &cookies)?;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(shown.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!shown.text.contains(hostile), "a context value must never become markup");
    assert!(shown.text.contains("Copy JSON") && shown.text.contains(">Download</a>"));
    assert!(shown.text.contains("tag good\">Valid"), "the signature verifies against the server's keys");

    // Download: byte for byte what the API answers for the receipt.
    let downloaded = get(&s, &format!("/console/receipts/{receipt_id}/download"), &cookies)?;
    let api = s.request("GET", &format!("/v1/receipts/{receipt_id}"), Some(&s.runtime), None)?;
    assert_eq!(downloaded.status, 200);
    assert_eq!(downloaded.text, api.text);
    assert!(downloaded.header("content-disposition").is_some_and(|d| d.starts_with("attachment")));

    // The export is JSON Lines of the filtered receipts, which Verify accepts whole.
    let export = get(&s, "/console/receipts/export?decision=deny", &cookies)?;
    assert_eq!(export.text.lines().count(), 1, "{}", export.text);
    let verified = post_form(&s, "/console/verify", &form(&[("receipt", &export.text)]), &[])?;
    assert!(verified.text.contains("<h2>Valid</h2>"), "{}", verified.text);

    // Unfiltered, the export comes with the checkpoint evidence, which Verify checks beside it.
    let everything = get(&s, "/console/receipts", &cookies)?;
    assert!(everything.text.contains("href=\"/console/receipts/evidence\""));
    assert!(!denies.text.contains("/console/receipts/evidence"), "a filtered export cannot carry whole days");
    let evidence = get(&s, "/console/receipts/evidence", &cookies)?;
    assert_eq!(evidence.status, 200);
    let document: serde_json::Value = serde_json::from_str(&evidence.text)?;
    assert_eq!(document["version"], "receipt_checkpoint_evidence.v1");
    let whole = get(&s, "/console/receipts/export", &cookies)?;
    let both = form(&[("receipt", &whole.text), ("checkpoint_evidence", &evidence.text)]);
    let verified = post_form(&s, "/console/verify", &both, &[])?;
    assert!(verified.text.contains("<h2>Valid</h2>"), "{}", verified.text);
    Ok(())
}

#[test]
fn approvals_resolved_in_the_console_unlock_the_next_check() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let id = s.create_authorization(None)?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let asked = s.check(&id, &["email.send", "refund.issue"], json!({"resource": "ticket:7"}))?;
    let confirmation_id =
        asked.body["results"]["email.send"]["confirmation_id"].as_str().unwrap_or_default().to_string();
    let escalation_id =
        asked.body["results"]["refund.issue"]["escalation"]["escalation_id"].as_str().unwrap_or_default().to_string();
    assert!(!confirmation_id.is_empty() && !escalation_id.is_empty(), "{}", asked.text);

    let inbox = get(&s, "/console/approvals", &cookies)?;
    assert_eq!(inbox.status, 200, "{}", inbox.text);
    assert!(inbox.text.contains(&confirmation_id) && inbox.text.contains(&escalation_id));
    let nonce = asked.body["results"]["email.send"]["confirm_nonce"].as_str().unwrap_or_default();
    assert!(!inbox.text.contains(nonce), "the nonce never reaches a page");
    let csrf = csrf_of(&inbox.text);

    // Without the session's token nothing is resolved.
    let forged = post_form(
        &s,
        &format!("/console/approvals/confirmations/{confirmation_id}"),
        &form(&[("decision", "approve"), ("csrf", "forged")]),
        &cookies,
    )?;
    assert_eq!(forged.status, 403);
    let still = s.check(&id, &["email.send"], json!({"resource": "ticket:7"}))?;
    assert_eq!(still.body["results"]["email.send"]["decision"], "confirm");

    let approved = post_form(
        &s,
        &format!("/console/approvals/confirmations/{confirmation_id}"),
        &form(&[("decision", "approve"), ("csrf", &csrf)]),
        &cookies,
    )?;
    assert_eq!(approved.status, 303, "{}", approved.text);
    let allowed = s.check(&id, &["email.send"], json!({"resource": "ticket:7"}))?;
    assert_eq!(allowed.body["results"]["email.send"]["decision"], "allow", "{}", allowed.text);
    // The allow's page links to the approval that unlocked it and to the question it answered.
    let allow_id = allowed.body["results"]["email.send"]["receipt_id"].as_str().unwrap_or_default();
    let shown = get(&s, &format!("/console/receipts/{allow_id}"), &cookies)?;
    let asked_id = asked.body["results"]["email.send"]["receipt_id"].as_str().unwrap_or_default();
    assert!(shown.text.contains("Confirmation that unlocked this allow"), "{}", shown.text);
    assert!(
        shown.text.contains(&format!("Confirmation asked by: <a href=\"/console/receipts/{asked_id}\">")),
        "{}",
        shown.text
    );

    let rejected = post_form(
        &s,
        &format!("/console/approvals/escalations/{escalation_id}"),
        &form(&[("decision", "reject"), ("csrf", &csrf), ("resolved_by", "finance_lead"), ("note", "not this one")]),
        &cookies,
    )?;
    assert_eq!(rejected.status, 303, "{}", rejected.text);
    let status = s.request("GET", &format!("/v1/escalations/{escalation_id}"), Some(&s.runtime), None)?;
    assert_eq!(status.body["status"], "rejected");
    let inbox = get(&s, "/console/approvals", &cookies)?;
    assert!(!inbox.text.contains(&confirmation_id) && !inbox.text.contains(&escalation_id), "nothing waits now");
    Ok(())
}

#[test]
fn keys_show_fingerprints_and_rotate_only_with_the_session_token() -> TestResult {
    let s = TestServer::start()?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let keys = get(&s, "/console/keys", &cookies)?;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let document = s.request("GET", &format!("/v1/workspaces/{}/keys", s.workspace_id), None, None)?;
    let fingerprint = document.body["keys"][0]["public_key_fingerprint"].as_str().unwrap_or_default();
    assert!(keys.text.contains(fingerprint));
    let forged = post_form(&s, "/console/keys/rotate", &form(&[("csrf", "nope")]), &cookies)?;
    assert_eq!(forged.status, 403);
    let rotated = post_form(&s, "/console/keys/rotate", &form(&[("csrf", &csrf_of(&keys.text))]), &cookies)?;
    assert_eq!(rotated.status, 303, "{}", rotated.text);
    let after = s.request("GET", &format!("/v1/workspaces/{}/keys", s.workspace_id), None, None)?;
    assert_eq!(after.body["keys"].as_array().map(Vec::len), Some(2), "one rotation, not two");
    Ok(())
}

#[test]
fn revoking_in_the_console_takes_a_confirmation_and_denies_the_next_check() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let id = s.create_authorization(Some(1_000))?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let listed = get(&s, "/console/authorizations", &cookies)?;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.text.contains(&id) && listed.text.contains("0 of 1000 micros"));
    let detail = get(&s, &format!("/console/authorizations/{id}"), &cookies)?;
    assert!(detail.text.contains("email.read") && detail.text.contains("Revoke…"), "{}", detail.text);

    // The first step only asks; nothing is revoked until the form is posted with the token.
    let asked = get(&s, &format!("/console/authorizations/{id}/revoke"), &cookies)?;
    assert_eq!(asked.status, 200);
    assert_eq!(s.check(&id, &["email.read"], json!({}))?.body["results"]["email.read"]["decision"], "allow");
    let forged = post_form(&s, &format!("/console/authorizations/{id}/revoke"), &form(&[("csrf", "x")]), &cookies)?;
    assert_eq!(forged.status, 403);
    let revoked = post_form(
        &s,
        &format!("/console/authorizations/{id}/revoke"),
        &form(&[("csrf", &csrf_of(&asked.text)), ("notes", "left the company")]),
        &cookies,
    )?;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    let denied = s.check(&id, &["email.read"], json!({}))?;
    assert_eq!(denied.body["results"]["email.read"]["decision"], "deny", "{}", denied.text);
    let after = get(&s, &format!("/console/authorizations/{id}"), &cookies)?;
    assert!(after.text.contains("revoked") && !after.text.contains("Revoke…"));
    Ok(())
}

#[test]
fn authorizations_are_filtered_by_user_agent_and_status_and_pages_keep_the_filters() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    // One more than a page of user_1's, then user_2's, revoked.
    let mut mine: Vec<String> = (0..51).map(|_| s.create_authorization(None)).collect::<TestResult<_>>()?;
    // Listed by id: ids made in one millisecond are not in creation order.
    mine.sort();
    let body = json!({"user_id": "user_2", "policy_id": "support"});
    let other = s.json("POST", "/v1/authorizations", Some(&s.runtime), &body)?.body["authorization_id"].clone();
    let other = other.as_str().unwrap_or_default().to_string();
    s.request("DELETE", &format!("/v1/authorizations/{other}"), Some(&s.runtime), None)?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let link = |id: &str| format!("<a href=\"/console/authorizations/{id}\">");

    // The form: User, Agent, Status (Any first), Filter and Clear.
    let all = get(&s, "/console/authorizations", &cookies)?;
    assert_eq!(all.status, 200, "{}", all.text);
    assert!(all.text.contains("<form method=\"get\" action=\"/console/authorizations\" class=\"filters\""));
    for label in [">User</label>", ">Agent</label>", ">Status</label>", "<option value=\"\" selected>Any</option>"] {
        assert!(all.text.contains(label), "{label}: {}", all.text);
    }
    assert!(
        all.text.contains(">Filter</button>") && all.text.contains("<a href=\"/console/authorizations\">Clear</a>")
    );

    // By user: a full page, then the next page keeps the filter.
    let first = get(&s, "/console/authorizations?user_id=user_1&agent_id=support_agent", &cookies)?;
    assert!(first.text.contains("value=\"user_1\""), "the filter is shown as given");
    assert_eq!(first.text.matches("<a href=\"/console/authorizations/auth_").count(), 50);
    assert!(first.text.contains(&link(&mine[0])) && !first.text.contains(&other));
    let next = format!("/console/authorizations?user_id=user_1&agent_id=support_agent&cursor={}", mine[49]);
    assert!(first.text.contains(&next.replace('&', "&amp;")), "{}", first.text);
    let second = get(&s, &next, &cookies)?;
    assert!(second.text.contains(&link(&mine[50])) && !second.text.contains(&link(&mine[49])));
    assert!(!second.text.contains("rel=\"next\"") && !second.text.contains(&other));

    // By status: the revoked one, its status selected; none matching both filters.
    let revoked = get(&s, "/console/authorizations?status=revoked", &cookies)?;
    assert!(revoked.text.contains(&link(&other)) && !revoked.text.contains(&link(&mine[0])));
    assert!(revoked.text.contains("<option value=\"revoked\" selected>revoked</option>"), "{}", revoked.text);
    let none = get(&s, "/console/authorizations?user_id=user_1&status=revoked", &cookies)?;
    assert_eq!(none.status, 200);
    assert!(none.text.contains("No authorization matches these filters."), "{}", none.text);

    // A status the engine does not know, and markup as a filter value.
    let unknown = get(&s, "/console/authorizations?status=frozen", &cookies)?;
    assert_eq!(unknown.status, 422);
    assert!(unknown.text.contains("role=\"alert\""), "{}", unknown.text);
    let hostile = get(&s, "/console/authorizations?user_id=%3Cb%3Ebold", &cookies)?;
    assert!(hostile.text.contains("value=\"&lt;b&gt;bold\"") && !hostile.text.contains("<b>bold"));
    assert!(hostile.text.contains("No authorization matches these filters."), "{}", hostile.text);
    Ok(())
}

#[test]
fn the_overview_counts_what_the_receipts_lookup_lists_and_links_to_it() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let id = s.create_authorization(None)?;
    for _ in 0..3 {
        s.check(&id, &["account.delete", "email.read"], json!({}))?;
    }
    s.check(&id, &["refund.issue"], json!({"resource": "ticket:7"}))?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let overview = get(&s, "/console", &cookies)?;
    assert_eq!(overview.status, 200, "{}", overview.text);

    // Today's row of the table: the counts the lookup gives for each decision since midnight.
    let today = s.request("GET", "/v1/receipts?limit=1", Some(&s.setup), None)?.body["items"][0]["issued_at"]
        .as_str()
        .unwrap_or_default()[..10]
        .to_string();
    let row_at = overview.text.find(&format!(">{today}</time></th>")).expect("a row for today");
    let row =
        &overview.text[row_at..overview.text[row_at..].find("</tr>").map_or(overview.text.len(), |end| row_at + end)];
    let cells: Vec<u64> = row
        .split("<td class=\"number\">")
        .skip(1)
        .map(|cell| cell.split('>').nth(1).and_then(|text| text.split('<').next()).unwrap_or("x").parse().unwrap())
        .collect();
    let mut listed = Vec::new();
    for decision in ["allow", "confirm", "escalate", "deny"] {
        let page = s.request(
            "GET",
            &format!("/v1/receipts?decision={decision}&since={today}T00:00:00.000Z&limit=100"),
            Some(&s.setup),
            None,
        )?;
        listed.push(page.body["items"].as_array().map_or(0, Vec::len) as u64);
    }
    assert_eq!(cells, listed, "{row}");
    assert_eq!(listed, [3, 0, 1, 3]);
    // Each count links to the receipts it counts; the most denied action is listed with its count.
    assert!(row.contains(&format!("/console/receipts?decision=deny&amp;since={today}T00%3A00%3A00.000Z")), "{row}");
    assert!(overview.text.contains("Most denied actions"));
    assert!(overview.text.contains("<code>account.delete</code></a></td><td class=\"number\">3</td>"));
    assert!(overview.text.contains("id=\"approvals-waiting\" href=\"/console/approvals\">1 waiting"));
    Ok(())
}

/// What a browser sends for the form whose opening tag carries `marker`: its inputs and textareas
/// with their values, checked radios and checkboxes only.
fn form_fields(page: &str, marker: &str) -> Vec<(String, String)> {
    let start = page.find(marker).expect("the form");
    let form = &page[start..start + page[start..].find("</form>").expect("the form's end")];
    let unescape =
        |text: &str| text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let attribute = |tag: &str, name: &str| {
        let key = format!(" {name}=\"");
        tag.find(&key).map(|at| unescape(tag[at + key.len()..].split('"').next().unwrap_or_default()))
    };
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find(['<']) {
        rest = &rest[at..];
        let tag = &rest[..rest.find('>').expect("a tag's end") + 1];
        let Some(name) = attribute(tag, "name") else {
            rest = &rest[1..];
            continue;
        };
        if tag.starts_with("<input") {
            let kind = attribute(tag, "type").unwrap_or_default();
            if !matches!(kind.as_str(), "radio" | "checkbox") || tag.contains(" checked") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<textarea") {
            let body = &rest[tag.len()..];
            fields.push((name, unescape(&body[..body.find("</textarea>").expect("a textarea's end")])));
        }
        rest = &rest[tag.len()..];
    }
    fields
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut changed: Vec<(String, String)> = fields.iter().filter(|(k, _)| k != name).cloned().collect();
    changed.push((name.to_string(), value.to_string()));
    changed
}

fn encoded(fields: &[(String, String)]) -> String {
    form(&fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>())
}

fn newest_version(s: &TestServer, policy_id: &str) -> TestResult<i64> {
    let policy = s.request("GET", &format!("/v1/policies/{policy_id}"), Some(&s.setup), None)?;
    Ok(policy.body["policy_ref"]["policy_version"].as_i64().unwrap_or_default())
}

#[test]
fn scopes_publish_a_toggled_decision_that_only_later_authorizations_follow() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let before = s.create_authorization(None)?;
    let (_, cookies) = sign_in(&s, &s.setup)?;

    let listed = get(&s, "/console/scopes", &cookies)?;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.text.contains("<h2 id=\"agent-0\">support_agent</h2>"), "{}", listed.text);
    assert!(listed.text.contains("<a href=\"/console/scopes/support\">support</a>"));
    assert!(listed.text.contains("href=\"/console/scopes/new\">New bundle</a>"));

    let shown = get(&s, "/console/scopes/support", &cookies)?;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(shown.text.contains("<legend>email.read</legend>") && shown.text.contains("Version history"));
    let fields = form_fields(&shown.text, "class=\"editor\"");
    assert!(fields.contains(&("a0-decision".into(), "allow".into())), "{fields:?}");

    // Sent back unchanged, the form publishes nothing.
    let same = post_form(&s, "/console/scopes/support", &encoded(&fields), &cookies)?;
    assert_eq!((same.status, same.header("location")), (303, Some("/console/scopes/support?unchanged=1")));
    assert_eq!(newest_version(&s, "support")?, 1);

    let toggled =
        post_form(&s, "/console/scopes/support", &encoded(&with(&fields, "a0-decision", "confirm")), &cookies)?;
    assert_eq!((toggled.status, toggled.header("location")), (303, Some("/console/scopes/support?published=2")));
    let after = get(&s, "/console/scopes/support?published=2", &cookies)?;
    let status = &after.text[after.text.find("role=\"status\"").expect("a status")..];
    assert!(status.contains("Published version 2") && status.contains("email.read: allow → confirm"), "{status}");
    let policy = s.request("GET", "/v1/policies/support", Some(&s.setup), None)?;
    assert_eq!(policy.body["policy_ref"]["policy_version"], 2);
    assert_eq!(policy.body["definition"]["actions"][0]["policy"]["decision"], "confirm");
    assert_eq!(policy.body["definition"]["actions"][1], common::definition()["actions"][1], "the rest as it was");

    // The authorization created before keeps version 1; a new one follows version 2.
    assert_eq!(s.check(&before, &["email.read"], json!({}))?.body["results"]["email.read"]["decision"], "allow");
    let body = json!({"user_id": "user_2", "policy_id": "support", "metadata": {}});
    let created = s.json("POST", "/v1/authorizations", Some(&s.runtime), &body)?;
    let later = created.body["authorization_id"].as_str().unwrap_or_default();
    assert_eq!(s.check(later, &["email.read"], json!({}))?.body["results"]["email.read"]["decision"], "confirm");

    // `Add an action` shows one more action and publishes nothing; filled in, it is published
    // with the removal of another.
    let fields = form_fields(&after.text, "class=\"editor\"");
    let adding = post_form(&s, "/console/scopes/support", &encoded(&with(&fields, "add", "1")), &cookies)?;
    assert_eq!(adding.status, 200, "{}", adding.text);
    assert!(adding.text.contains("<legend>New action</legend>") && adding.text.contains("name=\"a4-new\""));
    assert_eq!(newest_version(&s, "support")?, 2);
    let added = with(&form_fields(&adding.text, "class=\"editor\""), "a4-name", "email.archive");
    let published = post_form(&s, "/console/scopes/support", &encoded(&with(&added, "a3-remove", "on")), &cookies)?;
    assert_eq!(published.header("location"), Some("/console/scopes/support?published=3"), "{}", published.text);
    let said = get(&s, "/console/scopes/support?published=3", &cookies)?.text;
    assert!(said.contains("email.archive: added (confirm)") && said.contains("account.delete: removed"), "{said}");

    let old = get(&s, "/console/scopes/support?version=1", &cookies)?;
    assert!(old.text.contains("Version 1 (read-only)") && !old.text.contains(">Publish</button>"), "{}", old.text);
    Ok(())
}

#[test]
fn scopes_refuse_forged_invalid_and_stale_forms_and_publish_nothing() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let shown = get(&s, "/console/scopes/support", &cookies)?;
    let fields = form_fields(&shown.text, "class=\"editor\"");
    let changed = with(&fields, "a0-decision", "deny");

    let forged = post_form(&s, "/console/scopes/support", &encoded(&with(&changed, "csrf", "")), &cookies)?;
    assert_eq!(forged.status, 403);
    assert_eq!(newest_version(&s, "support")?, 1);

    // Escalate without an approver, and a daily cap that is not a number: each error at its field.
    let invalid = with(&with(&changed, "a0-decision", "escalate"), "a1-daily-cap", "ten");
    let refused = post_form(&s, "/console/scopes/support", &encoded(&invalid), &cookies)?;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("role=\"alert\">2 problems"), "{}", refused.text);
    let approver = &refused.text[refused.text.find("<label for=\"a0-approver\">").expect("the field")..];
    let message = "<p class=\"field-error\" id=\"a0-approver-error\">Approver is required for <code>escalate</code>";
    assert!(approver.starts_with(&format!("<label for=\"a0-approver\">Approver</label>{message}")), "{approver}");
    assert!(approver.contains("aria-invalid=\"true\" aria-describedby=\"a0-approver-error a0-approver-hint\""));
    let cap = &refused.text[refused.text.find("id=\"a1-daily-cap-error\"").expect("the cap's error")..];
    assert!(cap.starts_with("id=\"a1-daily-cap-error\">Daily cap must be an integer"), "{cap}");
    assert!(cap.contains("value=\"ten\""), "what was typed is kept");
    assert!(refused.text.contains("value=\"escalate\" checked"));
    assert_eq!(newest_version(&s, "support")?, 1);

    // Conditions that are not JSON are named as such.
    let broken = post_form(&s, "/console/scopes/support", &encoded(&with(&changed, "a2-conditions", "[{")), &cookies)?;
    assert_eq!(broken.status, 422);
    assert!(broken.text.contains("id=\"a2-conditions-error\">Conditions is not valid JSON"), "{}", broken.text);

    // Someone publishes meanwhile: the form based on version 1 is refused, not applied over it.
    let mut body = common::policy_body("support");
    body["description"] = json!("edited elsewhere");
    assert_eq!(s.json("POST", "/v1/policies", Some(&s.setup), &body)?.status, 201);
    let stale = post_form(&s, "/console/scopes/support", &encoded(&changed), &cookies)?;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(stale.text.contains("Version 2 was published while you edited version 1"), "{}", stale.text);
    assert_eq!(newest_version(&s, "support")?, 2);
    let policy = s.request("GET", "/v1/policies/support", Some(&s.setup), None)?;
    assert_eq!(policy.body["definition"]["actions"][0]["policy"]["decision"], "allow");
    Ok(())
}

#[test]
fn new_bundle_creates_a_policy_and_never_echoes_markup() -> TestResult {
    let s = TestServer::start()?;
    let (_, cookies) = sign_in(&s, &s.setup)?;
    let empty = get(&s, "/console/scopes", &cookies)?;
    assert!(empty.text.contains("No bundle yet"), "{}", empty.text);
    let blank = get(&s, "/console/scopes/new", &cookies)?;
    assert_eq!(blank.status, 200, "{}", blank.text);
    assert!(
        blank.text.contains("<label for=\"policy_id\">Policy id</label>")
            && blank.text.contains(">Create bundle</button>")
    );
    let fields = form_fields(&blank.text, "class=\"editor new-bundle\"");
    let hostile = "<script>alert(1)</script>";

    let typed = with(&with(&with(&fields, "policy_id", hostile), "agent_id", "notes_bot"), "a0-name", "note.write");
    let refused = post_form(&s, "/console/scopes/new", &encoded(&typed), &cookies)?;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("id=\"policy_id-error\">Policy id must use only lowercase letters"),
        "{}",
        refused.text
    );
    assert!(refused.text.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""), "{}", refused.text);
    assert!(!refused.text.contains(hostile));

    let valid = with(&with(&typed, "policy_id", "notes"), "a0-name", hostile);
    let created = post_form(&s, "/console/scopes/new", &encoded(&with(&valid, "a0-decision", "deny")), &cookies)?;
    assert_eq!((created.status, created.header("location")), (303, Some("/console/scopes/notes?published=1")));
    let policy = s.request("GET", "/v1/policies/notes", Some(&s.setup), None)?;
    assert_eq!(policy.body["policy_ref"]["policy_version"], 1);
    assert_eq!(policy.body["definition"]["agent_id"], "notes_bot");
    assert_eq!(policy.body["definition"]["actions"][0]["policy"]["action"], hostile);
    assert_eq!(policy.body["definition"]["actions"][0]["policy"]["decision"], "deny");
    for path in ["/console/scopes", "/console/scopes/notes?published=1"] {
        let shown = get(&s, path, &cookies)?;
        assert_eq!(shown.status, 200, "{}", shown.text);
        assert!(shown.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", shown.text);
        assert!(!shown.text.contains(hostile), "{path} echoes markup");
    }

    let probed = get(&s, "/console/scopes/%3Cscript%3Ealert(1)%3C%2Fscript%3E", &cookies)?;
    assert!(probed.status >= 400 && !probed.text.contains(hostile), "{}", probed.text);

    // An existing id is refused rather than given a new edition.
    let again = post_form(&s, "/console/scopes/new", &encoded(&with(&valid, "a0-name", "note.read")), &cookies)?;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("Policy id is taken"), "{}", again.text);
    assert_eq!(newest_version(&s, "notes")?, 1);
    Ok(())
}
