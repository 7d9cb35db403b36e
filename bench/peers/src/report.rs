//! `peers report`: pairs each herald measurement with its peer's in the same round and
//! prints a Markdown table of medians, the median ratio herald/peer and its spread. A
//! herald case may refine the peer's ("gRPC → gRPC, 1 in flight" against "1 in flight").

use crate::common::Record;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// JSON-lines result files written by the scenarios' `--out`.
    files: Vec<PathBuf>,
    /// Also print every measurement.
    #[arg(long)]
    raw: bool,
    /// Leave these metrics out of the table (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

/// A readable name for a system in a scenario.
pub fn label(system: &str, scenario: &str) -> String {
    match (system, scenario) {
        ("nats", _) => "NATS (TCP)".into(),
        ("nats-ws", _) => "NATS (WebSocket)".into(),
        ("jetstream", _) => "NATS JetStream (file)".into(),
        ("redis", "fanout" | "idle") => "Redis pub/sub".into(),
        ("redis", "durable") => "Redis XADD, appendfsync always".into(),
        ("redis", "queue") => "Redis Streams, appendfsync always".into(),
        ("mqtt", _) => "Mosquitto (MQTT/TCP)".into(),
        ("mqtt-ws", _) => "Mosquitto (MQTT/WebSocket)".into(),
        ("rabbitmq", _) => "RabbitMQ quorum queue".into(),
        ("node-ws", _) => "Node ws".into(),
        ("pushpin-ws", _) => "Pushpin (WebSocket)".into(),
        ("pushpin-sse", _) => "Pushpin (SSE)".into(),
        (s, _) => s.into(),
    }
}

/// Metrics that count events: summed over rounds, without a ratio.
const COUNTS: [&str; 5] = ["lost", "out of order", "not acked", "duplicates", "errors"];

/// Formats a number with a precision that suits its size.
pub fn fmt(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for f in &a.files {
        for line in std::fs::read_to_string(f)?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            records.push(serde_json::from_str::<Record>(line)?);
        }
    }
    // (scenario, case, peer) in first-seen order → records.
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, String), Vec<&Record>> = BTreeMap::new();
    for r in &records {
        let key = (r.scenario.clone(), r.case.clone(), r.vs.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    println!(
        "| scenario | case | peer | metric | herald | peer | ratio herald/peer | spread | rounds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for key in &order {
        let (scenario, case, peer) = key;
        if peer == "herald" {
            continue;
        }
        let has = |k: &(String, String, String), herald: bool| {
            groups[k].iter().any(|r| (r.system == "herald") == herald)
        };
        let same = |k: &&(String, String, String)| k.0 == *scenario && k.2 == *peer;
        let mut recs = groups[key].clone();
        if !has(key, false) {
            // herald's case refines the peer's: the peer's records come from there.
            if let Some(k) = order
                .iter()
                .filter(same)
                .find(|k| refines(case, &k.1) && has(k, false))
            {
                recs.extend(groups[k].iter().filter(|r| r.system != "herald"));
            }
        } else if !has(key, true)
            && order
                .iter()
                .filter(same)
                .any(|k| refines(&k.1, case) && has(k, true) && !has(k, false))
        {
            // Shown in the rows of herald's cases that refine it.
            continue;
        }
        let mut names: Vec<&str> = Vec::new();
        for r in &recs {
            for (k, _) in &r.metrics {
                if !names.contains(&k.as_str()) {
                    names.push(k);
                }
            }
        }
        for name in names.into_iter().filter(|n| !a.skip.iter().any(|s| s == n)) {
            let value = |r: &Record| r.metrics.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
            let mut h = Vec::new();
            let mut p = Vec::new();
            let mut ratios = Vec::new();
            let rounds: std::collections::BTreeSet<u32> = recs.iter().map(|r| r.round).collect();
            for round in &rounds {
                let hv = recs
                    .iter()
                    .find(|r| r.round == *round && r.system == "herald")
                    .and_then(|r| value(r));
                let pv = recs
                    .iter()
                    .find(|r| r.round == *round && r.system != "herald")
                    .and_then(|r| value(r));
                if let Some(x) = hv {
                    h.push(x);
                }
                if let Some(y) = pv {
                    p.push(y);
                }
                if let (Some(x), Some(y)) = (hv, pv)
                    && y != 0.0
                {
                    ratios.push(x / y);
                }
            }
            if COUNTS.contains(&name) {
                let sum = |v: &[f64]| fmt(v.iter().sum());
                println!(
                    "| {scenario} | {case} | {} | {name} (total) | {} | {} | — | — | {} |",
                    label(peer, scenario),
                    sum(&h),
                    sum(&p),
                    rounds.len(),
                );
                continue;
            }
            let paired = ratios.len();
            let show = |m: Option<f64>| m.map(fmt).unwrap_or_else(|| "—".into());
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            let ratio = median(&mut ratios);
            let spread = if paired > 0 {
                format!("{} – {}", fmt_ratio(lo), fmt_ratio(hi))
            } else {
                "—".into()
            };
            println!(
                "| {scenario} | {case} | {} | {name} | {} | {} | {} | {spread} | {} |",
                label(peer, scenario),
                show(median(&mut h)),
                show(median(&mut p)),
                ratio.map(fmt_ratio).unwrap_or_else(|| "—".into()),
                rounds.len(),
            );
        }
    }
    if a.raw {
        println!();
        println!("| scenario | case | system | vs | round | metrics |");
        println!("|---|---|---|---|---|---|");
        for r in &records {
            let m: Vec<String> = r
                .metrics
                .iter()
                .map(|(k, v)| format!("{k} {}", fmt(*v)))
                .collect();
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.scenario,
                r.case,
                r.system,
                r.vs,
                r.round,
                m.join("; ")
            );
        }
    }
    Ok(())
}

/// Whether herald's case refines a peer's by naming its own variant first: herald's
/// "gRPC → gRPC, 1 in flight" pairs with the peer's "1 in flight" (rpc).
fn refines(herald_case: &str, peer_case: &str) -> bool {
    herald_case
        .strip_suffix(peer_case)
        .is_some_and(|variant| variant.len() > 2 && variant.ends_with(", "))
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}
