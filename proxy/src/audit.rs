//! The audit log: every decision the proxy makes, one JSON object per line.
//!
//! ```json
//! {"time":"2026-12-01T07:00:00.123Z","method":"PUT","path":"/v2/acme/web/manifests/v1.2.0",
//!  "actor":{"kind":"user","id":"alice"},"request":{"operation":"push",…},
//!  "decision":{"allowed":false,…},"rule":"semver","component_sha256":"…"}
//! ```

use policy_core::{Actor, Decision, Request};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// One line of the audit log.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// When the decision was made (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The HTTP method of the client's request.
    pub method: &'a str,
    /// Its path and query.
    pub path: &'a str,
    /// Who asked.
    pub actor: &'a Actor,
    /// The request as the core saw it (SPEC §10).
    pub request: &'a Request,
    /// The decision (SPEC §10).
    pub decision: &'a Decision,
    /// The rule that decided, if any.
    pub rule: Option<&'a str>,
    /// The sha256 of the decision component that decided.
    pub component_sha256: &'a str,
}

impl AuditRecord<'_> {
    /// The current time as the log writes it.
    pub fn now() -> String {
        humantime::format_rfc3339_millis(SystemTime::now()).to_string()
    }
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

/// An append-only JSON-lines file, shared by all requests.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError {
                path: path.to_owned(),
                source,
            })?;
        Ok(AuditLog {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Appends one record as one line, written with a single `write` so lines of
    /// concurrent requests never interleave.
    pub fn append(&self, record: &AuditRecord<'_>) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(|err| AuditError {
            path: self.path.clone(),
            source: std::io::Error::other(err),
        })?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&line).map_err(|source| AuditError {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_core::PullRequest;

    #[test]
    fn records_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let policy = policy_core::Policy::from_json(r#"{"version": 1}"#).unwrap();
        let actor = Actor::user("alice", &["devs"]);
        let request = Request::Pull(PullRequest {
            image: "acme/web".into(),
            actor: actor.clone(),
        });
        let decision = policy.evaluate(&request);
        for _ in 0..2 {
            log.append(&AuditRecord {
                time: AuditRecord::now(),
                method: "GET",
                path: "/v2/acme/web/manifests/v1",
                actor: &actor,
                request: &request,
                decision: &decision,
                rule: None,
                component_sha256: "abc",
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["actor"]["id"], "alice");
        assert_eq!(lines[0]["request"]["operation"], "pull");
        assert_eq!(lines[0]["decision"]["allowed"], decision.allowed);
        assert_eq!(lines[0]["component_sha256"], "abc");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
