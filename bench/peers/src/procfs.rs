//! CPU time and resident memory of the server process(es) under test, from `/proc`.

use std::time::Duration;

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every mainstream arch.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system, all threads) and RSS of a set of processes at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub cpu: Duration,
    pub rss: u64,
}

/// Sums `/proc/{pid}/stat` CPU times and `VmRSS` over `pids`; missing processes count 0.
pub fn sample(pids: &[u32]) -> Sample {
    let mut out = Sample::default();
    for &pid in pids {
        if let Some(s) = one(pid) {
            out.cpu += s.cpu;
            out.rss += s.rss;
        }
    }
    out
}

fn one(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticked = Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / TICKS_PER_SEC);
    // utime + stime come in 10 ms ticks: too coarse for short windows. The threads'
    // schedstat run times are in nanoseconds; they miss threads that exited, so the tick
    // count wins when it is clearly larger.
    let cpu = match on_cpu(pid) {
        Some(ns) if ticked <= ns + Duration::from_millis(20) + ns / 5 => ns,
        _ => ticked,
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    Some(Sample { cpu, rss })
}

/// Nanosecond on-CPU time of the live threads of `pid` (`/proc/pid/task/*/schedstat`).
fn on_cpu(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        let Ok(s) = std::fs::read_to_string(path) else {
            continue;
        };
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// CPU microseconds per unit of work between two samples.
pub fn cpu_per(before: Sample, after: Sample, units: u64) -> f64 {
    after.cpu.saturating_sub(before.cpu).as_secs_f64() * 1e6 / units.max(1) as f64
}

/// One line describing this machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kb = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{cpu}, nproc {cores}, {:.1} GiB RAM, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}
