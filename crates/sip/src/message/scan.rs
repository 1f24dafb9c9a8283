//! A small cursor for the header-value grammar of RFC 3261 §25.1.
//!
//! Header values reach this module already cut out of the message, with
//! folded lines still in them. Folding (CRLF followed by SP or HT) is only
//! ever legal where the grammar allows linear white space, so the cursor
//! treats CR and LF like SP and HT whenever it skips LWS.

/// `true` for the characters of RFC 3261 `token`.
#[inline]
pub(crate) const fn is_token(byte: u8) -> bool {
    TOKEN[byte as usize]
}

/// [`is_token`] as a table: it runs for every byte of every header name.
static TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        byte += 1;
    }
    table
};

/// `true` for SP, HT, CR and LF: linear white space once folding is allowed.
#[inline]
pub(crate) const fn is_lws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// The index of the first `byte` (ASCII) in `text`: always a char boundary.
#[inline]
pub(crate) fn find_byte(text: &str, byte: u8) -> Option<usize> {
    // Most URI and header parts are short: a plain loop beats the set-up
    // of a vectorised search there.
    if text.len() < SHORT {
        text.bytes().position(|b| b == byte)
    } else {
        memchr::memchr(byte, text.as_bytes())
    }
}

/// Below this length [`find_byte`] and [`rfind_byte`] search byte by byte.
const SHORT: usize = 32;

/// The index of the last `byte` (ASCII) in `text`: always a char boundary.
#[inline]
pub(crate) fn rfind_byte(text: &str, byte: u8) -> Option<usize> {
    if text.len() < SHORT {
        text.bytes().rposition(|b| b == byte)
    } else {
        memchr::memrchr(byte, text.as_bytes())
    }
}

/// Where a value stopped following its grammar, in a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Syntax(pub &'static str);

/// A position inside one header value.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(crate) fn new(text: &'a str) -> Self {
        Self { text, position: 0 }
    }

    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.position
    }

    /// Moves back to a position returned by [`Cursor::position`].
    #[inline]
    pub(crate) fn rewind(&mut self, position: usize) {
        self.position = position.min(self.text.len());
    }

    #[inline]
    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.position..]
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.position >= self.text.len()
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.position).copied()
    }

    /// Skips linear white space, folded or not.
    #[inline]
    pub(crate) fn skip_lws(&mut self) {
        let bytes = self.text.as_bytes();
        while self.position < bytes.len() && is_lws(bytes[self.position]) {
            self.position += 1;
        }
    }

    /// Skips LWS, then takes `byte` if it is next.
    #[inline]
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        self.skip_lws();
        if self.peek() == Some(byte) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    /// Takes `byte` where the cursor is, without skipping anything.
    #[inline]
    pub(crate) fn eat_here(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    /// Takes the longest run of bytes matching `accept` (possibly empty).
    #[inline]
    pub(crate) fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let bytes = self.text.as_bytes();
        let start = self.position;
        while self.position < bytes.len() && accept(bytes[self.position]) {
            self.position += 1;
        }
        // Only ASCII bytes are ever accepted by our predicates or the run
        // stops at a char boundary of a multi-byte sequence: both are valid
        // slice ends. Multi-byte sequences are accepted as a whole by
        // `take_until`, never here.
        &self.text[start..self.position]
    }

    /// Takes bytes up to (not including) the first byte matching `stop`.
    #[inline]
    pub(crate) fn take_until(&mut self, stop: impl Fn(u8) -> bool) -> &'a str {
        let bytes = self.text.as_bytes();
        let start = self.position;
        while self.position < bytes.len() && !stop(bytes[self.position]) {
            self.position += 1;
        }
        &self.text[start..self.position]
    }

    /// Skips LWS, then takes a non-empty token.
    #[inline]
    pub(crate) fn token(&mut self) -> Result<&'a str, Syntax> {
        self.skip_lws();
        let token = self.take_while(is_token);
        if token.is_empty() {
            Err(Syntax("expected a token"))
        } else {
            Ok(token)
        }
    }

    /// Skips LWS, then takes a quoted string and returns it with its quotes,
    /// exactly as written (quoted-pairs are kept escaped).
    pub(crate) fn quoted_string(&mut self) -> Result<&'a str, Syntax> {
        self.skip_lws();
        let bytes = self.text.as_bytes();
        let start = self.position;
        if bytes.get(start) != Some(&b'"') {
            return Err(Syntax("expected a quoted string"));
        }
        let mut at = start + 1;
        while at < bytes.len() {
            match bytes[at] {
                b'\\' => at += 2,
                b'"' => {
                    self.position = at + 1;
                    return Ok(&self.text[start..self.position]);
                }
                _ => at += 1,
            }
        }
        Err(Syntax("unterminated quoted string"))
    }

    /// Skips LWS and asserts nothing else is left.
    pub(crate) fn finish(&mut self) -> Result<(), Syntax> {
        self.skip_lws();
        if self.is_empty() {
            Ok(())
        } else {
            Err(Syntax("unexpected characters at the end of the value"))
        }
    }
}

/// Removes the quotes and quoted-pair backslashes of a quoted string.
///
/// Folded line breaks inside the string become a single space (RFC 3261
/// §7.3.1: folding is equivalent to one SP).
pub(crate) fn unquote(quoted: &str) -> std::borrow::Cow<'_, str> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(quoted);
    if !inner.contains(['\\', '\r', '\n']) {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            '\r' | '\n' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            ' ' | '\t' if out.ends_with(' ') => {}
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Replaces every run of LWS (folded or not) by one space.
pub(crate) fn collapse_lws(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let needs = bytes.windows(2).any(|w| is_lws(w[0]) && is_lws(w[1]))
        || bytes.iter().any(|&b| matches!(b, b'\t' | b'\r' | b'\n'));
    if !needs {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_ascii() && is_lws(c as u8) {
            in_space = true;
        } else {
            if in_space && !out.is_empty() {
                out.push(' ');
            }
            in_space = false;
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_table() {
        let tokens: Vec<u8> = (0..=255u8).filter(|&b| is_token(b)).collect();
        let mut expected: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        expected.extend_from_slice(b"-.!%*_+`'~");
        expected.sort_unstable();
        assert_eq!(tokens, expected);
    }

    #[test]
    fn tokens_and_lws() {
        let mut cursor = Cursor::new("  abc-1 \r\n ;x");
        assert_eq!(cursor.token(), Ok("abc-1"));
        assert!(cursor.eat(b';'));
        assert_eq!(cursor.token(), Ok("x"));
        assert_eq!(cursor.finish(), Ok(()));
    }

    #[test]
    fn quoted_strings_keep_escapes_and_unquote_removes_them() {
        let mut cursor = Cursor::new(r#" "J Rosenberg \\\"" <x>"#);
        let quoted = cursor.quoted_string().unwrap();
        assert_eq!(quoted, r#""J Rosenberg \\\"""#);
        assert_eq!(unquote(quoted), r#"J Rosenberg \""#);
        assert!(Cursor::new(r#""open"#).quoted_string().is_err());
    }

    #[test]
    fn collapse_turns_folding_into_one_space() {
        assert_eq!(collapse_lws("a\r\n  b"), "a b");
        assert_eq!(collapse_lws("a b"), "a b");
    }
}
