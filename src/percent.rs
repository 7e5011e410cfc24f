//! Percent-encoding, as URLs, query strings and form bodies want it: every byte but the ASCII
//! letters and digits and the ones a caller keeps becomes `%XX` (uppercase hex).

/// `value` percent-encoded, leaving ASCII alphanumerics and the bytes of `kept` as they are.
pub fn encode(value: &str, kept: &[u8]) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || kept.contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// RFC 3986's unreserved characters besides letters and digits.
pub const UNRESERVED: &[u8] = b"-._~";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_kept_stays() {
        assert_eq!(encode("a b/c~é", UNRESERVED), "a%20b%2Fc~%C3%A9");
        assert_eq!(encode("feat/x:1", b"-._~:"), "feat%2Fx:1");
    }
}
