//! A consumer group's state: which positions are done, which are leased to whom until
//! when, which wait for redelivery. Pure logic; the caller supplies the time and does the
//! I/O.
//!
//! Positions are log positions of the group's topic. `floor` is the acked position: every
//! message of the topic at or below it is done (acked or dead-lettered). `next` is the
//! highest position fetched into the group. Between them, a message is done, leased,
//! ready for redelivery, or delayed (nacked with a delay). Only `floor`, the done
//! positions above it, the dead-lettered positions and the attempt counts are persisted;
//! after a restart everything above `floor` that is not done is fetched again, so nothing
//! unacked is lost and nothing acked is redelivered.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use tokio::time::{Duration, Instant};

/// A group's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    /// Default lease length.
    pub lease_ms: u64,
    /// Deliveries of one message before it is dead-lettered.
    pub max_attempts: u32,
    /// Topic dead letters go to.
    pub dead_letter: String,
}

/// One leased delivery.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub seq: u64,
    pub attempt: u32,
    pub deadline: Instant,
    /// The consumer holding it (a WebSocket or gRPC stream), if any.
    pub holder: Option<u64>,
}

/// Why an ack, nack or extend was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The receipt was never issued, or belongs to a delivery already settled.
    Unknown,
    /// The lease ran out; the message is (or will be) redelivered with a new receipt.
    Expired,
}

/// The durable part of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Persisted {
    pub settings: GroupSettings,
    pub floor: u64,
    pub done: Vec<u64>,
    pub dead: Vec<u64>,
    /// Positions at or below `floor` brought back by a redrive.
    pub redriven: Vec<u64>,
    pub attempts: Vec<(u64, u32)>,
    pub dead_lettered: u64,
}

#[derive(Debug)]
pub(crate) struct GroupState {
    pub settings: GroupSettings,
    pub floor: u64,
    pub next: u64,
    /// Done positions above `floor`.
    done: BTreeSet<u64>,
    /// Fetched positions not yet done (leased, ready or delayed).
    outstanding: BTreeSet<u64>,
    /// Dead-lettered positions, for redrive.
    pub dead: BTreeSet<u64>,
    /// Redriven positions at or below `floor` still to deliver.
    redriven: BTreeSet<u64>,
    /// Deliveries so far, for positions not done.
    attempts: HashMap<u64, u32>,
    /// The last error reported for positions not done (nack reasons, expiries).
    errors: HashMap<u64, String>,
    pub leases: HashMap<String, Lease>,
    by_deadline: BTreeMap<(Instant, String), ()>,
    /// Receipts whose lease expired recently, so a late settle is told `Expired`.
    expired: HashSet<String>,
    expired_order: VecDeque<String>,
    /// Ready for delivery now; oldest position first, so redeliveries come before newer
    /// messages.
    ready: BTreeSet<u64>,
    /// Nacked with a delay: ready at the instant.
    delayed: BTreeMap<(Instant, u64), ()>,
    pub dead_lettered: u64,
    receipt_prefix: u32,
    receipt_seq: u64,
    /// Bumped on every change that must be persisted.
    pub version: u64,
}

/// What to do with a message whose delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Deliver it again.
    Retry,
    /// It used up its attempts: dead-letter it with this last error.
    DeadLetter {
        seq: u64,
        attempts: u32,
        error: String,
    },
}

impl GroupState {
    pub(crate) fn new(settings: GroupSettings, floor: u64) -> GroupState {
        GroupState {
            settings,
            floor,
            next: floor,
            done: BTreeSet::new(),
            outstanding: BTreeSet::new(),
            dead: BTreeSet::new(),
            redriven: BTreeSet::new(),
            attempts: HashMap::new(),
            errors: HashMap::new(),
            leases: HashMap::new(),
            by_deadline: BTreeMap::new(),
            expired: HashSet::new(),
            expired_order: VecDeque::new(),
            ready: BTreeSet::new(),
            delayed: BTreeMap::new(),
            dead_lettered: 0,
            receipt_prefix: rand::random(),
            receipt_seq: 0,
            version: 1,
        }
    }

    pub(crate) fn restore(p: Persisted) -> GroupState {
        let mut s = GroupState::new(p.settings, p.floor);
        s.done = p.done.into_iter().collect();
        s.dead = p.dead.into_iter().collect();
        s.redriven = p.redriven.into_iter().collect();
        s.ready.extend(s.redriven.iter().copied());
        s.outstanding.extend(s.redriven.iter().copied());
        s.attempts = p.attempts.into_iter().collect();
        s.dead_lettered = p.dead_lettered;
        s
    }

    pub(crate) fn persisted(&self) -> Persisted {
        let mut attempts: Vec<(u64, u32)> = self.attempts.iter().map(|(k, v)| (*k, *v)).collect();
        attempts.sort_unstable();
        Persisted {
            settings: self.settings.clone(),
            floor: self.floor,
            done: self.done.iter().copied().collect(),
            dead: self.dead.iter().copied().collect(),
            redriven: self.redriven.iter().copied().collect(),
            attempts,
            dead_lettered: self.dead_lettered,
        }
    }

    /// Adds freshly fetched positions (above `next`) as ready.
    pub(crate) fn fetched(&mut self, seqs: impl IntoIterator<Item = u64>, through: u64) {
        for seq in seqs {
            if seq > self.next && !self.done.contains(&seq) && self.outstanding.insert(seq) {
                self.ready.insert(seq);
            }
        }
        self.next = self.next.max(through);
        self.advance_floor();
    }

    /// Takes up to `max` ready positions and leases them. Returns (receipt, seq,
    /// attempt) per lease, plus positions that ran out of attempts on the way (to be
    /// dead-lettered by the caller).
    pub(crate) fn lease(
        &mut self,
        max: usize,
        lease: Duration,
        holder: Option<u64>,
        now: Instant,
    ) -> (Vec<(String, u64, u32)>, Vec<Failed>) {
        let mut out = Vec::new();
        let mut exhausted = Vec::new();
        while out.len() < max {
            let Some(seq) = self.ready.pop_first() else {
                break;
            };
            let attempt = self.attempts.get(&seq).copied().unwrap_or(0) + 1;
            if attempt > self.settings.max_attempts {
                exhausted.push(self.fail_for_good(seq));
                continue;
            }
            self.attempts.insert(seq, attempt);
            self.receipt_seq += 1;
            let receipt = format!("{:08x}{:x}", self.receipt_prefix, self.receipt_seq);
            let deadline = now + lease;
            self.by_deadline.insert((deadline, receipt.clone()), ());
            self.leases.insert(
                receipt.clone(),
                Lease {
                    seq,
                    attempt,
                    deadline,
                    holder,
                },
            );
            out.push((receipt, seq, attempt));
        }
        if !out.is_empty() {
            self.version += 1;
        }
        (out, exhausted)
    }

    fn take_lease(&mut self, receipt: &str, now: Instant) -> Result<Lease, Refusal> {
        let Some(lease) = self.leases.get(receipt) else {
            return Err(if self.expired.contains(receipt) {
                Refusal::Expired
            } else {
                Refusal::Unknown
            });
        };
        if lease.deadline <= now {
            return Err(Refusal::Expired);
        }
        let lease = self.leases.remove(receipt).ok_or(Refusal::Unknown)?;
        self.by_deadline
            .remove(&(lease.deadline, receipt.to_owned()));
        Ok(lease)
    }

    /// Settles a delivery as done.
    pub(crate) fn ack(&mut self, receipt: &str, now: Instant) -> Result<u64, Refusal> {
        let lease = self.take_lease(receipt, now)?;
        self.settle(lease.seq);
        Ok(lease.seq)
    }

    /// Marks a position done (acked or dead-lettered).
    fn settle(&mut self, seq: u64) {
        self.outstanding.remove(&seq);
        self.attempts.remove(&seq);
        self.errors.remove(&seq);
        if !self.redriven.remove(&seq) {
            self.done.insert(seq);
        }
        self.advance_floor();
        self.version += 1;
    }

    fn advance_floor(&mut self) {
        let limit = self.outstanding.first().map_or(self.next, |&o| o - 1);
        if limit > self.floor {
            self.floor = limit;
            self.done = self.done.split_off(&(limit + 1));
        }
    }

    /// Returns a delivery for redelivery (after `delay`), or dead-letters it when it used
    /// up its attempts.
    pub(crate) fn nack(
        &mut self,
        receipt: &str,
        delay: Duration,
        error: Option<String>,
        now: Instant,
    ) -> Result<Failed, Refusal> {
        let lease = self.take_lease(receipt, now)?;
        Ok(self.failed(
            lease.seq,
            delay,
            error.unwrap_or_else(|| "nacked".into()),
            now,
        ))
    }

    fn failed(&mut self, seq: u64, delay: Duration, error: String, now: Instant) -> Failed {
        self.version += 1;
        let attempts = self.attempts.get(&seq).copied().unwrap_or(0);
        if attempts >= self.settings.max_attempts {
            self.errors.insert(seq, error);
            return self.fail_for_good(seq);
        }
        self.errors.insert(seq, error);
        if delay.is_zero() {
            self.ready.insert(seq);
        } else {
            self.delayed.insert((now + delay, seq), ());
        }
        Failed::Retry
    }

    fn fail_for_good(&mut self, seq: u64) -> Failed {
        let attempts = self.attempts.get(&seq).copied().unwrap_or(0);
        let error = self
            .errors
            .get(&seq)
            .cloned()
            .unwrap_or_else(|| "attempts exhausted".into());
        self.dead.insert(seq);
        self.dead_lettered += 1;
        self.settle(seq);
        Failed::DeadLetter {
            seq,
            attempts,
            error,
        }
    }

    /// Extends a lease to `lease` from now.
    pub(crate) fn extend(
        &mut self,
        receipt: &str,
        lease: Duration,
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut l = self.take_lease(receipt, now)?;
        l.deadline = now + lease;
        self.by_deadline
            .insert((l.deadline, receipt.to_owned()), ());
        self.leases.insert(receipt.to_owned(), l);
        Ok(())
    }

    /// Expires due leases and releases due delays. Returns positions that used up their
    /// attempts.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Failed> {
        let mut out = Vec::new();
        while let Some((&(deadline, ref receipt), _)) = self.by_deadline.first_key_value() {
            if deadline > now {
                break;
            }
            let receipt = receipt.clone();
            self.by_deadline.remove(&(deadline, receipt.clone()));
            self.remember_expired(&receipt);
            if let Some(lease) = self.leases.remove(&receipt) {
                let f = self.failed(
                    lease.seq,
                    Duration::ZERO,
                    format!("lease expired after attempt {}", lease.attempt),
                    now,
                );
                if f != Failed::Retry {
                    out.push(f);
                }
            }
        }
        while let Some((&(at, seq), _)) = self.delayed.first_key_value() {
            if at > now {
                break;
            }
            self.delayed.remove(&(at, seq));
            self.ready.insert(seq);
        }
        out
    }

    fn remember_expired(&mut self, receipt: &str) {
        const KEEP: usize = 10_000;
        if self.expired.insert(receipt.to_owned()) {
            self.expired_order.push_back(receipt.to_owned());
            if self.expired_order.len() > KEEP
                && let Some(old) = self.expired_order.pop_front()
            {
                self.expired.remove(&old);
            }
        }
    }

    /// Releases every lease of `holder` for immediate redelivery (the holder went away).
    pub(crate) fn release(&mut self, holder: u64, now: Instant) -> Vec<Failed> {
        let receipts: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, l)| l.holder == Some(holder))
            .map(|(r, _)| r.clone())
            .collect();
        let mut out = Vec::new();
        for r in receipts {
            if let Some(l) = self.leases.remove(&r) {
                self.by_deadline.remove(&(l.deadline, r));
                let f = self.failed(l.seq, Duration::ZERO, "consumer disconnected".into(), now);
                if f != Failed::Retry {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Brings every dead-lettered position back for delivery with fresh attempts.
    pub(crate) fn redrive(&mut self) -> usize {
        let dead = std::mem::take(&mut self.dead);
        for &seq in &dead {
            if seq <= self.floor {
                self.redriven.insert(seq);
            } else {
                self.done.remove(&seq);
            }
            self.outstanding.insert(seq);
            self.ready.insert(seq);
        }
        self.dead_lettered = self.dead_lettered.saturating_sub(dead.len() as u64);
        self.version += 1;
        dead.len()
    }

    /// When the next lease expires or delay ends.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let lease = self.by_deadline.first_key_value().map(|(k, _)| k.0);
        let delay = self.delayed.first_key_value().map(|(k, _)| k.0);
        match (lease, delay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(crate) fn done_above_floor(&self) -> usize {
        self.done.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.leases.len()
    }

    /// Forgets positions that storage no longer has (removed by retention or deletion).
    pub(crate) fn forget(&mut self, seq: u64) {
        self.ready.remove(&seq);
        self.settle(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max: u32) -> GroupSettings {
        GroupSettings {
            lease_ms: 1000,
            max_attempts: max,
            dead_letter: "t.dlq".into(),
        }
    }

    #[test]
    fn leases_acks_and_floor() {
        let now = Instant::now();
        let mut s = GroupState::new(settings(3), 0);
        s.fetched([2, 5, 9], 10);
        let (got, ex) = s.lease(2, Duration::from_secs(1), None, now);
        assert!(ex.is_empty());
        assert_eq!(
            got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(),
            vec![(2, 1), (5, 1)]
        );
        assert_eq!(s.ack(&got[1].0, now), Ok(5));
        assert_eq!(s.floor, 1, "2 is still out");
        assert_eq!(s.ack(&got[1].0, now), Err(Refusal::Unknown), "settled once");
        assert_eq!(s.ack(&got[0].0, now), Ok(2));
        assert_eq!(
            s.floor, 8,
            "everything up to the next outstanding (9) is done"
        );
        let (got, _) = s.lease(5, Duration::from_secs(1), None, now);
        assert_eq!(got.len(), 1);
        s.ack(&got[0].0, now).expect("ack");
        assert_eq!(s.floor, 10);
        assert_eq!(s.done_above_floor(), 0);
        let p = s.persisted();
        assert_eq!(GroupState::restore(p.clone()).persisted(), p);
    }

    #[test]
    fn expiry_redelivers_then_dead_letters() {
        let t0 = Instant::now();
        let mut s = GroupState::new(settings(2), 0);
        s.fetched([7], 7);
        let (a, _) = s.lease(1, Duration::from_secs(1), None, t0);
        assert!(s.tick(t0 + Duration::from_millis(999)).is_empty());
        assert!(
            s.tick(t0 + Duration::from_secs(1)).is_empty(),
            "first expiry: retry"
        );
        assert_eq!(
            s.ack(&a[0].0, t0 + Duration::from_secs(2)),
            Err(Refusal::Expired),
            "late ack of the old lease"
        );
        let t1 = t0 + Duration::from_secs(2);
        let (b, _) = s.lease(1, Duration::from_secs(1), None, t1);
        assert_eq!(b[0].2, 2, "attempt + 1");
        assert_eq!(
            s.ack(&b[0].0, t1 + Duration::from_secs(1)),
            Err(Refusal::Expired)
        );
        let failed = s.tick(t1 + Duration::from_secs(1));
        assert_eq!(failed.len(), 1);
        assert!(
            matches!(&failed[0], Failed::DeadLetter { seq: 7, attempts: 2, error } if error.contains("lease expired"))
        );
        assert_eq!((s.floor, s.dead_lettered), (7, 1));
        assert_eq!(s.redrive(), 1);
        let (c, _) = s.lease(1, Duration::from_secs(1), None, t1);
        assert_eq!((c[0].1, c[0].2), (7, 1), "redriven with fresh attempts");
        s.ack(&c[0].0, t1).expect("ack");
        assert_eq!(s.floor, 7);
        assert!(s.persisted().redriven.is_empty());
    }

    #[test]
    fn nack_with_delay_and_release() {
        let t0 = Instant::now();
        let mut s = GroupState::new(settings(5), 0);
        s.fetched([1, 2], 2);
        let (got, _) = s.lease(2, Duration::from_secs(30), Some(9), t0);
        assert_eq!(
            s.nack(&got[0].0, Duration::from_secs(5), Some("boom".into()), t0),
            Ok(Failed::Retry)
        );
        assert!(!s.has_ready());
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(5)));
        s.tick(t0 + Duration::from_secs(5));
        assert!(s.has_ready());
        assert!(s.release(9, t0).is_empty());
        assert_eq!(s.in_flight(), 0);
        let (again, _) = s.lease(5, Duration::from_secs(30), None, t0);
        assert_eq!(again.iter().map(|g| g.1).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            s.extend(
                &again[0].0,
                Duration::from_secs(60),
                t0 + Duration::from_secs(29)
            ),
            Ok(())
        );
        assert!(s.tick(t0 + Duration::from_secs(31)).is_empty());
        assert_eq!(
            s.in_flight(),
            1,
            "the extended lease survives, the other expired"
        );
    }
}
