//! The audit log: every decision the proxy makes, and every request it refuses
//! itself, one JSON object per line (the record is the gateway's `AuditRecord`).
//!
//! ```json
//! {"time":"2026-12-01T07:00:00.123Z","method":"PUT","path":"/v2/acme/web/manifests/v1.2.0",
//!  "actor":{"kind":"user","id":"alice"},"request":{"operation":"push",…},
//!  "decision":{"allowed":false,…},"rule":"semver","component_sha256":"…"}
//! ```
//!
//! Integrity: a record is written whole or not at all. When a write fails part
//! way (a full disk, an I/O error), the file is truncated back to where the
//! record began; if even that fails, the next record starts on a new line, so a
//! fragment never merges with a record. Before each record, the path is checked
//! (one `stat` of the path, one `fstat` of the open file): when the file there is
//! not the one open (rotated by renaming, deleted, replaced), the path is opened
//! again, created if needed. SIGHUP reopens it too. A record that cannot be
//! written is an error, and the proxy refuses writes while it lasts.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

pub use taglock_gateway::AuditRecord;

/// The current time as the log writes it (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Why the audit log cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log `{path}`: {source}")]
pub struct AuditError {
    /// The log file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// An append-only JSON-lines file, shared by all requests, that follows its
/// path: a rotated or deleted file is replaced by a new one at the path.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    open: Mutex<Opened>,
}

/// The file the log writes to now.
#[derive(Debug)]
struct Opened {
    file: File,
    /// Device and inode of `file`, to tell whether the path still names it.
    id: (u64, u64),
    /// A failed record left a fragment that could not be cut off.
    torn: bool,
}

impl Opened {
    fn open(path: &Path) -> std::io::Result<Opened> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let id = identity(&file.metadata()?);
        Ok(Opened {
            file,
            id,
            torn: false,
        })
    }
}

fn identity(metadata: &Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

impl AuditLog {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let opened = Opened::open(path).map_err(|source| AuditError {
            path: path.to_owned(),
            source,
        })?;
        Ok(AuditLog {
            path: path.to_owned(),
            open: Mutex::new(opened),
        })
    }

    /// Opens the path again (creating the file if it is gone), as after a
    /// rotation; the proxy does it on SIGHUP. On failure the old file stays open.
    pub fn reopen(&self) -> Result<(), AuditError> {
        let mut opened = Opened::open(&self.path).map_err(|source| self.error(source))?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // The same file again keeps what is known of its end.
        opened.torn = opened.id == open.id && open.torn;
        *open = opened;
        Ok(())
    }

    /// Appends one record as one line, whole or not at all, to the file at the
    /// path now (opened again first if it was rotated, deleted or replaced).
    /// Lines of concurrent requests never interleave.
    pub fn append(&self, record: &AuditRecord<'_>) -> Result<(), AuditError> {
        let line = record.to_line();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        self.follow(&mut open)?;
        let Opened { file, torn, .. } = &mut *open;
        write_record(file, torn, &line).map_err(|source| self.error(source))
    }

    /// Makes `open` the file at the path, reopening when it is another one or
    /// none. A path that cannot be looked at is an error: the records could be
    /// going to a file nobody will read.
    fn follow(&self, open: &mut Opened) -> Result<(), AuditError> {
        let current = match std::fs::metadata(&self.path) {
            Ok(metadata) => identity(&metadata) == open.id,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
            Err(err) => return Err(self.error(err)),
        };
        if !current {
            *open = Opened::open(&self.path).map_err(|source| self.error(source))?;
            tracing::info!(
                "the audit log {} was rotated or removed; writing to a new file there",
                self.path.display()
            );
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> AuditError {
        AuditError {
            path: self.path.clone(),
            source,
        }
    }
}

/// What a record is appended to: the log's file, or in tests a writer that
/// fails on purpose.
trait Journal {
    /// The current length.
    fn end(&mut self) -> std::io::Result<u64>;
    /// Appends all of `bytes`, or fails having appended any part of them.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Cuts the journal back to `len`.
    fn truncate(&mut self, len: u64) -> std::io::Result<()>;
}

impl Journal for File {
    fn end(&mut self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
}

/// Appends `line` (newline-terminated) whole, or cuts off what part of it was
/// written. When that fails too, `torn` is set and the next line starts with a
/// line break, so the fragment stays on a line of its own.
fn write_record(journal: &mut impl Journal, torn: &mut bool, line: &[u8]) -> std::io::Result<()> {
    let start = journal.end()?;
    let written = if *torn {
        let mut fresh = Vec::with_capacity(line.len() + 1);
        fresh.push(b'\n');
        fresh.extend_from_slice(line);
        journal.append(&fresh)
    } else {
        journal.append(line)
    };
    let Err(err) = written else {
        *torn = false;
        return Ok(());
    };
    let cut = match journal.end() {
        // Only ever shorten: the file may have been truncated meanwhile.
        Ok(now) if now > start => journal.truncate(start),
        Ok(_) => Ok(()),
        Err(err) => Err(err),
    };
    if let Err(cut) = cut {
        tracing::error!("cannot cut a partly written audit record off ({cut})");
        *torn = true;
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_core::{Actor, PullRequest, Request};
    use taglock_gateway::Exchange;

    /// Appends one pull record by `who` to `log`.
    fn append(log: &AuditLog, who: &str) -> Result<(), AuditError> {
        let policy = policy_core::Policy::from_json(r#"{"version": 1}"#).unwrap();
        let actor = Actor::user(who, &["devs"]);
        let request = Request::Pull(PullRequest {
            image: "acme/web".into(),
            actor: actor.clone(),
        });
        let decision = policy.evaluate(&request);
        let time = now();
        let exchange = Exchange {
            method: "GET",
            path: "/v2/acme/web/manifests/v1",
        };
        log.append(&AuditRecord::decided(
            &time, exchange, &request, &decision, None, "abc",
        ))
    }

    /// The actor ids of the records in `path`; fails on a line that is not JSON.
    fn actors(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|err| panic!("not a record ({err}): {line:?}"));
                record["actor"]["id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn records_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        append(&log, "alice").unwrap();
        append(&log, "alice").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["actor"]["id"], "alice");
        assert_eq!(lines[0]["request"]["operation"], "pull");
        assert_eq!(lines[0]["decision"]["allowed"], true);
        assert_eq!(lines[0]["component_sha256"], "abc");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    /// A journal that accepts `budget` more bytes, then fails mid-write, as a
    /// full disk does; its truncation may fail too.
    struct Flaky {
        bytes: Vec<u8>,
        budget: usize,
        truncate_fails: bool,
    }

    impl Journal for Flaky {
        fn end(&mut self) -> std::io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }

        fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            let taken = bytes.len().min(self.budget);
            self.bytes.extend_from_slice(&bytes[..taken]);
            self.budget -= taken;
            if taken < bytes.len() {
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            Ok(())
        }

        fn truncate(&mut self, len: u64) -> std::io::Result<()> {
            if self.truncate_fails {
                return Err(std::io::Error::other("read-only now"));
            }
            self.bytes.truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn a_write_that_fails_part_way_leaves_no_partial_record() {
        let mut journal = Flaky {
            bytes: Vec::new(),
            budget: 30,
            truncate_fails: false,
        };
        let mut torn = false;
        write_record(&mut journal, &mut torn, b"{\"first\":1}\n").unwrap();
        // The disk fills in the middle of the second record.
        let failed = write_record(
            &mut journal,
            &mut torn,
            b"{\"second\":2,\"padding\":\"xxxxxxxx\"}\n",
        );
        assert!(failed.is_err());
        assert_eq!(journal.bytes, b"{\"first\":1}\n", "the fragment is cut off");
        assert!(!torn);
        // Space again: the next record follows the first one, whole.
        journal.budget = 100;
        write_record(&mut journal, &mut torn, b"{\"third\":3}\n").unwrap();
        assert_eq!(journal.bytes, b"{\"first\":1}\n{\"third\":3}\n");
    }

    #[test]
    fn a_fragment_that_cannot_be_cut_off_stays_on_its_own_line() {
        let mut journal = Flaky {
            bytes: Vec::new(),
            budget: 20,
            truncate_fails: true,
        };
        let mut torn = false;
        write_record(&mut journal, &mut torn, b"{\"first\":1}\n").unwrap();
        assert!(write_record(&mut journal, &mut torn, b"{\"second\":2}\n").is_err());
        assert!(torn);
        journal.budget = 100;
        write_record(&mut journal, &mut torn, b"{\"third\":3}\n").unwrap();
        assert!(!torn);
        let text = String::from_utf8(journal.bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["{\"first\":1}", "{\"second", "{\"third\":3}"]);
    }

    #[test]
    fn a_full_device_fails_the_append() {
        // /dev/full refuses every write with ENOSPC; the path stays the same file.
        let log = AuditLog::open(Path::new("/dev/full")).unwrap();
        let err = append(&log, "alice").unwrap_err();
        assert_eq!(err.source.raw_os_error(), Some(28), "{err}");
    }

    #[test]
    fn a_rotated_log_is_replaced_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        append(&log, "before").unwrap();
        let rotated = dir.path().join("audit.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        append(&log, "after").unwrap();
        assert_eq!(actors(&rotated), ["before"]);
        assert_eq!(actors(&path), ["after"]);
    }

    #[test]
    fn a_deleted_log_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        append(&log, "before").unwrap();
        std::fs::remove_file(&path).unwrap();
        append(&log, "after").unwrap();
        assert_eq!(actors(&path), ["after"]);
    }

    #[test]
    fn reopen_creates_the_file_at_once_and_a_lost_directory_fails_appends() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let path = logs.join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        std::fs::rename(&path, logs.join("audit.jsonl.1")).unwrap();
        log.reopen().unwrap();
        assert!(path.exists(), "reopened before any record");
        append(&log, "after").unwrap();
        assert_eq!(actors(&path), ["after"]);
        // Nowhere to write: the record is refused, not silently lost.
        std::fs::remove_dir_all(&logs).unwrap();
        assert!(append(&log, "lost").is_err());
    }
}
