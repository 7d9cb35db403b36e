//! Results as a Markdown table or JSON.

use serde::Serialize;

/// One benchmark run's results.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub machine: String,
    pub parameters: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            machine: super::proc::machine(),
            parameters: Vec::new(),
            columns: Vec::new(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn param(&mut self, k: &str, v: impl ToString) {
        self.parameters.push((k.to_owned(), v.to_string()));
    }

    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
            return Ok(());
        }
        println!("## herald bench {}\n", self.scenario);
        println!("Machine: {}", self.machine);
        let params: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("Parameters: {}\n", params.join(", "));
        println!("| {} |", self.columns.join(" | "));
        println!("|{}", "---|".repeat(self.columns.len()));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        for n in &self.notes {
            println!("\n{n}");
        }
        Ok(())
    }
}

/// Formats a rate with thousands separators.
pub fn rate(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats microseconds as µs or ms.
pub fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// Server CPU per unit of work and RSS between two samples ("n/a" without a PID).
pub fn cpu_rss(
    before: Option<super::proc::ProcSample>,
    after: Option<super::proc::ProcSample>,
    units: u64,
) -> (String, String) {
    match (before, after) {
        (Some(b), Some(a)) => {
            let per = (a.cpu - b.cpu).as_secs_f64() * 1e6 / units.max(1) as f64;
            let cpu = if per < 10.0 {
                format!("{per:.2} µs")
            } else {
                format!("{per:.1} µs")
            };
            (cpu, format!("{:.1} MiB", a.rss as f64 / 1048576.0))
        }
        _ => ("n/a".into(), "n/a".into()),
    }
}
