//! Webhook authentication (SPEC §6): GitHub's `X-Hub-Signature-256`, GitLab's `X-Gitlab-Token`,
//! and a generic HMAC-SHA256 header. Every comparison takes the same time whatever the input, so
//! a caller cannot find a valid signature byte by byte.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a request was refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No signature header.
    Unsigned,
    /// A signature that does not match the body.
    BadSignature,
}

impl Refusal {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::BadSignature => "bad_signature",
        }
    }

    /// What the sender is told: enough to fix their setup, nothing about the secret.
    pub fn message(self, header: &str) -> String {
        match self {
            Refusal::Unsigned => format!("missing `{header}` header"),
            Refusal::BadSignature => format!("`{header}` does not match the body"),
        }
    }
}

/// Checks GitHub's `X-Hub-Signature-256`: `sha256=` and the hex digest. A digest without the
/// prefix is refused, as GitHub's and octokit's verifiers refuse it.
pub fn github_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), Refusal> {
    let header = header.map(str::trim).filter(|value| !value.is_empty());
    let Some(header) = header else {
        return Err(Refusal::Unsigned);
    };
    if !header.starts_with("sha256=") {
        return Err(Refusal::BadSignature);
    }
    hmac_sha256(secret, body, Some(header))
}

/// Checks an HMAC-SHA256 signature given as hex, with or without a `sha256=` prefix (generic
/// senders often leave it out).
pub fn hmac_sha256(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), Refusal> {
    let header = header.map(str::trim).filter(|value| !value.is_empty());
    let Some(header) = header else {
        return Err(Refusal::Unsigned);
    };
    let hex_digest = header.strip_prefix("sha256=").unwrap_or(header);
    let Ok(expected) = hex::decode(hex_digest) else {
        return Err(Refusal::BadSignature);
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refusal::BadSignature)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| Refusal::BadSignature)
}

/// Checks a shared token (GitLab's `X-Gitlab-Token`) in constant time.
pub fn token(expected: &str, given: Option<&str>) -> Result<(), Refusal> {
    let Some(given) = given.filter(|value| !value.is_empty()) else {
        return Err(Refusal::Unsigned);
    };
    if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// Checks an `Authorization` header (Alertmanager's bearer token or basic credentials) in
/// constant time.
pub fn authorization(expected: &super::AlertAuth, given: Option<&str>) -> Result<(), Refusal> {
    let Some(given) = given.map(str::trim).filter(|value| !value.is_empty()) else {
        return Err(Refusal::Unsigned);
    };
    let (scheme, credentials) = given.split_once(' ').unwrap_or((given, ""));
    let credentials = credentials.trim();
    let matches = match expected {
        super::AlertAuth::Bearer(token) => {
            scheme.eq_ignore_ascii_case("bearer")
                & !token.is_empty()
                & constant_time_eq(token.as_bytes(), credentials.as_bytes())
        }
        super::AlertAuth::Basic { username, password } => {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .unwrap_or_default();
            let wanted = format!("{username}:{password}");
            scheme.eq_ignore_ascii_case("basic") & constant_time_eq(wanted.as_bytes(), &decoded)
        }
    };
    if matches {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// The `sha256=…` signature GitHub would send for `body` (tests and benchmarks).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_example_verifies() {
        // From GitHub's "Validating webhook deliveries": secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            signature
        );
        assert_eq!(
            hmac_sha256(
                b"It's a Secret to Everybody",
                b"Hello, World!",
                Some(signature)
            ),
            Ok(())
        );
    }

    #[test]
    fn wrong_missing_and_malformed_signatures_are_refused() {
        let good = sign(b"key", b"body");
        assert_eq!(hmac_sha256(b"key", b"body", Some(&good)), Ok(()));
        // Without the prefix, as generic senders often send it.
        assert_eq!(
            hmac_sha256(b"key", b"body", Some(good.trim_start_matches("sha256="))),
            Ok(())
        );
        assert_eq!(
            hmac_sha256(b"other", b"body", Some(&good)),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            hmac_sha256(b"key", b"body!", Some(&good)),
            Err(Refusal::BadSignature)
        );
        assert_eq!(hmac_sha256(b"key", b"body", None), Err(Refusal::Unsigned));
        assert_eq!(
            hmac_sha256(b"key", b"body", Some(" ")),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            hmac_sha256(b"key", b"body", Some("sha256=zz")),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            hmac_sha256(b"key", b"body", Some(&good[..good.len() - 2])),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn bearer_and_basic_credentials_must_match_exactly() {
        use super::super::AlertAuth;
        let bearer = AlertAuth::Bearer("t0ken".to_string());
        assert_eq!(authorization(&bearer, Some("Bearer t0ken")), Ok(()));
        assert_eq!(authorization(&bearer, Some("bearer t0ken")), Ok(()));
        assert_eq!(
            authorization(&bearer, Some("Bearer t0kem")),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            authorization(&bearer, Some("Basic t0ken")),
            Err(Refusal::BadSignature)
        );
        assert_eq!(authorization(&bearer, None), Err(Refusal::Unsigned));
        let basic = AlertAuth::Basic {
            username: "am".to_string(),
            password: "pw".to_string(),
        };
        // base64("am:pw")
        assert_eq!(authorization(&basic, Some("Basic YW06cHc=")), Ok(()));
        assert_eq!(
            authorization(&basic, Some("Basic YW06cHg=")),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            authorization(&basic, Some("Basic !!")),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn github_signatures_need_their_prefix() {
        let good = sign(b"key", b"body");
        assert_eq!(github_signature(b"key", b"body", Some(&good)), Ok(()));
        let bare = good.trim_start_matches("sha256=");
        assert_eq!(
            github_signature(b"key", b"body", Some(bare)),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            github_signature(b"key", b"body", Some(&format!("SHA256={bare}"))),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            github_signature(b"key", b"body", Some(&format!("sha1={bare}"))),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            github_signature(b"key", b"body", None),
            Err(Refusal::Unsigned)
        );
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert_eq!(token("s3cret", Some("s3cret")), Ok(()));
        assert_eq!(token("s3cret", Some("s3cre")), Err(Refusal::BadSignature));
        assert_eq!(token("s3cret", Some("s3creT")), Err(Refusal::BadSignature));
        assert_eq!(token("s3cret", None), Err(Refusal::Unsigned));
    }
}
