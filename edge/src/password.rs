//! Passwords for account commands: typed twice without echo on a terminal, one line of
//! standard input otherwise (scripts), or `--password` (shown in the process list:
//! for throwaway test accounts only).

use std::io::{BufRead, IsTerminal, Write};

use crate::error::EdgeError;

/// Read the password as the command was given it.
pub fn read_password(given: Option<String>) -> Result<String, EdgeError> {
    let password = match given {
        Some(p) => p,
        None if std::io::stdin().is_terminal() => {
            let first = prompt_hidden("Password: ")?;
            check_not_empty(&first)?;
            let second = prompt_hidden("Password (again): ")?;
            confirm(first, &second)?
        }
        None => first_line(std::io::stdin().lock())?,
    };
    check_not_empty(&password)?;
    Ok(password)
}

fn usage(message: &str) -> EdgeError {
    EdgeError::Command(message.to_string())
}

fn check_not_empty(password: &str) -> Result<(), EdgeError> {
    if password.is_empty() {
        return Err(usage(
            "the password is empty: type one when asked, pipe one line on standard input, \
             or give --password",
        ));
    }
    Ok(())
}

fn confirm(first: String, second: &str) -> Result<String, EdgeError> {
    if first != second {
        return Err(usage("the two passwords differ; nothing was changed"));
    }
    Ok(first)
}

/// The first line of `input` without its line ending (the whole input when it has
/// no newline).
fn first_line(mut input: impl BufRead) -> Result<String, EdgeError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(|e| {
        usage(&format!(
            "cannot read the password from standard input: {e}"
        ))
    })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo back on however the prompt ends.
struct EchoOff {
    saved: rustix::termios::Termios,
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn prompt_hidden(prompt: &str) -> Result<String, EdgeError> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| usage(&format!("terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)
        .map_err(|e| usage(&format!("terminal: {e}")))?;
    let _restore = EchoOff { saved };
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    first_line(stdin.lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_input_gives_its_first_line() {
        assert_eq!(
            first_line(&b"s3cret\r\nnext\n"[..]).expect("read"),
            "s3cret"
        );
        assert_eq!(first_line(&b"no newline"[..]).expect("read"), "no newline");
        assert_eq!(first_line(&b""[..]).expect("read"), "");
    }

    #[test]
    fn an_empty_password_says_so() {
        let err = check_not_empty("").expect_err("empty").to_string();
        assert!(err.contains("the password is empty"), "{err}");
        assert!(read_password(Some(String::new())).is_err());
        assert_eq!(read_password(Some("x".into())).expect("given"), "x");
    }

    #[test]
    fn the_two_entries_must_agree() {
        assert_eq!(confirm("a".into(), "a").expect("same"), "a");
        let err = confirm("a".into(), "b").expect_err("differ").to_string();
        assert!(err.contains("differ"), "{err}");
    }
}
