//! `taglock envoy push REGISTRY/IMAGE:TAG`: the embedded Envoy filter pushed to
//! an OCI registry as the Wasm artifact Istio's `WasmPlugin` pulls (`oci://`).
//!
//! The artifact is an OCI image manifest whose config is a small runtime
//! configuration (`application/vnd.module.wasm.config.v1+json`) and whose two
//! layers are that configuration and the module
//! (`application/vnd.module.wasm.content.layer.v1+wasm`): the layout Istio
//! accepts for an OCI artifact (exactly two layers, one of them the module).
//!
//! It speaks the OCI distribution API over plain HTTP with a small blocking
//! client: each blob is uploaded monolithically (`POST` then `PUT ?digest=`)
//! unless the registry has it, then the manifest is put under the tag. Every
//! request is bounded by `--timeout`, every answer read at most 64 KiB. The
//! manifest's digest (sha256 of the exact bytes sent, checked against the
//! registry's `Docker-Content-Digest`) is printed: it is the `sha256` Istio
//! compares for an `oci://` URL.

use crate::envoy_cmd::{FILTER, ROOT_ID};
use crate::outcome::Outcome;
use crate::output;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

/// The media type of the runtime configuration (the manifest's config and first layer).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// The media type of the module layer.
pub const WASM_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The most of a registry's answer read (errors and JSON bodies are small).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// `taglock envoy push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Where to push: `REGISTRY[:PORT]/IMAGE:TAG` (`127.0.0.1:5000/taglock/envoy:v1`).
    /// The registry is spoken to over plain HTTP.
    #[arg(value_name = "REGISTRY/IMAGE:TAG")]
    pub reference: String,
    /// The user of HTTP Basic authentication.
    #[arg(long, value_name = "USER", requires = "password_file")]
    pub user: Option<String>,
    /// A file holding the password (its first line) of HTTP Basic authentication.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// The bound on each request to the registry.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
}

/// `REGISTRY/IMAGE:TAG`, parsed.
#[derive(Debug, PartialEq, Eq)]
struct Reference {
    registry: String,
    repository: String,
    tag: String,
}

impl Reference {
    fn parse(text: &str) -> anyhow::Result<Reference> {
        if text.contains("://") {
            bail!(
                "`{text}`: give REGISTRY/IMAGE:TAG without a scheme (the registry is spoken to over plain HTTP)"
            );
        }
        let (registry, rest) = text
            .split_once('/')
            .with_context(|| format!("`{text}` is not REGISTRY/IMAGE:TAG"))?;
        let (repository, tag) = rest
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .with_context(|| format!("`{text}` has no :TAG"))?;
        if registry.is_empty() || registry.chars().any(|c| c.is_whitespace() || c == '@') {
            bail!("`{text}` has no valid registry host");
        }
        let component_ok = |component: &str| {
            !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && component
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && component
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            bail!(
                "`{repository}` is not a repository name (lowercase letters, digits, separators . _ -)"
            );
        }
        let tag_ok = tag.len() <= 128
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !tag_ok {
            bail!("`{tag}` is not a tag");
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

/// One blob to upload.
struct Blob {
    bytes: Vec<u8>,
    digest: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let digest = digest(&bytes);
        Blob { bytes, digest }
    }
}

/// `sha256:HEX` of `bytes`.
fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The runtime configuration blob.
fn runtime_config() -> Blob {
    Blob::new(
        json!({
            "type": "envoy_proxy",
            "abiVersions": ["v0.2.1"],
            "config": { "root_ids": [ROOT_ID] }
        })
        .to_string()
        .into_bytes(),
    )
}

/// The manifest's bytes for the configuration and module blobs.
fn manifest(config: &Blob, module: &Blob) -> anyhow::Result<Vec<u8>> {
    let config_descriptor = json!({
        "mediaType": CONFIG_MEDIA_TYPE,
        "digest": config.digest,
        "size": config.bytes.len(),
    });
    Ok(serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config_descriptor,
        "layers": [
            {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": config.digest,
                "size": config.bytes.len(),
                "annotations": { "org.opencontainers.image.title": "runtime-config.json" }
            },
            {
                "mediaType": WASM_MEDIA_TYPE,
                "digest": module.digest,
                "size": module.bytes.len(),
                "annotations": { "org.opencontainers.image.title": "plugin.wasm" }
            }
        ]
    }))?)
}

/// A registry's answer: status, headers wanted, a bounded body.
struct Answer {
    status: u16,
    location: Option<String>,
    content_digest: Option<String>,
    body: String,
}

/// The blocking OCI distribution client.
struct Registry {
    agent: ureq::Agent,
    base: String,
    repository: String,
    authorization: Option<String>,
}

impl Registry {
    fn new(reference: &Reference, authorization: Option<String>, timeout: Duration) -> Registry {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(timeout))
            .build();
        Registry {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{}", reference.registry),
            repository: reference.repository.clone(),
            authorization,
        }
    }

    /// Sends one request to `target` (a path on the registry, or an absolute URL
    /// it gave in a `Location`).
    fn send(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        let url = if target.starts_with('/') {
            format!("{}{target}", self.base)
        } else if target.starts_with("http://") {
            target.to_owned()
        } else {
            bail!("the registry sent an upload location this client cannot follow: {target}");
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(authorization) = &self.authorization {
            builder = builder.header("Authorization", authorization);
        }
        if let Some(content_type) = content_type {
            builder = builder.header("Content-Type", content_type);
        }
        let result = match body {
            Some(bytes) => self.agent.run(builder.body(bytes)?),
            None => self.agent.run(builder.body(())?),
        };
        let mut response = result.with_context(|| format!("{method} {url}"))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let (location, content_digest) = (header("location"), header("docker-content-digest"));
        let status = response.status().as_u16();
        let body = if method == "HEAD" {
            String::new()
        } else {
            let bytes = response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
                .with_context(|| format!("{method} {url}: reading the answer"))?;
            String::from_utf8_lossy(&bytes).into_owned()
        };
        if status == 401 {
            bail!(
                "{method} {url}: the registry asks for credentials (401){}",
                if self.authorization.is_some() {
                    "; --user and --password-file were refused"
                } else {
                    "; give --user and --password-file (HTTP Basic)"
                }
            );
        }
        Ok(Answer {
            status,
            location,
            content_digest,
            body,
        })
    }

    /// Uploads `blob` unless the repository has it already.
    fn push_blob(&self, blob: &Blob) -> anyhow::Result<()> {
        let path = format!("/v2/{}/blobs/{}", self.repository, blob.digest);
        if self.send("HEAD", &path, None, None)?.status == 200 {
            return Ok(());
        }
        let start = self.send(
            "POST",
            &format!("/v2/{}/blobs/uploads/", self.repository),
            None,
            None,
        )?;
        if start.status != 202 {
            bail!(
                "the registry did not start an upload ({}): {}",
                start.status,
                start.body.trim()
            );
        }
        let location = start
            .location
            .context("the registry started an upload without a Location")?;
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self.send(
            "PUT",
            &format!("{location}{separator}digest={}", blob.digest),
            Some("application/octet-stream"),
            Some(&blob.bytes),
        )?;
        if put.status != 201 {
            bail!(
                "the registry did not take the blob {} ({}): {}",
                blob.digest,
                put.status,
                put.body.trim()
            );
        }
        Ok(())
    }

    /// Puts the manifest under `tag`; returns the registry's digest of it, if it said.
    fn put_manifest(&self, tag: &str, manifest: &[u8]) -> anyhow::Result<Option<String>> {
        let put = self.send(
            "PUT",
            &format!("/v2/{}/manifests/{tag}", self.repository),
            Some(MANIFEST_MEDIA_TYPE),
            Some(manifest),
        )?;
        if put.status != 201 {
            bail!(
                "the registry did not take the manifest ({}): {}",
                put.status,
                put.body.trim()
            );
        }
        Ok(put.content_digest)
    }
}

/// `taglock envoy push`.
pub fn run(args: &PushArgs) -> anyhow::Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let authorization = match (&args.user, &args.password_file) {
        (Some(user), Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the password file {}", file.display()))?;
            let password = text.lines().next().unwrap_or_default();
            let value = taglock_proxy::upstream::basic_authorization(user, password)
                .context("the user or password cannot be sent in a header")?;
            Some(
                value
                    .to_str()
                    .context("the user or password cannot be sent in a header")?
                    .to_owned(),
            )
        }
        _ => None,
    };
    let registry = Registry::new(
        &reference,
        authorization,
        Duration::from_secs(args.timeout.max(1)),
    );
    let config = runtime_config();
    let module = Blob::new(FILTER.to_vec());
    registry.push_blob(&config)?;
    registry.push_blob(&module)?;
    let manifest = manifest(&config, &module)?;
    let manifest_digest = digest(&manifest);
    if let Some(said) = registry.put_manifest(&reference.tag, &manifest)?
        && said != manifest_digest
    {
        bail!("the registry stored the manifest as {said}, not {manifest_digest}");
    }
    output::stderr(&format!(
        "pushed {}/{}:{} (module {})\n",
        reference.registry, reference.repository, reference.tag, module.digest
    ));
    output::stdout(&format!("{manifest_digest}\n"))?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::Value;

    #[test]
    fn references_name_a_registry_a_repository_and_a_tag() {
        assert_eq!(
            Reference::parse("127.0.0.1:5000/taglock/envoy:v1.2.0").unwrap(),
            Reference {
                registry: "127.0.0.1:5000".to_owned(),
                repository: "taglock/envoy".to_owned(),
                tag: "v1.2.0".to_owned(),
            }
        );
        for bad in [
            "taglock-envoy:v1",
            "127.0.0.1:5000/taglock/envoy",
            "127.0.0.1:5000/Taglock/envoy:v1",
            "oci://127.0.0.1:5000/taglock/envoy:v1",
            "127.0.0.1:5000/taglock//envoy:v1",
            "127.0.0.1:5000/taglock/envoy:-v1",
            "127.0.0.1:5000/taglock/envoy:v1/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn the_manifest_has_the_two_layers_istio_accepts() {
        let (config, module) = (runtime_config(), Blob::new(FILTER.to_vec()));
        let manifest: Value = serde_json::from_slice(&manifest(&config, &module).unwrap()).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["digest"], manifest["config"]["digest"]);
        assert_eq!(layers[1]["mediaType"], WASM_MEDIA_TYPE);
        assert_eq!(layers[1]["size"], FILTER.len());
        assert_eq!(
            layers[1]["digest"].as_str().unwrap(),
            format!(
                "sha256:{}",
                include_str!("../envoy/taglock_envoy.wasm.sha256").trim()
            )
        );
    }
}
