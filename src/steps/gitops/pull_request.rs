//! `gitops.pull-request`: after the push, a pull request from the pushed branch through GitHub's
//! REST API (`POST /repos/{owner}/{repo}/pulls`). Opening one that already exists is not a
//! failure: GitHub answers 422, and the open pull request for the branch is looked up instead, so
//! that a re-run reports the same URL.

use crate::steps::http::{self, Request, RequestBody};
use crate::steps::notify::{DEFAULT_GITHUB_API_URL, github_headers, non_empty};
use crate::steps::{Outputs, StepError};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::time::Duration;

/// `pull-request:` as written (after rendering).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "Open a GitHub pull request from the pushed branch (`head`) into `base` after the push."
)]
pub struct PullRequestConfig {
    /// The pull request's title.
    pub title: String,
    /// Its description (default: the commit message).
    pub body: Option<String>,
    /// The branch the pull request merges into (default: `branch`).
    pub base: Option<String>,
    /// The branch the commit is pushed to and proposed from (default: `branch`). When it is not on
    /// the remote yet, it starts at `base`; when it is, the commit goes on top of it.
    pub head: Option<String>,
    /// `owner/name` on GitHub (default: the last two parts of `repo`'s URL).
    pub repo: Option<String>,
    /// The REST API's root (default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`).
    pub api_url: Option<String>,
    /// Sent as `Authorization: Bearer <token>` (default: the step's `token`). Use a secret.
    pub token: Option<String>,
}

/// The pull request as resolved against the step: every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    pub title: String,
    pub body: String,
    pub base: String,
    pub head: String,
    /// `owner/name`.
    pub repo: String,
    pub api_url: String,
    pub token: Option<String>,
}

impl PullRequestConfig {
    /// Fills in the defaults from the step (`branch`, `repo`, `token`, the commit message).
    pub fn resolve(
        &self,
        branch: &str,
        repo_url: &str,
        token: Option<&str>,
        message: &str,
    ) -> Result<PullRequest, String> {
        let base = non_empty(&self.base).unwrap_or(branch).to_string();
        let head = non_empty(&self.head).unwrap_or(branch).to_string();
        if head == base {
            return Err(format!(
                "gitops: `pull-request` would merge `{head}` into itself: set `pull-request.head` \
                 (the branch to push and propose) or `pull-request.base` to another branch"
            ));
        }
        let repo = match non_empty(&self.repo) {
            Some(repo) => repo.to_string(),
            None => github_repo(repo_url).ok_or_else(|| {
                format!(
                    "gitops: cannot tell the GitHub repository from `{}`; set `pull-request.repo: \
                     owner/name`",
                    super::repo::scrub_url(repo_url)
                )
            })?,
        };
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            return Err(format!(
                "gitops: `pull-request.repo` must be `owner/name`, not `{repo}`"
            ));
        }
        let api_url = non_empty(&self.api_url)
            .unwrap_or(DEFAULT_GITHUB_API_URL)
            .trim_end_matches('/')
            .to_string();
        if !api_url.starts_with("http://") && !api_url.starts_with("https://") {
            return Err(format!(
                "gitops: `pull-request.api-url` must be an `http://` or `https://` URL, not `{api_url}`"
            ));
        }
        Ok(PullRequest {
            title: self.title.clone(),
            body: self.body.clone().unwrap_or_else(|| message.to_string()),
            base,
            head,
            repo,
            api_url,
            token: non_empty(&self.token).or(token).map(str::to_string),
        })
    }
}

/// `owner/name` from a remote URL: `https://github.com/acme/deploy.git`,
/// `ssh://git@github.com/acme/deploy`, `git@github.com:acme/deploy.git`. A local path names no
/// GitHub repository.
fn github_repo(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        Some((scheme, rest)) if scheme != "file" => rest.split_once('/')?.1,
        Some(_) => return None,
        // scp-like `user@host:path`; a bare path has no `:` before its first `/`.
        None => {
            let (host, path) = url.split_once(':')?;
            if host.contains('/') {
                return None;
            }
            path
        }
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut parts = path.rsplit('/');
    let name = parts.next().filter(|name| !name.is_empty())?;
    let owner = parts.next().filter(|owner| !owner.is_empty())?;
    Some(format!("{owner}/{name}"))
}

/// An open pull request.
#[derive(Debug, PartialEq)]
pub struct Opened {
    pub url: String,
    pub number: u64,
}

impl Opened {
    /// The step's outputs: `pr-url` is SPEC §2.3's name, `pull-request-url` its long form.
    pub fn outputs(&self, outputs: &mut Outputs) {
        outputs.insert("pr-url".to_string(), Json::String(self.url.clone()));
        outputs.insert(
            "pull-request-url".to_string(),
            Json::String(self.url.clone()),
        );
        outputs.insert("pull-request-number".to_string(), Json::from(self.number));
    }
}

/// Opens the pull request, or finds the open one for the same branches. `None`: GitHub says the
/// branches hold the same commits (a re-run after a merge), so there is nothing to propose.
pub fn open(pull_request: &PullRequest, timeout: Duration) -> Result<Option<Opened>, StepError> {
    let PullRequest {
        repo, head, base, ..
    } = pull_request;
    let body = json!({
        "title": pull_request.title,
        "head": head,
        "base": base,
        "body": pull_request.body,
    });
    let url = format!("{}/repos/{repo}/pulls", pull_request.api_url);
    let (status, answer) = call(pull_request, "POST", &url, Some(body), timeout)?;
    match status {
        200..=299 => opened(&answer).map(Some),
        422 if github_says(&answer, "A pull request already exists") => {
            // Same-repository pull requests: the head is `owner:branch` with the base's owner.
            let owner = repo.split('/').next().unwrap_or_default();
            let query = format!(
                "head={}&base={}&state=open",
                urlencode(&format!("{owner}:{head}")),
                urlencode(base)
            );
            let (status, answer) = call(
                pull_request,
                "GET",
                &format!("{url}?{query}"),
                None,
                timeout,
            )?;
            match (status, answer.as_array().and_then(|list| list.first())) {
                (200..=299, Some(first)) => opened(first).map(Some),
                (200..=299, None) => Err(StepError::new(format!(
                    "gitops: GitHub says a pull request from `{head}` into `{base}` exists, but \
                     lists none open"
                ))),
                _ => Err(refused(status, &answer)),
            }
        }
        422 if github_says(&answer, "No commits between") => Ok(None),
        _ => Err(refused(status, &answer)),
    }
}

/// One API request; any HTTP status comes back (`open` decides what it means).
fn call(
    pull_request: &PullRequest,
    method: &str,
    url: &str,
    body: Option<Json>,
    timeout: Duration,
) -> Result<(u16, Json), StepError> {
    let request = Request {
        method: method.to_string(),
        url: url.to_string(),
        headers: github_headers(pull_request.token.as_deref()),
        body: body.map(RequestBody::Json),
        timeout,
    };
    let success = http::send(request, &[(100, 599)])
        .map_err(|error| StepError::new(format!("gitops: pull request: {}", error.message)))?;
    let status = success
        .outputs
        .get("status")
        .and_then(Json::as_u64)
        .and_then(|status| u16::try_from(status).ok())
        .unwrap_or(0);
    let json = success.outputs.get("json").cloned().unwrap_or(Json::Null);
    Ok((status, json))
}

fn opened(answer: &Json) -> Result<Opened, StepError> {
    match (
        answer.get("html_url").and_then(Json::as_str),
        answer.get("number").and_then(Json::as_u64),
    ) {
        (Some(url), Some(number)) => Ok(Opened {
            url: url.to_string(),
            number,
        }),
        _ => Err(StepError::new(
            "gitops: GitHub's answer about the pull request has no `html_url` and `number`",
        )),
    }
}

/// GitHub's messages in an error answer: the top `message`, then each `errors[].message`.
fn github_messages(answer: &Json) -> impl Iterator<Item = &str> {
    let top = answer.get("message").and_then(Json::as_str);
    let details = answer
        .get("errors")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|error| error.get("message").and_then(Json::as_str));
    top.into_iter().chain(details)
}

/// Whether one of GitHub's messages starts with `text`.
fn github_says(answer: &Json, text: &str) -> bool {
    github_messages(answer).any(|message| message.starts_with(text))
}

/// A refusal in GitHub's words (`401: Bad credentials`); the body is JSON GitHub wrote, and the
/// masker still runs over the message before anyone sees it.
fn refused(status: u16, answer: &Json) -> StepError {
    let reasons: Vec<&str> = github_messages(answer).collect();
    let reason = if reasons.is_empty() {
        "no message".to_string()
    } else {
        reasons.join("; ")
    };
    StepError::new(format!(
        "gitops: GitHub refused the pull request: HTTP {status}: {reason}"
    ))
}

/// Percent-encodes a query value (branch names may hold `/`, `+`, `#`).
fn urlencode(value: &str) -> String {
    crate::percent::encode(value, b"-._~:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_repositories_from_remote_urls() {
        let cases = [
            ("https://github.com/acme/deploy.git", Some("acme/deploy")),
            ("https://github.com/acme/deploy", Some("acme/deploy")),
            (
                "https://ghe.acme.io/platform/deploy.git/",
                Some("platform/deploy"),
            ),
            ("ssh://git@github.com/acme/deploy.git", Some("acme/deploy")),
            ("git@github.com:acme/deploy.git", Some("acme/deploy")),
            ("/srv/git/deploy.git", None),
            ("file:///srv/git/deploy.git", None),
            ("https://github.com/deploy.git", None),
        ];
        for (url, want) in cases {
            assert_eq!(github_repo(url).as_deref(), want, "{url}");
        }
    }

    fn config(value: Json) -> PullRequestConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_come_from_the_step() {
        let resolved = config(json!({"title": "t", "base": "main"}))
            .resolve(
                "vane/api",
                "https://github.com/acme/deploy.git",
                Some("tok"),
                "deploy api",
            )
            .unwrap();
        assert_eq!(
            resolved,
            PullRequest {
                title: "t".into(),
                body: "deploy api".into(),
                base: "main".into(),
                head: "vane/api".into(),
                repo: "acme/deploy".into(),
                api_url: "https://api.github.com".into(),
                token: Some("tok".into()),
            }
        );
    }

    #[test]
    fn refuses_what_cannot_work() {
        let cases = [
            (
                json!({"title": "t"}),
                "https://github.com/a/b",
                "into itself",
            ),
            (
                json!({"title": "t", "head": "x"}),
                "/srv/deploy.git",
                "set `pull-request.repo: owner/name`",
            ),
            (
                json!({"title": "t", "head": "x", "repo": "acme"}),
                "/srv/deploy.git",
                "must be `owner/name`",
            ),
            (
                json!({"title": "t", "head": "x", "api-url": "api.github.com"}),
                "https://github.com/a/b",
                "must be an `http://` or `https://` URL",
            ),
        ];
        for (value, url, want) in cases {
            let error = config(value.clone())
                .resolve("main", url, None, "m")
                .unwrap_err();
            assert!(error.contains(want), "{value}: {error}");
        }
    }

    #[test]
    fn recognises_github_messages() {
        let exists = json!({"message": "Validation Failed", "errors": [
            {"resource": "PullRequest", "code": "custom",
             "message": "A pull request already exists for acme:vane/api."}]});
        assert!(github_says(&exists, "A pull request already exists"));
        assert!(!github_says(&exists, "No commits between"));
        assert_eq!(
            refused(422, &exists).message,
            "gitops: GitHub refused the pull request: HTTP 422: Validation Failed; A pull request \
             already exists for acme:vane/api."
        );
        assert_eq!(urlencode("acme:vane/api+1"), "acme:vane%2Fapi%2B1");
    }
}
