//! mlgit's own release (.github/workflows/release.yml): the workflow cannot run here, so it is
//! checked as a document (valid YAML, every platform built, shell steps that parse, only commands
//! scripts/release.sh knows), and the steps it runs besides the builds, scripts/release.sh, run
//! for real on the binary under test: archives, SHA256SUMS checked by `sha256sum -c`, the tag check.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{stderr, stdout, TestEnv};
use serde_yaml::Value;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const WORKFLOW: &str = ".github/workflows/release.yml";

fn release_sh(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(Path::new(MANIFEST_DIR).join("scripts/release.sh"))
        .args(args)
        .output()
        .expect("run scripts/release.sh")
}

fn release_sh_ok(args: &[&str]) -> String {
    let out = release_sh(args);
    assert!(out.status.success(), "release.sh {args:?} failed\n{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Every shell command of the workflow: `run:` steps and maturin-action's `before-script-linux`.
fn shell_steps(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, job) in doc["jobs"].as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            for script in [&step["run"], &step["with"]["before-script-linux"]] {
                if let Some(s) = script.as_str() {
                    out.push((name.as_str().unwrap().to_string(), s.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn release_workflow_is_valid_yaml_that_builds_every_platform_with_known_steps() {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join(WORKFLOW)).unwrap();
    let doc: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{WORKFLOW} is not valid YAML: {e}"));
    assert_eq!(doc["on"]["push"]["tags"][0].as_str(), Some("v*"), "a tag v<version> releases");
    let jobs = &doc["jobs"];
    let targets = |job: &str| -> Vec<String> {
        jobs[job]["strategy"]["matrix"]["target"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{WORKFLOW}: job {job} has no target matrix"))
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(targets("linux"), ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]);
    assert!(targets("macos").iter().any(|t| t.ends_with("apple-darwin")));
    assert!(targets("windows").iter().any(|t| t.contains("windows")));
    for (job, runner) in [("linux", "ubuntu-"), ("macos", "macos-"), ("windows", "windows-")] {
        assert!(jobs[job]["runs-on"].as_str().unwrap().starts_with(runner), "{job}");
        let steps = jobs[job]["steps"].as_sequence().unwrap();
        let build = steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("PyO3/maturin-action@")))
            .unwrap_or_else(|| panic!("{WORKFLOW}: job {job} builds no wheel with maturin"));
        let args = build["with"]["args"].as_str().unwrap();
        assert!(args.contains("--release") && args.contains("--locked"), "{job}: {args}");
        if job == "linux" {
            assert_eq!(build["with"]["manylinux"].as_str(), Some("2_28"), "manylinux wheels");
            assert!(args.contains("--features vendored-openssl"), "{args}");
        }
        assert!(
            steps.iter().any(|s| s["run"].as_str().is_some_and(|r| r.contains("scripts/release.sh archive"))),
            "{WORKFLOW}: job {job} makes no release archive"
        );
    }
    // Every action is pinned to a major version (or PyPI's publishing branch).
    for (name, job) in jobs.as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            if let Some(uses) = step["uses"].as_str() {
                let (_, at) =
                    uses.split_once('@').unwrap_or_else(|| panic!("{name:?}: {uses} is not pinned"));
                assert!(at.starts_with('v') || at == "release/v1", "{name:?}: {uses}");
            }
        }
    }
    // Each shell step parses, and calls only the commands scripts/release.sh has.
    let usage = stderr(&release_sh(&[]));
    for (job, script) in shell_steps(&doc) {
        let parsed = Command::new("bash").args(["-n", "-c", &script]).output().unwrap();
        assert!(
            parsed.status.success(),
            "{WORKFLOW}: a step of {job} does not parse:\n{script}\n{}",
            stderr(&parsed)
        );
        for rest in script.split("scripts/release.sh ").skip(1) {
            let command: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            assert!(
                usage.contains(&format!(" {command}")),
                "{job}: release.sh has no command {command}: {usage}"
            );
        }
    }
    let publish: String =
        shell_steps(&doc).into_iter().filter(|(j, _)| j == "publish").map(|(_, s)| s).collect();
    assert!(publish.contains("scripts/release.sh checksums") && publish.contains("sha256sum -c SHA256SUMS"));
    let needs: Vec<&str> =
        jobs["publish"]["needs"].as_sequence().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert_eq!(needs, ["linux", "macos", "windows", "sdist"], "publishing waits for every build");
}

/// pyproject.toml builds a wheel of the binary alone, whose version is Cargo.toml's.
#[test]
fn pyproject_builds_a_bin_wheel_versioned_by_cargo_toml() {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join("pyproject.toml")).unwrap();
    assert!(text.contains("\nbindings = \"bin\"\n"), "{text}");
    assert!(text.contains("\ndynamic = [\"version\"]\n"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("version")), "no second version to keep in step");
    assert_eq!(release_sh_ok(&["version"]), format!("{VERSION}\n"));
}

#[test]
fn release_tag_must_be_the_cargo_version() {
    assert!(release_sh_ok(&["check-tag", &format!("v{VERSION}")]).contains("matches"));
    let out = release_sh(&["check-tag", "v0.0.0-not-this"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("does not match Cargo.toml's version {VERSION}")),
        "{}",
        stderr(&out)
    );
}

/// The binary under test without its debug info (a tenth of the size to compress), or as is.
fn release_binary(env: &TestEnv) -> PathBuf {
    let bin = assert_cmd::cargo::cargo_bin("mlgit");
    let stripped = env.path("mlgit-stripped");
    match Command::new("strip").arg("-o").arg(&stripped).arg(&bin).status() {
        Ok(s) if s.success() => stripped,
        _ => bin,
    }
}

#[test]
fn release_archives_hold_the_binary_and_sha256sums_checks_them() {
    let env = TestEnv::new();
    if Command::new("sha256sum").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "sha256sum is required when CI=true (coreutils)"
        );
        eprintln!("skipping: sha256sum is not installed");
        return;
    }
    let binary = release_binary(&env);
    let out = env.path("release");
    let out_s = out.to_str().unwrap();
    let linux = "x86_64-unknown-linux-gnu";
    let tgz = release_sh_ok(&["archive", binary.to_str().unwrap(), linux, out_s]);
    assert_eq!(tgz.trim(), format!("{out_s}/mlgit-{VERSION}-{linux}.tar.gz"));
    // A Windows target gets a zip (the bytes are this binary's: only the packing is checked).
    let windows = "x86_64-pc-windows-msvc";
    let zip = release_sh_ok(&["archive", binary.to_str().unwrap(), windows, out_s]);
    assert_eq!(zip.trim(), format!("{out_s}/mlgit-{VERSION}-{windows}.zip"));
    fs::write(out.join("mlgit-0.0.0-py3-none-any.whl"), b"a wheel").unwrap();
    fs::write(out.join("notes.txt"), b"not a release file").unwrap();

    let sums = release_sh_ok(&["checksums", out_s]);
    assert_eq!(fs::read_to_string(out.join("SHA256SUMS")).unwrap(), sums);
    let names: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    assert_eq!(
        names,
        [
            "mlgit-0.0.0-py3-none-any.whl".to_string(),
            format!("mlgit-{VERSION}-{windows}.zip"),
            format!("mlgit-{VERSION}-{linux}.tar.gz"),
        ]
    );
    let check = Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&out).output().unwrap();
    assert!(check.status.success(), "{}\n{}", stdout(&check), stderr(&check));
    assert_eq!(stdout(&check).matches(": OK\n").count(), 3, "{}", stdout(&check));

    // What a user unpacks runs.
    let unpacked = env.path("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    let tar = Command::new("tar").arg("-xzf").arg(tgz.trim()).arg("-C").arg(&unpacked).output().unwrap();
    assert!(tar.status.success(), "{}", stderr(&tar));
    let dir = unpacked.join(format!("mlgit-{VERSION}-{linux}"));
    assert!(dir.join("README.md").is_file());
    let version = Command::new(dir.join("mlgit")).arg("--version").output().unwrap();
    assert_eq!(stdout(&version), format!("mlgit {VERSION}\n"));
    let listing = Command::new("python3").args(["-m", "zipfile", "-l", zip.trim()]).output().unwrap();
    assert!(
        stdout(&listing).contains(&format!("mlgit-{VERSION}-{windows}/mlgit.exe")),
        "{}",
        stdout(&listing)
    );

    // A damaged download is caught, by name.
    let mut bytes = fs::read(tgz.trim()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(tgz.trim(), bytes).unwrap();
    let check = Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&out).output().unwrap();
    assert!(!check.status.success());
    assert!(
        stdout(&check).contains(&format!("mlgit-{VERSION}-{linux}.tar.gz: FAILED")),
        "{}",
        stdout(&check)
    );
}
