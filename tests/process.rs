//! End-to-end tests of how mlgit runs children and stops (issue 9): a killed or interrupted mlgit
//! leaves no child running, a closed stdout or a tiny address space is an error and not a panic,
//! and every `--json` outcome (usage errors included) is one document that starts with
//! `schema_version` and names its error kind from the documented list.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, TestEnv};
use mlgit::interrupt::Interrupt;
use mlgit::process::{self, ChildCommand};

/// A repository with one raw commit, ready for `mlgit clean --run`.
fn repo_with_raw_data(env: &TestEnv) -> PathBuf {
    let repo = env.init_repo("r");
    let source = env.path("batch");
    common::write_files(&source, &[("a.csv", b"name\nann\n"), ("b.csv", b"name\nbob\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", source.to_str().unwrap(), "-m", "batch 1"]);
    env.tick();
    repo
}

/// A transform that starts a grandchild, records both pids in `pids/`, then waits: a training
/// script that runs `python train.py` has the same shape.
fn sleeping_transform(pids: &Path, trap: &str) -> String {
    let dir = pids.display();
    format!("{trap} sleep 1000 & echo $! > {dir}/grandchild.tmp; echo $$ > {dir}/child.tmp; mv {dir}/grandchild.tmp {dir}/grandchild; mv {dir}/child.tmp {dir}/child; wait")
}

/// Start mlgit (stdout and stderr to files: a pipe would be held open by the children).
fn spawn_mlgit(env: &TestEnv, dir: &Path, args: &[&str]) -> Child {
    let out = std::fs::File::create(env.path("mlgit.out")).unwrap();
    let err = std::fs::File::create(env.path("mlgit.err")).unwrap();
    env.mlgit_cmd(dir)
        .env("TMPDIR", env.path("tmp"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap()
}

/// The pids the transform recorded, once it has.
fn wait_for_pids(pids: &Path, mlgit: &mut Child) -> (i32, i32) {
    let start = Instant::now();
    loop {
        let read = |name: &str| std::fs::read_to_string(pids.join(name)).ok()?.trim().parse::<i32>().ok();
        if let (Some(child), Some(grandchild)) = (read("child"), read("grandchild")) {
            return (child, grandchild);
        }
        if let Ok(Some(status)) = mlgit.try_wait() {
            panic!("mlgit exited ({status}) before the transform started");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the transform never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Alive and not a zombie (an orphan's zombie may wait for a reaper for ever in a container).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Wait up to `limit` for every pid to stop running; on failure kill them (so a failing test leaves
/// nothing behind) and say which survived.
fn assert_all_gone(pids: &[i32], limit: Duration) {
    let start = Instant::now();
    while pids.iter().any(|&p| running(p)) && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| running(p)).collect();
    for &p in &alive {
        // SAFETY: kill(2) of a process this test started.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    assert!(alive.is_empty(), "still running {:?} after mlgit stopped: {alive:?}", limit);
}

/// Every lock file under `.git/mlgit/locks` can be taken: no orphan holds one.
fn assert_no_lock_held(repo: &Path) {
    let Ok(entries) = std::fs::read_dir(repo.join(".git/mlgit/locks")) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        // SAFETY: flock on a descriptor owned by `file`.
        let rc =
            unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0, "{} is still held", path.display());
    }
}

fn send(child: &Child, sig: i32) {
    // SAFETY: kill(2) of a process this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("mlgit did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_killed_mlgit_leaves_no_child_running() {
    let env = TestEnv::new();
    let repo = repo_with_raw_data(&env);
    let pids = env.path("pids");
    std::fs::create_dir_all(&pids).unwrap();
    std::fs::create_dir_all(env.path("tmp")).unwrap();
    let clean_before = env.refs(&repo);
    let mut mlgit = spawn_mlgit(&env, &repo, &["clean", "--run", &sleeping_transform(&pids, "")]);
    let (child, grandchild) = wait_for_pids(&pids, &mut mlgit);
    send(&mlgit, libc::SIGKILL);
    mlgit.wait().unwrap();
    assert_all_gone(&[child, grandchild], Duration::from_secs(5));
    assert_no_lock_held(&repo);
    assert_eq!(env.refs(&repo), clean_before, "a killed clean moved a ref");
}

/// Not a test on its own: the process that `a_killed_training_runner_leaves_no_child_running`
/// starts and kills, running a training command through the library's runner as train-tag does.
#[test]
#[ignore = "run by a_killed_training_runner_leaves_no_child_running"]
fn runner_for_the_kill_test() {
    let Some(dir) = std::env::var_os("MLGIT_TEST_RUNNER_DIR") else { return };
    let dir = PathBuf::from(dir);
    let cmd = ChildCommand::new("./train.sh", &dir);
    let _ = process::run(&cmd, &Interrupt::new(), "the training command `./train.sh`");
}

#[test]
fn a_killed_training_runner_leaves_no_child_running() {
    let env = TestEnv::new();
    let dir = env.path("stable");
    let pids = env.path("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let script = format!("#!/bin/sh\n{}\n", sleeping_transform(&pids, ""));
    common::write_files(&dir, &[("train.sh", script.as_bytes())]);
    std::fs::set_permissions(dir.join("train.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let mut runner = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "runner_for_the_kill_test", "--ignored", "--nocapture"])
        .env("MLGIT_TEST_RUNNER_DIR", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (child, grandchild) = wait_for_pids(&pids, &mut runner);
    send(&runner, libc::SIGKILL);
    runner.wait().unwrap();
    assert_all_gone(&[child, grandchild], Duration::from_secs(5));
}

#[test]
fn sigterm_stops_clean_and_its_transform() {
    let env = TestEnv::new();
    let repo = repo_with_raw_data(&env);
    let pids = env.path("pids");
    std::fs::create_dir_all(&pids).unwrap();
    std::fs::create_dir_all(env.path("tmp")).unwrap();
    let before = env.refs(&repo);
    let mut mlgit = spawn_mlgit(&env, &repo, &["--json", "clean", "--run", &sleeping_transform(&pids, "")]);
    let (child, grandchild) = wait_for_pids(&pids, &mut mlgit);
    send(&mlgit, libc::SIGTERM);
    let status = wait_with_limit(&mut mlgit, Duration::from_secs(8));
    let err = std::fs::read_to_string(env.path("mlgit.err")).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    let out = std::fs::read_to_string(env.path("mlgit.out")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["error"]["kind"], "interrupted", "{doc}");
    assert_all_gone(&[child, grandchild], Duration::from_secs(1));
    assert_eq!(env.refs(&repo), before, "an interrupted clean moved a ref");
    let left: Vec<_> = std::fs::read_dir(env.path("tmp")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn a_second_signal_stops_mlgit_at_once() {
    let env = TestEnv::new();
    let repo = repo_with_raw_data(&env);
    let pids = env.path("pids");
    std::fs::create_dir_all(&pids).unwrap();
    std::fs::create_dir_all(env.path("tmp")).unwrap();
    // A transform that ignores SIGTERM and SIGINT, as a hung one effectively does.
    let transform = sleeping_transform(&pids, "trap '' TERM INT;");
    let mut mlgit = spawn_mlgit(&env, &repo, &["clean", "--run", &transform]);
    let (child, grandchild) = wait_for_pids(&pids, &mut mlgit);
    send(&mlgit, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(mlgit.try_wait().unwrap().is_none(), "one signal gives the transform its grace");
    let second = Instant::now();
    send(&mlgit, libc::SIGINT);
    let status = wait_with_limit(&mut mlgit, Duration::from_secs(5));
    assert!(second.elapsed() < Duration::from_secs(2), "took {:?} after the second signal", second.elapsed());
    let err = std::fs::read_to_string(env.path("mlgit.err")).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("stopped at once"), "{err}");
    // The watchdog ends the group: SIGTERM is ignored, SIGKILL after the grace is not.
    assert_all_gone(&[child, grandchild], process::CHILD_GRACE + Duration::from_secs(3));
}

/// Not a test on its own: a command that never checks the interrupt flag (as one blocked in
/// `open()` on a FIFO), for `one_signal_stops_a_command_that_never_checks_the_flag`.
#[test]
#[ignore = "run by one_signal_stops_a_command_that_never_checks_the_flag"]
fn command_that_never_checks_the_flag() {
    let Some(ready) = std::env::var_os("MLGIT_TEST_READY_FILE") else { return };
    let interrupt = Interrupt::new();
    interrupt.stop_on_signals(|err| err.exit_code()).unwrap();
    std::fs::write(ready, "ready").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn one_signal_stops_a_command_that_never_checks_the_flag() {
    let env = TestEnv::new();
    let ready = env.path("ready");
    let mut blocked = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "command_that_never_checks_the_flag", "--ignored", "--nocapture"])
        .env("MLGIT_TEST_READY_FILE", &ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready.exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "the blocked command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    send(&blocked, libc::SIGTERM);
    let status = wait_with_limit(&mut blocked, mlgit::interrupt::STOP_DEADLINE + Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(sent.elapsed() >= mlgit::interrupt::STOP_DEADLINE, "it had its time to reach a safe point");
}

/// A pipe whose read end is already closed: every write to the other end fails with EPIPE.
fn pipe_without_reader() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors, which we own from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    write
}

#[test]
fn a_closed_stdout_exits_quietly() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for json in [false, true] {
        let mut cmd = env.mlgit_cmd(&repo);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg("status").stdout(pipe_without_reader()).stderr(Stdio::piped()).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "--json {json}: {err}");
        assert!(err.is_empty(), "--json {json}: {err}");
    }
}

#[test]
fn status_to_dev_full_reports_an_error() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for args in [&["status"][..], &["status", "--json"][..]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = env.mlgit_cmd(&repo).args(args).stdout(full).stderr(Stdio::piped()).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("error: cannot write the result to stdout"), "{args:?}: {err}");
        assert!(err.contains("hint: the device holding stdout is full"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Run mlgit with its address space limited to `kib` KiB (killed if it takes over 30 s: a hang).
fn mlgit_with_address_space(env: &TestEnv, dir: &Path, kib: u64, args: &[&str]) -> std::process::Output {
    let mut cmd = env.mlgit_cmd(dir);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let limit = libc::rlimit { rlim_cur: kib * 1024, rlim_max: kib * 1024 };
    // SAFETY: setrlimit is async-signal-safe and only limits the child about to exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_with_limit(&mut child, Duration::from_secs(30));
    child.wait_with_output().unwrap()
}

#[test]
fn a_tiny_address_space_reports_an_error_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let source = env.path("batch");
    common::write_files(&source, &[("a.csv", b"name\nann\n")]);
    let src = source.to_str().unwrap();
    // The smallest limit under which the binary loads at all (it depends on the build).
    let (mut low, mut high) = (1_000u64, 4_000_000u64);
    while high - low > 250 {
        let mid = (low + high) / 2;
        if mlgit_with_address_space(&env, &repo, mid, &["--version"]).status.success() {
            high = mid;
        } else {
            low = mid;
        }
    }
    // From there up, a limit is enough, or too tight for the worker threads (the first thing that
    // no longer fits: `ulimit -v 20000` with a release build), which is an error with exit 1 and a
    // JSON document. Rust aborts on a failed allocation (its documented behaviour, not a panic):
    // that may happen in a narrow band between the two.
    let mut thread_errors = 0;
    for kib in (high..high + 24_000).step_by(500) {
        let out = mlgit_with_address_space(
            &env,
            &repo,
            kib,
            &["--json", "commit-data", "--source", src, "-m", "x"],
        );
        let (text, err) = (stdout(&out), stderr(&out));
        assert_ne!(out.status.code(), Some(101), "a panic with ulimit -v {kib}: {err}");
        if out.status.signal() == Some(libc::SIGABRT) && err.starts_with("memory allocation of") {
            continue;
        }
        assert!(out.status.code().is_some(), "killed by a signal with ulimit -v {kib}: {err}");
        let doc: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("ulimit -v {kib}: {e}: {text}\n{err}"));
        assert!(text.starts_with("{\"schema_version\":1,"), "{text}");
        if out.status.success() {
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "ulimit -v {kib}: {err}");
        assert!(doc["error"]["hint"].as_str().is_some_and(|h| !h.is_empty()), "{doc}");
        if doc["error"]["message"] == "cannot start mlgit's worker threads" {
            thread_errors += 1;
            assert!(err.contains("ulimit -v"), "{err}");
        }
    }
    assert!(thread_errors > 0, "no limit from {high} KiB up made the worker threads fail");
}

#[test]
fn usage_error_with_json_prints_a_json_document() {
    let env = TestEnv::new();
    for (args, command) in [
        (&["--json", "status", "--bogus"][..], serde_json::json!("status")),
        (&["stable", "update", "--nope", "--json"][..], serde_json::json!("stable update")),
        (&["--json", "no-such-command"][..], serde_json::Value::Null),
    ] {
        let out = env.mlgit(env.tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 1, "{args:?}: one document: {text}");
        let doc: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"));
        assert_eq!(doc["schema_version"], 1, "{doc}");
        assert_eq!(doc["command"], command, "{doc}");
        assert_eq!(doc["error"]["kind"], "usage", "{doc}");
        assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
        assert!(doc["error"]["hint"].as_str().is_some_and(|h| h.contains("--help")), "{doc}");
        // Clap's own text still explains it on stderr.
        assert!(stderr(&out).contains("Usage:"), "{}", stderr(&out));
    }
    // Without --json, stdout stays empty.
    let out = env.mlgit(env.tmp.path(), ["status", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
}

#[test]
fn schema_version_is_the_first_key() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let outside = env.path("not-a-repo");
    std::fs::create_dir_all(&outside).unwrap();
    for (dir, args) in [
        (&repo, &["--json", "status"][..]),
        (&repo, &["--json", "verify"][..]),
        (&outside, &["--json", "status"][..]),
        (&repo, &["--json", "materialize", "no-such-ref", "--into", "x"][..]),
    ] {
        let text = stdout(&env.mlgit(dir, args));
        let command = args[1];
        let start = format!("{{\"schema_version\":1,\"command\":\"{command}\",");
        assert!(text.starts_with(&start), "{args:?}: {text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"));
    }
}

/// The `error.kind` names that docs/json.md documents.
fn documented_kinds() -> Vec<String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    let table = doc.split("## Error kinds").nth(1).expect("docs/json.md has an `## Error kinds` section");
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn json_error_kind_is_a_documented_name() {
    let documented = documented_kinds();
    for kind in mlgit::ErrorKind::ALL {
        assert!(
            documented.contains(&kind.as_str().to_string()),
            "{kind} is not in docs/json.md: {documented:?}"
        );
    }
    let env = TestEnv::new();
    let repo = repo_with_raw_data(&env);
    let outside = env.path("not-a-repo");
    std::fs::create_dir_all(&outside).unwrap();
    for (dir, args, kind) in [
        (&outside, &["--json", "status"][..], "not_found"),
        (&repo, &["--json", "clean", "--run", "exit 7"][..], "child_failed"),
        (&repo, &["--json", "commit-data", "--source", "/no/such/folder"][..], "not_found"),
    ] {
        let out = env.mlgit(dir, args);
        let text = stdout(&out);
        let doc: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"));
        assert_eq!(doc["error"]["kind"], kind, "{args:?}: {doc}");
        assert!(documented.contains(&kind.to_string()));
        assert_eq!(doc["error"]["exit_code"], out.status.code().unwrap(), "{doc}");
        assert!(doc["error"]["hint"].as_str().is_some_and(|h| !h.is_empty()), "{args:?}: no hint: {doc}");
    }
}

#[test]
fn a_missing_command_hint_does_not_double_the_dot_slash() {
    let env = TestEnv::new();
    let dir = env.path("stable");
    std::fs::create_dir_all(&dir).unwrap();
    let cmd = ChildCommand::new("./does-not-exist", &dir);
    let err = process::run(&cmd, &Interrupt::new(), "the training command `./does-not-exist`").unwrap_err();
    let hint = err.hint().unwrap_or_default();
    assert!(!hint.contains("././"), "{hint}");
    assert!(hint.contains("./does-not-exist does not exist"), "{hint}");
}

#[test]
fn os_errors_get_the_hint_their_cause_calls_for() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    // A symlink loop as the source.
    let looped = env.path("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let out = env.mlgit(&repo, ["commit-data", "--source", looped.to_str().unwrap(), "-m", "x"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("hint: ") && err.contains("is a symlink loop"), "{err}");
    // A name too long for the file system.
    let long = env.path(&"n".repeat(300));
    let out = env.mlgit(&repo, ["materialize", "raw", "--into", long.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("too long for the file system"), "{err}");
}
