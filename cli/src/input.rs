//! Reading what the user named: a file, or standard input for `-`.

use crate::output::io_message;
use anyhow::bail;
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

/// Calls `each` with every tag given on stdin, as it is read: one per line; blank
/// lines are skipped and surrounding whitespace trimmed (so `skopeo list-tags … |
/// jq -r '.Tags[]'` pipes straight in). At most `max_line` bytes of a line are
/// kept (the rest is read and dropped), so memory stays bounded.
pub fn each_stdin_tag(
    max_line: usize,
    each: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    each_tag(std::io::stdin().lock(), max_line, each)
}

/// [`each_stdin_tag`] over any reader.
pub fn each_tag(
    mut reader: impl std::io::BufRead,
    max_line: usize,
    mut each: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut ended = false;
        // Read one line, keeping at most `max_line` bytes of it.
        loop {
            let chunk = reader
                .fill_buf()
                .map_err(|err| anyhow::anyhow!("cannot read tags: {}", io_message(&err)))?;
            if chunk.is_empty() {
                ended = true;
                break;
            }
            let (part, newline) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (chunk.get(..at).unwrap_or_default(), true),
                None => (chunk, false),
            };
            let room = max_line.saturating_sub(line.len());
            line.extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
            let used = part.len() + usize::from(newline);
            reader.consume(used);
            if newline {
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let tag = text.trim();
        if !tag.is_empty() {
            each(tag)?;
        }
        if ended {
            return Ok(());
        }
    }
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
        let tags = |text: &str, max: usize| {
            let mut tags = Vec::new();
            // A tiny buffer, so lines span several reads.
            let reader = std::io::BufReader::with_capacity(3, text.as_bytes());
            each_tag(reader, max, |tag| {
                tags.push(tag.to_owned());
                Ok(())
            })
            .unwrap();
            tags
        };
        assert_eq!(
            tags("v1.0.0\r\n\n  latest \nprod", 100),
            vec!["v1.0.0", "latest", "prod"]
        );
        assert!(tags("\n\n", 100).is_empty());
        // A line over the cap keeps its first bytes; the next line is whole.
        assert_eq!(tags("abcdefgh\nxy\n", 5), vec!["abcde", "xy"]);
    }

    #[test]
    fn stdin_only_once() {
        let stdin = Source::Stdin;
        let file = Source::File(PathBuf::from("a"));
        assert!(one_stdin(&[&stdin, &file]).is_ok());
        assert!(one_stdin(&[&stdin, &stdin]).is_err());
    }
}
