//! A misbehaving upstream: an HTTP/1.1 relay in front of a real registry that
//! forwards each request and can delay it or rewrite the registry's answer, as a
//! slow or broken registry (or a middlebox) would. One request per connection
//! (`Connection: close` both ways), bounded by timeouts, stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the relay waits on either side before giving up on a request.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The head of a request as the relay saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

/// What the relay does to one request.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// Waits this long before sending the request to the registry (the client
    /// waits too: the registry acts on the request only after the delay).
    pub delay: Option<Duration>,
    /// Replaces every value of this header in the registry's answer (the name
    /// matched in any case), or adds it.
    pub replace_header: Option<(String, String)>,
}

type Rule = dyn Fn(&Seen) -> Fault + Send + Sync;

/// The relay; its URL goes where the registry's would.
pub struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts a relay to `upstream` (`127.0.0.1:PORT`) on a free port; `rule`
    /// decides the fault of each request.
    pub fn start(upstream: &str, rule: impl Fn(&Seen) -> Fault + Send + Sync + 'static) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let rule: Arc<Rule> = Arc::new(rule);
        let upstream = upstream.to_owned();
        let stopping = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let rule = Arc::clone(&rule);
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    // A failed exchange just drops the client's connection.
                    let _ = relay(client, &upstream, &*rule);
                });
            }
        });
        Relay {
            port,
            stop,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Relays one request from `client` to `upstream` and its answer back.
fn relay(client: TcpStream, upstream: &str, rule: &Rule) -> std::io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let seen = Seen {
        method: method.to_owned(),
        path: path.to_owned(),
    };
    let (headers, body) = read_message(&mut reader)?;
    let fault = rule(&seen);
    if let Some(delay) = fault.delay {
        std::thread::sleep(delay);
    }

    let mut registry = TcpStream::connect(upstream)?;
    registry.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", seen.method, seen.path);
    for (name, value) in &headers {
        if !is_hop(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    registry.write_all(head.as_bytes())?;
    registry.write_all(&body)?;
    let mut answer = Vec::new();
    registry.read_to_end(&mut answer)?;

    let answer = match &fault.replace_header {
        Some((name, value)) => replace_header(&answer, name, value),
        None => answer,
    };
    let mut client = client;
    client.write_all(&answer)?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// Headers the relay sets itself.
fn is_hop(name: &str) -> bool {
    [
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
    ]
    .iter()
    .any(|hop| name.eq_ignore_ascii_case(hop))
}

/// A request's headers, in order.
type Headers = Vec<(String, String)>;

/// Reads the headers and the body (by `Content-Length` or chunked) of a request.
fn read_message(reader: &mut impl BufRead) -> std::io::Result<(Headers, Vec<u8>)> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let value = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if value("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = value("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok((headers, body))
}

/// `answer` with every `name` header replaced by one `name: value` line.
fn replace_header(answer: &[u8], name: &str, value: &str) -> Vec<u8> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines: Vec<String> = head
        .split("\r\n")
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .map(str::to_owned)
        .collect();
    lines.push(format!("{name}: {value}"));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&answer[end..]);
    out
}
