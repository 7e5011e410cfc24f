//! The OCI distribution API, as much of it as a tag watcher needs: where an image lives
//! ([`Image`]), the tag list with `n`/`last` pagination through `Link`, manifest digests (`HEAD`
//! with the index and manifest media types), and image configs (`created`). Authentication
//! answers the registry's challenge: `Bearer` (a token from the realm, anonymous or with the
//! credentials) or `Basic`. Credentials and tokens stay in this client: never in a message.

use super::super::rate_limit::Limits;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

/// Where an image lives: `https://ghcr.io` + `acme/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `https://ghcr.io`, `http://127.0.0.1:5000`.
    pub base: String,
    /// `acme/api`, `library/nginx`.
    pub repository: String,
}

/// Docker Hub's API host, for images written without one or as `docker.io/…`.
const DOCKER_HUB: &str = "registry-1.docker.io";

impl Image {
    /// Reads `host/repository`. Plain `http://` is used for loopback hosts (as Docker does) and
    /// with `insecure`; everything else is `https://`.
    pub fn parse(image: &str, insecure: bool) -> Result<Image, String> {
        let bad = |why: &str| format!("`{image}` is not an image reference: {why}");
        if image.contains("://") {
            return Err(bad("give `host/repository`, without a scheme"));
        }
        if image.contains('@')
            || image
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
        {
            return Err(bad(
                "name the repository, not a tag or digest (the policy picks the tag)",
            ));
        }
        let (host, repository) = match image.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), image.to_string()),
        };
        let host = match host.as_str() {
            "docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
            _ => host,
        };
        let repository = if host == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component = |part: &str| {
            !part.is_empty()
                && part.bytes().all(|byte| {
                    byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte)
                })
        };
        if !repository.split('/').all(component) {
            return Err(bad(
                "repository names are lowercase letters, digits, `.`, `_`, `-`, separated by `/`",
            ));
        }
        let name = host
            .rsplit_once(':')
            .map_or(host.as_str(), |(name, _)| name);
        let loopback = matches!(name, "localhost" | "[::1]") || name.starts_with("127.");
        let scheme = if loopback || insecure {
            "http"
        } else {
            "https"
        };
        Ok(Image {
            base: format!("{scheme}://{host}"),
            repository,
        })
    }
}

/// Why a request gave nothing.
#[derive(Debug)]
pub enum Failure {
    /// The registry said to wait until then (Unix seconds).
    Limited(i64),
    Error(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Error(message)
    }
}

/// How requests are authorized, once the registry has said how.
enum Auth {
    None,
    Basic,
    Bearer(String),
}

/// The media types a manifest request accepts: indexes first, so that the digest is the one
/// `docker pull TAG` resolves (a multi-platform image's index, not one platform's manifest).
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Tags asked for per page; a registry may send fewer (and a `Link` to the rest).
const PAGE: usize = 1000;

/// A client of one image's repository.
pub struct Registry<'a> {
    client: &'a Client,
    image: Image,
    credentials: Option<(String, String)>,
    auth: Auth,
    now: i64,
    /// A wait a successful answer announced (the window's last request spent).
    pub not_before: Option<i64>,
}

impl<'a> Registry<'a> {
    pub fn new(
        client: &'a Client,
        image: Image,
        credentials: Option<(String, String)>,
        now: i64,
    ) -> Registry<'a> {
        Registry {
            client,
            image,
            credentials,
            auth: Auth::None,
            now,
            not_before: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.image.base, self.image.repository)
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match (&self.auth, &self.credentials) {
            (Auth::Bearer(token), _) => request.bearer_auth(token),
            (Auth::Basic, Some((username, password))) => {
                request.basic_auth(username, Some(password))
            }
            _ => request,
        }
    }

    /// Sends a request (`make` builds it afresh for a retry), answering one auth challenge.
    fn send(
        &mut self,
        what: &str,
        make: &dyn Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let mut challenges = 0;
        loop {
            let response = self
                .authorized(make(self.client))
                .send()
                .map_err(|error| format!("{what}: {}", error.without_url()))?;
            let limits = Limits::of(&response);
            let until = limits.not_before(self.now);
            let status = response.status();
            if status.is_success() {
                if until.is_some() {
                    self.not_before = until;
                }
                return Ok(response);
            }
            if let Some(until) = until {
                return Err(Failure::Limited(until));
            }
            // Two challenges answered at most (say, Basic then Bearer); a challenge answered
            // already (refused credentials or token) is an error in `answer`.
            if status == StatusCode::UNAUTHORIZED && challenges < 2 {
                challenges += 1;
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_string);
                self.answer(what, challenge.as_deref())?;
                continue;
            }
            return Err(Failure::Error(format!(
                "{what} answered {status}{}",
                registry_error(response)
            )));
        }
    }

    /// Prepares the authorization a `WWW-Authenticate` challenge asks for.
    fn answer(&mut self, what: &str, challenge: Option<&str>) -> Result<(), Failure> {
        let Some(challenge) = challenge else {
            return Err(Failure::Error(format!(
                "{what} answered 401 Unauthorized without saying how to authenticate"
            )));
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let params = challenge_params(params);
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            if self.credentials.is_none() || matches!(self.auth, Auth::Basic) {
                return Err(Failure::Error(format!(
                    "{what}: the registry wants a login (Basic){}",
                    if self.credentials.is_some() {
                        " and refused the credentials"
                    } else {
                        "; give `credentials`"
                    }
                )));
            }
            self.auth = Auth::Basic;
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Failure::Error(format!(
                "{what}: the registry asks for `{scheme}` authentication, which vane does not speak"
            )));
        }
        if matches!(self.auth, Auth::Bearer(_)) {
            return Err(Failure::Error(format!(
                "{what}: the registry refused the token its own token service gave{}",
                if self.credentials.is_some() {
                    ""
                } else {
                    "; give `credentials`"
                }
            )));
        }
        let Some(realm) = param("realm") else {
            return Err(Failure::Error(format!(
                "{what}: the registry's Bearer challenge names no `realm`"
            )));
        };
        let realm = realm.to_string();
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(service) = param("service") {
            query.push(("service", service.to_string()));
        }
        let scope = param("scope")
            .map(str::to_string)
            .unwrap_or_else(|| format!("repository:{}:pull", self.image.repository));
        query.push(("scope", scope));
        let shown = crate::steps::gitops::repo::scrub_url(&realm);
        let url = reqwest::Url::parse_with_params(&realm, &query)
            .map_err(|error| format!("the token service `{shown}` is not a URL: {error}"))?;
        let mut request = self.client.get(url);
        if let Some((username, password)) = &self.credentials {
            request = request.basic_auth(username, Some(password));
        }
        let response = request
            .send()
            .map_err(|error| format!("the token service `{shown}`: {}", error.without_url()))?;
        let status = response.status();
        if let Some(until) = Limits::of(&response).not_before(self.now)
            && !status.is_success()
        {
            return Err(Failure::Limited(until));
        }
        if !status.is_success() {
            return Err(Failure::Error(format!(
                "the token service `{shown}` answered {status}{}",
                if self.credentials.is_some() {
                    " (the credentials were refused)"
                } else {
                    "; give `credentials` if the image is private"
                }
            )));
        }
        let body: Value = response.json().map_err(|error| {
            format!(
                "the token service `{shown}` sent no JSON token: {}",
                error.without_url()
            )
        })?;
        let token = ["token", "access_token"]
            .iter()
            .find_map(|key| body.get(key).and_then(Value::as_str))
            .filter(|token| !token.is_empty())
            .ok_or_else(|| format!("the token service `{shown}` sent no `token`"))?;
        // `expires_in` matters to a long-lived client; one poll is over well within it (the
        // distribution spec's minimum is 60 seconds), and the next poll asks again.
        self.auth = Auth::Bearer(token.to_string());
        Ok(())
    }

    /// Every tag, following `Link: <…>; rel="next"` as given; more than `max` is an error.
    pub fn tags(&mut self, max: usize) -> Result<Vec<String>, Failure> {
        let mut tags = Vec::new();
        let mut next = Some(format!(
            "{}?n={}",
            self.url("tags/list"),
            PAGE.min(max.max(1))
        ));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let what = format!("GET `{}` (page {pages})", self.url("tags/list"));
            let response = self.send(&what, &|client| client.get(&url))?;
            next = response
                .headers()
                .get("link")
                .and_then(|value| value.to_str().ok())
                .and_then(next_link)
                .map(|link| self.resolve(&link))
                .transpose()
                .map_err(|message| format!("{what}: {message}"))?;
            let body: Value = response
                .json()
                .map_err(|error| format!("{what}: not a tag list: {}", error.without_url()))?;
            let page = match body.get("tags") {
                Some(Value::Array(page)) => page,
                // A repository with no tags lists `null`.
                Some(Value::Null) | None => &Vec::new(),
                Some(_) => return Err(Failure::Error(format!("{what}: `tags` is not a list"))),
            };
            tags.extend(page.iter().filter_map(Value::as_str).map(str::to_string));
            if tags.len() > max {
                return Err(Failure::Error(format!(
                    "the repository has more than `max-tags` ({max}) tags; raise `max-tags`"
                )));
            }
            if next.as_deref() == Some(url.as_str()) {
                return Err(Failure::Error(format!(
                    "{what}: `Link` points at the same page"
                )));
            }
        }
        Ok(tags)
    }

    /// A `Link` target: a path on the registry, or an absolute URL on it. Another host is
    /// refused: the next request carries the registry's token.
    fn resolve(&self, link: &str) -> Result<String, String> {
        if !link.starts_with("http://") && !link.starts_with("https://") {
            return Ok(format!(
                "{}/{}",
                self.image.base,
                link.trim_start_matches('/')
            ));
        }
        if link.starts_with(&format!("{}/", self.image.base)) {
            Ok(link.to_string())
        } else {
            Err(format!(
                "`Link` points at another host (`{}`); vane sends its token to the registry only",
                crate::steps::gitops::repo::scrub_url(link)
            ))
        }
    }

    /// The digest `TAG` resolves to (`HEAD`; a `GET` hashed where the registry sends no
    /// `Docker-Content-Digest`).
    pub fn digest(&mut self, tag: &str) -> Result<String, Failure> {
        let url = self.url(&format!("manifests/{tag}"));
        let what = format!("HEAD `{url}`");
        let response = self.send(&what, &|client| {
            client.head(&url).header("Accept", MANIFEST_TYPES)
        })?;
        if let Some(digest) = content_digest(&response) {
            return Ok(digest);
        }
        let (digest, _) = self.manifest(tag)?;
        Ok(digest)
    }

    /// The manifest `reference` names, and its digest.
    fn manifest(&mut self, reference: &str) -> Result<(String, Value), Failure> {
        let url = self.url(&format!("manifests/{reference}"));
        let what = format!("GET `{url}`");
        let response = self.send(&what, &|client| {
            client.get(&url).header("Accept", MANIFEST_TYPES)
        })?;
        let header = content_digest(&response);
        let body = response
            .bytes()
            .map_err(|error| format!("{what}: {}", error.without_url()))?;
        let digest = header.unwrap_or_else(|| {
            use sha2::Digest;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)))
        });
        let manifest = serde_json::from_slice(&body)
            .map_err(|error| format!("{what}: the manifest is not JSON: {error}"))?;
        Ok((digest, manifest))
    }

    /// The tag's digest and when its image was built (`created` of its config; for an index,
    /// of its `linux/amd64` image, else its first).
    pub fn build(&mut self, tag: &str) -> Result<(String, Option<DateTime<Utc>>), Failure> {
        let (digest, mut manifest) = self.manifest(tag)?;
        if let Some(entries) = manifest.get("manifests").and_then(Value::as_array) {
            let platform = |entry: &&Value| {
                entry["platform"]["os"] == "linux" && entry["platform"]["architecture"] == "amd64"
            };
            let chosen = entries.iter().find(platform).or_else(|| entries.first());
            let Some(child) = chosen.and_then(|entry| entry["digest"].as_str()) else {
                return Ok((digest, None));
            };
            manifest = self.manifest(child)?.1;
        }
        let Some(config) = manifest["config"]["digest"].as_str() else {
            return Ok((digest, None));
        };
        let url = self.url(&format!("blobs/{config}"));
        let what = format!("GET `{url}`");
        let response = self.send(&what, &|client| client.get(&url))?;
        let body: Value = response.json().map_err(|error| {
            format!(
                "{what}: the image config is not JSON: {}",
                error.without_url()
            )
        })?;
        let created = body["created"]
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|time| time.to_utc());
        Ok((digest, created))
    }
}

fn content_digest(response: &Response) -> Option<String> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .filter(|digest| digest.contains(':'))
        .map(str::to_string)
}

/// ` (NAME_UNKNOWN)`: the registry's own error codes, which say more than the status.
fn registry_error(response: Response) -> String {
    let Ok(body) = response.json::<Value>() else {
        return String::new();
    };
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["code"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", codes.join(", "))
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|param| {
                let param = param.trim().replace(' ', "");
                param == "rel=\"next\"" || param == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// `realm="…",service="…",scope="repository:a:pull,push"` as pairs (quoted commas kept).
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key, value));
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_map_to_hosts_and_schemes() {
        let cases = [
            ("ghcr.io/acme/api", "https://ghcr.io", "acme/api"),
            ("nginx", "https://registry-1.docker.io", "library/nginx"),
            (
                "docker.io/nginx",
                "https://registry-1.docker.io",
                "library/nginx",
            ),
            (
                "docker.io/acme/api",
                "https://registry-1.docker.io",
                "acme/api",
            ),
            ("acme/api", "https://registry-1.docker.io", "acme/api"),
            (
                "127.0.0.1:5000/acme/api",
                "http://127.0.0.1:5000",
                "acme/api",
            ),
            ("localhost:5000/api", "http://localhost:5000", "api"),
            (
                "registry.internal:5000/a/b/c",
                "https://registry.internal:5000",
                "a/b/c",
            ),
        ];
        for (text, base, repository) in cases {
            let image = Image::parse(text, false).unwrap();
            assert_eq!(
                (image.base.as_str(), image.repository.as_str()),
                (base, repository)
            );
        }
        assert_eq!(
            Image::parse("registry.internal/api", true).unwrap().base,
            "http://registry.internal"
        );
        for bad in [
            "ghcr.io/acme/api:1.0",
            "https://ghcr.io/acme/api",
            "ghcr.io/Acme/api",
            "ghcr.io/a//b",
            "x@sha256:00",
        ] {
            assert!(Image::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn challenges_and_links_are_read() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#
            ),
            vec![
                (
                    "realm".to_string(),
                    "https://auth.docker.io/token".to_string()
                ),
                ("service".to_string(), "registry.docker.io".to_string()),
                (
                    "scope".to_string(),
                    "repository:library/nginx:pull,push".to_string()
                ),
            ]
        );
        assert_eq!(
            next_link(r#"</v2/acme/api/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/acme/api/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"<https://x/prev>; rel="prev""#), None);
        let client = Client::new();
        let registry = Registry::new(
            &client,
            Image::parse("ghcr.io/acme/api", false).unwrap(),
            None,
            0,
        );
        assert_eq!(
            registry.resolve("/v2/acme/api/tags/list?last=b").unwrap(),
            "https://ghcr.io/v2/acme/api/tags/list?last=b"
        );
        assert!(
            registry
                .resolve("https://ghcr.io/v2/acme/api/tags/list?last=b")
                .is_ok()
        );
        assert!(
            registry
                .resolve("https://ghcr.io.evil.example/v2/x")
                .unwrap_err()
                .contains("another host")
        );
    }
}
