//! Opaque prefixed identifiers (`rcp_`, `auth_`, `cnf_`, `esc_`, `ws_`) and bearer secrets.

use crate::time::Timestamp;

/// How every confirmation nonce begins: a nonce and a confirmation id (`cnf_` + ULID) never look alike.
pub const CONFIRMATION_NONCE_PREFIX: &str = "cnf_nonce_";

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::getrandom(buf)
}

/// `prefix` + a ULID (48-bit millisecond time, 80 random bits): unique and roughly time-ordered.
pub fn new_id(prefix: &str, at: Timestamp) -> Result<String, getrandom::Error> {
    let mut random = [0u8; 10];
    random_bytes(&mut random)?;
    let mut value: u128 = (u128::from(at.millis().max(0) as u64) & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (72 - 8 * i);
    }
    let mut out = String::with_capacity(prefix.len() + 26);
    out.push_str(prefix);
    for i in (0..26).rev() {
        out.push(CROCKFORD[((value >> (5 * i)) & 0x1F) as usize] as char);
    }
    Ok(out)
}

/// Whether `c` is refused in identifiers (action names, resources, user, agent and session ids, the
/// ids of authorizations, prompts and receipts, idempotency keys). Identifiers are compared, shown
/// to the people who approve prompts and written into store keys and receipts, so they may not hold:
/// - control characters: C0 (U+0000..U+001F), DEL (U+007F) and C1 (U+0080..U+009F, NEL included);
/// - the line and paragraph separators U+2028 and U+2029;
/// - the invisible format characters (Unicode category Cf): bidi marks, embeddings, overrides and
///   isolates, zero-width space, word joiner and invisible operators, soft hyphen, BOM, tags, ...;
///   they make an identifier display as something else. ZWNJ and ZWJ (U+200C, U+200D) are allowed:
///   Persian and Indic words and emoji sequences are spelled with them.
pub fn forbidden_in_identifier(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// Why `text` cannot be an identifier, or `None` when it can (see [`forbidden_in_identifier`]).
pub fn identifier_problem(text: &str) -> Option<String> {
    let (at, c) = text.chars().enumerate().find(|(_, c)| forbidden_in_identifier(*c))?;
    Some(format!(
        "must not contain control, separator or invisible format characters (U+{:04X} at character {})",
        u32::from(c),
        at + 1
    ))
}

/// [`identifier_problem`] as the typed error naming `field` (422 `invalid_request`).
pub fn check_identifier(field: &str, text: &str) -> crate::Result<()> {
    match identifier_problem(text) {
        Some(problem) => Err(crate::Error::invalid(field, problem)),
        None => Ok(()),
    }
}

/// A bearer secret: `prefix` + 32 random bytes in unpadded base64url.
pub fn new_secret(prefix: &str) -> Result<String, getrandom::Error> {
    use base64::Engine as _;
    let mut random = [0u8; 32];
    random_bytes(&mut random)?;
    Ok(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() -> Result<(), getrandom::Error> {
        let a = new_id("rcp_", Timestamp(1_000))?;
        let b = new_id("rcp_", Timestamp(2_000))?;
        let c = new_id("rcp_", Timestamp(2_000))?;
        assert!(a.starts_with("rcp_") && a.len() == 30);
        assert!(a < b);
        assert_ne!(b, c);
        Ok(())
    }

    #[test]
    fn identifiers_refuse_controls_separators_and_invisible_format_characters() {
        let refused = [
            '\0',
            '\u{1f}',
            '\u{1e}',
            '\n',
            '\t',
            '\u{7f}',
            '\u{80}',
            '\u{85}',
            '\u{9f}',
            '\u{2028}',
            '\u{2029}',
            '\u{200b}',
            '\u{200e}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{2060}',
            '\u{feff}',
            '\u{ad}',
            '\u{e0001}',
            '\u{e007f}',
        ];
        for c in refused {
            assert!(forbidden_in_identifier(c), "U+{:04X}", u32::from(c));
        }
        for c in (0..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            assert!(identifier_problem(&format!("pay{c}")).is_some(), "U+{:04X}", u32::from(c));
        }
        let allowed = [
            "email.send",
            "crm/acct 1",
            "r:acct1-",
            "\u{e9}t\u{e9}",
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}",
            "\u{1f469}\u{200d}\u{1f4bb}",
            "",
        ];
        for text in allowed {
            assert_eq!(identifier_problem(text), None, "{text:?}");
        }
        let problem = identifier_problem("pay\u{1f}r:acct1").unwrap_or_default();
        assert!(problem.contains("U+001F at character 4"), "{problem}");
    }
}
