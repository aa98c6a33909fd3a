//! The server's pre-receive hook on environment branches: on a bare repository with
//! `mlgit hook pre-receive` installed as docs/hook.md says, `env/prod` accepts what `mlgit promote`
//! and `mlgit rollback` write and the root commit `mlgit init` starts it with, and refuses
//! hand-made commits, history rewrites and its deletion. Every push is a real `git push`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{stderr, stdout, TestEnv};
use std::io::Write;

fn mlgit_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("mlgit")
}

/// An mlgit repository (init makes its env/ branches) and a snapshot `model-v1`, pushed without hooks to a
/// bare `origin` that then gets the pre-receive hook. Returns (clone, bare).
fn guarded_remote(env: &TestEnv) -> (PathBuf, PathBuf) {
    let repo = env.init_repo("r");
    let st = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", st.to_str().unwrap(), "stable/model"]);
    train(env, &repo, "weights v1");
    let bare = env.path("origin.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    env.git(&repo, ["remote", "add", "origin", &format!("file://{}", bare.display())]);
    // The LFS objects are not what these tests are about: no pre-push upload.
    let out = push(env, &repo, &["--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = push(env, &repo, &["--tags"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The hook exactly as docs/hook.md installs it.
    let hook = bare.join("hooks/pre-receive");
    fs::write(&hook, format!("#!/bin/sh\nexec '{}' hook pre-receive\n", mlgit_bin().display())).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    (repo, bare)
}

/// `mlgit train-tag` in the `stable/model` worktree, writing `model/model.txt`; returns the tag.
fn train(env: &TestEnv, repo: &Path, model: &str) -> String {
    let st = repo.parent().unwrap().join("st");
    let script =
        format!("mkdir -p model && echo '{model}' > model/model.txt && echo '{{\"acc\":1}}' > metrics.json");
    let v = env.mlgit_json(&st, ["train-tag", "--", "sh", "-c", &script]);
    env.tick();
    v["tag"].as_str().unwrap_or_else(|| panic!("no tag: {v}")).to_string()
}

/// `mlgit promote TAG --env NAME`; returns the promotion commit.
fn promote(env: &TestEnv, repo: &Path, tag: &str, name: &str) -> String {
    let v = env.mlgit_json(repo, ["promote", tag, "--env", name]);
    env.tick();
    v["commit"].as_str().unwrap_or_else(|| panic!("no commit: {v}")).to_string()
}

/// `git push --no-verify origin ARGS…`.
fn push(env: &TestEnv, repo: &Path, args: &[&str]) -> Output {
    env.git_cmd(repo).args(["push", "--no-verify", "origin"]).args(args).output().expect("run git push")
}

fn remote_ref(env: &TestEnv, bare: &Path, r: &str) -> Option<String> {
    let out = env.git_cmd(bare).args(["rev-parse", "--verify", "-q", r]).output().unwrap();
    out.status.success().then(|| stdout(&out).trim().to_string())
}

fn rev(env: &TestEnv, repo: &Path, r: &str) -> String {
    env.git(repo, ["rev-parse", r]).trim().to_string()
}

/// `git hash-object -w --stdin` of `bytes`.
fn blob(env: &TestEnv, repo: &Path, bytes: &[u8]) -> String {
    let mut child = env
        .git_cmd(repo)
        .args(["hash-object", "-w", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A DEPLOYMENT.yaml as the contract describes it.
fn deployment(name: &str, tag: &str, snapshot: &str, reason: &str) -> String {
    format!(
        "schema: 1\nenvironment: {name}\naction: promote\ntag: {tag}\nsnapshot: {snapshot}\n\
         model:\n- path: model/model.txt\n  sha256: {}\n  size: 11\n\
         data:\n  split: null\n  clean: null\n  raw: null\ncode:\n  commit: null\n\
         promoted_by:\n  name: Test User\n  email: test@example.com\n\
         promoted_at: '2026-11-23T10:00:00+00:00'\nreason: {reason}\nprevious: null\nchecks: []\n",
        "0".repeat(64)
    )
}

/// A promotion commit of `tag` on top of `previous` (None: it starts the branch), built with git
/// plumbing as the contract shapes it: the snapshot's tree plus DEPLOYMENT.yaml and DEPLOYED_TAG,
/// parents [previous, snapshot]. `extra` files land in the tree too (a hand-made variant).
fn promotion(
    env: &TestEnv,
    repo: &Path,
    name: &str,
    tag: &str,
    previous: Option<&str>,
    extra: &[(&str, &[u8])],
) -> String {
    let snap = rev(env, repo, &format!("{tag}^{{commit}}"));
    let index = env.path("promotion.index");
    let _ = fs::remove_file(&index);
    let git = |args: &[&str]| {
        let out = env.git_cmd(repo).env("GIT_INDEX_FILE", &index).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    git(&["read-tree", &snap]);
    let yaml = deployment(name, tag, &snap, "better recall");
    let tag_line = format!("{tag}\n");
    let mut files: Vec<(&str, &[u8])> =
        vec![("DEPLOYMENT.yaml", yaml.as_bytes()), ("DEPLOYED_TAG", tag_line.as_bytes())];
    files.extend_from_slice(extra);
    for (path, bytes) in files {
        let id = blob(env, repo, bytes);
        git(&["update-index", "--add", "--cacheinfo", &format!("100644,{id},{path}")]);
    }
    let tree = git(&["write-tree"]);
    let mut args = vec!["commit-tree".to_string(), tree];
    for p in previous.into_iter().chain([snap.as_str()]) {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    args.extend(["-m".to_string(), format!("promote {tag} to {name}\n\nMlgit-Environment: {name}\nMlgit-Action: promote\nMlgit-Tag: {tag}\nMlgit-Snapshot: {snap}\n")]);
    env.tick();
    env.git(repo, &args).trim().to_string()
}

/// Point `env/<name>` at `commit` in the clone.
fn set_branch(env: &TestEnv, repo: &Path, name: &str, commit: &str) {
    env.git(repo, ["update-ref", &format!("refs/heads/env/{name}"), commit]);
}

/// `model-v1` promoted to staging, then prod, and both pushed: accepted by the hook.
fn deployed(env: &TestEnv) -> (PathBuf, PathBuf, String) {
    let (repo, bare) = guarded_remote(env);
    promote(env, &repo, "model-v1", "staging");
    let first = promote(env, &repo, "model-v1", "prod");
    let out = push(env, &repo, &["env/staging", "env/prod"]);
    assert!(out.status.success(), "a promotion commit was refused: {}", stderr(&out));
    assert_eq!(remote_ref(env, &bare, "env/prod"), Some(first.clone()));
    (repo, bare, first)
}

#[test]
fn the_root_commit_init_makes_on_env_prod_pushes() {
    let env = TestEnv::new();
    let (repo, bare) = guarded_remote(&env);
    env.git(&bare, ["update-ref", "-d", "refs/heads/env/prod"]);
    let root = rev(&env, &repo, "env/prod");
    assert_eq!(env.git(&repo, ["log", "--format=%P", "-1", &root]).trim(), "", "not a root commit");
    let out = push(&env, &repo, &["env/prod"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(root));
}

#[test]
fn promotions_and_a_rollback_push_to_env_prod() {
    let env = TestEnv::new();
    let (repo, bare, _first) = deployed(&env);
    let tag = train(&env, &repo, "weights v2");
    promote(&env, &repo, &tag, "staging");
    promote(&env, &repo, &tag, "prod");
    // The tag travels with the branch: the hook checks that it names the deployed snapshot.
    let out = push(&env, &repo, &["env/staging", "env/prod", "stable/model", &tag]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.mlgit_json(&repo, ["rollback", "--env", "prod", "--reason", "latency"]);
    let out = push(&env, &repo, &["env/prod"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(rev(&env, &repo, "env/prod")));
    // `git log env/prod` on the server is the deployment log.
    let log = env.git(&bare, ["log", "--first-parent", "--format=%s", "env/prod"]);
    assert_eq!(
        log,
        "rollback prod to model-v1\npromote model-v2 to prod\npromote model-v1 to prod\nmlgit init: env/prod branch\n"
    );
}

#[test]
fn a_hand_made_commit_on_env_prod_is_refused_naming_branch_commit_and_reason() {
    let env = TestEnv::new();
    let (repo, bare, first) = deployed(&env);
    // `git commit` that edits the reason in the deployment record, in a checkout of env/prod.
    let record = env.git(&repo, ["show", "env/prod:DEPLOYMENT.yaml"]) + "reason: hotfix\n";
    let edit = env.commit_on(&repo, "env/prod", &[("DEPLOYMENT.yaml", record.as_bytes())], "fix record");
    let out = push(&env, &repo, &["env/prod"]);
    assert!(!out.status.success(), "pushed a hand-made commit");
    let err = stderr(&out);
    assert!(err.contains("branch 'env/prod' is the deployment log of environment 'prod'"), "{err}");
    assert!(err.contains(&format!("commit {} (fix record): ", &edit[..12])), "{err}");
    let snap = rev(&env, &repo, "model-v1^{commit}");
    assert!(
        err.contains(&format!(
            "its DEPLOYMENT.yaml names snapshot {snap}, but its parent is {}",
            &first[..12]
        )),
        "{err}"
    );
    assert!(
        err.contains("hint:") && err.contains("mlgit promote") && err.contains("mlgit rollback"),
        "{err}"
    );
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(first.clone()));

    // A commit shaped like a promotion (parents, record, tag file) whose model is not the snapshot's.
    let tag = train(&env, &repo, "weights v2");
    let patched =
        promotion(&env, &repo, "prod", &tag, Some(&first), &[("model/model.txt", b"patched by hand\n")]);
    set_branch(&env, &repo, "prod", &patched);
    let out = push(&env, &repo, &["env/prod", "stable/model"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&patched[..12]) && err.contains("its files differ from those of snapshot"), "{err}");
    assert!(err.contains("(model/model.txt)"), "{err}");
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(first));
}

#[test]
fn a_force_push_rewriting_env_prod_is_refused() {
    let env = TestEnv::new();
    let (repo, bare, first) = deployed(&env);
    // A real promotion on top of init's commit instead of the deployed one: a rewrite.
    let root = rev(&env, &repo, &format!("{first}^1"));
    set_branch(&env, &repo, "prod", &root);
    let tag = train(&env, &repo, "weights v2");
    promote(&env, &repo, &tag, "staging");
    let other = promote(&env, &repo, &tag, "prod");
    let out = push(&env, &repo, &["--force", "env/prod", "stable/model"]);
    assert!(!out.status.success(), "a force push rewrote env/prod");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "branch 'env/prod' is the deployment log of environment 'prod': the push rewrites its history ({} is not an ancestor of {}",
            &first[..12],
            &other[..12]
        )),
        "{err}"
    );
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(first.clone()));

    // Going back to init's commit is a rewrite too (`mlgit rollback` adds a commit instead).
    set_branch(&env, &repo, "prod", &root);
    let out = push(&env, &repo, &["--force", "env/prod"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("rewrites its history"), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(first));
}

#[test]
fn deleting_env_prod_is_refused() {
    let env = TestEnv::new();
    let (repo, bare, first) = deployed(&env);
    let out = push(&env, &repo, &[":env/prod"]);
    assert!(!out.status.success(), "deleted env/prod");
    let err = stderr(&out);
    assert!(
        err.contains("branch 'env/prod' is the deployment log of environment 'prod': deleting it is refused"),
        "{err}"
    );
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(first));
}

#[test]
fn the_env_prefix_comes_from_the_servers_mlgit_yaml() {
    let env = TestEnv::new();
    let (repo, bare) = guarded_remote(&env);
    let config =
        env.git(&repo, ["show", "main:mlgit.yaml"]).replace("env_prefix: env/", "env_prefix: deploy/");
    fs::write(repo.join("mlgit.yaml"), config).unwrap();
    env.git(&repo, ["commit", "-q", "-am", "environments live under deploy/"]);
    let out = push(&env, &repo, &["main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Under the new prefix a plain commit is refused; env/ is now an ordinary branch (a force push passes).
    let plain = rev(&env, &repo, "stable/model");
    env.git(&repo, ["branch", "deploy/prod", &plain]);
    env.git(&repo, ["branch", "-f", "env/prod", &plain]);
    let out = push(&env, &repo, &["deploy/prod"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("branch 'deploy/prod' is the deployment log of environment 'prod'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(remote_ref(&env, &bare, "deploy/prod"), None);
    let out = push(&env, &repo, &["--force", "env/prod"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(remote_ref(&env, &bare, "env/prod"), Some(plain));
}
