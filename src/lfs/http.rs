//! A Git LFS server over HTTP(S): batch requests in chunks, each chunk's objects moved by one of N
//! workers over one shared connection pool (so many small objects cost one request each, on warm
//! connections), uploads streamed from the store, downloads streamed into `<store tmp>/<oid>.part`
//! while hashing, resumed with `Range` after a cut, and moved into the store only when the sha256
//! and size match. Credentials come from git's helpers after a 401.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ureq::http::Response;
use ureq::Body;

use super::batch::{self, Action, ResponseObject, MEDIA_TYPE};
use super::credentials::{self, Credentials};
use super::pool::{self, Stop};
use super::{missing_locally, wrong_content, Object, Operation, TransferOptions, TransferReport};
use crate::error::{Error, ErrorKind, Result};
use crate::repo::Repo;
use crate::store::{LfsOid, LfsStore};

/// Objects per batch request at most, unless `lfs.transfer.batchSize` says (git-lfs sends 100;
/// servers may refuse much larger requests).
pub const BATCH_SIZE: usize = 100;

/// A batch chunk is cut once its objects add up to this many bytes, so that large objects are
/// spread over the workers instead of queued behind one another.
const CHUNK_BYTES: u64 = 16 << 20;

/// Bytes read from (or written to) the network between two interrupt checks.
const IO_CHUNK: usize = 256 << 10;

/// Seconds of silence from the server after which a request is given up (`lfs.activitytimeout`).
const ACTIVITY_TIMEOUT_SECS: u64 = 30;

/// Retries of one object's transfer after a network error or a 5xx, when `lfs.transfer.maxretries`
/// does not say.
const DEFAULT_RETRIES: u32 = 3;

/// The server, the agent shared by every worker, and the credentials once filled.
struct Client<'a> {
    agent: ureq::Agent,
    href: String,
    headers: Vec<(String, String)>,
    /// Where `git credential` runs (the repository, so its config applies).
    cwd: PathBuf,
    /// Credentials by origin (`scheme://host:port`), filled at most once each.
    auth: Mutex<HashMap<String, AuthState>>,
    retries: u32,
    /// Objects per batch request at most.
    batch_size: usize,
    opts: &'a TransferOptions<'a>,
}

#[derive(Clone)]
enum AuthState {
    Filled {
        creds: Arc<Credentials>,
        approved: bool,
    },
    /// Filled credentials were refused, or git had none: asked no more in this transfer.
    Refused,
}

/// Counters of one transfer, shared by the workers.
#[derive(Default)]
struct Counts {
    transferred: AtomicUsize,
    bytes: AtomicU64,
    already_there: AtomicUsize,
}

/// Send the objects the server lacks.
pub fn upload(
    repo: &Repo,
    href: &str,
    headers: &[(String, String)],
    objects: &[&Object],
    opts: &TransferOptions,
    jobs: usize,
) -> Result<TransferReport> {
    let client = Client::new(repo, href, headers, opts, jobs);
    run(&client, repo.store(), Operation::Upload, objects, jobs)
}

/// Fetch the given objects (those the local store lacks).
pub fn download(
    repo: &Repo,
    href: &str,
    headers: &[(String, String)],
    objects: &[&Object],
    opts: &TransferOptions,
    jobs: usize,
) -> Result<TransferReport> {
    let client = Client::new(repo, href, headers, opts, jobs);
    run(&client, repo.store(), Operation::Download, objects, jobs)
}

fn run(
    client: &Client,
    store: &LfsStore,
    op: Operation,
    objects: &[&Object],
    jobs: usize,
) -> Result<TransferReport> {
    let counts = Counts::default();
    let report = |counts: &Counts| TransferReport {
        objects: objects.len(),
        transferred: counts.transferred.load(Ordering::Relaxed),
        bytes: counts.bytes.load(Ordering::Relaxed),
        already_there: counts.already_there.load(Ordering::Relaxed),
    };
    if objects.is_empty() {
        return Ok(report(&counts));
    }
    let chunks = chunks(objects, jobs, client.batch_size);
    let total: u64 = objects.iter().map(|o| o.pointer.size).sum();
    let phase = match op {
        Operation::Upload => "upload LFS objects",
        Operation::Download => "download LFS objects",
    };
    // The first batch request goes alone: a server that starts cold (giftless) hands out broken
    // tokens to concurrent first requests, a 401 is met once, and a server that is down is one
    // error before any worker starts.
    let first = Mutex::new(Some(client.batch(op, &chunks[0])?));
    if !client.opts.dry_run {
        client.opts.progress.begin(phase, objects.len() as u64, total);
    }
    let result = pool::for_each(jobs, &chunks, &client.opts.interrupt, phase, |chunk, stop| {
        let reply = match std::ptr::eq(chunk, &chunks[0]) {
            true => first.lock().map_err(|_| poisoned())?.take(),
            false => None,
        };
        let reply = match reply {
            Some(reply) => reply,
            None => client.batch(op, chunk)?,
        };
        transfer_chunk(client, store, op, chunk, reply, stop, &counts)
    });
    if !client.opts.dry_run {
        client.opts.progress.end();
    }
    result.map(|_| report(&counts))
}

/// Cut the objects into batch requests: at most [`BATCH_SIZE`] each, few enough to keep every
/// worker busy, and cut after [`CHUNK_BYTES`] so large objects run in parallel.
fn chunks<'o>(objects: &[&'o Object], jobs: usize, batch_size: usize) -> Vec<Vec<&'o Object>> {
    let per_worker = objects.len().div_ceil(jobs.max(1)).clamp(1, batch_size.max(1));
    let mut out: Vec<Vec<&Object>> = Vec::new();
    let mut current: Vec<&Object> = Vec::new();
    let mut bytes = 0u64;
    for object in objects {
        current.push(object);
        bytes += object.pointer.size;
        if current.len() >= per_worker || bytes >= CHUNK_BYTES {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// One batch request and the transfers it calls for, in this worker.
fn transfer_chunk(
    client: &Client,
    store: &LfsStore,
    op: Operation,
    chunk: &[&Object],
    (reply, received): (batch::Response, Instant),
    stop: &Stop,
    counts: &Counts,
) -> Result<()> {
    let mut answered: HashMap<&str, &ResponseObject> = HashMap::new();
    for object in &reply.objects {
        answered.insert(object.oid.as_str(), object);
    }
    // Check the whole chunk before moving anything.
    let mut work: Vec<(&Object, Action, Option<Action>)> = Vec::new();
    for object in chunk {
        let hex = object.pointer.oid.to_hex();
        let Some(answer) = answered.get(hex.as_str()) else {
            if op == Operation::Upload {
                counts.already_there.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "the LFS server {} did not answer for object {hex} (needed by {})",
                    client.href, object.path
                ),
            )
            .with_hint(
                "retry; if it persists, the server may not have the object: push it from a clone that has it",
            ));
        };
        if let Some(err) = &answer.error {
            return Err(object_error(client, op, object, err));
        }
        let actions = answer.actions.as_ref();
        let action = match op {
            Operation::Upload => actions.and_then(|a| a.upload.clone()),
            Operation::Download => actions.and_then(|a| a.download.clone()),
        };
        let Some(action) = action else {
            if op == Operation::Upload {
                counts.already_there.fetch_add(1, Ordering::Relaxed);
                if !client.opts.dry_run {
                    client.opts.progress.advance(1, object.pointer.size);
                }
                continue;
            }
            return Err(Error::not_found(format!(
                "the LFS server {} offers no download of object {hex} (needed by {})",
                client.href, object.path
            ))
            .with_hint("push it from a clone that has it (`mlgit push` there), then retry"));
        };
        if op == Operation::Upload && !store.contains(&object.pointer) {
            return Err(missing_locally(object, &client.href));
        }
        let verify = actions.and_then(|a| a.verify.clone());
        work.push((object, action, verify));
    }
    if client.opts.dry_run {
        for (object, _, _) in &work {
            counts.transferred.fetch_add(1, Ordering::Relaxed);
            counts.bytes.fetch_add(object.pointer.size, Ordering::Relaxed);
        }
        return Ok(());
    }
    for (object, mut action, mut verify) in work {
        if stop.is_set() {
            return Ok(());
        }
        client
            .opts
            .interrupt
            .check("the LFS transfer")
            .map_err(|_| crate::interrupt::interrupted_transfer("the LFS transfer"))?;
        if action.expired(received) {
            (action, verify) = client.fresh_action(op, object)?;
        }
        let moved = match op {
            Operation::Upload => client.upload_one(store, object, &action, verify.as_ref(), stop)?,
            Operation::Download => client.download_one(store, object, &action, stop)?,
        };
        counts.transferred.fetch_add(1, Ordering::Relaxed);
        counts.bytes.fetch_add(moved, Ordering::Relaxed);
        client.opts.progress.advance(1, 0);
    }
    Ok(())
}

/// The error of an object the server answered with an `error`.
fn object_error(client: &Client, op: Operation, object: &Object, err: &batch::ObjectError) -> Error {
    let oid = object.pointer.oid;
    let path = &object.path;
    let server = &client.href;
    let message = if err.message.is_empty() { String::new() } else { format!(": {}", err.message) };
    match (op, err.code) {
        (Operation::Download, 404) | (Operation::Download, 410) => Error::not_found(format!(
            "LFS object {oid} (needed by {path}) is not on the LFS server {server} (error {}{message})",
            err.code
        ))
        .with_hint(
            "push it from a clone that has it (`mlgit push` there, or `git lfs push --all`), then retry",
        ),
        (_, 403) => Error::invalid(format!(
            "the LFS server {server} does not let you {} object {oid} (needed by {path}){message}",
            op.as_str()
        ))
        .with_hint("check that your account may write to this repository's LFS storage"),
        _ => Error::invalid(format!(
            "the LFS server {server} refused to {} object {oid} (needed by {path}): error {}{message}",
            op.as_str(),
            err.code
        ))
        .with_hint("see the server's message; fix what it says (a size or storage limit?), then retry"),
    }
}

impl<'a> Client<'a> {
    fn new(
        repo: &Repo,
        href: &str,
        headers: &[(String, String)],
        opts: &'a TransferOptions<'a>,
        jobs: usize,
    ) -> Client<'a> {
        let tls = tls_config(repo);
        let git_config = repo.git().config().ok();
        let number = |key: &str| git_config.as_ref().and_then(|c| c.get_i64(key).ok());
        // A server that stops sending is given up on after `lfs.activitytimeout` seconds of
        // silence (git-lfs's setting and default, 30), then the transfer is retried.
        let idle = Duration::from_secs(
            number("lfs.activitytimeout")
                .filter(|n| *n > 0)
                .map(|n| n as u64)
                .unwrap_or(ACTIVITY_TIMEOUT_SECS),
        );
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_idle_connections(jobs * 2 + 4)
            .max_idle_connections_per_host(jobs * 2 + 4)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(idle))
            .timeout_per_write(Some(idle))
            .user_agent(format!("mlgit/{} (git-lfs compatible)", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(config, super::net::connector(), CachedResolver::default());
        let retries =
            number("lfs.transfer.maxretries").map(|n| n.clamp(0, 100) as u32).unwrap_or(DEFAULT_RETRIES);
        let batch_size =
            number("lfs.transfer.batchSize").map(|n| n.clamp(1, 10_000) as usize).unwrap_or(BATCH_SIZE);
        Client {
            agent,
            href: href.trim_end_matches('/').to_string(),
            headers: headers.to_vec(),
            cwd: repo.workdir().to_path_buf(),
            auth: Mutex::new(HashMap::new()),
            retries,
            batch_size,
            opts,
        }
    }

    /// POST one batch request; the reply and when it arrived (actions expire from then).
    fn batch(&self, op: Operation, objects: &[&Object]) -> Result<(batch::Response, Instant)> {
        let request = batch::Request {
            operation: op.as_str(),
            transfers: ["basic"],
            reference: self.opts.refspec.as_deref().map(|name| batch::RefName { name }),
            objects: objects
                .iter()
                .map(|o| batch::RequestObject { oid: o.pointer.oid.to_hex(), size: o.pointer.size })
                .collect(),
            hash_algo: "sha256",
        };
        let body = serde_json::to_vec(&request).map_err(|e| {
            Error::invalid("cannot encode an LFS batch request").with_source(e).with_hint("report this bug")
        })?;
        let url = format!("{}/objects/batch", self.href);
        let mut response = self.send(&url, op, |auth| {
            let mut req =
                self.agent.post(&url).header("Accept", MEDIA_TYPE).header("Content-Type", MEDIA_TYPE);
            for (k, v) in &self.headers {
                req = req.header(k, v);
            }
            if let Some(auth) = auth {
                req = req.header("Authorization", auth);
            }
            req.send(&body[..])
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .map_err(|e| self.net_error(&url, e))?;
        if status != 200 {
            return Err(self.status_error(&url, op, status, &text));
        }
        let reply: batch::Response = serde_json::from_slice(&text).map_err(|e| {
            Error::invalid(format!("the LFS server {} sent a batch reply mlgit cannot read", self.href))
                .with_source(e)
                .with_hint("check that lfs.url points at a Git LFS server (the URL that ends in /info/lfs)")
        })?;
        if let Some(transfer) = reply.transfer.as_deref().filter(|t| *t != "basic") {
            return Err(Error::invalid(format!(
                "the LFS server {} chose the transfer adapter '{transfer}', and mlgit speaks only 'basic'",
                self.href
            ))
            .with_hint("use a server that supports the basic transfer (every Git LFS server does)"));
        }
        Ok((reply, Instant::now()))
    }

    /// Ask again for one object whose action expired before its turn came.
    fn fresh_action(&self, op: Operation, object: &Object) -> Result<(Action, Option<Action>)> {
        let (reply, _) = self.batch(op, &[object])?;
        let answer = reply.objects.into_iter().next();
        if let Some(err) = answer.as_ref().and_then(|a| a.error.as_ref()) {
            return Err(object_error(self, op, object, err));
        }
        let actions = answer.and_then(|a| a.actions).unwrap_or_default();
        let action = match op {
            Operation::Upload => actions.upload,
            Operation::Download => actions.download,
        };
        let action = action.ok_or_else(|| {
            Error::invalid(format!(
                "the LFS server {} withdrew the {} of object {}",
                self.href,
                op.as_str(),
                object.pointer.oid
            ))
            .with_hint("retry the command")
        })?;
        Ok((action, actions.verify))
    }

    /// Send a request built by `build` (given the Authorization value to add, if any), filling
    /// credentials after a 401 and retrying once with them; approving or rejecting them after.
    fn send(
        &self,
        url: &str,
        op: Operation,
        mut build: impl FnMut(Option<&str>) -> std::result::Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        let origin = origin(url);
        let mut creds = self.known_credentials(&origin)?;
        loop {
            let auth = creds.as_ref().map(|c| c.basic());
            let response = build(auth.as_deref()).map_err(|e| self.net_error(url, e))?;
            let status = response.status().as_u16();
            if status != 401 {
                if let Some(c) = &creds {
                    if (200..300).contains(&status) {
                        self.approve(&origin, c);
                    }
                }
                return Ok(response);
            }
            match creds {
                Some(c) => {
                    self.refuse(&origin, &c);
                    return Err(self.unauthorized(url, op, true));
                }
                None => {
                    creds = Some(self.fill(&origin, url, op)?);
                }
            }
        }
    }

    fn known_credentials(&self, origin: &str) -> Result<Option<Arc<Credentials>>> {
        let map = self.auth.lock().map_err(|_| poisoned())?;
        Ok(match map.get(origin) {
            Some(AuthState::Filled { creds, .. }) => Some(creds.clone()),
            _ => None,
        })
    }

    /// Credentials for `origin`: those another worker filled meanwhile, else `git credential fill`
    /// (once, under the lock, so a prompt is shown once).
    fn fill(&self, origin: &str, url: &str, op: Operation) -> Result<Arc<Credentials>> {
        let mut map = self.auth.lock().map_err(|_| poisoned())?;
        match map.get(origin) {
            Some(AuthState::Filled { creds, .. }) => return Ok(creds.clone()),
            Some(AuthState::Refused) => return Err(self.unauthorized(url, op, false)),
            None => {}
        }
        match credentials::fill(&self.cwd, url) {
            Some(creds) => {
                let creds = Arc::new(creds);
                map.insert(origin.to_string(), AuthState::Filled { creds: creds.clone(), approved: false });
                Ok(creds)
            }
            None => {
                map.insert(origin.to_string(), AuthState::Refused);
                Err(self.unauthorized(url, op, false))
            }
        }
    }

    fn approve(&self, origin: &str, creds: &Arc<Credentials>) {
        let Ok(mut map) = self.auth.lock() else { return };
        if let Some(AuthState::Filled { approved, creds: known }) = map.get_mut(origin) {
            if !*approved && Arc::ptr_eq(known, creds) {
                *approved = true;
                credentials::approve(&self.cwd, creds);
            }
        }
    }

    fn refuse(&self, origin: &str, creds: &Arc<Credentials>) {
        let Ok(mut map) = self.auth.lock() else { return };
        if let Some(AuthState::Filled { creds: known, .. }) = map.get(origin) {
            if Arc::ptr_eq(known, creds) {
                credentials::reject(&self.cwd, creds);
                map.insert(origin.to_string(), AuthState::Refused);
            }
        }
    }

    fn unauthorized(&self, url: &str, op: Operation, had_credentials: bool) -> Error {
        let server = &self.href;
        if had_credentials {
            Error::invalid(format!(
                "the LFS server {server} refused the credentials for {} (HTTP 401 at {url})",
                op.as_str()
            ))
            .with_hint("the credential helper's user name or password/token is wrong (it was told to forget them): retry to enter new ones, or update the helper")
        } else {
            Error::invalid(format!("the LFS server {server} needs a login (HTTP 401 at {url}), and git has no credentials for it"))
                .with_hint("set up a git credential helper with your user name and token (`git config credential.helper store`, then `git credential approve`), or run in a terminal to be asked")
        }
    }

    /// The error of a request the server answered with `status` (not 2xx, not 401).
    fn status_error(&self, url: &str, op: Operation, status: u16, body: &[u8]) -> Error {
        let server = &self.href;
        let said = serde_json::from_slice::<batch::ServerMessage>(body)
            .ok()
            .map(|m| m.message)
            .filter(|m| !m.is_empty())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        match status {
            403 => Error::invalid(format!(
                "the LFS server {server} does not let you {} (HTTP 403 at {url}){said}",
                match op {
                    Operation::Upload => "upload",
                    Operation::Download => "download",
                }
            ))
            .with_hint(match op {
                Operation::Upload => "ask for write access to the repository (or use a token that has it), then retry",
                Operation::Download => "ask for read access to the repository (or use a token that has it), then retry",
            }),
            404 => Error::not_found(format!("no Git LFS server answers at {url} (HTTP 404){said}")).with_hint(
                "check the LFS URL: set it with `git config lfs.url https://HOST/PATH/info/lfs` (or in .lfsconfig)",
            ),
            500..=599 => Error::new(ErrorKind::Io, format!("the LFS server {server} failed (HTTP {status} at {url}){said}"))
                .with_hint("the server is in trouble: retry later; if it persists, tell its administrator"),
            _ => Error::invalid(format!("the LFS server {server} refused the request (HTTP {status} at {url}){said}"))
                .with_hint("see the server's message; fix what it says, then retry"),
        }
    }

    fn net_error(&self, url: &str, err: ureq::Error) -> Error {
        let text = err.to_string().to_ascii_lowercase();
        let hint = if matches!(err, ureq::Error::Tls(_))
            || text.contains("certificate")
            || text.contains("ssl")
        {
            "the TLS connection failed: for a server whose certificate comes from your own authority, `git config http.sslCAInfo CA.pem`"
        } else {
            "check that the server is running and reachable, and that the LFS URL is right (`git config lfs.url`)"
        };
        Error::new(ErrorKind::Io, format!("cannot reach the LFS server {} ({url}): {err}", self.href))
            .with_source(err)
            .with_hint(hint)
    }

    /// PUT one object from the store, then POST its verify action. Returns the bytes sent.
    fn upload_one(
        &self,
        store: &LfsStore,
        object: &Object,
        action: &Action,
        verify: Option<&Action>,
        stop: &Stop,
    ) -> Result<u64> {
        let mut attempt = 0;
        loop {
            match self.put(store, object, action, stop) {
                Ok(()) => break,
                Err(Retry::Again(err)) if attempt < self.retries && !stop.is_set() => {
                    attempt += 1;
                    backoff(attempt);
                    let _ = err;
                }
                Err(Retry::Again(err)) | Err(Retry::Fail(err)) => return Err(err),
            }
        }
        if let Some(verify) = verify {
            self.verify(object, verify)?;
        }
        Ok(object.pointer.size)
    }

    fn put(
        &self,
        store: &LfsStore,
        object: &Object,
        action: &Action,
        stop: &Stop,
    ) -> std::result::Result<(), Retry> {
        let path = store.object_path(&object.pointer.oid);
        let mut hashed: Option<(LfsOid, u64)> = None;
        let sent = self.send(&action.href, Operation::Upload, |auth| {
            let file = File::open(&path).map_err(ureq::Error::Io)?;
            let mut reader = Hashing {
                inner: file,
                hasher: Sha256::new(),
                size: 0,
                expected: object.pointer.size,
                client: self,
                stop,
                done: &mut hashed,
            };
            let mut req = self
                .agent
                .put(&action.href)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", object.pointer.size.to_string());
            let mut has_auth = false;
            for (k, v) in action.headers() {
                has_auth |= k.eq_ignore_ascii_case("authorization");
                req = req.header(k, v);
            }
            if let (Some(auth), false) = (auth, has_auth) {
                req = req.header("Authorization", auth);
            }
            req.send(ureq::SendBody::from_reader(&mut reader))
        });
        // Damage in the local copy explains whatever the server did (rudolfs hangs up on it).
        if let Some((oid, size)) =
            hashed.filter(|(oid, size)| *oid != object.pointer.oid || *size != object.pointer.size)
        {
            return Err(Retry::Fail(
                Error::new(
                    ErrorKind::CheckFailed,
                    format!(
                        "the local copy of LFS object {} (needed by {}) is damaged: {size} bytes hashing to {oid}",
                        object.pointer.oid, object.path
                    ),
                )
                .with_hint("repair the store with `mlgit verify --repair` (or fetch the object again), then push again"),
            ));
        }
        let mut response = sent.map_err(|e| {
            if self.opts.interrupt.is_set() {
                return Retry::Fail(crate::interrupt::interrupted_transfer("the LFS upload"));
            }
            if e.kind() == ErrorKind::Io {
                Retry::Again(e)
            } else {
                Retry::Fail(e)
            }
        })?;
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        if !(200..300).contains(&status) {
            let err = self.status_error(&action.href, Operation::Upload, status, &body);
            return Err(if status >= 500 || status == 429 { Retry::Again(err) } else { Retry::Fail(err) });
        }
        Ok(())
    }

    fn verify(&self, object: &Object, verify: &Action) -> Result<()> {
        let body = serde_json::to_vec(&batch::RequestObject {
            oid: object.pointer.oid.to_hex(),
            size: object.pointer.size,
        })
        .map_err(|e| {
            Error::invalid("cannot encode a verify request").with_source(e).with_hint("report this bug")
        })?;
        let mut response = self.send(&verify.href, Operation::Upload, |auth| {
            let mut req =
                self.agent.post(&verify.href).header("Accept", MEDIA_TYPE).header("Content-Type", MEDIA_TYPE);
            let mut has_auth = false;
            for (k, v) in verify.headers() {
                has_auth |= k.eq_ignore_ascii_case("authorization");
                req = req.header(k, v);
            }
            if let (Some(auth), false) = (auth, has_auth) {
                req = req.header("Authorization", auth);
            }
            req.send(&body[..])
        })?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        if !(200..300).contains(&status) {
            let err = self.status_error(&verify.href, Operation::Upload, status, &text);
            return Err(Error::new(
                err.kind(),
                format!(
                    "the LFS server {} could not verify object {} (needed by {}): {}",
                    self.href,
                    object.pointer.oid,
                    object.path,
                    err.message()
                ),
            )
            .with_hint("push again; the server keeps only objects it could verify"));
        }
        Ok(())
    }

    /// GET one object into `<tmp>/<oid>.part` (resuming what is there), check it, move it into
    /// the store. Returns the bytes received.
    fn download_one(&self, store: &LfsStore, object: &Object, action: &Action, stop: &Stop) -> Result<u64> {
        let tmp = store.tmp_dir();
        fs::create_dir_all(tmp).map_err(|e| Error::io("create", tmp, e))?;
        let part = store.part_path(&object.pointer.oid);
        let mut partial = Partial::resume(&part, object.pointer.size, self.opts)?;
        let mut received = 0u64;
        let mut attempt = 0;
        loop {
            // A complete part is checked (and kept or removed) even when the transfer stops.
            if partial.size >= object.pointer.size {
                break;
            }
            if stop.is_set() {
                return Ok(received);
            }
            match self.get_into(&mut partial, object, action, stop) {
                Ok(n) => {
                    received += n;
                    if partial.size >= object.pointer.size {
                        break;
                    }
                    if stop.is_set() {
                        return Ok(received);
                    }
                    // The body ended early without an error (a server that closed cleanly).
                    if attempt >= self.retries {
                        return Err(cut_short(object, &self.href, partial.size));
                    }
                    attempt += 1;
                }
                Err(Retry::Again(err)) if attempt < self.retries => {
                    attempt += 1;
                    backoff(attempt);
                    let _ = err;
                }
                Err(Retry::Again(err)) | Err(Retry::Fail(err)) => return Err(err),
            }
        }
        let (oid, size) = partial.finish();
        if oid != object.pointer.oid || size != object.pointer.size {
            let _ = fs::remove_file(&part);
            return Err(wrong_content(object, &self.href, &oid, size));
        }
        store.install_checked(&part, &object.pointer)?;
        Ok(received)
    }

    /// One GET of the rest of the object, appended to the part file. Returns the bytes appended.
    fn get_into(
        &self,
        partial: &mut Partial,
        object: &Object,
        action: &Action,
        stop: &Stop,
    ) -> std::result::Result<u64, Retry> {
        let from = partial.size;
        let response = self
            .send(&action.href, Operation::Download, |auth| {
                let mut req = self.agent.get(&action.href);
                let mut has_auth = false;
                for (k, v) in action.headers() {
                    has_auth |= k.eq_ignore_ascii_case("authorization");
                    req = req.header(k, v);
                }
                if let (Some(auth), false) = (auth, has_auth) {
                    req = req.header("Authorization", auth);
                }
                if from > 0 {
                    req = req.header("Range", format!("bytes={from}-"));
                }
                req.call()
            })
            .map_err(|e| if e.kind() == ErrorKind::Io { Retry::Again(e) } else { Retry::Fail(e) })?;
        let status = response.status().as_u16();
        match status {
            200 if from > 0 => partial.restart().map_err(Retry::Fail)?,
            200 => {}
            206 if from > 0 && range_start(&response) == Some(from) => {}
            206 | 416 => {
                // A range other than the one asked for, or none the server can serve: start over.
                partial.restart().map_err(Retry::Fail)?;
                return Ok(0);
            }
            _ => {
                let mut response = response;
                let body = response.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
                let err = self.status_error(&action.href, Operation::Download, status, &body);
                let err = if status == 404 || status == 410 {
                    Error::not_found(format!(
                        "LFS object {} (needed by {}) is not on the LFS server {} (HTTP {status})",
                        object.pointer.oid, object.path, self.href
                    ))
                    .with_hint("push it from a clone that has it (`mlgit push` there), then retry")
                } else {
                    err
                };
                return Err(if status >= 500 || status == 429 {
                    Retry::Again(err)
                } else {
                    Retry::Fail(err)
                });
            }
        }
        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; (object.pointer.size as usize).clamp(1, IO_CHUNK)];
        let mut got = 0u64;
        loop {
            if stop.is_set() {
                return Ok(got);
            }
            if self.opts.interrupt.is_set() {
                partial.flush().map_err(Retry::Fail)?;
                return Err(Retry::Fail(crate::interrupt::interrupted_transfer("the LFS download")));
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    partial.flush().map_err(Retry::Fail)?;
                    let err = Error::new(
                        ErrorKind::Io,
                        format!(
                            "the download of LFS object {} (needed by {}) from {} was cut after {} of {} bytes",
                            object.pointer.oid, object.path, self.href, partial.size, object.pointer.size
                        ),
                    )
                    .with_source(e)
                    .with_hint("run the command again: it resumes where the transfer stopped");
                    return Err(Retry::Again(err));
                }
            };
            if partial.size + n as u64 > object.pointer.size {
                // More bytes than the object has: wrong content, whatever they are.
                partial.append(&buf[..n]).map_err(Retry::Fail)?;
                return Ok(got + n as u64);
            }
            partial.append(&buf[..n]).map_err(Retry::Fail)?;
            got += n as u64;
            self.opts.progress.advance(0, n as u64);
        }
        partial.flush().map_err(Retry::Fail)?;
        Ok(got)
    }
}

/// The system resolver, asked once per host and port for the whole transfer: ureq resolves
/// before every request (pooled connection or not), and glibc caches nothing, so thousands of
/// small objects would otherwise cost thousands of DNS queries.
#[derive(Default)]
struct CachedResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    cache: Mutex<HashMap<String, ureq::unversioned::resolver::ResolvedSocketAddrs>>,
}

impl std::fmt::Debug for CachedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedResolver")
    }
}

impl ureq::unversioned::resolver::Resolver for CachedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        if let Some(hit) = self.cache.lock().ok().and_then(|cache| cache.get(&key).cloned()) {
            return Ok(hit);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, addrs.clone());
        }
        Ok(addrs)
    }
}

/// TLS through the system's OpenSSL: its trust store, or git's `http.sslCAInfo` / `GIT_SSL_CAINFO`
/// bundle when one is set; `http.sslVerify=false` / `GIT_SSL_NO_VERIFY` turn verification off, as
/// they do for git itself.
fn tls_config(repo: &Repo) -> ureq::tls::TlsConfig {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
    let config = repo.git().config().ok();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let ca_file = env("GIT_SSL_CAINFO")
        .or_else(|| config.as_ref()?.get_path("http.sslCAInfo").ok().map(|p| p.display().to_string()));
    let no_verify = env("GIT_SSL_NO_VERIFY").is_some()
        || config.as_ref().and_then(|c| c.get_bool("http.sslVerify").ok()) == Some(false);
    let roots = ca_file
        .and_then(|path| fs::read(path).ok())
        .map(|pem| {
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .filter(|certs| !certs.is_empty())
        .map(|certs| RootCerts::new_with_certs(&certs))
        .unwrap_or(RootCerts::PlatformVerifier);
    TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(roots)
        .disable_verification(no_verify)
        .build()
}

/// Whether a failed transfer may be tried again (network errors, 5xx) or not.
enum Retry {
    Again(Error),
    Fail(Error),
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis((100u64 << attempt.min(5)).min(2_000)));
}

fn cut_short(object: &Object, server: &str, have: u64) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "the download of LFS object {} (needed by {}) from {server} ended after {have} of {} bytes",
            object.pointer.oid, object.path, object.pointer.size
        ),
    )
    .with_hint("run the command again: it resumes where the transfer stopped")
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Io, "an LFS transfer thread panicked")
        .with_hint("report this bug with the command you ran")
}

/// `scheme://host:port` of a URL: credentials are kept per origin.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    format!("{scheme}://{host}")
}

/// The first byte of a 206 reply's `Content-Range: bytes N-M/T`.
fn range_start(response: &Response<Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim();
    range.split('-').next()?.trim().parse().ok()
}

/// A download in progress: the part file, and the hash of what it holds.
struct Partial {
    path: PathBuf,
    file: Option<std::io::BufWriter<File>>,
    hasher: Sha256,
    size: u64,
}

impl Partial {
    /// Open the part file of an earlier, stopped download (re-hashing what it holds), or a new one.
    fn resume(path: &Path, expected: u64, opts: &TransferOptions) -> Result<Partial> {
        let mut partial = Partial { path: path.to_path_buf(), file: None, hasher: Sha256::new(), size: 0 };
        match fs::metadata(path) {
            Ok(m) if m.len() <= expected && m.len() > 0 => {
                let mut file = File::open(path).map_err(|e| Error::io("read", path, e))?;
                let mut buf = vec![0u8; IO_CHUNK];
                loop {
                    let n = match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Error::io("read", path, e)),
                    };
                    partial.hasher.update(&buf[..n]);
                    partial.size += n as u64;
                }
                opts.progress.advance(0, partial.size);
            }
            Ok(_) => {
                let _ = fs::remove_file(path);
            }
            Err(_) => {}
        }
        Ok(partial)
    }

    fn writer(&mut self) -> Result<&mut std::io::BufWriter<File>> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io("write", &self.path, e))?;
            self.file = Some(std::io::BufWriter::with_capacity(IO_CHUNK, file));
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(poisoned()),
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        self.writer()?.write_all(bytes).map_err(|e| Error::io("write", &path, e))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.flush().map_err(|e| Error::io("write", &self.path, e))?;
        }
        Ok(())
    }

    /// Throw away what the part file holds (the server sent the whole object instead of the rest).
    fn restart(&mut self) -> Result<()> {
        self.file = None;
        File::create(&self.path).map_err(|e| Error::io("write", &self.path, e))?;
        self.hasher = Sha256::new();
        self.size = 0;
        Ok(())
    }

    /// Close the file; the hash and size of its content.
    fn finish(mut self) -> (LfsOid, u64) {
        let _ = self.flush();
        self.file = None;
        (LfsOid(self.hasher.finalize().into()), self.size)
    }
}

/// The body of an upload: the store file, hashed and counted as it is sent; it stops the upload
/// (with an error) when mlgit is interrupted or another worker failed.
struct Hashing<'c, 'o> {
    inner: File,
    hasher: Sha256,
    size: u64,
    /// The pointer's size: the hash is taken once that many bytes were read.
    expected: u64,
    client: &'c Client<'o>,
    stop: &'c Stop,
    done: &'c mut Option<(LfsOid, u64)>,
}

impl Read for Hashing<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.client.opts.interrupt.is_set() || self.stop.is_set() {
            return Err(std::io::Error::other("the transfer was stopped"));
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        self.client.opts.progress.advance(0, n as u64);
        // The client stops reading at Content-Length, so the end may never be read.
        if (n == 0 || self.size >= self.expected) && self.done.is_none() {
            let hasher = std::mem::take(&mut self.hasher);
            *self.done = Some((LfsOid(hasher.finalize().into()), self.size));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Pointer;

    fn object(size: u64, i: u8) -> Object {
        Object { pointer: Pointer { oid: LfsOid([i; 32]), size }, path: format!("f{i}") }
    }

    #[test]
    fn many_small_objects_fill_batches_and_large_ones_spread_over_workers() {
        let small: Vec<Object> = (0..250).map(|i| object(10, i as u8)).collect();
        let refs: Vec<&Object> = small.iter().collect();
        let cut = chunks(&refs, 8, BATCH_SIZE);
        assert_eq!(cut.iter().map(Vec::len).max(), Some(32), "250 objects over 8 workers");
        let many: Vec<Object> = (0..2000).map(|i| object(10, (i % 256) as u8)).collect();
        let refs: Vec<&Object> = many.iter().collect();
        assert!(chunks(&refs, 8, BATCH_SIZE).iter().all(|c| c.len() == BATCH_SIZE));
        let large: Vec<Object> = (0..6).map(|i| object(512 << 20, i)).collect();
        let refs: Vec<&Object> = large.iter().collect();
        assert_eq!(chunks(&refs, 8, BATCH_SIZE).len(), 6);
    }

    #[test]
    fn origins_and_ranges_are_read() {
        assert_eq!(origin("http://u:p@127.0.0.1:9/api/x"), "http://127.0.0.1:9");
        assert_eq!(origin("https://h.example/a/b"), "https://h.example");
    }
}
