//! Comma-separated header values (RFC 3261 §7.3.1), split outside quoted strings and
//! `<...>`.

use super::super::error::SipError;
use super::super::grammar::{is_token, trim_wsp};

/// The elements of a comma-separated value, trimmed, in order. Commas inside a quoted
/// string (escapes honoured) or between `<` and `>` do not split. An empty element, an
/// unterminated quoted string or `<` is an error.
pub fn split_list(value: &str) -> Result<Vec<&str>, SipError> {
    let mut out = Vec::new();
    for_each_element(value, |e| {
        out.push(e);
        true
    })?;
    Ok(out)
}

/// Calls `f` on each element of a comma-separated value (see [`split_list`]) without
/// collecting; `f` returning false stops with an error.
pub(crate) fn for_each_element<'a>(
    value: &'a str,
    mut f: impl FnMut(&'a str) -> bool,
) -> Result<(), SipError> {
    let refused = || SipError::bad("Malformed list element");
    let b = value.as_bytes();
    let (mut start, mut i) = (0, 0);
    let (mut quoted, mut angle) = (false, false);
    // `quoted` and `angle` are never both set. In each state only a few bytes act, so
    // the scan jumps from one to the next: outside quotes and brackets `"`, `<` and
    // `,`; inside brackets `>`; inside quotes `"` and `\` (which skips the next byte).
    while i < b.len() {
        let rest = &b[i..];
        let found = if quoted {
            memchr::memchr2(b'"', b'\\', rest)
        } else if angle {
            memchr::memchr(b'>', rest)
        } else {
            memchr::memchr3(b'"', b'<', b',', rest)
        };
        let Some(off) = found else {
            break;
        };
        i += off;
        match b[i] {
            b'\\' => i += 1,
            b'"' => quoted = !quoted,
            b'<' => angle = true,
            b'>' => angle = false,
            _ => {
                if !f(element(&value[start..i])?) {
                    return Err(refused());
                }
                start = i + 1;
            }
        }
        i += 1;
    }
    if quoted || angle {
        return Err(SipError::bad("Unbalanced quotes or angle brackets"));
    }
    if f(element(&value[start..])?) {
        Ok(())
    } else {
        Err(refused())
    }
}

fn element(s: &str) -> Result<&str, SipError> {
    let t = trim_wsp(s);
    if t.is_empty() {
        return Err(SipError::bad("Empty list element"));
    }
    Ok(t)
}

/// Checks a token list without building it (what [`token_list`] accepts).
pub(crate) fn check_token_list(value: &str) -> bool {
    trim_wsp(value).is_empty() || for_each_element(value, is_token).is_ok()
}

/// The tokens of a comma-separated token list (Allow, Supported, Require...). An
/// empty value is an empty list.
pub(crate) fn token_list(value: &str) -> Result<Vec<String>, SipError> {
    if trim_wsp(value).is_empty() {
        return Ok(Vec::new());
    }
    split_list(value)?
        .into_iter()
        .map(|t| {
            if is_token(t) {
                Ok(t.to_owned())
            } else {
                Err(SipError::bad("Malformed token list"))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{element, for_each_element};
    use crate::sip::SipError;

    /// The byte-by-byte scan `for_each_element` replaced: the reference it must agree
    /// with, elements and errors alike.
    fn reference(value: &str) -> (Vec<&str>, Result<(), SipError>) {
        let mut out = Vec::new();
        let b = value.as_bytes();
        let (mut start, mut i) = (0, 0);
        let (mut quoted, mut angle) = (false, false);
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' if !angle => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    match element(&value[start..i]) {
                        Ok(e) => out.push(e),
                        Err(e) => return (out, Err(e)),
                    }
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        if quoted || angle {
            return (
                out,
                Err(SipError::bad("Unbalanced quotes or angle brackets")),
            );
        }
        match element(&value[start..]) {
            Ok(e) => out.push(e),
            Err(e) => return (out, Err(e)),
        }
        (out, Ok(()))
    }

    fn run(value: &str) -> (Vec<&str>, Result<(), SipError>) {
        let mut out = Vec::new();
        let r = for_each_element(value, |e| {
            out.push(e);
            true
        });
        (out, r)
    }

    #[test]
    fn elements_split_outside_quotes_and_brackets() {
        for v in [
            "",
            "a",
            "a,b",
            " a , b ",
            "a,,b",
            "\"a,b\",c",
            "<a,b>,c",
            "\"<\",c",
            "<\">,c",
            "\"a\\\",b\",c",
            "\"a\\",
            "<a",
            "\"a",
            "a>,b",
            "\\,a",
            "<\"a,b\">,c",
            "é,\"é\\é\"",
        ] {
            assert_eq!(run(v), reference(v), "{v:?}");
        }
    }

    proptest! {
        #[test]
        fn jumping_scan_agrees_with_the_byte_scan(v in "[a ,\"<>\\\\\té]{0,24}") {
            prop_assert_eq!(run(&v), reference(&v));
        }
    }
}
