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
        if let Some(real) = std::env::var_os("HOME") {
            std::env::set_var("MLGIT_REAL_HOME", real);
        }
        std::env::set_var("HOME", &home);
        std::env::set_var("XDG_CONFIG_HOME", home.join(".config"));
        std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
        std::env::set_var("GIT_TERMINAL_PROMPT", "0");
        std::env::remove_var("GIT_SSL_CAINFO");
        std::env::remove_var("GIT_SSL_NO_VERIFY");
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

/// The endpoint for `remote` ("": a repository without remotes, where only `lfs.url` can say).
fn endpoint_of(repo: &Repo, remote: &str, op: Operation) -> Endpoint {
    let remote = match remote {
        "" => Remote { name: None, url: "https://unused.invalid/x.git".into() },
        name => Remote::find(repo.git(), name).expect("remote"),
    };
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

// ---------------------------------------------------------------------------------------------
// Real LFS servers on loopback

use lfs_servers::{FakeLfs, Fault};

fn set_config(env: &TestEnv, repo: &Repo, key: &str, value: &str) {
    env.git(repo.workdir(), ["config", key, value]);
}

/// Upload with one repository, download with another, both pointed at `url` by `lfs.url`.
fn round_trip(env: &TestEnv, url: &str, n: usize) {
    let contents = files(n, "rt");
    let (repo, objects) = repo_with(env, "a", &contents);
    set_config(env, &repo, "lfs.url", url);
    let report = upload(&repo, "", &objects).expect("upload");
    assert_eq!((report.objects, report.transferred, report.already_there), (n, n, 0));
    let again = upload(&repo, "", &objects).expect("second upload");
    assert_eq!((again.transferred, again.already_there), (0, n), "the server said it has them all");

    let colleague = empty_repo(env, "b");
    set_config(env, &colleague, "lfs.url", url);
    let got = download(&colleague, "", &objects).expect("download");
    assert_eq!((got.objects, got.transferred), (n, n));
    assert_stored(&colleague, &objects, &contents);
    assert!(tmp_files(&colleague, true).is_empty(), "{:?}", tmp_files(&colleague, true));
}

/// The endpoint of a repository without a remote: `lfs.url` alone.
fn lfs_url_endpoint(repo: &Repo, op: Operation) -> Endpoint {
    let remote = Remote { name: None, url: "https://unused.invalid/x.git".into() };
    lfs::endpoint(repo, &remote, op, None).expect("endpoint")
}

#[test]
fn rudolfs_round_trip() {
    let env = TestEnv::new();
    let Some(server) = lfs_servers::rudolfs(env.tmp.path()) else { return };
    round_trip(&env, &server.url, 40);
}

#[test]
fn giftless_round_trip() {
    let env = TestEnv::new();
    let Some(server) = lfs_servers::giftless(env.tmp.path()) else { return };
    round_trip(&env, &server.url, 40);
}

#[test]
fn rudolfs_large_object_round_trip_streams() {
    let env = TestEnv::new();
    let Some(server) = lfs_servers::rudolfs(env.tmp.path()) else { return };
    let big: Vec<u8> = (0..(5u32 << 20) + 17).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let contents = vec![("model/big.bin".to_string(), big)];
    let (repo, objects) = repo_with(&env, "a", &contents);
    set_config(&env, &repo, "lfs.url", &server.url);
    upload(&repo, "", &objects).expect("upload");
    let colleague = empty_repo(&env, "b");
    set_config(&env, &colleague, "lfs.url", &server.url);
    download(&colleague, "", &objects).expect("download");
    assert_stored(&colleague, &objects, &contents);
}

/// Where a git-lfs clone of `repo` (pushed to a bare remote) gets its objects: `.lfsconfig`.
fn commit_lfsconfig(env: &TestEnv, repo: &Repo, url: &str) {
    std::fs::write(
        repo.workdir().join(".lfsconfig"),
        format!("[lfs]\n\turl = {url}\n\tlocksverify = false\n"),
    )
    .expect("lfsconfig");
    env.git(repo.workdir(), ["add", ".lfsconfig"]);
    env.git(repo.workdir(), ["commit", "-q", "-m", "lfs server"]);
}

#[test]
fn interop_objects_uploaded_by_mlgit_are_pulled_by_git_lfs() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let Some(server) = lfs_servers::rudolfs(env.tmp.path()) else { return };
    let contents = files(12, "ml");
    let (repo, objects) = repo_with(&env, "a", &contents);
    commit_lfsconfig(&env, &repo, &server.url);
    // The endpoint comes from .lfsconfig in HEAD's tree.
    let report =
        lfs::upload(&repo, &lfs_url_endpoint(&repo, Operation::Upload), &objects, &opts(&NoProgress))
            .expect("upload");
    assert_eq!(report.transferred, 12);
    let remote = bare(&env, "remote.git");
    env.git(repo.workdir(), ["push", "-q", remote.to_str().expect("utf-8"), "main"]);

    let clone = env.path("clone");
    let out = env
        .git_cmd(env.tmp.path())
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "-q", remote.to_str().expect("utf-8"), clone.to_str().expect("utf-8")])
        .output()
        .expect("clone");
    assert!(out.status.success(), "{}", common::stderr(&out));
    env.git(&clone, ["lfs", "pull"]);
    for (path, content) in &contents {
        assert_eq!(&std::fs::read(clone.join(path)).expect("file"), content, "{path}");
    }
    assert_eq!(env.git(&clone, ["status", "--porcelain"]), "");
    env.git(&clone, ["lfs", "fsck"]);
}

#[test]
fn interop_objects_pushed_by_git_lfs_are_downloaded_by_mlgit() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let Some(server) = lfs_servers::giftless(env.tmp.path()) else { return };
    let repo_dir = env.path("gitlfs");
    env.git(env.tmp.path(), ["init", "-q", "-b", "main", repo_dir.to_str().expect("utf-8")]);
    env.git(&repo_dir, ["lfs", "track", "*.bin"]);
    let contents = files(7, "gl");
    for (path, content) in &contents {
        let full = repo_dir.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("dirs");
        std::fs::write(full, content).expect("write");
    }
    std::fs::write(
        repo_dir.join(".lfsconfig"),
        format!("[lfs]\n\turl = {}\n\tlocksverify = false\n", server.url),
    )
    .expect("lfsconfig");
    env.git(&repo_dir, ["add", "-A", "."]);
    env.git(&repo_dir, ["commit", "-q", "-m", "data"]);
    let remote = bare(&env, "remote.git");
    env.git(&repo_dir, ["remote", "add", "origin", remote.to_str().expect("utf-8")]);
    env.git(&repo_dir, ["lfs", "push", "--all", "origin"]);

    let colleague = empty_repo(&env, "b");
    set_config(&env, &colleague, "lfs.url", &server.url);
    let objects: Vec<Object> = contents
        .iter()
        .map(|(path, content)| Object { pointer: pointer_of(content), path: path.clone() })
        .collect();
    let got = download(&colleague, "", &objects).expect("download");
    assert_eq!(got.transferred, 7);
    assert_stored(&colleague, &objects, &contents);
}

// ---------------------------------------------------------------------------------------------
// Faults

/// A colleague's repository pointed at `url`, and the objects of `contents` (which it lacks).
fn colleague_of(env: &TestEnv, url: &str, contents: &[(String, Vec<u8>)]) -> (Repo, Vec<Object>) {
    let repo = empty_repo(env, "b");
    set_config(env, &repo, "lfs.url", url);
    let objects = contents
        .iter()
        .map(|(path, content)| Object { pointer: pointer_of(content), path: path.clone() })
        .collect();
    (repo, objects)
}

fn fake_with(fault: Fault, contents: &[(String, Vec<u8>)]) -> FakeLfs {
    let fake = FakeLfs::start(fault);
    for (_, content) in contents {
        fake.add(content);
    }
    fake
}

#[test]
fn fake_server_round_trip_with_verify_action_on_reused_connections() {
    let env = TestEnv::new();
    let contents = files(30, "fk");
    let fake = fake_with(Fault::None, &[]);
    let (repo, objects) = repo_with(&env, "a", &contents);
    set_config(&env, &repo, "lfs.url", &fake.url);
    let report = upload(&repo, "", &objects).expect("upload");
    assert_eq!(report.transferred, 30);
    assert_eq!(fake.objects.lock().unwrap().len(), 30);
    let verifies = fake.requests().iter().filter(|r| r.starts_with("POST /lfs/verify")).count();
    assert_eq!(verifies, 30, "every upload is verified");
    // One connection per worker, reused for every request (8 workers by default).
    assert!(
        fake.connections() <= 8,
        "{} connections for {} requests",
        fake.connections(),
        fake.requests().len()
    );
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    download(&colleague, "", &objects).expect("download");
    assert_stored(&colleague, &objects, &contents);
}

#[test]
fn server_down_is_a_clear_error_and_stores_nothing() {
    let env = TestEnv::new();
    let contents = files(2, "down");
    let url = format!("http://127.0.0.1:{}/lfs", lfs_servers::free_port());
    let (colleague, objects) = colleague_of(&env, &url, &contents);
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message().contains("cannot reach the LFS server"), "{}", err.message());
    assert!(err.message().contains(&url), "{}", err.message());
    assert!(!colleague.store().object_path(&objects[0].pointer.oid).exists());
}

/// A credential helper that answers with `password` and logs each action it is asked for.
fn credential_helper(env: &TestEnv, repo: &Repo, password: &str) -> PathBuf {
    let log = env.path("helper.log");
    let script = env.path("helper.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nif [ \"$1\" = get ]; then echo username=alice; echo password={password}; fi\n",
            log.display()
        ),
    )
    .expect("helper");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    set_config(env, repo, "credential.helper", &script.display().to_string());
    log
}

#[test]
fn a_401_is_retried_with_the_credential_helpers_answer_which_is_approved() {
    let env = TestEnv::new();
    let contents = files(3, "auth");
    let fake = fake_with(Fault::Login("alice:s3cret".into()), &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let log = credential_helper(&env, &colleague, "s3cret");
    download(&colleague, "", &objects).expect("download");
    assert_stored(&colleague, &objects, &contents);
    let requests = fake.requests();
    assert_eq!(requests[0], "POST /lfs/objects/batch", "anonymous first: {requests:?}");
    assert!(requests.iter().any(|r| r == "POST /lfs/objects/batch auth"), "{requests:?}");
    let actions = std::fs::read_to_string(log).expect("helper log");
    assert_eq!(actions.lines().collect::<Vec<_>>(), ["get", "store"], "filled once, approved once");
}

#[test]
fn a_401_with_refused_credentials_rejects_them() {
    let env = TestEnv::new();
    let contents = files(1, "auth");
    let fake = fake_with(Fault::Login("alice:s3cret".into()), &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let log = credential_helper(&env, &colleague, "wrong");
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message().contains("refused the credentials"), "{}", err.message());
    let actions = std::fs::read_to_string(log).expect("helper log");
    assert_eq!(actions.lines().collect::<Vec<_>>(), ["get", "erase"]);
}

#[test]
fn a_401_without_credentials_says_how_to_log_in() {
    let env = TestEnv::new();
    let contents = files(1, "auth");
    let fake = fake_with(Fault::BatchStatus(401), &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message().contains("needs a login"), "{}", err.message());
    assert!(err.hint().unwrap_or_default().contains("credential"), "{:?}", err.hint());
}

#[test]
fn a_403_names_the_server() {
    let env = TestEnv::new();
    let contents = files(1, "forbidden");
    let fake = fake_with(Fault::BatchStatus(403), &contents);
    let (repo, objects) = repo_with(&env, "a", &contents);
    set_config(&env, &repo, "lfs.url", &fake.url);
    let err = upload(&repo, "", &objects).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message().contains("HTTP 403") && err.message().contains(&fake.url), "{}", err.message());
    assert!(err.message().contains("go away"), "the server's message is shown: {}", err.message());
    assert!(err.hint().unwrap_or_default().contains("write access"), "{:?}", err.hint());
}

#[test]
fn a_404_object_names_the_object_and_a_path_that_needs_it() {
    let env = TestEnv::new();
    let contents = files(2, "lost");
    let fake = fake_with(Fault::ObjectNotFound, &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let named = objects.iter().any(|o| {
        err.message().contains(&o.pointer.oid.to_hex())
            && err.message().contains(&format!("needed by {}", o.path))
    });
    assert!(named, "{}", err.message());
}

#[test]
fn wrong_bytes_from_the_server_are_never_stored() {
    let env = TestEnv::new();
    let contents = files(3, "wrong");
    let fake = fake_with(Fault::WrongBytes, &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CheckFailed, "{}", err.message());
    assert_eq!(err.exit_code(), 3);
    for object in &objects {
        assert!(!colleague.store().object_path(&object.pointer.oid).exists(), "{} stored", object.path);
    }
    assert!(tmp_files(&colleague, true).is_empty(), "{:?}", tmp_files(&colleague, true));
}

fn big_file(tag: &str) -> Vec<(String, Vec<u8>)> {
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 ^ tag.len() as u8).collect();
    vec![(format!("model/{tag}.bin"), content)]
}

#[test]
fn a_transfer_cut_midway_leaves_a_part_file_that_the_next_run_resumes() {
    let env = TestEnv::new();
    let contents = big_file("cut");
    let fake = fake_with(Fault::CutAfter(100_000), &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    set_config(&env, &colleague, "lfs.transfer.maxretries", "0");
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.hint().unwrap_or_default().contains("resumes"), "{:?}", err.hint());
    let final_path = colleague.store().object_path(&objects[0].pointer.oid);
    assert!(!final_path.exists(), "no partial object at the final path");
    let part = colleague.store().part_path(&objects[0].pointer.oid);
    assert_eq!(std::fs::metadata(&part).expect("part file").len(), 100_000);

    download(&colleague, "", &objects).expect("the second run resumes");
    assert_stored(&colleague, &objects, &contents);
    assert!(!part.exists());
    let requests = fake.requests();
    assert!(requests.iter().any(|r| r.ends_with("range=bytes=100000-")), "{requests:?}");
}

#[test]
fn a_transfer_cut_midway_is_resumed_within_the_run() {
    let env = TestEnv::new();
    let contents = big_file("retry");
    let fake = fake_with(Fault::CutAfter(50_000), &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    download(&colleague, "", &objects).expect("download with a retry");
    assert_stored(&colleague, &objects, &contents);
    assert!(fake.requests().iter().any(|r| r.ends_with("range=bytes=50000-")), "{:?}", fake.requests());
}

#[test]
fn a_part_file_the_server_will_not_resume_is_started_over() {
    let env = TestEnv::new();
    let contents = big_file("restart");
    let fake = fake_with(Fault::None, &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    // A stale part file with wrong bytes: resumed, the result cannot match, so it is thrown away.
    std::fs::create_dir_all(colleague.store().tmp_dir()).expect("tmp");
    let part = colleague.store().part_path(&objects[0].pointer.oid);
    std::fs::write(&part, vec![7u8; 1000]).expect("part");
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{}", err.message());
    assert!(!part.exists(), "the bad part file is removed");
    download(&colleague, "", &objects).expect("the next run starts over");
    assert_stored(&colleague, &objects, &contents);
}

#[test]
fn upload_dry_run_asks_but_sends_nothing() {
    let env = TestEnv::new();
    let contents = files(4, "dry");
    let fake = fake_with(Fault::None, &contents[..1]);
    let (repo, objects) = repo_with(&env, "a", &contents);
    set_config(&env, &repo, "lfs.url", &fake.url);
    let progress = NoProgress;
    let mut options = opts(&progress);
    options.dry_run = true;
    let report =
        lfs::upload(&repo, &lfs_url_endpoint(&repo, Operation::Upload), &objects, &options).expect("dry run");
    assert_eq!((report.transferred, report.already_there), (3, 1));
    assert!(
        fake.requests().iter().all(|r| r.starts_with("POST /lfs/objects/batch")),
        "{:?}",
        fake.requests()
    );
    assert_eq!(fake.objects.lock().unwrap().len(), 1);
}

#[test]
fn upload_of_an_object_the_server_and_the_store_lack_names_it() {
    let env = TestEnv::new();
    let contents = files(2, "absent");
    let fake = fake_with(Fault::None, &[]);
    let (repo, objects) = repo_with(&env, "a", &contents);
    std::fs::remove_file(repo.store().object_path(&objects[0].pointer.oid)).expect("remove");
    set_config(&env, &repo, "lfs.url", &fake.url);
    let err = upload(&repo, "", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("data/absent-0.bin"), "{}", err.message());
    // An object the server already has needs no local copy.
    let fake2 = fake_with(Fault::None, &contents[..1]);
    set_config(&env, &repo, "lfs.url", &fake2.url);
    upload(&repo, "", &objects).expect("the server has what the store lacks");
}

#[test]
fn an_interrupted_transfer_stops_with_interrupted_and_says_what_arrived_is_kept() {
    let env = TestEnv::new();
    let contents = files(3, "int");
    let fake = fake_with(Fault::None, &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let progress = NoProgress;
    let options = opts(&progress);
    options.interrupt.trigger();
    let err =
        lfs::download(&colleague, &lfs_url_endpoint(&colleague, Operation::Download), &objects, &options)
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted);
    assert!(!err.message().contains("nothing was changed"), "{err}");
    assert!(err.message().contains("already transferred are kept"), "{err}");
    assert!(err.hint().unwrap().contains("run the same command again"), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Endpoint discovery

#[test]
fn ssh_remotes_authenticate_with_git_lfs_authenticate_through_the_users_ssh_command() {
    let env = TestEnv::new();
    let contents = files(2, "ssh");
    let fake = fake_with(Fault::Login("alice:s3cret".into()), &contents);
    let (colleague, objects) = colleague_of(&env, "", &contents);
    env.git(colleague.workdir(), ["config", "--unset", "lfs.url"]);
    add_remote(&env, &colleague, "origin", "git@example.invalid:org/repo.git");
    let args_log = env.path("ssh-args.log");
    let script = env.path("fake-ssh.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\necho '{{\"href\": \"{}\", \"header\": {{\"Authorization\": \"Basic YWxpY2U6czNjcmV0\"}}, \"expires_in\": 600}}'\n",
            args_log.display(),
            fake.url
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    set_config(&env, &colleague, "core.sshCommand", &script.display().to_string());
    let ep = endpoint_of(&colleague, "origin", Operation::Download);
    match &ep {
        Endpoint::Http { href, headers } => {
            assert_eq!(href, &fake.url);
            assert_eq!(headers.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    let args = std::fs::read_to_string(&args_log).expect("ssh ran");
    assert_eq!(args.trim(), "git@example.invalid git-lfs-authenticate org/repo.git download");
    lfs::download(&colleague, &ep, &objects, &opts(&NoProgress)).expect("download with the SSH headers");
    assert!(
        fake.requests().iter().all(|r| !r.starts_with("POST") || r.ends_with("auth")),
        "{:?}",
        fake.requests()
    );
}

#[test]
fn endpoint_order_is_lfs_url_then_remote_lfsurl_each_from_config_then_lfsconfig_then_the_git_url() {
    let env = TestEnv::new();
    let (repo, _) = repo_with(&env, "a", &files(1, "ep"));
    add_remote(&env, &repo, "origin", "https://git.example/org/proj");
    let href = |op| match endpoint_of(&repo, "origin", op) {
        Endpoint::Http { href, .. } => href,
        other => panic!("{other:?}"),
    };
    assert_eq!(href(Operation::Download), "https://git.example/org/proj.git/info/lfs");
    set_config(&env, &repo, "remote.origin.lfsurl", "https://remote.example/lfs");
    assert_eq!(href(Operation::Download), "https://remote.example/lfs");
    // As in git-lfs, `.lfsconfig` fills in for git's config key by key, and lfs.url comes first.
    commit_lfsconfig(&env, &repo, "https://lfsconfig.example/lfs");
    assert_eq!(href(Operation::Download), "https://lfsconfig.example/lfs");
    set_config(&env, &repo, "lfs.url", "https://config.example/lfs/");
    assert_eq!(href(Operation::Download), "https://config.example/lfs");
    set_config(&env, &repo, "lfs.pushurl", "https://push.example/lfs");
    assert_eq!(href(Operation::Upload), "https://push.example/lfs");
    assert_eq!(href(Operation::Download), "https://config.example/lfs");
}

// ---------------------------------------------------------------------------------------------
// Measurement (not a timed test): `MLGIT_BENCH_N=50000 cargo test --release --test lfs_transport
// -- --ignored --nocapture bench_` prints mlgit's and git-lfs's times side by side.

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = std::time::Instant::now();
    let cpu = cpu_seconds();
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    eprintln!("  ({wall:.2} s wall, {:.2} s CPU in this process)", cpu_seconds() - cpu);
    (out, wall)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

#[test]
#[ignore]
fn bench_many_small_objects_against_rudolfs() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let n: usize = std::env::var("MLGIT_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let jobs: Option<usize> = std::env::var("MLGIT_BENCH_JOBS").ok().and_then(|v| v.parse().ok());
    let contents: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let size = 500 + (i * 7919) % 3500;
            let body: Vec<u8> = format!("{i:08} ").bytes().cycle().take(size).collect();
            (format!("data/{:03}/f{i}.bin", i % 500), body)
        })
        .collect();
    let ((repo, objects), t) = timed(|| repo_with(&env, "a", &contents));
    eprintln!("setup: {n} objects committed in {t:.1} s");
    let Some(ml_server) = lfs_servers::rudolfs(&env.path("ml")) else { return };
    let Some(gl_server) = lfs_servers::rudolfs(&env.path("gl")) else { return };
    set_config(&env, &repo, "lfs.url", &ml_server.url);
    let progress = NoProgress;
    let mut options = opts(&progress);
    options.jobs = jobs;
    let ep = lfs_url_endpoint(&repo, Operation::Upload);
    let (report, up) = timed(|| lfs::upload(&repo, &ep, &objects, &options).expect("upload"));
    assert_eq!(report.transferred, n);
    let (report, noop_up) = timed(|| lfs::upload(&repo, &ep, &objects, &options).expect("no-op upload"));
    assert_eq!(report.already_there, n);
    let colleague = empty_repo(&env, "b");
    set_config(&env, &colleague, "lfs.url", &ml_server.url);
    let ep = lfs_url_endpoint(&colleague, Operation::Download);
    let (report, down) = timed(|| lfs::download(&colleague, &ep, &objects, &options).expect("download"));
    assert_eq!(report.transferred, n);
    let (_, noop_down) =
        timed(|| lfs::download(&colleague, &ep, &objects, &options).expect("no-op download"));
    eprintln!(
        "mlgit  (jobs {:?}): upload {up:.2} s, download {down:.2} s, no-op upload {noop_up:.2} s, no-op download {noop_down:.3} s, peak RSS of the test process {:.0} MiB",
        jobs,
        peak_rss_mib()
    );

    if std::env::var_os("MLGIT_BENCH_SKIP_GITLFS").is_some() {
        return;
    }
    // git-lfs on the same data, to its own rudolfs.
    let dir = repo.workdir();
    set_config(&env, &repo, "lfs.url", &gl_server.url);
    let remote = bare(&env, "remote.git");
    env.git(dir, ["remote", "add", "origin", remote.to_str().expect("utf-8")]);
    // The clean filter of `git add` installed git-lfs's pre-push hook here: skip it, so that the
    // objects move only in the timed `git lfs push`.
    env.git(dir, ["-c", "core.hooksPath=/dev/null", "push", "-q", "origin", "main"]);
    let gitlfs_jobs = std::env::var("MLGIT_BENCH_GITLFS_JOBS").unwrap_or_else(|_| "8".into());
    env.git(dir, ["config", "lfs.concurrenttransfers", &gitlfs_jobs]);
    let count = |dir: &Path| {
        walkdir::WalkDir::new(dir).into_iter().flatten().filter(|e| e.file_type().is_file()).count()
    };
    assert_eq!(count(&gl_server.storage), 0, "git-lfs's server starts empty");
    let (out, gl_up) =
        timed(|| env.git_cmd(dir).args(["lfs", "push", "--all", "origin"]).output().expect("git lfs push"));
    assert!(out.status.success(), "{}", common::stderr(&out));
    let stored = walkdir::WalkDir::new(&gl_server.storage)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count();
    eprintln!("git-lfs push stored {stored} objects in its rudolfs");
    let clone = env.path("clone");
    let out = env
        .git_cmd(env.tmp.path())
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "-q", remote.to_str().expect("utf-8"), clone.to_str().expect("utf-8")])
        .output()
        .expect("clone");
    assert!(out.status.success(), "{}", common::stderr(&out));
    env.git(&clone, ["config", "lfs.url", &gl_server.url]);
    env.git(&clone, ["config", "lfs.concurrenttransfers", &gitlfs_jobs]);
    let (out, gl_fetch) =
        timed(|| env.git_cmd(&clone).args(["lfs", "fetch"]).output().expect("git lfs fetch"));
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (out, gl_noop_up) =
        timed(|| env.git_cmd(dir).args(["lfs", "push", "--all", "origin"]).output().expect("git lfs push"));
    assert!(out.status.success(), "{}", common::stderr(&out));
    eprintln!(
        "git-lfs (lfs.concurrenttransfers {gitlfs_jobs}): push {gl_up:.2} s, fetch {gl_fetch:.2} s, no-op push {gl_noop_up:.2} s  => mlgit faster by x{:.1} (push), x{:.1} (fetch)",
        gl_up / up,
        gl_fetch / down
    );
}

#[test]
fn rudolfs_damaged_local_object_is_not_uploaded_and_is_named() {
    let env = TestEnv::new();
    let Some(server) = lfs_servers::rudolfs(env.tmp.path()) else { return };
    let contents = files(1, "damaged");
    let (repo, objects) = repo_with(&env, "a", &contents);
    let path = repo.store().object_path(&objects[0].pointer.oid);
    let mut bytes = contents[0].1.clone();
    bytes[0] ^= 1;
    std::fs::write(&path, &bytes).expect("damage");
    set_config(&env, &repo, "lfs.url", &server.url);
    let err = upload(&repo, "", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CheckFailed, "{}", err.message());
    assert!(err.message().contains("data/damaged-0.bin"), "{}", err.message());
    let colleague = empty_repo(&env, "b");
    set_config(&env, &colleague, "lfs.url", &server.url);
    let err = download(&colleague, "", &objects).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "rudolfs kept nothing: {}", err.message());
}

/// Records what a transfer reports.
#[derive(Default)]
struct Recorder {
    files: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    totals: std::sync::Mutex<Vec<(String, u64, u64)>>,
}

impl mlgit::progress::Progress for Recorder {
    fn begin(&self, phase: &str, files: u64, bytes: u64) {
        self.totals.lock().unwrap().push((phase.to_string(), files, bytes));
    }
    fn advance(&self, files: u64, bytes: u64) {
        self.files.fetch_add(files, std::sync::atomic::Ordering::Relaxed);
        self.bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }
    fn end(&self) {}
}

#[test]
fn progress_reports_files_and_bytes() {
    let env = TestEnv::new();
    let contents = files(20, "prog");
    let total: u64 = contents.iter().map(|(_, c)| c.len() as u64).sum();
    let fake = fake_with(Fault::None, &contents);
    let (colleague, objects) = colleague_of(&env, &fake.url, &contents);
    let recorder = Recorder::default();
    let options = TransferOptions {
        interrupt: mlgit::interrupt::Interrupt::new(),
        progress: &recorder,
        jobs: Some(3),
        refspec: None,
        dry_run: false,
    };
    let report =
        lfs::download(&colleague, &lfs_url_endpoint(&colleague, Operation::Download), &objects, &options)
            .expect("download");
    assert_eq!(report.bytes, total);
    assert_eq!(recorder.totals.lock().unwrap().as_slice(), [("download LFS objects".to_string(), 20, total)]);
    assert_eq!(recorder.files.load(std::sync::atomic::Ordering::Relaxed), 20);
    assert_eq!(recorder.bytes.load(std::sync::atomic::Ordering::Relaxed), total);
}

// ---------------------------------------------------------------------------------------------
// TLS through the system's OpenSSL

const HTTPS_SERVER: &str = r#"
import hashlib, http.server, json, ssl, sys
port, content = int(sys.argv[1]), open(sys.argv[2], "rb").read()
oid = hashlib.sha256(content).hexdigest()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, body, kind):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        action = {"download": {"href": f"https://127.0.0.1:{port}/obj", "header": None}}
        reply = {"transfer": "basic", "objects": [{"oid": oid, "size": len(content), "actions": action}]}
        self.reply(json.dumps(reply).encode(), "application/vnd.git-lfs+json")
    def do_GET(self):
        self.reply(content, "application/octet-stream")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[3], sys.argv[4])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_with_a_private_ca_from_http_sslcainfo() {
    let env = TestEnv::new();
    let have = |cmd: &str| {
        std::process::Command::new(cmd).arg("--version").output().is_ok_and(|o| o.status.success())
    };
    let have_openssl =
        std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !have("python3") || !have_openssl {
        eprintln!("skipping: python3 and the openssl command are needed for the HTTPS test server");
        return;
    }
    let (key, cert) = (env.path("key.pem"), env.path("cert.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let contents = big_file("tls");
    let blob = env.path("blob");
    std::fs::write(&blob, &contents[0].1).expect("blob");
    let port = lfs_servers::free_port();
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(HTTPS_SERVER)
        .arg(port.to_string())
        .args([&blob, &cert, &key])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut ready,
    )
    .expect("ready line");
    let _server = KillOnDrop(child);
    assert_eq!(ready.trim(), "ready");

    let url = format!("https://127.0.0.1:{port}/lfs");
    let (colleague, objects) = colleague_of(&env, &url, &contents);
    let err = download(&colleague, "", &objects).unwrap_err();
    assert!(err.message().contains("cannot reach"), "an unknown CA is refused: {}", err.message());
    assert!(
        err.hint().unwrap_or_default().contains("http.sslCAInfo"),
        "{:?} ({})",
        err.hint(),
        err.message()
    );
    set_config(&env, &colleague, "http.sslCAInfo", cert.to_str().expect("utf-8"));
    download(&colleague, "", &objects).expect("download over TLS");
    assert_stored(&colleague, &objects, &contents);
}
