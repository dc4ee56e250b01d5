//! [`StripEmptyMechanisms`]: removes an empty `<mechanisms/>` from what the server writes.
//!
//! xmpp-parsers 0.23 always serializes `StreamFeatures::sasl_mechanisms`, so the features
//! after SASL (bind, sm) carry an empty `<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`.
//! The JS SDK (xmpp.js) takes that as an offer to authenticate again and fails with "No
//! compatible mechanism available". This writer drops the empty element on its way to the
//! socket; everything else passes through unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The forms an empty SASL mechanisms element can take on the wire.
const EMPTY_FORMS: &[&[u8]] = &[
    b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></mechanisms>",
    b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    b"<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"></mechanisms>",
    b"<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>",
];

/// A stream whose writes are buffered, cleaned of empty `<mechanisms/>`, and drained to the
/// inner stream on the next write or flush. Reads pass through.
#[derive(Debug)]
pub struct StripEmptyMechanisms<Io> {
    inner: Io,
    pending: Vec<u8>,
}

impl<Io> StripEmptyMechanisms<Io> {
    pub fn new(inner: Io) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    /// The inner stream. Flush first: bytes still pending are dropped.
    pub fn into_inner(self) -> Io {
        self.inner
    }
}

/// `bytes` without any of [`EMPTY_FORMS`].
pub fn strip(bytes: &mut Vec<u8>) {
    for form in EMPTY_FORMS {
        while let Some(at) = bytes.windows(form.len()).position(|w| w == *form) {
            bytes.drain(at..at + form.len());
        }
    }
}

impl<Io: AsyncWrite + Unpin> StripEmptyMechanisms<Io> {
    /// Writes out `pending` (already cleaned).
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for StripEmptyMechanisms<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for StripEmptyMechanisms<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Drain earlier bytes first, so the buffer stays one write's worth.
        std::task::ready!(self.drain(cx))?;
        self.pending.extend_from_slice(buf);
        strip(&mut self.pending);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn removes_only_empty_mechanisms() {
        let (a, mut b) = tokio::io::duplex(4096);
        let mut w = StripEmptyMechanisms::new(a);
        w.write_all(b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></mechanisms><sm xmlns='urn:xmpp:sm:3'/></stream:features>")
            .await
            .unwrap();
        w.write_all(b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>")
            .await
            .unwrap();
        w.flush().await.unwrap();
        drop(w);
        let mut out = String::new();
        b.read_to_string(&mut out).await.unwrap();
        assert_eq!(
            out,
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>\
             <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
        );
    }
}
