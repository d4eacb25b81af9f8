//! `taglock users add|remove|list`: the users file `taglock serve` checks HTTP
//! Basic logins against. Passwords are read without echo (or from standard input
//! or a file), hashed with bcrypt, and never printed; neither are hashes.

use crate::args::{KindArg, UsersAddArgs, UsersArgs, UsersCommand, UsersListArgs, UsersRemoveArgs};
use crate::outcome::Outcome;
use crate::output::{self, io_message};
use crate::style::{self, Style};
use anyhow::{Context, anyhow, bail};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use taglock_proxy::users::{MAX_PASSWORD_BYTES, UserEntry, UserKind, UsersFile};

/// Runs one `users` subcommand.
pub fn run(args: &UsersArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        UsersCommand::Add(args) => add(args),
        UsersCommand::Remove(args) => remove(args),
        UsersCommand::List(args) => list(args),
    }
}

/// Adds or replaces one entry, creating the file if it is missing.
fn add(args: &UsersAddArgs) -> anyhow::Result<Outcome> {
    let kind = match args.kind {
        KindArg::User => UserKind::User,
        KindArg::Pipeline => UserKind::Pipeline,
        KindArg::Token => UserKind::Token,
    };
    match (kind, &args.repository) {
        (UserKind::Pipeline, None) => {
            bail!("--kind pipeline needs --repository (the code repository it runs for)")
        }
        (UserKind::User | UserKind::Token, Some(_)) => {
            bail!("--repository is only for --kind pipeline")
        }
        _ => {}
    }
    if args.environment.is_some() && kind != UserKind::Pipeline {
        bail!("--environment is only for --kind pipeline");
    }
    // Read the file first: a broken file is reported before anyone types a password.
    let file = read_or_empty(&args.file)?;
    let password = password(args)?;
    let mut entry =
        UserEntry::new(&args.name, &password, args.cost).map_err(|err| anyhow!("{err}"))?;
    entry.kind = kind;
    entry.groups.clone_from(&args.groups);
    entry.workspace_admin = args.workspace_admin;
    entry.repository.clone_from(&args.repository);
    entry.environment.clone_from(&args.environment);
    entry
        .check(file.entries().len())
        .map_err(|err| anyhow!("{err}"))?;
    let summary = describe(&entry);
    // The password prompt can take minutes: the file is locked only for the edit,
    // which re-reads it so a concurrent change is kept.
    let replaced = edit(&args.file, |file| Ok(file.upsert(entry)))?;
    let verb = if replaced { "replaced" } else { "added" };
    let preposition = if replaced { "in" } else { "to" };
    let style = Style::stderr();
    output::stderr(&format!(
        "{} {verb} `{}` ({summary}) {preposition} {}\n",
        style.good("ok:"),
        args.name,
        args.file.display()
    ));
    Ok(Outcome::Success)
}

/// Removes one entry; a name that is not there is an error.
fn remove(args: &UsersRemoveArgs) -> anyhow::Result<Outcome> {
    if !args.file.exists() {
        // `load` words a missing file; `edit` would start an empty one.
        UsersFile::load(&args.file).map_err(|err| anyhow!("{err}"))?;
    }
    edit(&args.file, |file| {
        if file.remove(&args.name) {
            Ok(())
        } else {
            bail!("{} has no user `{}`", args.file.display(), args.name)
        }
    })?;
    output::stderr(&format!(
        "{} removed `{}` from {}\n",
        Style::stderr().good("ok:"),
        args.name,
        args.file.display()
    ));
    Ok(Outcome::Success)
}

/// Prints one line per entry: name, kind, groups, admin flag, pipeline identity.
fn list(args: &UsersListArgs) -> anyhow::Result<Outcome> {
    let file = UsersFile::load(&args.file).map_err(|err| anyhow!("{err}"))?;
    output::stdout(&table(&file, Style::stdout()))?;
    Ok(Outcome::Success)
}

/// NAME, KIND, ACTOR (the id the policy's grants see), GROUPS, ADMIN.
fn table(file: &UsersFile, style: Style) -> String {
    let rows: Vec<[String; 5]> = file
        .entries()
        .iter()
        .map(|entry| {
            [
                style::shown(&entry.name),
                entry.kind.to_string(),
                style::shown(&format!("{}:{}", entry.kind, entry.actor().id)),
                style::shown(&entry.groups.join(",")),
                if entry.workspace_admin { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    let headers = ["NAME", "KIND", "PRINCIPAL", "GROUPS", "ADMIN"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut text = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| style::pad(cell, width))
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text
    };
    let mut out = style.bold(&line(headers));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// `pipeline web-app/production, groups devs, workspace admin`.
fn describe(entry: &UserEntry) -> String {
    let mut parts = vec![match entry.kind {
        UserKind::Pipeline => format!("pipeline {}", entry.actor().id),
        kind => kind.to_string(),
    }];
    if !entry.groups.is_empty() {
        parts.push(format!("groups {}", entry.groups.join(", ")));
    }
    if entry.workspace_admin {
        parts.push("workspace admin".to_owned());
    }
    parts.join(", ")
}

/// The users file at `path`, or an empty one if there is no file yet.
fn read_or_empty(path: &Path) -> anyhow::Result<UsersFile> {
    if path.exists() {
        UsersFile::load(path).map_err(|err| anyhow!("{err}"))
    } else {
        Ok(UsersFile::default())
    }
}

/// The new password: from standard input, a file, or typed twice at the terminal.
fn password(args: &UsersAddArgs) -> anyhow::Result<String> {
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .take(4096)
            .read_to_string(&mut text)
            .map_err(|err| {
                anyhow!(
                    "cannot read the password from standard input: {}",
                    io_message(&err)
                )
            })?;
        one_line(text, "standard input")?
    } else if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            anyhow!(
                "cannot read password file {}: {}",
                path.display(),
                io_message(&err)
            )
        })?;
        one_line(text, &format!("password file {}", path.display()))?
    } else if std::io::stdin().is_terminal() {
        prompt_twice(&args.name)?
    } else {
        bail!(
            "no password given: pass --password-stdin or --password-file FILE \
             (standard input is not a terminal to prompt on)"
        );
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!(
            "the password is {} bytes long; bcrypt uses at most {MAX_PASSWORD_BYTES}",
            password.len()
        );
    }
    Ok(password)
}

/// The text without its final line break; more than one line is refused, so a
/// file holding something else is not taken for a password.
fn one_line(mut text: String, source: &str) -> anyhow::Result<String> {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.contains(['\n', '\r']) {
        bail!("{source} holds more than one line; the password is one line");
    }
    Ok(text)
}

/// Asks for the password twice on the terminal, without echo.
fn prompt_twice(name: &str) -> anyhow::Result<String> {
    let first = rpassword::prompt_password(format!("password for {name}: "))
        .context("cannot read the password from the terminal")?;
    let second = rpassword::prompt_password("again: ")
        .context("cannot read the password from the terminal")?;
    if first != second {
        bail!("the two passwords differ; nothing was written");
    }
    Ok(first)
}

/// Changes the users file under an exclusive lock: reads it (or starts an empty
/// one), applies `change`, writes it back. Two `taglock users` runs on one file
/// take turns, so neither loses the other's entry. The lock is an advisory lock
/// on `<file>.lock` beside it (the file itself is replaced by a rename, so a lock
/// on it would not outlive the first write); the lock file stays, empty.
fn edit<T>(
    path: &Path,
    change: impl FnOnce(&mut UsersFile) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let fail = |err: std::io::Error| {
        anyhow!(
            "cannot lock users file {} (through {}): {}",
            path.display(),
            lock_path.display(),
            io_message(&err)
        )
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(fail)?;
    lock.lock().map_err(fail)?;
    let mut file = read_or_empty(path)?;
    let changed = change(&mut file)?;
    write_atomically(path, &file.to_json())?;
    // Closing `lock` releases it.
    Ok(changed)
}

/// Writes `text` to `path` through a temporary file in the same directory and a
/// rename, so a reader (the proxy reloading) sees the old file or the new one,
/// never half of one. A new file is readable by its owner only (0600); an
/// existing file keeps its permissions.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let fail = |err: std::io::Error| {
        anyhow!(
            "cannot write users file {}: {}",
            path.display(),
            io_message(&err)
        )
    };
    // tempfile creates the file with mode 0600.
    let mut temp = tempfile::Builder::new()
        .prefix(".taglock-users-")
        .tempfile_in(dir)
        .map_err(fail)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        std::fs::set_permissions(temp.path(), metadata.permissions()).map_err(fail)?;
    }
    temp.write_all(text.as_bytes()).map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(path).map_err(|err| fail(err.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_drops_only_the_final_line_break() {
        assert_eq!(one_line("pw\n".into(), "x").unwrap(), "pw");
        assert_eq!(one_line("pw\r\n".into(), "x").unwrap(), "pw");
        assert_eq!(one_line(" pw ".into(), "x").unwrap(), " pw ");
        assert!(one_line("pw\nmore\n".into(), "x").is_err());
    }

    #[test]
    fn the_table_shows_principals_and_never_hashes() {
        let mut file = UsersFile::default();
        let mut alice = UserEntry::new("alice", "pw", 4).unwrap();
        alice.groups = vec!["devs".into(), "qa".into()];
        alice.workspace_admin = true;
        let mut ci = UserEntry::new("ci-web", "pw", 4).unwrap();
        ci.kind = UserKind::Pipeline;
        ci.repository = Some("web-app".into());
        ci.environment = Some("production".into());
        let hashes = [alice.password_bcrypt.clone(), ci.password_bcrypt.clone()];
        file.upsert(alice);
        file.upsert(ci);
        let shown = table(&file, Style::plain());
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines,
            [
                "NAME    KIND      PRINCIPAL                    GROUPS   ADMIN",
                "alice   user      user:alice                   devs,qa  yes",
                "ci-web  pipeline  pipeline:web-app/production           no",
            ]
        );
        for hash in hashes {
            assert!(!shown.contains(&hash));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        write_atomically(&path, "{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, "{\"users\": []}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"users\": []}");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
