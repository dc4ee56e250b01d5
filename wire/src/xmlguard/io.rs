//! [`GuardedIo`]: the [`XmlGuard`] as a transport wrapper (feature `io`).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use super::{Limits, XmlGuard};

/// Which way a logged unit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the peer.
    Recv,
    /// Sent to the peer.
    Send,
}

/// Receives each complete top-level unit (stream header, stanza, footer) in either direction,
/// raw and unredacted: pass it through [`super::redact`] before logging it.
pub type UnitLog = Box<dyn FnMut(Direction, &[u8]) + Send + Sync>;

/// A transport whose reads go through an [`XmlGuard`]: the bytes before the one that crosses
/// a limit are handed out, then reads fail with `InvalidData` carrying a
/// [`super::LimitError`] (every later read too); the offending byte and what follows are
/// never returned. Writes pass through.
///
/// With a [`UnitLog`], both directions are split into units for a raw protocol log.
pub struct GuardedIo<T> {
    inner: T,
    rx: XmlGuard,
    /// Bytes at the front of the inner buffer already scanned.
    scanned: usize,
    /// After a limit was crossed: bytes of the inner buffer still to hand out.
    cut: Option<usize>,
    log: Option<UnitLog>,
    tx: XmlGuard,
    rx_unit: Vec<u8>,
    tx_unit: Vec<u8>,
}

impl<T> std::fmt::Debug for GuardedIo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedIo")
            .field("depth", &self.rx.depth())
            .finish_non_exhaustive()
    }
}

impl<T> GuardedIo<T> {
    /// Guards reads from `inner` with `limits`.
    pub fn new(inner: T, limits: Limits) -> Self {
        Self {
            inner,
            rx: XmlGuard::new(limits),
            scanned: 0,
            cut: None,
            log: None,
            tx: XmlGuard::new(Limits::UNLIMITED),
            rx_unit: Vec::new(),
            tx_unit: Vec::new(),
        }
    }

    /// Also hands every complete unit, in both directions, to `log`.
    pub fn with_log(mut self, log: UnitLog) -> Self {
        self.log = Some(log);
        self
    }

    /// The wrapped transport. Bytes it has buffered but not yet handed out stay with it.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// The wrapped transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

/// Splits `bytes` at the boundaries the guard reports into `unit`, calling `log` per unit.
fn split(
    guard: &mut XmlGuard,
    bytes: &[u8],
    unit: &mut Vec<u8>,
    log: Option<&mut UnitLog>,
    dir: Direction,
) -> Result<(), super::LimitError> {
    let Some(log) = log else {
        return guard.feed(bytes, |_| {});
    };
    let mut last = 0;
    let r = guard.feed(bytes, |end| {
        unit.extend_from_slice(&bytes[last..end]);
        log(dir, unit);
        unit.clear();
        last = end;
    });
    if r.is_ok() {
        unit.extend_from_slice(&bytes[last..]);
        if unit.iter().all(u8::is_ascii_whitespace) {
            unit.clear();
        }
    } else {
        unit.clear();
    }
    r
}

impl<T: AsyncBufRead + Unpin> AsyncBufRead for GuardedIo<T> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.cut == Some(0) {
            if let Some(e) = this.rx.error() {
                return Poll::Ready(Err(e.into()));
            }
        }
        let buf = ready!(Pin::new(&mut this.inner).poll_fill_buf(cx))?;
        if this.cut.is_none() && this.scanned < buf.len() {
            let r = split(
                &mut this.rx,
                &buf[this.scanned..],
                &mut this.rx_unit,
                this.log.as_mut(),
                Direction::Recv,
            );
            match r {
                Ok(()) => this.scanned = buf.len(),
                Err(e) => {
                    let cut = this.scanned + this.rx.accepted();
                    this.cut = Some(cut);
                    if cut == 0 {
                        return Poll::Ready(Err(e.into()));
                    }
                }
            }
        }
        match this.cut {
            Some(cut) => Poll::Ready(Ok(&buf[..cut.min(buf.len())])),
            None => Poll::Ready(Ok(buf)),
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.scanned = this.scanned.saturating_sub(amt);
        if let Some(cut) = this.cut.as_mut() {
            *cut = cut.saturating_sub(amt);
        }
        Pin::new(&mut this.inner).consume(amt);
    }
}

impl<T: AsyncBufRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if this.log.is_some() {
            // Unlimited: cannot fail.
            let _ = split(
                &mut this.tx,
                &buf[..n],
                &mut this.tx_unit,
                this.log.as_mut(),
                Direction::Send,
            );
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::xmlguard::LimitError;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // A single poll loop is enough: everything below is in memory.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn deep_nesting_fails_the_read_before_the_parser_sees_it() {
        let mut data = b"<stream:stream><message>".to_vec();
        data.extend(b"<a>".repeat(200));
        let limits = Limits {
            max_depth: 10,
            max_stanza_bytes: 1 << 20,
        };
        let mut io = GuardedIo::new(BufReader::new(&data[..]), limits);
        let mut out = Vec::new();
        let e = block_on(io.read_to_end(&mut out)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            super::super::limit_error(&e),
            Some(LimitError::TooDeep { limit: 10 })
        );
        // Everything up to the 11th level, nothing after.
        assert_eq!(out.len(), b"<stream:stream><message>".len() + 9 * 3 + 2);
    }

    #[test]
    fn logs_units_both_ways() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let data: &[u8] = b"<stream:stream>\n<iq id='1'/> <message><body>x</body></message>";
        let mut io = GuardedIo::new(BufReader::with_capacity(5, data), Limits::default()).with_log(
            Box::new(move |d, u| {
                s2.lock()
                    .unwrap()
                    .push((d, String::from_utf8_lossy(u).trim().to_owned()))
            }),
        );
        let mut line = String::new();
        while block_on(io.read_line(&mut line)).unwrap() > 0 {}
        let mut sink = GuardedIo::new(Vec::new(), Limits::default()).with_log(Box::new({
            let s = seen.clone();
            move |d, u| {
                s.lock()
                    .unwrap()
                    .push((d, String::from_utf8_lossy(u).into()))
            }
        }));
        block_on(sink.write_all(b"<stream:stream><auth>abc</auth>")).unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            vec![
                (Direction::Recv, "<stream:stream>".to_owned()),
                (Direction::Recv, "<iq id='1'/>".to_owned()),
                (
                    Direction::Recv,
                    "<message><body>x</body></message>".to_owned()
                ),
                (Direction::Send, "<stream:stream>".to_owned()),
                (Direction::Send, "<auth>abc</auth>".to_owned()),
            ]
        );
    }
}
