//! `taglock envoy …`: the proxy-wasm filter (`envoy-filter/`), which this
//! binary embeds (refreshed by `cargo xtask build-wasm`), delivered three ways.
//!
//! - `bootstrap`: an Envoy configuration that serves a registry with the policy
//!   enforced, written as JSON (a subset of YAML) to `DIR/envoy.yaml`, next to
//!   the filter, `DIR/taglock_envoy.wasm`.
//! - `push`: the filter as an OCI artifact in a registry (`crate::wasm_push`).
//! - `wasmplugin`: an Istio `WasmPlugin` resource that loads it.
//!
//! Both configurations give the filter the same plugin configuration, built by
//! one function, [`plugin_config`]. `docs/envoy.md` explains each part.

use crate::diagnostics;
use crate::input::{PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output;
use crate::style::Style;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use policy_core::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use taglock_gateway::manifest::MAX_MANIFEST_BYTES;
use taglock_gateway::upstream_auth::{RealmRule, Url};
use taglock_gateway::{ClaimNames, Refusal};
use taglock_proxy::config::parse_duration;

/// The filter, as `cargo xtask build-wasm` built it (wasm-opt'd).
pub const FILTER: &[u8] = include_bytes!("../envoy/taglock_envoy.wasm");
/// The filter's file name in the output directory.
pub const FILTER_FILE: &str = "taglock_envoy.wasm";
/// The `payload_in_metadata` key the JWT provider writes and the filter reads.
const PAYLOAD_KEY: &str = "jwt_payload";
/// The JWT provider's name.
const PROVIDER: &str = "taglock";
/// The name of the filter's root context (`envoy-filter`'s `root_id`).
pub const ROOT_ID: &str = "taglock";
/// The route timeout of manifest pushes and deletes, in seconds: the registry
/// must answer a write within it.
const WRITE_TIMEOUT_S: u64 = 60;
/// How much longer than the facts and the write a lock lives, in milliseconds
/// (it is released when the registry answers; the TTL only frees the lock of
/// a worker that died holding it).
const LOCK_MARGIN_MS: u64 = 5_000;
/// The longest `--lock-timeout` (the filter refuses more).
const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// `taglock envoy …`.
#[derive(Debug, Args)]
pub struct EnvoyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EnvoyCommand,
}

/// The `envoy` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnvoyCommand {
    /// Write an Envoy configuration (and the filter) that serves a registry
    /// with the policy enforced.
    Bootstrap(Box<BootstrapArgs>),
    /// Push the embedded filter to an OCI registry (plain HTTP) as the Wasm
    /// artifact Istio pulls; prints the manifest digest, the `WasmPlugin`'s `sha256`.
    Push(crate::wasm_push::PushArgs),
    /// Print an Istio `WasmPlugin` (JSON, which kubectl applies) that loads the
    /// pushed filter with the policy enforced.
    Wasmplugin(Box<WasmPluginArgs>),
}

/// Which claims of a verified token make the actor (`--claim-*`).
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The claim that gives the actor's id.
    #[arg(long, value_name = "CLAIM", default_value = "sub")]
    pub claim_id: String,
    /// The claim that gives the actor's kind (user, pipeline or token).
    #[arg(long, value_name = "CLAIM")]
    pub claim_kind: Option<String>,
    /// The claim that gives the actor's groups.
    #[arg(long, value_name = "CLAIM", default_value = "groups")]
    pub claim_groups: String,
    /// The claim that names a pipeline's code repository.
    #[arg(long, value_name = "CLAIM")]
    pub claim_repository: Option<String>,
    /// The claim that names a pipeline's deployment environment.
    #[arg(long, value_name = "CLAIM")]
    pub claim_environment: Option<String>,
    /// The boolean claim that makes the actor a workspace admin.
    #[arg(long, value_name = "CLAIM")]
    pub claim_workspace_admin: Option<String>,
}

impl ClaimArgs {
    /// The gateway's claim names.
    fn names(&self) -> ClaimNames {
        ClaimNames {
            id: self.claim_id.clone(),
            kind: self.claim_kind.clone(),
            groups: Some(self.claim_groups.clone()),
            repository: self.claim_repository.clone(),
            environment: self.claim_environment.clone(),
            workspace_admin: self.claim_workspace_admin.clone(),
        }
    }
}

/// `taglock envoy bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The policy JSON file; it is checked first (exit 1 with every problem located).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The registry, plain HTTP (`127.0.0.1:5000`, `registry.internal:5000`).
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: String,
    /// Where Envoy listens for clients.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Envoy's admin interface (keep it on a loopback address).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9901")]
    pub admin: String,
    /// The directory to write `envoy.yaml` and the filter into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Identity by JWT: the issuer (`iss`) tokens must name. Without it the
    /// registry authenticates clients itself and every actor is anonymous to
    /// the policy (immutability-only policies).
    #[arg(long, value_name = "ISSUER", requires = "jwt_jwks")]
    pub jwt_issuer: Option<String>,
    /// The JSON Web Key Set that verifies tokens, inlined into the configuration.
    #[arg(long, value_name = "FILE", requires = "jwt_issuer")]
    pub jwt_jwks: Option<PathBuf>,
    /// An audience tokens must name (repeatable; none: any audience).
    #[arg(long = "jwt-audience", value_name = "AUD")]
    pub jwt_audiences: Vec<String>,
    /// Which claims make the actor (JWT identity only).
    #[command(flatten)]
    pub claims: ClaimArgs,
    /// The bound on gathering one request's facts from the registry.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub facts_timeout_ms: u64,
    /// How long a write waits for another write to the same tag [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// How long a stream may stay idle before Envoy ends it (also bounds a
    /// request the filter never answered); must exceed the lock wait plus the
    /// facts timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stream_idle_timeout: u64,
    /// User name the filter logs in to the registry with (its look-ups, and in
    /// JWT mode the requests it forwards); the password goes into the plugin
    /// configuration, so `envoy.yaml` is written readable by its owner only.
    #[arg(long, value_name = "NAME", requires = "upstream_password_file")]
    pub upstream_user: Option<String>,
    /// File whose first line is the registry password.
    #[arg(long, value_name = "FILE", requires = "upstream_user")]
    pub upstream_password_file: Option<PathBuf>,
    /// A bearer-token realm off the registry's host and port that may receive
    /// the credentials (Envoy gets a cluster for it; by default only a realm at
    /// the registry's own address is used).
    #[arg(long, value_name = "URL", requires = "upstream_user")]
    pub upstream_token_realm: Option<String>,
}

/// The cluster of `--upstream-token-realm` when it is not the registry's.
const TOKEN_REALM_CLUSTER: &str = "taglock_token_realm";

/// `taglock envoy wasmplugin`.
#[derive(Debug, Args)]
pub struct WasmPluginArgs {
    /// The policy JSON file; it is checked first (exit 1 with every problem
    /// located, nothing printed to stdout).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Where Istio fetches the filter: `oci://REGISTRY/IMAGE:TAG` (also with
    /// no scheme), `https://…`, `http://…` or `file://…`.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The pin Istio checks: for `oci://` (or no scheme) the image manifest's
    /// digest (what `taglock envoy push` prints), for http(s) and file the
    /// module's sha256. `sha256:HEX` or `HEX`.
    #[arg(long, value_name = "DIGEST")]
    pub sha256: String,
    /// The registry the filter reads facts from, as the mesh routes it
    /// (`registry.registry.svc.cluster.local:5000`): the `:authority` of its
    /// look-ups.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: String,
    /// The Envoy cluster of that registry; Istio names a service's cluster
    /// `outbound|PORT||HOST`, the default.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The resource's name.
    #[arg(long, value_name = "NAME", default_value = "taglock")]
    pub name: String,
    /// The resource's namespace (none: kubectl's current namespace).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// A label the proxies to filter carry (repeatable, all must match; none:
    /// every proxy of the namespace).
    #[arg(long = "selector", value_name = "KEY=VALUE")]
    pub selectors: Vec<String>,
    /// Identity by JWT, verified by an Istio `RequestAuthentication` for this
    /// issuer (Istio's `jwt_authn` keeps the payload under the issuer's name,
    /// which is where the filter reads it). Without it the registry
    /// authenticates clients and every actor is anonymous to the policy.
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Which claims make the actor (JWT identity only).
    #[command(flatten)]
    pub claims: ClaimArgs,
    /// The bound on gathering one request's facts from the registry.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub facts_timeout_ms: u64,
    /// How long a write waits for another write to the same tag [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
}

/// `taglock envoy …`.
pub fn run(args: &EnvoyArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        EnvoyCommand::Bootstrap(args) => bootstrap(args),
        EnvoyCommand::Push(args) => crate::wasm_push::run(args),
        EnvoyCommand::Wasmplugin(args) => wasmplugin(args),
    }
}

/// The policy file's text, checked: `None` (after printing every problem
/// located to stderr) when it is invalid. Lints are printed as warnings.
fn checked_policy(path: &Path) -> anyhow::Result<Option<(String, Policy)>> {
    let input = PolicyInput::read(&Source::new(path))?;
    let policy = match Policy::from_json(&input.text) {
        Ok(policy) => policy,
        Err(errors) => {
            output::stderr(&diagnostics::refused(&input, &errors, Style::stderr()));
            return Ok(None);
        }
    };
    output::stderr(&diagnostics::warnings(
        &input,
        policy.lints(),
        Style::stderr(),
    ));
    Ok(Some((input.text, policy)))
}

/// Warns that a policy with `permissions` denies every write to the anonymous
/// actors of the registry identity mode.
fn warn_anonymous(policy: &Policy) {
    if policy.checks_permissions() {
        output::stderr(
            "warning: without --jwt-issuer every actor is anonymous to the policy, \
             and its `permissions` deny every write\n",
        );
    }
}

fn bootstrap(args: &BootstrapArgs) -> anyhow::Result<Outcome> {
    let Some((policy_text, policy)) = checked_policy(&args.policy)? else {
        return Ok(Outcome::InvalidPolicy);
    };
    let identity = match (&args.jwt_issuer, &args.jwt_jwks) {
        (Some(issuer), Some(jwks)) => {
            let text = std::fs::read_to_string(jwks)
                .with_context(|| format!("cannot read the JWKS {}", jwks.display()))?;
            let parsed: Value = serde_json::from_str(&text)
                .with_context(|| format!("the JWKS {} is not JSON", jwks.display()))?;
            if !parsed.get("keys").is_some_and(Value::is_array) {
                bail!("the JWKS {} has no `keys` array", jwks.display());
            }
            Some(Jwt {
                issuer: issuer.clone(),
                jwks: text,
                audiences: args.jwt_audiences.clone(),
                claims: args.claims.names(),
            })
        }
        _ => {
            warn_anonymous(&policy);
            None
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out)
        .with_context(|| format!("cannot resolve {}", args.out.display()))?;
    let filter = out.join(FILTER_FILE);
    std::fs::write(&filter, FILTER)
        .with_context(|| format!("cannot write {}", filter.display()))?;
    let credentials = match (&args.upstream_user, &args.upstream_password_file) {
        (Some(user), Some(file)) => Some((user.clone(), read_password(file)?)),
        _ => None,
    };
    let config = envoy_config(
        args,
        &policy_text,
        identity.as_ref(),
        &filter,
        credentials.as_ref(),
    )?;
    let path = out.join("envoy.yaml");
    let mut text = serde_json::to_string_pretty(&config)?;
    text.push('\n');
    write_private(&path, &text, credentials.is_some())?;
    output::stdout(&format!(
        "wrote {} and {}\nrun: envoy -c {}\n",
        path.display(),
        filter.display(),
        path.display()
    ))?;
    Ok(Outcome::Success)
}

/// Writes `path`; with `secret`, readable and writable by its owner only (the
/// file holds the registry password).
fn write_private(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        // An existing file keeps its mode through `open`: narrow it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The registry password: the first line of `file`.
fn read_password(file: &Path) -> anyhow::Result<String> {
    taglock_proxy::config::read_password(file)
        .map_err(|err| anyhow::anyhow!("--upstream-password-file: {err}"))
}

/// Where `--upstream-token-realm`'s cluster connects: host, port, TLS.
type RealmEndpoint = (String, u16, bool);

/// The `upstream` object of the plugin configuration, and the realm's
/// `(host, port, tls)` when it needs its own cluster.
fn upstream_plugin(
    registry: &str,
    user: &str,
    password: &str,
    realm: Option<&str>,
) -> anyhow::Result<(Value, Option<RealmEndpoint>)> {
    if user.contains(':') {
        bail!("--upstream-user may not contain `:` (HTTP Basic)");
    }
    // The filter checks realms with the gateway's rule; refuse here what it would.
    RealmRule::new(&format!("http://{registry}"), realm)
        .map_err(|why| anyhow::anyhow!("--upstream-token-realm {why}"))?;
    let mut plugin = json!({ "user": user, "password": password });
    let Some(realm) = realm else {
        return Ok((plugin, None));
    };
    let url = Url::parse(realm).map_err(|why| anyhow::anyhow!("--upstream-token-realm: {why}"))?;
    let tls = url.scheme() == "https";
    let port = url.port().unwrap_or(if tls { 443 } else { 80 });
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    if let Some(object) = plugin.as_object_mut() {
        object.insert("token_realm".to_owned(), json!(realm));
        object.insert("token_cluster".to_owned(), json!(TOKEN_REALM_CLUSTER));
    }
    let same = !tls && url.authority().eq_ignore_ascii_case(registry);
    Ok((plugin, (!same).then(|| (host.to_owned(), port, tls))))
}

fn wasmplugin(args: &WasmPluginArgs) -> anyhow::Result<Outcome> {
    let Some((policy_text, policy)) = checked_policy(&args.policy)? else {
        return Ok(Outcome::InvalidPolicy);
    };
    if args.jwt_issuer.is_none() {
        warn_anonymous(&policy);
    }
    let resource = wasm_plugin(args, &policy_text)?;
    let mut text = serde_json::to_string_pretty(&resource)?;
    text.push('\n');
    output::stdout(&text)?;
    Ok(Outcome::Success)
}

/// How the filter learns who the actor is.
enum Identity<'a> {
    /// The registry authenticates; every actor is anonymous to the policy.
    Registry,
    /// `jwt_authn` verified a token and left its payload in the stream's
    /// metadata under `payload_key`.
    Jwt {
        payload_key: &'a str,
        claims: &'a ClaimNames,
    },
}

/// `--lock-timeout` in milliseconds (default 30 s, as `taglock serve`'s),
/// refused past [`MAX_LOCK_TIMEOUT`].
fn lock_timeout_ms(lock_timeout: Option<Duration>) -> anyhow::Result<u64> {
    let timeout = lock_timeout.unwrap_or(Duration::from_secs(30));
    if timeout > MAX_LOCK_TIMEOUT {
        bail!("--lock-timeout {timeout:?} is over the filter's bound of {MAX_LOCK_TIMEOUT:?}");
    }
    Ok(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// The filter's plugin configuration (`envoy-filter/src/config.rs` parses
/// it): the one source for `bootstrap`'s Envoy configuration and `wasmplugin`'s
/// `pluginConfig`.
fn plugin_config(
    policy_text: &str,
    cluster: &str,
    authority: &str,
    identity: &Identity<'_>,
    facts_timeout_ms: u64,
    lock_timeout_ms: u64,
    upstream: Option<&Value>,
) -> Value {
    let identity = match identity {
        Identity::Jwt {
            payload_key,
            claims,
        } => json!({ "mode": "jwt", "payload_key": payload_key, "claims": claims }),
        Identity::Registry => json!({ "mode": "registry" }),
    };
    let mut plugin = json!({
        "policy": policy_text,
        "cluster": cluster,
        "authority": authority,
        "identity": identity,
        "facts_timeout_ms": facts_timeout_ms,
        "filter_sha256": sha256_hex(FILTER),
        "lock_ttl_ms": facts_timeout_ms
            .saturating_add(WRITE_TIMEOUT_S * 1000)
            .saturating_add(LOCK_MARGIN_MS),
        "lock_timeout_ms": lock_timeout_ms,
    });
    if let (Some(upstream), Some(object)) = (upstream, plugin.as_object_mut()) {
        object.insert("upstream".to_owned(), upstream.clone());
    }
    plugin
}

/// `sha256:HEX` or `HEX` → the 64 lowercase hex digits Istio's `sha256` takes.
fn sha256_pin(text: &str) -> anyhow::Result<String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "--sha256 `{text}` is not a sha256 digest (64 hex digits, optionally after `sha256:`)"
        );
    }
    Ok(hex.to_ascii_lowercase())
}

/// Checks `--url` against the schemes Istio fetches from (no scheme means `oci://`).
fn plugin_url(url: &str) -> anyhow::Result<String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) => {
            if !matches!(scheme, "oci" | "http" | "https" | "file") {
                bail!(
                    "--url `{url}`: Istio fetches from oci://, https://, http:// or file://, not {scheme}://"
                );
            }
            rest
        }
        None => url,
    };
    if rest.is_empty() || url.chars().any(char::is_whitespace) {
        bail!("--url `{url}` names nothing to fetch");
    }
    Ok(url.to_owned())
}

/// `KEY=VALUE` selectors → `matchLabels`.
fn match_labels(selectors: &[String]) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut labels = serde_json::Map::new();
    for selector in selectors {
        let (key, value) = selector
            .split_once('=')
            .with_context(|| format!("--selector `{selector}` is not KEY=VALUE"))?;
        if key.is_empty() {
            bail!("--selector `{selector}` has no key");
        }
        if labels
            .insert(key.to_owned(), Value::String(value.to_owned()))
            .is_some()
        {
            bail!("--selector names the label `{key}` twice");
        }
    }
    Ok(labels)
}

/// The Istio `WasmPlugin` resource.
fn wasm_plugin(args: &WasmPluginArgs, policy_text: &str) -> anyhow::Result<Value> {
    let url = plugin_url(&args.url)?;
    let sha256 = sha256_pin(&args.sha256)?;
    let (host, port) = host_port("--upstream", &args.upstream)?;
    let cluster = args
        .cluster
        .clone()
        .unwrap_or_else(|| format!("outbound|{port}||{host}"));
    let claims = args.claims.names();
    let identity = match &args.jwt_issuer {
        Some(issuer) => Identity::Jwt {
            payload_key: issuer,
            claims: &claims,
        },
        None => Identity::Registry,
    };
    let plugin = plugin_config(
        policy_text,
        &cluster,
        &args.upstream,
        &identity,
        args.facts_timeout_ms,
        lock_timeout_ms(args.lock_timeout)?,
        None,
    );
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".to_owned(), json!(args.name));
    if let Some(namespace) = &args.namespace {
        metadata.insert("namespace".to_owned(), json!(namespace));
    }
    let mut spec = serde_json::Map::new();
    let labels = match_labels(&args.selectors)?;
    if !labels.is_empty() {
        spec.insert("selector".to_owned(), json!({ "matchLabels": labels }));
    }
    spec.insert("url".to_owned(), json!(url));
    spec.insert("sha256".to_owned(), json!(sha256));
    spec.insert("imagePullPolicy".to_owned(), json!("IfNotPresent"));
    // After Istio's authentication filters (jwt_authn has run and left the
    // payload), like an authorization filter.
    spec.insert("phase".to_owned(), json!("AUTHZ"));
    // A filter that failed to load or fetch refuses requests, never lets
    // them through unchecked (FAIL_OPEN would let protected tags be overwritten).
    spec.insert("failStrategy".to_owned(), json!("FAIL_CLOSE"));
    spec.insert("type".to_owned(), json!("HTTP"));
    spec.insert("pluginName".to_owned(), json!(ROOT_ID));
    spec.insert("pluginConfig".to_owned(), plugin);
    Ok(json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// The JWT identity settings.
struct Jwt {
    issuer: String,
    jwks: String,
    audiences: Vec<String>,
    claims: ClaimNames,
}

/// `HOST:PORT` → (host, port).
fn host_port(what: &str, text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("{what} `{text}` is not HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .with_context(|| format!("{what} `{text}` has no valid port"))?;
    if host.is_empty() {
        bail!("{what} `{text}` has no host");
    }
    Ok((host.to_owned(), port))
}

fn socket(what: &str, text: &str) -> anyhow::Result<Value> {
    let (host, port) = host_port(what, text)?;
    if host.parse::<IpAddr>().is_err() {
        bail!("{what} `{text}` must be an IP address and port");
    }
    Ok(json!({ "socket_address": { "address": host, "port_value": port } }))
}

/// The whole bootstrap.
fn envoy_config(
    args: &BootstrapArgs,
    policy_text: &str,
    jwt: Option<&Jwt>,
    filter: &Path,
    credentials: Option<&(String, String)>,
) -> anyhow::Result<Value> {
    let (upstream_host, upstream_port) = host_port("--upstream", &args.upstream)?;
    let cluster_type = if upstream_host.parse::<IpAddr>().is_ok() {
        "STATIC"
    } else {
        "STRICT_DNS"
    };
    let identity = match jwt {
        Some(jwt) => Identity::Jwt {
            payload_key: PAYLOAD_KEY,
            claims: &jwt.claims,
        },
        None => Identity::Registry,
    };
    let lock_timeout_ms = lock_timeout_ms(args.lock_timeout)?;
    // A request waits for its lock, then for its facts, with no byte moving:
    // Envoy's idle timeout must outlast both, or it would end the wait first.
    let paused_ms = lock_timeout_ms.saturating_add(args.facts_timeout_ms);
    if args.stream_idle_timeout.saturating_mul(1000) <= paused_ms {
        bail!(
            "--stream-idle-timeout {}s must exceed --lock-timeout plus --facts-timeout-ms ({paused_ms} ms): \
             Envoy would end a waiting write before the filter answers it",
            args.stream_idle_timeout
        );
    }
    let (upstream, realm_cluster) = match credentials {
        Some((user, password)) => {
            let (plugin, realm) = upstream_plugin(
                &args.upstream,
                user,
                password,
                args.upstream_token_realm.as_deref(),
            )?;
            (Some(plugin), realm)
        }
        None => (None, None),
    };
    let plugin = plugin_config(
        policy_text,
        "registry",
        &args.upstream,
        &identity,
        args.facts_timeout_ms,
        lock_timeout_ms,
        upstream.as_ref(),
    );
    let mut clusters = vec![json!({
        "name": "registry",
        "type": cluster_type,
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": "registry",
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                "socket_address": { "address": upstream_host, "port_value": upstream_port }
            } } }] }]
        }
    })];
    if let Some((host, port, tls)) = realm_cluster {
        let kind = if host.parse::<IpAddr>().is_ok() {
            "STATIC"
        } else {
            "STRICT_DNS"
        };
        let mut cluster = json!({
            "name": TOKEN_REALM_CLUSTER,
            "type": kind,
            "connect_timeout": "2s",
            "load_assignment": {
                "cluster_name": TOKEN_REALM_CLUSTER,
                "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                    "socket_address": { "address": host, "port_value": port }
                } } }] }]
            }
        });
        if let (true, Some(object)) = (tls, cluster.as_object_mut()) {
            // The realm receives the password: its certificate is verified
            // against the system's roots, for its own name.
            object.insert(
                "transport_socket".to_owned(),
                json!({
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                        "sni": host,
                        "common_tls_context": { "validation_context": {
                            "trusted_ca": { "filename": "/etc/ssl/certs/ca-certificates.crt" },
                            "match_typed_subject_alt_names": [{
                                "san_type": "DNS",
                                "matcher": { "exact": host }
                            }]
                        } }
                    }
                }),
            );
        }
        clusters.push(cluster);
    }
    let filter_path = filter
        .to_str()
        .context("the output directory's path is not UTF-8")?;
    let mut http_filters = Vec::new();
    if let Some(jwt) = jwt {
        let mut provider = json!({
            "issuer": jwt.issuer,
            "local_jwks": { "inline_string": jwt.jwks },
            "payload_in_metadata": PAYLOAD_KEY,
            "forward": false,
        });
        if let (false, Some(provider)) = (jwt.audiences.is_empty(), provider.as_object_mut()) {
            provider.insert("audiences".to_owned(), json!(jwt.audiences));
        }
        http_filters.push(json!({
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": { PROVIDER: provider },
                "rules": [{
                    "match": { "prefix": "/" },
                    // No token: anonymous to the policy; a token that does not
                    // verify: refused (401) by Envoy before the filter runs.
                    "requires": { "requires_any": { "requirements": [
                        { "provider_name": PROVIDER },
                        { "allow_missing": {} }
                    ] } }
                }]
            }
        }));
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "taglock",
                "root_id": ROOT_ID,
                // A worker whose filter failed answers 503, never lets a request
                // through unchecked.
                "failure_policy": "FAIL_CLOSED",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": serde_json::to_string(&plugin)?,
                },
                "vm_config": {
                    "vm_id": "taglock",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": filter_path } }
                }
            }
        }
    }));
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    let too_large = oci_body(&Refusal::manifest_too_large())?;
    // The same bodies `taglock serve` answers with (the access log keeps the
    // response flags and details).
    let unreachable = oci_body(&Refusal::upstream_unavailable(""))?;
    let no_answer = oci_body(&Refusal::upstream_no_answer(""))?;
    let access_log_format = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(:PATH)%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms taglock=\"%FILTER_STATE(wasm.taglock_decision:PLAIN)%\"\n";
    Ok(json!({
        "admin": { "address": socket("--admin", &args.admin)? },
        "static_resources": {
            "listeners": [{
                "name": "registry",
                "address": socket("--listen", &args.listen)?,
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "taglock",
                        "stream_idle_timeout": format!("{}s", args.stream_idle_timeout),
                        "access_log": [{
                            "name": "envoy.access_loggers.stdout",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                                "log_format": { "text_format_source": { "inline_string": access_log_format } }
                            }
                        }],
                        "local_reply_config": { "mappers": [
                            {
                                // Envoy's own 413: a manifest over the buffer limit.
                                "filter": { "status_code_filter": { "comparison": {
                                    "op": "EQ",
                                    "value": { "default_value": 413, "runtime_key": "taglock.local_reply.413" }
                                } } },
                                "body_format_override": { "json_format": too_large, "content_type": "application/json" }
                            },
                            {
                                // Envoy's own 503: no connection to the registry,
                                // so nothing of the request reached it.
                                "filter": { "response_flag_filter": {
                                    "flags": ["UF", "UH", "UO", "NR"]
                                } },
                                "body_format_override": { "json_format": unreachable, "content_type": "application/json" }
                            },
                            {
                                // Envoy's own 503/504 after forwarding: the
                                // registry did not answer; a write may still land.
                                "filter": { "response_flag_filter": {
                                    "flags": ["URX", "UC", "UT", "UR"]
                                } },
                                "body_format_override": { "json_format": no_answer, "content_type": "application/json" }
                            }
                        ] },
                        "route_config": {
                            "name": "registry",
                            "virtual_hosts": [{
                                "name": "registry",
                                "domains": ["*"],
                                "routes": [
                                    {
                                        // A manifest push: the filter buffers its body to
                                        // digest it, up to the gateway's bound.
                                        "match": {
                                            "safe_regex": { "regex": "^/v2/.+/manifests/[^/]+$" },
                                            "headers": [{ "name": ":method", "string_match": { "exact": "PUT" } }]
                                        },
                                        "route": { "cluster": "registry", "timeout": format!("{WRITE_TIMEOUT_S}s") },
                                        "request_body_buffer_limit": MAX_MANIFEST_BYTES
                                    },
                                    {
                                        // A manifest delete: bounded, so its write lock
                                        // (held until the registry answers) outlives it.
                                        "match": {
                                            "safe_regex": { "regex": "^/v2/.+/manifests/[^/]+$" },
                                            "headers": [{ "name": ":method", "string_match": { "exact": "DELETE" } }]
                                        },
                                        "route": { "cluster": "registry", "timeout": format!("{WRITE_TIMEOUT_S}s") }
                                    },
                                    {
                                        // Everything else streams (blob uploads may be large and slow).
                                        "match": { "prefix": "/" },
                                        "route": { "cluster": "registry", "timeout": "0s" }
                                    }
                                ]
                            }]
                        },
                        "http_filters": http_filters
                    }
                }] }]
            }],
            "clusters": clusters
        }
    }))
}

/// Lowercase hex sha256.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The OCI error body of a refusal, as the gateway writes it.
fn oci_body(refusal: &Refusal) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&refusal.reply(None).body)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn claim_args() -> ClaimArgs {
        ClaimArgs {
            claim_id: "sub".to_owned(),
            claim_kind: None,
            claim_groups: "groups".to_owned(),
            claim_repository: None,
            claim_environment: None,
            claim_workspace_admin: None,
        }
    }

    fn plugin_args() -> WasmPluginArgs {
        WasmPluginArgs {
            policy: PathBuf::from("policy.json"),
            url: "oci://registry.example/taglock/envoy:v1".to_owned(),
            sha256: format!("sha256:{}", "ab".repeat(32)),
            upstream: "registry.registry.svc.cluster.local:5000".to_owned(),
            cluster: None,
            name: "taglock".to_owned(),
            namespace: Some("registry".to_owned()),
            selectors: vec!["app=registry-gateway".to_owned()],
            jwt_issuer: None,
            claims: claim_args(),
            facts_timeout_ms: 5_000,
            lock_timeout: None,
        }
    }

    /// The plugin configuration `bootstrap` gives the filter.
    fn bootstrap_plugin(config: &Value) -> Value {
        let filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"]
            .as_array()
            .unwrap();
        let wasm = filters
            .iter()
            .find(|f| f["name"] == "envoy.filters.http.wasm")
            .unwrap();
        serde_json::from_str(
            wasm["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_wasmplugin_pins_the_module_fails_closed_and_runs_after_authentication() {
        let resource = wasm_plugin(&plugin_args(), "{\"version\":1}").unwrap();
        assert_eq!(resource["apiVersion"], "extensions.istio.io/v1alpha1");
        assert_eq!(resource["kind"], "WasmPlugin");
        assert_eq!(
            resource["metadata"],
            json!({ "name": "taglock", "namespace": "registry" })
        );
        let spec = &resource["spec"];
        assert_eq!(spec["url"], "oci://registry.example/taglock/envoy:v1");
        assert_eq!(spec["sha256"], "ab".repeat(32));
        assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
        assert_eq!(spec["phase"], "AUTHZ");
        assert_eq!(spec["pluginName"], ROOT_ID);
        assert_eq!(
            spec["selector"],
            json!({ "matchLabels": { "app": "registry-gateway" } })
        );
        assert!(!resource.to_string().contains("FAIL_OPEN"));
        let plugin = &spec["pluginConfig"];
        assert_eq!(
            plugin["cluster"],
            "outbound|5000||registry.registry.svc.cluster.local"
        );
        assert_eq!(
            plugin["authority"],
            "registry.registry.svc.cluster.local:5000"
        );
        assert_eq!(plugin["identity"], json!({ "mode": "registry" }));
        assert_eq!(plugin["policy"], "{\"version\":1}");

        let no_selector = wasm_plugin(
            &WasmPluginArgs {
                selectors: Vec::new(),
                namespace: None,
                cluster: Some("registry".to_owned()),
                ..plugin_args()
            },
            "{}",
        )
        .unwrap();
        assert!(no_selector["spec"].get("selector").is_none());
        assert!(no_selector["metadata"].get("namespace").is_none());
        assert_eq!(no_selector["spec"]["pluginConfig"]["cluster"], "registry");
    }

    #[test]
    fn the_wasmplugin_gives_the_filter_what_bootstrap_gives_it() {
        let policy = "{\"version\":1}";
        let bootstrap = bootstrap_plugin(
            &envoy_config(
                &BootstrapArgs {
                    upstream: "registry.registry.svc.cluster.local:5000".to_owned(),
                    ..args()
                },
                policy,
                None,
                Path::new("/f.wasm"),
                None,
            )
            .unwrap(),
        );
        let mut istio = wasm_plugin(
            &WasmPluginArgs {
                cluster: Some("registry".to_owned()),
                ..plugin_args()
            },
            policy,
        )
        .unwrap()["spec"]["pluginConfig"]
            .clone();
        assert_eq!(istio, bootstrap);

        // JWT identity: the same, but the payload is where Istio's jwt_authn
        // puts it, under the issuer's name.
        let claims = ClaimNames {
            repository: Some("repository".to_owned()),
            ..claim_args().names()
        };
        let jwt = Jwt {
            issuer: "https://issuer.example".to_owned(),
            jwks: "{\"keys\":[]}".to_owned(),
            audiences: Vec::new(),
            claims,
        };
        let bootstrap = bootstrap_plugin(
            &envoy_config(
                &BootstrapArgs {
                    upstream: "registry.registry.svc.cluster.local:5000".to_owned(),
                    ..args()
                },
                policy,
                Some(&jwt),
                Path::new("/f.wasm"),
                None,
            )
            .unwrap(),
        );
        istio = wasm_plugin(
            &WasmPluginArgs {
                cluster: Some("registry".to_owned()),
                jwt_issuer: Some("https://issuer.example".to_owned()),
                claims: ClaimArgs {
                    claim_repository: Some("repository".to_owned()),
                    ..claim_args()
                },
                ..plugin_args()
            },
            policy,
        )
        .unwrap()["spec"]["pluginConfig"]
            .clone();
        assert_eq!(istio["identity"]["payload_key"], "https://issuer.example");
        istio["identity"]["payload_key"] = json!(PAYLOAD_KEY);
        assert_eq!(istio, bootstrap);
    }

    #[test]
    fn the_wasmplugin_refuses_what_istio_would_not_fetch_or_pin() {
        let bad = [
            WasmPluginArgs {
                url: "ftp://registry.example/taglock:v1".to_owned(),
                ..plugin_args()
            },
            WasmPluginArgs {
                url: String::new(),
                ..plugin_args()
            },
            WasmPluginArgs {
                sha256: "abc".to_owned(),
                ..plugin_args()
            },
            WasmPluginArgs {
                sha256: format!("sha512:{}", "ab".repeat(32)),
                ..plugin_args()
            },
            WasmPluginArgs {
                selectors: vec!["app".to_owned()],
                ..plugin_args()
            },
            WasmPluginArgs {
                selectors: vec!["app=a".to_owned(), "app=b".to_owned()],
                ..plugin_args()
            },
            WasmPluginArgs {
                upstream: "registry".to_owned(),
                ..plugin_args()
            },
        ];
        for args in bad {
            assert!(wasm_plugin(&args, "{}").is_err(), "{args:?} was accepted");
        }
        let no_scheme = wasm_plugin(
            &WasmPluginArgs {
                url: "registry.example/taglock/envoy:v1".to_owned(),
                sha256: "AB".repeat(32),
                ..plugin_args()
            },
            "{}",
        )
        .unwrap();
        assert_eq!(
            no_scheme["spec"]["url"],
            "registry.example/taglock/envoy:v1"
        );
        assert_eq!(no_scheme["spec"]["sha256"], "ab".repeat(32));
    }

    fn args() -> BootstrapArgs {
        BootstrapArgs {
            policy: PathBuf::from("policy.json"),
            upstream: "registry.internal:5000".to_owned(),
            listen: "127.0.0.1:8080".to_owned(),
            admin: "127.0.0.1:9901".to_owned(),
            out: PathBuf::from("out"),
            jwt_issuer: None,
            jwt_jwks: None,
            jwt_audiences: Vec::new(),
            claims: claim_args(),
            facts_timeout_ms: 5_000,
            lock_timeout: None,
            stream_idle_timeout: 60,
            upstream_user: None,
            upstream_password_file: None,
            upstream_token_realm: None,
        }
    }

    #[test]
    fn upstream_credentials_go_to_the_plugin_and_a_foreign_realm_gets_a_cluster() {
        let credentials = ("envoy".to_owned(), "hunter2".to_owned());
        let config = envoy_config(
            &BootstrapArgs {
                upstream: "127.0.0.1:5000".to_owned(),
                upstream_token_realm: Some("https://auth.example/token".to_owned()),
                ..args()
            },
            "{}",
            None,
            Path::new("/f.wasm"),
            Some(&credentials),
        )
        .unwrap();
        let plugin = bootstrap_plugin(&config);
        assert_eq!(plugin["upstream"]["user"], "envoy");
        assert_eq!(plugin["upstream"]["password"], "hunter2");
        assert_eq!(plugin["upstream"]["token_cluster"], TOKEN_REALM_CLUSTER);
        let clusters = config["static_resources"]["clusters"].as_array().unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1]["name"], TOKEN_REALM_CLUSTER);
        assert_eq!(clusters[1]["type"], "STRICT_DNS");
        assert_eq!(
            clusters[1]["transport_socket"]["typed_config"]["sni"],
            "auth.example"
        );
        // A realm at the registry's own address uses the registry's cluster.
        let same = envoy_config(
            &BootstrapArgs {
                upstream: "127.0.0.1:5000".to_owned(),
                upstream_token_realm: Some("http://127.0.0.1:5000/token".to_owned()),
                ..args()
            },
            "{}",
            None,
            Path::new("/f.wasm"),
            Some(&credentials),
        )
        .unwrap();
        assert_eq!(
            same["static_resources"]["clusters"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        for bad in ["ftp://a/b", "http://a/b?c=d"] {
            assert!(
                envoy_config(
                    &BootstrapArgs {
                        upstream_token_realm: Some(bad.to_owned()),
                        ..args()
                    },
                    "{}",
                    None,
                    Path::new("/f.wasm"),
                    Some(&credentials),
                )
                .is_err()
            );
        }
    }

    #[test]
    fn the_configuration_fails_closed_and_bounds_what_it_buffers() {
        let config =
            envoy_config(&args(), "{\"version\":1}", None, Path::new("/f.wasm"), None).unwrap();
        let text = config.to_string();
        assert!(text.contains("\"failure_policy\":\"FAIL_CLOSED\""));
        assert!(!text.contains("FAIL_OPEN"));
        let manager = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(manager["stream_idle_timeout"], "60s");
        let routes = &manager["route_config"]["virtual_hosts"][0]["routes"];
        assert_eq!(
            routes[0]["request_body_buffer_limit"],
            json!(MAX_MANIFEST_BYTES)
        );
        assert_eq!(routes[1]["route"]["timeout"], "60s");
        assert!(routes[2].get("request_body_buffer_limit").is_none());
        let filters = manager["http_filters"].as_array().unwrap();
        assert_eq!(filters.len(), 2, "no jwt_authn without --jwt-issuer");
        let plugin: Value = serde_json::from_str(
            filters[0]["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(plugin["identity"]["mode"], "registry");
        assert_eq!(plugin["lock_ttl_ms"], 70_000);
        assert_eq!(plugin["lock_timeout_ms"], 30_000);
        let sha = plugin["filter_sha256"].as_str().unwrap();
        assert_eq!(
            format!("{sha}\n"),
            include_str!("../envoy/taglock_envoy.wasm.sha256")
        );
        assert_eq!(plugin["authority"], "registry.internal:5000");
        assert_eq!(
            config["static_resources"]["clusters"][0]["type"],
            "STRICT_DNS"
        );
    }

    #[test]
    fn the_lock_wait_is_bounded_and_outlived_by_the_idle_timeout() {
        let policy = "{\"version\":1}";
        let config = |lock_timeout: Option<Duration>, stream_idle_timeout: u64| {
            let args = BootstrapArgs {
                lock_timeout,
                stream_idle_timeout,
                ..args()
            };
            envoy_config(&args, policy, None, Path::new("/f.wasm"), None)
        };
        let short = config(Some(Duration::from_millis(250)), 60).unwrap();
        assert_eq!(bootstrap_plugin(&short)["lock_timeout_ms"], 250);
        let none = config(Some(Duration::ZERO), 60).unwrap();
        assert_eq!(bootstrap_plugin(&none)["lock_timeout_ms"], 0);
        // The idle timeout must outlast the wait plus the facts.
        assert!(config(Some(Duration::from_secs(55)), 60).is_err());
        assert!(config(Some(Duration::from_secs(54)), 60).is_ok());
        assert!(config(None, 35).is_err());
        assert!(config(Some(Duration::from_secs(301)), 600).is_err());
        assert!(config(Some(Duration::from_secs(300)), 600).is_ok());
    }

    #[test]
    fn jwt_identity_reads_the_verified_payload() {
        let jwt = Jwt {
            issuer: "https://issuer".to_owned(),
            jwks: "{\"keys\":[]}".to_owned(),
            audiences: vec!["taglock".to_owned()],
            claims: ClaimNames::default(),
        };
        let config = envoy_config(&args(), "{}", Some(&jwt), Path::new("/f.wasm"), None).unwrap();
        let filters = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"];
        let provider = &filters[0]["typed_config"]["providers"][PROVIDER];
        assert_eq!(provider["payload_in_metadata"], PAYLOAD_KEY);
        assert_eq!(provider["forward"], false);
        assert_eq!(provider["audiences"], json!(["taglock"]));
        let plugin: Value = serde_json::from_str(
            filters[1]["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(plugin["identity"]["payload_key"], PAYLOAD_KEY);
        assert!(
            envoy_config(
                &BootstrapArgs {
                    listen: "localhost:80".to_owned(),
                    ..args()
                },
                "{}",
                None,
                Path::new("/f.wasm"),
                None
            )
            .is_err()
        );
    }
}
