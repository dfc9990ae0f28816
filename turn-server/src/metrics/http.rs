//! A minimal HTTP/1.1 responder for `prometheus-port`: `GET` or `HEAD` of `/` (health,
//! as coturn 4.7+) and of `prometheus-path`; one request per connection, then close.
//!
//! Hand-written instead of hyper: two fixed routes on the control thread's single-threaded
//! runtime need no more, and every resource is bounded: [`MAX_CONNECTIONS`] at once,
//! [`MAX_HEAD`] bytes of request head, [`REQUEST_TIMEOUT`] per request.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::exposition::CONTENT_TYPE;

/// Concurrent scrape connections; more are closed at once (a scraper needs one).
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request head read; a GET from Prometheus is a few hundred bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client gets to send its request and read the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Renders the metrics document when a scrape arrives (asking every shard for its
/// figures, hence a future).
pub type Render = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = String>>>>;

/// Binds the exporter's listener (before the runtime starts, so errors reach `main`).
pub fn bind(address: SocketAddr) -> io::Result<StdTcpListener> {
    crate::io::tcp::bind_listener(address, "prometheus")
}

/// Serves scrapes forever; call inside a `LocalSet`.
pub async fn serve(listener: TcpListener, path: Rc<str>, render: Render) {
    let active = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "prometheus: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.get() >= MAX_CONNECTIONS {
            continue;
        }
        active.set(active.get() + 1);
        let (active, path, render) = (active.clone(), path.clone(), render.clone());
        tokio::task::spawn_local(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection(stream, &path, &render)).await;
            active.set(active.get() - 1);
        });
    }
}

async fn connection(mut stream: TcpStream, path: &str, render: &Render) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            break;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let response = match route(&head, path) {
        Answer::Metrics { head_only } => {
            let body = render().await;
            response(200, "OK", CONTENT_TYPE, body.as_bytes(), head_only)
        }
        Answer::Fixed(response) => response,
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// What a request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The metrics document (headers only for HEAD).
    Metrics {
        /// A HEAD request.
        head_only: bool,
    },
    /// This whole response.
    Fixed(Vec<u8>),
}

/// The answer to a request head (only the request line is looked at).
pub fn route(head: &[u8], path: &str) -> Answer {
    let fixed = |status, reason, body: &[u8], head_only| {
        Answer::Fixed(response(status, reason, "text/plain", body, head_only))
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return fixed(400, "Bad Request", b"bad request\n", false);
    };
    if !version.starts_with("HTTP/1.") {
        return fixed(400, "Bad Request", b"bad request\n", false);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return fixed(405, "Method Not Allowed", b"GET or HEAD\n", false),
    };
    let target = target.split('?').next().unwrap_or_default();
    if target == path {
        return Answer::Metrics { head_only };
    }
    if target == "/" {
        return fixed(200, "OK", b"OK\n", head_only);
    }
    fixed(404, "Not Found", b"not found\n", head_only)
}

fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    )
    .into_bytes();
    if status == 405 {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(head: &str) -> String {
        let bytes = match route(head.as_bytes(), "/metrics") {
            Answer::Metrics { head_only } => response(200, "OK", CONTENT_TYPE, b"m 1\n", head_only),
            Answer::Fixed(bytes) => bytes,
        };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn routes() {
        let metrics = text("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(metrics.contains("Content-Length: 4\r\n"));
        assert!(metrics.ends_with("\r\n\r\nm 1\n"));
        assert!(text("GET /metrics?x=1 HTTP/1.0\r\n\r\n").ends_with("m 1\n"));
        assert!(text("GET / HTTP/1.1\r\n\r\n").ends_with("\r\n\r\nOK\n"));
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n", "/metrics"),
            Answer::Metrics { head_only: true }
        );
        let head = text("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.contains("Content-Length: 4\r\n") && head.ends_with("\r\n\r\n"));
        assert!(text("GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = text("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
    }

    #[test]
    fn garbage_gets_400_without_rendering() {
        for head in [
            "",
            "\u{0}\u{1}",
            "GET /metrics\r\n\r\n",
            "GET /metrics SIP/2.0\r\n\r\n",
        ] {
            let Answer::Fixed(answer) = route(head.as_bytes(), "/metrics") else {
                panic!("metrics for {head:?}");
            };
            assert!(answer.starts_with(b"HTTP/1.1 400"), "{head:?}");
        }
    }
}
