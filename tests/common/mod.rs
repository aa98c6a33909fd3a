//! Shared end-to-end test environment: every test runs the real `mlgit` binary and the real `git`
//! (and `git lfs`, MLflow where needed) with a cleared environment, a temporary HOME, no system git
//! config and fixed commit dates, so ids are stable and the machine's setup cannot leak in.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

/// A temporary world for one test: a HOME, a scratch folder, and helpers to run tools in it.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    /// Seconds added to the base date by each `tick` (so successive commits get distinct dates).
    pub date: std::cell::Cell<i64>,
}

pub const BASE_DATE: i64 = 1_795_428_000; // 2026-11-23T10:00:00Z

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::tempdir().expect("temp dir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n",
        )
        .expect("gitconfig");
        TestEnv { tmp, home, date: std::cell::Cell::new(BASE_DATE) }
    }

    /// A path inside the test's scratch folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Advance the fixed clock by a minute.
    pub fn tick(&self) {
        self.date.set(self.date.get() + 60);
    }

    fn isolate(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LANG", "C.UTF-8")
            .env("USER", "tester")
            .env("GIT_AUTHOR_DATE", format!("@{} +0000", self.date.get()))
            .env("GIT_COMMITTER_DATE", format!("@{} +0000", self.date.get()));
    }

    /// A `mlgit` command (the binary under test) running in `dir`.
    pub fn mlgit_cmd(&self, dir: &Path) -> Command {
        let mut cmd = Command::cargo_bin("mlgit").expect("mlgit binary");
        self.isolate(&mut cmd);
        cmd.current_dir(dir);
        cmd
    }

    /// Run mlgit in `dir`; returns the output whatever the exit code.
    pub fn mlgit<I, S>(&self, dir: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.mlgit_cmd(dir).args(args).output().expect("run mlgit")
    }

    /// Run mlgit and require success; returns stdout.
    pub fn mlgit_ok<I, S>(&self, dir: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.mlgit(dir, args);
        assert!(
            out.status.success(),
            "mlgit failed: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Run mlgit with `--json`, require success and parse the document strictly.
    pub fn mlgit_json<I, S>(&self, dir: &Path, args: I) -> serde_json::Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        let text = self.mlgit_ok(dir, all);
        let v: serde_json::Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"));
        assert_eq!(v["schema_version"], 1, "{v}");
        v
    }

    /// A `git` command isolated like mlgit.
    pub fn git_cmd(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        self.isolate(&mut cmd);
        cmd.current_dir(dir);
        cmd
    }

    /// Run git and require success; returns stdout.
    pub fn git<I, S>(&self, dir: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let out = self.git_cmd(dir).args(&args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {:?} failed: {}\n{}\n{}",
            args,
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Every ref with its target, as `git for-each-ref` prints them (for "nothing changed" checks).
    pub fn refs(&self, repo: &Path) -> String {
        self.git(repo, ["for-each-ref", "--format=%(refname) %(objectname)"])
    }

    /// Commit `files` on `branch` with plain git, in a linked worktree of it kept under the
    /// scratch folder (made on first use), and return the new commit's id.
    pub fn commit_on(&self, repo: &Path, branch: &str, files: &[(&str, &[u8])], message: &str) -> String {
        let wt = self.path(&format!("wt-{}", branch.replace('/', "-")));
        if !wt.exists() {
            self.git(repo, ["worktree", "add", "-q", wt.to_str().expect("utf-8 path"), branch]);
        }
        write_files(&wt, files);
        self.git(&wt, ["add", "-A", "."]);
        self.git(&wt, ["commit", "-q", "-m", message]);
        self.tick();
        self.git(&wt, ["rev-parse", "HEAD"]).trim().to_string()
    }

    /// `mlgit init` a fresh repository at `rel` and return its path.
    pub fn init_repo(&self, rel: &str) -> PathBuf {
        let dir = self.path(rel);
        self.mlgit_ok(self.tmp.path(), ["init", "--quiet", dir.to_str().expect("utf-8 path")]);
        dir
    }

    /// Whether `git lfs` can run here. Under CI (`CI=true`) a missing git-lfs fails the test;
    /// elsewhere the caller skips with a printed reason.
    pub fn has_git_lfs(&self) -> bool {
        let ok = Command::new("git")
            .args(["lfs", "version"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("git-lfs is required when CI=true (apt-get install -y git-lfs)");
            }
            eprintln!("skipping: git-lfs is not installed (apt-get install -y git-lfs)");
            return false;
        }
        self.git(&self.home, ["lfs", "install", "--skip-repo"]);
        true
    }
}

/// The `python3` that can import MLflow, as an absolute path. Under CI (`CI=true`) a missing MLflow
/// fails the test; elsewhere the caller skips with a printed reason.
pub fn python_with_mlflow() -> Option<String> {
    let out = Command::new("python3").args(["-c", "import mlflow, sys; print(sys.executable)"]).output().ok();
    match out {
        Some(o) if o.status.success() => Some(stdout(&o).trim().to_string()),
        _ => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("MLflow is required when CI=true (pip install mlflow==3.17.2)");
            }
            eprintln!("skipping: MLflow is not installed (pip install mlflow==3.17.2)");
            None
        }
    }
}

/// Set every file's mtime well in the past, so the stat cache may trust it (recent files are "racy").
pub fn age(dir: &Path) {
    let status = Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-h", "-d", "@1600000000", "{}", "+"])
        .status()
        .expect("find");
    assert!(status.success());
}

/// The sha256 of `bytes` in hex, as records and `sha256sum` write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Write files (path relative to `root` → content) creating folders.
pub fn write_files(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, content) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
    }
}

/// Every file under `root` (relative paths, '/'-separated), skipping `.git`.
pub fn list_files(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(|p| p.to_string_lossy().into_owned()))
        .filter(|p| !p.starts_with(".git/"))
        .collect();
    out.sort();
    out
}

/// Assert that two folders hold the same files with the same bytes.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = list_files(expected);
    let b = list_files(actual);
    assert_eq!(a, b, "file lists differ between {} and {}", expected.display(), actual.display());
    for rel in &a {
        let x = std::fs::read(expected.join(rel)).expect("read expected");
        let y = std::fs::read(actual.join(rel)).expect("read actual");
        assert!(x == y, "{rel} differs between {} and {}", expected.display(), actual.display());
    }
}
