//! Query parameters read the way the upstream reads them, or refused.
//!
//! Registries written in Go (CNCF distribution, Harbor, zot) read parameters
//! with `url.ParseQuery`: pairs split on `&`, `+` and `%XX` decoded, and a pair
//! holding `;` or a malformed escape silently dropped. A gateway that decoded
//! such a pair differently would decide on parameters the upstream never sees,
//! or miss ones it acts on. So the gateway refuses every query it could read
//! differently from the upstream: a `;`, a malformed escape, text that is not
//! UTF-8 once decoded, and a repeated parameter where only one is expected.

use crate::reply::Refusal;

/// The most parameters one query may hold.
pub const MAX_QUERY_PAIRS: usize = 256;

/// A query's parameters, decoded, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Reads `query` (the text after `?`, if any).
    pub fn parse(query: Option<&str>) -> Result<Query, Refusal> {
        let mut pairs = Vec::new();
        for pair in query.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            if pair.contains(';') {
                return Err(Refusal::undecidable(format!(
                    "the query parameter `{}` holds `;`, which registries read in different ways; taglock refuses it",
                    printable(pair)
                )));
            }
            if pairs.len() == MAX_QUERY_PAIRS {
                return Err(Refusal::undecidable(format!(
                    "the query has more than {MAX_QUERY_PAIRS} parameters; taglock refuses it"
                )));
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                unescape(text).ok_or_else(|| {
                    Refusal::undecidable(format!(
                        "the query parameter `{}` is not percent-encoded correctly; taglock refuses it",
                        printable(pair)
                    ))
                })
            };
            pairs.push((decode(key)?, decode(value)?));
        }
        Ok(Query { pairs })
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which may appear at most once.
    pub fn single<'a>(&'a self, key: &'a str) -> Result<Option<&'a str>, Refusal> {
        let mut values = self.all(key);
        let first = values.next();
        if values.next().is_some() {
            return Err(Refusal::undecidable(format!(
                "the query parameter `{key}` is given more than once; taglock refuses it"
            )));
        }
        Ok(first)
    }
}

/// Decodes `+` and `%XX` as Go's `url.QueryUnescape` does; `None` where Go
/// would fail (a `%` not followed by two hex digits) or the result is not UTF-8.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let high = hex_value(*bytes.get(i + 1)?)?;
                let low = hex_value(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// `text` cut to 64 characters with control characters escaped, for messages.
fn printable(text: &str) -> String {
    text.chars().take(64).flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go() {
        let query = Query::parse(Some("tag=a&tag=b%2Dc&x=1+2&&empty=&bare")).unwrap();
        assert_eq!(query.all("tag").collect::<Vec<_>>(), ["a", "b-c"]);
        assert_eq!(query.single("x").unwrap(), Some("1 2"));
        assert_eq!(query.single("empty").unwrap(), Some(""));
        assert_eq!(query.single("bare").unwrap(), Some(""));
        assert_eq!(query.single("missing").unwrap(), None);
        assert_eq!(
            Query::parse(Some("fr%6Fm=acme%2Fbase"))
                .unwrap()
                .single("from")
                .unwrap(),
            Some("acme/base")
        );
        assert_eq!(Query::parse(None).unwrap(), Query::default());
    }

    #[test]
    fn refuses_what_go_would_read_otherwise() {
        for query in [
            "mount=sha256:00;from=acme/private",
            "from=%zz",
            "from=%4",
            "from=%ff%fe",
        ] {
            let refusal = Query::parse(Some(query)).unwrap_err();
            assert_eq!(refusal.status, 400, "{query}");
        }
        let repeated = Query::parse(Some("from=a&from=b")).unwrap();
        assert!(repeated.single("from").is_err());
        let many = vec!["n=1"; MAX_QUERY_PAIRS + 1].join("&");
        assert!(Query::parse(Some(&many)).is_err());
    }
}
