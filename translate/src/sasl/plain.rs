//! The PLAIN mechanism (RFC 4616): `[authzid] NUL authcid NUL passwd`, UTF-8.

use super::SaslError;

/// Parses a PLAIN message into `(authzid, authcid, password)`. An empty authzid is
/// reported as `None`; the authcid and the password must not be empty. Neither identity
/// is normalized here.
pub fn plain_parse(msg: &[u8]) -> Result<(Option<String>, String, String), SaslError> {
    let text = std::str::from_utf8(msg)
        .map_err(|_| SaslError::MalformedRequest("PLAIN message is not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedRequest(
            "PLAIN message needs exactly two NUL separators",
        ));
    };
    if authcid.is_empty() {
        return Err(SaslError::MalformedRequest(
            "empty PLAIN authentication identity",
        ));
    }
    if password.is_empty() {
        return Err(SaslError::MalformedRequest("empty PLAIN password"));
    }
    let authzid = (!authzid.is_empty()).then(|| authzid.to_owned());
    Ok((authzid, authcid.to_owned(), password.to_owned()))
}

/// Encodes a PLAIN message.
pub fn plain_encode(authzid: Option<&str>, authcid: &str, password: &str) -> Vec<u8> {
    let authzid = authzid.unwrap_or_default();
    let mut out = Vec::with_capacity(authzid.len() + authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}
