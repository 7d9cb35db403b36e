//! A closed loop of lanes, each with one operation in flight at a time: warm-up, then a
//! measured window with the server's CPU sampled at both ends (durable publish, rpc).

use crate::common::Target;
use crate::procfs::Sample;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One lane's operation.
pub trait Op: Send + 'static {
    /// Runs the operation once; an error counts (and pauses the lane 10 ms).
    fn once(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What the measured window saw.
pub struct Measured {
    /// Latencies in µs.
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    /// Seconds.
    pub elapsed: f64,
    pub before: Sample,
    pub after: Sample,
}

impl Measured {
    /// The server's CPU µs per successful operation.
    pub fn cpu_per_op(&self) -> f64 {
        crate::procfs::cpu_per(self.before, self.after, self.ok)
    }
}

/// Runs every lane until the window (after `warmup` seconds, `duration` long) closes.
pub async fn closed_loop<L: Op>(
    t: &Target,
    lanes: Vec<L>,
    warmup: f64,
    duration: f64,
) -> anyhow::Result<Measured> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for mut lane in lanes {
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut ok, mut errors) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let r = lane.once().await;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match r {
                    Ok(()) => {
                        ok += 1;
                        let _ = hist.record(start.elapsed().as_micros() as u64);
                    }
                    Err(_) => {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (hist, ok, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let before = t.sample();
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let after = t.sample();
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        let (h, o, e) = task.await?;
        hist.add(h)?;
        ok += o;
        errors += e;
    }
    Ok(Measured {
        hist,
        ok,
        errors,
        elapsed,
        before,
        after,
    })
}
