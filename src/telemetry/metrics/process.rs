//! The standard `process_*` families, with the names, types and meanings Prometheus' own client
//! libraries give them, read from `/proc` at scrape time. Linux only: elsewhere they are absent,
//! as is any one whose file cannot be read.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What one scrape read; `None` where it could not.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Process {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    start_time_seconds: Option<f64>,
}

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`): 100 on every Linux architecture in
/// use, and the value Prometheus' Go `procfs` assumes too.
const USER_HZ: f64 = 100.0;

#[cfg(target_os = "linux")]
pub(super) fn read() -> Process {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let stat = read("/proc/self/stat").and_then(|s| Stat::parse(&s));
    let status = read("/proc/self/status");
    let kib = |key: &str| {
        status
            .as_deref()
            .and_then(|s| status_kib(s, key))
            .map(|k| k * 1024)
    };
    let boot = read("/proc/stat").and_then(|s| boot_time(&s));
    Process {
        cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / USER_HZ),
        resident_bytes: kib("VmRSS:"),
        virtual_bytes: kib("VmSize:"),
        // As Prometheus' clients count them: the entries of /proc/self/fd.
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64),
        max_fds: read("/proc/self/limits").and_then(|s| max_open_files(&s)),
        start_time_seconds: stat
            .zip(boot)
            .map(|(s, boot)| boot as f64 + s.starttime as f64 / USER_HZ),
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn read() -> Process {
    Process::default()
}

/// Writes the families that have a value.
pub(super) fn encode(p: &Process, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    if let Some(seconds) = p.cpu_seconds {
        // A counter: the encoder names it process_cpu_seconds_total.
        let family = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(seconds).encode(family)?;
    }
    let gauges: [(&str, &str, Option<f64>); 5] = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            p.resident_bytes.map(|v| v as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            p.virtual_bytes.map(|v| v as f64),
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            p.open_fds.map(|v| v as f64),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            p.max_fds.map(|v| v as f64),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(family)?;
        }
    }
    Ok(())
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    /// Since boot.
    starttime: u64,
}

impl Stat {
    fn parse(text: &str) -> Option<Stat> {
        // The command (field 2) is in parentheses and may hold spaces and parentheses itself:
        // the fields that follow start after the last `)`, with field 3 (state) first.
        let (_, rest) = text.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
        })
    }
}

/// A `Key:   123 kB` line of `/proc/self/status`, in KiB.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix(key))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The boot time (`btime`, Unix seconds) from `/proc/stat`.
fn boot_time(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("btime "))?;
    line.trim().parse().ok()
}

/// The soft limit of open files from `/proc/self/limits` (`None` when unlimited).
fn max_open_files(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_proc_writes() {
        let stat = "25562 (a (b) c) R 25557 25557 7743 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 \
                    205272 3133440 393 18446744073709551615 0";
        assert_eq!(
            Stat::parse(stat),
            Some(Stat {
                utime: 7,
                stime: 3,
                starttime: 205272
            })
        );
        assert_eq!(Stat::parse("1 (x) R 2"), None);
        let status = "Name:\tcat\nVmSize:\t    3892 kB\nVmRSS:\t    1928 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1928));
        assert_eq!(status_kib(status, "VmSize:"), Some(3892));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1795800731\n"),
            Some(1795800731)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            20000                524288               files     \n";
        assert_eq!(max_open_files(limits), Some(20000));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let p = read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = p.start_time_seconds.expect("start time");
        // Started before now (btime is whole seconds), and not days ago.
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started}"
        );
        assert!(p.cpu_seconds.is_some_and(|s| s >= 0.0));
        assert!(p.resident_bytes.is_some_and(|b| b > 0));
        assert!(p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds.is_some_and(|n| n >= 3), "stdin, stdout, stderr");
        assert!(p.max_fds.is_some() && p.max_fds >= p.open_fds);
    }
}
