//! End-to-end tests of environments (issue 13): `mlgit promote`, `mlgit envs`, `envs log`,
//! `envs at` and `mlgit rollback` through the built binary, on the repository `mlgit demo` leaves
//! (two real snapshots, `model-v1` and `model-v2`, trained by `train-tag` on a real split, their
//! model files in the LFS store, and a week of production requests that drift). The demo is the
//! fastest honest way to get tagged snapshots here: a few seconds, every command the user runs. It
//! also promotes model-v2 to staging and prod; each test puts env/* back on the README-only root
//! commit `mlgit init` made, so it starts from environments nothing has served yet.
//!
//! Everything mlgit writes is read back with the `git` CLI: `git log --first-parent env/prod` is
//! the deployment log (subjects and `Mlgit-*` trailers), `git show env/prod:DEPLOYED_TAG`, the
//! promotion commit's parents, and the model bytes a fresh `git worktree add` (git-lfs smudge), a
//! `mlgit clone` and a plain `git clone` + `git lfs pull` give. Every refusal is checked to leave
//! every ref (`git for-each-ref`) where it was.
//!
//! Contract: notes/issue13-plan.md. Where it leaves room (the name of the array in `envs --json`
//! and `envs log --json`), the helpers below take the one array of objects in the document. As
//! implemented: `previous` in JSON is the tag, `checks` are `{rule, passed, detail}`, and
//! `envs at --json` gives the deployment under `serving` (null before the first one).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{sha256_hex, stderr, stdout, TestEnv, BASE_DATE};
use serde_json::Value;

// ---------------------------------------------------------------------------------- the world

/// The repository `mlgit demo` made (`d/churn`), its `stable/model` worktree and the folder of
/// production batches.
struct Demo {
    env: TestEnv,
    repo: PathBuf,
    stable: PathBuf,
    production: PathBuf,
}

fn demo() -> Option<Demo> {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return None;
    }
    env.mlgit_ok(env.tmp.path(), ["demo", "-q", "d"]);
    // Promotions happen an hour after the demo's commits, a minute apart (see `Demo::at`).
    env.date.set(BASE_DATE + 3600);
    let (repo, stable, production) =
        (env.path("d/churn"), env.path("d/churn-stable"), env.path("d/production"));
    let d = Demo { env, repo, stable, production };
    for tag in ["model-v1", "model-v2"] {
        assert!(d.try_rev(&format!("{tag}^{{commit}}")).is_some(), "the demo made no {tag}");
    }
    for env in ["dev", "staging", "prod"] {
        d.reset_env_branch(env);
    }
    Some(d)
}

impl Demo {
    fn try_rev(&self, rev: &str) -> Option<String> {
        let out = self.env.git_cmd(&self.repo).args(["rev-parse", "-q", "--verify", rev]).output().unwrap();
        out.status.success().then(|| stdout(&out).trim().to_string())
    }

    fn rev(&self, rev: &str) -> String {
        self.try_rev(rev).unwrap_or_else(|| panic!("no {rev}"))
    }

    /// Put `env/<env>` back on the README-only root commit `mlgit init` made (the demo promotes
    /// model-v2 through staging to prod; these tests start from environments nothing served yet).
    fn reset_env_branch(&self, env: &str) {
        let branch = format!("refs/heads/env/{env}");
        assert!(self.try_rev(&branch).is_some(), "mlgit init made no env/{env}");
        let root = self.env.git(&self.repo, ["rev-list", "--first-parent", "--max-parents=0", &branch]);
        let root = root.trim();
        assert_eq!(root.lines().count(), 1, "env/{env} has one root: {root}");
        assert_eq!(self.env.git(&self.repo, ["ls-tree", "--name-only", root]), "README.md\n");
        self.env.git(&self.repo, ["update-ref", &branch, root]);
    }

    /// The snapshot commit a tag names.
    fn snapshot(&self, tag: &str) -> String {
        self.rev(&format!("{tag}^{{commit}}"))
    }

    /// The model files of a snapshot's tracking record: `[{path, sha256, size}]`.
    fn model(&self, tag: &str) -> Vec<Value> {
        let run: Value =
            serde_json::from_str(&self.env.git(&self.repo, ["show", &format!("{tag}:tracking/run.json")]))
                .expect("tracking/run.json is JSON");
        let model = run["model"].as_array().unwrap_or_else(|| panic!("{tag}: no model files: {run}")).clone();
        assert!(!model.is_empty(), "{tag}: no model files: {run}");
        model
    }

    /// Set the clock of the next commands (seconds after the base date).
    fn at(&self, secs: i64) {
        self.env.date.set(BASE_DATE + secs);
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.env.mlgit(&self.repo, args);
        self.env.tick();
        out
    }

    /// `mlgit --json ARGS`, required to succeed.
    fn json(&self, args: &[&str]) -> Value {
        let v = self.env.mlgit_json(&self.repo, args);
        self.env.tick();
        v
    }

    /// `mlgit --json promote TAG --env ENV [extra]`, required to succeed.
    fn promote(&self, tag: &str, env: &str, extra: &[&str]) -> Value {
        let mut args = vec!["promote", tag, "--env", env];
        args.extend_from_slice(extra);
        let v = self.json(&args);
        assert_eq!(v["env"], env, "{v}");
        assert_eq!(v["tag"], tag, "{v}");
        v
    }

    /// Run ARGS expecting a refusal: exit code 1, an `error:` on stderr holding every needle
    /// (case-insensitive), and no ref moved. Returns stderr.
    fn refused(&self, args: &[&str], needles: &[&str]) -> String {
        let before = self.env.refs(&self.repo);
        let out = self.run(args);
        let (o, e) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{args:?} should be refused\nstdout:\n{o}\nstderr:\n{e}");
        assert!(e.contains("error:"), "{args:?}: no error on stderr:\n{e}");
        let low = e.to_lowercase();
        for n in needles {
            assert!(low.contains(&n.to_lowercase()), "{args:?}: the error does not say {n:?}:\n{e}");
        }
        assert_eq!(self.env.refs(&self.repo), before, "{args:?} moved a ref although it was refused");
        e
    }

    /// The full message of a commit.
    fn message(&self, rev: &str) -> String {
        self.env.git(&self.repo, ["log", "-1", "--format=%B", rev])
    }

    /// A commit's parents, in order.
    fn parents(&self, rev: &str) -> Vec<String> {
        let line = self.env.git(&self.repo, ["rev-list", "--parents", "-n1", rev]);
        line.split_whitespace().skip(1).map(str::to_string).collect()
    }

    /// `git log --first-parent --format=%H BRANCH`, newest first.
    fn first_parents(&self, branch: &str) -> Vec<String> {
        self.env
            .git(&self.repo, ["log", "--first-parent", "--format=%H", branch])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `DEPLOYMENT.yaml` of a commit, as JSON values.
    fn deployment(&self, rev: &str) -> Value {
        let text = self.env.git(&self.repo, ["show", &format!("{rev}:DEPLOYMENT.yaml")]);
        serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{rev}:DEPLOYMENT.yaml is not YAML ({e}):\n{text}"))
    }

    /// Commit `text` appended to `mlgit.yaml` on main (the demo's main worktree is the repository).
    fn policy(&self, text: &str) {
        let path = self.repo.join("mlgit.yaml");
        let mut yaml = std::fs::read_to_string(&path).unwrap();
        yaml.push_str(text);
        std::fs::write(&path, yaml).unwrap();
        self.env.git(&self.repo, ["commit", "-q", "-m", "Promotion policy", "--", "mlgit.yaml"]);
        self.env.tick();
    }

    /// The LFS store's copy of an object.
    fn lfs_object(&self, sha256: &str) -> PathBuf {
        self.repo.join(".git/lfs/objects").join(&sha256[..2]).join(&sha256[2..4]).join(sha256)
    }

    /// A third snapshot `model-v3` whose model has one more file, `model/calibration.json`.
    fn third_snapshot(&self) -> String {
        let v = self.env.mlgit_json(
            &self.stable,
            [
                "train-tag",
                "--",
                "sh",
                "-c",
                "sh train.sh && printf '{\"bins\":8}\\n' > model/calibration.json",
            ],
        );
        self.env.tick();
        assert_eq!(v["tag"], "model-v3", "{v}");
        let paths: Vec<&str> =
            v["record"]["model"].as_array().unwrap().iter().map(|m| m["path"].as_str().unwrap()).collect();
        assert!(paths.contains(&"model/calibration.json"), "{v}");
        "model-v3".to_string()
    }

    /// Log `requests-week-2.csv` (prices went up) on `monitoring/<env>` and commit the drift report
    /// (exit 3: an alert for model-v2, which served most of the week).
    fn drift_alert(&self, env: &str) {
        let week2 = self.production.join("requests-week-2.csv");
        self.json(&["monitor", "log", "--env", env, "--source", week2.to_str().unwrap()]);
        let out = self.run(&["--json", "monitor", "drift", "--env", env, "--commit"]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "drift on {env} should alert:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let files = self
            .env
            .git(&self.repo, ["ls-tree", "-r", "--name-only", &format!("monitoring/{env}"), "alerts/"]);
        assert!(!files.trim().is_empty(), "no alert committed on monitoring/{env}");
    }
}

/// The first value of a trailer in a commit message.
fn trailer<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    trailers(msg, key).into_iter().next()
}

/// Every value of a trailer in a commit message.
fn trailers<'a>(msg: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}: ");
    msg.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).map(str::trim).collect()
}

/// The one array of objects in a JSON document (the list of `envs` or of `envs log`).
fn rows(v: &Value) -> &Vec<Value> {
    let arrays: Vec<&Vec<Value>> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .values()
        .filter_map(|x| x.as_array())
        .filter(|a| a.iter().all(|x| x.is_object()) && !a.is_empty())
        .collect();
    assert_eq!(arrays.len(), 1, "expected one array of rows in {v}");
    arrays[0]
}

/// The row of `envs --json` for one environment.
fn env_row<'a>(v: &'a Value, env: &str) -> &'a Value {
    rows(v).iter().find(|r| r["env"] == env).unwrap_or_else(|| panic!("no row for {env} in {v}"))
}

/// The rules a list names (`checks` of a promotion: the ones that passed; `forced[].rule`).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .filter(|x| x["passed"] != false)
        .map(|x| x.as_str().or_else(|| x["rule"].as_str()).unwrap_or_else(|| panic!("{x}")).to_string())
        .collect()
}

/// Check the model files in `dir` against a snapshot's tracking record (bytes by sha256).
fn assert_model_bytes(dir: &Path, model: &[Value]) {
    for m in model {
        let path = m["path"].as_str().unwrap();
        let bytes =
            std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path} in {}: {e}", dir.display()));
        assert_eq!(
            sha256_hex(&bytes),
            m["sha256"].as_str().unwrap(),
            "{path} in {} is not the recorded model bytes:\n{}",
            dir.display(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        );
        assert_eq!(bytes.len() as u64, m["size"].as_u64().unwrap(), "{path}");
    }
}

/// Check one promotion commit with the git CLI: parents, DEPLOYED_TAG, DEPLOYMENT.yaml, tree,
/// subject and trailers.
#[allow(clippy::too_many_arguments)]
fn assert_promotion_commit(
    d: &Demo,
    commit: &str,
    env: &str,
    action: &str,
    tag: &str,
    previous_tip: Option<&str>,
    previous_tag: Option<&str>,
    reason: Option<&str>,
) {
    let snapshot = d.snapshot(tag);
    let mut parents: Vec<String> = previous_tip.map(str::to_string).into_iter().collect();
    parents.push(snapshot.clone());
    assert_eq!(d.parents(commit), parents, "parents of the {action} commit are [previous env tip, snapshot]");
    assert_eq!(d.env.git(&d.repo, ["show", &format!("{commit}:DEPLOYED_TAG")]), format!("{tag}\n"));

    // The tree is the snapshot's tree plus the two files (.gitattributes is recomputed).
    let entries = |rev: &str| -> Vec<String> {
        d.env
            .git(&d.repo, ["ls-tree", "-r", rev])
            .lines()
            .filter(|l| !l.ends_with("\t.gitattributes"))
            .filter(|l| !l.ends_with("\tDEPLOYMENT.yaml") && !l.ends_with("\tDEPLOYED_TAG"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(entries(commit), entries(&snapshot), "the {action} commit's tree is the snapshot's tree");
    let lfs = d.env.git(&d.repo, ["lfs", "ls-files", "-n", commit]);
    for m in d.model(tag) {
        assert!(
            lfs.lines().any(|l| l == m["path"].as_str().unwrap()),
            "{m} is an LFS file on {commit}:\n{lfs}"
        );
    }

    let msg = d.message(commit);
    let subject = msg.lines().next().unwrap_or_default();
    match action {
        "promote" => assert_eq!(subject, format!("promote {tag} to {env}"), "{msg}"),
        _ => assert_eq!(subject, format!("rollback {env} to {tag}"), "{msg}"),
    }
    if let Some(reason) = reason {
        assert!(msg.contains(reason), "the reason is in the message:\n{msg}");
    }
    assert_eq!(trailer(&msg, "Mlgit-Environment"), Some(env), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Action"), Some(action), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Tag"), Some(tag), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Snapshot"), Some(snapshot.as_str()), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Previous-Tag"), previous_tag, "{msg}");
    // git itself reads them as trailers.
    let parsed = d.env.git(&d.repo, ["log", "-1", "--format=%(trailers:key=Mlgit-Tag,valueonly)", commit]);
    assert_eq!(parsed.trim(), tag, "{msg}");

    let dep = d.deployment(commit);
    assert_eq!(dep["schema"], 1, "{dep}");
    assert_eq!(dep["environment"], env, "{dep}");
    assert_eq!(dep["action"], action, "{dep}");
    assert_eq!(dep["tag"], tag, "{dep}");
    assert_eq!(dep["snapshot"], snapshot.as_str(), "{dep}");
    assert_eq!(dep["model"], Value::Array(d.model(tag)), "{dep}");
    let run: Value =
        serde_json::from_str(&d.env.git(&d.repo, ["show", &format!("{tag}:tracking/run.json")])).unwrap();
    assert_eq!(dep["data"], run["data"], "{dep}");
    assert_eq!(dep["code"], run["code"], "{dep}");
    assert_eq!(dep["promoted_by"]["name"], "Test User", "{dep}");
    assert_eq!(dep["promoted_by"]["email"], "test@example.com", "{dep}");
    let committed = d.env.git(&d.repo, ["log", "-1", "--format=%cI", commit]);
    let at = chrono_seconds(dep["promoted_at"].as_str().unwrap());
    assert_eq!(at, chrono_seconds(committed.trim()), "promoted_at is the commit time: {dep}");
    match previous_tag {
        Some(p) => assert_eq!(dep["previous"]["tag"], p, "{dep}"),
        None => assert!(dep["previous"].is_null(), "{dep}"),
    }
    if let Some(reason) = reason {
        assert_eq!(dep["reason"], reason, "{dep}");
    }
}

/// Seconds since the epoch of an RFC 3339 time (`git log --format=%cI` or the record's).
fn chrono_seconds(text: &str) -> i64 {
    let out = std::process::Command::new("date").args(["-u", "-d", text, "+%s"]).output().expect("date");
    assert!(out.status.success(), "date cannot read {text:?}");
    stdout(&out).trim().parse().unwrap()
}

// ----------------------------------------------------------------------- promote, envs, rollback

#[test]
fn promote_envs_promote_again_rollback_and_envs_log_are_the_git_history_of_env_prod() {
    let Some(d) = demo() else { return };
    let before_prod = d.try_rev("env/prod");

    // model-v1: staging first (the default policy), then prod.
    d.at(3600);
    let s1 = d.promote("model-v1", "staging", &["--reason", "baseline"]);
    assert_eq!(s1["commit"], d.rev("env/staging").as_str(), "{s1}");
    d.at(2 * 3600);
    let p1 = d.promote("model-v1", "prod", &["--reason", "first model in production"]);
    let c1 = d.rev("env/prod");
    assert_eq!(p1["branch"], "env/prod", "{p1}");
    assert_eq!(p1["commit"], c1.as_str(), "{p1}");
    assert_eq!(p1["snapshot"], d.snapshot("model-v1").as_str(), "{p1}");
    assert!(p1["previous"].is_null(), "{p1}");
    assert_eq!(p1["unchanged"], false, "{p1}");
    assert_eq!(p1["forced"], serde_json::json!([]), "{p1}");
    let checks = strings(&p1["checks"]);
    assert!(
        checks.contains(&"requires:staging".to_string()) && checks.contains(&"verify".to_string()),
        "{p1}"
    );
    assert_promotion_commit(
        &d,
        &c1,
        "prod",
        "promote",
        "model-v1",
        before_prod.as_deref(),
        None,
        Some("first model in production"),
    );
    assert_eq!(strings(&d.deployment(&c1)["checks"]), checks, "the record lists the checks that passed");

    // `git checkout env/prod` (a fresh worktree, git-lfs smudging) gives the model bytes.
    let wt = d.env.path("prod-v1");
    d.env.git(&d.repo, ["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), "env/prod"]);
    assert_model_bytes(&wt, &d.model("model-v1"));
    assert_eq!(std::fs::read_to_string(wt.join("DEPLOYED_TAG")).unwrap(), "model-v1\n");
    assert_eq!(d.env.git(&wt, ["status", "--porcelain"]), "");

    // envs: what serves where, since when, by whom.
    let envs = d.json(&["envs"]);
    let prod = env_row(&envs, "prod");
    assert_eq!(prod["branch"], "env/prod", "{envs}");
    assert_eq!(prod["exists"], true, "{envs}");
    assert_eq!(prod["tag"], "model-v1", "{envs}");
    assert_eq!(prod["snapshot"], d.snapshot("model-v1").as_str(), "{envs}");
    assert_eq!(prod["commit"], c1.as_str(), "{envs}");
    assert_eq!(prod["by"]["name"], "Test User", "{envs}");
    assert_eq!(prod["reason"], "first model in production", "{envs}");
    assert!(prod["previous"].is_null(), "{envs}");
    assert_eq!(chrono_seconds(prod["since"].as_str().unwrap()), BASE_DATE + 2 * 3600, "{envs}");
    assert_eq!(env_row(&envs, "staging")["tag"], "model-v1", "{envs}");
    assert!(env_row(&envs, "dev")["tag"].is_null(), "dev was never promoted to: {envs}");
    let text = d.env.mlgit_ok(&d.repo, ["envs"]);
    assert!(text.contains("prod") && text.contains("model-v1") && text.contains("Test User"), "{text}");

    // model-v2: staging, then prod; the previous tag is model-v1.
    d.at(3 * 3600);
    d.promote("model-v2", "staging", &[]);
    d.at(4 * 3600);
    let p2 = d.promote("model-v2", "prod", &["--reason", "better accuracy"]);
    let c2 = d.rev("env/prod");
    assert_eq!(p2["commit"], c2.as_str(), "{p2}");
    assert_eq!(p2["previous"], "model-v1", "{p2}");
    assert_promotion_commit(
        &d,
        &c2,
        "prod",
        "promote",
        "model-v2",
        Some(&c1),
        Some("model-v1"),
        Some("better accuracy"),
    );
    assert_eq!(d.deployment(&c2)["previous"]["snapshot"], d.snapshot("model-v1").as_str());
    d.env.git(&wt, ["checkout", "-q", "--detach", "env/prod"]);
    assert_model_bytes(&wt, &d.model("model-v2"));
    assert_eq!(d.env.git(&d.repo, ["show", "env/prod:DEPLOYED_TAG"]), "model-v2\n");
    let envs = d.json(&["envs"]);
    assert_eq!(env_row(&envs, "prod")["tag"], "model-v2", "{envs}");
    assert_eq!(env_row(&envs, "prod")["previous"], "model-v1", "{envs}");

    // rollback: a new forward commit back to model-v1; history is kept.
    d.at(5 * 3600);
    let r = d.json(&["rollback", "--env", "prod", "--reason", "latency regression"]);
    let c3 = d.rev("env/prod");
    assert_eq!(r["tag"], "model-v1", "{r}");
    assert_eq!(r["commit"], c3.as_str(), "{r}");
    assert_eq!(r["previous"], "model-v2", "{r}");
    assert_promotion_commit(
        &d,
        &c3,
        "prod",
        "rollback",
        "model-v1",
        Some(&c2),
        Some("model-v2"),
        Some("latency regression"),
    );
    for old in [&c1, &c2] {
        d.env.git(&d.repo, ["merge-base", "--is-ancestor", old, "env/prod"]);
    }
    d.env.git(&wt, ["checkout", "-q", "--detach", "env/prod"]);
    assert_model_bytes(&wt, &d.model("model-v1"));

    // The deployment log: envs log, and git log --first-parent with the trailers.
    let log = d.json(&["envs", "log", "prod"]);
    let entries = rows(&log);
    assert_eq!(entries.len(), 3, "three deployments: {log}");
    let expected = [
        (&c3, "rollback", "model-v1", Some("model-v2")),
        (&c2, "promote", "model-v2", Some("model-v1")),
        (&c1, "promote", "model-v1", None),
    ];
    for (e, (commit, action, tag, previous)) in entries.iter().zip(expected) {
        assert_eq!(e["commit"], commit.as_str(), "{log}");
        assert_eq!(e["action"], action, "{log}");
        assert_eq!(e["tag"], tag, "{log}");
        assert_eq!(e["snapshot"], d.snapshot(tag).as_str(), "{log}");
        assert_eq!(e["by"]["name"], "Test User", "{log}");
        match previous {
            Some(p) => assert_eq!(e["previous"], p, "{log}"),
            None => assert!(e["previous"].is_null(), "{log}"),
        }
        assert_eq!(e["forced"], serde_json::json!([]), "{log}");
    }
    assert_eq!(entries[0]["reason"], "latency regression", "{log}");
    let limited = d.json(&["envs", "log", "prod", "--limit", "2"]);
    assert_eq!(rows(&limited).len(), 2, "{limited}");
    assert_eq!(rows(&limited)[0]["commit"], c3.as_str(), "{limited}");
    let first_parents = d.first_parents("env/prod");
    assert_eq!(
        first_parents[..3],
        [c3.clone(), c2.clone(), c1.clone()],
        "the first-parent chain is the deployment log"
    );
    let tags = d.env.git(
        &d.repo,
        ["log", "--first-parent", "-3", "--format=%(trailers:key=Mlgit-Action,valueonly,separator=)%x20%(trailers:key=Mlgit-Tag,valueonly,separator=)", "env/prod"],
    );
    assert_eq!(tags, "rollback model-v1\npromote model-v2\npromote model-v1\n");
    let text = d.env.mlgit_ok(&d.repo, ["envs", "log", "prod"]);
    assert!(
        text.contains("rollback") && text.contains("model-v2") && text.contains("latency regression"),
        "{text}"
    );
}

#[test]
fn rollback_to_a_named_tag_that_served_before_lands_and_one_that_never_served_is_refused() {
    let Some(d) = demo() else { return };
    d.promote("model-v1", "staging", &[]);
    // A single deployment: nothing earlier to roll back to.
    d.refused(&["rollback", "--env", "staging"], &["staging"]);
    let v3 = d.third_snapshot();
    d.promote("model-v2", "staging", &[]);
    d.promote(&v3, "staging", &[]);
    // model-v3 → model-v1 by name, skipping model-v2.
    let r = d.json(&["rollback", "--env", "staging", "--to", "model-v1"]);
    assert_eq!(r["tag"], "model-v1", "{r}");
    assert_eq!(r["previous"], v3, "{r}");
    assert_eq!(d.env.git(&d.repo, ["show", "env/staging:DEPLOYED_TAG"]), "model-v1\n");
    // A tag that never served prod is not a rollback target.
    d.promote("model-v1", "prod", &[]);
    d.refused(&["rollback", "--env", "prod", "--to", "model-v2"], &["model-v2", "prod"]);
}

#[test]
fn rollback_without_to_skips_the_deployment_it_rolled_back_from() {
    let Some(d) = demo() else { return };
    let v3 = d.third_snapshot();
    for tag in ["model-v1", "model-v2", v3.as_str()] {
        d.promote(tag, "dev", &[]);
    }
    let r = d.json(&["rollback", "--env", "dev"]);
    assert_eq!(r["tag"], "model-v2", "{r}");
    // Rolling back again goes further back, not forward to the tag just rolled back from.
    let r = d.json(&["rollback", "--env", "dev"]);
    assert_eq!(r["tag"], "model-v1", "{r}");
    assert_eq!(d.env.git(&d.repo, ["show", "env/dev:DEPLOYED_TAG"]), "model-v1\n");
}

// ---------------------------------------------------------------------------------------- clones

#[test]
fn a_clone_gets_the_deployed_model_bytes_with_mlgit_pull_and_with_git_lfs_pull() {
    let Some(d) = demo() else { return };
    d.promote("model-v1", "staging", &[]);
    d.promote("model-v1", "prod", &[]);
    let bare = d.env.path("origin.git");
    d.env.git(d.env.tmp.path(), ["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    d.env.git(&d.repo, ["remote", "add", "origin", &url]);
    d.env.mlgit_ok(&d.repo, ["push", "-q"]);
    assert_eq!(
        d.env.git(&bare, ["rev-parse", "env/prod"]).trim(),
        d.rev("env/prod"),
        "mlgit push sends env/prod"
    );

    // mlgit clone, then a new promotion upstream, then mlgit pull: env/prod follows with its bytes.
    let c = d.env.path("colleague");
    d.env.mlgit_ok(d.env.tmp.path(), ["clone", "-q", &url, c.to_str().unwrap()]);
    d.promote("model-v2", "staging", &[]);
    d.promote("model-v2", "prod", &[]);
    d.env.mlgit_ok(&d.repo, ["push", "-q"]);
    d.env.mlgit_ok(&c, ["pull", "-q", "--ref", "env/prod"]);
    let local = d.env.git(&c, ["rev-parse", "env/prod"]);
    assert_eq!(local.trim(), d.rev("env/prod"), "the clone's env/prod is origin's");
    let wt = d.env.path("colleague-prod");
    d.env.git(&c, ["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), "env/prod"]);
    assert_model_bytes(&wt, &d.model("model-v2"));
    assert_eq!(std::fs::read_to_string(wt.join("DEPLOYED_TAG")).unwrap(), "model-v2\n");
    let envs = d.env.mlgit_json(&c, ["envs"]);
    assert_eq!(env_row(&envs, "prod")["tag"], "model-v2", "{envs}");
    assert_eq!(env_row(&envs, "prod")["previous"], "model-v1", "{envs}");

    // A plain git clone of env/prod and git lfs pull: what a deployment job does.
    let plain = d.env.path("deploy-job");
    let out = d
        .env
        .git_cmd(d.env.tmp.path())
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "-q", "-b", "env/prod", &url, plain.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "git clone: {}", stderr(&out));
    let pointer = std::fs::read_to_string(plain.join("model/model.json")).unwrap();
    assert!(pointer.starts_with("version https://git-lfs"), "a pointer before git lfs pull: {pointer}");
    d.env.git(&plain, ["lfs", "pull"]);
    assert_model_bytes(&plain, &d.model("model-v2"));
    assert_eq!(d.env.git(&plain, ["status", "--porcelain"]), "");
    assert_eq!(std::fs::read_to_string(plain.join("DEPLOYED_TAG")).unwrap(), "model-v2\n");
}

// -------------------------------------------------------------------------------------- envs at

#[test]
fn envs_at_tells_what_served_at_instants_between_promotions_and_nothing_before_the_first() {
    let Some(d) = demo() else { return };
    const DAY: i64 = 86_400;
    // BASE_DATE is 2026-11-23T10:00:00Z: model-v1 serves prod from the 24th 10:00, model-v2
    // from the 26th 10:00, and model-v1 again (rollback) from the 28th 10:00.
    d.at(DAY - 60);
    d.promote("model-v1", "staging", &[]);
    d.promote("model-v2", "staging", &[]);
    d.at(DAY);
    let c1 = d.promote("model-v1", "prod", &[])["commit"].as_str().unwrap().to_string();
    d.at(3 * DAY);
    let c2 = d.promote("model-v2", "prod", &[])["commit"].as_str().unwrap().to_string();
    d.at(5 * DAY);
    let c3 = d.json(&["rollback", "--env", "prod"])["commit"].as_str().unwrap().to_string();
    d.at(7 * DAY);

    let at = |date: &str| d.json(&["envs", "at", "prod", date]);
    // Before the first deployment: no tag, exit 0.
    for date in ["2026-11-23T12:00:00Z", &format!("@{}", BASE_DATE + DAY - 1)] {
        let v = at(date);
        assert!(v["serving"].is_null(), "{date}: {v}");
        assert_eq!(v["env"], "prod", "{v}");
    }
    let out = d.env.mlgit(&d.repo, ["envs", "at", "prod", "2026-11-23T12:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Between promotions, in each date form the contract names.
    let cases: [(&str, &str, &str); 7] = [
        ("2026-11-24T10:00:00Z", "model-v1", &c1),
        ("2026-11-25", "model-v1", &c1),
        ("2026-11-25T23:59:59+02:00", "model-v1", &c1),
        ("2026-11-26T09:59:59Z", "model-v1", &c1),
        ("2026-11-27", "model-v2", &c2),
        ("2026-11-29", "model-v1", &c3),
        ("2026-12-30T00:00:00Z", "model-v1", &c3),
    ];
    for (date, tag, commit) in cases {
        let v = at(date);
        assert_eq!(v["serving"]["tag"], tag, "{date}: {v}");
        assert_eq!(v["serving"]["commit"], commit, "{date}: {v}");
        assert_eq!(v["serving"]["snapshot"], d.snapshot(tag).as_str(), "{date}: {v}");
        assert_eq!(v["serving"]["by"]["name"], "Test User", "{date}: {v}");
    }
    let v = at(&format!("@{}", BASE_DATE + 4 * DAY));
    assert_eq!(v["serving"]["tag"], "model-v2", "{v}");
    assert_eq!(chrono_seconds(v["serving"]["at"].as_str().unwrap()), BASE_DATE + 3 * DAY, "{v}");
    // The same answer as git's: the newest first-parent commit at or before the instant.
    let git = d.env.git(
        &d.repo,
        ["log", "--first-parent", "-1", "--format=%H", "--before=2026-11-27T00:00:00Z", "env/prod"],
    );
    assert_eq!(git.trim(), c2);
    // A date that does not parse is an error, not a guess.
    let out = d.env.mlgit(&d.repo, ["envs", "at", "prod", "next tuesday"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("next tuesday"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------- concurrency

#[test]
fn two_promotions_at_once_both_land_in_some_order_and_neither_is_lost() {
    let Some(d) = demo() else { return };
    for env in ["dev", "staging"] {
        let before = d.try_rev(&format!("env/{env}"));
        let spawn = |tag: &str| {
            d.env
                .mlgit_cmd(&d.repo)
                .args(["--json", "promote", tag, "--env", env])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("model-v1"), spawn("model-v2"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut commits = Vec::new();
        for (tag, out) in [("model-v1", &a), ("model-v2", &b)] {
            assert!(out.status.success(), "{tag} to {env}: {}\n{}", stdout(out), stderr(out));
            let v: Value = serde_json::from_str(stdout(out).trim()).unwrap();
            assert_eq!(v["unchanged"], false, "{v}");
            commits.push((tag, v["commit"].as_str().unwrap().to_string(), v["previous"].clone()));
        }
        // Both are on the first-parent chain, one on top of the other.
        let chain = d.first_parents(&format!("env/{env}"));
        let (tip, under) = (&chain[0], &chain[1]);
        let mut landed: Vec<&String> = commits.iter().map(|c| &c.1).collect();
        landed.sort();
        let mut top2 = vec![tip, under];
        top2.sort();
        assert_eq!(landed, top2, "both promotions are the two newest deployments of env/{env}");
        if let Some(before) = before {
            assert_eq!(chain[2], before, "nothing lost underneath");
        }
        // The later one names the earlier as previous, and its parents are right.
        let (first, second) =
            if &commits[0].1 == under { (&commits[0], &commits[1]) } else { (&commits[1], &commits[0]) };
        assert_eq!(second.2, first.0, "{second:?}");
        assert_eq!(d.parents(&second.1), vec![first.1.clone(), d.snapshot(second.0)]);
        let tags = d.env.git(
            &d.repo,
            [
                "log",
                "--first-parent",
                "-2",
                "--format=%(trailers:key=Mlgit-Tag,valueonly,separator=)",
                &format!("env/{env}"),
            ],
        );
        assert_eq!(tags, format!("{}\n{}\n", second.0, first.0));
    }
}

// -------------------------------------------------------------------------------------- policy

#[test]
fn promotion_to_prod_that_skips_staging_is_refused_naming_requires_staging_and_changes_nothing() {
    let Some(d) = demo() else { return };
    d.refused(&["promote", "model-v1", "--env", "prod"], &["requires:staging", "--force", "--reason"]);
    // On staging with another tag does not count.
    d.promote("model-v2", "staging", &[]);
    d.refused(&["promote", "model-v1", "--env", "prod"], &["requires:staging"]);
    d.promote("model-v2", "prod", &[]);
}

#[test]
fn a_configured_requires_chain_is_enforced_and_an_unconfigured_environment_has_no_prerequisite() {
    let Some(d) = demo() else { return };
    d.policy("promotion:\n  staging:\n    requires: [dev]\n  prod:\n    requires: [staging]\n");
    d.refused(&["promote", "model-v1", "--env", "staging"], &["requires:dev"]);
    d.promote("model-v1", "dev", &[]);
    let v = d.promote("model-v1", "staging", &[]);
    assert!(strings(&v["checks"]).contains(&"requires:dev".to_string()), "{v}");
    d.promote("model-v1", "prod", &[]);
}

#[test]
fn verify_refuses_a_tag_whose_model_object_is_missing_and_changes_nothing() {
    let Some(d) = demo() else { return };
    let model = d.model("model-v2");
    let object = d.lfs_object(model[0]["sha256"].as_str().unwrap());
    assert!(object.is_file(), "{}", object.display());
    std::fs::remove_file(&object).unwrap();
    let err = d.refused(&["promote", "model-v2", "--env", "staging"], &["verify", "--force", "--reason"]);
    assert!(err.contains(model[0]["path"].as_str().unwrap()), "the refusal names the missing file:\n{err}");
    // A corrupted object is refused the same way.
    let model1 = d.model("model-v1");
    let object1 = d.lfs_object(model1[0]["sha256"].as_str().unwrap());
    std::fs::write(&object1, b"{\"type\":\"tampered\"}").unwrap();
    d.refused(&["promote", "model-v1", "--env", "staging"], &["verify"]);
}

#[test]
fn verify_false_in_mlgit_yaml_lets_a_tag_with_a_missing_object_through() {
    let Some(d) = demo() else { return };
    d.policy("promotion:\n  dev:\n    verify: false\n");
    let model = d.model("model-v2");
    std::fs::remove_file(d.lfs_object(model[0]["sha256"].as_str().unwrap())).unwrap();
    let v = d.promote("model-v2", "dev", &[]);
    assert!(!strings(&v["checks"]).contains(&"verify".to_string()), "{v}");
    d.refused(&["promote", "model-v2", "--env", "staging"], &["verify"]);
}

#[test]
fn a_drift_alert_on_staging_since_the_staging_promotion_refuses_prod_under_no_drift_alerts() {
    let Some(d) = demo() else { return };
    d.policy("promotion:\n  prod:\n    requires: [staging]\n    no_drift_alerts: true\n");
    d.promote("model-v2", "staging", &[]);
    d.drift_alert("staging");
    let err = d.refused(
        &["promote", "model-v2", "--env", "prod"],
        &["no_drift_alerts:staging", "--force", "--reason"],
    );
    assert!(err.contains("alerts/"), "the refusal names the alert:\n{err}");

    // --force --reason overrides it, and says so in DEPLOYMENT.yaml and in the trailers.
    let v = d.promote("model-v2", "prod", &["--force", "--reason", "drift is the price rise, expected"]);
    assert_eq!(strings(&v["forced"]), ["no_drift_alerts:staging"], "{v}");
    assert!(v["forced"][0]["detail"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let dep = d.deployment("env/prod");
    assert_eq!(dep["forced"][0]["rule"], "no_drift_alerts:staging", "{dep}");
    assert_eq!(dep["reason"], "drift is the price rise, expected", "{dep}");
    let checks = strings(&dep["checks"]);
    assert!(checks.contains(&"requires:staging".to_string()), "{dep}");
    assert!(!checks.contains(&"no_drift_alerts:staging".to_string()), "a forced rule did not pass: {dep}");
    let msg = d.message("env/prod");
    assert_eq!(trailers(&msg, "Mlgit-Forced"), ["no_drift_alerts:staging"], "{msg}");
    let log = d.json(&["envs", "log", "prod"]);
    assert_eq!(strings(&rows(&log)[0]["forced"]), ["no_drift_alerts:staging"], "{log}");
    let envs = d.json(&["envs"]);
    assert!(!env_row(&envs, "staging")["last_alert"].is_null(), "envs shows staging's last alert: {envs}");
}

#[test]
fn a_drift_alert_older_than_the_staging_promotion_does_not_refuse_prod() {
    let Some(d) = demo() else { return };
    d.policy("promotion:\n  prod:\n    requires: [staging]\n    no_drift_alerts: true\n");
    d.drift_alert("staging");
    // The drift report's time (`generated_at`) is the wall clock, not the fixed test clock: the
    // staging promotion is dated 2031 so it is later than the report by either clock.
    d.at(8 * 365 * 86_400);
    d.promote("model-v2", "staging", &[]);
    let v = d.promote("model-v2", "prod", &[]);
    assert!(strings(&v["checks"]).contains(&"no_drift_alerts:staging".to_string()), "{v}");
}

#[test]
fn force_with_a_reason_overrides_every_failing_rule_and_records_each() {
    let Some(d) = demo() else { return };
    let model = d.model("model-v1");
    std::fs::remove_file(d.lfs_object(model[0]["sha256"].as_str().unwrap())).unwrap();
    let v = d.promote("model-v1", "prod", &["--force", "--reason", "hotfix, staging is down"]);
    let mut forced = strings(&v["forced"]);
    forced.sort();
    assert_eq!(forced, ["requires:staging", "verify"], "{v}");
    let msg = d.message("env/prod");
    let mut trailer_rules = trailers(&msg, "Mlgit-Forced");
    trailer_rules.sort();
    assert_eq!(trailer_rules, ["requires:staging", "verify"], "{msg}");
    assert!(msg.contains("hotfix, staging is down"), "{msg}");
    let dep = d.deployment("env/prod");
    let mut rules = strings(&dep["forced"]);
    rules.sort();
    assert_eq!(rules, ["requires:staging", "verify"], "{dep}");
    for f in dep["forced"].as_array().unwrap() {
        assert!(
            f["detail"].as_str().is_some_and(|s| !s.is_empty()),
            "every forced rule says why it failed: {dep}"
        );
    }
    assert_eq!(dep["reason"], "hotfix, staging is down", "{dep}");
}

#[test]
fn force_without_a_reason_is_refused_and_changes_nothing() {
    let Some(d) = demo() else { return };
    let before = d.env.refs(&d.repo);
    let out = d.run(&["promote", "model-v1", "--env", "prod", "--force"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("--reason"), "{}", stderr(&out));
    let out = d.run(&["promote", "model-v1", "--env", "prod", "--force", "--reason", "  "]);
    assert!(!out.status.success(), "a blank reason is no reason: {}", stdout(&out));
    assert_eq!(d.env.refs(&d.repo), before);
}

// ----------------------------------------------------------------------------------- bad input

#[test]
fn an_unknown_tag_is_refused_with_a_clear_error_and_changes_nothing() {
    let Some(d) = demo() else { return };
    d.refused(&["promote", "model-v9", "--env", "staging"], &["model-v9"]);
    d.promote("model-v1", "staging", &[]);
    d.refused(&["rollback", "--env", "staging", "--to", "model-v9"], &["model-v9"]);
}

#[test]
fn a_tag_that_is_not_a_snapshot_is_refused_and_changes_nothing() {
    let Some(d) = demo() else { return };
    d.env.git(&d.repo, ["tag", "-a", "-m", "release", "release-1", "main"]);
    d.refused(&["promote", "release-1", "--env", "staging"], &["release-1", "snapshot"]);
}

#[test]
fn an_unknown_environment_is_refused_with_a_clear_error_and_changes_nothing() {
    let Some(d) = demo() else { return };
    for args in [
        vec!["promote", "model-v1", "--env", "qa"],
        vec!["rollback", "--env", "qa"],
        vec!["envs", "log", "qa"],
        vec!["envs", "at", "qa", "2026-11-25"],
    ] {
        d.refused(&args, &["unknown environment 'qa'", "staging"]);
    }
    assert!(d.try_rev("env/qa").is_none());
}

#[test]
fn promoting_the_tag_that_already_serves_exits_0_and_writes_nothing() {
    let Some(d) = demo() else { return };
    d.promote("model-v1", "staging", &[]);
    let before = d.env.refs(&d.repo);
    let objects = d.env.git(&d.repo, ["count-objects", "-v"]);
    let out = d.run(&["promote", "model-v1", "--env", "staging"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("already serves"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let v = d.promote("model-v1", "staging", &["--reason", "again"]);
    assert_eq!(v["unchanged"], true, "{v}");
    assert!(v["commit"].is_null(), "{v}");
    assert_eq!(d.env.refs(&d.repo), before);
    assert_eq!(d.env.git(&d.repo, ["count-objects", "-v"]), objects, "no object was written");
}

// ---------------------------------------------------------------------------- checked-out worktrees

#[test]
fn promote_brings_a_checked_out_env_worktree_up_to_date() {
    let Some(d) = demo() else { return };
    d.promote("model-v1", "staging", &[]);
    let wt = d.env.path("staging");
    d.env.git(&d.repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "env/staging"]);
    assert_model_bytes(&wt, &d.model("model-v1"));
    let v3 = d.third_snapshot();
    d.promote(&v3, "staging", &[]);
    assert_eq!(d.env.git(&wt, ["rev-parse", "HEAD"]).trim(), d.rev("env/staging"));
    assert_eq!(std::fs::read_to_string(wt.join("DEPLOYED_TAG")).unwrap(), format!("{v3}\n"));
    assert_model_bytes(&wt, &d.model(&v3));
    assert_eq!(d.env.git(&wt, ["status", "--porcelain"]), "", "the worktree is clean after the promotion");
    // And back (a file the new deployment lacks goes away).
    d.json(&["rollback", "--env", "staging"]);
    assert!(!wt.join("model/calibration.json").exists());
    assert_model_bytes(&wt, &d.model("model-v1"));
    assert_eq!(d.env.git(&wt, ["status", "--porcelain"]), "");
}

#[test]
fn an_untracked_file_the_promotion_would_overwrite_in_a_checked_out_env_worktree_is_refused() {
    let Some(d) = demo() else { return };
    d.promote("model-v1", "staging", &[]);
    let wt = d.env.path("staging");
    d.env.git(&d.repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "env/staging"]);
    let v3 = d.third_snapshot();
    std::fs::write(wt.join("model/calibration.json"), b"mine, not committed\n").unwrap();
    let err = d.refused(&["promote", &v3, "--env", "staging"], &["model/calibration.json"]);
    assert!(!err.is_empty());
    assert_eq!(std::fs::read(wt.join("model/calibration.json")).unwrap(), b"mine, not committed\n");
    assert_eq!(std::fs::read_to_string(wt.join("DEPLOYED_TAG")).unwrap(), "model-v1\n");
    // Once it is out of the way, the same promotion lands.
    std::fs::remove_file(wt.join("model/calibration.json")).unwrap();
    d.promote(&v3, "staging", &[]);
    assert_model_bytes(&wt, &d.model(&v3));
}
