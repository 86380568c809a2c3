//! The ciphertext a session has produced and its driver has not yet written.

use super::error::{Limit, TlsError};

/// A drained buffer keeps at most this much capacity; beyond it, the memory
/// of the largest burst is returned, so idle connections hold (almost) none.
const RETAIN: usize = 1024;

/// Outgoing ciphertext, written from `pos` on.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    buf: Vec<u8>,
    pos: usize,
}

/// What a rustls encoder said when it was given too little room.
pub(crate) enum Room {
    /// It needs this many bytes.
    Needs(usize),
    /// It cannot write at all.
    Refused(String),
}

impl Outgoing {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The driver wrote `n` bytes. A drained buffer is cleared, and freed if large.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.pos = 0;
            self.buf.clear();
            if self.buf.capacity() > RETAIN {
                self.buf = Vec::new();
            }
        }
    }

    /// Free the buffer if nothing is waiting in it.
    pub(crate) fn release(&mut self) {
        if self.len() == 0 {
            self.pos = 0;
            self.buf = Vec::new();
        }
    }

    /// Append what `write` produces. It is first asked with no room at all,
    /// which rustls answers with the exact size it needs without changing
    /// anything; the bound is checked against that size before the real call.
    pub(crate) fn append<E>(
        &mut self,
        limit: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
        room: impl Fn(E) -> Room,
    ) -> Result<usize, TlsError> {
        let needed = match write(&mut []) {
            Ok(n) => return Ok(n),
            Err(e) => match room(e) {
                Room::Needs(n) => n,
                Room::Refused(why) => return Err(TlsError::UnexpectedState(why)),
            },
        };
        if self.len().saturating_add(needed) > limit {
            return Err(TlsError::LimitExceeded(Limit::Outgoing));
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + needed, 0);
        let Some(room_now) = self.buf.get_mut(start..) else {
            return Err(TlsError::UnexpectedState("outgoing buffer".into()));
        };
        match write(room_now) {
            Ok(n) => {
                self.buf.truncate(start + n.min(needed));
                Ok(n)
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(TlsError::UnexpectedState(match room(e) {
                    Room::Needs(n) => format!("rustls asked for {n} bytes after {needed}"),
                    Room::Refused(why) => why,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(data: &'static [u8]) -> impl FnMut(&mut [u8]) -> Result<usize, usize> {
        move |buf: &mut [u8]| {
            if buf.len() < data.len() {
                return Err(data.len());
            }
            buf[..data.len()].copy_from_slice(data);
            Ok(data.len())
        }
    }

    #[test]
    fn appends_consumes_and_releases() {
        let mut out = Outgoing::default();
        out.append(100, exact(b"hello"), Room::Needs).unwrap();
        out.append(100, exact(b" world"), Room::Needs).unwrap();
        assert_eq!(out.bytes(), b"hello world");
        out.consume(6);
        assert_eq!(out.bytes(), b"world");
        out.append(100, exact(b"!"), Room::Needs).unwrap();
        assert_eq!(out.bytes(), b"world!");
        out.consume(100);
        assert_eq!(out.len(), 0);
        assert!(out.capacity() <= RETAIN);
    }

    #[test]
    fn the_bound_is_checked_before_writing() {
        let mut out = Outgoing::default();
        out.append(8, exact(b"12345"), Room::Needs).unwrap();
        let refused = out.append(8, exact(b"6789"), Room::Needs);
        assert_eq!(refused, Err(TlsError::LimitExceeded(Limit::Outgoing)));
        assert_eq!(out.bytes(), b"12345");
    }

    #[test]
    fn a_large_burst_is_freed_once_drained() {
        let mut out = Outgoing::default();
        static BIG: [u8; 4096] = [1; 4096];
        out.append(1 << 20, exact(&BIG), Room::Needs).unwrap();
        out.consume(4096);
        assert_eq!(out.capacity(), 0);
    }
}
