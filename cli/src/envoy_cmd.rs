//! `taglock envoy bootstrap`: an Envoy configuration that serves a registry
//! with the policy enforced by the proxy-wasm filter (`envoy-filter/`), which
//! this binary embeds (refreshed by `cargo xtask build-wasm`).
//!
//! The configuration is written as JSON (a subset of YAML) to `DIR/envoy.yaml`,
//! next to the filter, `DIR/taglock_envoy.wasm`. `docs/envoy.md` explains each part.

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
use taglock_gateway::manifest::MAX_MANIFEST_BYTES;
use taglock_gateway::{ClaimNames, Refusal};

/// The filter, as `cargo xtask build-wasm` built it (wasm-opt'd).
pub const FILTER: &[u8] = include_bytes!("../envoy/taglock_envoy.wasm");
/// The filter's file name in the output directory.
pub const FILTER_FILE: &str = "taglock_envoy.wasm";
/// The `payload_in_metadata` key the JWT provider writes and the filter reads.
const PAYLOAD_KEY: &str = "jwt_payload";
/// The JWT provider's name.
const PROVIDER: &str = "taglock";
/// The route timeout of manifest pushes and deletes, in seconds: the registry
/// must answer a write within it.
const WRITE_TIMEOUT_S: u64 = 60;
/// How much longer than the facts and the write a lock lives, in milliseconds
/// (it is released when the registry answers; the TTL only frees the lock of
/// a worker that died holding it).
const LOCK_MARGIN_MS: u64 = 5_000;

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
    /// The bound on gathering one request's facts from the registry.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub facts_timeout_ms: u64,
    /// How long a stream may stay idle before Envoy ends it (also bounds a
    /// request the filter never answered).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stream_idle_timeout: u64,
}

/// `taglock envoy …`.
pub fn run(args: &EnvoyArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        EnvoyCommand::Bootstrap(args) => bootstrap(args),
    }
}

fn bootstrap(args: &BootstrapArgs) -> anyhow::Result<Outcome> {
    let input = PolicyInput::read(&Source::new(&args.policy))?;
    let policy = match Policy::from_json(&input.text) {
        Ok(policy) => policy,
        Err(errors) => {
            output::stderr(&diagnostics::refused(&input, &errors, Style::stderr()));
            return Ok(Outcome::InvalidPolicy);
        }
    };
    output::stderr(&diagnostics::warnings(
        &input,
        policy.lints(),
        Style::stderr(),
    ));
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
                claims: ClaimNames {
                    id: args.claim_id.clone(),
                    kind: args.claim_kind.clone(),
                    groups: Some(args.claim_groups.clone()),
                    repository: args.claim_repository.clone(),
                    environment: args.claim_environment.clone(),
                    workspace_admin: args.claim_workspace_admin.clone(),
                },
            })
        }
        _ => {
            if policy.checks_permissions() {
                output::stderr(
                    "warning: without --jwt-issuer every actor is anonymous to the policy, \
                     and its `permissions` deny every write\n",
                );
            }
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
    let config = envoy_config(args, &input.text, identity.as_ref(), &filter)?;
    let path = out.join("envoy.yaml");
    let mut text = serde_json::to_string_pretty(&config)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    output::stdout(&format!(
        "wrote {} and {}\nrun: envoy -c {}\n",
        path.display(),
        filter.display(),
        path.display()
    ))?;
    Ok(Outcome::Success)
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
) -> anyhow::Result<Value> {
    let (upstream_host, upstream_port) = host_port("--upstream", &args.upstream)?;
    let cluster_type = if upstream_host.parse::<IpAddr>().is_ok() {
        "STATIC"
    } else {
        "STRICT_DNS"
    };
    let identity = match jwt {
        Some(jwt) => json!({ "mode": "jwt", "payload_key": PAYLOAD_KEY, "claims": jwt.claims }),
        None => json!({ "mode": "registry" }),
    };
    let plugin = json!({
        "policy": policy_text,
        "cluster": "registry",
        "authority": args.upstream,
        "identity": identity,
        "facts_timeout_ms": args.facts_timeout_ms,
        "filter_sha256": sha256_hex(FILTER),
        "lock_ttl_ms": args
            .facts_timeout_ms
            .saturating_add(WRITE_TIMEOUT_S * 1000)
            .saturating_add(LOCK_MARGIN_MS),
    });
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
                "root_id": "taglock",
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
    let unavailable = oci_body(&Refusal::unavailable(
        "the upstream registry did not take the request (%RESPONSE_CODE_DETAILS%)",
    ))?;
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
                                // Envoy's own 503/504: the registry cannot be reached.
                                "filter": { "response_flag_filter": {
                                    "flags": ["UF", "UH", "UO", "URX", "NR", "UC", "UT", "UR"]
                                } },
                                "body_format_override": { "json_format": unavailable, "content_type": "application/json" }
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
            "clusters": [{
                "name": "registry",
                "type": cluster_type,
                "connect_timeout": "2s",
                "load_assignment": {
                    "cluster_name": "registry",
                    "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                        "socket_address": { "address": upstream_host, "port_value": upstream_port }
                    } } }] }]
                }
            }]
        }
    }))
}

/// Lowercase hex sha256.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The OCI error body of a refusal, as the gateway writes it.
fn oci_body(refusal: &Refusal) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&refusal.reply(None).body)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

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
            claim_id: "sub".to_owned(),
            claim_kind: None,
            claim_groups: "groups".to_owned(),
            claim_repository: None,
            claim_environment: None,
            claim_workspace_admin: None,
            facts_timeout_ms: 5_000,
            stream_idle_timeout: 60,
        }
    }

    #[test]
    fn the_configuration_fails_closed_and_bounds_what_it_buffers() {
        let config = envoy_config(&args(), "{\"version\":1}", None, Path::new("/f.wasm")).unwrap();
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
    fn jwt_identity_reads_the_verified_payload() {
        let jwt = Jwt {
            issuer: "https://issuer".to_owned(),
            jwks: "{\"keys\":[]}".to_owned(),
            audiences: vec!["taglock".to_owned()],
            claims: ClaimNames::default(),
        };
        let config = envoy_config(&args(), "{}", Some(&jwt), Path::new("/f.wasm")).unwrap();
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
                Path::new("/f.wasm")
            )
            .is_err()
        );
    }
}
