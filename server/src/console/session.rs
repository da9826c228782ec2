//! Console sessions: a setup key signs in once; the browser then holds only a random session
//! token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the server's public URL is
//! https). The server keeps the token's SHA-256, never the key. A session ends on sign-out, after
//! [`IDLE`] without a request, after [`LIFETIME`] in all, or when its key is revoked. Every form
//! that changes state carries the session's CSRF token, compared in constant time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::header::COOKIE;
use axum::http::HeaderMap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "allowly_console";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub const SIGN_IN_COOKIE: &str = "allowly_console_sign_in";
/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// No session lasts longer than this.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Who a session is: the workspace and the setup key that signed in.
#[derive(Clone, Debug)]
pub struct Session {
    pub workspace_id: String,
    pub key_id: String,
    /// The token every state-changing form of this session must send back.
    pub csrf: String,
    started: Instant,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_token_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session; the token goes to the browser only.
    pub fn open(&self, workspace_id: &str, key_id: &str) -> Option<(String, Session)> {
        let token = random_token()?;
        let now = Instant::now();
        let session = Session {
            workspace_id: workspace_id.to_string(),
            key_id: key_id.to_string(),
            csrf: random_token()?,
            started: now,
            last_seen: now,
        };
        let mut sessions = self.by_token_digest.lock();
        sessions.retain(|_, s| is_live(s, now));
        sessions.insert(digest(&token), session.clone());
        Some((token, session))
    }

    /// The live session of a request's cookie, marked as used now.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, COOKIE_NAME)?;
        let now = Instant::now();
        let mut sessions = self.by_token_digest.lock();
        let key = digest(&token);
        let session = sessions.get_mut(&key)?;
        if !is_live(session, now) {
            sessions.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn close(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers, COOKIE_NAME) {
            self.by_token_digest.lock().remove(&digest(&token));
        }
    }
}

fn is_live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < IDLE && now.duration_since(session.started) < LIFETIME
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 32 random bytes as hex; `None` if the system has no randomness (then nobody signs in).
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    allowly_core::ids::random_bytes(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// A `Set-Cookie` value for the console's path.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<Duration>) -> String {
    let mut text = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        text.push_str("; Secure");
    }
    text
}

/// Whether a submitted CSRF token is the expected one (constant time; empty never matches).
pub fn same_token(expected: &str, submitted: &str) -> bool {
    !expected.is_empty()
        && expected.len() == submitted.len()
        && expected.bytes().zip(submitted.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
