//! Failover across discovered candidates: the first address that connects wins.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use super::dns::Candidate;

/// Why one attempt did not succeed.
#[derive(Debug)]
pub enum AttemptError<E> {
    /// The connect function failed: TCP, TLS or anything else it reports.
    Failed(E),
    /// It did not finish within the attempt's time.
    TimedOut(Duration),
}

impl<E: fmt::Display> fmt::Display for AttemptError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(error) => error.fmt(f),
            Self::TimedOut(limit) => write!(f, "no connection within {limit:?}"),
        }
    }
}

/// One address that was tried and failed.
#[derive(Debug)]
pub struct FailedAttempt<E> {
    pub candidate: Candidate,
    pub addr: SocketAddr,
    pub error: AttemptError<E>,
}

impl<E: fmt::Display> fmt::Display for FailedAttempt<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.candidate.direct_tls {
            "direct TLS"
        } else {
            "STARTTLS"
        };
        write!(
            f,
            "{}:{} ({kind}) at {}: {}",
            self.candidate.host, self.candidate.port, self.addr, self.error
        )
    }
}

/// Tries every address of every candidate, in order, until `connect` succeeds, giving
/// each attempt at most `attempt_timeout`. `connect` does as much as must succeed before
/// the target counts as reached (TCP, then TLS or STARTTLS), so a TLS failure moves on to
/// the next address like a refused connection does. The whole run takes at most
/// `attempt_timeout` times the number of addresses.
///
/// Returns what `connect` returned with the candidate that gave it, or every failure in
/// the order tried (empty when there was no address at all).
pub async fn connect_first<T, E, F, Fut>(
    candidates: &[Candidate],
    attempt_timeout: Duration,
    mut connect: F,
) -> Result<(T, Candidate), Vec<FailedAttempt<E>>>
where
    F: FnMut(&Candidate, SocketAddr) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = Vec::new();
    for candidate in candidates {
        for addr in candidate.socket_addrs() {
            let error = match tokio::time::timeout(attempt_timeout, connect(candidate, addr)).await
            {
                Ok(Ok(connected)) => return Ok((connected, candidate.clone())),
                Ok(Err(error)) => AttemptError::Failed(error),
                Err(_) => AttemptError::TimedOut(attempt_timeout),
            };
            tracing::debug!(host = %candidate.host, %addr, "s2s connection attempt failed");
            failures.push(FailedAttempt {
                candidate: candidate.clone(),
                addr,
                error,
            });
        }
    }
    Err(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn candidate(host: &str, port: u16, addrs: &[&str]) -> Candidate {
        Candidate {
            host: host.into(),
            port,
            direct_tls: false,
            addrs: addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
        }
    }

    #[tokio::test]
    async fn every_address_is_tried_in_order_until_one_succeeds() {
        let candidates = [
            candidate("a.example", 1, &["::1", "127.0.0.1"]),
            candidate("b.example", 2, &["127.0.0.2"]),
            candidate("c.example", 3, &["127.0.0.3"]),
        ];
        let mut tried = Vec::new();
        let result = connect_first(&candidates, Duration::from_secs(1), |c, addr| {
            tried.push(addr);
            let ok = c.host == "b.example";
            async move {
                if ok {
                    Ok(addr)
                } else {
                    Err("refused")
                }
            }
        })
        .await;
        let (addr, chosen) = result.expect("b connects");
        assert_eq!(addr, "127.0.0.2:2".parse().unwrap());
        assert_eq!(chosen.host, "b.example");
        let expected: Vec<SocketAddr> = ["[::1]:1", "127.0.0.1:1", "127.0.0.2:2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(tried, expected);
    }

    #[tokio::test]
    async fn a_hanging_attempt_times_out_and_the_next_is_tried() {
        let candidates = [
            candidate("slow.example", 1, &["127.0.0.1"]),
            candidate("fast.example", 2, &["127.0.0.1"]),
        ];
        let result = connect_first(&candidates, Duration::from_millis(50), |c, _| {
            let slow = c.host == "slow.example";
            async move {
                if slow {
                    std::future::pending::<()>().await;
                }
                Ok::<_, &str>(())
            }
        })
        .await;
        let ((), chosen) = result.expect("fast connects");
        assert_eq!(chosen.host, "fast.example");
    }

    #[tokio::test]
    async fn all_failures_are_reported_in_order() {
        let candidates = [
            candidate("a.example", 1, &["127.0.0.1"]),
            candidate("none.example", 2, &[]),
            candidate("b.example", 3, &["127.0.0.1"]),
        ];
        let failures = connect_first(&candidates, Duration::from_secs(1), |c, _| {
            let message = format!("TLS failure at {}", c.host);
            async move { Err::<(), _>(message) }
        })
        .await
        .expect_err("nothing connects");
        let lines: Vec<String> = failures.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "a.example:1 (STARTTLS) at 127.0.0.1:1: TLS failure at a.example",
                "b.example:3 (STARTTLS) at 127.0.0.1:3: TLS failure at b.example",
            ]
        );
        let none =
            connect_first::<(), (), _, _>(&[], Duration::from_secs(1), |_, _| async { Ok(()) })
                .await;
        assert!(matches!(none, Err(f) if f.is_empty()));
    }
}
