//! Regression tests for the smaller failures of issue 9: lineage names, malformed trailers, the
//! provenance user, the `git lfs push` hints, a refused `init --template`, and templates and docs
//! that named commands which do not exist. Each runs the real binary and checks with real git.

mod common;
#[path = "common/mlgit_wheel.rs"]
mod mlgit_wheel;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{stderr, stdout, write_files, TestEnv};
use serde_json::Value;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn rev(env: &TestEnv, repo: &Path, rev: &str) -> String {
    env.git(repo, ["rev-parse", rev]).trim().to_string()
}

fn kinds(lineage: &Value) -> Vec<String> {
    lineage["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect()
}

/// CSV files with a label column, enough of them that every split gets some.
fn csv_batch(dir: &Path, n: usize) {
    for i in 0..n {
        let label = if i % 3 == 0 { "churn" } else { "stay" };
        let text = format!("age,plan,label\n{},basic,{label}\n{},pro,stay\n", 20 + i, 40 + i);
        write_files(dir, &[(&format!("batch-{i:02}.csv"), text.as_bytes())]);
    }
}

/// raw → clean → split → stable/model with mlgit's own commands, and a snapshot `model-v1` trained
/// with the template's train.sh in a worktree of stable/model.
fn trained_project(env: &TestEnv) -> (PathBuf, PathBuf) {
    let repo = env.init_repo("r");
    let src = env.path("batch");
    csv_batch(&src, 12);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "Add batch 1"]);
    env.tick();
    env.mlgit_ok(&repo, ["clean"]);
    env.tick();
    env.mlgit_ok(&repo, ["split"]);
    env.tick();
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.tick();
    let wt = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "stable/model"]);
    env.mlgit_ok(&wt, ["train-tag", "--materialize", "--", "./train.sh"]);
    env.tick();
    (repo, wt)
}

#[test]
fn lineage_names_a_monitoring_commit_monitoring_not_raw() {
    let env = TestEnv::new();
    let (repo, _wt) = trained_project(&env);

    // A monitoring batch written with commit-data, and one written with git plumbing.
    let requests = env.path("requests");
    write_files(&requests, &[("2026-11-23.jsonl", b"{\"x\":1,\"model\":\"model-v1\"}\n")]);
    env.mlgit_ok(
        &repo,
        [
            "commit-data",
            "--branch",
            "monitoring/prod",
            "--source",
            requests.to_str().unwrap(),
            "-m",
            "Requests",
        ],
    );
    env.tick();
    let tree = env.git(&repo, ["rev-parse", "monitoring/staging^{tree}"]);
    let msg =
        "Requests by a batch job\n\nMlgit-Source: /var/log/serving\nMlgit-Host: web-1\nMlgit-User: svc\n";
    let plumbing = env
        .git(&repo, ["commit-tree", tree.trim(), "-p", "monitoring/staging", "-m", msg])
        .trim()
        .to_string();
    env.git(&repo, ["update-ref", "refs/heads/monitoring/staging", &plumbing]);

    let m = env.mlgit_json(&repo, ["lineage", "monitoring/prod"]);
    assert_eq!(kinds(&m), ["monitoring"], "{m}");
    assert_eq!(m["chain"][0]["commit"], rev(&env, &repo, "monitoring/prod").as_str());
    let batches = m["raw_batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "the init commit has no provenance: {m}");
    assert_eq!(batches[0]["source"], requests.to_str().unwrap());
    let human = env.mlgit_ok(&repo, ["lineage", "monitoring/prod"]);
    assert!(human.contains("\n    monitoring ") && human.contains("Monitoring batches (1)"), "{human}");
    assert!(!human.contains("    raw ") && !human.contains("Raw batches"), "{human}");
    // By commit id: the branch that holds it names it.
    let by_id = env.mlgit_json(&repo, ["lineage", &plumbing]);
    assert_eq!(kinds(&by_id), ["monitoring"], "{by_id}");
    assert_eq!(by_id["raw_batches"][0]["user"], "svc");

    // The other kinds, named after their branches as before.
    assert_eq!(kinds(&env.mlgit_json(&repo, ["lineage", "raw"])), ["raw"]);
    let raw_by_id = env.mlgit_json(&repo, ["lineage", &rev(&env, &repo, "raw")]);
    assert_eq!(kinds(&raw_by_id), ["raw"]);
    assert_eq!(kinds(&env.mlgit_json(&repo, ["lineage", "clean"])), ["clean", "raw"]);
    assert_eq!(kinds(&env.mlgit_json(&repo, ["lineage", "split"])), ["split", "clean", "raw"]);
    let snapshot = env.mlgit_json(&repo, ["lineage", "model-v1"]);
    assert_eq!(kinds(&snapshot), ["snapshot", "split", "clean", "raw"], "{snapshot}");
    // A stable commit without a tracking record is a stable commit, not a snapshot.
    env.mlgit_ok(&repo, ["stable", "update"]);
    let stable = env.mlgit_json(&repo, ["lineage", "stable/model"]);
    assert_eq!(kinds(&stable), ["stable", "split", "clean", "raw"], "{stable}");
    // Each link is the commit the Derived-From trailer names, as git reads it.
    let trailer = env.git(&repo, ["log", "-1", "--format=%(trailers:key=Derived-From,valueonly)", "split"]);
    assert_eq!(trailer.split_whitespace().nth(1), snapshot["chain"][2]["commit"].as_str());
}

#[test]
fn lineage_reports_a_malformed_derived_from_trailer_as_malformed_not_missing() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("batch");
    csv_batch(&src, 3);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    env.mlgit_ok(&repo, ["clean"]);
    // A hand-made clean commit whose trailer names an abbreviated id.
    let tree = env.git(&repo, ["rev-parse", "clean^{tree}"]);
    let short = &rev(&env, &repo, "raw")[..7];
    let msg = format!("Clean by hand\n\nDerived-From: raw {short}\n");
    let bad = env.git(&repo, ["commit-tree", tree.trim(), "-p", "clean", "-m", &msg]).trim().to_string();
    env.git(&repo, ["update-ref", "refs/heads/clean", &bad]);
    assert_eq!(
        env.git(&repo, ["log", "-1", "--format=%(trailers:key=Derived-From,valueonly)", "clean"]).trim(),
        format!("raw {short}"),
        "git reads it as a trailer"
    );

    for args in [&["lineage", "clean"][..], &["--json", "lineage", "clean"][..]] {
        let out = env.mlgit(&repo, args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("malformed Derived-From trailer"), "{err}");
        assert!(!err.contains("has no lineage"), "not reported as missing: {err}");
        assert!(err.contains(&bad), "names the commit: {err}");
        assert!(err.contains(&format!("Derived-From: raw {short}")), "names the trailer: {err}");
        assert!(err.contains("hint: ") || stdout(&out).contains("\"hint\""), "{err}");
    }
    // The raw commit, which carries no Derived-From trailer, still traces.
    let raw = env.mlgit(&repo, ["lineage", "raw"]);
    assert!(raw.status.success(), "{}", stderr(&raw));
}

#[test]
fn provenance_user_falls_back_to_git_identity_when_user_is_unset() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let user_of = |rev: &str| {
        env.git(&repo, ["log", "-1", "--format=%(trailers:key=Mlgit-User,valueonly)", rev]).trim().to_string()
    };
    let batch = |name: &str| {
        let dir = env.path(name);
        write_files(&dir, &[(&format!("{name}.csv"), b"a,b\n1,2\n")]);
        dir.to_str().unwrap().to_string()
    };

    // No $USER nor $LOGNAME: the identity git would commit with (user.name, user.email).
    let src = batch("one");
    let out =
        env.mlgit_cmd(&repo).env_remove("USER").args(["commit-data", "--source", &src]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let name = env.git(&repo, ["config", "user.name"]).trim().to_string();
    let email = env.git(&repo, ["config", "user.email"]).trim().to_string();
    assert_eq!(user_of("raw"), format!("{name} <{email}>"));

    // GIT_AUTHOR_NAME wins over the config, as it does for git.
    env.tick();
    let src = batch("two");
    let out = env
        .mlgit_cmd(&repo)
        .env_remove("USER")
        .env("GIT_AUTHOR_NAME", "CI Bot")
        .args(["commit-data", "--source", &src])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(user_of("raw"), format!("CI Bot <{email}>"));

    // The login name still comes first.
    env.tick();
    let src = batch("three");
    env.mlgit_ok(&repo, ["commit-data", "--source", &src]);
    assert_eq!(user_of("raw"), "tester");
}

/// A bare remote with everything pushed, and a second clone of it that, like a CI job, has fetched
/// only the LFS objects of the stable branch's tip: model-v1's model is not in its store.
fn pushed_project(env: &TestEnv) -> (PathBuf, String) {
    let (repo, _wt) = trained_project(env);
    let origin = env.path("origin.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", origin.to_str().unwrap()]);
    let url = format!("file://{}", origin.display());
    env.git(&repo, ["remote", "add", "origin", &url]);
    // A second batch that turns the majority label, brought onto stable/model: the tip holds new
    // data and no model, so the next training makes a model unlike model-v1's.
    let src = env.path("batch-2");
    for i in 0..12 {
        let text = format!("age,plan,label\n{},basic,churn\n{},pro,churn\n", 30 + i, 50 + i);
        write_files(&src, &[(&format!("more-{i:02}.csv"), text.as_bytes())]);
    }
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "Add batch 2"]);
    env.mlgit_ok(&repo, ["clean"]);
    env.mlgit_ok(&repo, ["split"]);
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.git(&repo, ["lfs", "push", "--all", "origin"]);
    env.git(&repo, ["push", "-q", "origin", "--all"]);
    env.git(&repo, ["push", "-q", "origin", "--tags"]);
    (repo, url)
}

/// A clone as a CI job makes it: all branches and tags, no LFS content until `git lfs pull`.
fn ci_clone(env: &TestEnv, url: &str, name: &str) -> PathBuf {
    let dir = env.path(name);
    let out = env
        .git_cmd(env.tmp.path())
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "-q", url, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// The remote has the tag, its model's LFS object, and its stable branch did not move.
fn assert_remote_has_snapshot(env: &TestEnv, url: &str, tag: &str, stable_before: &str) {
    let check = ci_clone(env, url, &format!("check-{tag}"));
    env.git(&check, ["checkout", "-q", tag]);
    env.git(&check, ["lfs", "pull"]);
    env.git(&check, ["lfs", "fsck", tag]);
    let model = fs::read_to_string(check.join("model/model.json")).unwrap();
    assert!(model.contains("\"type\":\"majority\""), "real bytes, not a pointer: {model}");
    assert_eq!(rev(env, &check, "origin/stable/model"), stable_before, "only the tag was pushed");
}

#[test]
fn train_tag_hint_names_the_remote_and_the_tag_for_mlgit_push() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let (_repo, url) = pushed_project(&env);
    let ci = ci_clone(&env, &url, "ci");
    env.git(&ci, ["checkout", "-q", "stable/model"]);
    env.git(&ci, ["lfs", "pull"]);
    let stable_before = rev(&env, &ci, "origin/stable/model");
    let out = env.mlgit_ok(&ci, ["train-tag", "--", "./train.sh"]);
    assert!(out.contains("model-v2"), "{out}");
    // Every hinted command, run as printed, works in this clone.
    let hinted: Vec<&str> =
        out.split('`').skip(1).step_by(2).filter(|c| c.starts_with("mlgit push")).collect();
    assert_eq!(hinted, vec!["mlgit push origin model-v2"], "{out}");
    // What the hint said before fails here: --all (model-v1's object is not in this clone).
    let all = env.git_cmd(&ci).args(["lfs", "push", "--all", "origin"]).output().unwrap();
    assert!(!all.status.success(), "git lfs push --all origin works in a clone lacking objects?");
    for cmd in hinted {
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        env.mlgit_ok(&ci, args);
    }
    assert_remote_has_snapshot(&env, &url, "model-v2", &stable_before);
}

/// A command isolated as TestEnv isolates git and mlgit (cleared environment, the test HOME, fixed
/// dates), with the mlgit under test first on PATH: for running shell scripts taken from the CI
/// templates.
fn isolated(env: &TestEnv, program: &str, dir: &Path) -> Command {
    let bin = assert_cmd::cargo::cargo_bin("mlgit");
    let mut path = std::ffi::OsString::from(bin.parent().expect("binary folder"));
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("PATH", path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LANG", "C.UTF-8")
        .env("USER", "tester")
        // The jobs install mlgit with pip, pinned: here from a wheel of the mlgit under test.
        .env("MLGIT_VERSION", env!("CARGO_PKG_VERSION"))
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", mlgit_wheel::mlgit_wheel_folder())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("GIT_AUTHOR_DATE", format!("@{} +0000", env.date.get()))
        .env("GIT_COMMITTER_DATE", format!("@{} +0000", env.date.get()))
        .current_dir(dir);
    cmd
}

/// The shell steps of the template's CI train jobs, run as the CI would run them.
fn ci_train_scripts() -> (Vec<String>, Vec<String>) {
    let read = |p: &str| fs::read_to_string(Path::new(MANIFEST_DIR).join(p)).unwrap();
    let github: serde_yaml::Value =
        serde_yaml::from_str(&read("templates/default/main/.github/workflows/mlgit.yml")).unwrap();
    let steps = github["jobs"]["train"]["steps"].as_sequence().unwrap();
    let github_runs: Vec<String> = steps.iter().filter_map(|s| s["run"].as_str().map(String::from)).collect();
    let gitlab: serde_yaml::Value =
        serde_yaml::from_str(&read("templates/default/main/.gitlab-ci.yml")).unwrap();
    let gitlab_lines: Vec<String> = gitlab["train"]["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    (github_runs, gitlab_lines)
}

#[test]
fn ci_train_jobs_push_the_new_tag_and_its_lfs_objects_from_a_clone_lacking_older_snapshots() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let (_repo, url) = pushed_project(&env);
    let (github, gitlab) = ci_train_scripts();
    let runner_temp = env.path("runner-temp");
    fs::create_dir_all(&runner_temp).unwrap();
    let github_path = runner_temp.join("github-path");

    // GitHub Actions: each step is its own `bash -eo pipefail` script.
    let ci = ci_clone(&env, &url, "gh");
    env.git(&ci, ["checkout", "-q", "stable/model"]);
    let stable_before = rev(&env, &ci, "origin/stable/model");
    for script in &github {
        let out: Output = isolated(&env, "bash", &ci)
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .env("GITHUB_REF_NAME", "stable/model")
            .env("RUNNER_TEMP", &runner_temp)
            .env("GITHUB_PATH", &github_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "step failed:\n{script}\n{}\n{}", stdout(&out), stderr(&out));
    }
    assert_remote_has_snapshot(&env, &url, "model-v2", &stable_before);

    // GitLab CI: the script lines run in one shell, stopping at the first failure.
    let ci = ci_clone(&env, &url, "gl");
    let script = format!("set -e\n{}\n", gitlab.join("\n"));
    let out = isolated(&env, "bash", &ci)
        .args(["--noprofile", "--norc", "-c", &script])
        .env("CI_COMMIT_BRANCH", "stable/model")
        .env("CI_COMMIT_SHA", &stable_before)
        .output()
        .unwrap();
    assert!(out.status.success(), "train job failed:\n{script}\n{}\n{}", stdout(&out), stderr(&out));
    assert_remote_has_snapshot(&env, &url, "model-v3", &stable_before);
}

#[test]
fn a_refused_init_template_creates_nothing() {
    let env = TestEnv::new();
    let root = env.tmp.path();
    // A file name git cannot store: refused while the template is loaded.
    let bad_name = env.path("bad-name");
    write_files(&bad_name, &[("main/README.md", b"x\n"), ("main/notes\nv2.md", b"x\n")]);
    // Branch names that clash as refs (`data` and `data/clean`): found only while init writes.
    let clash = env.path("clash");
    write_files(&clash, &[("main/mlgit.yaml", b"branches:\n  raw: data\n  clean: data/clean\n")]);
    let existing = env.path("existing");
    write_files(&existing, &[("keep.txt", b"mine\n")]);

    for template in [&bad_name, &clash] {
        for target in ["new", "deep/er/new", "existing"] {
            let out = env.mlgit(root, ["init", "--template", template.to_str().unwrap(), target]);
            assert_eq!(out.status.code(), Some(1), "{template:?} {target}: {}", stderr(&out));
            assert!(stderr(&out).contains("error: "), "{}", stderr(&out));
        }
        assert!(!env.path("new").exists(), "{template:?}: nothing created");
        assert!(!env.path("deep").exists(), "{template:?}: no parent folder left behind");
        let left: BTreeSet<String> = fs::read_dir(&existing)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            BTreeSet::from(["keep.txt".to_string()]),
            "{template:?}: no .git in an existing folder"
        );
        assert_eq!(fs::read(existing.join("keep.txt")).unwrap(), b"mine\n");
    }
    let err = stderr(&env.mlgit(root, ["init", "--template", bad_name.to_str().unwrap(), "new"]));
    assert!(err.contains("cannot be committed") && err.contains("hint: "), "{err}");
    // git agrees that the folder is no repository.
    let status = env.git_cmd(&existing).args(["rev-parse", "--git-dir"]).output().unwrap();
    assert!(!status.status.success(), "{}", stdout(&status));
}

/// `mlgit <command> [<subcommand>] [--flag…]` as written in code: the words a reader would type.
fn mlgit_invocations(path: &Path, text: &str) -> Vec<Vec<String>> {
    let code: Vec<String> = match path.extension().and_then(|e| e.to_str()) {
        // Markdown: fenced blocks and code spans. Rust: the code spans of messages and docs.
        Some("md") | Some("rs") => {
            let mut out = Vec::new();
            for (i, part) in text.split("\n```").enumerate() {
                if i % 2 == 1 && path.extension().is_some_and(|e| e == "md") {
                    out.extend(part.lines().skip(1).map(String::from));
                } else {
                    out.extend(part.split('`').skip(1).step_by(2).map(String::from));
                }
            }
            out
        }
        // Scripts and CI files: the lines that are not comments.
        _ => text.lines().filter(|l| !l.trim_start().starts_with('#')).map(String::from).collect(),
    };
    let mut found = Vec::new();
    for snippet in code {
        for segment in snippet.split(['|', ';', '#', '(', ')']).flat_map(|s| s.split("&&")) {
            let words: Vec<&str> = segment.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| *w == "mlgit") else { continue };
            // `mlgit` as a command: first word, after a prompt or a list dash.
            if !words[..at].iter().all(|w| ["$", "-", "run:"].contains(w)) {
                continue;
            }
            let mut rest: Vec<String> = Vec::new();
            let mut i = at + 1;
            while i < words.len() {
                match words[i] {
                    "--json" | "-q" | "--quiet" => i += 1,
                    "-C" => i += 2,
                    _ => break,
                }
            }
            for w in &words[i.min(words.len())..] {
                if *w == "--" {
                    break;
                }
                rest.push(w.trim_end_matches([',', '.', ':']).to_string());
            }
            if rest
                .first()
                .is_some_and(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
            {
                found.push(rest);
            }
        }
    }
    found
}

#[test]
fn templates_and_docs_name_only_real_mlgit_commands_and_flags() {
    let env = TestEnv::new();
    let root = Path::new(MANIFEST_DIR);
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root.join("templates/default"))
        .into_iter()
        .chain(walkdir::WalkDir::new(root.join("docs")))
        .chain(walkdir::WalkDir::new(root.join("src")))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.push(root.join("README.md"));
    let mut help = std::collections::HashMap::<Vec<String>, Option<String>>::new();
    let mut help_of = |words: &[String]| -> Option<String> {
        help.entry(words.to_vec())
            .or_insert_with(|| {
                let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
                args.push("--help");
                let out = env.mlgit(env.tmp.path(), &args);
                out.status.success().then(|| stdout(&out))
            })
            .clone()
    };
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else { continue };
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        for call in mlgit_invocations(file, &text) {
            seen += 1;
            let mut command = vec![call[0].clone()];
            let Some(mut text) = help_of(&command) else {
                problems.push(format!("{rel}: `mlgit {}` is not a command", call[0]));
                continue;
            };
            let mut next = 1;
            if text.contains("\nCommands:") {
                let word = |w: &&String| {
                    w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
                };
                if let Some(sub) = call.get(1).filter(word) {
                    command.push(sub.clone());
                    next = 2;
                    match help_of(&command) {
                        Some(t) => text = t,
                        None => {
                            problems.push(format!("{rel}: `mlgit {}` is not a command", command.join(" ")));
                            continue;
                        }
                    }
                }
            }
            for flag in call[next..].iter().filter(|w| w.starts_with('-') && w.len() > 1) {
                let flag = flag.split('=').next().unwrap();
                let listed = text
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
                    .any(|w| w == flag);
                if !listed {
                    problems.push(format!("{rel}: `mlgit {}` has no option {flag}", command.join(" ")));
                }
            }
        }
    }
    assert!(seen > 100, "the scan found only {seen} mlgit commands: is it reading the files?");
    assert!(problems.is_empty(), "commands or options that do not exist:\n{}", problems.join("\n"));
}

#[test]
fn the_embedded_template_names_no_unbuilt_command() {
    // What init writes is what the scan above reads: the branch READMEs and main's docs of a
    // fresh repository name no command that the binary lacks.
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let mut texts = Vec::new();
    for branch in ["raw", "clean", "split", "monitoring/prod"] {
        texts.push((format!("{branch}:README.md"), env.git(&repo, ["show", &format!("{branch}:README.md")])));
    }
    texts.push(("main:docs/branches.md".into(), env.git(&repo, ["show", "main:docs/branches.md"])));
    let mut commands = BTreeSet::new();
    for (name, text) in &texts {
        for call in mlgit_invocations(Path::new("x.md"), text) {
            commands.insert((name.clone(), call[0].clone()));
        }
    }
    for (name, word) in &commands {
        let out = env.mlgit(env.tmp.path(), [word.as_str(), "--help"]);
        assert!(out.status.success(), "{name} names `mlgit {word}`, which does not exist");
    }
    let all: BTreeSet<&str> = commands.iter().map(|(_, w)| w.as_str()).collect();
    for word in ["commit-data", "lineage", "materialize"] {
        assert!(
            all.contains(word),
            "the monitoring and env docs show how to write them with {word}: {all:?}"
        );
    }
}
