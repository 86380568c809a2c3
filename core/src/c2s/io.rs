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

/// How long closing a connection may wait for the peer to take the last bytes.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) struct Conn {
    pub(crate) io: Transport,
    pub(crate) reader: StreamReader,
    /// XML queued for the client.
    pub(crate) out: String,
    /// Bytes for the socket (ciphertext under TLS), written from `wire_pos` on.
    wire: Vec<u8>,
    wire_pos: usize,
}

impl Conn {
    pub(crate) fn new(io: Transport, reader: StreamReader) -> Self {
        Self {
            io,
            reader,
            out: String::new(),
            wire: Vec::new(),
            wire_pos: 0,
        }
    }

    /// Whether everything queued has been written.
    pub(crate) fn is_drained(&self) -> bool {
        self.out.is_empty() && self.wire_pos >= self.wire.len()
    }

    /// Write what is queued. Errors mean the peer is gone. Cancel-safe: whatever the
    /// socket has not taken stays queued for the next flush.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let sealed = self.io.seal(self.out.as_bytes(), &mut self.wire);
            self.out.clear();
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = String::new();
            }
            sealed?;
        }
        while self.wire_pos < self.wire.len() {
            let n = self.io.write(&self.wire[self.wire_pos..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.wire_pos += n;
        }
        self.wire_pos = 0;
        self.wire.clear();
        if self.wire.capacity() > KEEP_CAPACITY {
            self.wire = Vec::new();
        }
        Ok(())
    }

    /// Read once into the XML reader. Ok(false) on end of stream. Cancel-safe: bytes
    /// are fed to the reader in the same poll that reads them.
    pub(crate) async fn read(&mut self) -> std::io::Result<bool> {
        std::future::poll_fn(|cx| {
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let reader = &mut self.reader;
                self.io
                    .poll_read_with(cx, &mut scratch[..], &mut self.wire, &mut |bytes| {
                        reader.feed(bytes);
                    })
            })
        })
        .await
    }

    /// Flush and close, bounded: a peer that does not read cannot hold the task.
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.flush().await;
            if self.io.close_notify(&mut self.wire).is_ok() {
                let _ = self.flush().await;
            }
            let _ = self.io.shutdown().await;
        })
        .await;
    }
}
