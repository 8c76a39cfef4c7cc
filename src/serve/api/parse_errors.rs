//! The HTTP parser's own refusals, as JSON like every other error.
//!
//! A request that hyper cannot parse — a URI over 64 KiB, a header section over its buffer, a
//! request line that is not HTTP/1.1 — never reaches the router: hyper answers it itself with an
//! empty `414`, `431` or `400` and closes the connection. This listener wraps each connection
//! so that such an answer (recognised as a `400`/`414`/`431` head without a `content-type`,
//! which none of the router's answers is) goes out as `{"error": "..."}` instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections answer parse errors in JSON.
pub(crate) struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (
            Connection {
                stream,
                pending: Vec::new(),
                written: 0,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// One accepted connection.
pub struct Connection {
    stream: TcpStream,
    /// A JSON answer that replaced hyper's empty one, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl Connection {
    /// Writes what is left of a replaced answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.stream).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The JSON answer for hyper's own empty answer `head`, if it is one.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    if !text.ends_with("\r\n\r\n") || text.to_ascii_lowercase().contains("\r\ncontent-type:") {
        return None;
    }
    let (status, message) = match text.get(..13)? {
        "HTTP/1.1 400 " => ("400 Bad Request", "the request is not valid HTTP/1.1"),
        "HTTP/1.1 414 " => (
            "414 URI Too Long",
            "the request's URI is too long (at most 65534 bytes)",
        ),
        "HTTP/1.1 431 " => (
            "431 Request Header Fields Too Large",
            "the request's header section is too large",
        ),
        _ => return None,
    };
    let body = serde_json::json!({ "error": message }).to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        // hyper writes its automatic answer's head in one piece (this stream is not vectored,
        // so hyper flattens what it writes).
        if let Some(answer) = replacement(buf) {
            self.pending = answer;
            self.written = 0;
            // What is not written now is written by the flush hyper always follows with.
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_parser_answers_are_replaced() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with(r#"{"error":"the request's URI is too long (at most 65534 bytes)"}"#)
        );
        assert!(replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n").is_some());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_some());
        // The router's own answers carry a content type; other statuses are left alone.
        assert!(
            replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\r\n")
                .is_none()
        );
        assert!(replacement(b"HTTP/1.1 304 Not Modified\r\n\r\n").is_none());
        assert!(
            replacement(b"HTTP/1.1 400 Bad Request\r\n").is_none(),
            "not a whole head"
        );
    }
}
