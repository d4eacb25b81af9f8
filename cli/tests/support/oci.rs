//! Tiny OCI images, built in memory and written as OCI image layouts on disk: a
//! config JSON, one plain tar layer and an image manifest. Every image gets
//! content of its own, so two images never share a digest. Also multi-arch image
//! indexes of such images, and artifacts that refer to an image (a `subject`):
//! OCI 1.1 referrers, cosign-style signatures and the referrers index a client
//! writes under the tag-schema fallback tag.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The OCI image manifest media type.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image config media type.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed tar layer.
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// The OCI image index media type.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The OCI empty descriptor's media type (the config of an artifact).
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The media type of cosign's signed payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// One content-addressed blob.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        let digest = digest(&bytes);
        Blob {
            media_type,
            bytes,
            digest,
        }
    }

    /// `{mediaType, digest, size}` of this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// An image: its config, its one layer, its manifest.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Blob,
    pub layer: Blob,
    pub manifest: Blob,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Image {
    /// A new image whose layer holds one file naming `label`, this process and a
    /// serial number: distinct content, so a distinct digest, on every call.
    pub fn new(label: &str) -> Image {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let text = format!(
            "taglock test image {label}, process {}, serial {serial}\n",
            std::process::id()
        );
        Image::with_layer(Blob::new(LAYER, tar("taglock-test.txt", text.as_bytes())))
    }

    /// An image around `layer`, with a config naming its diff id.
    pub fn with_layer(layer: Blob) -> Image {
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
        });
        let config = Blob::new(CONFIG, serde_json::to_vec(&config).unwrap());
        let manifest = manifest(&config, &layer, &serde_json::Map::new());
        Image {
            config,
            layer,
            manifest,
        }
    }

    /// The same config and layer under a manifest that differs by one annotation:
    /// another digest without another blob to upload.
    pub fn variant(&self, n: usize) -> Image {
        let mut annotations = serde_json::Map::new();
        annotations.insert("org.example.taglock.variant".into(), n.to_string().into());
        Image {
            config: self.config.clone(),
            layer: self.layer.clone(),
            manifest: manifest(&self.config, &self.layer, &annotations),
        }
    }

    /// The same blobs under a manifest padded by an annotation to exactly `size`
    /// bytes (at least the unpadded size).
    pub fn padded(&self, size: usize) -> Image {
        let key = "org.example.taglock.padding".to_owned();
        let mut annotations = serde_json::Map::new();
        annotations.insert(key.clone(), String::new().into());
        let base = manifest(&self.config, &self.layer, &annotations)
            .bytes
            .len();
        annotations.insert(key, "x".repeat(size.saturating_sub(base)).into());
        let manifest = manifest(&self.config, &self.layer, &annotations);
        assert_eq!(manifest.bytes.len(), size.max(base));
        Image {
            config: self.config.clone(),
            layer: self.layer.clone(),
            manifest,
        }
    }

    /// Writes this image as an OCI image layout in `dir` (created if missing),
    /// tagged `reference` in index.json; skopeo reads it as `oci:DIR:REFERENCE`.
    pub fn write_layout(&self, dir: &Path, reference: &str) {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for blob in [&self.config, &self.layer, &self.manifest] {
            let hex = blob.digest.trim_start_matches("sha256:");
            std::fs::write(blobs.join(hex), &blob.bytes).unwrap();
        }
        write_index_json(dir, &self.manifest, reference);
    }
}

/// A multi-arch image index of two or more images, one platform each.
#[derive(Clone, Debug)]
pub struct Index {
    /// The platform images, in the index's order.
    pub children: Vec<Image>,
    /// The index itself.
    pub manifest: Blob,
}

/// The platforms [`Index::new`] gives its children, in order.
const ARCHITECTURES: [&str; 4] = ["amd64", "arm64", "ppc64le", "s390x"];

impl Index {
    /// An index of `count` (at most four) new images for `linux/amd64`,
    /// `linux/arm64`, … in order; each child's config names its architecture.
    pub fn new(label: &str, count: usize) -> Index {
        assert!(count <= ARCHITECTURES.len(), "at most four platforms");
        let children: Vec<Image> = ARCHITECTURES[..count]
            .iter()
            .map(|arch| Image::new(&format!("{label} {arch}")).for_architecture(arch))
            .collect();
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .zip(ARCHITECTURES)
            .map(|(child, arch)| {
                let mut descriptor = child.manifest.descriptor();
                descriptor["platform"] = serde_json::json!({ "architecture": arch, "os": "linux" });
                descriptor
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": manifests,
        });
        Index {
            children,
            manifest: Blob::new(INDEX, serde_json::to_vec(&index).unwrap()),
        }
    }

    /// Writes the index and its children as an OCI image layout in `dir`, the
    /// index tagged `reference`; `skopeo copy --all oci:DIR:REFERENCE …` pushes it all.
    pub fn write_layout(&self, dir: &Path, reference: &str) {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for child in &self.children {
            for blob in [&child.config, &child.layer, &child.manifest] {
                let hex = blob.digest.trim_start_matches("sha256:");
                std::fs::write(blobs.join(hex), &blob.bytes).unwrap();
            }
        }
        let hex = self.manifest.digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), &self.manifest.bytes).unwrap();
        write_index_json(dir, &self.manifest, reference);
    }
}

/// `oci-layout` and an `index.json` naming `top` as `reference`.
fn write_index_json(dir: &Path, top: &Blob, reference: &str) {
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descriptor = top.descriptor();
    descriptor["annotations"] =
        serde_json::json!({ "org.opencontainers.image.ref.name": reference });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [descriptor],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The cosign-style tag of the artifacts referring to `digest`: `sha256-<hex>`
/// (the OCI tag-schema fallback's referrers index), with `suffix` (`.sig`,
/// `.att`, `.sbom`, or empty) appended.
pub fn referrer_tag(digest: &str, suffix: &str) -> String {
    format!("sha256-{}{suffix}", digest.trim_start_matches("sha256:"))
}

impl Image {
    /// The same image with a config naming `architecture`: another digest.
    fn for_architecture(&self, architecture: &str) -> Image {
        let config = serde_json::json!({
            "architecture": architecture,
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [self.layer.digest] },
        });
        let config = Blob::new(CONFIG, serde_json::to_vec(&config).unwrap());
        let manifest = manifest(&config, &self.layer, &serde_json::Map::new());
        Image {
            config,
            layer: self.layer.clone(),
            manifest,
        }
    }

    /// An OCI 1.1 artifact of `artifact_type` referring to `subject` (a manifest):
    /// the empty config, one layer naming `label`, and `subject` in the manifest.
    pub fn referrer(subject: &Blob, artifact_type: &str, label: &str) -> Image {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let config = Blob::new(EMPTY, b"{}".to_vec());
        let layer = Blob::new(
            "application/octet-stream",
            format!(
                "taglock test {label} of {}, serial {serial}\n",
                subject.digest
            )
            .into_bytes(),
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": artifact_type,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
            "annotations": { "org.example.taglock.label": label },
        });
        Image {
            config,
            layer,
            manifest: Blob::new(MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        }
    }

    /// A cosign-style signature of `subject` as cosign writes it under the tag
    /// `sha256-<hex>.sig`: an image manifest whose one layer is the simple-signing
    /// payload naming the signed digest, with the signature as an annotation
    /// (`signer` makes two signatures of one image differ).
    pub fn signature_of(subject: &Blob, signer: &str) -> Image {
        let payload = serde_json::json!({
            "critical": {
                "identity": { "docker-reference": "acme/web" },
                "image": { "docker-manifest-digest": subject.digest },
                "type": "cosign container image signature",
            },
            "optional": { "signer": signer },
        });
        let layer = Blob::new(SIMPLE_SIGNING, serde_json::to_vec(&payload).unwrap());
        let config = serde_json::json!({
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
        });
        let config = Blob::new(CONFIG, serde_json::to_vec(&config).unwrap());
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        });
        manifest["layers"][0]["annotations"] = serde_json::json!({
            "dev.cosignproject.cosign/signature": format!("MEUCIQ-test-signature-by-{signer}"),
        });
        Image {
            config,
            layer,
            manifest: Blob::new(MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        }
    }
}

/// The referrers index of `referrers` (artifacts made by [`Image::referrer`]), as
/// the referrers API answers it and as a client writes it under the tag-schema
/// fallback tag `sha256-<hex>` when the registry has no referrers API.
pub fn referrers_index(referrers: &[&Image]) -> Blob {
    let manifests: Vec<serde_json::Value> = referrers
        .iter()
        .map(|referrer| {
            let parsed: serde_json::Value =
                serde_json::from_slice(&referrer.manifest.bytes).unwrap();
            let mut descriptor = referrer.manifest.descriptor();
            descriptor["artifactType"] = parsed["artifactType"].clone();
            descriptor["annotations"] = parsed["annotations"].clone();
            descriptor
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": manifests,
    });
    Blob::new(INDEX, serde_json::to_vec(&index).unwrap())
}

fn manifest(
    config: &Blob,
    layer: &Blob,
    annotations: &serde_json::Map<String, serde_json::Value>,
) -> Blob {
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    });
    if !annotations.is_empty() {
        manifest["annotations"] = serde_json::Value::Object(annotations.clone());
    }
    Blob::new(MANIFEST, serde_json::to_vec(&manifest).unwrap())
}

/// A ustar archive holding one regular file.
pub fn tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let field = |header: &mut [u8; 512], at: usize, value: &[u8]| {
        header[at..at + value.len()].copy_from_slice(value);
    };
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    field(&mut header, 136, b"00000000000\0");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    // The checksum is computed with its own field read as spaces.
    field(&mut header, 148, b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());

    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.resize(out.len() + 1024, 0);
    out
}
