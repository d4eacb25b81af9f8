//! Reading a request's strings by span: the component's requests carry one text
//! and name each string by its byte range in it (`span`). What does not fit is
//! [`Unreadable`], never clamped or guessed at.

/// A span that does not fit the request's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// The `len` bytes of `text` from byte `start`, if they are inside it and on
/// character boundaries.
pub fn string(text: &str, start: u32, len: u32) -> Result<&str, Unreadable> {
    let (start, end) = range(start, len)?;
    text.get(start..end).ok_or(Unreadable)
}

fn range(start: u32, len: u32) -> Result<(usize, usize), Unreadable> {
    let start = usize::try_from(start).map_err(|_| Unreadable)?;
    let len = usize::try_from(len).map_err(|_| Unreadable)?;
    Ok((start, start.checked_add(len).ok_or(Unreadable)?))
}

#[cfg(test)]
mod tests {
    use super::{Unreadable, string};

    #[test]
    fn a_span_reads_exactly_its_bytes() {
        let text = "acme/websha256:abc";
        assert_eq!(string(text, 0, 8), Ok("acme/web"));
        assert_eq!(string(text, 8, 10), Ok("sha256:abc"));
        assert_eq!(string(text, 18, 0), Ok(""));
    }

    #[test]
    fn a_span_outside_the_text_or_inside_a_character_is_unreadable() {
        let text = "tag-é";
        assert_eq!(string(text, 0, 7), Err(Unreadable), "past the end");
        assert_eq!(string(text, 0, 5), Err(Unreadable), "cuts `é` in two");
        assert_eq!(string(text, 5, 1), Err(Unreadable), "starts inside `é`");
        assert_eq!(string(text, u32::MAX, u32::MAX), Err(Unreadable));
        assert_eq!(string(text, 0, 6), Ok("tag-é"));
    }
}
