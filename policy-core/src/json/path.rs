//! Where a value is in the document, and where that is in the text.

use super::JsonError;

/// Where a value is in the document: a chain of keys and indexes, kept on the stack
/// while reading and written out only for an error.
#[derive(Debug)]
pub struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    step: Step<'p>,
}

#[derive(Debug)]
pub(super) enum Step<'p> {
    Root,
    Key(&'p str),
    Index(usize),
}

impl<'p> Path<'p> {
    /// The document itself.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
    };

    /// The value under `key` of the object here.
    pub(crate) fn key<'q>(&'q self, key: &'q str) -> Path<'q> {
        Path {
            parent: Some(self),
            step: Step::Key(key),
        }
    }

    /// The element `index` of the array here.
    pub(crate) fn index(&self, index: usize) -> Path<'_> {
        Path {
            parent: Some(self),
            step: Step::Index(index),
        }
    }

    /// `a.b[0].c`; empty for the root.
    pub(super) fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut here = Some(self);
        while let Some(path) = here {
            steps.push(&path.step);
            here = path.parent;
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Root => {}
                Step::Key(key) => push_key(&mut out, key),
                Step::Index(index) => push_index(&mut out, *index),
            }
        }
        out
    }
}

pub(super) fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

pub(super) fn push_index(out: &mut String, index: usize) {
    out.push('[');
    out.push_str(&index.to_string());
    out.push(']');
}

/// The 1-based line and column of the byte before `index` (the column counts
/// bytes; `index` past a line break gives column 0: the end of the text after a
/// final line break).
pub(super) fn position(text: &str, index: usize) -> (usize, usize) {
    let before = text.as_bytes().get(..index).unwrap_or(text.as_bytes());
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    (line, before.len() - start)
}

/// An error about the byte at `offset` (at the end of the text: the end).
pub(super) fn located(
    text: &str,
    offset: usize,
    path: String,
    message: String,
    syntax: bool,
) -> JsonError {
    let (line, column) = position(text, offset.saturating_add(1).min(text.len()));
    JsonError {
        path,
        line,
        column,
        message,
        syntax,
    }
}

/// At most this many objects and arrays open at once (serde_json's limit).
pub const MAX_DEPTH: usize = 128;
