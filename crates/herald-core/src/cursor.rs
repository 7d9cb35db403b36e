//! Cursors: a position `(epoch, seq)` in the whole log, rendered as one opaque string.

use std::fmt;

/// Identifies one incarnation of a log. A new, empty log gets a new random epoch, so
/// cursors from a wiped or recreated log are recognised as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u32);

impl Epoch {
    /// A fresh random, non-zero epoch.
    pub fn random() -> Self {
        loop {
            let e: u32 = rand::random();
            if e != 0 {
                return Epoch(e);
            }
        }
    }
}

/// A position in the log: every message's id is the cursor of its position, and reading
/// "after" a cursor returns what was published later. Seq 0 is the position before the
/// first message ever published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    /// The log incarnation.
    pub epoch: Epoch,
    /// The position: one sequence for the whole log, across topics.
    pub seq: u64,
}

/// Length of a rendered cursor: 8 hex digits of epoch then 16 of seq.
const CURSOR_LEN: usize = 24;

impl Cursor {
    /// A cursor at `seq` in `epoch`.
    pub fn new(epoch: Epoch, seq: u64) -> Self {
        Cursor { epoch, seq }
    }

    /// Parses a rendered cursor.
    pub fn parse(s: &str) -> Result<Self, CursorError> {
        if s.len() != CURSOR_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CursorError(s.chars().take(64).collect()));
        }
        let epoch = u32::from_str_radix(&s[..8], 16).map_err(|_| CursorError(s.into()))?;
        let seq = u64::from_str_radix(&s[8..], 16).map_err(|_| CursorError(s.into()))?;
        Ok(Cursor {
            epoch: Epoch(epoch),
            seq,
        })
    }
}

impl Cursor {
    /// The rendered form without allocating: fixed width lowercase hex, so rendered
    /// cursors of one epoch sort in log order.
    pub fn encode(&self) -> [u8; CURSOR_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; CURSOR_LEN];
        for (i, b) in out[..8].iter_mut().enumerate() {
            *b = HEX[((self.epoch.0 >> (28 - 4 * i)) & 0xf) as usize];
        }
        for (i, b) in out[8..].iter_mut().enumerate() {
            *b = HEX[((self.seq >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.encode();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

/// A string that is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a cursor: expected \"earliest\", \"latest\" or an id returned by herald")]
pub struct CursorError(pub String);

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// From the oldest retained message.
    Earliest,
    /// Only what is published from now on.
    Latest,
    /// After this cursor.
    After(Cursor),
}

impl Start {
    /// Parses `earliest`, `latest` or a cursor.
    pub fn parse(s: &str) -> Result<Self, CursorError> {
        match s {
            "earliest" => Ok(Start::Earliest),
            "latest" => Ok(Start::Latest),
            other => Cursor::parse(other).map(Start::After),
        }
    }
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Start::Earliest => f.write_str("earliest"),
            Start::Latest => f.write_str("latest"),
            Start::After(c) => c.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let e = Epoch(0xdead_beef);
        let a = Cursor::new(e, 9);
        let b = Cursor::new(e, 10);
        assert_eq!(Cursor::parse(&a.to_string()), Ok(a));
        assert_eq!(a.to_string().len(), 24);
        assert!(a.to_string() < b.to_string());
        assert_eq!(
            Cursor::parse(&Cursor::new(e, u64::MAX).to_string()).map(|c| c.seq),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "x",
            "deadbeef",
            "zzzzzzzz0000000000000001",
            "+eadbeef000000000000000001",
            " deadbeef000000000000000a",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Start::parse("earliest"), Ok(Start::Earliest));
        assert_eq!(Start::parse("latest"), Ok(Start::Latest));
        assert!(Start::parse("Latest").is_err());
    }
}
