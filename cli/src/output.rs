//! Writing results: stdout carries the result (a summary, a table or JSON),
//! stderr carries diagnostics for the person at the terminal.

use std::io::{self, Write};

/// Writes `text` to standard output. A closed pipe (`taglock … | head`) is not an
/// error: the reader has what it wanted.
pub fn stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(anyhow::anyhow!(
            "cannot write to standard output: {}",
            io_message(&err)
        )),
    }
}

/// Standard output written piece by piece through a buffer, for results printed
/// as they are computed. A closed pipe ends the writing quietly, as [`stdout`] does.
pub struct Stream {
    out: io::BufWriter<io::Stdout>,
    closed: bool,
}

impl Stream {
    /// A buffered writer on standard output.
    pub fn stdout() -> Stream {
        Stream {
            out: io::BufWriter::new(io::stdout()),
            closed: false,
        }
    }

    /// Writes `text` (buffered); after a closed pipe, nothing.
    pub fn write(&mut self, text: &str) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.out.write_all(text.as_bytes());
        self.settle(result)
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.out.flush();
        self.settle(result)
    }

    fn settle(&mut self, result: io::Result<()>) -> anyhow::Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(err) => Err(anyhow::anyhow!(
                "cannot write to standard output: {}",
                io_message(&err)
            )),
        }
    }
}

/// Writes `text` to standard error; if even that fails there is nobody left to tell.
pub fn stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// An error and its causes on one line, `outer: cause: cause`, leaving out a cause
/// its outer message already quotes (typed errors often embed their source).
pub fn chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// An I/O error as a person reads it: `No such file or directory`, without the
/// `(os error 2)` suffix the standard library appends.
pub fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if text.ends_with(')') => text.get(..cut).unwrap_or(&text).to_owned(),
        _ => text,
    }
}

/// `JSON` of `value`, pretty-printed or on one line, with a final newline.
pub fn json<T: serde::Serialize + ?Sized>(value: &T, compact: bool) -> anyhow::Result<String> {
    let mut text = if compact {
        serde_json::to_string(value)?
    } else {
        serde_json::to_string_pretty(value)?
    };
    text.push('\n');
    Ok(text)
}

/// `n thing` or `n things`.
pub fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_quotes_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let err = anyhow::Error::new(std::io::Error::other(format!("cannot write x: {io}")))
            .context("saving the users file");
        assert_eq!(
            chain(&err),
            "saving the users file: cannot write x: disk full"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain(&plain), "outer: inner");
    }

    #[test]
    fn io_messages_drop_the_os_error_suffix() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&err), "No such file or directory");
        let custom = io::Error::other("disk on fire");
        assert_eq!(io_message(&custom), "disk on fire");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "warning"), "1 warning");
        assert_eq!(plural(0, "warning"), "0 warnings");
        assert_eq!(plural(3, "problem"), "3 problems");
    }

    #[test]
    fn compact_json_is_one_line() {
        let text = json(&serde_json::json!({"a": [1, 2]}), true).unwrap();
        assert_eq!(text, "{\"a\":[1,2]}\n");
        assert!(
            json(&serde_json::json!({"a": 1}), false)
                .unwrap()
                .contains("\n  \"a\": 1")
        );
    }
}
