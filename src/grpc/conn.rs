//! The server's side of a client connection, tuned for many small unary answers: the socket is
//! declared non-vectored so that h2 copies answers of up to 1 KiB into its write buffer and
//! answers that finish together share a write. Why: docs/internals.md, "Small answers share
//! writes".

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A TCP connection that tells h2 to copy answers of up to 1 KiB into its write buffer.
#[derive(Debug)]
pub struct SmallWrites(TcpStream);

impl SmallWrites {
    /// Wraps an accepted connection.
    pub fn new(stream: TcpStream) -> Self {
        Self(stream)
    }
}

impl Connected for SmallWrites {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.connect_info()
    }
}

impl AsyncRead for SmallWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SmallWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    /// The point of the type: h2 asks this to choose its copy threshold.
    fn is_write_vectored(&self) -> bool {
        false
    }

    /// Whoever writes vectored anyway gets the socket's vectored write.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn bytes_pass_both_ways_and_h2_is_told_to_copy() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"ping").await.unwrap();
            let mut answer = [0u8; 4];
            s.read_exact(&mut answer).await.unwrap();
            answer
        });
        let (stream, peer) = listener.accept().await.unwrap();
        let mut server = SmallWrites::new(stream);
        assert!(!server.is_write_vectored());
        assert_eq!(server.connect_info().remote_addr, Some(peer));
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        server.write_all(b"pong").await.unwrap();
        assert_eq!(&client.await.unwrap(), b"pong");
    }
}

/// What one connection and one call may take of the server (config.rs fills it).
#[derive(Debug, Clone, Copy)]
pub struct TransportLimits {
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams_per_connection: u32,
    /// Longest a call may run on the server.
    pub request_timeout: std::time::Duration,
    /// Keep-alive ping interval on idle connections; none, no pings.
    pub keepalive: Option<std::time::Duration>,
    /// How long shutdown waits for calls in flight before it drops them.
    pub shutdown_grace: std::time::Duration,
}
