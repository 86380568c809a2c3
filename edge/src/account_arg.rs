//! An account as an admin names it on the command line: `alice`, or the JID
//! `alice@example.com` of a hosted domain (as prosodyctl takes it).

use herald_core::accounts::normalize_username;
use herald_translate::Jid;

use crate::error::EdgeError;

/// The username for `arg`. A JID must be of a hosted domain and have no resource.
pub fn username_of(arg: &str, domains: &[String]) -> Result<String, EdgeError> {
    if !arg.contains(['@', '/']) {
        return Ok(normalize_username(arg)?);
    }
    let jid = Jid::parse(arg)
        .map_err(|e| EdgeError::Command(format!("{arg:?} is not a valid address: {e}")))?;
    let Some(local) = jid.local() else {
        return Err(EdgeError::Command(format!(
            "{arg:?} has no user part: write user@{}",
            jid.domain()
        )));
    };
    if jid.resource().is_some() {
        return Err(EdgeError::Command(format!(
            "{arg:?} names a resource: accounts are bare JIDs ({})",
            jid.bare()
        )));
    }
    if !domains.iter().any(|d| d == jid.domain()) {
        return Err(EdgeError::Command(format!(
            "{} is not a domain this server hosts (hosted: {}); accounts can only be \
             created for hosted domains",
            jid.domain(),
            domains.join(", ")
        )));
    }
    Ok(local.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted() -> Vec<String> {
        vec!["localhost".into(), "example.com".into()]
    }

    #[test]
    fn a_bare_username_or_a_hosted_jid_names_the_account() {
        assert_eq!(username_of("alice", &hosted()).expect("name"), "alice");
        assert_eq!(
            username_of("alice@localhost", &hosted()).expect("jid"),
            "alice"
        );
        assert_eq!(
            username_of("Alice@Example.com", &hosted()).expect("normalized"),
            "alice"
        );
    }

    #[test]
    fn another_domain_is_refused_by_name() {
        let err = username_of("alice@elsewhere.example", &hosted())
            .expect_err("foreign")
            .to_string();
        assert!(
            err.contains("elsewhere.example is not a domain this server hosts")
                && err.contains("localhost, example.com"),
            "{err}"
        );
    }

    #[test]
    fn resources_and_domain_only_jids_are_refused() {
        let err = username_of("alice@localhost/phone", &hosted())
            .expect_err("resource")
            .to_string();
        assert!(err.contains("resource"), "{err}");
        let err = username_of("@localhost", &hosted()).expect_err("empty local");
        assert!(!err.to_string().is_empty());
        assert!(username_of("a b", &hosted()).is_err());
    }
}
