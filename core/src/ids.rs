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
}
