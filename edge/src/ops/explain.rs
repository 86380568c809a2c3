//! `herald explain --from A --to B`: what federation does with a stanza from A to B
//! under the configuration in use (the same search as every command): direction,
//! route, ACL rule, TLS and authentication policy, limits, outcome, each with why.

use std::path::Path;
use std::process::ExitCode;

use herald_rules::federation::Explanation;

use crate::app::load_config;
use crate::config::Config;
use crate::error::EdgeError;

/// Print the explanation; an address that is not a JID is an error.
pub fn run(config_path: Option<&Path>, from: &str, to: &str) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    print!("{}", explain(&config, from, to)?);
    Ok(ExitCode::SUCCESS)
}

/// The explanation for `from` -> `to` under `config`.
pub fn explain(config: &Config, from: &str, to: &str) -> Result<Explanation, EdgeError> {
    config
        .federation()
        .explain(from, to)
        .map_err(|e| EdgeError::Command(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("herald.toml")).expect("config")
    }

    #[test]
    fn the_report_follows_the_configuration() {
        let c = config(
            "[server]\ndomains = [\"herald.example\"]\n[s2s]\nlisten = [\"127.0.0.1:0\"]\n\
             [[s2s.acl]]\ndomain = \"*.spam.example\"\naction = \"deny\"\n",
        );
        let text = explain(&c, "a@x.spam.example", "b@herald.example")
            .expect("explain")
            .to_string();
        assert!(text.contains("direction:  inbound"), "{text}");
        assert!(text.contains("deny ([[s2s.acl]] entry 1"), "{text}");
        let text = explain(&c, "b@herald.example", "friend.example")
            .expect("explain")
            .to_string();
        assert!(text.contains("_xmpp-server._tcp.friend.example"), "{text}");
        assert!(text.contains("allow (the default)"), "{text}");
    }

    #[test]
    fn a_bad_address_is_an_error() {
        let c = config("");
        let e = explain(&c, "@", "localhost").expect_err("bad JID");
        assert!(e.to_string().contains("is not a JID"), "{e}");
    }
}
