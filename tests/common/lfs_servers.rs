//! Git LFS servers on loopback for tests: rudolfs and giftless (real servers, started on free
//! ports with their storage in a temporary folder, killed when dropped), and `FakeLfs`, a tiny
//! server in the test's own process that misbehaves on purpose (401, 403, 404, wrong bytes, a
//! connection cut midway).
//!
//! Where the servers come from: `MLGIT_TEST_RUDOLFS` (the binary; else `rudolfs` on PATH, else
//! `~/.cargo/bin/rudolfs`) and `MLGIT_TEST_GIFTLESS_VENV` (a virtualenv with giftless; else
//! `~/.cache/mlgit-ci/giftless`) — `.ci/run` installs both. Under `CI=true` a missing server fails
//! the test; elsewhere the test is skipped with a printed reason.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A real LFS server process; killed on drop.
pub struct LfsServer {
    child: Child,
    /// The URL to use as `lfs.url`.
    pub url: String,
    /// Where it stores objects.
    pub storage: PathBuf,
    pub log: PathBuf,
}

impl Drop for LfsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// None (after printing why) when `what` is missing outside CI; a panic under CI.
fn missing<T>(what: &str, how: &str) -> Option<T> {
    if in_ci() {
        panic!("{what} is required when CI=true ({how})");
    }
    eprintln!("skipping: {what} is not installed ({how})");
    None
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn home() -> PathBuf {
    // The tests may have replaced HOME with a temporary one: the real one is in the passwd entry.
    let from_env = std::env::var_os("MLGIT_REAL_HOME").map(PathBuf::from);
    from_env.unwrap_or_else(|| {
        let out = Command::new("sh").arg("-c").arg("getent passwd $(id -u) | cut -d: -f6").output();
        out.ok()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()))
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()))
    })
}

/// The rudolfs binary, if there is one.
pub fn rudolfs_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MLGIT_TEST_RUDOLFS").map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    if let Ok(out) = Command::new("sh").arg("-c").arg("command -v rudolfs").output() {
        let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        if out.status.success() && found.is_file() {
            return Some(found);
        }
    }
    let cargo = home().join(".cargo/bin/rudolfs");
    cargo.is_file().then_some(cargo)
}

/// The giftless virtualenv, if there is one.
pub fn giftless_venv() -> Option<PathBuf> {
    let venv = std::env::var_os("MLGIT_TEST_GIFTLESS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/mlgit-ci/giftless"));
    venv.join("bin/flask").is_file().then_some(venv)
}

/// Wait until something listens on `port` (or the process died).
fn wait_ready(child: &mut Child, port: u16, name: &str, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{name} exited at start ({status}):\n{log}");
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{name} did not listen on port {port} within 60 s");
}

/// Start rudolfs with local storage under `dir`; its URL names project `org/proj`.
pub fn rudolfs(dir: &Path) -> Option<LfsServer> {
    let Some(binary) = rudolfs_binary() else {
        return missing("rudolfs", "cargo install rudolfs --locked, or set MLGIT_TEST_RUDOLFS");
    };
    std::fs::create_dir_all(dir).expect("server folder");
    let storage = dir.join("rudolfs-storage");
    let log = dir.join("rudolfs.log");
    let port = free_port();
    let mut child = Command::new(binary)
        .arg("--host")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--log-level")
        .arg("warn")
        .arg("local")
        .arg("--path")
        .arg(&storage)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.join("rudolfs.err")).expect("log"))
        .spawn()
        .expect("start rudolfs");
    wait_ready(&mut child, port, "rudolfs", &log);
    Some(LfsServer { child, url: format!("http://127.0.0.1:{port}/api/org/proj"), storage, log })
}

/// Start giftless (anonymous read/write, local storage under `dir`); its URL names `org/repo`.
pub fn giftless(dir: &Path) -> Option<LfsServer> {
    let Some(venv) = giftless_venv() else {
        return missing(
            "giftless",
            "python3 -m venv ~/.cache/mlgit-ci/giftless && pip install -r tests/fixtures/lfs/giftless-requirements.txt, or set MLGIT_TEST_GIFTLESS_VENV",
        );
    };
    std::fs::create_dir_all(dir).expect("server folder");
    let storage = dir.join("giftless-storage");
    // giftless races on the first parallel uploads to a new repository: create it first.
    std::fs::create_dir_all(storage.join("org/repo")).expect("storage");
    let template = include_str!("../fixtures/lfs/giftless.yaml");
    let config = dir.join("giftless.yaml");
    std::fs::write(&config, template.replace("${STORAGE}", storage.to_str().expect("utf-8 path")))
        .expect("config");
    let log = dir.join("giftless.log");
    let port = free_port();
    let mut child = Command::new(venv.join("bin/flask"))
        .args(["--app", "giftless.wsgi_entrypoint", "run", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .env("GIFTLESS_CONFIG_FILE", &config)
        .env("PATH", format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.join("giftless.err")).expect("log"))
        .spawn()
        .expect("start giftless");
    wait_ready(&mut child, port, "giftless", &log);
    Some(LfsServer { child, url: format!("http://127.0.0.1:{port}/org/repo.git/info/lfs"), storage, log })
}

// ------------------------------------------------------------------------------------------------
// A misbehaving server in the test process.

/// How [`FakeLfs`] misbehaves.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Serve and store objects correctly.
    None,
    /// Answer every batch request with this status.
    BatchStatus(u16),
    /// Require HTTP basic auth with this `user:password` on the batch request (401 otherwise).
    Login(String),
    /// Answer every object of a batch with a 404 error.
    ObjectNotFound,
    /// Serve downloads with bytes of the right length but the wrong content.
    WrongBytes,
    /// Cut the connection after this many bytes of the first download of each object (the reply
    /// promises the whole object); later requests are served, honouring `Range`.
    CutAfter(usize),
}

/// A small Git LFS server on a free loopback port, serving `objects` from memory.
pub struct FakeLfs {
    /// The URL to use as `lfs.url`.
    pub url: String,
    /// The objects it has, by oid (uploads add to it).
    pub objects: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// One line per request: `METHOD PATH` plus ` range=…` / ` auth` when present.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Drop for FakeLfs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl FakeLfs {
    pub fn start(fault: Fault) -> FakeLfs {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}/lfs");
        let objects: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let served: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let connections: Arc<AtomicUsize> = Arc::default();
        let state = Shared {
            url: url.clone(),
            objects: objects.clone(),
            requests: requests.clone(),
            fault,
            served,
            connections: connections.clone(),
        };
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = state.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeLfs { url, objects, requests, stop, port, connections }
    }

    pub fn add(&self, content: &[u8]) {
        self.objects.lock().expect("lock").insert(sha256_hex(content), content.to_vec());
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
struct Shared {
    url: String,
    objects: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
    fault: Fault,
    /// How many GETs each object has had.
    served: Arc<Mutex<HashMap<String, usize>>>,
    connections: Arc<AtomicUsize>,
}

fn serve(stream: TcpStream, state: &Shared) {
    state.connections.fetch_add(1, Ordering::Relaxed);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers: HashMap<String, String> = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut logged = format!("{method} {path}");
        if let Some(range) = headers.get("range") {
            logged.push_str(&format!(" range={range}"));
        }
        if headers.contains_key("authorization") {
            logged.push_str(" auth");
        }
        state.requests.lock().expect("lock").push(logged);
        let keep = handle(&method, &path, &headers, &body, state, &mut out);
        if !keep {
            return;
        }
    }
}

fn respond(out: &mut TcpStream, status: u16, content_type: &str, extra: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    out.write_all(head.as_bytes()).is_ok() && out.write_all(body).is_ok()
}

fn handle(
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    state: &Shared,
    out: &mut TcpStream,
) -> bool {
    const JSON: &str = "application/vnd.git-lfs+json";
    if method == "POST" && path == "/lfs/objects/batch" {
        match &state.fault {
            Fault::BatchStatus(code) => {
                let extra = if *code == 401 { "WWW-Authenticate: Basic realm=\"lfs\"\r\n" } else { "" };
                return respond(out, *code, JSON, extra, br#"{"message":"go away"}"#);
            }
            Fault::Login(userpass) => {
                let expected = format!("Basic {}", base64(userpass.as_bytes()));
                if headers.get("authorization") != Some(&expected) {
                    return respond(
                        out,
                        401,
                        JSON,
                        "WWW-Authenticate: Basic realm=\"lfs\"\r\n",
                        br#"{"message":"credentials needed"}"#,
                    );
                }
            }
            _ => {}
        }
        let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let operation = request["operation"].as_str().unwrap_or("").to_string();
        let objects = state.objects.lock().expect("lock");
        let mut answers = Vec::new();
        for o in request["objects"].as_array().cloned().unwrap_or_default() {
            let oid = o["oid"].as_str().unwrap_or("").to_string();
            let size = o["size"].as_u64().unwrap_or(0);
            if matches!(state.fault, Fault::ObjectNotFound) {
                answers.push(serde_json::json!({"oid": oid, "size": size, "error": {"code": 404, "message": "Object does not exist"}}));
                continue;
            }
            let href = format!("{}/obj/{oid}", state.url);
            let have = objects.contains_key(&oid);
            let answer = match (operation.as_str(), have) {
                ("download", true) => {
                    serde_json::json!({"oid": oid, "size": size, "actions": {"download": {"href": href, "header": null}}})
                }
                ("download", false) => {
                    serde_json::json!({"oid": oid, "size": size, "error": {"code": 404, "message": "Object does not exist"}})
                }
                (_, true) => serde_json::json!({"oid": oid, "size": size}),
                _ => {
                    serde_json::json!({"oid": oid, "size": size, "actions": {"upload": {"href": href, "expires_in": 3600}, "verify": {"href": format!("{}/verify", state.url)}}})
                }
            };
            answers.push(answer);
        }
        drop(objects);
        let reply = serde_json::json!({"transfer": "basic", "objects": answers, "hash_algo": "sha256"});
        return respond(out, 200, JSON, "", reply.to_string().as_bytes());
    }
    if method == "POST" && path == "/lfs/verify" {
        return respond(out, 200, JSON, "", b"{}");
    }
    if let Some(oid) = path.strip_prefix("/lfs/obj/") {
        if method == "PUT" {
            state.objects.lock().expect("lock").insert(oid.to_string(), body.to_vec());
            return respond(out, 200, "text/plain", "", b"");
        }
        let content = state.objects.lock().expect("lock").get(oid).cloned();
        let Some(mut content) = content else { return respond(out, 404, "text/plain", "", b"not found") };
        let count = {
            let mut served = state.served.lock().expect("lock");
            let n = served.entry(oid.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        match state.fault {
            Fault::WrongBytes => {
                for b in content.iter_mut() {
                    *b = b.wrapping_add(1);
                }
            }
            Fault::CutAfter(n) if count == 1 => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    content.len()
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&content[..n.min(content.len())]);
                let _ = out.flush();
                let _ = out.shutdown(std::net::Shutdown::Both);
                return false;
            }
            _ => {}
        }
        if let Some(from) = headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
        {
            let total = content.len();
            let extra = format!("Content-Range: bytes {from}-{}/{total}\r\n", total.saturating_sub(1));
            return respond(out, 206, "application/octet-stream", &extra, &content[from.min(total)..]);
        }
        return respond(out, 200, "application/octet-stream", "", &content);
    }
    respond(out, 404, "text/plain", "", b"no such route")
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}
