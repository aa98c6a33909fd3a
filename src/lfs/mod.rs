//! The Git LFS client: finding a remote's LFS server as git-lfs does, the batch API (basic
//! transfer) over HTTP(S), `file://` remotes written directly, and parallel, resumable,
//! sha256-verified transfers into the local store. Nothing here moves refs.
//!
//! Every object that arrives is hashed while it is written to a temporary file and moved to its
//! final path only when its sha256 and size match its pointer: wrong bytes are never stored.

pub mod batch;
mod credentials;
pub mod endpoint;
mod http;
mod local;
mod net;
mod pool;
pub mod ssh;

use std::collections::HashSet;

use git2::Oid;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::store::{LfsOid, Pointer};

/// An LFS object and one path that needs it (named in messages about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub pointer: Pointer,
    pub path: String,
}

/// Upload or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Upload,
    Download,
}

impl Operation {
    /// The batch API's name of the operation (also `git-lfs-authenticate`'s).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upload => "upload",
            Operation::Download => "download",
        }
    }
}

/// Where a remote's LFS objects live.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A Git LFS server (batch API at `<href>/objects/batch`), with headers from SSH authentication.
    Http { href: String, headers: Vec<(String, String)> },
    /// The `lfs/objects` folder of a repository on this machine (`file://` URLs and local paths).
    Local { objects: std::path::PathBuf },
}

impl Endpoint {
    /// The server or folder, for messages.
    pub fn label(&self) -> String {
        match self {
            Endpoint::Http { href, .. } => href.clone(),
            Endpoint::Local { objects } => objects.display().to_string(),
        }
    }
}

/// How a transfer runs.
pub struct TransferOptions<'a> {
    pub interrupt: Interrupt,
    pub progress: &'a dyn Progress,
    /// Parallel transfers (None: `lfs.concurrenttransfers`, else the default).
    pub jobs: Option<usize>,
    /// The ref the objects belong to (the batch request's `ref`).
    pub refspec: Option<String>,
    /// Ask the server what it lacks, but transfer nothing.
    pub dry_run: bool,
}

/// What a transfer did. With `dry_run`, `transferred` and `bytes` count what would have moved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransferReport {
    /// Objects asked for.
    pub objects: usize,
    /// Objects moved.
    pub transferred: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// Objects that were already where they had to go.
    pub already_there: usize,
}

/// Parallel transfers when neither the caller nor `lfs.concurrenttransfers` says (git-lfs's default).
pub const DEFAULT_JOBS: usize = 8;

/// The LFS endpoint of `remote` for `operation`. `branch_tree` is the tree whose `.lfsconfig` is
/// read (after `lfs.url` and `remote.<name>.lfsurl`).
pub fn endpoint(
    repo: &Repo,
    remote: &Remote,
    operation: Operation,
    branch_tree: Option<Oid>,
) -> Result<Endpoint> {
    endpoint::discover(repo, remote, operation, branch_tree)
}

/// Send the objects the server lacks.
pub fn upload(
    repo: &Repo,
    endpoint: &Endpoint,
    objects: &[Object],
    opts: &TransferOptions,
) -> Result<TransferReport> {
    let objects = unique(objects);
    let jobs = jobs(repo, opts);
    match endpoint {
        Endpoint::Local { objects: dir } => local::upload(repo, dir, &objects, opts, jobs),
        Endpoint::Http { href, headers } => http::upload(repo, href, headers, &objects, opts, jobs),
    }
}

/// Fetch the objects the local store lacks.
pub fn download(
    repo: &Repo,
    endpoint: &Endpoint,
    objects: &[Object],
    opts: &TransferOptions,
) -> Result<TransferReport> {
    let objects = unique(objects);
    let asked = objects.len();
    let missing: Vec<&Object> = objects.into_iter().filter(|o| !repo.store().contains(&o.pointer)).collect();
    let jobs = jobs(repo, opts);
    let mut report = match endpoint {
        Endpoint::Local { objects: dir } => local::download(repo, dir, &missing, opts, jobs)?,
        Endpoint::Http { href, headers } => http::download(repo, href, headers, &missing, opts, jobs)?,
    };
    report.already_there += asked - missing.len();
    report.objects = asked;
    Ok(report)
}

/// Each object once (several paths may need the same content), in the order given.
fn unique(objects: &[Object]) -> Vec<&Object> {
    let mut seen: HashSet<LfsOid> = HashSet::with_capacity(objects.len());
    objects.iter().filter(|o| seen.insert(o.pointer.oid)).collect()
}

/// How many transfers run at once: the caller's choice, else `lfs.concurrenttransfers`, else 8.
fn jobs(repo: &Repo, opts: &TransferOptions) -> usize {
    let configured = || {
        let config = repo.git().config().ok()?;
        config.get_i64("lfs.concurrenttransfers").ok().filter(|n| *n > 0).map(|n| n as usize)
    };
    opts.jobs.or_else(configured).unwrap_or(DEFAULT_JOBS).clamp(1, 256)
}

/// The error of an object whose bytes are not what its pointer says: nothing was stored.
pub(crate) fn wrong_content(object: &Object, from: &str, got: &LfsOid, got_size: u64) -> Error {
    Error::new(
        ErrorKind::CheckFailed,
        format!(
            "LFS object {} (needed by {}) from {from} has the wrong content: got {got_size} bytes hashing to {got}, expected {} bytes",
            object.pointer.oid, object.path, object.pointer.size
        ),
    )
    .with_hint(format!(
        "nothing was stored; the copy on {from} is damaged: push the object again from a clone that has it intact (`mlgit push`), then retry"
    ))
}

/// The error of an object to upload that neither the server nor the local store has.
pub(crate) fn missing_locally(object: &Object, to: &str) -> Error {
    Error::not_found(format!(
        "LFS object {} (needed by {}) is not in the local store, and {to} does not have it either",
        object.pointer.oid, object.path
    ))
    .with_hint(format!(
        "fetch it first (`mlgit pull --include '{}'` on the ref that has it), then push again",
        object.path
    ))
}
