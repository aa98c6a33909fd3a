//! The git hooks: mlgit's pre-push hook (installed by init, chained with an existing hook, never
//! overwriting one), the server's pre-receive hook that guards append-only branches, and
//! `mlgit verify BRANCH` finding plain-git edits of `raw`.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{stderr, stdout, write_files, TestEnv};

fn mlgit_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("mlgit")
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.permissions().mode() & 0o111 == 0o111).unwrap_or(false)
}

fn install(env: &TestEnv, repo: &Path) -> serde_json::Value {
    env.mlgit_json(repo, ["hook", "install"])
}

/// A plain git repository with one commit on main (no mlgit branches).
fn plain_repo(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.path(name);
    env.git(env.tmp.path(), ["init", "-q", dir.to_str().unwrap()]);
    write_files(&dir, &[("README.md", b"hello\n")]);
    env.git(&dir, ["add", "README.md"]);
    env.git(&dir, ["commit", "-q", "-m", "first"]);
    dir
}

/// A bare remote `name.git` added as `origin` of `repo`.
fn bare_remote(env: &TestEnv, repo: &Path, name: &str) -> PathBuf {
    let bare = env.path(&format!("{name}.git"));
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    env.git(repo, ["remote", "add", "origin", &format!("file://{}", bare.display())]);
    bare
}

fn push(env: &TestEnv, repo: &Path, args: &[&str]) -> Output {
    env.git_cmd(repo).arg("push").args(args).output().expect("run git push")
}

fn remote_ref(env: &TestEnv, bare: &Path, r: &str) -> Option<String> {
    let out = env.git_cmd(bare).args(["rev-parse", "--verify", "-q", r]).output().unwrap();
    out.status.success().then(|| stdout(&out).trim().to_string())
}

#[test]
fn init_installs_the_pre_push_hook_and_a_second_install_changes_nothing() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let hook = repo.join(".git/hooks/pre-push");
    let text = fs::read_to_string(&hook).expect("init wrote .git/hooks/pre-push");
    assert!(text.starts_with("#!/bin/sh\n# mlgit-managed pre-push hook\n"), "{text}");
    assert!(text.contains(&format!("mlgit='{}'", mlgit_bin().display())), "{text}");
    assert!(is_executable(&hook));
    let init = env.mlgit_json(&repo, ["init", "."]);
    assert_eq!(init["hook"]["action"], "unchanged", "{init}");
    let again = install(&env, &repo);
    assert_eq!(again["action"], "unchanged", "{again}");
    assert_eq!(again["chained"], serde_json::Value::Null);
    assert_eq!(fs::read_to_string(&hook).unwrap(), text);
    let names: Vec<String> = fs::read_dir(repo.join(".git/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sample"))
        .collect();
    assert_eq!(names, vec!["pre-push".to_string()], "no temporary file left behind");
}

#[test]
fn install_chains_git_lfs_own_pre_push_hook_and_is_idempotent() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = plain_repo(&env, "r");
    env.git(&repo, ["lfs", "install"]);
    let hooks = repo.join(".git/hooks");
    let lfs_hook = fs::read(hooks.join("pre-push")).unwrap();
    assert!(String::from_utf8_lossy(&lfs_hook).contains("git lfs pre-push"));

    let first = install(&env, &repo);
    assert_eq!(first["action"], "chained", "{first}");
    assert_eq!(
        fs::read(hooks.join("pre-push.before-mlgit")).unwrap(),
        lfs_hook,
        "git-lfs's hook kept as it was"
    );
    assert!(is_executable(&hooks.join("pre-push.before-mlgit")));
    let ours = fs::read(hooks.join("pre-push")).unwrap();
    assert!(String::from_utf8_lossy(&ours).contains("mlgit-managed"));

    // Again, and through init: nothing moves, git-lfs's hook is not chained twice.
    assert_eq!(install(&env, &repo)["action"], "unchanged");
    env.mlgit_ok(&repo, ["init", "--quiet", "."]);
    assert_eq!(fs::read(hooks.join("pre-push")).unwrap(), ours);
    assert_eq!(fs::read(hooks.join("pre-push.before-mlgit")).unwrap(), lfs_hook);

    // Both run on a plain push: git-lfs's first (it logs its own pre-push), then mlgit's.
    let bare = bare_remote(&env, &repo, "origin");
    let out = push(&env, &repo, &["-q", "origin", "main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        remote_ref(&env, &bare, "main"),
        Some(env.git(&repo, ["rev-parse", "main"]).trim().to_string())
    );
}

#[test]
fn a_users_hooks_are_never_overwritten() {
    let env = TestEnv::new();
    let repo = plain_repo(&env, "r");
    let hooks = repo.join(".git/hooks");
    write_files(
        &hooks,
        &[("pre-push", b"#!/bin/sh\necho mine\n"), ("pre-push.before-mlgit", b"#!/bin/sh\necho older\n")],
    );
    let out = install(&env, &repo);
    assert_eq!(out["action"], "skipped", "{out}");
    assert!(out["note"].as_str().unwrap().contains("pre-push.before-mlgit exists too"), "{out}");
    assert_eq!(fs::read_to_string(hooks.join("pre-push")).unwrap(), "#!/bin/sh\necho mine\n");
    assert_eq!(fs::read_to_string(hooks.join("pre-push.before-mlgit")).unwrap(), "#!/bin/sh\necho older\n");

    // A folder where the hook would go is left alone too.
    let repo2 = plain_repo(&env, "r2");
    fs::create_dir_all(repo2.join(".git/hooks/pre-push")).unwrap();
    assert_eq!(install(&env, &repo2)["action"], "skipped");
    assert!(repo2.join(".git/hooks/pre-push").is_dir());
}

#[test]
fn the_chained_hook_runs_first_with_the_same_arguments_and_input_and_its_failure_stops_the_push() {
    let env = TestEnv::new();
    let repo = plain_repo(&env, "r");
    let bare = bare_remote(&env, &repo, "origin");
    let log = env.path("chained.log");
    let user_hook = format!(
        "#!/bin/sh\necho \"args: $*\" >> '{log}'\ncat >> '{log}'\nexit \"$(cat '{flag}' 2>/dev/null || echo 0)\"\n",
        log = log.display(),
        flag = env.path("fail").display()
    );
    write_files(&repo.join(".git/hooks"), &[("pre-push", user_hook.as_bytes())]);
    fs::set_permissions(repo.join(".git/hooks/pre-push"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(install(&env, &repo)["action"], "chained");

    fs::write(env.path("fail"), "1").unwrap();
    let out = push(&env, &repo, &["origin", "main"]);
    assert!(!out.status.success(), "the chained hook failed, the push must stop");
    assert_eq!(remote_ref(&env, &bare, "main"), None, "no ref pushed");
    let head = env.git(&repo, ["rev-parse", "main"]).trim().to_string();
    let logged = fs::read_to_string(&log).unwrap();
    let url = format!("file://{}", bare.display());
    assert!(logged.contains(&format!("args: origin {url}")), "{logged}");
    assert!(
        logged.contains(&format!("refs/heads/main {head} refs/heads/main {}", "0".repeat(40))),
        "{logged}"
    );

    fs::write(env.path("fail"), "0").unwrap();
    let tmpdir = env.path("tmpdir");
    fs::create_dir_all(&tmpdir).unwrap();
    let out = env.git_cmd(&repo).env("TMPDIR", &tmpdir).args(["push", "origin", "main"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "main"), Some(head));
    assert_eq!(fs::read_dir(&tmpdir).unwrap().count(), 0, "the saved input is removed");
}

#[test]
fn a_hook_that_was_not_executable_stays_unrun_and_install_says_so() {
    let env = TestEnv::new();
    let repo = plain_repo(&env, "r");
    let bare = bare_remote(&env, &repo, "origin");
    write_files(&repo.join(".git/hooks"), &[("pre-push", b"#!/bin/sh\nexit 1\n")]);
    fs::set_permissions(repo.join(".git/hooks/pre-push"), fs::Permissions::from_mode(0o644)).unwrap();
    let out = install(&env, &repo);
    assert_eq!(out["action"], "chained");
    assert!(out["note"].as_str().unwrap().contains("not executable"), "{out}");
    // git never ran it before; it still does not stop the push.
    let res = push(&env, &repo, &["origin", "main"]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(stderr(&res).contains("is not executable, so it was skipped"), "{}", stderr(&res));
    assert!(remote_ref(&env, &bare, "main").is_some());
}

#[test]
fn core_hooks_path_is_respected() {
    let env = TestEnv::new();
    let repo = plain_repo(&env, "r");
    env.git(&repo, ["config", "core.hooksPath", ".githooks"]);
    let out = install(&env, &repo);
    assert_eq!(out["action"], "installed", "{out}");
    assert!(repo.join(".githooks/pre-push").is_file());
    assert!(!repo.join(".git/hooks/pre-push").exists());
    // git runs it from there.
    let bare = bare_remote(&env, &repo, "origin");
    fs::write(repo.join(".githooks/pre-push.before-mlgit"), "#!/bin/sh\necho from-hooks-path >&2\n").unwrap();
    fs::set_permissions(repo.join(".githooks/pre-push.before-mlgit"), fs::Permissions::from_mode(0o755))
        .unwrap();
    let res = push(&env, &repo, &["origin", "main"]);
    assert!(res.status.success() && stderr(&res).contains("from-hooks-path"), "{}", stderr(&res));
    assert!(remote_ref(&env, &bare, "main").is_some());
}

#[test]
fn a_symlinked_hooks_folder_and_a_symlinked_hook_are_handled_safely() {
    let env = TestEnv::new();
    // The hooks folder is a symlink to a shared folder: the hook goes into it, the link stays.
    let repo = plain_repo(&env, "r");
    let shared = env.path("shared-hooks");
    fs::create_dir_all(&shared).unwrap();
    fs::remove_dir_all(repo.join(".git/hooks")).unwrap();
    symlink(&shared, repo.join(".git/hooks")).unwrap();
    assert_eq!(install(&env, &repo)["action"], "installed");
    assert!(fs::symlink_metadata(repo.join(".git/hooks")).unwrap().file_type().is_symlink());
    assert!(shared.join("pre-push").is_file());

    // The hook is a symlink to a user's script: the link is moved aside, the script is untouched.
    let repo2 = plain_repo(&env, "r2");
    let script = env.path("my-pre-push");
    fs::write(&script, "#!/bin/sh\necho user-script >&2\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    symlink(&script, repo2.join(".git/hooks/pre-push")).unwrap();
    assert_eq!(install(&env, &repo2)["action"], "chained");
    assert_eq!(fs::read_to_string(&script).unwrap(), "#!/bin/sh\necho user-script >&2\n");
    let kept = repo2.join(".git/hooks/pre-push.before-mlgit");
    assert_eq!(fs::read_link(&kept).unwrap(), script);
    assert!(!fs::symlink_metadata(repo2.join(".git/hooks/pre-push")).unwrap().file_type().is_symlink());
    bare_remote(&env, &repo2, "origin");
    let res = push(&env, &repo2, &["origin", "main"]);
    assert!(res.status.success() && stderr(&res).contains("user-script"), "{}", stderr(&res));

    // A hooks folder that is a symlink to nothing: reported, nothing created through it.
    let repo3 = plain_repo(&env, "r3");
    fs::remove_dir_all(repo3.join(".git/hooks")).unwrap();
    symlink(env.path("nowhere"), repo3.join(".git/hooks")).unwrap();
    let out = install(&env, &repo3);
    assert_eq!(out["action"], "skipped", "{out}");
    assert!(!env.path("nowhere").exists());
}

#[test]
fn a_moved_mlgit_binary_falls_back_to_path_or_stops_the_push_with_a_message() {
    let env = TestEnv::new();
    let repo = plain_repo(&env, "r");
    let bare = bare_remote(&env, &repo, "origin");
    let bin = env.path("bin");
    fs::create_dir_all(&bin).unwrap();
    // Copied by `cp`, not fs::copy: a file this multi-threaded test process holds open for
    // writing can leak into a child forked meanwhile, and running it then fails (ETXTBSY).
    let cp = Command::new("cp").arg(mlgit_bin()).arg(bin.join("mlgit")).status().unwrap();
    assert!(cp.success());
    let out = Command::new(bin.join("mlgit"))
        .args(["hook", "install"])
        .current_dir(&repo)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let hook = fs::read_to_string(repo.join(".git/hooks/pre-push")).unwrap();
    assert!(hook.contains(&format!("mlgit='{}'", bin.join("mlgit").display())), "{hook}");
    fs::remove_file(bin.join("mlgit")).unwrap();

    // Neither at its old place nor on PATH: the push stops, and says why and what to do.
    let no_mlgit_path = "/usr/local/bin:/usr/bin:/bin";
    assert!(!Path::new("/usr/local/bin/mlgit").exists() && !Path::new("/usr/bin/mlgit").exists());
    let res =
        env.git_cmd(&repo).env("PATH", no_mlgit_path).args(["push", "origin", "main"]).output().unwrap();
    assert!(!res.status.success());
    let err = stderr(&res);
    assert!(
        err.contains("cannot run mlgit") && err.contains("mlgit hook install") && err.contains("--no-verify"),
        "{err}"
    );
    assert_eq!(remote_ref(&env, &bare, "main"), None);

    // On PATH: it runs that one.
    let path = format!("{}:{no_mlgit_path}", mlgit_bin().parent().unwrap().display());
    let res = env.git_cmd(&repo).env("PATH", path).args(["push", "origin", "main"]).output().unwrap();
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(remote_ref(&env, &bare, "main").is_some());
}

#[test]
fn a_push_with_stdout_closed_still_works() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let bare = bare_remote(&env, &repo, "origin");
    let res = Command::new("sh")
        .args(["-c", "exec git push -q origin dev/model >&-"])
        .current_dir(&repo)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(remote_ref(&env, &bare, "dev/model").is_some());
}

// ---- pre-receive -------------------------------------------------------------------------------

/// A bare remote of an mlgit repository whose raw branch has a first batch, with
/// `mlgit hook pre-receive` installed as its hooks/pre-receive. Returns (clone, bare).
fn guarded_remote(env: &TestEnv) -> (PathBuf, PathBuf) {
    let repo = env.init_repo("r");
    let src = env.path("batch-1");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n"), ("b.csv", b"x,y\n3,4\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 1"]);
    let bare = bare_remote(env, &repo, "origin");
    let hook = bare.join("hooks/pre-receive");
    fs::write(&hook, format!("#!/bin/sh\nexec '{}' hook pre-receive\n", mlgit_bin().display())).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    // The LFS objects are not what these tests are about: no pre-push upload.
    let out = push(env, &repo, &["--no-verify", "-q", "origin", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    (repo, bare)
}

/// Push `raw` (extra args first) without the pre-push hook; returns the output.
fn push_raw(env: &TestEnv, repo: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--no-verify"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["origin", "raw"]);
    push(env, repo, &args)
}

#[test]
fn pre_receive_refuses_a_modified_path_on_raw_and_names_branch_commit_and_path() {
    let env = TestEnv::new();
    let (repo, bare) = guarded_remote(&env);
    let before = remote_ref(&env, &bare, "raw").unwrap();
    let bad = env.commit_on(&repo, "raw", &[("README.md", b"edited with plain git\n")], "fix readme");
    let out = push_raw(&env, &repo, &[]);
    assert!(!out.status.success(), "pushed an edit of raw");
    let err = stderr(&out);
    assert!(err.contains("branch 'raw' is append-only"), "{err}");
    assert!(err.contains(&bad[..12]) && err.contains("modifies README.md"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(remote_ref(&env, &bare, "raw"), Some(before));
}

#[test]
fn pre_receive_refuses_a_deleted_path_a_rewrite_and_a_branch_deletion_on_raw() {
    let env = TestEnv::new();
    let (repo, bare) = guarded_remote(&env);
    let before = remote_ref(&env, &bare, "raw").unwrap();
    let wt = env.path("wt-raw");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    let data: Vec<String> = env.git(&wt, ["ls-files", "data"]).lines().map(String::from).collect();
    env.git(&wt, ["rm", "-q", &data[0]]);
    env.git(&wt, ["commit", "-q", "-m", "drop a file"]);
    let out = push_raw(&env, &repo, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("deletes {}", data[0])), "{}", stderr(&out));

    // A rewrite: the edit is taken back and history is replaced by a new commit.
    env.git(&wt, ["reset", "-q", "--hard", "HEAD~1"]);
    env.git(&wt, ["commit", "-q", "--amend", "-m", "rewritten"]);
    let out = push_raw(&env, &repo, &["--force"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("rewrites its history"), "{}", stderr(&out));

    let out = push(&env, &repo, &["--no-verify", "origin", ":raw"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("deleting it is refused"), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "raw"), Some(before));
}

#[test]
fn pre_receive_accepts_appends_union_merges_and_rewrites_of_other_branches() {
    let env = TestEnv::new();
    let (repo, bare) = guarded_remote(&env);
    // mlgit's own append (it rewrites .gitattributes, which is exempt).
    let src = env.path("batch-2");
    write_files(&src, &[("c.csv", b"x,y\n5,6\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 2"]);
    let out = push_raw(&env, &repo, &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Two histories that each appended a different file, merged as their union.
    let wt = env.path("wt-raw");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    env.git(&wt, ["checkout", "-q", "-b", "side"]);
    write_files(&wt, &[("notes/side.txt", b"side\n")]);
    env.git(&wt, ["add", "notes"]);
    env.git(&wt, ["commit", "-q", "-m", "side"]);
    env.git(&wt, ["checkout", "-q", "raw"]);
    write_files(&wt, &[("notes/main.txt", b"main\n")]);
    env.git(&wt, ["add", "notes"]);
    env.git(&wt, ["commit", "-q", "-m", "main side"]);
    env.git(&wt, ["merge", "-q", "--no-edit", "side"]);
    let out = push_raw(&env, &repo, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "raw"), Some(env.git(&repo, ["rev-parse", "raw"]).trim().to_string()));

    // dev/model is ordinary code: a force push is the remote's usual business.
    env.commit_on(&repo, "dev/model", &[("train.sh", b"#!/bin/sh\necho changed\n")], "change code");
    env.git(&env.path("wt-dev-model"), ["commit", "-q", "--amend", "-m", "amended"]);
    let out = push(&env, &repo, &["--no-verify", "-f", "origin", "dev/model"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn pre_receive_refuses_a_new_append_only_branch_whose_history_edits_a_path() {
    let env = TestEnv::new();
    let (repo, bare) = guarded_remote(&env);
    // monitoring/dev is append-only by default; push a history that edits its README.
    env.commit_on(&repo, "monitoring/dev", &[("data/log.jsonl", b"{}\n")], "log");
    env.commit_on(&repo, "monitoring/dev", &[("data/log.jsonl", b"{\"changed\":1}\n")], "rewrite log");
    env.git(&bare, ["update-ref", "-d", "refs/heads/monitoring/dev"]);
    let out = push(&env, &repo, &["--no-verify", "origin", "monitoring/dev"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("modifies data/log.jsonl"), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "monitoring/dev"), None);
}

// ---- verify BRANCH -----------------------------------------------------------------------------

#[test]
fn verify_reports_a_plain_git_edit_of_raw_with_exit_3() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("batch-1");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n"), ("b.csv", b"x,y\n3,4\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 1"]);
    let ok = env.mlgit_json(&repo, ["verify", "raw"]);
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["append_only_checked"], serde_json::json!(["raw"]));

    let edit = env.commit_on(&repo, "raw", &[("README.md", b"edited\n")], "edit the readme");
    let wt = env.path("wt-raw");
    let data: Vec<String> = env.git(&wt, ["ls-files", "data"]).lines().map(String::from).collect();
    env.git(&wt, ["rm", "-q", &data[0]]);
    env.git(&wt, ["commit", "-q", "-m", "drop one"]);
    let drop = env.git(&wt, ["rev-parse", "HEAD"]).trim().to_string();

    let out = env.mlgit(&repo, ["--json", "verify", "raw"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["ok"], false);
    let found = v["append_only"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{v}");
    assert_eq!(found[0]["branch"], "raw");
    assert_eq!(found[0]["commit"], edit.as_str());
    assert_eq!(found[0]["modified"], serde_json::json!(["README.md"]));
    assert_eq!(found[1]["commit"], drop.as_str());
    assert_eq!(found[1]["deleted"], serde_json::json!([data[0]]));

    let human = env.mlgit(&repo, ["verify", "raw"]);
    assert_eq!(human.status.code(), Some(3));
    let text = stdout(&human);
    assert!(
        text.contains(&format!("raw: commit {} (edit the readme) modifies README.md", &edit[..12])),
        "{text}"
    );
    assert!(text.contains("hint:"), "{text}");
    // --all checks every append-only branch's history too.
    let all = env.mlgit(&repo, ["--json", "verify", "--all"]);
    assert_eq!(all.status.code(), Some(3), "{}", stderr(&all));
    let v: serde_json::Value = serde_json::from_str(stdout(&all).trim()).unwrap();
    assert_eq!(v["append_only"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["append_only_checked"].as_array().unwrap().iter().any(|b| b == "monitoring/prod"), "{v}");
    // A branch that is not append-only is not history-checked.
    let dev = env.mlgit_json(&repo, ["verify", "dev/model"]);
    assert_eq!(dev["append_only_checked"], serde_json::json!([]));
}

// ---- pre-push: a plain `git push` carries the LFS objects --------------------------------------

/// The LFS object paths of a bare remote (`lfs/objects/ab/cd/<oid>`), as oids.
fn remote_objects(bare: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(bare.join("lfs/objects"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The oids of the pointers on a ref.
fn pointer_oids(env: &TestEnv, repo: &Path, rev: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in env.git(repo, ["ls-tree", "-r", rev]).lines() {
        let blob = line.split_whitespace().nth(2).unwrap();
        let text = env.git(repo, ["cat-file", "-p", blob]);
        if let Some(oid) = text.lines().find_map(|l| l.strip_prefix("oid sha256:")) {
            out.push(oid.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_plain_git_push_carries_the_lfs_objects_and_a_colleague_gets_real_bytes() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("batch-1");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n"), ("sub/b.csv", b"x,y\n3,4\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 1"]);
    let bare = bare_remote(&env, &repo, "origin");
    let wanted = pointer_oids(&env, &repo, "raw");
    assert_eq!(wanted.len(), 2);

    // No git-lfs needed for the push: the hook is mlgit's alone.
    let out = push(&env, &repo, &["origin", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("uploaded 2 LFS object(s)"), "{}", stderr(&out));
    assert_eq!(remote_objects(&bare), wanted);
    // Pushing again sends nothing new.
    let out = push(&env, &repo, &["origin", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));

    if !env.has_git_lfs() {
        return;
    }
    let colleague = env.path("colleague");
    let out = env
        .git_cmd(env.tmp.path())
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args([
            "clone",
            "-q",
            "-b",
            "raw",
            &format!("file://{}", bare.display()),
            colleague.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    env.git(&colleague, ["lfs", "pull"]);
    let file =
        env.git(&colleague, ["ls-files", "data"]).lines().find(|l| l.ends_with("a.csv")).unwrap().to_string();
    assert_eq!(fs::read(colleague.join(&file)).unwrap(), b"x,y\n1,2\n", "real bytes, not a pointer");
    assert_eq!(env.git(&colleague, ["status", "--porcelain"]), "", "clean status");
}

#[test]
fn a_failed_upload_stops_the_push_and_no_ref_moves() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("batch-1");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 1"]);
    let bare = bare_remote(&env, &repo, "origin");
    // The object is gone from the local store: the server lacks it and nobody can send it.
    let oid = pointer_oids(&env, &repo, "raw").remove(0);
    fs::remove_file(repo.join(format!(".git/lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4]))).unwrap();
    let out = push(&env, &repo, &["origin", "raw"]);
    assert!(!out.status.success(), "pushed a pointer without its content");
    let err = stderr(&out);
    assert!(err.contains(&oid[..12]) || err.contains(&oid), "the message names the object: {err}");
    assert!(err.contains("--no-verify"), "{err}");
    assert_eq!(remote_ref(&env, &bare, "raw"), None, "no ref moved");
    assert!(remote_objects(&bare).is_empty());
}

#[test]
fn a_push_without_new_objects_and_a_deletion_ask_the_lfs_server_nothing() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let bare = bare_remote(&env, &repo, "origin");
    let src = env.path("batch-1");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 1"]);
    // An LFS server nobody listens on: any request would fail the push.
    env.git(&repo, ["config", "remote.origin.lfsurl", "http://127.0.0.1:9/lfs"]);
    let out = push(&env, &repo, &["origin", "dev/model", "main"]);
    assert!(out.status.success(), "code only, no LFS request: {}", stderr(&out));
    let out = push(&env, &repo, &["origin", ":dev/model"]);
    assert!(out.status.success(), "a deletion sends nothing: {}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "dev/model"), None);
    // A push that does bring an object asks the server, and stops when it cannot.
    let out = push(&env, &repo, &["origin", "raw"]);
    assert!(!out.status.success(), "the LFS server is down");
    assert_eq!(remote_ref(&env, &bare, "raw"), None);
}

#[test]
fn a_push_from_a_linked_worktree_or_with_git_dir_uploads_the_objects() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("batch-1");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 1"]);
    let bare = bare_remote(&env, &repo, "origin");
    let wt = env.path("wt-raw");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    let out = push(&env, &wt, &["origin", "raw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_objects(&bare), pointer_oids(&env, &repo, "raw"));

    // Another batch, pushed from outside the repository with --git-dir.
    let src = env.path("batch-2");
    write_files(&src, &[("b.csv", b"x,y\n3,4\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "batch 2"]);
    let git_dir = format!("--git-dir={}", repo.join(".git").display());
    let out = env.git_cmd(env.tmp.path()).args([git_dir.as_str(), "push", "origin", "raw"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_objects(&bare), pointer_oids(&env, &repo, "raw"));
}
