//! The users file: who may log in to `taglock serve` with HTTP Basic, and which
//! actor each login becomes (kind, groups, pipeline repository and environment,
//! workspace-admin flag).
//!
//! ```json
//! {"users": [
//!   {"name": "alice", "password_bcrypt": "$2b$10$…", "kind": "user", "groups": ["devs"]},
//!   {"name": "ci-web", "password_bcrypt": "$2b$10$…", "kind": "pipeline",
//!    "repository": "web-app", "environment": "production"}
//! ]}
//! ```
//!
//! Passwords are stored only as bcrypt hashes (`$2a$`, `$2b$`, `$2x$` or `$2y$`, so
//! `htpasswd -B` output works too). The file loads whole or not at all: every
//! problem is listed, each located by entry index, name and field, or by line and
//! column when the text is not JSON of the right shape.

use policy_core::JsonError;
use policy_core::{Actor, ActorKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Compared against when the name is unknown, so a failed login costs the same
/// bcrypt work whether or not the name exists. Its cost (10) is the default of
/// `taglock users add`; entries hashed at another cost make their logins slower or
/// faster than an unknown name's, so keep one cost for every entry.
const DUMMY_HASH: &str = "$2b$10$cfNpfmPOp6fS3AC1wxaXuu0U7e3lE2WaW8l.TGvqhN3Kvf2GkVv6i";

/// The lowest bcrypt cost accepted (the bcrypt minimum).
pub const MIN_COST: u32 = 4;
/// The highest bcrypt cost accepted (the bcrypt maximum).
pub const MAX_COST: u32 = 31;
/// The largest users file read, in bytes (about 50,000 entries); a larger one is
/// refused before it is parsed, so loading (and reloading) is bounded.
pub const MAX_USERS_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The longest password accepted, in bytes: bcrypt reads at most 72 bytes
/// including a terminating zero, so a longer password would be silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 71;

/// The loaded users file: its entries, in file order, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersFile {
    users: Vec<UserEntry>,
}

/// One login: a name, its bcrypt hash, and the actor it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The login name (unique in the file; no `:`, which HTTP Basic reserves).
    pub name: String,
    /// The bcrypt hash of the password.
    pub password_bcrypt: String,
    /// What kind of actor the login is; `user` when absent.
    #[serde(default)]
    pub kind: UserKind,
    /// Groups the actor belongs to (grants to `group:<name>` apply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Whether the actor is a workspace admin (admin everywhere; may delete
    /// immutable tags when the policy's `admin_delete` is on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workspace_admin: bool,
    /// Pipelines only, and required for them: the code repository it runs for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Pipelines only, optional: the deployment environment it runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// The kind of actor a login becomes (the request's `actor.kind`, without `anonymous`,
/// which is what a request without credentials is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserKind {
    /// A person: actor id is the login name.
    #[default]
    User,
    /// A CI identity: actor id is `<repository>` or `<repository>/<environment>`.
    Pipeline,
    /// An access token: actor id is the login name.
    Token,
}

impl UserKind {
    /// `user`, `pipeline` or `token`, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::User => "user",
            UserKind::Pipeline => "pipeline",
            UserKind::Token => "token",
        }
    }
}

impl fmt::Display for UserKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of one entry, located by its index, name and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryProblem {
    /// 0-based index in `users`.
    pub index: usize,
    /// The entry's `name` (possibly empty, when that is the problem).
    pub name: String,
    /// The field at fault, e.g. `repository`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at `users[{}].{}` (user `{}`): {}",
            self.index, self.field, self.name, self.message
        )
    }
}

/// Why a users file, or a new entry, was refused.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file could not be read.
    #[error("cannot read users file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A problem in a named file (wraps the others with the path).
    #[error("users file {}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The problem.
        source: Box<UsersError>,
    },
    /// Not JSON, or JSON of the wrong shape (unknown field, wrong type, unknown kind).
    #[error("{error}{}", user.as_ref().map(|name| format!(" (user `{name}`)")).unwrap_or_default())]
    Json {
        /// Where and what, with line and column.
        error: JsonError,
        /// The name of the entry the problem is in, when it has one.
        user: Option<String>,
    },
    /// Well-formed JSON whose entries are inconsistent; every problem is listed.
    #[error("{}", list_problems(problems))]
    Invalid {
        /// Each problem, in file order.
        problems: Vec<EntryProblem>,
    },
    /// A users file larger than [`MAX_USERS_FILE_BYTES`], refused unparsed.
    #[error("the users file is larger than {max} bytes ({} MiB); it is not read", max / (1024 * 1024))]
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// A password that cannot be hashed as given.
    #[error("password of `{name}`: {message}")]
    Password {
        /// The login name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

impl UsersFile {
    /// Parses and checks a users file's text; every problem is reported.
    pub fn from_json(text: &str) -> Result<UsersFile, UsersError> {
        if text.len() > MAX_USERS_FILE_BYTES {
            return Err(UsersError::TooLarge {
                max: MAX_USERS_FILE_BYTES,
            });
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Document {
            users: Vec<UserEntry>,
        }
        let document: Document = located_json(text).map_err(|error| UsersError::Json {
            user: entry_name_at(text, &error.path),
            error,
        })?;
        let mut problems = Vec::new();
        // Each name's first entry: one lookup per entry, not a scan of the ones before.
        let mut first_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (index, entry) in document.users.iter().enumerate() {
            problems.extend(entry.problems(index));
            let first = *first_of.entry(entry.name.as_str()).or_insert(index);
            if first != index {
                problems.push(EntryProblem {
                    index,
                    name: entry.name.clone(),
                    field: "name",
                    message: format!("the name is already used by users[{first}]"),
                });
            }
        }
        if problems.is_empty() {
            Ok(UsersFile {
                users: document.users,
            })
        } else {
            Err(UsersError::Invalid { problems })
        }
    }

    /// Reads and parses the users file at `path`.
    pub fn load(path: &Path) -> Result<UsersFile, UsersError> {
        let read = || -> std::io::Result<String> {
            use std::io::Read;
            let mut text = String::new();
            // One byte over the cap is enough to know the file is too large.
            std::fs::File::open(path)?
                .take(
                    u64::try_from(MAX_USERS_FILE_BYTES)
                        .unwrap_or(u64::MAX)
                        .saturating_add(1),
                )
                .read_to_string(&mut text)?;
            Ok(text)
        };
        let text = read().map_err(|source| UsersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        UsersFile::from_json(&text).map_err(|err| UsersError::InFile {
            path: path.to_path_buf(),
            source: Box::new(err),
        })
    }

    /// The file's text: pretty-printed JSON, entries in order, fields in the
    /// documented order, defaults left out; ends with a newline.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Document<'a> {
            users: &'a [UserEntry],
        }
        // Strings, bools and sequences always serialize; the empty text that the
        // impossible error would give fails to load, so nothing half-written passes.
        let mut text =
            serde_json::to_string_pretty(&Document { users: &self.users }).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[UserEntry] {
        &self.users
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&UserEntry> {
        self.users.iter().find(|entry| entry.name == name)
    }

    /// Adds `entry`, or replaces the entry of the same name in place; returns true
    /// if it replaced one.
    pub fn upsert(&mut self, entry: UserEntry) -> bool {
        match self.users.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => {
                *existing = entry;
                true
            }
            None => {
                self.users.push(entry);
                false
            }
        }
    }

    /// Removes the entry named `name`; returns true if there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|entry| entry.name != name);
        self.users.len() != before
    }

    /// bcrypt check; None for an unknown user or a wrong password. Runs the bcrypt
    /// comparison even for unknown users (against a fixed dummy hash) so timing
    /// does not reveal which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&UserEntry> {
        let entry = self.get(name);
        let hash = entry.map_or(DUMMY_HASH, |e| e.password_bcrypt.as_str());
        // A hash that does not verify (checked at load, so only a hand-built entry)
        // is a failed login, never a pass.
        let matches = bcrypt::verify(password, hash).unwrap_or(false);
        entry.filter(|_| matches)
    }
}

impl UserEntry {
    /// A `user` entry named `name` with `password` hashed at bcrypt `cost`
    /// (4..=31; each step doubles the work). Passwords must be 1 to 71 bytes, so
    /// bcrypt never truncates them.
    pub fn new(name: &str, password: &str, cost: u32) -> Result<UserEntry, UsersError> {
        if let Some(message) = name_problem(name) {
            return Err(UsersError::Password {
                name: name.to_owned(),
                message: format!("cannot create the entry: the name {message}"),
            });
        }
        let refuse = |message: String| UsersError::Password {
            name: name.to_owned(),
            message,
        };
        if password.is_empty() {
            return Err(refuse("the password is empty".to_owned()));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(refuse(format!(
                "the password is {} bytes long; bcrypt uses at most {MAX_PASSWORD_BYTES}",
                password.len()
            )));
        }
        if !(MIN_COST..=MAX_COST).contains(&cost) {
            return Err(refuse(format!(
                "bcrypt cost {cost} is outside {MIN_COST}..={MAX_COST}"
            )));
        }
        let hash = bcrypt::non_truncating_hash(password, cost)
            .map_err(|err| refuse(format!("cannot hash it: {err}")))?;
        Ok(UserEntry {
            name: name.to_owned(),
            password_bcrypt: hash,
            kind: UserKind::User,
            groups: Vec::new(),
            workspace_admin: false,
            repository: None,
            environment: None,
        })
    }

    /// The actor a login with this entry becomes: a user or token has its name as
    /// id; a pipeline has `<repository>` or `<repository>/<environment>`. Groups
    /// and the workspace-admin flag are copied; no role is set, so the policy's
    /// grants decide.
    pub fn actor(&self) -> Actor {
        let (kind, id) = match self.kind {
            UserKind::User => (ActorKind::User, self.name.clone()),
            UserKind::Token => (ActorKind::Token, self.name.clone()),
            UserKind::Pipeline => {
                let repository = self.repository.as_deref().unwrap_or_default();
                let id = match self.environment.as_deref() {
                    Some(environment) => format!("{repository}/{environment}"),
                    None => repository.to_owned(),
                };
                (ActorKind::Pipeline, id)
            }
        };
        Actor {
            kind,
            id,
            groups: self.groups.clone(),
            workspace_admin: self.workspace_admin,
            role: None,
        }
    }

    /// Checks the entry on its own (not name uniqueness, which is the file's);
    /// `index` locates it in messages.
    pub fn check(&self, index: usize) -> Result<(), UsersError> {
        let problems = self.problems(index);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(UsersError::Invalid { problems })
        }
    }

    fn problems(&self, index: usize) -> Vec<EntryProblem> {
        let mut problems = Vec::new();
        let mut problem = |field: &'static str, message: String| {
            problems.push(EntryProblem {
                index,
                name: self.name.clone(),
                field,
                message,
            });
        };
        if let Some(message) = name_problem(&self.name) {
            problem("name", format!("the name {message}"));
        }
        match self.password_bcrypt.parse::<bcrypt::HashParts>() {
            Ok(parts) if (MIN_COST..=MAX_COST).contains(&parts.get_cost()) => {}
            Ok(parts) => problem(
                "password_bcrypt",
                format!(
                    "bcrypt cost {} is outside {MIN_COST}..={MAX_COST}",
                    parts.get_cost()
                ),
            ),
            Err(_) => problem(
                "password_bcrypt",
                "not a bcrypt hash (expected 60 characters like `$2b$10$…`; \
                 `taglock users add` writes one)"
                    .to_owned(),
            ),
        }
        for (i, group) in self.groups.iter().enumerate() {
            if group.trim().is_empty() {
                problem("groups", format!("group {} is empty", i + 1));
            }
        }
        match (self.kind, self.repository.as_deref()) {
            (UserKind::Pipeline, None) => problem(
                "repository",
                "a pipeline needs the code repository it runs for".to_owned(),
            ),
            (UserKind::Pipeline, Some(repository)) => {
                if repository.is_empty() || repository.contains('/') {
                    problem(
                        "repository",
                        format!(
                            "`{repository}` is not a repository name (not empty, no `/`: \
                             the environment is a field of its own)"
                        ),
                    );
                }
                if self.environment.as_deref().is_some_and(str::is_empty) {
                    problem(
                        "environment",
                        "the environment is empty; leave the field out instead".to_owned(),
                    );
                }
            }
            (kind, repository) => {
                if repository.is_some() {
                    problem(
                        "repository",
                        format!("only a pipeline has a repository, not a {kind}"),
                    );
                }
                if self.environment.is_some() {
                    problem(
                        "environment",
                        format!("only a pipeline has an environment, not a {kind}"),
                    );
                }
            }
        }
        problems
    }
}

/// One problem on its own; several as a count and one indented line each.
fn list_problems(problems: &[EntryProblem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut text = format!("{} problems:", many.len());
            for problem in many {
                text.push_str(&format!("\n  {problem}"));
            }
            text
        }
    }
}

/// What is wrong with a login name, if anything.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains(':') {
        Some("contains `:`, which HTTP Basic uses to separate name and password")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.trim() != name {
        Some("starts or ends with whitespace")
    } else {
        None
    }
}

/// Parses the users file's own serde types, locating the first problem: the path
/// as `serde_path_to_error` follows it, the line and column serde_json reports.
fn located_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    let located = |path: Option<&serde_path_to_error::Path>, err: &serde_json::Error| {
        let shown = err.to_string();
        let message = match shown.rfind(" at line ") {
            Some(cut) if err.line() > 0 => shown.get(..cut).unwrap_or(&shown).to_owned(),
            _ => shown,
        };
        // No path for the root or a place serde could not follow; told apart by
        // the segments, since a key named `.` is written `.` like the root.
        let path = path
            .filter(|path| {
                path.iter()
                    .any(|segment| !matches!(segment, serde_path_to_error::Segment::Unknown))
            })
            .map(ToString::to_string)
            .unwrap_or_default();
        JsonError {
            path,
            line: err.line(),
            column: err.column(),
            message,
            syntax: matches!(
                err.classify(),
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof
            ),
        }
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| located(Some(err.path()), err.inner()))?;
    deserializer.end().map_err(|err| located(None, &err))?;
    Ok(value)
}

/// The `name` of the entry a JSON path such as `users[2].kind` points into, read
/// from the (syntactically valid) text; None when it has none.
fn entry_name_at(text: &str, path: &str) -> Option<String> {
    let index: usize = path
        .strip_prefix("users[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value
        .get("users")?
        .get(index)?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cost 4 keeps the tests fast.
    fn entry(name: &str, password: &str) -> UserEntry {
        UserEntry::new(name, password, 4).unwrap()
    }

    fn file_with(entries: &[serde_json::Value]) -> String {
        serde_json::json!({ "users": entries }).to_string()
    }

    fn hash() -> String {
        entry("x", "secret").password_bcrypt
    }

    #[test]
    fn the_dummy_hash_is_a_cost_10_bcrypt_hash() {
        let parts: bcrypt::HashParts = DUMMY_HASH.parse().unwrap();
        assert_eq!(parts.get_cost(), 10);
    }

    #[test]
    fn parses_every_field_and_applies_defaults() {
        let h = hash();
        let text = file_with(&[
            serde_json::json!({"name": "alice", "password_bcrypt": h, "groups": ["devs", "qa"],
                "workspace_admin": true}),
            serde_json::json!({"name": "ci-web", "password_bcrypt": h, "kind": "pipeline",
                "repository": "web-app", "environment": "production"}),
            serde_json::json!({"name": "bot", "password_bcrypt": h, "kind": "token"}),
        ]);
        let file = UsersFile::from_json(&text).unwrap();
        let [alice, ci, bot] = file.entries() else {
            panic!("three entries expected: {file:?}");
        };
        assert_eq!(alice.kind, UserKind::User);
        assert_eq!(alice.groups, ["devs", "qa"]);
        assert!(alice.workspace_admin);
        assert_eq!(ci.kind, UserKind::Pipeline);
        assert_eq!(ci.repository.as_deref(), Some("web-app"));
        assert_eq!(ci.environment.as_deref(), Some("production"));
        assert!(!ci.workspace_admin);
        assert_eq!(bot.kind, UserKind::Token);
        assert!(bot.groups.is_empty());
        assert!(
            UsersFile::from_json(r#"{"users": []}"#)
                .unwrap()
                .entries()
                .is_empty()
        );
    }

    #[test]
    fn a_file_over_the_size_cap_is_refused_unparsed() {
        let text = format!(r#"{{"users": []}}{}"#, " ".repeat(MAX_USERS_FILE_BYTES));
        let err = UsersFile::from_json(&text).unwrap_err();
        assert!(matches!(err, UsersError::TooLarge { .. }), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        std::fs::write(&path, &text).unwrap();
        let shown = UsersFile::load(&path).unwrap_err().to_string();
        assert!(
            shown.contains("larger than 4194304 bytes (4 MiB)"),
            "{shown}"
        );
    }

    #[test]
    fn a_number_of_400k_digits_is_located_without_rescanning() {
        // Locating the error once re-read the number at each of its digits: 33 s.
        let h = hash();
        let text = format!(
            r#"{{"users": [{{"name": "a", "password_bcrypt": "{h}", "workspace_admin": {}}}]}}"#,
            "9".repeat(400_000)
        );
        let start = std::time::Instant::now();
        let err = UsersFile::from_json(&text).unwrap_err();
        // A hang-guard, far above the milliseconds this takes.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        let UsersError::Json { error, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(error.path, "users[0].workspace_admin");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = UsersFile::from_json("{\"users\": [\n  {\"name\": \"a\",,}\n]}").unwrap_err();
        let UsersError::Json { error, user } = &err else {
            panic!("{err:?}");
        };
        assert!(error.syntax);
        assert_eq!((error.line, error.column), (2, 16));
        assert_eq!(user, &None);
        assert!(err.to_string().contains("(line 2, column 16)"), "{err}");
    }

    #[test]
    fn a_key_named_like_the_root_is_located_as_a_key() {
        let err = UsersFile::from_json(r#"{"users": [], ".": 1}"#).unwrap_err();
        let UsersError::Json { error, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(error.path, ".", "{err}");
        let err = UsersFile::from_json("[]").unwrap_err();
        let UsersError::Json { error, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(error.path, "", "{err}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_located_and_name_the_entry() {
        let h = hash();
        let text = format!(
            "{{\"users\": [\n {{\"name\": \"ok\", \"password_bcrypt\": \"{h}\"}},\n \
             {{\"name\": \"bob\", \"password_bcrypt\": \"{h}\", \"admin\": true}}\n]}}"
        );
        let err = UsersFile::from_json(&text).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("at `users[1].admin`: unknown field `admin`"),
            "{shown}"
        );
        assert!(shown.contains("line 3"), "{shown}");
        assert!(shown.ends_with("(user `bob`)"), "{shown}");

        let text = file_with(&[serde_json::json!({"name": "eve", "password_bcrypt": h,
            "kind": "robot"})]);
        let shown = UsersFile::from_json(&text).unwrap_err().to_string();
        assert!(
            shown.starts_with("at `users[0].kind`: unknown variant `robot`"),
            "{shown}"
        );
        assert!(shown.ends_with("(user `eve`)"), "{shown}");

        let shown = UsersFile::from_json(r#"{"people": []}"#)
            .unwrap_err()
            .to_string();
        assert!(shown.contains("unknown field `people`"), "{shown}");
    }

    #[test]
    fn every_inconsistency_is_listed_with_index_name_and_field() {
        let h = hash();
        let text = file_with(&[
            serde_json::json!({"name": "ci", "password_bcrypt": h, "kind": "pipeline"}),
            serde_json::json!({"name": "alice", "password_bcrypt": h, "repository": "web"}),
            serde_json::json!({"name": "tok", "password_bcrypt": "plain", "kind": "token",
                "environment": "prod"}),
            serde_json::json!({"name": "alice", "password_bcrypt": h}),
            serde_json::json!({"name": "a:b", "password_bcrypt": h, "kind": "pipeline",
                "repository": "web/prod"}),
        ]);
        let UsersError::Invalid { problems } = UsersFile::from_json(&text).unwrap_err() else {
            panic!("validation problems expected");
        };
        let located: Vec<(usize, &str, &str)> = problems
            .iter()
            .map(|p| (p.index, p.name.as_str(), p.field))
            .collect();
        assert_eq!(
            located,
            [
                (0, "ci", "repository"),
                (1, "alice", "repository"),
                (2, "tok", "password_bcrypt"),
                (2, "tok", "environment"),
                (3, "alice", "name"),
                (4, "a:b", "name"),
                (4, "a:b", "repository"),
            ]
        );
        assert_eq!(
            problems[0].to_string(),
            "at `users[0].repository` (user `ci`): a pipeline needs the code repository it runs for"
        );
        assert_eq!(
            problems[1].to_string(),
            "at `users[1].repository` (user `alice`): only a pipeline has a repository, not a user"
        );
        assert!(problems[4].message.contains("users[1]"));
    }

    #[test]
    fn actors_follow_the_kind() {
        let mut alice = entry("alice", "pw");
        alice.groups = vec!["devs".into()];
        alice.workspace_admin = true;
        let actor = alice.actor();
        assert_eq!(actor.kind, ActorKind::User);
        assert_eq!(actor.id, "alice");
        assert_eq!(actor.groups, ["devs"]);
        assert!(actor.workspace_admin);
        assert_eq!(actor.role, None);

        let mut ci = entry("ci-web", "pw");
        ci.kind = UserKind::Pipeline;
        ci.repository = Some("web-app".into());
        assert_eq!(ci.actor(), Actor::pipeline("web-app", None));
        ci.environment = Some("production".into());
        assert_eq!(ci.actor().id, "web-app/production");
        assert_eq!(ci.actor().kind, ActorKind::Pipeline);

        let mut token = entry("deploy-token", "pw");
        token.kind = UserKind::Token;
        assert_eq!(token.actor().kind, ActorKind::Token);
        assert_eq!(token.actor().id, "deploy-token");
    }

    #[test]
    fn verify_accepts_only_the_right_password_of_a_known_user() {
        let mut file = UsersFile::default();
        file.upsert(entry("alice", "correct horse"));
        file.upsert(entry("bob", "battery staple"));
        assert_eq!(
            file.verify("alice", "correct horse")
                .map(|e| e.name.as_str()),
            Some("alice")
        );
        assert!(file.verify("alice", "battery staple").is_none());
        assert!(file.verify("alice", "").is_none());
        assert!(file.verify("carol", "correct horse").is_none());
        assert!(file.verify("", "").is_none());
    }

    #[test]
    fn unknown_names_still_pay_for_a_bcrypt_comparison() {
        // A cost-10 bcrypt takes tens of milliseconds; returning early for an
        // unknown name would take microseconds.
        let file = UsersFile::default();
        let start = std::time::Instant::now();
        assert!(file.verify("nobody", "pw").is_none());
        assert!(
            start.elapsed() > std::time::Duration::from_millis(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn htpasswd_style_2y_hashes_verify() {
        let parts: bcrypt::HashParts = entry("x", "pw").password_bcrypt.parse().unwrap();
        let mut old = entry("old", "unused");
        old.password_bcrypt = parts.format_for_version(bcrypt::Version::TwoY);
        let text = UsersFile { users: vec![old] }.to_json();
        let file = UsersFile::from_json(&text).unwrap();
        assert!(file.verify("old", "pw").is_some());
        assert!(file.verify("old", "unused").is_none());
    }

    #[test]
    fn new_refuses_passwords_bcrypt_would_truncate_and_bad_costs() {
        assert!(UserEntry::new("a", &"x".repeat(MAX_PASSWORD_BYTES), 4).is_ok());
        let long = UserEntry::new("a", &"x".repeat(MAX_PASSWORD_BYTES + 1), 4).unwrap_err();
        assert!(long.to_string().contains("at most 71"), "{long}");
        assert!(UserEntry::new("a", "", 4).is_err());
        assert!(UserEntry::new("a", "pw", 3).is_err());
        assert!(UserEntry::new("a", "pw", 32).is_err());
        assert!(UserEntry::new("a:b", "pw", 4).is_err());
        // `-` and `!` are outside bcrypt's alphabet: the password can only appear
        // in the hash if it was stored as given.
        let hashed = entry("a", "pass-word!");
        assert!(hashed.password_bcrypt.starts_with("$2b$04$"));
        assert!(!hashed.password_bcrypt.contains("pass-word!"));
    }

    #[test]
    fn upsert_replaces_in_place_and_remove_removes() {
        let mut file = UsersFile::default();
        assert!(!file.upsert(entry("a", "1")));
        assert!(!file.upsert(entry("b", "2")));
        let mut replacement = entry("a", "3");
        replacement.groups = vec!["ops".into()];
        assert!(file.upsert(replacement));
        let names: Vec<&str> = file.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(file.get("a").unwrap().groups, ["ops"]);
        assert!(file.verify("a", "3").is_some());
        assert!(file.remove("a"));
        assert!(!file.remove("a"));
        assert_eq!(file.entries().len(), 1);
    }

    #[test]
    fn round_trip_keeps_every_entry_and_leaves_defaults_out() {
        let mut file = UsersFile::default();
        let mut alice = entry("alice", "pw");
        alice.groups = vec!["devs".into()];
        alice.workspace_admin = true;
        let mut ci = entry("ci-web", "pw");
        ci.kind = UserKind::Pipeline;
        ci.repository = Some("web-app".into());
        ci.environment = Some("production".into());
        let bob = entry("bob", "pw");
        file.upsert(alice);
        file.upsert(ci);
        file.upsert(bob);
        let text = file.to_json();
        assert!(text.ends_with("}\n"));
        assert_eq!(UsersFile::from_json(&text).unwrap(), file);
        assert_eq!(UsersFile::from_json(&text).unwrap().to_json(), text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bob = &value["users"][2];
        assert_eq!(bob["kind"], "user");
        assert!(bob.get("groups").is_none() && bob.get("repository").is_none());
        assert!(bob.get("workspace_admin").is_none());
        assert_eq!(UsersFile::default().to_json(), "{\n  \"users\": []\n}\n");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let err = UsersFile::load(&missing).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read users file "),
            "{err}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[]").unwrap();
        let shown = UsersFile::load(&bad).unwrap_err().to_string();
        assert!(
            shown.starts_with(&format!("users file {}: ", bad.display())),
            "{shown}"
        );
    }
}
