//! The byte-moving half of a client connection, shared by negotiation and the session:
//! the transport, the XML reader, and the output buffers.

use std::cell::RefCell;

use herald_translate::StreamReader;

use super::transport::Transport;

/// Size of the per-thread read buffer.
const READ_CHUNK: usize = 32 * 1024;

/// Output buffers above this capacity are released once drained: an idle connection
/// should not keep the buffer of its largest burst.
const KEEP_CAPACITY: usize = 1024;

thread_local! {
    /// One read buffer per worker thread instead of one per connection: an idle
    /// connection then holds no read buffer at all (bytes go straight into its reader).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Read `io` once through the worker thread's buffer, handing what arrived to `sink`.
/// Ok(false) on end of stream. Cancel-safe: bytes go to `sink` in the poll that reads
/// them. (SIP streams read this way too.)
pub(crate) async fn read_shared(
    io: &mut Transport,
    sink: &mut (dyn FnMut(&[u8]) + Send),
) -> std::io::Result<bool> {
    std::future::poll_fn(|cx| {
        SCRATCH.with(|scratch| io.poll_read_with(cx, &mut scratch.borrow_mut()[..], sink))
    })
    .await
}

pub(crate) struct Conn {
    pub(crate) io: Transport,
    pub(crate) reader: StreamReader,
    /// XML queued for the client.
    pub(crate) out: String,
}

impl Conn {
    pub(crate) fn new(io: Transport, reader: StreamReader) -> Self {
        Self {
            io,
            reader,
            out: String::new(),
        }
    }

    /// Whether everything queued has been written.
    pub(crate) fn is_drained(&self) -> bool {
        self.out.is_empty() && !self.io.needs_flush()
    }

    /// Write what is queued. Errors mean the peer is gone. Cancel-safe: whatever the
    /// socket has not taken stays queued for the next flush.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let sealed = self.io.seal(self.out.as_bytes());
            self.out.clear();
            if self.out.capacity() > KEEP_CAPACITY {
                // Idle connections should not keep the buffer of their largest burst.
                self.out = String::new();
            }
            sealed?;
        }
        self.io.flush().await
    }

    /// Read once into the XML reader. Ok(false) on end of stream. Cancel-safe: bytes
    /// are fed to the reader in the same poll that reads them.
    pub(crate) async fn read(&mut self) -> std::io::Result<bool> {
        let reader = &mut self.reader;
        read_shared(&mut self.io, &mut |bytes| reader.feed(bytes)).await
    }

    /// Write what is queued and close (TLS close_notify, or the pending alert after a
    /// TLS error), bounded: a peer that does not read cannot hold the task.
    pub(crate) async fn close(&mut self) {
        if !self.out.is_empty() {
            let _ = self.io.seal(self.out.as_bytes());
            self.out = String::new();
        }
        self.io.close().await;
    }
}
