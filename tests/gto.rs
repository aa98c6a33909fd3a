//! `--gto`: the tags `mlgit promote --gto` and `mlgit rollback --gto` write are read back by the
//! real GTO (`pip install gto`), which must say what `mlgit envs` says. GTO is found through
//! `MLGIT_TEST_GTO` (its executable), `~/.cache/mlgit-ci/gto/bin/gto` (`.ci/run` installs it there)
//! or PATH. Under `CI=true` a missing GTO fails the tests; elsewhere they skip with a printed reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, stdout, TestEnv};

/// The `gto` executable, or None (and a printed reason) when it is not installed.
fn gto_bin() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MLGIT_TEST_GTO").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mlgit-ci/gto/bin/gto")),
        Some(PathBuf::from("gto")),
    ];
    for bin in candidates.into_iter().flatten() {
        if Command::new(&bin).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(bin);
        }
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("GTO is required when CI=true (python3 -m venv ~/.cache/mlgit-ci/gto && ~/.cache/mlgit-ci/gto/bin/pip install gto==1.10.1)");
    }
    eprintln!("skipping: GTO is not installed (pip install gto==1.10.1, or set MLGIT_TEST_GTO)");
    None
}

struct Gto<'a> {
    bin: PathBuf,
    env: &'a TestEnv,
    repo: PathBuf,
}

impl Gto<'_> {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.repo)
            .env_clear()
            .env("HOME", &self.env.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LANG", "C.UTF-8")
            .output()
            .expect("run gto");
        assert!(
            out.status.success(),
            "gto {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.run(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("gto {args:?}: bad JSON ({e}): {text}"))
    }

    /// The version GTO has in `stage`, in its default view (latest assignment wins), in its semver
    /// view, and as `gto show model#<stage> --version` prints it; all three must agree.
    fn stage(&self, stage: &str) -> Option<String> {
        let by_time = self.json(&["show", "--json"])["model"]["stage"][stage].as_str().map(str::to_string);
        let by_semver = self.json(&["show", "--json", "--sort", "semver"])["model"]["stage"][stage]
            .as_str()
            .map(str::to_string);
        assert_eq!(by_time, by_semver, "GTO's timestamp and semver views of '{stage}' differ");
        let every = self.json(&["show", "--json", "--vs", "-1"])["model"]["stage"][stage]
            .as_str()
            .map(str::to_string);
        assert_eq!(by_time, every, "GTO has more than one version in '{stage}'");
        if let Some(v) = &by_time {
            assert_eq!(self.run(&["show", &format!("model#{stage}"), "--version"]).trim(), v);
        }
        by_time
    }
}

/// The demo repository (model-v1 and model-v2 snapshots; the demo itself promotes model-v2 to
/// staging and prod, without --gto).
fn demo(env: &TestEnv) -> PathBuf {
    env.mlgit_ok(env.tmp.path(), ["demo", "d"]);
    env.tick();
    env.path("d/churn")
}

fn promote(env: &TestEnv, repo: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["promote", "--gto"];
    all.extend_from_slice(args);
    env.mlgit_json(repo, all)
}

fn gto_tags(v: &serde_json::Value) -> Vec<String> {
    v["gto_tags"]
        .as_array()
        .expect("gto_tags")
        .iter()
        .map(|t| t.as_str().expect("tag name").to_string())
        .collect()
}

#[test]
fn gto_reads_the_stages_that_promote_and_rollback_write() {
    let Some(bin) = gto_bin() else { return };
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = demo(&env);
    let gto = Gto { bin, env: &env, repo: repo.clone() };
    assert_eq!(gto.run(&["show", "--json"]).trim(), "{}", "the demo writes no GTO tags");

    let v = promote(&env, &repo, &["model-v1", "--env", "staging"]);
    assert_eq!(gto_tags(&v), ["model@v1.0.0", "model#staging#1"]);
    assert_eq!(gto.stage("staging").as_deref(), Some("v1.0.0"));
    env.tick();

    let v = promote(&env, &repo, &["model-v1", "--env", "prod"]);
    assert_eq!(gto_tags(&v), ["model#prod#2"], "the version is registered once");
    assert_eq!(gto.stage("prod").as_deref(), Some("v1.0.0"));
    env.tick();

    let v = promote(&env, &repo, &["model-v2", "--env", "prod"]);
    assert_eq!(gto_tags(&v), ["model@v2.0.0", "model#prod#3", "model#prod!#4"]);
    assert_eq!(gto.stage("prod").as_deref(), Some("v2.0.0"));
    assert_eq!(gto.stage("staging").as_deref(), Some("v1.0.0"), "other stages are left alone");
    env.tick();

    let v = env.mlgit_json(&repo, ["rollback", "--env", "prod", "--gto"]);
    assert_eq!(v["tag"], "model-v1", "{v}");
    assert_eq!(gto_tags(&v), ["model#prod#5", "model#prod!#6"]);
    assert_eq!(gto.stage("prod").as_deref(), Some("v1.0.0"));
    let envs = env.mlgit_json(&repo, ["envs"]);
    let prod = envs["environments"].as_array().into_iter().flatten().find(|e| e["env"] == "prod");
    assert_eq!(prod.map(|p| &p["tag"]), Some(&serde_json::json!("model-v1")), "mlgit envs agrees: {envs}");

    // The tags are annotated, on the snapshot commits, by the promoting identity.
    let v1 = env.git(&repo, ["rev-parse", "model-v1^{commit}"]);
    let v2 = env.git(&repo, ["rev-parse", "model-v2^{commit}"]);
    for (tag, commit) in [
        ("model@v1.0.0", &v1),
        ("model#staging#1", &v1),
        ("model#prod#2", &v1),
        ("model@v2.0.0", &v2),
        ("model#prod#3", &v2),
        ("model#prod!#4", &v1),
        ("model#prod#5", &v1),
        ("model#prod!#6", &v2),
    ] {
        assert_eq!(env.git(&repo, ["cat-file", "-t", tag]).trim(), "tag", "{tag} is annotated");
        assert_eq!(&env.git(&repo, ["rev-parse", &format!("{tag}^{{commit}}")]), commit, "{tag}");
    }
    // GTO's history has a "who": the tagger.
    let history = gto.json(&["history", "model", "--json"]);
    let events = history.as_array().expect("history");
    assert_eq!(events.len(), 8, "{history}");
    assert!(
        events.iter().all(|e| e["author"] == "Test User" && e["author_email"] == "test@example.com"),
        "{history}"
    );
    assert_eq!(events[0]["ref"], "model#prod!#6", "newest first: {history}");
}

#[test]
fn a_rollback_in_the_same_second_as_the_promotion_leaves_gto_one_version_in_prod() {
    let Some(bin) = gto_bin() else { return };
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = demo(&env);
    let gto = Gto { bin, env: &env, repo: repo.clone() };
    // No tick between the commands: every tag would have the same time, and GTO counts an
    // unassignment as the latest on equal times, so prod would show no version at all.
    promote(&env, &repo, &["model-v1", "--env", "staging"]);
    promote(&env, &repo, &["model-v1", "--env", "prod"]);
    promote(&env, &repo, &["model-v2", "--env", "prod"]);
    assert_eq!(gto.stage("prod").as_deref(), Some("v2.0.0"));
    env.mlgit_json(&repo, ["rollback", "--env", "prod", "--gto"]);
    assert_eq!(gto.stage("prod").as_deref(), Some("v1.0.0"));
    promote(&env, &repo, &["model-v2", "--env", "prod"]);
    assert_eq!(gto.stage("prod").as_deref(), Some("v2.0.0"));
}

#[test]
fn a_snapshot_tag_without_a_number_is_refused_before_anything_is_written() {
    let Some(bin) = gto_bin() else { return };
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = demo(&env);
    let gto = Gto { bin, env: &env, repo: repo.clone() };
    // The snapshots no longer follow the tag pattern: they carry no GTO version number.
    let config = std::fs::read_to_string(repo.join("mlgit.yaml")).expect("mlgit.yaml");
    let changed = config.replace("tag_pattern: \"{model}-v{n}\"", "tag_pattern: \"{model}-r{n}\"");
    assert_ne!(config, changed, "the demo's mlgit.yaml names the default pattern");
    std::fs::write(repo.join("mlgit.yaml"), changed).expect("write mlgit.yaml");
    env.git(&repo, ["commit", "-q", "-am", "snapshots are now named model-r<n>"]);
    let before = env.refs(&repo);

    let out = env.mlgit(&repo, ["promote", "model-v1", "--env", "staging", "--gto"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("model-v1") && err.contains("carries no number"), "{err}");
    assert!(err.contains("gto register model model-v1 --version"), "the hint says how: {err}");
    assert_eq!(env.refs(&repo), before, "nothing written, not even the env/ commit");

    // Registered by hand, as the hint says: promote --gto uses that version.
    gto.run(&["register", "model", "model-v1", "--version", "v0.1.0"]);
    env.tick();
    let v = promote(&env, &repo, &["model-v1", "--env", "staging"]);
    assert_eq!(gto_tags(&v), ["model#staging#1"]);
    assert_eq!(gto.stage("staging").as_deref(), Some("v0.1.0"));
}

#[test]
fn a_gto_version_held_by_another_commit_is_refused_before_anything_is_written() {
    let Some(bin) = gto_bin() else { return };
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = demo(&env);
    let gto = Gto { bin, env: &env, repo: repo.clone() };
    gto.run(&["register", "model", "model-v2", "--version", "v1.0.0"]);
    let before = env.refs(&repo);
    let out = env.mlgit(&repo, ["promote", "model-v1", "--env", "staging", "--gto"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("v1.0.0") && err.contains("already taken"), "{err}");
    assert_eq!(env.refs(&repo), before, "nothing written");
}

#[test]
fn concurrent_promotions_with_gto_take_distinct_counters() {
    let Some(bin) = gto_bin() else { return };
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = demo(&env);
    let gto = Gto { bin, env: &env, repo: repo.clone() };
    // Two environments at once: their env/ branches do not contend, their GTO counters do.
    let children: Vec<_> = ["dev", "staging"]
        .iter()
        .map(|e| {
            env.mlgit_cmd(&repo)
                .args(["promote", "model-v1", "--env", e, "--gto", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn mlgit")
        })
        .collect();
    let mut written = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("JSON");
        assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
        written.extend(gto_tags(&v));
    }
    written.sort();
    let registrations = written.iter().filter(|t| t.starts_with("model@")).count();
    assert_eq!(registrations, 1, "one registration between them: {written:?}");
    let mut counters: Vec<&str> = written.iter().filter_map(|t| t.rsplit_once('#').map(|(_, k)| k)).collect();
    counters.sort();
    assert_eq!(counters, ["1", "2"], "{written:?}");
    assert_eq!(gto.stage("dev").as_deref(), Some("v1.0.0"));
    assert_eq!(gto.stage("staging").as_deref(), Some("v1.0.0"));
}
