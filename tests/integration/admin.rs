//! The admin HTTP listener of a full `herald_edge::start`: `/health` is open, `/metrics`
//! needs the bearer token from the generated token file.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use herald_edge::config::Config;
use herald_tests::unique_temp_dir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect admin");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").as_bytes())
        .await
        .expect("send");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("the admin listener answers and closes")
        .expect("read");
    out
}

#[tokio::test]
async fn metrics_need_the_token_and_health_does_not() {
    let dir = unique_temp_dir("admin");
    let text = format!(
        "[server]\ndata_dir = {:?}\n[c2s]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = []\n\
         [sip]\nlisten_udp = []\nlisten_tcp = []\nlisten_tls = []\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n",
        dir.join("data")
    );
    let config = Config::parse(&text, Path::new("admin-test.toml")).expect("config");
    let running = herald_edge::start(&config).await.expect("start");
    let admin = running.admin.expect("admin listener");
    let token = std::fs::read_to_string(dir.join("data").join("admin.token"))
        .expect("the token file is generated")
        .trim()
        .to_string();

    let health = get(admin, "/health", None).await;
    assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
    assert!(health.ends_with("{\"status\":\"ok\"}\n"), "{health}");

    let anonymous = get(admin, "/metrics", None).await;
    assert!(
        anonymous.starts_with("HTTP/1.1 401 Unauthorized"),
        "{anonymous}"
    );
    assert!(
        anonymous.contains("WWW-Authenticate: Bearer"),
        "{anonymous}"
    );
    assert!(!anonymous.contains("herald_"), "{anonymous}");
    let wrong = get(admin, "/metrics", Some(&"0".repeat(token.len()))).await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");

    let metrics = get(admin, "/metrics", Some(&token)).await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(metrics.contains("herald_c2s_sessions"), "{metrics}");

    running.shutdown(Duration::from_secs(2)).await;
    let _ = std::fs::remove_dir_all(dir);
}
