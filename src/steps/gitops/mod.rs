//! `gitops`: a commit to a config repository, made with git2 (SPEC §2.3). `set` edits change only
//! the named scalars' bytes (`yaml_set`); the repository is a bare cache under the state folder,
//! fetched on every run, and a push the remote rejected because it moved is made again on the new
//! head (`repo`); `pull-request` then proposes the pushed branch on GitHub (`pull_request`). The
//! token reaches libgit2 through a callback only: never a URL, log or error.

pub mod pull_request;
pub mod repo;
pub mod yaml_set;

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::template::{TemplateTree, Templates, TreeError, TreeMode};
use crate::yaml::YamlError;
use pull_request::PullRequestConfig;
use repo::{Author, Change, Outcome, Promotion, Remote, Snapshot};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::path::{Component, Path, PathBuf};

/// The keys of a `gitops` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitopsKeys {
    /// A commit to a config repository: YAML values set in place or files written, then pushed.
    #[schemars(with = "Option<GitopsConfig>")]
    pub gitops: Option<Json>,
}

/// The `gitops` step kind.
pub struct GitopsKind;

impl StepKind for GitopsKind {
    fn key(&self) -> &'static str {
        "gitops"
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        GitopsKeys::json_schema(generator)
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: GitopsKeys = site.keys(keys)?;
        let value = keys.gitops.unwrap_or(Json::Null);
        let path = site.key("gitops");
        let gitops: Option<GitopsConfig> = site.check_shape(&value, &path)?;
        if let Some(Err(message)) = gitops.as_ref().map(GitopsConfig::validate) {
            return Err(site.at("gitops", message));
        }
        Ok(Compiled::new(GitopsStep(site.tree(
            &value,
            TreeMode::Text,
            &path,
        )?)))
    }
}

/// A compiled `gitops` step: the repository, the files and the commit, every string a template.
#[derive(Debug)]
struct GitopsStep(TemplateTree);

impl CompiledStep for GitopsStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        Ok(super::keyed("gitops", self.0.render(context)?))
    }

    /// The tokens (the push's and the pull request's).
    fn secrets(&self, rendered: &Json) -> Vec<String> {
        let gitops = &rendered["gitops"];
        let tokens = [
            gitops.get("token"),
            gitops
                .get("pull-request")
                .and_then(|pull_request| pull_request.get("token")),
        ];
        tokens
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect()
    }

    /// Fetches the config repository to show the diff; commits nothing.
    fn plan(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: GitopsConfig = super::typed("gitops", &rendered["gitops"])?;
        execute(config, context.values, context, true)
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: GitopsConfig = super::typed("gitops", &rendered["gitops"])?;
        execute(config, context.values, context, false)
    }
}

/// `gitops:` as written (after rendering).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "A commit to a config repository: edit YAML values in place or write files, commit, push."
)]
pub struct GitopsConfig {
    /// The repository: `https://…`, `http://…`, `git://…`, `file://…` or a local path.
    pub repo: String,
    /// The branch to commit to (default `main`); it must exist on the remote.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// For `https://` and `http://` remotes: the token, sent as basic auth with the user
    /// `x-access-token` when the server asks. Use a secret (`{{ secrets.GITOPS_TOKEN }}`). `ssh://`
    /// remotes are not served by this build (git2 without ssh).
    pub token: Option<String>,
    /// The files to change, in order.
    pub files: Vec<FileConfig>,
    /// The commit message (default `vane: update <files>`).
    pub message: Option<String>,
    /// The commit's author and committer (default `vane <vane@localhost>`).
    pub author: Option<AuthorConfig>,
    /// Push the commit (default `true`); `false` commits in the local cache only.
    #[serde(default = "default_push")]
    pub push: bool,
    /// After the push, open a GitHub pull request from the pushed branch.
    pub pull_request: Option<PullRequestConfig>,
}

/// One file of `files:`: `set` edits YAML values in place; `template` or `content` replace it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file's path in the repository.
    pub path: String,
    /// YAML path → new value (`image.tag`, `spec.containers[0].image`). Only the scalar's text
    /// changes: comments and formatting elsewhere stay byte for byte.
    #[schemars(with = "Option<Map<String, Json>>")]
    pub set: Option<Map<String, Json>>,
    /// A template file (under the templates folder) rendered as the file's new content.
    pub template: Option<String>,
    /// The file's new content.
    pub content: Option<String>,
}

/// The commit's author and committer.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorConfig {
    /// The name on the commit (`vane`).
    pub name: String,
    /// The email on the commit (`vane@localhost`).
    pub email: String,
}

fn default_branch() -> String {
    "main".to_string()
}

fn default_push() -> bool {
    true
}

impl GitopsConfig {
    /// Checks what the types cannot: one source per file, a pull request between two branches.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(pull_request) = &self.pull_request {
            // At load time a templated value is not known yet: it is checked once rendered.
            let templated = [
                Some(&self.repo),
                Some(&self.branch),
                pull_request.head.as_ref(),
                pull_request.base.as_ref(),
                pull_request.repo.as_ref(),
                pull_request.api_url.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|text| crate::template::is_template(text));
            if !templated {
                pull_request.resolve(&self.branch, &self.repo, self.token.as_deref(), "")?;
            }
            if !self.push {
                return Err("gitops: `pull-request` needs `push: true`".to_string());
            }
        }
        if self.files.is_empty() {
            return Err("gitops: `files` is empty".to_string());
        }
        for file in &self.files {
            let sources = [
                file.set.is_some(),
                file.template.is_some(),
                file.content.is_some(),
            ]
            .into_iter()
            .filter(|set| *set)
            .count();
            if sources != 1 {
                return Err(format!(
                    "gitops: file `{}` needs exactly one of `set`, `template`, `content`",
                    file.path
                ));
            }
        }
        Ok(())
    }
}

/// The file's path as a clean relative path inside the repository.
fn repo_path(path: &str) -> Result<String, StepError> {
    let mut clean = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) if part != ".git" => clean.push(part),
            Component::CurDir => {}
            _ => {
                return Err(StepError::new(format!(
                    "gitops: file `{path}` must be a relative path inside the repository"
                )));
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(StepError::new(format!("gitops: file `{path}` is empty")));
    }
    Ok(clean.to_string_lossy().into_owned())
}

/// Runs (or, in a dry run, plans) the step. `context` renders `template:` files.
pub fn execute(
    config: GitopsConfig,
    context: &minijinja::Value,
    step_context: &StepContext,
    dry_run: bool,
) -> Result<StepSuccess, StepError> {
    config.validate().map_err(StepError::new)?;
    if let Some(token) = &config.token {
        step_context.masker.add(token);
    }
    // Templates render once, before any fetch: the same text is re-applied on every retry.
    let mut planned = Vec::with_capacity(config.files.len());
    for file in &config.files {
        let path = repo_path(&file.path)?;
        let edit = if let Some(set) = &file.set {
            Edit::Set(set.clone())
        } else if let Some(name) = &file.template {
            let template = step_context
                .templates
                .file(name)
                .map_err(|error| StepError::new(format!("gitops: {}", error.message)))?;
            let content = Templates::render(&template, context).map_err(|error| {
                let line = error
                    .line
                    .map(|line| format!(" (line {line})"))
                    .unwrap_or_default();
                StepError::new(format!(
                    "gitops: template `{name}`{line}: {}",
                    error.message
                ))
            })?;
            Edit::Replace(content)
        } else {
            Edit::Replace(file.content.clone().unwrap_or_default())
        };
        planned.push((path, edit));
    }
    let paths: Vec<&str> = planned.iter().map(|(path, _)| path.as_str()).collect();
    let message = config
        .message
        .clone()
        .unwrap_or_else(|| format!("vane: update {}", paths.join(", ")));
    let token = config.token.as_deref().filter(|token| !token.is_empty());
    let pull_request = match &config.pull_request {
        Some(pull_request) => {
            let resolved = pull_request
                .resolve(&config.branch, &config.repo, token, &message)
                .map_err(StepError::new)?;
            if let Some(token) = &resolved.token {
                step_context.masker.add(token);
            }
            Some(resolved)
        }
        None => None,
    };
    let (author_name, author_email) = match &config.author {
        Some(author) => (author.name.as_str(), author.email.as_str()),
        None => ("vane", "vane@localhost"),
    };
    let promotion = Promotion {
        remote: Remote {
            url: &config.repo,
            token,
        },
        // With a pull request the commit goes on its head branch, which starts at its base.
        branch: pull_request
            .as_ref()
            .map_or(config.branch.as_str(), |pull_request| &pull_request.head),
        start: pull_request
            .as_ref()
            .map(|pull_request| pull_request.base.as_str()),
        message: &message,
        author: Author {
            name: author_name,
            email: author_email,
        },
        push: config.push,
        dry_run,
    };
    let temporary;
    let state_folder = match step_context.state_folder {
        Some(folder) => folder,
        None => {
            // No state folder (`--state :memory:`): a cache for this process only.
            temporary = std::env::temp_dir().join(format!("vane-{}", uuid::Uuid::new_v4()));
            temporary.as_path()
        }
    };
    let cache = repo::cache_path(state_folder, &config.repo);
    let outcome = repo::promote(&cache, &promotion, |snapshot| apply(snapshot, &planned));
    if step_context.state_folder.is_none() {
        let _ = std::fs::remove_dir_all(state_folder);
    }
    let outcome = outcome.map_err(|message| StepError::new(format!("gitops: {message}")))?;
    let mut outputs = Outputs::new();
    let mut diff = None;
    // Whether the head branch is on the remote now with this step's edits: only then is there a
    // pull request to open (or to find again, on a re-run).
    let proposable = match outcome {
        Outcome::Unchanged { head, on_remote } => {
            outputs.insert("commit".to_string(), Json::String(head));
            outputs.insert("changed".to_string(), Json::Bool(false));
            outputs.insert("files".to_string(), Json::Array(Vec::new()));
            on_remote
        }
        Outcome::Planned { changes } => {
            diff = Some(unified_diffs(&changes));
            false
        }
        Outcome::Committed {
            commit,
            changes,
            pushed,
        } => {
            outputs.insert("commit".to_string(), Json::String(commit));
            outputs.insert("changed".to_string(), Json::Bool(true));
            outputs.insert("files".to_string(), changed_files(&changes));
            pushed
        }
    };
    if let Some(pull_request) = &pull_request
        && proposable
        && let Some(opened) = pull_request::open(pull_request, step_context.timeout)
            .map_err(|error| error.with_outputs(outputs.clone()))?
    {
        opened.outputs(&mut outputs);
    }
    Ok(StepSuccess {
        outputs,
        log: None,
        diff,
        emitted: Vec::new(),
    })
}

enum Edit {
    Set(Map<String, Json>),
    Replace(String),
}

/// The edits on one snapshot of the branch: the files whose text they change.
fn apply(snapshot: &Snapshot, planned: &[(String, Edit)]) -> Result<Vec<Change>, String> {
    let mut changes: Vec<Change> = Vec::new();
    for (path, edit) in planned {
        // A file named twice is edited on top of its first edit.
        let earlier = changes.iter().position(|change| &change.path == path);
        let current = match earlier {
            Some(at) => Some(changes[at].new.clone()),
            None => snapshot.read(path)?,
        };
        let new = match edit {
            Edit::Replace(content) => content.clone(),
            Edit::Set(values) => {
                let mut text = current.clone().ok_or_else(|| {
                    format!("`{path}` is not in the repository; `set` edits an existing file")
                })?;
                for (yaml_path, value) in values {
                    text = yaml_set::set(&text, yaml_path, value)
                        .map_err(|error| format!("`{path}`: {error}"))?;
                }
                text
            }
        };
        match earlier {
            Some(at) => changes[at].new = new,
            None => changes.push(Change {
                path: path.clone(),
                old: current,
                new,
            }),
        }
    }
    changes.retain(|change| change.old.as_deref() != Some(change.new.as_str()));
    Ok(changes)
}

fn changed_files(changes: &[Change]) -> Json {
    Json::Array(
        changes
            .iter()
            .map(|change| Json::String(change.path.clone()))
            .collect(),
    )
}

fn unified_diffs(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|change| {
            super::render::unified_diff(
                change.old.as_deref().unwrap_or(""),
                &change.new,
                Path::new(&change.path),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    #[test]
    fn a_gitops_step_is_validated_at_load_and_holds_its_tokens_as_secrets() {
        let error = compile(
            "gitops: { repo: r, files: [{ path: a, content: x }], pull-request: { title: t } }",
            &[],
        )
        .unwrap_err();
        assert!(
            error.starts_with("2:5: gitops: `pull-request` would merge `main` into itself"),
            "{error}"
        );
        let step = compile(
            "gitops:\n  repo: https://github.com/acme/deploy\n  token: '{{ t }}'\n  files: [{ path: a.yaml, content: x }]\n  pull-request: { title: t, head: promote, token: '{{ p }}' }",
            &[],
        )
        .unwrap();
        let rendered = render(&step, json!({"t": "push-token", "p": "pr-token"}));
        assert_eq!(step.action.secrets(&rendered), ["push-token", "pr-token"]);
    }

    #[test]
    fn pull_requests_are_checked_at_load_time_unless_templated() {
        let config = |repo: &str, head: &str| -> GitopsConfig {
            serde_json::from_value(serde_json::json!({
                "repo": repo,
                "files": [{"path": "a.yaml", "content": "a"}],
                "pull-request": {"title": "t", "head": head},
            }))
            .unwrap()
        };
        assert!(config("/srv/deploy.git", "x").validate().is_err());
        assert!(config("{{ vars.repo }}", "x").validate().is_ok());
        assert!(
            config("https://github.com/a/b", "main")
                .validate()
                .unwrap_err()
                .contains("into itself")
        );
        assert!(
            config("https://github.com/a/b", "{{ vars.head }}")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn file_paths_stay_inside_the_repository() {
        assert_eq!(
            repo_path("./apps/api/values.yaml").unwrap(),
            "apps/api/values.yaml"
        );
        for bad in ["../x", "/etc/passwd", ".git/config", "", "."] {
            assert!(repo_path(bad).is_err(), "{bad} should be refused");
        }
    }
}
