//! Reading what the user named: a file, or standard input for `-`.

use crate::output::io_message;
use anyhow::{Context, bail};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Inputs larger than this are refused rather than read into memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-`: standard input.
    Stdin,
    /// A file path.
    File(PathBuf),
}

impl Source {
    /// `-` is standard input; anything else is a path.
    pub fn new(arg: &Path) -> Source {
        if arg == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }

    /// How messages name it.
    pub fn label(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_owned(),
            Source::File(path) => path.display().to_string(),
        }
    }

    /// Reads the whole input as UTF-8 text; `what` ("policy", "request") names it
    /// in errors, e.g. `cannot read policy x.json: No such file or directory`.
    pub fn read_text(&self, what: &str) -> anyhow::Result<String> {
        let label = self.label();
        let bytes = match self {
            Source::Stdin => read_bounded(std::io::stdin().lock()),
            Source::File(path) => std::fs::File::open(path).and_then(read_bounded),
        }
        .map_err(|err| anyhow::anyhow!("cannot read {what} {label}: {}", io_message(&err)))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_INPUT_BYTES {
            bail!(
                "cannot read {what} {label}: it is larger than {} MiB",
                MAX_INPUT_BYTES / (1024 * 1024)
            );
        }
        String::from_utf8(bytes).map_err(|err| {
            anyhow::anyhow!(
                "cannot read {what} {label}: it is not UTF-8 text (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            )
        })
    }
}

/// Reads at most one byte more than the cap, so an oversized input is detected
/// without reading all of it.
fn read_bounded(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Policy text as read, with the label messages use for it.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// The file name, or `<stdin>`.
    pub label: String,
    /// The JSON text.
    pub text: String,
}

impl PolicyInput {
    /// Reads the policy named on the command line.
    pub fn read(source: &Source) -> anyhow::Result<PolicyInput> {
        Ok(PolicyInput {
            label: source.label(),
            text: source.read_text("policy")?,
        })
    }
}

/// Refuses a command line that would read standard input twice.
pub fn one_stdin(sources: &[&Source]) -> anyhow::Result<()> {
    let readers = sources.iter().filter(|s| ***s == Source::Stdin).count();
    if readers > 1 {
        bail!("only one input can be `-` (standard input)");
    }
    Ok(())
}

/// Tags given on stdin: one per line; blank lines are skipped and surrounding
/// whitespace trimmed (so `skopeo list-tags … | jq -r '.Tags[]'` pipes straight in).
pub fn tags_from_stdin() -> anyhow::Result<Vec<String>> {
    let text = Source::Stdin
        .read_text("tags")
        .context("tags are read from standard input, one per line, when TAG is `-`")?;
    Ok(tags_from_lines(&text))
}

/// Splits text into tags, one per line, skipping blank lines.
pub fn tags_from_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_is_stdin() {
        assert_eq!(Source::new(Path::new("-")), Source::Stdin);
        assert_eq!(
            Source::new(Path::new("p.json")),
            Source::File(PathBuf::from("p.json"))
        );
        assert_eq!(Source::Stdin.label(), "<stdin>");
    }

    #[test]
    fn missing_file_message_names_it() {
        let err = Source::File(PathBuf::from("/nonexistent/x.json"))
            .read_text("policy")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read policy /nonexistent/x.json: No such file or directory"
        );
    }

    #[test]
    fn lines_become_tags() {
        assert_eq!(
            tags_from_lines("v1.0.0\r\n\n  latest \nprod"),
            vec!["v1.0.0", "latest", "prod"]
        );
        assert!(tags_from_lines("\n\n").is_empty());
    }

    #[test]
    fn stdin_only_once() {
        let stdin = Source::Stdin;
        let file = Source::File(PathBuf::from("a"));
        assert!(one_stdin(&[&stdin, &file]).is_ok());
        assert!(one_stdin(&[&stdin, &stdin]).is_err());
    }
}
