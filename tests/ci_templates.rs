//! Every job of the default template's CI files (GitHub Actions and GitLab CI), run for real: the
//! shell steps are taken from the YAML as the CI would run them (`bash -eo pipefail` per GitHub
//! step with `$GITHUB_PATH` honoured, GitLab's `before_script` + `script` in one shell), in a clone
//! of a local bare remote (`file://`). mlgit is not on PATH: each job installs it as it would on a
//! runner, `pip install "mlgit==$MLGIT_VERSION"`, here from a folder holding a wheel of the mlgit
//! under test (`PIP_FIND_LINKS`, no index). Each job is then checked by its effect on the remote: a
//! snapshot tag whose model's LFS objects the remote has, tracking merged into the remote's main,
//! the training code's requirements installed.

mod common;
#[path = "common/mlgit_wheel.rs"]
mod mlgit_wheel;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{stderr, stdout, write_files, TestEnv};
use mlgit_wheel::mlgit_wheel_folder;
use serde_yaml::Value;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const GITHUB: &str = "templates/default/main/.github/workflows/mlgit.yml";
const GITLAB: &str = "templates/default/main/.gitlab-ci.yml";

fn yaml(path: &str) -> Value {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rev(env: &TestEnv, repo: &Path, r: &str) -> String {
    env.git(repo, ["rev-parse", r]).trim().to_string()
}

/// A python3 that can make a virtual environment: required under CI, else the test skips.
fn has_python_venv() -> bool {
    let ok = Command::new("python3").args(["-m", "venv", "--help"]).output().map(|o| o.status.success());
    if ok.unwrap_or(false) {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("python3 with venv is required when CI=true (apt-get install -y python3-venv)");
    }
    eprintln!("skipping: python3 -m venv does not work here (apt-get install -y python3-venv)");
    false
}

/// A wheel of the package `mlgit_ci_dep` (installable offline), written by Python's zipfile.
fn write_wheel(path: &Path) {
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("mlgit_ci_dep/__init__.py", "VALUE = 1\n")
    d = "mlgit_ci_dep-0.1.dist-info/"
    z.writestr(d + "METADATA", "Metadata-Version: 2.1\nName: mlgit-ci-dep\nVersion: 0.1\n")
    z.writestr(d + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(d + "RECORD", "mlgit_ci_dep/__init__.py,,\n" + d + "METADATA,,\n" + d + "WHEEL,,\n" + d + "RECORD,,\n")
"#;
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let out = Command::new("python3").args(["-c", script, path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// CSV files with a label column, enough for every split to get some.
fn csv_batch(dir: &Path, n: usize) {
    for i in 0..n {
        let label = if i % 3 == 0 { "churn" } else { "stay" };
        let text = format!("age,plan,label\n{},basic,{label}\n{},pro,stay\n", 20 + i, 40 + i);
        write_files(dir, &[(&format!("batch-{i:02}.csv"), text.as_bytes())]);
    }
}

/// The check that the training code's requirements are installed, put in front of a script.
const NEEDS_DEP: &str = "if [ -f requirements.txt ]; then python3 -c 'import mlgit_ci_dep' || { echo 'requirements.txt is not installed' >&2; exit 1; }; fi\n";

fn with_dep_check(script: &str) -> String {
    let (shebang, rest) = script.split_once('\n').unwrap();
    format!("{shebang}\n{NEEDS_DEP}{rest}")
}

/// An mlgit project on a bare remote: raw → clean → split → stable/model, a snapshot model-v1
/// trained here (its model is in this clone only, and on the remote), then training code that
/// needs a Python package (requirements.txt + a wheel) brought onto stable/model. Everything is
/// pushed with `mlgit push`. Returns the remote's URL and folder.
fn project_on_remote(env: &TestEnv) -> (String, PathBuf) {
    let repo = env.init_repo("r");
    let src = env.path("batch-1");
    csv_batch(&src, 12);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "Add batch 1"]);
    env.mlgit_ok(&repo, ["clean"]);
    env.mlgit_ok(&repo, ["split"]);
    env.mlgit_ok(&repo, ["stable", "update"]);
    let st = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", st.to_str().unwrap(), "stable/model"]);
    env.mlgit_ok(&st, ["train-tag", "--materialize", "--", "./train.sh"]);
    env.tick();

    // The code now needs a package: requirements.txt names a wheel that ships with the code.
    let dev = env.path("dev");
    env.git(&repo, ["worktree", "add", "-q", dev.to_str().unwrap(), "dev/model"]);
    write_wheel(&dev.join("wheels/mlgit_ci_dep-0.1-py3-none-any.whl"));
    fs::write(dev.join("requirements.txt"), "./wheels/mlgit_ci_dep-0.1-py3-none-any.whl\n").unwrap();
    for script in ["train.sh", "tests/run.sh"] {
        let text = fs::read_to_string(dev.join(script)).unwrap();
        fs::write(dev.join(script), with_dep_check(&text)).unwrap();
    }
    env.git(&dev, ["add", "-A", "."]);
    env.git(&dev, ["commit", "-q", "-m", "Train with a Python package"]);
    env.tick();
    // A second batch that turns the majority label: model-v2 differs from model-v1.
    let src = env.path("batch-2");
    for i in 0..12 {
        let text = format!("age,plan,label\n{},basic,churn\n{},pro,churn\n", 30 + i, 50 + i);
        write_files(&src, &[(&format!("more-{i:02}.csv"), text.as_bytes())]);
    }
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "Add batch 2"]);
    env.mlgit_ok(&repo, ["clean"]);
    env.mlgit_ok(&repo, ["split"]);
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.tick();

    let bare = env.path("origin.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    env.git(&repo, ["remote", "add", "origin", &url]);
    env.mlgit_ok(&repo, ["push", "origin"]);
    (url, bare)
}

/// A clone as a CI runner makes it: every branch and tag, no LFS content.
fn runner_clone(env: &TestEnv, url: &str, name: &str) -> PathBuf {
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

/// A shell isolated as TestEnv isolates git and mlgit, with `path_first` first on PATH and no
/// mlgit on it (a job installs its own), pip offline with the folder of the mlgit wheel.
fn shell(env: &TestEnv, dir: &Path, path_first: &[String], vars: &[(&str, String)]) -> Command {
    let mut path: Vec<String> = path_first.to_vec();
    path.push(std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("PATH", path.join(":"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LANG", "C.UTF-8")
        .env("USER", "tester")
        .env("CI", "true")
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", mlgit_wheel_folder())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("GIT_AUTHOR_DATE", format!("@{} +0000", env.date.get()))
        .env("GIT_COMMITTER_DATE", format!("@{} +0000", env.date.get()))
        .current_dir(dir);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Whether a step's `if:` holds. Only the form `steps.<id>.outputs.<name> == '<value>'` is
/// understood (any other condition fails the test, which cannot evaluate it); `outputs` holds what
/// earlier steps wrote to `$GITHUB_OUTPUT`, by step id.
fn github_condition_holds(job: &str, cond: &str, outputs: &[(String, String, String)]) -> bool {
    let parsed = cond.strip_prefix("steps.").and_then(|rest| {
        let (id, rest) = rest.split_once(".outputs.")?;
        let (name, value) = rest.split_once(" == ")?;
        Some((id, name, value.strip_prefix('\'')?.strip_suffix('\'')?))
    });
    let Some((id, name, value)) = parsed else {
        panic!("{GITHUB}: job {job} has a step condition this test cannot evaluate: {cond}")
    };
    outputs.iter().any(|(i, n, v)| i == id && n == name && v == value)
}

/// Run a GitHub Actions job: `actions/checkout` is the runner clone (made by the caller); every
/// `run:` step runs in `bash --noprofile --norc -eo pipefail`, and paths a step appends to
/// `$GITHUB_PATH` come first on PATH for the steps after it. A step writes its outputs to its own
/// `$GITHUB_OUTPUT`; a step whose `if:` (on such an output) does not hold is skipped. Any other
/// `uses:` is unknown here. Returns the output of each step that ran.
fn run_github_job(env: &TestEnv, job: &str, dir: &Path, vars: &[(&str, String)]) -> Vec<Output> {
    let doc = yaml(GITHUB);
    let steps = doc["jobs"][job]["steps"].as_sequence().unwrap_or_else(|| panic!("no job {job}"));
    let runner_temp = env.path(&format!("runner-temp-{job}"));
    fs::create_dir_all(&runner_temp).unwrap();
    let github_path = runner_temp.join("github-path");
    fs::write(&github_path, "").unwrap();
    let mut outputs = Vec::new();
    let mut step_outputs: Vec<(String, String, String)> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        if let Some(uses) = step["uses"].as_str() {
            assert!(
                uses.starts_with("actions/checkout@"),
                "{GITHUB}: job {job} uses {uses}, which this test cannot run"
            );
            continue;
        }
        if let Some(cond) = step["if"].as_str() {
            if !github_condition_holds(job, cond, &step_outputs) {
                continue;
            }
        }
        let script = step["run"].as_str().unwrap_or_else(|| panic!("{GITHUB}: a step of {job} has no run"));
        let github_output = runner_temp.join(format!("github-output-{n}"));
        fs::write(&github_output, "").unwrap();
        let mut added: Vec<String> =
            fs::read_to_string(&github_path).unwrap().lines().map(String::from).collect();
        added.reverse();
        let mut all: Vec<(&str, String)> = vec![
            ("RUNNER_TEMP", runner_temp.display().to_string()),
            ("GITHUB_PATH", github_path.display().to_string()),
            ("GITHUB_OUTPUT", github_output.display().to_string()),
        ];
        // The workflow's, the job's and the step's `env:`; an expression (`${{ github.token }}`)
        // becomes a placeholder.
        for scope in [&doc["env"], &doc["jobs"][job]["env"], &step["env"]] {
            for (k, v) in scope.as_mapping().into_iter().flatten() {
                let value = v.as_str().unwrap_or_default();
                let value = if value.contains("${{") { "ci-placeholder" } else { value };
                all.push((k.as_str().unwrap(), value.to_string()));
            }
        }
        all.extend(vars.iter().cloned());
        let out = shell(env, dir, &added, &all)
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{GITHUB}: job {job}, step failed:\n{script}\nstdout:\n{}\nstderr:\n{}",
            stdout(&out),
            stderr(&out)
        );
        if let Some(id) = step["id"].as_str() {
            for line in fs::read_to_string(&github_output).unwrap().lines() {
                let (name, value) =
                    line.split_once('=').unwrap_or_else(|| panic!("bad output line {line:?}"));
                step_outputs.push((id.to_string(), name.to_string(), value.to_string()));
            }
        }
        outputs.push(out);
    }
    outputs
}

/// A GitLab job's shell: its `before_script` (or the one of the job it `extends`) and `script`,
/// in one shell that stops at the first failing line, as the runner does.
fn gitlab_script(job: &str) -> String {
    let doc = yaml(GITLAB);
    let j = &doc[job];
    assert!(j.is_mapping(), "{GITLAB}: no job {job}");
    let lines = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| s.iter().map(|l| l.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut before = lines(&j["before_script"]);
    if before.is_empty() {
        if let Some(parent) = j["extends"].as_str() {
            before = lines(&doc[parent]["before_script"]);
        }
    }
    let script = lines(&j["script"]);
    assert!(!script.is_empty(), "{GITLAB}: job {job} has no script");
    // The file's `variables:`, which the runner puts in the job's environment; a variable set in
    // the project's settings (here: the test's) wins over the file's.
    let mut vars = String::new();
    for (k, v) in doc["variables"].as_mapping().into_iter().flatten() {
        let (k, v) = (k.as_str().unwrap(), v.as_str().unwrap());
        assert!(!v.contains(['"', '$', '`', '\\']), "{GITLAB}: variable {k} needs quoting here");
        vars.push_str(&format!("export {k}=\"${{{k}-{v}}}\"\n"));
    }
    format!("set -e\n{vars}{}\n{}\n", before.join("\n"), script.join("\n"))
}

/// GitLab's variables for a pushing job, with the remote URL the before_script writes (a project
/// access token over http) sent to the local bare remote by an `insteadOf` rule in the test's
/// HOME, and the LFS objects to the bare remote by `lfs.url`.
fn gitlab_vars(env: &TestEnv, clone: &Path, url: &str) -> Vec<(&'static str, String)> {
    let token_url = "http://oauth2:secret@gitlab.test:80/group/project.git";
    env.git(&env.home, ["config", "--global", &format!("url.{url}.insteadOf"), token_url]);
    env.git(clone, ["config", "lfs.url", url]);
    vec![
        ("CI_SERVER_PROTOCOL", "http".into()),
        ("CI_SERVER_HOST", "gitlab.test".into()),
        ("CI_SERVER_PORT", "80".into()),
        ("CI_PROJECT_PATH", "group/project".into()),
        ("MLGIT_PUSH_TOKEN", "secret".into()),
        ("TMPDIR", env.path("gitlab-tmp").display().to_string()),
    ]
}

fn run_gitlab_job(env: &TestEnv, job: &str, dir: &Path, vars: &[(&str, String)]) -> Output {
    let script = gitlab_script(job);
    if let Some((_, tmp)) = vars.iter().find(|(k, _)| *k == "TMPDIR") {
        fs::create_dir_all(tmp).unwrap();
    }
    let out = shell(env, dir, &[], vars).args(["--noprofile", "--norc", "-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{GITLAB}: job {job} failed:\n{script}\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// The remote has `tag`, every LFS object its tree points to, and its stable/model did not move.
fn assert_remote_has_snapshot(env: &TestEnv, bare: &Path, tag: &str, stable_before: &str) {
    assert_eq!(rev(env, bare, "stable/model"), stable_before, "only the tag was pushed, not stable/model");
    let tree = env.git(bare, ["ls-tree", "-r", tag]);
    assert!(tree.contains("requirements.txt"), "{tag} was trained on the code that needs the package");
    let mut models = 0;
    for line in tree.lines() {
        let (meta, path) = line.split_once('\t').unwrap();
        let blob = meta.split_whitespace().nth(2).unwrap();
        let text = env.git(bare, ["cat-file", "-p", blob]);
        let Some(oid) = text.lines().find_map(|l| l.strip_prefix("oid sha256:")) else { continue };
        let object = bare.join(format!("lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4]));
        assert!(object.is_file(), "the remote lacks the LFS object of {tag}:{path}");
        models += path.starts_with("model/") as usize;
    }
    assert!(models > 0, "{tag} has a model in LFS");
    assert_ne!(
        env.git(bare, ["rev-parse", &format!("{tag}:model")]),
        env.git(bare, ["rev-parse", "model-v1:model"]),
        "a model unlike model-v1's, whose objects the CI clone lacks"
    );
}

/// The tags recorded in the remote's main (tracking/runs.json).
fn tracked_tags(env: &TestEnv, bare: &Path) -> String {
    env.git(bare, ["show", "main:tracking/runs.json"])
}

#[test]
fn every_github_job_runs_against_a_bare_remote() {
    let env = TestEnv::new();
    if !has_python_venv() {
        return;
    }
    let (url, bare) = project_on_remote(&env);
    let stable_before = rev(&env, &bare, "stable/model");

    // test: a pull request from dev/model; the requirements are installed before the self-test.
    let pr = runner_clone(&env, &url, "gh-test");
    env.git(&pr, ["checkout", "-q", "--detach", "origin/dev/model"]);
    run_github_job(&env, "test", &pr, &[]);
    let path_file = env.path("runner-temp-test/github-path");
    assert!(
        fs::read_to_string(&path_file).unwrap().contains("venv/bin"),
        "the test job installed requirements.txt"
    );

    // train: a push to stable/model, in a clone that has none of model-v1's objects.
    let ci = runner_clone(&env, &url, "gh-train");
    env.git(&ci, ["checkout", "-q", "-B", "stable/model", "origin/stable/model"]);
    let vars = [
        ("GITHUB_REF_NAME", "stable/model".to_string()),
        ("GITHUB_REF", "refs/heads/stable/model".to_string()),
        ("GITHUB_SHA", stable_before.clone()),
    ];
    run_github_job(&env, "train", &ci, &vars);
    let installed = env.path("runner-temp-train/mlgit/bin/mlgit");
    assert!(installed.is_file(), "the job installed mlgit with pip (no mlgit is on PATH)");
    assert!(!model_v1_object_is_in(&env, &ci), "pulled only what stable/model needs");
    assert_remote_has_snapshot(&env, &bare, "model-v2", &stable_before);

    // merge-tracking: the tag push's run, checked out at the tag. Another job pushes main while
    // this one merges: the first push is refused, the loop pulls (merging both sides) and retries.
    let mt = runner_clone(&env, &url, "gh-merge");
    env.git(&mt, ["checkout", "-q", "--detach", "model-v2"]);
    let other = another_jobs_main(&env, &url, &bare);
    let vars =
        [("GITHUB_REF_NAME", "model-v2".to_string()), ("GITHUB_REF", "refs/tags/model-v2".to_string())];
    let outputs = run_github_job(&env, "merge-tracking", &mt, &vars);
    let last = outputs.last().unwrap();
    assert!(stdout(last).contains("main moved on the remote; retrying (1/5)"), "{}", stdout(last));
    let runs = tracked_tags(&env, &bare);
    assert!(runs.contains("model-v1") && runs.contains("model-v2"), "{runs}");
    let main = rev(&env, &bare, "main");
    env.git(&bare, ["merge-base", "--is-ancestor", &other, &main]);
    assert!(
        env.git(&bare, ["ls-tree", "-r", "--name-only", "main"]).contains("docs/other-job.md"),
        "nothing lost"
    );
}

/// A commit on main made by "another job", kept on the remote as `refs/other/main`, and a
/// pre-receive hook that moves the remote's main to it during the first push to main (as if the
/// other job had pushed first; git then refuses that push, since main is no longer where it was).
fn another_jobs_main(env: &TestEnv, url: &str, bare: &Path) -> String {
    let other = runner_clone(env, url, "other-job");
    env.git(&other, ["checkout", "-q", "main"]);
    write_files(&other, &[("docs/other-job.md", b"written by another job\n")]);
    env.git(&other, ["add", "docs/other-job.md"]);
    env.git(&other, ["commit", "-q", "-m", "another job"]);
    env.git(&other, ["push", "-q", "--no-verify", "origin", "HEAD:refs/other/main"]);
    let id = rev(env, &other, "HEAD");
    let flag = env.path("other-job-pushed");
    let hook = bare.join("hooks/pre-receive");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\nif grep -q ' refs/heads/main$' && ! [ -e '{flag}' ]; then\n  touch '{flag}'\n  env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main {id}\nfi\nexit 0\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    id
}

/// Whether model-v1's model object is in a clone's store.
fn model_v1_object_is_in(env: &TestEnv, clone: &Path) -> bool {
    let tree = env.git(clone, ["ls-tree", "-r", "model-v1", "model/"]);
    tree.lines().any(|line| {
        let blob = line.split_whitespace().nth(2).unwrap();
        let text = env.git(clone, ["cat-file", "-p", blob]);
        text.lines().find_map(|l| l.strip_prefix("oid sha256:")).is_some_and(|oid| {
            clone.join(format!(".git/lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4])).exists()
        })
    })
}

#[test]
fn every_gitlab_job_runs_against_a_bare_remote() {
    let env = TestEnv::new();
    if !has_python_venv() {
        return;
    }
    let (url, bare) = project_on_remote(&env);
    let stable_before = rev(&env, &bare, "stable/model");

    let mr = runner_clone(&env, &url, "gl-test");
    env.git(&mr, ["checkout", "-q", "--detach", "origin/dev/model"]);
    let tmp = env.path("gl-test-tmp");
    run_gitlab_job(&env, "test", &mr, &[("TMPDIR", tmp.display().to_string())]);
    assert!(tmp.join("mlgit-venv/bin/python3").exists(), "the test job installed requirements.txt");

    // train: GitLab checks out the pushed commit detached.
    let ci = runner_clone(&env, &url, "gl-train");
    env.git(&ci, ["checkout", "-q", "--detach", &stable_before]);
    let mut vars = gitlab_vars(&env, &ci, &url);
    vars.push(("CI_COMMIT_BRANCH", "stable/model".into()));
    vars.push(("CI_COMMIT_SHA", stable_before.clone()));
    run_gitlab_job(&env, "train", &ci, &vars);
    let installed =
        fs::read_dir(env.path("gitlab-tmp")).unwrap().any(|e| e.unwrap().path().join("bin/mlgit").is_file());
    assert!(installed, "the job installed mlgit with pip (no mlgit is on PATH)");
    assert!(!model_v1_object_is_in(&env, &ci), "pulled only what stable/model needs");
    assert_remote_has_snapshot(&env, &bare, "model-v2", &stable_before);

    let mt = runner_clone(&env, &url, "gl-merge");
    env.git(&mt, ["checkout", "-q", "--detach", "model-v2"]);
    let mut vars = gitlab_vars(&env, &mt, &url);
    vars.push(("CI_COMMIT_TAG", "model-v2".into()));
    run_gitlab_job(&env, "merge-tracking", &mt, &vars);
    let runs = tracked_tags(&env, &bare);
    assert!(runs.contains("model-v1") && runs.contains("model-v2"), "{runs}");
}

/// A project on a bare remote whose snapshot model-v1 was trained on 600 records (age, plan,
/// label), and a production batch on monitoring/prod in which age moved up by 30 years: what
/// the drift jobs see after the serving side pushed the batch.
fn monitored_project_on_remote(env: &TestEnv) -> (String, PathBuf) {
    let repo = env.init_repo("m");
    let src = env.path("train-data");
    let mut text = String::from("id,age,plan,label\n");
    for i in 0..600 {
        let plan = ["basic", "pro", "team"][i % 3];
        text.push_str(&format!(
            "{i},{},{plan},{}\n",
            20 + (i * 7) % 50,
            if i % 4 == 0 { "churn" } else { "stay" }
        ));
    }
    write_files(&src, &[("customers.csv", text.as_bytes())]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "customers"]);
    env.mlgit_ok(&repo, ["clean"]);
    env.mlgit_ok(&repo, ["split", "--key", "id", "--label", "label"]);
    env.mlgit_ok(&repo, ["stable", "update"]);
    let st = env.path("m-stable");
    env.git(&repo, ["worktree", "add", "-q", st.to_str().unwrap(), "stable/model"]);
    env.mlgit_ok(&st, ["train-tag", "--materialize", "--", "./train.sh"]);
    env.tick();
    let mut batch = String::from("request_id,age,plan,prediction,model_tag\n");
    for i in 0..400 {
        let plan = ["basic", "pro", "team"][i % 3];
        batch.push_str(&format!("r{i},{},{plan},stay,model-v1\n", 50 + (i * 7) % 50));
    }
    let b = env.path("requests.csv");
    fs::write(&b, batch).unwrap();
    env.mlgit_ok(&repo, ["monitor", "log", "--env", "prod", "--source", b.to_str().unwrap()]);
    let bare = env.path("monitored.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    env.git(&repo, ["remote", "add", "origin", &url]);
    env.mlgit_ok(&repo, ["push", "origin"]);
    (url, bare)
}

/// The remote's monitoring/prod holds one drift report that raised an alert on `age`.
fn assert_remote_has_alert_report(env: &TestEnv, bare: &Path) {
    let files = env.git(bare, ["ls-tree", "-r", "--name-only", "monitoring/prod", "alerts/"]);
    let reports: Vec<&str> = files.lines().collect();
    assert_eq!(reports.len(), 1, "{files}");
    let report: serde_json::Value =
        serde_json::from_str(&env.git(bare, ["show", &format!("monitoring/prod:{}", reports[0])])).unwrap();
    assert_eq!(report["alert"], true, "{report}");
    assert!(report["alerts"].as_array().unwrap().iter().any(|a| a["feature"] == "age"), "{report}");
    let msg = env.git(bare, ["log", "-1", "--format=%B", "monitoring/prod"]);
    assert!(msg.contains("Mlgit-Monitoring: alerts") && msg.contains("Mlgit-Alert: yes"), "{msg}");
}

#[test]
fn github_drift_job_pushes_the_report_and_flags_the_alert() {
    let env = TestEnv::new();
    if !has_python_venv() {
        return;
    }
    let (url, bare) = monitored_project_on_remote(&env);
    let ci = runner_clone(&env, &url, "gh-drift");
    env.git(&ci, ["checkout", "-q", "-B", "monitoring/prod", "origin/monitoring/prod"]);
    // The job's steps that run on every push (the retraining and failing steps have `if:`
    // conditions on this step's outputs, checked below).
    let doc = yaml(GITHUB);
    let job = &doc["jobs"]["drift"];
    let cond = job["if"].as_str().unwrap();
    assert!(cond.contains("refs/heads/monitoring/") && cond.contains("Mlgit-Monitoring: alerts"), "{cond}");
    let output = env.path("github-output");
    fs::write(&output, "").unwrap();
    let runner_temp = env.path("runner-temp-drift");
    fs::create_dir_all(&runner_temp).unwrap();
    let github_path = runner_temp.join("github-path");
    fs::write(&github_path, "").unwrap();
    let mut vars = vec![
        ("GITHUB_REF_NAME", "monitoring/prod".to_string()),
        ("GITHUB_REF", "refs/heads/monitoring/prod".to_string()),
        ("GITHUB_OUTPUT", output.display().to_string()),
        ("GITHUB_REPOSITORY", "acme/churn".to_string()),
        ("GH_TOKEN", "ci-placeholder".to_string()),
        ("RUNNER_TEMP", runner_temp.display().to_string()),
        ("GITHUB_PATH", github_path.display().to_string()),
    ];
    for (k, v) in doc["env"].as_mapping().into_iter().flatten() {
        vars.push((k.as_str().unwrap(), v.as_str().unwrap().to_string()));
    }
    let mut ran = 0;
    for step in job["steps"].as_sequence().unwrap() {
        let (Some(script), None) = (step["run"].as_str(), step["if"].as_str()) else { continue };
        let mut added: Vec<String> =
            fs::read_to_string(&github_path).unwrap().lines().map(String::from).collect();
        added.reverse();
        let out = shell(&env, &ci, &added, &vars)
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "step failed:\n{script}\n{}\n{}", stdout(&out), stderr(&out));
        ran += 1;
    }
    assert!(ran >= 2, "the install and drift steps ran");
    let outputs = fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("alert=yes") && outputs.contains("env=prod"), "{outputs}");
    let fail = job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["if"].as_str() == Some("steps.drift.outputs.alert == 'yes'"));
    assert!(
        fail.is_some_and(|s| s["run"].as_str().unwrap().contains("exit 3")),
        "a step fails the job on an alert"
    );
    assert_remote_has_alert_report(&env, &bare);
}

#[test]
fn gitlab_drift_job_pushes_the_report_and_fails_on_the_alert() {
    let env = TestEnv::new();
    if !has_python_venv() {
        return;
    }
    let (url, bare) = monitored_project_on_remote(&env);
    let ci = runner_clone(&env, &url, "gl-drift");
    let sha = env.git(&ci, ["rev-parse", "origin/monitoring/prod"]).trim().to_string();
    env.git(&ci, ["checkout", "-q", "--detach", &sha]);
    let mut vars = gitlab_vars(&env, &ci, &url);
    vars.push(("CI_COMMIT_BRANCH", "monitoring/prod".into()));
    vars.push(("CI_COMMIT_SHA", sha));
    let script = gitlab_script("drift");
    fs::create_dir_all(env.path("gitlab-tmp")).unwrap();
    let out = shell(&env, &ci, &[], &vars).args(["--noprofile", "--norc", "-c", &script]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "the job fails on the alert:\n{}\n{}", stdout(&out), stderr(&out));
    assert_remote_has_alert_report(&env, &bare);
    // The report's own push starts a pipeline too: it ends at once, with nothing compared.
    let report_sha = env.git(&bare, ["rev-parse", "monitoring/prod"]).trim().to_string();
    env.git(&ci, ["fetch", "-q", "origin"]);
    let mut vars2 = gitlab_vars(&env, &ci, &url);
    vars2.push(("CI_COMMIT_BRANCH", "monitoring/prod".into()));
    vars2.push(("CI_COMMIT_SHA", report_sha.clone()));
    let out = shell(&env, &ci, &[], &vars2).args(["--noprofile", "--norc", "-c", &script]).output().unwrap();
    assert!(out.status.success() && stdout(&out).contains("nothing to compare"), "{}", stderr(&out));
    assert_eq!(env.git(&bare, ["rev-parse", "monitoring/prod"]).trim(), report_sha);
}

/// A project on a bare remote whose snapshot model-v1 (trained on a table split, so data/test
/// holds customers.csv) was promoted to staging; env/prod still holds only init's README.
/// Everything is pushed with `mlgit push`. Returns the remote's URL and folder, and the bytes of
/// model-v1's model/model.json.
fn promoted_project_on_remote(env: &TestEnv) -> (String, PathBuf, Vec<u8>) {
    let repo = env.init_repo("d");
    let src = env.path("deploy-data");
    let mut text = String::from("id,age,plan,label\n");
    for i in 0..200 {
        let plan = ["basic", "pro", "team"][i % 3];
        text.push_str(&format!(
            "{i},{},{plan},{}\n",
            20 + (i * 7) % 50,
            if i % 4 == 0 { "churn" } else { "stay" }
        ));
    }
    write_files(&src, &[("customers.csv", text.as_bytes())]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "customers"]);
    env.mlgit_ok(&repo, ["clean"]);
    env.mlgit_ok(&repo, ["split", "--key", "id", "--label", "label"]);
    env.mlgit_ok(&repo, ["stable", "update"]);
    let st = env.path("d-stable");
    env.git(&repo, ["worktree", "add", "-q", st.to_str().unwrap(), "stable/model"]);
    env.mlgit_ok(&st, ["train-tag", "--materialize", "--", "./train.sh"]);
    let model = fs::read(st.join("model/model.json")).unwrap();
    env.tick();
    env.mlgit_ok(&repo, ["promote", "model-v1", "--env", "staging", "--reason", "first deployment"]);
    let bare = env.path("deployed.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    env.git(&repo, ["remote", "add", "origin", &url]);
    env.mlgit_ok(&repo, ["push", "origin"]);
    (url, bare, model)
}

/// Whether the LFS object of `rev:path` is in a clone's store.
fn lfs_object_is_in(env: &TestEnv, clone: &Path, rev: &str, path: &str) -> bool {
    let text = env.git(clone, ["cat-file", "-p", &format!("{rev}:{path}")]);
    let oid = text.lines().find_map(|l| l.strip_prefix("oid sha256:")).expect("an LFS pointer");
    clone.join(format!(".git/lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4])).exists()
}

/// The job's "smoke test: N predictions for M rows" line says N == M > 0.
fn assert_smoke_test_passed(out: &str) {
    let line = out.lines().find(|l| l.starts_with("smoke test: ")).unwrap_or_else(|| panic!("{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[2], words[5], "{line}");
    assert!(words[2].parse::<u32>().unwrap() > 0, "{line}");
    assert!(line.ends_with("rows of data/test/customers.csv"), "{line}");
}

/// What every deploy job must do: run on pushes to env/*, read the deployment record, have a
/// marked placeholder, and smoke-test the model with predict.sh.
#[test]
fn deploy_jobs_run_on_env_pushes_read_the_record_and_run_predict_sh() {
    let gh = yaml(GITHUB);
    let branches = gh["on"]["push"]["branches"].as_sequence().unwrap();
    assert!(branches.iter().any(|b| b.as_str() == Some("env/**")), "{branches:?}");
    let job = &gh["jobs"]["deploy"];
    assert!(job["if"].as_str().unwrap().contains("startsWith(github.ref, 'refs/heads/env/')"));
    let steps = job["steps"].as_sequence().unwrap();
    let scripts: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let gl = yaml(GITLAB);
    let gl_job = &gl["deploy"];
    let rule = &gl_job["rules"][0];
    assert_eq!(rule["if"].as_str(), Some("$CI_COMMIT_BRANCH =~ /^env\\//"));
    assert_eq!(
        rule["exists"][0].as_str(),
        Some("DEPLOYMENT.yaml"),
        "init's README-only commit deploys nothing"
    );
    assert!(gl["stages"].as_sequence().unwrap().iter().any(|s| s.as_str() == gl_job["stage"].as_str()));
    let gl_script = gitlab_script("deploy");
    let gh_script = scripts.join("\n");
    for (path, script) in [(GITHUB, &gh_script), (GITLAB, &gl_script)] {
        for needed in ["DEPLOYMENT.yaml", "DEPLOYED_TAG", "./predict.sh", "PLACEHOLDER", "mlgit fetch"] {
            assert!(script.contains(needed), "{path}: the deploy job never mentions {needed}");
        }
    }
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join(GITLAB)).unwrap();
    assert!(text.contains("# ---- PLACEHOLDER") && text.contains("# ---- end of placeholder"));
    // GitHub's skipped steps: everything after the record, when there is none.
    for step in steps.iter().skip_while(|s| s["id"].as_str() != Some("record")).skip(1) {
        assert_eq!(step["if"].as_str(), Some("steps.record.outputs.deploy == 'yes'"), "{step:?}");
    }
}

#[test]
fn github_deploy_job_gets_the_promoted_model_and_smoke_tests_it() {
    let env = TestEnv::new();
    if !has_python_venv() {
        return;
    }
    let (url, bare, model) = promoted_project_on_remote(&env);
    let before = env.refs(&bare);
    // As actions/checkout leaves it: the pushed env branch checked out, no local main.
    let ci = runner_clone(&env, &url, "gh-deploy");
    env.git(&ci, ["checkout", "-q", "-B", "env/staging", "origin/env/staging"]);
    env.git(&ci, ["branch", "-q", "-D", "main"]);
    let vars = [
        ("GITHUB_REF_NAME", "env/staging".to_string()),
        ("GITHUB_REF", "refs/heads/env/staging".to_string()),
        ("GITHUB_SHA", rev(&env, &ci, "HEAD")),
    ];
    let outputs = run_github_job(&env, "deploy", &ci, &vars);
    let out: String = outputs.iter().map(stdout).collect();
    assert!(out.contains("deploying model-v1 (snapshot "), "{out}");
    assert!(out.contains("PLACEHOLDER: would deploy model-v1 to staging"), "{out}");
    assert_smoke_test_passed(&out);
    assert_eq!(fs::read(ci.join("model/model.json")).unwrap(), model, "the model's bytes, not its pointer");
    assert!(lfs_object_is_in(&env, &ci, "HEAD", "data/test/customers.csv"), "the sample came down");
    assert!(!lfs_object_is_in(&env, &ci, "HEAD", "data/train/customers.csv"), "the training data did not");
    assert_eq!(env.refs(&bare), before, "deploying pushes nothing");

    // env/prod holds only init's README: the job says so and runs none of the other steps.
    let prod = runner_clone(&env, &url, "gh-deploy-prod");
    env.git(&prod, ["checkout", "-q", "-B", "env/prod", "origin/env/prod"]);
    let vars = [
        ("GITHUB_REF_NAME", "env/prod".to_string()),
        ("GITHUB_REF", "refs/heads/env/prod".to_string()),
        ("GITHUB_SHA", rev(&env, &prod, "HEAD")),
    ];
    let outputs = run_github_job(&env, "deploy", &prod, &vars);
    assert_eq!(outputs.len(), 1, "only the record step ran");
    assert!(stdout(&outputs[0]).contains("env/prod has no deployment yet"), "{}", stdout(&outputs[0]));
}

#[test]
fn gitlab_deploy_job_gets_the_promoted_model_and_smoke_tests_it() {
    let env = TestEnv::new();
    if !has_python_venv() {
        return;
    }
    let (url, bare, model) = promoted_project_on_remote(&env);
    let before = env.refs(&bare);
    // GitLab checks out the pushed commit detached.
    let ci = runner_clone(&env, &url, "gl-deploy");
    let sha = rev(&env, &ci, "origin/env/staging");
    env.git(&ci, ["checkout", "-q", "--detach", &sha]);
    let mut vars = gitlab_vars(&env, &ci, &url);
    vars.push(("CI_COMMIT_BRANCH", "env/staging".into()));
    vars.push(("CI_COMMIT_SHA", sha));
    let out = stdout(&run_gitlab_job(&env, "deploy", &ci, &vars));
    assert!(out.contains("deploying model-v1 (snapshot "), "{out}");
    assert!(out.contains("PLACEHOLDER: would deploy model-v1 to staging"), "{out}");
    assert_smoke_test_passed(&out);
    assert_eq!(fs::read(ci.join("model/model.json")).unwrap(), model, "the model's bytes, not its pointer");
    assert!(
        !lfs_object_is_in(&env, &ci, "HEAD", "data/train/customers.csv"),
        "the training data did not come down"
    );
    assert_eq!(env.refs(&bare), before, "deploying pushes nothing");
}

/// Both templates install the mlgit release they pin, with pip: one variable per file says which
/// (the version of the mlgit that writes them), every job that runs mlgit installs it, and none
/// builds it with cargo.
#[test]
fn ci_templates_install_the_pinned_mlgit_with_pip_never_with_cargo() {
    let gh = yaml(GITHUB);
    let gl = yaml(GITLAB);
    for (path, version) in
        [(GITHUB, &gh["env"]["MLGIT_VERSION"]), (GITLAB, &gl["variables"]["MLGIT_VERSION"])]
    {
        assert_eq!(version.as_str(), Some(env!("CARGO_PKG_VERSION")), "{path} pins this mlgit's version");
        let text = fs::read_to_string(Path::new(MANIFEST_DIR).join(path)).unwrap();
        assert!(!text.contains("cargo install"), "{path} builds mlgit with cargo");
        assert_eq!(text.matches("MLGIT_VERSION: ").count(), 1, "{path}: one variable says the version");
    }
    let pip = r#"python3 -m pip install --quiet --disable-pip-version-check --target "#;
    let pip = |s: &str| s.contains(pip) && s.contains(r#""mlgit==$MLGIT_VERSION""#);
    for (name, job) in gh["jobs"].as_mapping().unwrap() {
        let scripts: Vec<&str> =
            job["steps"].as_sequence().unwrap().iter().filter_map(|s| s["run"].as_str()).collect();
        let runs_mlgit = scripts.iter().any(|s| s.lines().any(|l| l.trim_start().starts_with("mlgit ")));
        let installs = scripts.iter().position(|s| pip(s));
        let first_use = scripts.iter().position(|s| s.lines().any(|l| l.trim_start().starts_with("mlgit ")));
        assert_eq!(runs_mlgit, installs.is_some(), "{GITHUB}: job {name:?}");
        assert!(installs <= first_use, "{GITHUB}: job {name:?} installs mlgit before it runs it");
    }
    let before = gl[".mlgit"]["before_script"][0].as_str().unwrap();
    assert!(pip(before), "{before}");
    for (name, job) in gl.as_mapping().unwrap() {
        let script = format!("{:?}", job["script"]);
        if script.contains("mlgit ") {
            assert_eq!(job["extends"].as_str(), Some(".mlgit"), "{GITLAB}: job {name:?} installs mlgit");
        }
    }
}
