//! LFS objects of a repository on this machine (`file://` URLs and local paths): copied straight
//! into `<remote>/lfs/objects` (or into the local store) through a temporary file in the
//! receiving side's `lfs/tmp`, hashed on the way and renamed only when the sha256 and size match.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::pool::{self, Stop};
use super::{missing_locally, wrong_content, Object, TransferOptions, TransferReport};
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::store::{LfsOid, LfsStore, CHUNK};

/// The store whose objects folder is `objects` (`<git dir>/lfs/objects`).
fn remote_store(objects: &Path) -> Result<LfsStore> {
    let common = objects.parent().and_then(Path::parent).filter(|d| d.is_dir()).ok_or_else(|| {
        Error::not_found(format!("the repository holding {} does not exist", objects.display()))
            .with_hint("check the remote's URL (`git remote -v`)")
    })?;
    Ok(LfsStore::new(common))
}

/// Copy to the remote's store the objects it lacks.
pub fn upload(
    repo: &Repo,
    objects_dir: &Path,
    objects: &[&Object],
    opts: &TransferOptions,
    jobs: usize,
) -> Result<TransferReport> {
    let remote = remote_store(objects_dir)?;
    // Temporary files that killed pushes left in the remote's store (nobody runs gc there).
    crate::gc::remove_stale_temporary(remote.tmp_dir());
    let label = objects_dir.display().to_string();
    let to_send: Vec<&Object> = objects.iter().copied().filter(|o| !remote.contains(&o.pointer)).collect();
    if let Some(missing) = to_send.iter().find(|o| !repo.store().contains(&o.pointer)) {
        return Err(missing_locally(missing, &label));
    }
    copy_all(repo.store(), &remote, &to_send, objects.len(), opts, jobs, "upload LFS objects", &label)
}

/// Copy into the local store the objects given (those it lacks) from the remote's store.
pub fn download(
    repo: &Repo,
    objects_dir: &Path,
    missing: &[&Object],
    opts: &TransferOptions,
    jobs: usize,
) -> Result<TransferReport> {
    let remote = remote_store(objects_dir)?;
    let label = objects_dir.display().to_string();
    if let Some(absent) = missing.iter().find(|o| !remote.contains(&o.pointer)) {
        return Err(Error::not_found(format!(
            "LFS object {} (needed by {}) is not in {label}",
            absent.pointer.oid, absent.path
        ))
        .with_hint("push it from a clone that has it (`mlgit push` there), then retry"));
    }
    copy_all(&remote, repo.store(), missing, missing.len(), opts, jobs, "download LFS objects", &label)
}

#[allow(clippy::too_many_arguments)]
fn copy_all(
    from: &LfsStore,
    to: &LfsStore,
    objects: &[&Object],
    asked: usize,
    opts: &TransferOptions,
    jobs: usize,
    phase: &str,
    label: &str,
) -> Result<TransferReport> {
    let bytes: u64 = objects.iter().map(|o| o.pointer.size).sum();
    let report = TransferReport {
        objects: asked,
        transferred: objects.len(),
        bytes,
        already_there: asked - objects.len(),
    };
    if opts.dry_run || objects.is_empty() {
        return Ok(report);
    }
    opts.progress.begin(phase, objects.len() as u64, bytes);
    let result = pool::for_each(jobs, objects, &opts.interrupt, phase, |object, stop| {
        copy_checked(from, to, object, opts, stop, label)
    });
    opts.progress.end();
    result.map(|_| report)
}

/// Copy one object from one store to the other, checked before it is moved into place.
fn copy_checked(
    from: &LfsStore,
    to: &LfsStore,
    object: &Object,
    opts: &TransferOptions,
    stop: &Stop,
    label: &str,
) -> Result<()> {
    let src = from.object_path(&object.pointer.oid);
    let mut input = File::open(&src).map_err(|e| Error::io("read", &src, e))?;
    let mut tmp = to.new_temp_file()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; (object.pointer.size as usize).clamp(1, CHUNK)];
    let mut size = 0u64;
    loop {
        if stop.is_set() {
            return Ok(());
        }
        opts.interrupt
            .check("the LFS transfer")
            .map_err(|_| crate::interrupt::interrupted_transfer("the LFS transfer"))?;
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", &src, e)),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| Error::io("write", tmp.path(), e))?;
        size += n as u64;
        opts.progress.advance(0, n as u64);
    }
    let got = LfsOid(hasher.finalize().into());
    if got != object.pointer.oid || size != object.pointer.size {
        return Err(wrong_content(object, label, &got, size));
    }
    let path = tmp.into_temp_path();
    to.install_checked(&path, &object.pointer)?;
    let _ = path.keep();
    opts.progress.advance(1, 0);
    Ok(())
}
