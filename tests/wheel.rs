//! `pip install mlgit`: the wheel pyproject.toml describes is built with maturin, installed into a
//! fresh virtual environment, and the `mlgit` pip put in the environment's bin runs `--version` and
//! the whole demo. maturin builds in the profile of the binary under test, in the same target
//! folder: `cargo test` does not hold the build lock while tests run, so the wheel reuses what
//! `cargo test` compiled and the test costs seconds (zipping and installing the binary).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, stdout, TestEnv};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The `maturin` on PATH. Under CI (`CI=true`) a missing maturin fails the test; elsewhere the
/// caller skips with a printed reason.
fn maturin() -> Option<&'static str> {
    let ok = Command::new("maturin").arg("--version").output().map(|o| o.status.success());
    if ok.unwrap_or(false) {
        return Some("maturin");
    }
    if ci() {
        panic!("maturin is required when CI=true (pip install maturin==1.16.0, as .ci/run does)");
    }
    eprintln!("skipping: maturin is not installed (pip install maturin==1.16.0)");
    None
}

/// A python3 that makes virtual environments with pip in them (same rule as maturin).
fn has_python_venv() -> bool {
    let ok =
        Command::new("python3").args(["-c", "import ensurepip, venv"]).output().map(|o| o.status.success());
    if ok.unwrap_or(false) {
        return true;
    }
    if ci() {
        panic!("python3 with venv is required when CI=true (apt-get install -y python3-venv)");
    }
    eprintln!("skipping: python3 -m venv does not work here (apt-get install -y python3-venv)");
    false
}

/// The cargo profile the binary under test was built with (`target/<dir>/mlgit`): maturin builds
/// the wheel in it, so nothing is compiled twice.
fn profile_of_binary_under_test() -> String {
    let bin = assert_cmd::cargo::cargo_bin("mlgit");
    let dir = bin.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str()).unwrap_or("debug");
    if dir == "debug" {
        "dev".to_string()
    } else {
        dir.to_string()
    }
}

/// Build the wheel into `out` and return its path. The platform tag is plain `linux` and the
/// manylinux audit is skipped: this wheel is installed on the machine that built it. The release
/// workflow builds the manylinux ones (docs/install.md).
fn build_wheel(out: &Path) -> PathBuf {
    let profile = profile_of_binary_under_test();
    let mut cmd = Command::new("maturin");
    cmd.current_dir(MANIFEST_DIR).args(["build", "--locked", "--profile", &profile, "--out"]).arg(out);
    if cfg!(target_os = "linux") {
        cmd.args(["--compatibility", "linux", "--auditwheel", "skip"]);
    }
    let built = cmd.output().expect("run maturin");
    assert!(built.status.success(), "maturin build failed\n{}\n{}", stdout(&built), stderr(&built));
    let wheels: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "one wheel: {wheels:?}");
    wheels.into_iter().next().unwrap()
}

/// A command isolated as TestEnv isolates mlgit (cleared environment, the test's HOME, fixed
/// dates), whose PATH starts with the virtual environment's bin, as after `activate`.
fn in_venv(env: &TestEnv, venv_bin: &Path, program: &Path) -> Command {
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("PATH", path)
        .env("VIRTUAL_ENV", venv_bin.parent().unwrap())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LANG", "C.UTF-8")
        .env("USER", "tester")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("GIT_AUTHOR_DATE", format!("@{} +0000", env.date.get()))
        .env("GIT_COMMITTER_DATE", format!("@{} +0000", env.date.get()))
        .current_dir(env.tmp.path());
    cmd
}

#[test]
fn the_wheel_installs_into_a_fresh_venv_and_its_mlgit_runs_the_demo() {
    let env = TestEnv::new();
    if maturin().is_none() || !has_python_venv() {
        return;
    }
    let wheel = build_wheel(&env.path("wheels"));
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("mlgit-{VERSION}-py3-none-")), "the version is Cargo.toml's: {name}");

    let venv = env.path("venv");
    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).output().unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let bin = venv.join("bin");
    assert!(!bin.join("mlgit").exists());
    // Offline: the wheel needs nothing from an index.
    let pip =
        in_venv(&env, &bin, &bin.join("pip")).args(["install", "--no-index"]).arg(&wheel).output().unwrap();
    assert!(pip.status.success(), "pip install failed\n{}\n{}", stdout(&pip), stderr(&pip));
    let show = in_venv(&env, &bin, &bin.join("pip")).args(["show", "mlgit"]).output().unwrap();
    assert!(stdout(&show).contains(&format!("Version: {VERSION}\n")), "{}", stdout(&show));

    // The binary pip put in the environment's bin, found on PATH as a user's shell finds it.
    let which = in_venv(&env, &bin, Path::new("sh")).args(["-c", "command -v mlgit"]).output().unwrap();
    assert_eq!(stdout(&which).trim(), bin.join("mlgit").display().to_string());
    let version = in_venv(&env, &bin, Path::new("mlgit")).arg("--version").output().unwrap();
    assert!(version.status.success(), "{}", stderr(&version));
    assert_eq!(stdout(&version), format!("mlgit {VERSION}\n"));

    let demo = in_venv(&env, &bin, Path::new("mlgit")).args(["demo", "d"]).output().unwrap();
    assert!(demo.status.success(), "demo failed\nstdout:\n{}\nstderr:\n{}", stdout(&demo), stderr(&demo));
    assert!(stdout(&demo).contains("merge-tracking"), "{}", stdout(&demo));
    let repo = env.path("d/churn");
    assert_eq!(env.git(&repo, ["show", "env/prod:DEPLOYED_TAG"]), "model-v2\n");
    let tags = env.git(&repo, ["tag", "--list", "model-*"]);
    assert_eq!(tags, "model-v1\nmodel-v2\n");
}
