//! SPEC §5: hostile event data never runs, secrets never show.

use crate::support::{Vane, workflow_entry};

const TITLE_WORKFLOW: &str = r#"version: 1
name: titles
on: { pull_request: {} }
steps:
  - id: bare
    run: echo {{ event.data.pull_request.title }}
  - id: double
    run: |
      echo "Title: {{ event.data.pull_request.title }}!"
  - id: single
    run: echo '{{ event.data.pull_request.title }}'
"#;

#[test]
fn hostile_titles_are_printed_verbatim_and_never_run() {
    let marker_dir = tempfile::tempdir().unwrap();
    let pwned = marker_dir.path().join("pwned");
    let pwned_text = pwned.display().to_string();
    let titles = [
        format!("x'; touch {pwned_text}; echo '"),
        format!("$(touch {pwned_text})"),
        format!("`touch {pwned_text}`"),
        format!("\"; touch {pwned_text}; echo \""),
        format!("a\\\" ; touch {pwned_text} #"),
        format!("line one\ntouch {pwned_text}\nline three"),
        "it's a \"quoted\" $HOME \\ title".to_string(),
        String::new(),
    ];
    for title in titles {
        let event = serde_json::json!({"type": "pull_request", "source": "github",
            "data": {"action": "opened", "pull_request": {"title": title, "base": {"ref": "main"}, "head": {"sha": "abc"}}}});
        let run = Vane::new()
            .workflow("titles.yaml", TITLE_WORKFLOW)
            .args(&["run", "--json"])
            .stdin(event.to_string())
            .run()
            .expect_code(0);
        let output = run.json_lines().remove(0);
        let steps = &workflow_entry(&output, "titles")["run"]["steps"];
        let trimmed = title.trim();
        assert_eq!(steps[0]["outputs"]["stdout"], trimmed, "bare: {title:?}");
        assert_eq!(
            steps[1]["outputs"]["stdout"],
            format!("Title: {title}!").trim(),
            "double: {title:?}"
        );
        assert_eq!(steps[2]["outputs"]["stdout"], trimmed, "single: {title:?}");
        assert!(!pwned.exists(), "the title {title:?} ran a command");
    }
}

#[test]
fn a_secret_never_shows_in_output_json_or_errors() {
    let secret = "hunter2-Sup3r-s3cret";
    let workflow = r#"version: 1
name: leaky
on: { deploy: {} }
secrets: [API_TOKEN]
steps:
  - id: echo
    run: echo "token is {{ secrets.API_TOKEN }}"
  - id: env
    env: { TOKEN: "{{ secrets.API_TOKEN }}" }
    run: echo "from env $TOKEN"; echo "to stderr $TOKEN" >&2
  - id: fail
    run: echo "failing with $TOKEN" >&2; exit 3
    env: { TOKEN: "{{ secrets.API_TOKEN }}" }
"#;
    for format in [
        &["run"][..],
        &["run", "--json"][..],
        &["plan"][..],
        &["plan", "--json"][..],
        &["run", "-v"][..],
    ] {
        let run = Vane::new()
            .workflow("leaky.yaml", workflow)
            .env("API_TOKEN", secret)
            .args(format)
            .stdin(r#"{"type": "deploy", "data": {}}"#)
            .run();
        let everything = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            !everything.contains(secret),
            "{format:?} leaked the secret:\n{everything}"
        );
        assert!(
            !everything.contains("Sup3r"),
            "{format:?} leaked part of the secret"
        );
        if format == ["run", "--json"] {
            let output = run.json_lines().remove(0);
            let steps = &workflow_entry(&output, "leaky")["run"]["steps"];
            assert_eq!(steps[0]["outputs"]["stdout"], "token is ***");
            assert_eq!(steps[1]["outputs"]["stdout"], "from env ***");
            assert!(
                steps[2]["error"]
                    .as_str()
                    .unwrap()
                    .contains("failing with ***"),
                "{}",
                steps[2]["error"]
            );
        }
    }
}

#[test]
fn a_missing_secret_fails_the_run_before_any_step() {
    let workflow = "version: 1\nname: needs-secret\non: { deploy: {} }\nsecrets: [NOT_SET_ANYWHERE_X]\nsteps:\n  - run: touch ran\n";
    let run = Vane::new()
        .workflow("w.yaml", workflow)
        .args(&["run", "--json"])
        .stdin(r#"{"type": "deploy", "data": {}}"#)
        .run()
        .expect_code(1);
    let output = run.json_lines().remove(0);
    let record = &workflow_entry(&output, "needs-secret")["run"];
    assert_eq!(record["status"], "failure");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("secret `NOT_SET_ANYWHERE_X` is not set")
    );
    assert!(!run.dir.join("ran").exists());
}

#[test]
fn safe_on_event_data_is_warned_about() {
    let workflow = "version: 1\nname: unsafe\non: { push: {} }\nsteps:\n  - run: echo {{ event.data.head_commit.message | safe }}\n";
    let run = Vane::new()
        .workflow("w.yaml", workflow)
        .args(&["validate"])
        .run()
        .expect_code(0);
    assert!(
        run.stdout().contains("workflows/w.yaml:5:15: warning: `| safe` turns off shell escaping for `event.data.head_commit.message`"),
        "{}",
        run.stdout()
    );
}
