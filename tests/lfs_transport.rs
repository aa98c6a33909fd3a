//! The LFS transport (`mlgit::lfs`) against real remotes: `file://` bare repositories, rudolfs and
//! giftless on loopback, stock git-lfs on the other side, and small misbehaving servers for the
//! faults (server down, 401/403, 404, wrong bytes, a transfer cut midway and resumed).

mod common;
#[path = "common/lfs_servers.rs"]
mod lfs_servers;

use std::path::{Path, PathBuf};
use std::sync::Once;

use common::TestEnv;
use mlgit::config::Config;
use mlgit::error::ErrorKind;
use mlgit::lfs::{self, Endpoint, Object, Operation, TransferOptions, TransferReport};
use mlgit::progress::NoProgress;
use mlgit::remote::Remote;
use mlgit::repo::Repo;
use mlgit::store::Pointer;
use sha2::{Digest, Sha256};

/// The library runs in this process and starts `git credential` and `ssh` itself: give the
/// whole process a HOME of its own, no system config, and no terminal prompts.
fn isolate_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let home = std::env::temp_dir().join(format!("mlgit-lfs-transport-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n",
        )
        .expect("gitconfig");
        std::env::set_var("HOME", &home);
        std::env::set_var("XDG_CONFIG_HOME", home.join(".config"));
        std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
        std::env::set_var("GIT_TERMINAL_PROMPT", "0");
        // SAFETY: set once, before any libgit2 config is read by this test process.
        unsafe {
            for level in [git2::ConfigLevel::Global, git2::ConfigLevel::XDG] {
                git2::opts::set_search_path(level, &home).expect("search path");
            }
            git2::opts::set_search_path(git2::ConfigLevel::System, "").expect("search path");
        }
    });
}

#[allow(dead_code)]
fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(dead_code)]
fn pointer_of(bytes: &[u8]) -> Pointer {
    let oid = mlgit::store::LfsOid::from_hex(&sha256(bytes)).expect("oid");
    Pointer { oid, size: bytes.len() as u64 }
}

/// A repository at `rel` whose `main` commits `files` as LFS pointers (the content in its store),
/// with `.gitattributes` routing `*.bin` through LFS.
fn repo_with(env: &TestEnv, rel: &str, files: &[(String, Vec<u8>)]) -> (Repo, Vec<Object>) {
    isolate_process();
    let dir = env.path(rel);
    env.git(env.tmp.path(), ["init", "-q", "-b", "main", dir.to_str().expect("utf-8")]);
    std::fs::write(dir.join(".gitattributes"), "*.bin filter=lfs diff=lfs merge=lfs -text\n")
        .expect("attributes");
    let repo = open(&dir);
    let mut objects = Vec::new();
    for (path, content) in files {
        let stored = repo.store().store_bytes(content).expect("store");
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("dirs");
        std::fs::write(&full, stored.pointer.to_bytes()).expect("pointer");
        objects.push(Object { pointer: stored.pointer, path: path.clone() });
    }
    env.git(&dir, ["add", "-A", "."]);
    env.git(&dir, ["commit", "-q", "-m", "data"]);
    (repo, objects)
}

/// An empty repository at `rel` (a colleague's clone, before the download).
fn empty_repo(env: &TestEnv, rel: &str) -> Repo {
    isolate_process();
    let dir = env.path(rel);
    env.git(env.tmp.path(), ["init", "-q", "-b", "main", dir.to_str().expect("utf-8")]);
    open(&dir)
}

fn open(dir: &Path) -> Repo {
    Repo::from_parts(git2::Repository::open(dir).expect("open"), Config::default())
}

fn files(n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
    (0..n).map(|i| (format!("data/{tag}-{i}.bin"), format!("{tag} content {i}\n").into_bytes())).collect()
}

fn opts(progress: &NoProgress) -> TransferOptions<'_> {
    TransferOptions {
        interrupt: mlgit::interrupt::Interrupt::new(),
        progress,
        jobs: None,
        refspec: Some("refs/heads/main".into()),
        dry_run: false,
    }
}

fn endpoint_of(repo: &Repo, remote: &str, op: Operation) -> Endpoint {
    let remote = Remote::find(repo.git(), remote).expect("remote");
    lfs::endpoint(repo, &remote, op, None).expect("endpoint")
}

fn add_remote(env: &TestEnv, repo: &Repo, name: &str, url: &str) {
    env.git(repo.workdir(), ["remote", "add", name, url]);
}

fn bare(env: &TestEnv, rel: &str) -> PathBuf {
    let dir = env.path(rel);
    env.git(env.tmp.path(), ["init", "-q", "--bare", dir.to_str().expect("utf-8")]);
    dir
}

fn upload(repo: &Repo, remote: &str, objects: &[Object]) -> mlgit::error::Result<TransferReport> {
    let ep = endpoint_of(repo, remote, Operation::Upload);
    lfs::upload(repo, &ep, objects, &opts(&NoProgress))
}

fn download(repo: &Repo, remote: &str, objects: &[Object]) -> mlgit::error::Result<TransferReport> {
    let ep = endpoint_of(repo, remote, Operation::Download);
    lfs::download(repo, &ep, objects, &opts(&NoProgress))
}

fn assert_stored(repo: &Repo, objects: &[Object], contents: &[(String, Vec<u8>)]) {
    for (object, (_, content)) in objects.iter().zip(contents) {
        let got = std::fs::read(repo.store().object_path(&object.pointer.oid)).expect("object stored");
        assert_eq!(&got, content, "{}", object.path);
    }
}

/// Files left in a store's `lfs/tmp` (not counting resumable `.part` files when `parts` is false).
fn tmp_files(repo: &Repo, parts: bool) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(repo.store().tmp_dir()) else { return Vec::new() };
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| parts || !n.ends_with(".part"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// file:// and local-path remotes

#[test]
fn file_remote_round_trip_writes_the_remote_lfs_objects_and_reads_them_back() {
    let env = TestEnv::new();
    let contents = files(5, "a");
    let (repo, objects) = repo_with(&env, "a", &contents);
    let remote = bare(&env, "remote.git");
    add_remote(&env, &repo, "origin", &format!("file://{}", remote.display()));

    let report = upload(&repo, "origin", &objects).expect("upload");
    assert_eq!((report.objects, report.transferred, report.already_there), (5, 5, 0));
    for object in &objects {
        let hex = object.pointer.oid.to_hex();
        let path = remote.join("lfs/objects").join(&hex[0..2]).join(&hex[2..4]).join(&hex);
        assert!(path.is_file(), "{} not in the bare remote", object.path);
    }
    let again = upload(&repo, "origin", &objects).expect("second upload");
    assert_eq!((again.transferred, again.already_there), (0, 5));

    let colleague = empty_repo(&env, "b");
    add_remote(&env, &colleague, "origin", remote.to_str().expect("utf-8"));
    let got = download(&colleague, "origin", &objects).expect("download");
    assert_eq!((got.objects, got.transferred, got.already_there), (5, 5, 0));
    assert_stored(&colleague, &objects, &contents);
    assert!(tmp_files(&colleague, true).is_empty(), "{:?}", tmp_files(&colleague, true));
    let again = download(&colleague, "origin", &objects).expect("second download");
    assert_eq!((again.transferred, again.already_there), (0, 5));
}

#[test]
fn file_remote_non_bare_uses_its_dot_git_lfs_objects() {
    let env = TestEnv::new();
    let contents = files(2, "nb");
    let (repo, objects) = repo_with(&env, "a", &contents);
    let other = empty_repo(&env, "other");
    add_remote(&env, &repo, "origin", other.workdir().to_str().expect("utf-8"));
    upload(&repo, "origin", &objects).expect("upload");
    assert_stored(&other, &objects, &contents);
}

#[test]
fn file_remote_upload_of_an_object_nobody_has_names_it_and_its_path() {
    let env = TestEnv::new();
    let (repo, objects) = repo_with(&env, "a", &files(2, "gone"));
    std::fs::remove_file(repo.store().object_path(&objects[1].pointer.oid)).expect("remove");
    let remote = bare(&env, "remote.git");
    add_remote(&env, &repo, "origin", &format!("file://{}", remote.display()));
    let err = upload(&repo, "origin", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(err.message().contains(&objects[1].pointer.oid.to_hex()), "{}", err.message());
    assert!(err.message().contains("data/gone-1.bin"), "{}", err.message());
    assert!(err.hint().unwrap_or_default().contains("mlgit pull"), "{:?}", err.hint());
}

#[test]
fn file_remote_wrong_bytes_are_never_stored() {
    let env = TestEnv::new();
    let contents = files(1, "bad");
    let (repo, objects) = repo_with(&env, "a", &contents);
    let remote = bare(&env, "remote.git");
    add_remote(&env, &repo, "origin", &format!("file://{}", remote.display()));
    upload(&repo, "origin", &objects).expect("upload");
    let hex = objects[0].pointer.oid.to_hex();
    let on_remote = remote.join("lfs/objects").join(&hex[0..2]).join(&hex[2..4]).join(&hex);
    let mut damaged = contents[0].1.clone();
    damaged[0] ^= 1;
    std::fs::write(&on_remote, &damaged).expect("damage");

    let colleague = empty_repo(&env, "b");
    add_remote(&env, &colleague, "origin", &format!("file://{}", remote.display()));
    let err = download(&colleague, "origin", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CheckFailed, "{}", err.message());
    assert_eq!(err.exit_code(), 3);
    assert!(err.message().contains("data/bad-0.bin"), "{}", err.message());
    assert!(!colleague.store().object_path(&objects[0].pointer.oid).exists(), "wrong bytes were stored");
    assert!(tmp_files(&colleague, true).is_empty(), "{:?}", tmp_files(&colleague, true));
}

#[test]
fn file_remote_missing_object_on_download_names_it() {
    let env = TestEnv::new();
    let (repo, objects) = repo_with(&env, "a", &files(1, "nope"));
    let remote = bare(&env, "remote.git");
    let _ = repo;
    let colleague = empty_repo(&env, "b");
    add_remote(&env, &colleague, "origin", &format!("file://{}", remote.display()));
    let err = download(&colleague, "origin", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("data/nope-0.bin"), "{}", err.message());
}
