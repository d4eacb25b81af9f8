//! Engines that run in Node, driven through `host-js/test/conformance-adapter.mjs`
//! over JSON lines on stdin/stdout.
//!
//! Each line sent is `{"id", "op", ...}` with `op` one of `load` (`policy`: the
//! text), `evaluate` (`policy`: a handle, `request`: the text), `test_tag`
//! (`policy`, `image`, `tag`) and `lints` (`policy`); each line received is
//! `{"id", "ok": answer}` or `{"id", "error": message}`. `load` answers
//! `{"policy": handle}` or `{"errors": [...]}`. The adapter first prints
//! `{"ready": engine}`.
//!
//! Every bound is explicit: a missing `node` or build is an error that says how to
//! get it, an answer that does not come within the timeout kills the process, and
//! a malformed answer is an engine failure with the line it got.

use crate::{Engine, Loaded};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the adapter may take to start (the component flavour transpiles the
/// component with jco first).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one answer of the JS engines may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of the adapter's stderr is kept for reports.
const STDERR_KEPT: usize = 8 * 1024;

/// Which build of the core the adapter loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The JS package (`host-js/index.js` over the wasm-bindgen build in `host-js/pkg/`).
    Package,
    /// The WIT component (`host-wasmtime/component/taglock_policy.wasm`) transpiled by jco.
    Component,
}

impl Flavour {
    fn arg(self) -> &'static str {
        match self {
            Flavour::Package => "package",
            Flavour::Component => "component",
        }
    }
}

/// A running adapter process.
#[derive(Debug)]
pub struct Node {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<String>>,
    answer_timeout: Duration,
    next_id: u64,
    /// Set once the process cannot be trusted any more (timed out, exited, garbled).
    dead: Option<String>,
}

/// The repository's `host-js/` directory.
pub fn host_js() -> PathBuf {
    let dir = crate::Corpus::root().join("../../host-js");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

impl Node {
    /// Starts the adapter for `flavour`. Fails, saying how to fix it, when `node`,
    /// the package build or jco is missing, or when the adapter does not start.
    pub fn start(flavour: Flavour) -> Result<Node, String> {
        let dir = host_js();
        let needs: &[(&str, &str)] = match flavour {
            Flavour::Package => &[(
                "pkg/taglock_policy.js",
                "the wasm-bindgen build is missing: run `cargo xtask build-wasm` (scripts/test.sh runs it before `cargo test`)",
            )],
            Flavour::Component => &[(
                "node_modules/.bin/jco",
                "jco is not installed: run `npm install` in host-js/ (bash host-js/scripts/install.sh does)",
            )],
        };
        for (file, fix) in needs {
            if !dir.join(file).exists() {
                return Err(format!(
                    "{} does not exist; {fix}",
                    dir.join(file).display()
                ));
            }
        }
        let script = dir.join("test/conformance-adapter.mjs");
        let mut command = Command::new("node");
        command.arg(&script).arg(flavour.arg()).current_dir(&dir);
        Node::spawn(command, flavour.arg(), ANSWER_TIMEOUT)
            .map_err(|err| format!("`node {} {}`: {err}", script.display(), flavour.arg()))
    }

    /// Starts any process that speaks the protocol and first prints
    /// `{"ready": ready}`; each answer may take up to `answer_timeout`.
    pub fn spawn(
        mut command: Command,
        ready: &str,
        answer_timeout: Duration,
    ) -> Result<Node, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start it: {err}; is Node.js >= 20 installed?"))?;
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("its pipes were not set up".into());
                }
            };
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let kept = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&kept);
        std::thread::spawn(move || keep_tail(stderr, &sink));
        let mut node = Node {
            name: format!("node {ready}"),
            child,
            stdin,
            lines,
            stderr: kept,
            answer_timeout,
            next_id: 0,
            dead: None,
        };
        let said = node.receive(START_TIMEOUT)?;
        if said.get("ready").and_then(Value::as_str) != Some(ready) {
            return Err(node.kill(format!("the adapter did not start; it said {said}")));
        }
        Ok(node)
    }

    /// Kills the process (if it still runs) and returns `why` with its stderr.
    fn kill(&mut self, why: String) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let message = if stderr.trim().is_empty() {
            why
        } else {
            format!("{why}\n      node's stderr:\n{stderr}")
        };
        self.dead = Some(message.clone());
        message
    }

    fn receive(&mut self, timeout: Duration) -> Result<Value, String> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(err)) => return Err(self.kill(format!("cannot read node's answer: {err}"))),
            Err(RecvTimeoutError::Timeout) => {
                return Err(self.kill(format!("node did not answer within {timeout:?}; killed it")));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(self.kill(format!("node exited ({status})")));
            }
        };
        serde_json::from_str(&line)
            .map_err(|err| self.kill(format!("a malformed answer ({err}): {line:?}")))
    }

    /// Sends one command and waits for its answer.
    fn call(&mut self, mut command: Value) -> Result<Value, String> {
        if let Some(why) = &self.dead {
            return Err(format!("the adapter is dead: {why}"));
        }
        self.next_id += 1;
        let id = self.next_id;
        if let Some(object) = command.as_object_mut() {
            object.insert("id".into(), id.into());
        }
        let written = writeln!(self.stdin, "{command}").and_then(|()| self.stdin.flush());
        if let Err(err) = written {
            return Err(self.kill(format!("cannot write to node: {err}")));
        }
        let answer = self.receive(self.answer_timeout)?;
        if answer.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(self.kill(format!(
                "an answer to another command (expected id {id}): {answer}"
            )));
        }
        match (answer.get("ok"), answer.get("error")) {
            (Some(ok), None) => Ok(ok.clone()),
            (None, Some(error)) => Err(error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned)),
            _ => Err(self.kill(format!(
                "a malformed answer (needs `ok` or `error`): {answer}"
            ))),
        }
    }
}

/// Keeps the last [`STDERR_KEPT`] bytes of `stream` in `sink`.
fn keep_tail(mut stream: impl Read, sink: &Mutex<String>) {
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        let Some(chunk) = buffer.get(..read).filter(|c| !c.is_empty()) else {
            break;
        };
        if let Ok(mut kept) = sink.lock() {
            kept.push_str(&String::from_utf8_lossy(chunk));
            if kept.len() > STDERR_KEPT {
                let mut cut = kept.len() - STDERR_KEPT;
                while !kept.is_char_boundary(cut) {
                    cut += 1;
                }
                kept.drain(..cut);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Engine for Node {
    type Policy = u64;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, policy: &str) -> Result<Loaded<u64>, String> {
        let answer = self.call(json!({"op": "load", "policy": policy}))?;
        match (
            answer.get("policy").and_then(Value::as_u64),
            answer.get("errors"),
        ) {
            (Some(handle), None) => Ok(Ok(handle)),
            (None, Some(Value::Array(errors))) => Ok(Err(errors.clone())),
            _ => Err(format!("a malformed load answer: {answer}")),
        }
    }

    fn evaluate(&mut self, policy: &u64, request: &str) -> Result<Value, String> {
        self.call(json!({"op": "evaluate", "policy": policy, "request": request}))
    }

    fn test_tag(&mut self, policy: &u64, image: &str, tag: &str) -> Result<Value, String> {
        self.call(json!({"op": "test_tag", "policy": policy, "image": image, "tag": tag}))
    }

    fn lints(&mut self, policy: &u64) -> Result<Vec<Value>, String> {
        match self.call(json!({"op": "lints", "policy": policy}))? {
            Value::Array(lints) => Ok(lints),
            other => Err(format!("a malformed lints answer: {other}")),
        }
    }
}
