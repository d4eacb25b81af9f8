//! A token issuer for a registry with token authentication, as distribution
//! speaks it: a tiny HTTP server on 127.0.0.1 (one thread, one request per
//! connection) that checks HTTP Basic on `GET /token?service=…&scope=…` or the
//! OAuth2 password form on `POST /token`, and signs ES256 JWTs in
//! distribution's format (`x5c` header with a self-signed certificate made for
//! the test's key; claims `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`,
//! `access`). A user gets only the actions its grants allow, so the registry
//! really checks what the proxy asks for.
//!
//! The registry trusts it through [`Issuer::cert_pem`] (the certificate as
//! PEM: distribution's `rootcertbundle`); see `Registry::start_with_token`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The registry's `service` (the tokens' audience).
pub const SERVICE: &str = "taglock-test-registry";

/// The tokens' issuer.
pub const ISSUER: &str = "taglock-test-issuer";

/// The most a request's head and body may hold.
const MAX_REQUEST: usize = 64 * 1024;

/// What a user may do: `(repository or "*", actions)`, and the catalog.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
    pub repositories: Vec<(String, Vec<String>)>,
    pub catalog: bool,
}

impl User {
    /// A user allowed `actions` on every repository, and the catalog.
    pub fn everywhere(name: &str, password: &str, actions: &[&str]) -> User {
        User {
            name: name.to_owned(),
            password: password.to_owned(),
            repositories: vec![(
                "*".to_owned(),
                actions.iter().map(|a| (*a).to_owned()).collect(),
            )],
            catalog: true,
        }
    }

    fn allowed(&self, kind: &str, name: &str, action: &str) -> bool {
        match kind {
            "registry" => self.catalog && name == "catalog" && action == "*",
            "repository" => self.repositories.iter().any(|(repo, actions)| {
                (repo == "*" || repo == name) && actions.iter().any(|a| a == action || a == "*")
            }),
            _ => false,
        }
    }
}

/// One token request the issuer saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET` or `POST`.
    pub method: String,
    /// The user it authenticated as, if any.
    pub user: Option<String>,
    /// The scopes asked for, space-joined.
    pub scope: String,
    /// Whether a token was issued.
    pub issued: bool,
}

struct State {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
    users: Vec<User>,
    expires_in: AtomicI64,
    /// The next token is signed already expired (past distribution's leeway),
    /// while the answer says it is good for a while.
    stale_next: AtomicBool,
    /// `GET` is answered 405, so clients must use the OAuth2 form.
    post_only: AtomicBool,
    seen: Mutex<Vec<Seen>>,
    tokens: Mutex<Vec<String>>,
    jti: AtomicI64,
}

/// A running issuer; stopped on drop.
pub struct Issuer {
    state: Arc<State>,
    port: u16,
    host: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Issuer {
    /// Starts an issuer for `users` on a free loopback port.
    pub fn start(users: Vec<User>) -> Issuer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![ISSUER.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let state = Arc::new(State {
            key: signer,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            users,
            expires_in: AtomicI64::new(300),
            stale_next: AtomicBool::new(false),
            post_only: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
            jti: AtomicI64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(&listener, &state, &stop))
        };
        Issuer {
            state,
            port,
            host: "127.0.0.1".to_owned(),
            stop,
            thread: Some(thread),
        }
    }

    /// The realm as the registry names it: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}:{}/token", self.host, self.port)
    }

    /// Names the realm with another host name for the same socket (e.g.
    /// `localhost`), as a registry whose realm is on another host would.
    pub fn with_host(mut self, host: &str) -> Issuer {
        self.host = host.to_owned();
        self
    }

    /// The certificate the tokens are signed under (PEM): the registry's
    /// `rootcertbundle`.
    pub fn cert_pem(&self) -> String {
        self.state.cert_pem.clone()
    }

    /// The `expires_in` of the next tokens (and their `exp`).
    pub fn set_expires_in(&self, seconds: i64) {
        self.state.expires_in.store(seconds, Ordering::SeqCst);
    }

    /// Signs the next token already expired, while its answer says it is good.
    pub fn stale_next(&self) {
        self.state.stale_next.store(true, Ordering::SeqCst);
    }

    /// Refuses `GET` (405): only the OAuth2 form gets tokens.
    pub fn post_only(&self) {
        self.state.post_only.store(true, Ordering::SeqCst);
    }

    /// Every token request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many tokens were issued so far.
    pub fn issued(&self) -> usize {
        self.seen().iter().filter(|s| s.issued).count()
    }

    /// Every token issued so far.
    pub fn tokens(&self) -> Vec<String> {
        self.state.tokens.lock().unwrap().clone()
    }

    /// A token for `user` (checked against its grants) with `scopes`, signed
    /// here without a request: for a test's own direct client.
    pub fn token(&self, user: &str, scopes: &[&str]) -> String {
        let user = self
            .state
            .users
            .iter()
            .find(|u| u.name == user)
            .unwrap_or_else(|| panic!("no issuer user {user}"));
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        sign(&self.state, user, &scopes, false)
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, state: &State, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = handle(stream, state);
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One request, one answer, then the connection closes.
fn handle(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if raw.len() > MAX_REQUEST {
            return respond(&mut stream, 431, &json!({}));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return respond(&mut stream, 413, &json!({}));
    }
    let mut body = raw[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/token" {
        return respond(&mut stream, 404, &json!({"error": "not found"}));
    }
    let (user, password, scopes, service) = match method.as_str() {
        "GET" => {
            if state.post_only.load(Ordering::SeqCst) {
                record(state, &method, None, "", false);
                return respond(&mut stream, 405, &json!({"error": "use POST"}));
            }
            let pairs: Vec<(String, String)> = parse_form(query.as_bytes());
            let scopes: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
                .filter(|s| !s.is_empty())
                .collect();
            let service = pairs
                .iter()
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.clone());
            let (user, password) = header("authorization")
                .and_then(|v| v.strip_prefix("Basic ").map(str::to_owned))
                .and_then(|b| STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| t.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
                .unzip();
            (user, password, scopes, service)
        }
        "POST" => {
            let pairs: Vec<(String, String)> = parse_form(&body);
            let get = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            if get("grant_type").as_deref() != Some("password") || get("client_id").is_none() {
                record(state, &method, None, "", false);
                return respond(
                    &mut stream,
                    400,
                    &json!({"error": "unsupported_grant_type"}),
                );
            }
            let scopes = get("scope")
                .map(|s| {
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (get("username"), get("password"), scopes, get("service"))
        }
        _ => return respond(&mut stream, 405, &json!({})),
    };
    let scope_text = scopes.join(" ");
    let found = state.users.iter().find(|u| {
        Some(u.name.as_str()) == user.as_deref() && Some(u.password.as_str()) == password.as_deref()
    });
    let Some(found) = found else {
        record(state, &method, user.clone(), &scope_text, false);
        return respond(&mut stream, 401, &json!({"error": "invalid credentials"}));
    };
    if service.as_deref() != Some(SERVICE) {
        record(state, &method, user.clone(), &scope_text, false);
        return respond(&mut stream, 400, &json!({"error": "unknown service"}));
    }
    let stale = state.stale_next.swap(false, Ordering::SeqCst);
    let token = sign(state, found, &scopes, stale);
    record(state, &method, user, &scope_text, true);
    state.tokens.lock().unwrap().push(token.clone());
    let expires_in = state.expires_in.load(Ordering::SeqCst);
    let answer = if method == "GET" {
        json!({"token": token, "access_token": token, "expires_in": expires_in})
    } else {
        json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})
    };
    respond(&mut stream, 200, &answer)
}

fn record(state: &State, method: &str, user: Option<String>, scope: &str, issued: bool) {
    state.seen.lock().unwrap().push(Seen {
        method: method.to_owned(),
        user,
        scope: scope.to_owned(),
        issued,
    });
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// A JWT granting `user` what it may of `scopes` (`type:name:actions`).
fn sign(state: &State, user: &User, scopes: &[String], stale: bool) -> String {
    let mut access = Vec::new();
    for scope in scopes {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|action| user.allowed(kind, name, action))
            .collect();
        if !granted.is_empty() {
            access.push(json!({"type": kind, "name": name, "actions": granted}));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expires_in = state.expires_in.load(Ordering::SeqCst);
    // Distribution allows 60 s of clock skew past `exp`.
    let (issued, expires) = if stale {
        (now - 600, now - 300)
    } else {
        (now, now + expires_in)
    };
    let header = json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [STANDARD.encode(&state.cert_der)],
    });
    let claims = json!({
        "iss": ISSUER,
        "sub": user.name,
        "aud": SERVICE,
        "exp": expires,
        "nbf": issued - 1,
        "iat": issued,
        "jti": format!("jti-{}", state.jti.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    super::jwt::compact_jws(&state.key, &header, &claims)
}

/// `application/x-www-form-urlencoded` pairs (a query or a form body).
fn parse_form(text: &[u8]) -> Vec<(String, String)> {
    let decode = |part: &[u8]| {
        let mut out = Vec::new();
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < part.len() => {
                    let hex = std::str::from_utf8(&part[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut split = pair.splitn(2, |b| *b == b'=');
            let key = split.next().unwrap_or_default();
            let value = split.next().unwrap_or_default();
            (decode(key), decode(value))
        })
        .collect()
}
