//! The admin commands of the `herald` binary that go beyond account management, the
//! ones operators coming from `prosodyctl` and `ejabberdctl` look for: server status,
//! session listing and kicking (through the admin API of the running server), backup
//! and restore, XEP-0227 export and import, and certificate tooling; and the
//! federation tools: `explain` (why a stanza goes where it goes), `dns-records`
//! (the SRV records to publish) and `federation check` (can we reach a domain).

pub mod accounts;
pub mod backup;
pub mod cert;
pub mod dns_records;
pub mod explain;
pub mod federation_check;
pub mod sessions;
pub mod status;
pub mod xep0227;

/// `1 KiB`, `3.4 MiB`...
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `2d 3h 4m 5s`, leading zero units left out.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(3725), "1h 2m 5s");
        assert_eq!(human_duration(90_061), "1d 1h 1m 1s");
    }
}
