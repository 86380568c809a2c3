//! The open-files limit: raised to the hard limit at start, and the connection cap kept
//! below it, so that accepting never fails for lack of descriptors while the database,
//! listeners and federation still need some.

/// Descriptors kept for everything that is not a client connection.
const RESERVED_FDS: u64 = 256;

/// Raise the soft open-files limit to the hard one. Returns the soft limit in effect
/// (`None` when unlimited or unknown).
pub fn raise() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let current = getrlimit(Resource::Nofile);
    if current.current != current.maximum {
        let raised = Rlimit {
            current: current.maximum,
            maximum: current.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(
                from = ?current.current,
                to = ?current.maximum,
                "raised the open-files limit"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The connection cap that fits under `fd_limit`.
pub fn clamp_connections(configured: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return configured;
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    configured.min(room.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(clamp_connections(50_000, Some(20_000)), 19_744);
        assert_eq!(clamp_connections(300, Some(20_000)), 300);
        assert_eq!(clamp_connections(300, None), 300);
        assert_eq!(clamp_connections(300, Some(10)), 1);
    }

    #[test]
    fn raising_reports_a_limit() {
        // The process already runs with some limit; raising keeps or increases it.
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let after = raise();
        assert!(after >= before || after.is_none());
    }
}
