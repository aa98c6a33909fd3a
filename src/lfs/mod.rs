//! The Git LFS client: finding a remote's LFS server as git-lfs does, the batch API (basic
//! transfer) over HTTP(S), `file://` remotes written directly, and parallel, resumable,
//! sha256-verified transfers into the local store. Nothing here moves refs.

use git2::Oid;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::store::Pointer;

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

/// Where a remote's LFS objects live.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A Git LFS server (batch API at `<href>/objects/batch`), with headers from SSH authentication.
    Http { href: String, headers: Vec<(String, String)> },
    /// The `lfs/objects` folder of a repository on this machine (`file://` URLs and local paths).
    Local { objects: std::path::PathBuf },
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

/// What a transfer did.
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

/// The LFS endpoint of `remote` for `operation`. `branch_tree` is the tree whose `.lfsconfig` is
/// read (after `lfs.url` and `remote.<name>.lfsurl`).
pub fn endpoint(
    _repo: &Repo,
    _remote: &Remote,
    _operation: Operation,
    _branch_tree: Option<Oid>,
) -> Result<Endpoint> {
    Err(Error::invalid("LFS transport: not built yet").with_hint("work in progress (issue 10)"))
}

/// Send the objects the server lacks.
pub fn upload(
    _repo: &Repo,
    _endpoint: &Endpoint,
    _objects: &[Object],
    _opts: &TransferOptions,
) -> Result<TransferReport> {
    Err(Error::invalid("LFS transport: not built yet").with_hint("work in progress (issue 10)"))
}

/// Fetch the objects the local store lacks.
pub fn download(
    _repo: &Repo,
    _endpoint: &Endpoint,
    _objects: &[Object],
    _opts: &TransferOptions,
) -> Result<TransferReport> {
    Err(Error::invalid("LFS transport: not built yet").with_hint("work in progress (issue 10)"))
}
