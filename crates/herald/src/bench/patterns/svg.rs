//! The trade-off chart as a self-contained SVG, written by hand (text is left to the
//! viewer's sans-serif font, so nothing here needs fonts): stacked panels of grouped bars,
//! one group per pattern.

use super::Measured;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
/// Bar area height of one panel, and the space around it (title above, labels below).
const PLOT: f64 = 170.0;
const PANEL: f64 = PLOT + 80.0;
const COLORS: [&str; 2] = ["#4e79a7", "#e15759"];

/// One series of a panel: a name for the legend and a value per pattern.
struct Series<'a> {
    name: &'a str,
    values: Vec<f64>,
}

#[derive(Clone, Copy)]
enum Scale {
    Log,
    Linear,
}

/// The chart for `rows`, with `subtitle` (the workload) under the title.
pub fn chart(rows: &[Measured], subtitle: &str) -> String {
    let labels: Vec<&str> = rows.iter().map(|r| r.pattern.as_str()).collect();
    let per = |f: &dyn Fn(&Measured) -> u64| -> Vec<f64> {
        rows.iter()
            .map(|r| f(r) as f64 / r.expected.max(1) as f64)
            .collect()
    };
    let us =
        |f: &dyn Fn(&Measured) -> u64| -> Vec<f64> { rows.iter().map(|r| f(r) as f64).collect() };
    let height = 60.0 + 4.0 * PANEL;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="26" font-size="18" font-weight="bold">herald: one workload, every delivery pattern</text>
<text x="{LEFT}" y="46" font-size="12" fill="#555">{}</text>"##,
        esc(subtitle)
    );
    let latency = [
        Series {
            name: "p50",
            values: us(&|r| r.p50_us),
        },
        Series {
            name: "p99",
            values: us(&|r| r.p99_us),
        },
    ];
    panel(
        &mut s,
        60.0,
        "Delivery latency, publish → client (log scale)",
        &labels,
        &latency,
        Scale::Log,
        duration,
    );
    let requests = [Series {
        name: "requests",
        values: per(&|r| r.requests),
    }];
    panel(
        &mut s,
        60.0 + PANEL,
        "HTTP requests per delivered message (streams: one request per client, before the window)",
        &labels,
        &requests,
        Scale::Linear,
        |v| format!("{v:.2}"),
    );
    let bytes = [Series {
        name: "bytes",
        values: per(&|r| r.bytes),
    }];
    panel(
        &mut s,
        60.0 + 2.0 * PANEL,
        "Bytes on the wire per delivered message (both directions; webhooks: at the receiver)",
        &labels,
        &bytes,
        Scale::Linear,
        |v| format!("{v:.0} B"),
    );
    let cpu = [Series {
        name: "CPU",
        values: rows
            .iter()
            .map(|r| r.server_cpu_us_per_msg.unwrap_or(0.0))
            .collect(),
    }];
    panel(
        &mut s,
        60.0 + 3.0 * PANEL,
        "Server CPU per delivered message (user + system, publishes included)",
        &labels,
        &cpu,
        Scale::Linear,
        |v| format!("{v:.1} µs"),
    );
    s.push_str("</svg>\n");
    s
}

/// Draws one panel whose title baseline is at `top`.
fn panel(
    s: &mut String,
    top: f64,
    title: &str,
    labels: &[&str],
    series: &[Series],
    scale: Scale,
    fmt: fn(f64) -> String,
) {
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (top + 20.0, top + 20.0 + PLOT);
    let _ = writeln!(
        s,
        r#"<text x="{x0}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        top + 8.0,
        esc(title)
    );
    let all = series.iter().flat_map(|se| se.values.iter().copied());
    let max = all.clone().fold(0.0_f64, f64::max);
    let min = all.filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    // Maps a value to (0 = bottom … 1 = top) and lists the grid values.
    let (pos, ticks): (Box<dyn Fn(f64) -> f64>, Vec<f64>) = match scale {
        Scale::Log => {
            let lo = if min.is_finite() {
                min.log10().floor()
            } else {
                0.0
            };
            let hi = max.log10().ceil().max(lo + 1.0);
            let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
            let f = move |v: f64| {
                if v > 0.0 {
                    ((v.log10() - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            };
            (Box::new(f), ticks)
        }
        Scale::Linear => {
            // Headroom above the tallest bar for its label.
            let hi = nice(max * 1.15);
            let ticks = (0..=4).map(|i| hi * i as f64 / 4.0).collect();
            (Box::new(move |v: f64| (v / hi).clamp(0.0, 1.0)), ticks)
        }
    };
    let y = |p: f64| y1 - p * (y1 - y0);
    for t in ticks {
        let ty = y(pos(t));
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{ty:.1}" x2="{x1}" y2="{ty:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            x0 - 6.0,
            ty + 4.0,
            esc(&fmt(t))
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#333"/>"##
    );
    let group = (x1 - x0) / labels.len().max(1) as f64;
    let bar = group * 0.7 / series.len().max(1) as f64;
    for (i, label) in labels.iter().enumerate() {
        let gx = x0 + i as f64 * group;
        for (j, se) in series.iter().enumerate() {
            let v = se.values.get(i).copied().unwrap_or(0.0);
            let bx = gx + group * 0.15 + j as f64 * bar;
            let by = y(pos(v));
            let _ = writeln!(
                s,
                r#"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                bar - 2.0,
                y1 - by,
                COLORS[j % COLORS.len()],
                esc(label),
                se.name,
                esc(&fmt(v)),
                bx + bar / 2.0 - 1.0,
                by - 3.0,
                esc(&fmt(v))
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            gx + group / 2.0,
            y1 + 18.0,
            esc(label)
        );
    }
    if series.len() > 1 {
        for (j, se) in series.iter().enumerate() {
            let lx = x1 - 140.0 + j as f64 * 70.0;
            let _ = writeln!(
                s,
                r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
                top - 2.0,
                COLORS[j % COLORS.len()],
                lx + 16.0,
                top + 8.0,
                se.name
            );
        }
    }
}

/// The smallest round axis top (1, 1.2, 2, 3, 4, 6, 8 × 10^k: quarters stay round) at or
/// above `v` (1 for nothing).
fn nice(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * base)
}

/// Microseconds, compactly: 250 µs, 1.25 ms, 2.5 s.
fn duration(us: f64) -> String {
    let (v, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    let digits = if v >= 100.0 || unit == "µs" {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut n = format!("{v:.digits$}");
    if n.contains('.') {
        n = n.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{n} {unit}")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
