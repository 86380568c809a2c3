//! Header names and the typed views of the headers the core reads.
//!
//! Each view parses an unfolded raw value (see [`Message`](super::Message)); white
//! space around separators is SP or HTAB only, since folds are already one space.

mod lists;
mod name;
mod name_addr;
mod scalar;
mod via;
mod views;

pub(crate) use lists::check_token_list;
pub use lists::split_list;
pub use name::HeaderName;
pub(crate) use name_addr::{check_address, check_address_list, delta_seconds};
pub use name_addr::{Contact, NameAddr};
pub(crate) use scalar::{check_call_id, max_forwards};
pub use scalar::{CSeq, Event, MediaType, SubscriptionState};
pub use via::Via;

use super::grammar::{is_token_char, is_wsp};
use super::uri::Param;

/// Skips SP and HTAB.
#[inline]
pub(crate) fn sws(i: &str) -> &str {
    super::grammar::trim_start_wsp(i)
}

/// A `quoted-string`, returned with its quotes (RFC 3261 §25.1: `qdtext` and
/// `quoted-pair`, which may quote any octet but CR and LF).
pub(crate) fn quoted_string(i: &str) -> Option<(&str, &str)> {
    let b = i.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut at = 1;
    while at < b.len() {
        // Runs of plain `qdtext` first; the match below sees only the other bytes.
        if QDTEXT[usize::from(b[at])] {
            at += 1;
            continue;
        }
        match b[at] {
            b'"' => return Some((&i[at + 1..], &i[..at + 1])),
            b'\\' => {
                match b.get(at + 1) {
                    Some(b'\r' | b'\n') | None => return None,
                    // A quoted-pair quotes one octet; a UTF-8 sequence stays whole.
                    Some(&c) if c < 0x80 => at += 2,
                    Some(_) => return None,
                }
            }
            c if c == b' '
                || c == b'\t'
                || c == 0x21
                || (0x23..=0x7e).contains(&c)
                || c >= 0x80 =>
            {
                at += 1;
            }
            _ => return None,
        }
    }
    None
}

/// The bytes a quoted string holds as they are (`qdtext`): SP, HTAB, `!`, `#` to `~`
/// and every non-ASCII byte (RFC 3261 §25.1 `UTF8-NONASCII`).
static QDTEXT: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b == b' ' || b == b'\t' || b == 0x21 || (b >= 0x23 && b <= 0x7e) || b >= 0x80;
        c += 1;
    }
    // `\` starts a quoted-pair; the match handles it.
    t[b'\\' as usize] = false;
    t
};

/// The text of a quoted string without its quotes and with quoted-pairs resolved.
pub fn unquote(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// A `token` at the start of `i`: what follows and the token; `None` when `i` does
/// not start with a token character.
#[inline]
pub(crate) fn token(i: &str) -> Option<(&str, &str)> {
    let n = i.bytes().position(|b| !is_token_char(b)).unwrap_or(i.len());
    // Token characters are ASCII, so `n` is a character boundary.
    (n > 0).then(|| (&i[n..], &i[..n]))
}

/// `gen-value = token / host / quoted-string`. Hosts include IPv6 references, and the
/// unbracketed IPv6 addresses RFC 5118 §4.10 says to accept in `received`.
fn gen_value(i: &str) -> Option<(&str, &str)> {
    if i.starts_with('"') {
        return quoted_string(i);
    }
    let n = i
        .bytes()
        .position(|b| !(is_token_char(b) || matches!(b, b':' | b'[' | b']')))
        .unwrap_or(i.len());
    (n > 0).then(|| (&i[n..], &i[..n]))
}

/// `*( SEMI generic-param )`, white space allowed around `;` and `=`.
pub(crate) fn generic_params(i: &str) -> Option<(&str, Vec<Param>)> {
    let mut params = Vec::new();
    let rest = scan_generic_params(i, |n, v| {
        params.push(Param::new(n, v));
        true
    })?;
    Some((rest, params))
}

/// Scans `*( SEMI generic-param )` without collecting, calling `f` for each parameter
/// (which may refuse it); returns what follows.
pub(crate) fn scan_generic_params<'a>(
    mut i: &'a str,
    mut f: impl FnMut(&'a str, Option<&'a str>) -> bool,
) -> Option<&'a str> {
    loop {
        let Some(rest) = sws(i).strip_prefix(';') else {
            return Some(i);
        };
        let (rest, name) = token(sws(rest))?;
        let after = sws(rest);
        let (rest, value) = match after.strip_prefix('=') {
            Some(v) => {
                let (rest, value) = gen_value(sws(v))?;
                (rest, Some(value))
            }
            None => (rest, None),
        };
        if !f(name, value) {
            return None;
        }
        i = rest;
    }
}

/// Whether only white space is left.
pub(crate) fn at_end(i: &str) -> bool {
    i.bytes().all(is_wsp)
}

/// `*( SP / HTAB ) c *( SP / HTAB )`-style separator: what follows it.
#[inline]
pub(crate) fn sep(i: &str, c: u8) -> Option<&str> {
    let i = sws(i);
    (i.as_bytes().first() == Some(&c)).then(|| sws(&i[1..]))
}

/// At least one SP or HTAB: what follows.
#[inline]
pub(crate) fn lws1(i: &str) -> Option<&str> {
    let rest = sws(i);
    (rest.len() < i.len()).then_some(rest)
}
