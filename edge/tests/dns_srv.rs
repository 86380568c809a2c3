//! Federation discovery against a real DNS server: dnsmasq on loopback, one per test,
//! serving SRV and address records for names under `.example`, stopped by the test (the
//! child it spawned, by its process id) to show what the cache answers alone.
//!
//! CI installs dnsmasq (`dnsmasq-base`, the binary without the system service).

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald_edge::s2s::connect::connect_first;
use herald_edge::s2s::dns::{Candidate, DnsConfig, DnsError, Resolver};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// A dnsmasq child answering on 127.0.0.1 only, for `--local=/example/` names only.
struct Dnsmasq {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq with these records (dnsmasq options such as `--srv-host=...`),
    /// answers kept for `ttl` seconds.
    fn start(ttl: u32, records: &[String]) -> Self {
        let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("dnsmasq");
        let mut last_error = String::new();
        // A free port can be taken between the check and dnsmasq's bind: try again.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(binary)
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--pid-file=",
                    "--log-facility=-",
                    "--local=/example/",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--local-ttl={ttl}"))
                .args(records)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {binary} (install dnsmasq-base): {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(status) = child.try_wait().expect("dnsmasq status") {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = pipe.read_to_string(&mut stderr);
                    }
                    last_error = format!("dnsmasq exited ({status}): {stderr}");
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Self {
                        child: Some(child),
                        addr,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("dnsmasq did not listen on {addr} within 5 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("dnsmasq did not start: {last_error}");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free for both TCP and UDP (dnsmasq listens on both).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

fn srv(service: &str, domain: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={service}._tcp.{domain},{target},{port},{priority},{weight}")
}

fn host(name: &str, addrs: &str) -> String {
    format!("--host-record={name},{addrs}")
}

/// A resolver asking only `dns`, quick to give up, negative answers kept `negative_ttl`.
fn resolver(dns: &Dnsmasq, negative_ttl: Duration) -> Resolver {
    Resolver::new(&DnsConfig {
        nameservers: Some(vec![dns.addr]),
        timeout: Duration::from_millis(500),
        attempts: 1,
        negative_ttl_min: negative_ttl,
        ..DnsConfig::default()
    })
    .expect("resolver")
}

fn summary(candidates: &[Candidate]) -> Vec<(String, u16, bool)> {
    candidates
        .iter()
        .map(|c| (c.host.clone(), c.port, c.direct_tls))
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("lookup within 10 s")
}

#[tokio::test]
async fn srv_targets_come_in_priority_order_with_their_addresses() {
    let dns = Dnsmasq::start(
        300,
        &[
            srv(
                "_xmpp-server",
                "prio.example",
                "second.example",
                5270,
                20,
                0,
            ),
            srv("_xmpp-server", "prio.example", "first.example", 5269, 10, 0),
            host("first.example", "127.0.0.1,::1"),
            host("second.example", "127.0.0.2"),
        ],
    );
    let targets =
        bounded(resolver(&dns, Duration::from_secs(30)).xmpp_server_targets("prio.example"))
            .await
            .expect("targets");
    assert_eq!(
        summary(&targets),
        [
            ("first.example".into(), 5269, false),
            ("second.example".into(), 5270, false)
        ]
    );
    assert_eq!(targets[0].addrs, [ip("::1"), ip("127.0.0.1")], "IPv6 first");
    assert_eq!(targets[1].addrs, [ip("127.0.0.2")]);
}

#[tokio::test]
async fn equal_priorities_are_chosen_by_weight() {
    let dns = Dnsmasq::start(
        300,
        &[
            srv(
                "_xmpp-server",
                "weights.example",
                "light.example",
                5269,
                0,
                10,
            ),
            srv(
                "_xmpp-server",
                "weights.example",
                "heavy.example",
                5269,
                0,
                90,
            ),
            host("light.example", "127.0.0.1"),
            host("heavy.example", "127.0.0.1"),
        ],
    );
    let resolver = resolver(&dns, Duration::from_secs(30));
    let lookup = |seed| {
        let resolver = resolver.clone();
        async move {
            let mut rng = StdRng::seed_from_u64(seed);
            bounded(resolver.xmpp_server_targets_with_rng("weights.example", &mut rng))
                .await
                .expect("targets")
        }
    };
    assert_eq!(lookup(42).await, lookup(42).await, "a seed fixes the order");
    let rounds = 400;
    let mut heavy_first = 0;
    for seed in 0..rounds {
        let targets = lookup(seed).await;
        assert_eq!(targets.len(), 2);
        if targets[0].host == "heavy.example" {
            heavy_first += 1;
        }
    }
    // Expected about 360 of 400 (90 %).
    assert!(
        (320..=392).contains(&heavy_first),
        "heavy first {heavy_first} of {rounds}"
    );
}

#[tokio::test]
async fn direct_tls_and_starttls_records_merge_into_one_order() {
    let dns = Dnsmasq::start(
        300,
        &[
            srv("_xmpps-server", "both.example", "tls.example", 5223, 0, 0),
            srv(
                "_xmpps-server",
                "both.example",
                "tls-late.example",
                443,
                10,
                0,
            ),
            srv("_xmpp-server", "both.example", "plain.example", 5269, 5, 0),
            host("tls.example", "127.0.0.1"),
            host("tls-late.example", "127.0.0.1"),
            host("plain.example", "127.0.0.1"),
        ],
    );
    let targets =
        bounded(resolver(&dns, Duration::from_secs(30)).xmpp_server_targets("both.example"))
            .await
            .expect("targets");
    assert_eq!(
        summary(&targets),
        [
            ("tls.example".into(), 5223, true),
            ("plain.example".into(), 5269, false),
            ("tls-late.example".into(), 443, true),
        ]
    );
}

#[tokio::test]
async fn dot_target_no_srv_nxdomain_and_dangling_targets() {
    let dns = Dnsmasq::start(
        300,
        &[
            // dnsmasq writes a target-less SRV as the single record `0 0 0 .`.
            "--srv-host=_xmpp-server._tcp.declined.example".to_string(),
            host("declined.example", "127.0.0.1"),
            host("plain-a.example", "127.0.0.1"),
            srv(
                "_xmpp-server",
                "dangling.example",
                "ghost.example",
                5269,
                0,
                0,
            ),
        ],
    );
    let resolver = resolver(&dns, Duration::from_secs(30));

    let declined = bounded(resolver.xmpp_server_targets("declined.example")).await;
    assert!(
        matches!(&declined, Err(DnsError::NotAvailable { domain }) if domain == "declined.example"),
        "no fallback to the A record: {declined:?}"
    );

    let fallback = bounded(resolver.xmpp_server_targets("plain-a.example"))
        .await
        .expect("A fallback");
    assert_eq!(
        fallback,
        [Candidate {
            host: "plain-a.example".into(),
            port: 5269,
            direct_tls: false,
            addrs: vec![ip("127.0.0.1")],
        }]
    );

    let nowhere = bounded(resolver.xmpp_server_targets("nowhere.example")).await;
    assert!(
        matches!(&nowhere, Err(DnsError::NotFound { domain }) if domain == "nowhere.example"),
        "{nowhere:?}"
    );

    let dangling = bounded(resolver.xmpp_server_targets("dangling.example")).await;
    assert!(
        matches!(&dangling, Err(DnsError::NoAddresses { targets: 1, .. })),
        "{dangling:?}"
    );
}

#[tokio::test]
async fn answers_are_cached_within_their_ttl() {
    let mut dns = Dnsmasq::start(
        300,
        &[
            srv(
                "_xmpp-server",
                "cached.example",
                "target.example",
                5269,
                0,
                0,
            ),
            host("target.example", "127.0.0.1"),
        ],
    );
    let resolver = resolver(&dns, Duration::from_secs(300));
    let first = bounded(resolver.xmpp_server_targets("cached.example"))
        .await
        .expect("targets");
    let missing = bounded(resolver.xmpp_server_targets("missing.example")).await;
    assert!(
        matches!(missing, Err(DnsError::NotFound { .. })),
        "{missing:?}"
    );

    dns.stop();
    let again = bounded(resolver.xmpp_server_targets("cached.example"))
        .await
        .expect("the cached answer");
    assert_eq!(again, first);
    let missing = bounded(resolver.xmpp_server_targets("missing.example")).await;
    assert!(
        matches!(missing, Err(DnsError::NotFound { .. })),
        "the cached negative answer: {missing:?}"
    );
    // Nothing answers any more: a name not asked before fails.
    let unseen = bounded(resolver.xmpp_server_targets("unseen.example")).await;
    assert!(matches!(unseen, Err(DnsError::Lookup { .. })), "{unseen:?}");
}

#[tokio::test]
async fn answers_expire_with_their_ttl() {
    let mut dns = Dnsmasq::start(
        1,
        &[
            srv(
                "_xmpp-server",
                "brief.example",
                "target.example",
                5269,
                0,
                0,
            ),
            host("target.example", "127.0.0.1,1"),
        ],
    );
    let resolver = resolver(&dns, Duration::from_secs(1));
    bounded(resolver.xmpp_server_targets("brief.example"))
        .await
        .expect("targets");
    let missing = bounded(resolver.xmpp_server_targets("missing.example")).await;
    assert!(
        matches!(missing, Err(DnsError::NotFound { .. })),
        "{missing:?}"
    );

    dns.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = bounded(resolver.xmpp_server_targets("brief.example")).await;
    assert!(
        matches!(expired, Err(DnsError::Lookup { .. })),
        "{expired:?}"
    );
    let missing = bounded(resolver.xmpp_server_targets("missing.example")).await;
    assert!(
        matches!(missing, Err(DnsError::Lookup { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_refused_target_fails_over_to_the_next() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let open = listener.local_addr().expect("address").port();
    let closed = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let dns = Dnsmasq::start(
        300,
        &[
            srv(
                "_xmpp-server",
                "failover.example",
                "down.example",
                closed,
                0,
                0,
            ),
            srv(
                "_xmpp-server",
                "failover.example",
                "up.example",
                open,
                10,
                0,
            ),
            host("down.example", "127.0.0.1"),
            host("up.example", "127.0.0.1"),
        ],
    );
    let targets =
        bounded(resolver(&dns, Duration::from_secs(30)).xmpp_server_targets("failover.example"))
            .await
            .expect("targets");
    assert_eq!(targets[0].host, "down.example");

    let accept = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
    let mut tried = Vec::new();
    let (stream, chosen) = bounded(connect_first(
        &targets,
        Duration::from_secs(2),
        |_, addr| {
            tried.push(addr);
            tokio::net::TcpStream::connect(addr)
        },
    ))
    .await
    .expect("the second target answers");
    assert_eq!(chosen.host, "up.example");
    assert_eq!(
        tried,
        [
            SocketAddr::from(([127, 0, 0, 1], closed)),
            SocketAddr::from(([127, 0, 0, 1], open))
        ]
    );
    let peer = bounded(accept)
        .await
        .expect("accept task")
        .expect("accepted");
    assert_eq!(peer, stream.local_addr().expect("local address"));
}
