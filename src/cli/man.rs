//! `vane man`: the man page, generated from the clap definitions, as roff on stdout.

use super::args::Cli;
use super::{Outcome, invalid};
use clap::CommandFactory;

pub fn man() -> Outcome {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|error| invalid(format!("cannot render the man page: {error}")))?;
    super::schema::write_stdout(title_first(&String::from_utf8_lossy(&page)).as_bytes())
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
}
