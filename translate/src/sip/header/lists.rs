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
    while i < b.len() {
        // Most bytes are none of the five that matter: skip them first.
        if !LIST_SPECIAL[usize::from(b[i])] {
            i += 1;
            continue;
        }
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' if !angle => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                if !f(element(&value[start..i])?) {
                    return Err(refused());
                }
                start = i + 1;
            }
            _ => {}
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

/// The bytes [`for_each_element`] acts on: `\\`, `"`, `<`, `>` and `,`.
static LIST_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    t[b'"' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b',' as usize] = true;
    t
};

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
