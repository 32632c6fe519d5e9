//! Memory figures of this process from `/proc/self/status` (Linux): the peak resident set
//! (`VmHWM`) for benchmark reports and the current one (`VmRSS`) for the benchmark's memory
//! budget. Returns `None` where the file or the field is missing; never fails a run.

/// A `kB` field of `/proc/self/status`, in KiB.
fn status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_field(&status, field)
}

fn parse_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set size so far, KiB.
pub fn peak_rss_kib() -> Option<u64> {
    status_field("VmHWM")
}

/// Current resident set size, KiB.
pub fn rss_kib() -> Option<u64> {
    status_field("VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_in_kib() {
        let text = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t 42 kB\n";
        assert_eq!(parse_field(text, "VmHWM"), Some(123_456));
        assert_eq!(parse_field(text, "VmRSS"), Some(42));
        assert_eq!(parse_field(text, "VmSwap"), None);
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(peak_rss_kib().is_some_and(|k| k > 0));
            assert!(rss_kib().is_some_and(|k| k > 0));
        }
    }
}
