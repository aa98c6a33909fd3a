//! End-to-end tests of `mlgit init` and `mlgit status` with the real binary and the real git CLI.

mod common;

use std::fs;
use std::path::Path;

use common::{list_files, stderr, stdout, write_files, TestEnv};

const BRANCHES: &str = "  clean\n  dev/model\n  env/dev\n  env/prod\n  env/staging\n* main\n  monitoring/dev\n  monitoring/prod\n  monitoring/staging\n  raw\n  split\n  stable/model\n";

#[test]
fn init_creates_every_convention_branch_and_a_clean_checkout() {
    let env = TestEnv::new();
    let out = env.mlgit(env.tmp.path(), ["init", "demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Created mlgit repository 'demo'"), "{}", stdout(&out));
    let demo = env.path("demo");
    assert_eq!(env.git(&demo, ["branch"]), BRANCHES);
    // fsck --strict exits non-zero on any problem; dangling objects would be reported on stdout.
    let fsck = env.git_cmd(&demo).args(["fsck", "--strict"]).output().unwrap();
    assert!(fsck.status.success(), "{}", stderr(&fsck));
    assert_eq!(stdout(&fsck), "", "no dangling objects");
    assert_eq!(env.git(&demo, ["status", "--porcelain"]), "");
    // raw, clean, split and monitoring are orphans; stable/model sits on dev/model, which sits on main.
    for orphan in ["raw", "clean", "split", "monitoring/prod"] {
        assert_eq!(env.git(&demo, ["rev-list", "--count", orphan]).trim(), "1", "{orphan}");
        let attrs = env.git(&demo, ["show", &format!("{orphan}:.gitattributes")]);
        assert!(attrs.contains("data/** filter=lfs diff=lfs merge=lfs -text"), "{attrs}");
        let readme = env.git(&demo, ["show", &format!("{orphan}:README.md")]);
        assert!(!readme.contains("{{"), "placeholders rendered: {readme}");
    }
    env.git(&demo, ["merge-base", "--is-ancestor", "main", "dev/model"]);
    env.git(&demo, ["merge-base", "--is-ancestor", "dev/model", "stable/model"]);
    let stable_attrs = env.git(&demo, ["show", "stable/model:.gitattributes"]);
    assert!(stable_attrs.contains("model/** filter=lfs"), "{stable_attrs}");
    // The code skeleton's scripts are executable in git.
    let ls = env.git(&demo, ["ls-tree", "dev/model", "train.sh"]);
    assert!(ls.starts_with("100755 "), "{ls}");
}

#[test]
fn second_init_changes_nothing() {
    let env = TestEnv::new();
    let demo = env.init_repo("demo");
    let before = env.refs(&demo);
    env.tick();
    let v = env.mlgit_json(env.tmp.path(), ["init", "demo"]);
    assert_eq!(v["command"], "init");
    assert_eq!(v["nothing_to_do"], true);
    assert_eq!(v["created"].as_array().unwrap().len(), 0);
    assert_eq!(env.refs(&demo), before);
    assert_eq!(env.git(&demo, ["status", "--porcelain"]), "");
}

/// The template tree init produces, compared file by file with the expected tree in
/// tests/fixtures/init/default (as cargo tests `cargo init`).
#[test]
fn init_main_and_dev_trees_match_the_expected_tree() {
    let env = TestEnv::new();
    env.mlgit_ok(env.tmp.path(), ["init", "--name", "churn", "demo"]);
    let demo = env.path("demo");
    let expected = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/init/default");
    for branch in ["main", "dev/model"] {
        let out = env.path(&format!("out-{}", branch.replace('/', "-")));
        fs::create_dir_all(&out).unwrap();
        let script = format!("git -C '{}' archive {branch} | tar -x -C '{}'", demo.display(), out.display());
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("HOME", &env.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .unwrap();
        assert!(status.success());
        let want = expected.join(branch.replace('/', "-"));
        common::assert_same_tree(&want, &out);
    }
}

#[test]
fn init_leaves_existing_files_and_refs_alone() {
    let env = TestEnv::new();
    let dir = env.path("existing");
    write_files(&dir, &[("README.md", b"my readme\n")]);
    let out = env.mlgit_ok(env.tmp.path(), ["init", "existing"]);
    assert!(out.contains("README.md") && out.contains("left alone"), "{out}");
    assert_eq!(fs::read(dir.join("README.md")).unwrap(), b"my readme\n");
    let tracked = env.git(&dir, ["ls-tree", "--name-only", "main"]);
    assert!(!tracked.lines().any(|l| l == "README.md"), "the user's file is not replaced in main: {tracked}");
}

#[test]
fn init_in_a_repository_with_history_builds_main_on_head() {
    let env = TestEnv::new();
    let dir = env.path("old");
    fs::create_dir_all(&dir).unwrap();
    env.git(&dir, ["init", "-q", "-b", "master"]);
    write_files(&dir, &[("train.py", b"print('hi')\n"), ("README.md", b"old\n")]);
    env.git(&dir, ["add", "."]);
    env.git(&dir, ["commit", "-qm", "old work"]);
    let head = env.git(&dir, ["rev-parse", "HEAD"]);
    env.mlgit_ok(&dir, ["init"]);
    assert_eq!(env.git(&dir, ["rev-parse", "HEAD"]), head, "HEAD does not move");
    assert_eq!(env.git(&dir, ["rev-parse", "main^"]), head);
    assert_eq!(env.git(&dir, ["show", "main:README.md"]), "old\n", "never overwrites a committed file");
    assert!(env.git(&dir, ["show", "main:mlgit.yaml"]).contains("branches:"));
}

#[test]
fn custom_templates_from_a_folder_and_a_file_url() {
    let env = TestEnv::new();
    let tpl = env.path("tpl");
    write_files(
        &tpl,
        &[
            ("main/README.md", b"# {{project_name}}\n"),
            ("main/mlgit.yaml", b"project: \"{{project_name}}\"\nenvironments: [prod]\n"),
            ("dev/train.sh", b"#!/bin/sh\necho train\n"),
        ],
    );
    env.mlgit_ok(env.tmp.path(), ["init", "--template", tpl.to_str().unwrap(), "--name", "acme", "a"]);
    let a = env.path("a");
    assert_eq!(env.git(&a, ["show", "main:README.md"]), "# acme\n");
    assert!(env.git(&a, ["branch", "--list", "monitoring/*"]).contains("monitoring/prod"));
    assert!(!env.git(&a, ["branch", "--list", "monitoring/*"]).contains("monitoring/dev"));

    // The same template as a git repository, cloned through a file:// URL.
    env.git(&tpl, ["init", "-q"]);
    env.git(&tpl, ["add", "."]);
    env.git(&tpl, ["commit", "-qm", "template"]);
    let url = format!("file://{}", tpl.display());
    env.mlgit_ok(env.tmp.path(), ["init", "--template", &url, "--name", "acme", "b"]);
    assert_eq!(env.git(&env.path("b"), ["show", "main:README.md"]), "# acme\n");
}

/// Runs mlgit, expects exit 1 with `needle` in stderr and a `hint:` line.
fn expect_error(env: &TestEnv, dir: &Path, args: &[&str], needle: &str) {
    let out = env.mlgit(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(needle), "{args:?}: expected {needle:?} in:\n{err}");
    assert!(err.contains("hint: "), "{args:?}: no hint in:\n{err}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let env = TestEnv::new();
    let root = env.tmp.path();
    fs::write(env.path("afile"), "x").unwrap();
    expect_error(&env, root, &["init", "afile"], "is not a folder");
    assert_eq!(fs::read(env.path("afile")).unwrap(), b"x");

    expect_error(
        &env,
        root,
        &["init", "--template", "/no/such/template", "t1"],
        "cannot read the template folder",
    );
    assert!(!env.path("t1").exists(), "nothing created");

    let nomain = env.path("nomain");
    write_files(&nomain, &[("dev/x", b"x")]);
    expect_error(&env, root, &["init", "--template", nomain.to_str().unwrap(), "t2"], "has no main/");
    assert!(!env.path("t2").exists());

    let url = format!("file://{}", env.path("missing-repo").display());
    expect_error(&env, root, &["init", "--template", &url, "t3"], "cannot clone the template repository");
    assert!(!env.path("t3").exists());

    let badcfg = env.path("badcfg");
    write_files(&badcfg, &[("main/mlgit.yaml", b"project: x\nbranchez:\n  raw: r\n")]);
    expect_error(&env, root, &["init", "--template", badcfg.to_str().unwrap(), "t4"], "mlgit.yaml:2:1");
    assert!(!env.path("t4").exists());
    let syntax = env.path("syntax");
    write_files(&syntax, &[("main/mlgit.yaml", b"project: [unclosed\n")]);
    expect_error(&env, root, &["init", "--template", syntax.to_str().unwrap(), "t5"], "invalid config");

    let bare = env.path("bare.git");
    env.git(root, ["init", "-q", "--bare", bare.to_str().unwrap()]);
    expect_error(&env, root, &["init", "bare.git"], "bare repository");
    expect_error(&env, &bare, &["status"], "bare repository");

    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    expect_error(&env, &outside, &["status"], "not inside a git repository");
}

#[test]
fn a_broken_committed_config_is_reported_with_line_and_column() {
    let env = TestEnv::new();
    let demo = env.init_repo("demo");
    fs::write(demo.join("mlgit.yaml"), "project: demo\nlfs:\n  max_blob_size: lots\n").unwrap();
    env.git(&demo, ["commit", "-qam", "break the config"]);
    let before = env.refs(&demo);
    expect_error(&env, &demo, &["status"], "main:mlgit.yaml:3:");
    expect_error(&env, env.tmp.path(), &["init", "demo"], "main:mlgit.yaml:3:");
    assert_eq!(env.refs(&demo), before);
}

#[test]
fn an_existing_raw_that_is_not_a_data_branch_is_left_alone_with_a_warning() {
    let env = TestEnv::new();
    let dir = env.path("r");
    fs::create_dir_all(&dir).unwrap();
    env.git(&dir, ["init", "-q", "-b", "main"]);
    write_files(&dir, &[("code.py", b"x = 1\n")]);
    env.git(&dir, ["add", "."]);
    env.git(&dir, ["commit", "-qm", "code"]);
    env.git(&dir, ["branch", "raw"]);
    let raw_before = env.git(&dir, ["rev-parse", "raw"]);
    let out = env.mlgit(&dir, ["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: branch 'raw' exists but shares history with 'main'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.git(&dir, ["rev-parse", "raw"]), raw_before, "raw is left alone");
    assert!(env.git(&dir, ["branch"]).contains("clean"), "init continued with the rest");
}

#[test]
fn status_lists_branches_data_and_snapshots() {
    let env = TestEnv::new();
    let demo = env.init_repo("demo");
    let v = env.mlgit_json(&demo, ["status"]);
    let branches = v["branches"].as_array().unwrap();
    let names: Vec<&str> = branches.iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "main",
            "raw",
            "clean",
            "split",
            "dev/model",
            "stable/model",
            "monitoring/dev",
            "monitoring/staging",
            "monitoring/prod",
            "env/dev",
            "env/staging",
            "env/prod"
        ]
    );
    let prod = &branches[11];
    assert_eq!(prod["kind"], "env");
    assert_eq!(prod["tip"]["subject"], "mlgit init: env/prod branch");
    let raw = &branches[1];
    assert_eq!(raw["kind"], "raw");
    assert_eq!(raw["data"]["files"], 0);
    assert_eq!(raw["tip"]["commit"].as_str().unwrap(), env.git(&demo, ["rev-parse", "raw"]).trim());
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 0);
    let text = env.mlgit_ok(&demo, ["status"]);
    assert!(text.contains("none yet"), "{text}");
    // From a subfolder and with -C, the same repository is found.
    let sub = demo.join("docs");
    assert_eq!(env.mlgit_json(&sub, ["status"])["branches"], v["branches"]);
    assert_eq!(env.mlgit_json(env.tmp.path(), ["-C", "demo", "status"])["branches"], v["branches"]);
}

#[test]
fn completions_and_manpage_are_generated() {
    let env = TestEnv::new();
    let bash = env.mlgit_ok(env.tmp.path(), ["completions", "bash"]);
    // The dynamic script: it calls mlgit back for commands, options and names (tests/completions.rs).
    assert!(bash.contains("COMPLETE=") && bash.contains("complete -o nospace"), "{bash}");
    let man = env.mlgit_ok(env.tmp.path(), ["manpage"]);
    assert!(man.starts_with(".ie") || man.contains(".TH mlgit"), "{}", &man[..200.min(man.len())]);
    let usage = env.mlgit(env.tmp.path(), ["no-such-command"]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
    let files = list_files(env.tmp.path());
    assert!(files.iter().all(|f| f.starts_with("home/")), "nothing written: {files:?}");
}

/// One env/<env> branch per environment: an orphan commit holding only the README that explains it
/// (rendered from templates/default/branches/env.md), empty until the first promotion.
#[test]
fn init_creates_env_branches_as_orphan_readme_only_commits() {
    let env = TestEnv::new();
    let v = env.mlgit_json(env.tmp.path(), ["init", "--name", "churn", "demo"]);
    let demo = env.path("demo");
    let created: Vec<(&str, &str)> = v["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["branch"].as_str().unwrap(), b["kind"].as_str().unwrap()))
        .collect();
    let n = created.len();
    assert_eq!(created[n - 3..], [("env/dev", "env"), ("env/staging", "env"), ("env/prod", "env")]);
    for e in ["dev", "staging", "prod"] {
        let branch = format!("env/{e}");
        assert_eq!(env.git(&demo, ["rev-list", "--count", &branch]).trim(), "1", "{branch} is a root commit");
        assert_eq!(
            env.git(&demo, ["log", "-1", "--format=%P", &branch]).trim(),
            "",
            "{branch} has no parent"
        );
        assert_eq!(
            env.git(&demo, ["log", "-1", "--format=%B", &branch]).trim(),
            format!("mlgit init: {branch} branch")
        );
        assert_eq!(
            env.git(&demo, ["ls-tree", "-r", "--name-only", &branch]),
            "README.md\n",
            "only the README"
        );
        let readme = env.git(&demo, ["show", &format!("{branch}:README.md")]);
        assert!(
            readme.starts_with(&format!("# `{branch}`: the deployment log of churn's `{e}` environment")),
            "{readme}"
        );
        for needed in [
            "DEPLOYMENT.yaml",
            "DEPLOYED_TAG",
            &format!("mlgit promote model-v3 --env {e}"),
            &format!("mlgit rollback --env {e}"),
            "mlgit envs",
            &format!("mlgit envs log {e}"),
            &format!("mlgit envs at {e}"),
            &format!("git log --first-parent {branch}"),
            "Only promotion commits land here",
        ] {
            assert!(readme.contains(needed), "{branch}'s README lacks {needed:?}:\n{readme}");
        }
        assert!(!readme.contains("{{"), "placeholders rendered: {readme}");
        // Never shares history with main: nothing of the code or data sits under a deployment yet.
        let base = env.git_cmd(&demo).args(["merge-base", "main", &branch]).output().unwrap();
        assert!(!base.status.success(), "{branch} is an orphan");
    }
    // `environments:` decides which env branches exist; the prefix comes from branches.env_prefix.
    let tpl = env.path("tpl");
    write_files(
        &tpl,
        &[
            ("main/mlgit.yaml", b"environments: [qa, live]\nbranches:\n  env_prefix: deploy/\n"),
            ("main/README.md", b"x\n"),
        ],
    );
    env.mlgit_ok(env.tmp.path(), ["init", "--template", tpl.to_str().unwrap(), "custom"]);
    let custom = env.path("custom");
    assert_eq!(env.git(&custom, ["branch", "--list", "deploy/*", "env/*"]), "  deploy/live\n  deploy/qa\n");
    // A template without branches/env.md still explains the branch.
    let readme = env.git(&custom, ["show", "deploy/live:README.md"]);
    assert!(readme.contains("deployment log") && readme.contains("mlgit promote"), "{readme}");
}

/// In a clone, init makes env/* from the remote's (with their promotions), never as orphans
/// beside them; an env branch that shares history with main (it has promotions) is no reason to
/// warn.
#[test]
fn init_in_a_clone_creates_env_branches_from_origin() {
    let env = TestEnv::new();
    let demo = env.init_repo("demo");
    // A commit on env/prod whose second parent is on main's history, as a promotion's is.
    let tree = env.git(&demo, ["rev-parse", "dev/model^{tree}"]);
    let prod = env.git(&demo, ["rev-parse", "env/prod"]);
    let promoted = env.git(
        &demo,
        ["commit-tree", tree.trim(), "-p", prod.trim(), "-p", "dev/model", "-m", "promote x to prod"],
    );
    env.git(&demo, ["update-ref", "refs/heads/env/prod", promoted.trim(), prod.trim()]);
    let bare = env.path("origin.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    env.git(&demo, ["remote", "add", "origin", &url]);
    env.mlgit_ok(&demo, ["push", "origin"]);
    assert!(env.git(&bare, ["branch"]).contains("env/staging"), "mlgit push sends the env branches");

    let clone = env.path("clone");
    env.git(env.tmp.path(), ["clone", "-q", &url, clone.to_str().unwrap()]);
    let out = env.mlgit(&clone, ["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(from origin/env/prod)"), "{}", stdout(&out));
    for e in ["dev", "staging", "prod"] {
        let branch = format!("env/{e}");
        assert_eq!(
            env.git(&clone, ["rev-parse", &branch]),
            env.git(&demo, ["rev-parse", &branch]),
            "{branch}"
        );
        let upstream = env.git(&clone, ["rev-parse", "--abbrev-ref", &format!("{branch}@{{upstream}}")]);
        assert_eq!(upstream.trim(), format!("origin/{branch}"));
    }
    // Run again: env/prod exists, shares history with main, and is left alone without a warning.
    let out = env.mlgit(&clone, ["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(env.git(&clone, ["rev-parse", "env/prod"]).trim(), promoted.trim());
}
