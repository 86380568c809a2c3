//! `herald federation check` against a real in-process peer.

use super::*;

/// `herald federation check` from `a.example`'s configuration.
async fn federation_check(config: &Config) -> herald_edge::ops::federation_check::Report {
    let timeout = std::time::Duration::from_secs(5);
    herald_edge::ops::federation_check::check(config, B, timeout)
        .await
        .expect("a domain name")
}

fn step<'r>(
    report: &'r herald_edge::ops::federation_check::Report,
    name: &str,
) -> &'r herald_edge::ops::federation_check::Step {
    report
        .step(name)
        .unwrap_or_else(|| panic!("step {name} in\n{report}"))
}

#[tokio::test]
async fn federation_check_passes_against_a_trusted_peer() {
    use herald_edge::ops::federation_check::Status;
    let (a, _b) = pair(|_| {}).await;
    let report = federation_check(&a.config).await;
    assert!(report.passed(), "{report}");
    let text = report.to_string();
    for want in [
        "1. policy: ok",
        "route b.example",
        "outbound ACL: allow",
        "static route target 127.0.0.1:",
        "3. connect: ok",
        ": connected in ",
        "<starttls/> offered",
        "TLS handshake done",
        "chain: valid",
        "presents DNS-ID b.example",
        "matched by",
        "day(s) left",
        "SASL EXTERNAL possible",
        "6. features after TLS: ok",
        "result: ok, all 6 steps passed",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    assert_eq!(step(&report, "certificate").status, Status::Ok);
}

#[tokio::test]
async fn federation_check_reports_an_untrusted_certificate() {
    use herald_edge::ops::federation_check::Status;
    let (a, _b) = pair(|_| {}).await;
    let mut config = a.config.clone();
    config.s2s.trust.clear();
    let report = federation_check(&config).await;
    assert!(!report.passed(), "{report}");
    assert_eq!(step(&report, "stream + TLS").status, Status::Ok, "{report}");
    let cert = step(&report, "certificate");
    assert_eq!(cert.status, Status::Fail, "{report}");
    assert!(
        cert.mentions("chain: invalid, issued by an unknown certificate authority"),
        "{report}"
    );
    assert!(cert.mentions("dialback only"), "{report}");
    assert_eq!(
        step(&report, "features after TLS").status,
        Status::Ok,
        "{report}"
    );
}

#[tokio::test]
async fn federation_check_reports_a_closed_port_and_a_denied_domain() {
    use herald_edge::ops::federation_check::Status;
    let (a, _b) = pair(|_| {}).await;
    let mut config = a.config.clone();
    let closed = free_port();
    config.s2s.route = vec![route(B, closed)];
    config.s2s.default = AclAction::Deny;
    let report = federation_check(&config).await;
    assert!(!report.passed(), "{report}");
    let policy = step(&report, "policy");
    assert_eq!(policy.status, Status::Fail, "{report}");
    assert!(policy.mentions("outbound ACL: deny"), "{report}");
    let connect = step(&report, "connect");
    assert_eq!(connect.status, Status::Fail, "{report}");
    assert!(connect.mentions(&format!("{closed} (")), "{report}");
    assert!(connect.mentions("refused"), "{report}");
    assert_eq!(step(&report, "certificate").status, Status::Skipped);
    assert!(
        report
            .to_string()
            .contains("result: FAIL at step 1 (policy), 3 (connect)"),
        "{report}"
    );
}

/// dnsmasq on a loopback port, answering for `.example` with `records` (dnsmasq
/// options); the child it spawned is killed when dropped.
struct Dnsmasq {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Self {
        use std::time::{Duration, Instant};
        let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("dnsmasq");
        // Free for TCP and, most likely, UDP too (dnsmasq binds both).
        let port = loop {
            let p = free_port().port();
            if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
                break p;
            }
        };
        let mut child = std::process::Command::new(binary)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--local=/example/",
            ])
            .arg(format!("--port={port}"))
            .args(records)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {binary} (install dnsmasq-base): {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dnsmasq exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, addr }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn federation_check_follows_srv_records_to_direct_tls() {
    let tls_port = free_port();
    let (a, b) = pair_with(|domain, c| {
        if domain == B {
            c.s2s.listen_tls = vec![tls_port];
        }
    })
    .await;
    let starttls = b.s2s.expect("b's STARTTLS listener");
    let dns = Dnsmasq::start(&[
        format!(
            "--srv-host=_xmpps-server._tcp.{B},xmpp.{B},{},0,0",
            tls_port.port()
        ),
        format!(
            "--srv-host=_xmpp-server._tcp.{B},xmpp.{B},{},10,0",
            starttls.port()
        ),
        format!("--host-record=xmpp.{B},127.0.0.1"),
    ]);
    let mut config = a.config.clone();
    config.s2s.route.clear();
    config.dns.nameservers = vec![dns.addr];
    let report = federation_check(&config).await;
    assert!(report.passed(), "{report}");
    let text = report.to_string();
    for want in [
        "DNS SRV".to_string(),
        format!(
            "_xmpps-server._tcp.{B}: SRV 0 0 {} xmpp.{B}.",
            tls_port.port()
        ),
        format!(
            "_xmpp-server._tcp.{B}: SRV 10 0 {} xmpp.{B}.",
            starttls.port()
        ),
        format!(
            "candidate 1: xmpp.{B}:{} (direct TLS) at 127.0.0.1",
            tls_port.port()
        ),
        format!(
            "{tls_port} (xmpp.{B}:{}, direct TLS): connected",
            tls_port.port()
        ),
        "ALPN xmpp-server".to_string(),
        "SASL EXTERNAL possible".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} in\n{text}");
    }
    assert!(!text.contains("<starttls/> offered"), "{text}");
}
