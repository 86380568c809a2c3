//! Turning serde's messages into ones an admin can act on: "did you mean" for unknown
//! keys and values, a port for addresses written without one, plain words for types.

use std::net::IpAddr;

use toml::de::DeValue;

/// The message for a deserialization error, given the dotted key it is about and the
/// value written there (if the error is about a value).
pub(super) fn explain(message: &str, key: &str, value: Option<&DeValue<'_>>) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return unknown(rest, key, "key");
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return unknown(rest, key, "value");
    }
    if message.contains("invalid socket address syntax") {
        if let Some(DeValue::String(s)) = value {
            return address(s, key);
        }
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("{} is required here", rest.trim());
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return wrong_type(rest);
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        return bad_value(rest);
    }
    message.to_string()
}

/// `` `name`, expected one of `a`, `b` `` (or `expected `a` or `b``, or `there are
/// no fields`).
fn unknown(rest: &str, key: &str, what: &str) -> String {
    let quoted = backticked(rest);
    let Some((name, known)) = quoted.split_first() else {
        return format!("unknown {what}: {rest}");
    };
    // `tls.certificates[0]` is shown as the table it is an entry of.
    let table = key
        .rsplit_once('.')
        .map(|(t, _)| t.split('[').next().unwrap_or(t));
    let (what, shown) = match table {
        None if what == "key" => ("table", format!("[{name}]")),
        _ => (what, format!("`{name}`")),
    };
    let mut out = format!("unknown {what} {shown}");
    if let Some(best) = nearest(name, known) {
        let best = if what == "table" {
            format!("[{best}]")
        } else {
            format!("`{best}`")
        };
        out.push_str(&format!("; did you mean {best}?"));
    } else if known.is_empty() {
        out.push_str("; nothing may be written here");
    } else if known.len() <= 8 {
        let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        let place = match (what, table) {
            ("value", _) => "allowed values".to_string(),
            (_, Some(t)) => format!("keys of [{t}]"),
            (_, None) => "tables".to_string(),
        };
        out.push_str(&format!("; the {place} are {}", list.join(", ")));
    } else if let Some(t) = table {
        out.push_str(&format!(
            "; herald.example.toml lists every key of [{t}] with its default"
        ));
    }
    out
}

/// The words between backticks, in order.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// The known name closest to `name`, when it is close enough to be a typo: the same
/// up to case and `-` for `_`, or within an edit distance that grows with the length.
pub(super) fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let name_n = norm(name);
    if let Some(k) = known.iter().find(|k| norm(k) == name_n) {
        return Some(k);
    }
    // `keyfile` for `key`, `token` for `token_file`: when only one key fits.
    if name_n.len() >= 3 {
        let prefixed: Vec<&str> = known
            .iter()
            .filter(|k| {
                let k = norm(k);
                k.len() >= 3 && (k.starts_with(&name_n) || name_n.starts_with(&k))
            })
            .copied()
            .collect();
        if let [only] = prefixed[..] {
            return Some(only);
        }
    }
    let limit = (name_n.chars().count() / 4).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(&name_n, &norm(k)), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The port a listener key usually has, for examples in messages.
fn usual_port(key: &str) -> u16 {
    match key {
        "c2s.listen_tls" => 5223,
        "admin.listen" => 9090,
        "s2s.listen" => 5269,
        "s2s.listen_tls" => 5270,
        "dns.nameservers" => 53,
        _ => 5222,
    }
}

/// Why a string is not a socket address, and what to write instead.
fn address(s: &str, key: &str) -> String {
    let port = usual_port(key);
    let s = s.trim();
    // `::1:5222` is a valid IPv6 address, but most likely meant `[::1]:5222`.
    if let Some((host, p)) = s.rsplit_once(':') {
        if host.parse::<std::net::Ipv6Addr>().is_ok() && host.contains("::") {
            if let Ok(p) = p.parse::<u16>() {
                return format!(
                    "`{s}` has no port (an IPv6 address with a port is written in \
                     brackets): write `[{host}]:{p}`"
                );
            }
        }
    }
    if let Ok(ip) = s.trim_matches(['[', ']']).parse::<IpAddr>() {
        let with_port = match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        return format!("`{s}` has no port: write `{with_port}`");
    }
    if let Some((host, p)) = s.rsplit_once(':') {
        if let Ok(ip) = host.parse::<std::net::Ipv6Addr>() {
            return format!(
                "an IPv6 address with a port is written in brackets: write `[{ip}]:{p}`"
            );
        }
        if p.parse::<u16>().is_err() {
            return format!("`{s}`: the port `{p}` is not a number from 0 to 65535");
        }
        return format!(
            "`{s}`: `{host}` is not an IP address (host names are not resolved): \
             write e.g. `127.0.0.1:{p}`, or `0.0.0.0:{p}` for every interface"
        );
    }
    format!(
        "`{s}` is not an IP address with a port: write e.g. `127.0.0.1:{port}`, or \
         `0.0.0.0:{port}` for every interface"
    )
}

/// Serde's name of an expected type, in words.
fn type_words(expected: &str) -> String {
    let e = expected.trim();
    let words = match e {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)",
        "a boolean" | "bool" => "`true` or `false`",
        "a string" => "a quoted string",
        "a sequence" => "a list in brackets, e.g. [\"a\", \"b\"]",
        "socket address" => "a quoted address with a port, e.g. \"127.0.0.1:5222\"",
        "path string" => "a quoted file path",
        _ if e.starts_with("struct ") => "a table",
        _ => return e.to_string(),
    };
    words.to_string()
}

/// `string "lots", expected usize`
fn wrong_type(rest: &str) -> String {
    match rest.rsplit_once(", expected ") {
        Some((found, expected)) => {
            format!("expected {}, found {}", type_words(expected), found.trim())
        }
        None => format!("wrong type: {rest}"),
    }
}

/// `integer `-1`, expected usize`
fn bad_value(rest: &str) -> String {
    match rest.rsplit_once(", expected ") {
        Some((found, expected)) => {
            let found = found.trim();
            let unsigned = matches!(expected.trim(), "usize" | "u64" | "u32" | "u16" | "u8");
            if unsigned && found.contains("`-") {
                format!(
                    "{found} is negative: write {} instead",
                    type_words(expected)
                )
            } else {
                format!("{found} is out of range: expected {}", type_words(expected))
            }
        }
        None => format!("invalid value: {rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn nearest_only_when_close() {
        let known = ["max_stanza_bytes", "max_depth", "listen", "listen_tls"];
        assert_eq!(nearest("max_stanza_byte", &known), Some("max_stanza_bytes"));
        assert_eq!(nearest("MAX-DEPTH", &known), Some("max_depth"));
        assert_eq!(nearest("listn", &known), Some("listen"));
        assert_eq!(nearest("colour", &known), None);
        assert_eq!(nearest("xyz", &known), None);
        assert_eq!(nearest("keyfile", &["cert", "key"]), Some("key"));
        assert_eq!(nearest("max", &known), None);
        assert_eq!(
            nearest("token", &["listen", "token_file"]),
            Some("token_file")
        );
    }

    #[test]
    fn addresses_without_port_say_what_to_write() {
        let v = DeValue::String("127.0.0.1".into());
        assert_eq!(
            explain("invalid socket address syntax", "c2s.listen", Some(&v)),
            "`127.0.0.1` has no port: write `127.0.0.1:5222`"
        );
        let v = DeValue::String("::1".into());
        assert_eq!(
            explain("invalid socket address syntax", "admin.listen", Some(&v)),
            "`::1` has no port: write `[::1]:9090`"
        );
        let v = DeValue::String("localhost:5222".into());
        let m = explain("invalid socket address syntax", "c2s.listen", Some(&v));
        assert!(m.contains("not an IP address"), "{m}");
        let v = DeValue::String("::1:5222".into());
        let m = explain("invalid socket address syntax", "c2s.listen", Some(&v));
        assert!(m.ends_with("write `[::1]:5222`"), "{m}");
        let v = DeValue::String("127.0.0.1:99999".into());
        let m = explain("invalid socket address syntax", "c2s.listen", Some(&v));
        assert!(m.contains("not a number from 0 to 65535"), "{m}");
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let m = explain(
            "unknown field `domain`, expected `domains` or `data_dir`",
            "server.domain",
            None,
        );
        assert_eq!(m, "unknown key `domain`; did you mean `domains`?");
        let m = explain(
            "unknown field `servr`, expected one of `server`, `tls`, `c2s`, `admin`, `log`",
            "servr",
            None,
        );
        assert_eq!(m, "unknown table [servr]; did you mean [server]?");
        let m = explain(
            "unknown variant `best`, expected `all` or `highest`",
            "c2s.delivery",
            None,
        );
        assert_eq!(
            m,
            "unknown value `best`; the allowed values are `all`, `highest`"
        );
    }
}
