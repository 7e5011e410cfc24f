//! `vane man [COMMAND]`: man pages generated from the clap definitions — `vane(1)` and one
//! `vane-COMMAND(1)` per subcommand (the pages `vane(1)` refers to), each with an ENVIRONMENT
//! section listing the variables its options read and the ones vane reads itself.

use clap::Command;

/// Variables vane reads that are not an option's: (name, what it does).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "NO_COLOR",
        "When set and not empty, human output is not coloured (with --color auto).",
    ),
    (
        "CLICOLOR_FORCE",
        "When set and not 0, human output is coloured even into a pipe (with --color auto).",
    ),
    (
        "GITHUB_ACTIONS",
        "true turns on GitHub Actions mode; with GITHUB_EVENT_NAME and GITHUB_EVENT_PATH, the run's own event is read when no other is given.",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ManError {
    #[error("no command `{name}`{suggestion}")]
    UnknownCommand { name: String, suggestion: String },
    #[error("cannot render the man page: {0}")]
    Render(#[from] std::io::Error),
}

/// The page of `root` (`vane(1)`), or of its subcommand `command` (`vane-COMMAND(1)`), as roff
/// with its `.TH` line first.
pub fn render(mut root: Command, command: Option<&str>) -> Result<String, ManError> {
    // Building propagates the global options into every subcommand, so that their pages list them.
    root.build();
    let page_command = match command {
        None => root,
        Some(name) => {
            let names: Vec<String> = root
                .get_subcommands()
                .map(|sub| sub.get_name().to_string())
                .collect();
            let Some(sub) = root.find_subcommand(name) else {
                let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
                let suggestion = crate::yaml::did_you_mean(name, &candidates)
                    .map(|close| format!(" (did you mean `{close}`?)"))
                    .unwrap_or_default();
                return Err(ManError::UnknownCommand {
                    name: name.to_string(),
                    suggestion,
                });
            };
            let full = format!("{}-{}", root.get_name(), sub.get_name());
            // clap names are `'static` (its `string` feature is off): one short name per
            // `vane man` process, which prints one page and exits.
            let name: &'static str = Box::leak(full.clone().into_boxed_str());
            sub.clone()
                .name(name)
                .display_name(full.clone())
                .bin_name(full)
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let man = clap_mangen::Man::new(page_command.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if page_command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if page_command.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    page.extend_from_slice(environment_section(&page_command).as_bytes());
    if page_command.get_after_long_help().is_some() || page_command.get_after_help().is_some() {
        man.render_extra_section(&mut page)?;
    }
    man.render_version_section(&mut page)?;
    Ok(title_first(&String::from_utf8_lossy(&page)))
}

/// `.SH ENVIRONMENT`: each option's variable, then vane's own.
fn environment_section(command: &Command) -> String {
    let mut section = String::from(".SH ENVIRONMENT\n");
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let flag = arg
            .get_long()
            .map(|long| format!("\\-\\-{}", escape(long)))
            .unwrap_or_default();
        let help = arg
            .get_help()
            .map(|help| help.to_string())
            .unwrap_or_default();
        section.push_str(&format!(
            ".TP\n\\fB{}\\fR\nSets \\fB{flag}\\fR: {}\n",
            escape(&env.to_string_lossy()),
            escape(&help)
        ));
    }
    for (name, meaning) in ENVIRONMENT {
        section.push_str(&format!(".TP\n\\fB{name}\\fR\n{}\n", escape(meaning)));
    }
    section
}

/// Text safe in a roff line: backslashes and dashes escaped, no control character at its start.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    let joined = escaped.replace('\n', " ");
    if joined.starts_with('.') || joined.starts_with('\'') {
        format!("\\&{joined}")
    } else {
        joined
    }
}

/// The page with its `.TH` line first. roff writes the definition of the `Aq` string (the
/// apostrophe it uses in the text) before the title; tools that recognise a man page by its
/// first line (`whatis`, `file`, packagers' linters) look for `.TH`, and a string may be
/// defined anywhere before its first use.
fn title_first(page: &str) -> String {
    let mut lines: Vec<&str> = page.lines().collect();
    if let Some(index) = lines.iter().position(|line| line.starts_with(".TH ")) {
        let title = lines.remove(index);
        lines.insert(0, title);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_comes_first() {
        let page = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH vane 1\n.SH NAME\n";
        assert_eq!(
            title_first(page),
            ".TH vane 1\n.ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.SH NAME\n"
        );
    }

    #[test]
    fn options_with_a_variable_are_listed_under_environment() {
        let command = Command::new("x").arg(
            clap::Arg::new("state")
                .long("state")
                .env("X_STATE")
                .help("The state-store."),
        );
        let section = environment_section(&command);
        assert!(section.starts_with(".SH ENVIRONMENT\n.TP\n\\fBX_STATE\\fR\nSets \\fB\\-\\-state\\fR: The state\\-store.\n"), "{section}");
        assert!(section.contains("\\fBNO_COLOR\\fR"));
        assert_eq!(escape(".x"), "\\&.x");
    }
}
