//! Reloading the policy and the users file while serving: on SIGHUP, and when a
//! file's content changes (checked every `reload_interval`). A new policy that
//! does not load is refused and logged with every problem; the old one keeps
//! serving. Requests in flight finish with the policy they started with.
//! SIGHUP also reopens the audit log (after a rotation).

use crate::server::{self, AppState, ServeError};
use crate::users::UsersFile;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Watches until the task is aborted.
pub(crate) async fn watch(state: Arc<AppState>) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::warn!("cannot listen for SIGHUP ({err}); reloading on file changes only");
            None
        }
    };
    let mut policy_seen = fingerprint(&state.config.policy);
    let mut users_seen = state.config.users.as_deref().and_then(fingerprint);
    loop {
        let forced = tokio::select! {
            () = hangup_received(&mut hangup) => true,
            () = tick(state.config.reload_interval) => false,
        };
        if forced {
            reopen_audit_log(&state);
        }
        let policy_now = fingerprint(&state.config.policy);
        if forced || policy_now != policy_seen {
            policy_seen = policy_now;
            reload_policy(&state);
        }
        if let Some(path) = &state.config.users {
            let users_now = fingerprint(path);
            if forced || users_now != users_seen {
                users_seen = users_now;
                reload_users(&state, path);
            }
        }
    }
}

/// Loads the policy file again and swaps it in, or keeps the old one.
pub(crate) fn reload_policy(state: &AppState) {
    let loaded = server::read_policy(&state.config)
        .and_then(|text| server::load_policy(&state.host, &state.config, &text));
    match loaded {
        Ok(policy) => {
            for lint in policy.lints() {
                tracing::warn!("policy lint: {lint}");
            }
            state.policy.store(Arc::new(policy));
            state.metrics.reload(true);
            tracing::info!("policy reloaded from {}", state.config.policy.display());
        }
        Err(err) => {
            state.metrics.reload(false);
            let err: ServeError = err;
            tracing::error!("new policy refused, the previous one keeps serving: {err}");
        }
    }
}

/// Opens the audit log's path again; on failure the old file stays in use (and
/// the next record tries the path again).
fn reopen_audit_log(state: &AppState) {
    if let Some(audit) = &state.audit {
        match audit.reopen() {
            Ok(()) => tracing::info!("audit log reopened"),
            Err(err) => tracing::error!("{err}"),
        }
    }
}

fn reload_users(state: &AppState, path: &Path) {
    match UsersFile::load(path) {
        Ok(users) => {
            state.identity.replace_users(users);
            tracing::info!("users reloaded from {}", path.display());
        }
        Err(err) => tracing::error!("new users file refused, the previous one stays in use: {err}"),
    }
}

/// The sha256 of a file's content; `None` when it cannot be read (a file being
/// replaced may be missing for a moment: the next look sees the new one).
fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path)
        .ok()
        .map(|bytes| Sha256::digest(&bytes).into())
}

async fn hangup_received(hangup: &mut Option<Signal>) {
    match hangup {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

async fn tick(interval: Option<Duration>) {
    match interval {
        Some(interval) => tokio::time::sleep(interval).await,
        None => std::future::pending::<()>().await,
    }
}
