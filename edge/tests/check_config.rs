//! `herald check-config` as an admin runs it: every problem on stderr, a count, exit 1;
//! `FILE: ok` on stdout for a good file.

use std::path::PathBuf;
use std::process::Command;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the configuration");
    path
}

fn check(path: &PathBuf) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run herald");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_problem_is_printed_then_counted() {
    let path = write(
        "bad.toml",
        "[c2s]\nlisten = [\"127.0.0.1\"]\nmax_connections = 0\nmax_stanza_byte = 5\n\
         [admin]\nlisten = \"127.0.0.1:5223\"\n",
    );
    let (ok, stdout, stderr) = check(&path);
    assert!(!ok, "exit status 1");
    assert!(stdout.is_empty(), "{stdout}");
    let shown = path.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert_eq!(
        lines[0],
        format!("{shown}:2: key `c2s.listen`: `127.0.0.1` has no port: write `127.0.0.1:5222`")
    );
    assert!(lines[1].starts_with(&format!("{shown}:3: key `c2s.max_connections`: ")));
    assert!(
        lines[2].contains("did you mean `max_stanza_bytes`?"),
        "{stderr}"
    );
    assert!(
        lines[3].starts_with(&format!(
            "{shown}:6: key `admin.listen`: `127.0.0.1:5223` collides"
        )),
        "{stderr}"
    );
    assert_eq!(lines[4], format!("4 problems in {shown}"));
}

#[test]
fn a_good_file_is_ok() {
    let path = write("good.toml", "[server]\ndomains = [\"a.example\"]\n");
    let (ok, stdout, _) = check(&path);
    assert!(ok);
    assert_eq!(stdout, format!("{}: ok\n", path.display()));
}

#[test]
fn an_unreadable_file_is_one_problem() {
    let path = std::env::temp_dir().join("herald-check-config-no-such-file.toml");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert!(
        stderr.ends_with(&format!("1 problem in {}\n", path.display())),
        "{stderr}"
    );
}
