//! The OCI grammars for image names, tags and digests.
//!
//! Every name a request carries is checked here before any pattern sees it, so
//! the matchers only ever run on short ASCII strings.

use std::fmt;

/// The longest tag the OCI distribution specification allows.
pub const MAX_TAG_LEN: usize = 128;

/// The longest image name (repository path) CNCF distribution accepts.
pub const MAX_IMAGE_NAME_LEN: usize = 255;

/// What kind of name failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// An image (repository) name such as `acme/web`.
    Image,
    /// A tag such as `v1.2.0`.
    Tag,
    /// A content digest such as `sha256:…`.
    Digest,
}

impl NameKind {
    fn noun(self) -> &'static str {
        match self {
            NameKind::Image => "image name",
            NameKind::Tag => "tag",
            NameKind::Digest => "digest",
        }
    }
}

/// A name that does not follow its OCI grammar, with the offending character's offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// Which grammar was violated.
    pub kind: NameKind,
    /// The rejected value.
    pub value: String,
    /// Byte offset of the first offending character, when one character is to blame.
    pub offset: Option<usize>,
    /// What is wrong, in words.
    pub problem: &'static str,
}

/// The most characters of a rejected name an error message quotes; a longer
/// name (a hostile one: no valid name is that long) is quoted cut, with its length.
pub(crate) const MAX_QUOTED_NAME_CHARS: usize = MAX_IMAGE_NAME_LEN;

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self
            .value
            .char_indices()
            .nth(MAX_QUOTED_NAME_CHARS)
            .map(|(byte, _)| byte);
        match cut.and_then(|byte| self.value.get(..byte)) {
            Some(head) => write!(
                f,
                "invalid {} `{head}…` ({} characters): {}",
                self.kind.noun(),
                self.value.chars().count(),
                self.problem
            )?,
            None => write!(
                f,
                "invalid {} `{}`: {}",
                self.kind.noun(),
                self.value,
                self.problem
            )?,
        }
        if let Some(offset) = self.offset {
            write!(f, " (at character {offset})")?;
        }
        Ok(())
    }
}

impl std::error::Error for NameError {}

fn error(kind: NameKind, value: &str, offset: Option<usize>, problem: &'static str) -> NameError {
    NameError {
        kind,
        value: value.to_owned(),
        offset,
        problem,
    }
}

/// Checks a tag against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
///
/// ```
/// assert!(policy_core::names::check_tag("v1.2.0").is_ok());
/// assert!(policy_core::names::check_tag(".hidden").is_err());
/// ```
pub fn check_tag(tag: &str) -> Result<(), NameError> {
    if is_tag_fast(tag.as_bytes()) {
        return Ok(());
    }
    // Not valid: walk it again, slowly, to say where and why.
    let kind = NameKind::Tag;
    if tag.is_empty() {
        return Err(error(kind, tag, None, "a tag cannot be empty"));
    }
    // Every allowed character is ASCII, so byte offsets are character offsets up to
    // the first offending one.
    for (i, &b) in tag.as_bytes().iter().enumerate() {
        if i == 0 && !(b.is_ascii_alphanumeric() || b == b'_') {
            return Err(error(
                kind,
                tag,
                Some(0),
                "a tag starts with a letter, a digit or `_`",
            ));
        }
        if !is_tag_char(char::from(b)) {
            return Err(error(
                kind,
                tag,
                Some(i),
                "a tag holds only letters, digits, `_`, `.` and `-`",
            ));
        }
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(error(
            kind,
            tag,
            Some(MAX_TAG_LEN),
            "a tag has at most 128 characters",
        ));
    }
    Ok(())
}

/// The tag grammar with no error reporting, by table: every push checks its tags.
fn is_tag_fast(tag: &[u8]) -> bool {
    match tag.split_first() {
        Some((&first, rest)) => {
            tag.len() <= MAX_TAG_LEN
                && first != b'.'
                && first != b'-'
                && byte_class(first) & TAG_BYTE != 0
                && rest.iter().all(|&b| byte_class(b) & TAG_BYTE != 0)
        }
        None => false,
    }
}

/// Whether `c` may appear in a tag (after its first character).
pub(crate) fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `c` may appear in an image name.
pub(crate) fn is_image_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-' | '/')
}

/// Checks an image name against the OCI name grammar:
/// path components of `[a-z0-9]+` runs joined by `.`, `_`, `__` or `-+`, separated by `/`.
///
/// ```
/// assert!(policy_core::names::check_image_name("acme/web-app").is_ok());
/// assert!(policy_core::names::check_image_name("Acme/web").is_err());
/// ```
pub fn check_image_name(name: &str) -> Result<(), NameError> {
    let kind = NameKind::Image;
    if name.is_empty() {
        return Err(error(kind, name, None, "an image name cannot be empty"));
    }
    if name.len() <= MAX_IMAGE_NAME_LEN && is_image_name_fast(name.as_bytes()) {
        return Ok(());
    }
    // Not valid: walk it again, slowly, to say where and why.
    let mut start = 0;
    for component in name.as_bytes().split(|&b| b == b'/') {
        check_component(name, component, start)?;
        start += component.len() + 1;
    }
    if name.len() > MAX_IMAGE_NAME_LEN {
        return Err(error(
            kind,
            name,
            Some(MAX_IMAGE_NAME_LEN),
            "an image name has at most 255 characters",
        ));
    }
    Ok(())
}

/// The image name grammar in one pass over the bytes, with no error reporting: every
/// request names an image, so the valid case is on the hot path.
///
/// The grammar is local: a name is valid when it starts and ends with a letter or
/// digit, every pair of neighbouring bytes may stand side by side
/// ([`image_pair_ok`]), and no three underscores follow each other. Checked that
/// way, each byte's test depends only on its neighbours' classes, not on a state
/// carried through the whole name: the processor checks several bytes at once
/// (an automaton walking the name was 20 % of a push).
fn is_image_name_fast(name: &[u8]) -> bool {
    let class = |b: &u8| byte_class(*b) & IMAGE_CLASS;
    let alnum = |b: Option<&u8>| b.map(class) == Some(IMAGE_LOWER_ALNUM);
    if !alnum(name.first()) || !alnum(name.last()) {
        return false;
    }
    let mut ok = true;
    let (mut before, mut previous) = (IMAGE_OTHER, IMAGE_LOWER_ALNUM);
    for current in name.iter().skip(1).map(class) {
        let three_underscores = before == IMAGE_UNDERSCORE_BYTE
            && previous == IMAGE_UNDERSCORE_BYTE
            && current == IMAGE_UNDERSCORE_BYTE;
        ok &= image_pair_allowed(previous, current) & !three_underscores;
        (before, previous) = (previous, current);
    }
    ok
}

/// [`image_pair_ok`] by table.
#[inline]
#[expect(
    clippy::indexing_slicing,
    reason = "the index is masked to the table's 64 entries"
)]
fn image_pair_allowed(first: u8, second: u8) -> bool {
    IMAGE_PAIRS[usize::from((first << 3) | second) & 63]
}

/// [`image_pair_ok`] for every pair of classes, indexed by `first << 3 | second`.
#[expect(clippy::indexing_slicing, reason = "the loop stays below 64")]
static IMAGE_PAIRS: [bool; 64] = {
    let mut table = [false; 64];
    let mut i = 0;
    while i < 64 {
        table[i] = image_pair_ok((i >> 3) as u8, (i & 7) as u8);
        i += 1;
    }
    table
};

/// Whether bytes of these classes may stand side by side in an image name:
/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or dashes, components separated by
/// `/`. A letter or digit may touch any separator; two separators may touch only
/// as `__` or `--`.
const fn image_pair_ok(first: u8, second: u8) -> bool {
    match (first, second) {
        (IMAGE_OTHER, _) | (_, IMAGE_OTHER) => false,
        (IMAGE_LOWER_ALNUM, _) | (_, IMAGE_LOWER_ALNUM) => true,
        (IMAGE_UNDERSCORE_BYTE, IMAGE_UNDERSCORE_BYTE) | (IMAGE_DASH, IMAGE_DASH) => true,
        _ => false,
    }
}

/// The low bits of a byte's class: what it is in an image name.
const IMAGE_CLASS: u8 = 0b111;
/// Not an image name byte.
const IMAGE_OTHER: u8 = 0;
/// A lowercase letter or a digit.
const IMAGE_LOWER_ALNUM: u8 = 1;
/// `.`
const IMAGE_DOT: u8 = 2;
/// `_`
const IMAGE_UNDERSCORE_BYTE: u8 = 3;
/// `-`
const IMAGE_DASH: u8 = 4;
/// `/`
const IMAGE_SLASH: u8 = 5;
/// The flag of a byte a tag may hold (after its first).
const TAG_BYTE: u8 = 0b1000;

/// The class of `b`: its [`IMAGE_CLASS`] bits and the [`TAG_BYTE`] flag.
#[inline]
#[expect(
    clippy::indexing_slicing,
    reason = "a u8 always indexes a 256-entry table"
)]
fn byte_class(b: u8) -> u8 {
    BYTE_CLASSES[usize::from(b)]
}

#[expect(clippy::indexing_slicing, reason = "the loop stays below 256")]
static BYTE_CLASSES: [u8; 256] = {
    let mut table = [IMAGE_OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let image = match byte {
            b'a'..=b'z' | b'0'..=b'9' => IMAGE_LOWER_ALNUM,
            b'.' => IMAGE_DOT,
            b'_' => IMAGE_UNDERSCORE_BYTE,
            b'-' => IMAGE_DASH,
            b'/' => IMAGE_SLASH,
            _ => IMAGE_OTHER,
        };
        let tag = if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-') {
            TAG_BYTE
        } else {
            0
        };
        table[b] = image | tag;
        b += 1;
    }
    table
};

/// One `/`-separated component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(name: &str, component: &[u8], start: usize) -> Result<(), NameError> {
    let kind = NameKind::Image;
    if component.is_empty() {
        return Err(error(
            kind,
            name,
            Some(start),
            "a path component cannot be empty (no leading, trailing or double `/`)",
        ));
    }
    // Separator run seen since the last alphanumeric character: (dots, underscores, dashes).
    let mut run = (0u32, 0u32, 0u32);
    let mut previous_alnum = false;
    for (i, &b) in component.iter().enumerate() {
        let at = Some(start + i);
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            let separator_ok = matches!(
                run,
                (0, 0, 0) | (1, 0, 0) | (0, 1, 0) | (0, 2, 0) | (0, 0, _)
            );
            if !separator_ok {
                return Err(error(
                    kind,
                    name,
                    at,
                    "components are joined by `.`, `_`, `__` or dashes, never by a mix",
                ));
            }
            run = (0, 0, 0);
            previous_alnum = true;
            continue;
        }
        if !previous_alnum && run == (0, 0, 0) {
            return Err(error(
                kind,
                name,
                at,
                "each path component starts with a lowercase letter or a digit",
            ));
        }
        match b {
            b'.' => run.0 += 1,
            b'_' => run.1 += 1,
            b'-' => run.2 += 1,
            _ if b.is_ascii_uppercase() => {
                return Err(error(kind, name, at, "image names are lowercase"));
            }
            _ => {
                return Err(error(
                    kind,
                    name,
                    at,
                    "image names hold only a-z, 0-9, `.`, `_`, `-` and `/`",
                ));
            }
        }
        previous_alnum = false;
    }
    if !previous_alnum {
        return Err(error(
            kind,
            name,
            Some(start + component.len().saturating_sub(1)),
            "each path component ends with a lowercase letter or a digit",
        ));
    }
    Ok(())
}

/// Checks a digest: `algorithm:encoded` per the OCI image specification, with the
/// registered algorithms held to their exact form (`sha256:` + 64 lowercase hex,
/// `sha512:` + 128 lowercase hex).
///
/// ```
/// let d = format!("sha256:{}", "a".repeat(64));
/// assert!(policy_core::names::check_digest(&d).is_ok());
/// assert!(policy_core::names::check_digest("sha256:ABC").is_err());
/// ```
pub fn check_digest(digest: &str) -> Result<(), NameError> {
    if is_common_digest(digest.as_bytes()) {
        return Ok(());
    }
    // Not a valid sha256 or sha512 digest: the full grammar, to say where and why.
    let kind = NameKind::Digest;
    let Some(colon) = digest.bytes().position(|b| b == b':') else {
        return Err(error(
            kind,
            digest,
            None,
            "a digest is `algorithm:hex`, e.g. `sha256:` followed by 64 hex digits",
        ));
    };
    let (algorithm, encoded) = (
        digest.get(..colon).unwrap_or_default(),
        digest.get(colon + 1..).unwrap_or_default(),
    );
    check_algorithm(digest, algorithm)?;
    let encoded_start = colon + 1;
    let expected_hex = match algorithm {
        "sha256" => Some((64, "a sha256 digest has exactly 64 hex digits")),
        "sha512" => Some((128, "a sha512 digest has exactly 128 hex digits")),
        _ => None,
    };
    let bad = |ok: fn(u8) -> bool| encoded.bytes().position(|b| !ok(b));
    if let Some((len, problem)) = expected_hex {
        // The common case, checked with a table: right length, all lowercase hex.
        if encoded.len() == len && all_lower_hex(encoded.as_bytes()) {
            return Ok(());
        }
        if let Some(i) = bad(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(error(
                kind,
                digest,
                Some(encoded_start + i),
                "the hex part holds only 0-9 and lowercase a-f",
            ));
        }
        if encoded.len() != len {
            return Err(error(kind, digest, None, problem));
        }
        return Ok(());
    }
    if encoded.is_empty() {
        return Err(error(
            kind,
            digest,
            Some(encoded_start),
            "the encoded part is empty",
        ));
    }
    if let Some(i) = bad(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-')) {
        return Err(error(
            kind,
            digest,
            Some(encoded_start + i),
            "the encoded part holds only letters, digits, `=`, `_` and `-`",
        ));
    }
    Ok(())
}

/// Whether `digest` is a valid sha256 or sha512 digest, the forms registries use:
/// checked on every request, so this is on the hot path.
fn is_common_digest(digest: &[u8]) -> bool {
    if let Some(hex) = digest.strip_prefix(b"sha256:") {
        return hex.len() == 64 && all_lower_hex(hex);
    }
    if let Some(hex) = digest.strip_prefix(b"sha512:") {
        return hex.len() == 128 && all_lower_hex(hex);
    }
    false
}

/// Whether every byte is `0-9` or `a-f`, eight bytes at a time: digests are checked
/// on every request, so this is on the hot path.
fn all_lower_hex(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // For bytes below 0x80, the high bit of each lane says whether it lies in lo..=hi.
    let in_range = |x: u64, lo: u64, hi: u64| {
        x.wrapping_add(ONES * (0x80 - lo)) & !x.wrapping_add(ONES * (0x7f - hi)) & HIGH
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(lanes) = <[u8; 8]>::try_from(chunk) else {
            return false;
        };
        let x = u64::from_le_bytes(lanes);
        if x & HIGH != 0 || (in_range(x, 0x30, 0x39) | in_range(x, 0x61, 0x66)) != HIGH {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| is_lower_hex(b))
}

/// Whether `b` is `0-9` or `a-f`, by table.
#[inline]
#[expect(
    clippy::indexing_slicing,
    reason = "a u8 always indexes a 256-entry table"
)]
fn is_lower_hex(b: u8) -> bool {
    LOWER_HEX[usize::from(b)]
}

#[expect(clippy::indexing_slicing, reason = "the loop stays below 256")]
static LOWER_HEX: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8, b'0'..=b'9' | b'a'..=b'f');
        b += 1;
    }
    table
};

/// `[a-z0-9]+([+._-][a-z0-9]+)*`
fn check_algorithm(digest: &str, algorithm: &str) -> Result<(), NameError> {
    let mut previous_alnum = false;
    for (i, &b) in algorithm.as_bytes().iter().enumerate() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            previous_alnum = true;
        } else if matches!(b, b'+' | b'.' | b'_' | b'-') && previous_alnum {
            previous_alnum = false;
        } else {
            return Err(error(
                NameKind::Digest,
                digest,
                Some(i),
                "the algorithm is lowercase letters and digits, e.g. `sha256`",
            ));
        }
    }
    if !previous_alnum {
        return Err(error(
            NameKind::Digest,
            digest,
            Some(algorithm.len()),
            "the algorithm is lowercase letters and digits, e.g. `sha256`",
        ));
    }
    Ok(())
}

/// Whether `tag` is a legacy referrer tag written by cosign-style tools:
/// `sha256-<64 hex>` with an optional `.sig`, `.att` or `.sbom` suffix.
///
/// ```
/// let sig = format!("sha256-{}.sig", "0".repeat(64));
/// assert!(policy_core::names::is_referrer_tag(&sig));
/// assert!(!policy_core::names::is_referrer_tag("sha256-abc"));
/// ```
pub fn is_referrer_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let (hex, suffix) = rest.split_at_checked(64).unwrap_or((rest, "x"));
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && matches!(suffix, "" | ".sig" | ".att" | ".sbom")
}

/// A short form of a digest for messages: the algorithm and the first 12 characters,
/// written without allocating.
///
/// ```
/// let d = format!("sha256:{}", "ab".repeat(32));
/// assert_eq!(policy_core::names::short_digest(&d).to_string(), "sha256:abababababab…");
/// ```
pub fn short_digest(digest: &str) -> ShortDigest<'_> {
    ShortDigest(digest)
}

/// See [`short_digest`].
#[derive(Debug, Clone, Copy)]
pub struct ShortDigest<'a>(&'a str);

impl<'a> ShortDigest<'a> {
    /// The short form in two pieces to concatenate: the digest up to the 12th
    /// character of its encoded part, and `…` when that left something out.
    pub(crate) fn words(self) -> [&'a str; 2] {
        let digest = self.0;
        let head = digest.split_once(':').and_then(|(algorithm, encoded)| {
            (encoded.len() > 12).then(|| digest.get(..algorithm.len() + 1 + 12))?
        });
        match head {
            Some(head) => [head, "…"],
            None => [digest, ""],
        }
    }
}

impl fmt::Display for ShortDigest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.words().iter().try_for_each(|word| f.write_str(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for ok in ["v1.2.0", "latest", "_x", "A", "a-b.c_d", &"a".repeat(128)] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(check_tag("ab cd").unwrap_err().offset, Some(2));
    }

    #[test]
    fn a_huge_name_is_quoted_cut_with_its_length() {
        let message = check_tag(&"a".repeat(70_000)).unwrap_err().to_string();
        assert!(message.len() < 400, "{}", message.len());
        assert!(
            message.contains("…` (70000 characters): a tag has at most 128 characters"),
            "{message}"
        );
        let short = check_tag(&"a".repeat(129)).unwrap_err().to_string();
        assert!(short.contains(&format!("`{}`", "a".repeat(129))), "{short}");
    }

    #[test]
    fn image_names() {
        for ok in ["a", "acme/web", "a.b/c__d/e---f", "x1/y2/z3", "a_b"] {
            assert!(check_image_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "A", "a_", "-a", "a___b", "a._b", "a b", "a:b", "a.-b",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_image_name("acme/Web").unwrap_err().offset, Some(5));
    }

    #[test]
    fn digests() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(check_digest(&format!("sha256:{hex}")).is_ok());
        assert!(check_digest(&format!("sha512:{hex}{hex}")).is_ok());
        assert!(
            check_digest("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").is_ok()
        );
        for bad in [
            "sha256",
            "sha256:",
            &format!("sha256:{}", hex.to_uppercase()),
            &format!("sha256:{hex}0"),
            &format!("SHA256:{hex}"),
            &format!(":{hex}"),
            "sha256+:abc",
        ] {
            assert!(check_digest(bad).is_err(), "{bad}");
        }
    }

    /// The fast paths accept exactly what the full grammars accept, on every
    /// short string over the bytes that matter.
    #[test]
    fn fast_paths_agree_with_the_grammars() {
        let alphabet = [b'a', b'Z', b'0', b'.', b'_', b'-', b'/', b' '];
        let mut names = vec![Vec::new()];
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .filter(|n| n.len() == names.last().map_or(0, Vec::len))
                .flat_map(|n| {
                    alphabet.iter().map(move |&b| {
                        let mut n = n.clone();
                        n.push(b);
                        n
                    })
                })
                .collect();
            names.extend(longer);
        }
        for name in &names {
            let text = std::str::from_utf8(name).unwrap();
            let slow_image = {
                let mut start = 0;
                let mut ok = !name.is_empty();
                for component in name.split(|&b| b == b'/') {
                    ok &= check_component(text, component, start).is_ok();
                    start += component.len() + 1;
                }
                ok
            };
            assert_eq!(is_image_name_fast(name), slow_image, "{text:?}");
            let slow_tag = !name.is_empty()
                && (name[0].is_ascii_alphanumeric() || name[0] == b'_')
                && name.iter().all(|&b| is_tag_char(char::from(b)));
            assert_eq!(is_tag_fast(name), slow_tag, "{text:?}");
        }
        for tag in ["a".repeat(128), "a".repeat(129), "_x".into(), "é".into()] {
            assert_eq!(
                is_tag_fast(tag.as_bytes()),
                check_tag(&tag).is_ok(),
                "{tag}"
            );
        }
        let hex = "0123456789abcdef".repeat(8);
        for digest in [
            format!("sha256:{}", &hex[..64]),
            format!("sha256:{}", &hex[..63]),
            format!("sha256:{}A", &hex[..63]),
            format!("sha512:{hex}"),
            format!("sha512:{}", &hex[..64]),
            "sha384:abc".to_owned(),
        ] {
            assert_eq!(
                is_common_digest(digest.as_bytes()),
                digest.starts_with("sha")
                    && check_digest(&digest).is_ok()
                    && !digest.starts_with("sha384"),
                "{digest}"
            );
        }
    }

    #[test]
    fn lower_hex_lanes() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            let mut bytes = [b'0'; 16];
            bytes[11] = b;
            assert_eq!(all_lower_hex(&bytes), expected, "byte {b:#x}");
        }
    }

    #[test]
    fn referrers() {
        let hex = "ab".repeat(32);
        for ok in ["", ".sig", ".att", ".sbom"] {
            assert!(is_referrer_tag(&format!("sha256-{hex}{ok}")));
        }
        assert!(!is_referrer_tag(&format!("sha256-{hex}.foo")));
        assert!(!is_referrer_tag(&format!("sha256-{}", "AB".repeat(32))));
        assert!(!is_referrer_tag("sha256-"));
    }
}
