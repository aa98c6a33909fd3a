//! End-to-end tests of `mlgit init` and `mlgit status` with the real binary and the real git CLI.

mod common;

use std::fs;
use std::path::Path;

use common::{list_files, stderr, stdout, write_files, TestEnv};

const BRANCHES: &str = "  clean\n  dev/model\n* main\n  monitoring/dev\n  monitoring/prod\n  monitoring/staging\n  raw\n  split\n  stable/model\n";

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
            "monitoring/prod"
        ]
    );
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
    assert!(bash.contains("commit-data") || bash.contains("init"), "{bash}");
    let man = env.mlgit_ok(env.tmp.path(), ["manpage"]);
    assert!(man.starts_with(".ie") || man.contains(".TH mlgit"), "{}", &man[..200.min(man.len())]);
    let usage = env.mlgit(env.tmp.path(), ["no-such-command"]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
    let files = list_files(env.tmp.path());
    assert!(files.iter().all(|f| f.starts_with("home/")), "nothing written: {files:?}");
}
