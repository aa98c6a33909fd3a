//! End-to-end tests of the one ingest policy (src/ingest): what commit-data and clean's transform
//! output may store, and how files are read. Each test is named after the failure it closes; the real
//! `git` (`fsck --strict`) and `git lfs` (`fsck`, clone + pull + status) check what was written.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{age, stderr, stdout, write_files, TestEnv};

/// Run mlgit with extra environment variables, killing it if it has not finished within 60 s (a
/// hang is a failure, not a stuck test run).
fn mlgit_with(env: &TestEnv, dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = env.mlgit_cmd(dir);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn mlgit");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect");
            panic!("mlgit {args:?} hung (killed after 60 s)\nstderr: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect")
}

/// Expect exit 1 with an error and a hint, and no ref moved; returns stderr.
fn refused(env: &TestEnv, repo: &Path, vars: &[(&str, &str)], args: &[&str]) -> String {
    let before = env.refs(repo);
    let out = mlgit_with(env, repo, vars, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert_eq!(env.refs(repo), before, "a ref moved although {args:?} failed");
    let err = stderr(&out);
    assert!(err.contains("error:") && err.contains("hint:"), "{err}");
    err
}

fn commit_data(env: &TestEnv, repo: &Path, src: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["commit-data", "--source", src.to_str().unwrap()];
    args.extend_from_slice(extra);
    let v = env.mlgit_json(repo, args);
    env.tick();
    v
}

/// What every test ends with: git's strictest check, and git-lfs reading the branch as a user would
/// (every object present and canonical; a fresh clone + pull has the bytes and a clean status).
fn assert_sound(env: &TestEnv, repo: &Path, branch: &str) {
    env.git(repo, ["fsck", "--strict", "--no-progress"]);
    if !env.has_git_lfs() {
        return;
    }
    let out = env.git_cmd(repo).args(["lfs", "fsck", "--dry-run", branch]).output().unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("Git LFS fsck OK"),
        "git lfs fsck {branch}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let clone = env.path(&format!("clone-{}", branch.replace('/', "-")));
    let _ = fs::remove_dir_all(&clone);
    env.git(env.tmp.path(), ["clone", "-q", "-b", branch, repo.to_str().unwrap(), clone.to_str().unwrap()]);
    env.git(&clone, ["lfs", "pull"]);
    assert_eq!(env.git(&clone, ["status", "--porcelain"]), "", "a fresh clone of {branch} is dirty");
}

/// The LFS objects of the repository's store.
fn lfs_objects(repo: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(repo.join(".git/lfs/objects"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    let out =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        });
    String::from_utf8_lossy(&out.expect("sha256sum").stdout).split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_source_file_swapped_for_a_symlink_to_an_outside_secret_is_refused_never_followed() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.bin", b"public"), ("b.csv", b"x,y\n")]);
    let secret = env.path("secret");
    fs::write(&secret, b"SECRET").unwrap();
    Command::new("chmod").args(["600", secret.to_str().unwrap()]).status().unwrap();
    age(&src);
    age(&secret);
    // Between the walk and the read: a.bin becomes a link to the secret, with the same size and mtime.
    let swap = format!(
        "rm {a} && ln -s {s} {a} && touch -h -d @1600000000 {a}",
        a = src.join("a.bin").display(),
        s = secret.display()
    );
    let err = refused(
        &env,
        &repo,
        &[("MLGIT_TEST_AFTER_WALK", &swap)],
        &["commit-data", "--source", src.to_str().unwrap()],
    );
    assert!(err.contains("a.bin") && err.contains("now a symlink"), "{err}");
    let secret_oid = sha256_hex(b"SECRET");
    assert!(
        lfs_objects(&repo).iter().all(|p| !p.ends_with(&secret_oid)),
        "the secret's content reached the LFS store"
    );
    assert_sound(&env, &repo, "raw");
}

#[test]
fn a_nested_gitattributes_or_gitmodules_file_or_folder_is_refused_at_any_depth() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for (i, bad) in [
        "sub/.gitattributes",
        "a/b/.GitAttributes",
        ".gitmodules",
        "deep/er/.GITMODULES",
        ".gitattributes/inside.csv",
        "x/.gitmodules/y/z.csv",
    ]
    .iter()
    .enumerate()
    {
        let src = env.path(&format!("src{i}"));
        write_files(&src, &[("ok.csv", b"a\n"), (bad, b"* -filter\n")]);
        let err = refused(&env, &repo, &[], &["commit-data", "--source", src.to_str().unwrap()]);
        let shown = bad
            .split('/')
            .take_while(|c| {
                !c.eq_ignore_ascii_case(".gitmodules") && !c.eq_ignore_ascii_case(".gitattributes")
            })
            .count()
            + 1;
        let name: Vec<&str> = bad.split('/').take(shown).collect();
        assert!(err.contains(&format!("{} (reserved name", name.join("/"))), "{bad}: {err}");
    }
    // The same rule for clean's transform output.
    let src = env.path("good");
    write_files(&src, &[("ok.csv", b"a\n1\n"), ("more/b.csv", b"b\n2\n")]);
    commit_data(&env, &repo, &src, &[]);
    let run = r#"cp -r "$MLGIT_INPUT"/. "$MLGIT_OUTPUT"/ && mkdir -p "$MLGIT_OUTPUT/m/.gitmodules" && echo x > "$MLGIT_OUTPUT/m/.gitmodules/y""#;
    let err = refused(&env, &repo, &[], &["clean", "--run", run]);
    assert!(err.contains("m/.gitmodules (reserved name"), "{err}");
    let run =
        r#"cp -r "$MLGIT_INPUT"/. "$MLGIT_OUTPUT"/ && echo '* -text' > "$MLGIT_OUTPUT/more/.GitAttributes""#;
    let err = refused(&env, &repo, &[], &["clean", "--run", run]);
    assert!(err.contains("more/.GitAttributes (reserved name"), "{err}");
    assert_sound(&env, &repo, "raw");
}

#[test]
fn a_fifo_in_the_source_or_swapped_in_after_the_walk_is_refused_without_blocking() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.bin", b"data"), ("b.csv", b"x\n1\n")]);
    let fifo = src.join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let err = refused(&env, &repo, &[], &["commit-data", "--source", src.to_str().unwrap()]);
    assert!(err.contains("pipe (FIFO)"), "{err}");
    fs::remove_file(&fifo).unwrap();

    // A regular file replaced by a FIFO between the walk and the read: never opened for blocking.
    let swap = format!("rm {a} && mkfifo {a}", a = src.join("a.bin").display());
    let err = refused(
        &env,
        &repo,
        &[("MLGIT_TEST_AFTER_WALK", &swap)],
        &["commit-data", "--source", src.to_str().unwrap()],
    );
    assert!(err.contains("a.bin") && err.contains("no longer a regular file"), "{err}");

    // And among a transform's outputs.
    fs::remove_file(src.join("a.bin")).unwrap();
    commit_data(&env, &repo, &src, &[]);
    let err = refused(
        &env,
        &repo,
        &[],
        &["clean", "--run", r#"echo a > "$MLGIT_OUTPUT/a.csv" && mkfifo "$MLGIT_OUTPUT/p""#],
    );
    assert!(err.contains("p (FIFO)"), "{err}");
    assert_sound(&env, &repo, "raw");
}

#[test]
fn a_symlink_pointing_outside_is_refused_with_and_without_follow_symlinks() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let outside = env.path("outside.txt");
    fs::write(&outside, b"outside").unwrap();
    let src = env.path("src");
    write_files(&src, &[("ok.csv", b"a\n"), ("inner.csv", b"inner\n")]);
    std::os::unix::fs::symlink(&outside, src.join("leak")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", src.join("rel-leak")).unwrap();
    std::os::unix::fs::symlink("inner.csv", src.join("inside")).unwrap();
    let s = src.to_str().unwrap();
    let err = refused(&env, &repo, &[], &["commit-data", "--source", s]);
    assert!(err.contains("leak (symlink)") && err.contains("inside (symlink)"), "{err}");
    let err = refused(&env, &repo, &[], &["commit-data", "--source", s, "--follow-symlinks"]);
    assert!(
        err.contains("leak (symlink pointing outside") && err.contains("rel-leak (symlink pointing outside"),
        "{err}"
    );
    assert!(!err.contains("inside ("), "a link inside the folder is followed: {err}");
    fs::remove_file(src.join("leak")).unwrap();
    fs::remove_file(src.join("rel-leak")).unwrap();
    let out = commit_data(&env, &repo, &src, &["--follow-symlinks"]);
    assert_eq!(out["files"], 3);
    assert_eq!(env.git(&repo, ["cat-file", "-p", "raw:data/inside"]).lines().count(), 3, "a pointer");

    // The same rule for a transform's outputs.
    let run =
        format!(r#"echo a > "$MLGIT_OUTPUT/a.csv" && ln -s {} "$MLGIT_OUTPUT/leak""#, outside.display());
    let err = refused(&env, &repo, &[], &["clean", "--run", &run]);
    assert!(err.contains("leak (symlink)"), "{err}");
    assert_sound(&env, &repo, "raw");
}

/// Commit a new `mlgit.yaml` on main (what a team does to change the LFS patterns).
fn set_data_patterns(env: &TestEnv, repo: &Path, patterns: &str) {
    let path = repo.join("mlgit.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with("data:")).expect("lfs.patterns.data");
    let indent = &line[..line.len() - line.trim_start().len()];
    fs::write(&path, text.replacen(line, &format!("{indent}data: {patterns}"), 1)).unwrap();
    env.git(repo, ["commit", "-q", "-am", "change the LFS patterns"]);
    env.tick();
}

#[test]
fn an_identical_file_is_not_refused_after_lfs_patterns_changed() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"id\n1\n"), ("img/b.bin", b"\x00\x01")]);
    // a.csv stored as a plain blob, b.bin as a pointer.
    set_data_patterns(&env, &repo, r#"["data/**/*.bin"]"#);
    commit_data(&env, &repo, &src, &[]);
    assert_eq!(env.git(&repo, ["cat-file", "-p", "raw:data/a.csv"]), "id\n1\n");
    let tip = env.git(&repo, ["rev-parse", "raw"]);

    // Now everything under data/ is LFS: a.csv is the same file, only stored differently.
    set_data_patterns(&env, &repo, r#"["data/**"]"#);
    let out = commit_data(&env, &repo, &src, &[]);
    assert_eq!((out["unchanged"].as_u64(), out["changed"].as_u64()), (Some(2), Some(0)), "{out}");
    assert_eq!(out["commit"], serde_json::Value::Null);
    assert_eq!(env.git(&repo, ["rev-parse", "raw"]), tip);

    // The other way round: b.bin was a pointer, the new patterns would make it a plain blob.
    set_data_patterns(&env, &repo, "[]");
    write_files(&src, &[("new.csv", b"n\n")]);
    let out = commit_data(&env, &repo, &src, &[]);
    assert_eq!((out["added"].as_u64(), out["unchanged"].as_u64()), (Some(1), Some(2)), "{out}");
    // A genuinely different file is still refused on the append-only branch.
    write_files(&src, &[("a.csv", b"id\n2\n")]);
    let err = refused(&env, &repo, &[], &["commit-data", "--source", src.to_str().unwrap()]);
    assert!(err.contains("already holds different content") && err.contains("data/a.csv"), "{err}");
    assert_sound(&env, &repo, "raw");
}

#[test]
fn a_deleted_lfs_object_is_restored_by_commit_data_although_the_stat_cache_vouches_for_the_file() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"id\n1\n"), ("b.csv", b"id\n2\n")]);
    age(&src);
    commit_data(&env, &repo, &src, &[]);
    let objects = lfs_objects(&repo);
    assert_eq!(objects.len(), 2);
    fs::remove_file(&objects[0]).unwrap();

    let out = commit_data(&env, &repo, &src, &[]);
    assert_eq!(out["commit"], serde_json::Value::Null, "nothing to commit: {out}");
    assert!(objects[0].is_file(), "the deleted object was not restored from the source file");
    assert_eq!(out["bytes_read"], 5, "only the file whose object was missing is read again: {out}");
    assert_sound(&env, &repo, "raw");
}

#[test]
fn an_absolute_dest_is_refused_with_a_hint_instead_of_becoming_relative() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"a\n")]);
    let err =
        refused(&env, &repo, &[], &["commit-data", "--source", src.to_str().unwrap(), "--dest", "/abs/x"]);
    assert!(err.contains("absolute") && err.contains("--dest abs/x"), "{err}");
    assert_sound(&env, &repo, "main");
}

fn sandboxes(tmp: &Path) -> Vec<String> {
    fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mlgit-clean-"))
        .collect()
}

#[test]
fn clean_leaves_no_mlgit_clean_temporary_folder_behind_even_after_a_kill() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"id\n1\n")]);
    commit_data(&env, &repo, &src, &[]);
    let tmp = env.path("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let t = tmp.to_str().unwrap();
    let copy = r#"cp -r "$MLGIT_INPUT"/. "$MLGIT_OUTPUT"/"#;

    // A failing transform that leaves read-only folders behind.
    let run = format!(r#"{copy} && mkdir -p "$MLGIT_OUTPUT/ro/x"; chmod 500 "$MLGIT_OUTPUT/ro"; exit 4"#);
    let out = mlgit_with(&env, &repo, &[("TMPDIR", t)], &["clean", "--run", &run]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sandboxes(&tmp), Vec::<String>::new(), "left behind by a failed transform");

    // mlgit killed while the transform runs: its sandbox stays, and the next run removes it.
    let out = mlgit_with(&env, &repo, &[("TMPDIR", t)], &["clean", "--run", "kill -9 $PPID"]);
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_eq!(sandboxes(&tmp).len(), 1);
    let out = mlgit_with(&env, &repo, &[("TMPDIR", t)], &["clean", "--run", copy]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sandboxes(&tmp), Vec::<String>::new(), "a killed run's folder is removed by the next run");
    assert_sound(&env, &repo, "clean");
}

#[test]
fn commit_data_and_clean_stop_on_an_interrupt_with_nothing_committed() {
    use mlgit::data::clean::{clean, CleanOptions};
    use mlgit::data::commit::{self, CommitDataOptions};
    let env = TestEnv::new();
    let repo_dir = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"id\n1\n"), ("b.csv", b"id\n2\n")]);
    commit_data(&env, &repo_dir, &src, &[]);
    write_files(&src, &[("c.csv", b"id\n3\n")]);
    let before = env.refs(&repo_dir);
    let repo = mlgit::repo::Repo::discover(&repo_dir).unwrap();
    let interrupt = mlgit::interrupt::Interrupt::new();
    interrupt.trigger();
    let opts = CommitDataOptions { source: src.clone(), interrupt: interrupt.clone(), ..Default::default() };
    let err = commit::commit_data(&repo, &opts, &mlgit::progress::NoProgress).unwrap_err();
    assert_eq!(err.kind(), mlgit::ErrorKind::Interrupted, "{err:?}");
    let opts = CleanOptions { run: Some("true".into()), interrupt, ..Default::default() };
    let err = clean(&repo, &opts, &mlgit::progress::NoProgress).unwrap_err();
    assert_eq!(err.kind(), mlgit::ErrorKind::Interrupted, "{err:?}");
    assert_eq!(env.refs(&repo_dir), before, "an interrupted run moved a ref");
    assert!(fs::read_dir(repo_dir.join(".git/lfs/tmp")).map(|d| d.count() == 0).unwrap_or(true));
    assert_sound(&env, &repo_dir, "raw");
}

#[test]
fn commit_data_and_clean_stop_on_sigterm_with_nothing_committed_and_no_temporary_files() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"id\n1\n")]);
    commit_data(&env, &repo, &src, &[]);
    write_files(&src, &[("b.csv", b"id\n2\n"), ("c.csv", b"id\n3\n")]);
    let tmp = env.path("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let before = env.refs(&repo);
    let objects = lfs_objects(&repo).len();
    // The signal arrives once the folder is listed, before any file is read.
    let term = [("MLGIT_TEST_AFTER_WALK", "kill -TERM $PPID; sleep 0.2"), ("TMPDIR", tmp.to_str().unwrap())];
    let out = mlgit_with(&env, &repo, &term, &["commit-data", "--source", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), before, "an interrupted commit-data moved a ref");
    assert_eq!(lfs_objects(&repo).len(), objects, "an interrupted commit-data stored objects");

    // clean: interrupted while its transform's output is stored.
    let out =
        mlgit_with(&env, &repo, &term, &["clean", "--run", r#"cp -r "$MLGIT_INPUT"/. "$MLGIT_OUTPUT"/"#]);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), before, "an interrupted clean moved a ref");
    assert_eq!(sandboxes(&tmp), Vec::<String>::new(), "an interrupted clean left its temporary folder");
    assert!(fs::read_dir(repo.join(".git/lfs/tmp")).map(|d| d.count() == 0).unwrap_or(true));
    assert_sound(&env, &repo, "raw");
}

#[test]
fn a_truncated_lfs_object_is_repaired_by_recommitting_the_source_file() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"id\n1\n2\n3\n")]);
    age(&src);
    commit_data(&env, &repo, &src, &[]);
    let object = lfs_objects(&repo).pop().expect("one object");
    fs::write(&object, b"id\n").unwrap(); // truncated, as a killed copy leaves it

    let out = commit_data(&env, &repo, &src, &[]);
    assert_eq!(out["commit"], serde_json::Value::Null, "nothing to commit: {out}");
    assert_eq!(fs::read(&object).unwrap(), b"id\n1\n2\n3\n", "the truncated object was kept");
    assert_sound(&env, &repo, "raw");
}
