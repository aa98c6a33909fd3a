//! End-to-end tests of the raw → clean → split flow and of `mlgit diff` and `mlgit lineage`.
//!
//! Raw data is committed the way a user of plain git would: in a `git worktree` of the `raw`
//! branch, with `git add` (git-lfs, installed in the test HOME, stores every `data/**` file in
//! `.git/lfs/objects` as raw's `.gitattributes` asks) and `git commit` with the provenance trailers
//! `mlgit commit-data` writes. What mlgit writes is then read back with `git`, `git lfs fsck`, and
//! a `git clone` + `git lfs pull`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{stderr, stdout, write_files, TestEnv};
use serde_json::Value;

const PNG: &[u8] = include_bytes!("fixtures/images/photo.png");
const JPEG: &[u8] = include_bytes!("fixtures/images/photo.jpg");
const PROGRESSIVE: &[u8] = include_bytes!("fixtures/images/progressive.jpg");
const GIF: &[u8] = include_bytes!("fixtures/images/photo.gif");

/// A repository made by `mlgit init`, with a worktree of `raw` to commit data with plain git.
struct Flow {
    env: TestEnv,
    repo: PathBuf,
    raw_wt: PathBuf,
    batch: std::cell::Cell<u32>,
}

impl Flow {
    /// None (test skipped with a printed reason) when git-lfs is not installed outside CI.
    fn new() -> Option<Flow> {
        let env = TestEnv::new();
        if !env.has_git_lfs() {
            return None;
        }
        let repo = env.init_repo("r");
        let raw_wt = env.path("raw-wt");
        env.git(&repo, ["worktree", "add", "-q", raw_wt.to_str().unwrap(), "raw"]);
        Some(Flow { env, repo, raw_wt, batch: std::cell::Cell::new(0) })
    }

    /// Commit files (paths relative to `data/`) on raw with git, with commit-data's trailers.
    fn add_raw(&self, files: &[(&str, &[u8])]) -> String {
        let n = self.batch.get() + 1;
        self.batch.set(n);
        let full: Vec<(String, &[u8])> = files.iter().map(|(p, c)| (format!("data/{p}"), *c)).collect();
        let refs: Vec<(&str, &[u8])> = full.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        write_files(&self.raw_wt, &refs);
        self.env.git(&self.raw_wt, ["add", "data"]);
        let bytes: usize = files.iter().map(|(_, c)| c.len()).sum();
        let msg = format!(
            "Add batch {n}\n\nMlgit-Source: /mnt/drop/batch-{n}\nMlgit-Host: ingest-{n}.example\nMlgit-User: tester\nMlgit-Ingested-At: 2026-11-2{n}T10:00:00+00:00\nMlgit-Files-Added: {}\nMlgit-Bytes: {bytes}\n",
            files.len()
        );
        self.env.git(&self.raw_wt, ["commit", "-q", "-m", &msg]);
        self.env.tick();
        self.rev("raw")
    }

    fn rev(&self, rev: &str) -> String {
        self.env.git(&self.repo, ["rev-parse", rev]).trim().to_string()
    }

    fn mlgit_json(&self, args: &[&str]) -> Value {
        let v = self.env.mlgit_json(&self.repo, args);
        self.env.tick();
        v
    }

    /// Run mlgit expecting failure: returns stderr, after checking exit code 1 and that no ref moved.
    fn mlgit_fails(&self, args: &[&str]) -> String {
        let before = self.env.refs(&self.repo);
        let out = self.env.mlgit(&self.repo, args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(self.env.refs(&self.repo), before, "{args:?} moved a ref");
        stderr(&out)
    }

    /// `path → blob id` of every file of `rev` under `dir`.
    fn blobs(&self, rev: &str, dir: &str) -> BTreeMap<String, String> {
        self.env
            .git(&self.repo, ["ls-tree", "-r", rev, "--", dir])
            .lines()
            .map(|l| {
                let (meta, path) = l.split_once('\t').unwrap();
                (path.to_string(), meta.split_whitespace().nth(2).unwrap().to_string())
            })
            .collect()
    }

    fn message(&self, rev: &str) -> String {
        self.env.git(&self.repo, ["log", "-1", "--format=%B", rev])
    }

    /// `git lfs fsck` must find every object of `rev` and every pointer canonical.
    fn lfs_fsck(&self, rev: &str) {
        let out = self.env.git_cmd(&self.repo).args(["lfs", "fsck", "--dry-run", rev]).output().unwrap();
        assert!(out.status.success(), "git lfs fsck {rev}: {}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("Git LFS fsck OK"), "{}", stdout(&out));
    }
}

/// The raw batch with one file for each thing the validators must catch, and good files beside.
fn broken_and_good() -> Vec<(&'static str, Vec<u8>)> {
    let mut bad_crc = PNG.to_vec();
    bad_crc[20] ^= 0x40;
    vec![
        ("images/good.png", PNG.to_vec()),
        ("images/good.jpg", JPEG.to_vec()),
        ("images/progressive.jpeg", PROGRESSIVE.to_vec()),
        ("images/good.gif", GIF.to_vec()),
        ("images/truncated.png", PNG[..PNG.len() / 2].to_vec()),
        ("images/no-iend.png", PNG[..PNG.len() - 12].to_vec()),
        ("images/bad-crc.png", bad_crc),
        ("images/truncated.jpg", JPEG[..JPEG.len() - 2].to_vec()),
        ("images/half.jpg", JPEG[..JPEG.len() / 2].to_vec()),
        ("images/no-trailer.gif", GIF[..GIF.len() - 1].to_vec()),
        ("images/jpeg-named.png", JPEG.to_vec()),
        ("text/empty.txt", Vec::new()),
        ("text/blank.txt", b"  \n\t\n".to_vec()),
        ("text/notes.txt", "héllo\n".as_bytes().to_vec()),
        ("text/latin1.csv", b"name,city\nJos\xe9,Porto\n".to_vec()),
        ("tables/good.csv", b"id,name\n1,\"Smith, J\"\n2,\"multi\nline\"\n".to_vec()),
        ("tables/bad-row.csv", b"id,name\n1,a\n2,b,extra\n3,c\n".to_vec()),
        ("tables/good.tsv", b"a\tb\n1\t2\n".to_vec()),
        ("events/good.jsonl", b"{\"e\":1}\n{\"e\":2}\n".to_vec()),
        ("events/bad.jsonl", b"{\"e\":1}\n{\"e\":2}\n{\"e\":\n{\"e\":4}\n".to_vec()),
        ("meta/good.json", b"{\"k\": [1, 2, 3]}".to_vec()),
        ("meta/bad.json", b"{\"k\": [1, 2,}".to_vec()),
        ("blobs/model.bin", vec![0u8, 1, 2, 3, 255]),
        ("blobs/zero.bin", Vec::new()),
    ]
}

fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(p, c)| (*p, c.as_slice())).collect()
}

#[test]
fn clean_drops_exactly_the_broken_files_and_reuses_raw_objects() {
    let Some(f) = Flow::new() else { return };
    let files = broken_and_good();
    let raw = f.add_raw(&as_refs(&files));
    // File level: how tables were judged before records (tests/tables.rs covers record level).
    let out = f.mlgit_json(&["clean", "--file-level"]);

    let dropped: BTreeMap<String, (String, String)> = out["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_string(),
                (d["check"].as_str().unwrap().to_string(), d["reason"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    let expected = [
        ("data/blobs/zero.bin", "empty", "empty file (0 bytes)"),
        ("data/events/bad.jsonl", "records", "line 3: not a JSON value"),
        ("data/images/bad-crc.png", "image", "PNG chunk IHDR at byte 8 has a bad CRC"),
        ("data/images/half.jpg", "image", "JPEG truncated"),
        ("data/images/jpeg-named.png", "image", "not a PNG: bad signature"),
        ("data/images/no-iend.png", "image", "no IEND chunk"),
        ("data/images/no-trailer.gif", "image", "no trailer"),
        ("data/images/truncated.jpg", "image", "no EOI marker"),
        ("data/images/truncated.png", "image", "PNG truncated"),
        ("data/meta/bad.json", "json", "JSON does not parse"),
        (
            "data/tables/bad-row.csv",
            "records",
            "line 3: CSV record has 3 field(s), the header (line 1) has 2",
        ),
        ("data/text/blank.txt", "empty", "only whitespace"),
        ("data/text/empty.txt", "empty", "empty file (0 bytes)"),
        ("data/text/latin1.csv", "utf8", "not valid UTF-8: invalid byte at offset 13 (line 2)"),
    ];
    let got: Vec<&str> = dropped.keys().map(String::as_str).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(got, want);
    for (path, check, reason) in expected {
        let (c, r) = &dropped[path];
        assert_eq!(c, check, "{path}");
        assert!(r.contains(reason), "{path}: {r:?} lacks {reason:?}");
    }
    assert_eq!(out["files_in"], 24);
    assert_eq!(out["kept"], 10);
    assert_eq!(out["raw_commit"], raw.as_str());
    assert!(out["read_files"].as_u64().unwrap() < 24, "model.bin and zero.bin are judged without reading");

    // Zero-copy: every kept file has exactly raw's blob (pointer) id.
    let raw_blobs = f.blobs("raw", "data");
    let clean_blobs = f.blobs("clean", "data");
    assert_eq!(clean_blobs.len(), 10);
    for (path, blob) in &clean_blobs {
        assert_eq!(raw_blobs.get(path), Some(blob), "{path}");
    }
    for path in dropped.keys() {
        assert!(!clean_blobs.contains_key(path), "{path} kept");
    }

    // The flow is visible to git: raw is the second parent, the trailer and the report name it.
    let parents = f.env.git(&f.repo, ["log", "-1", "--format=%P", "clean"]);
    let parents: Vec<&str> = parents.split_whitespace().collect();
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[1], raw);
    let trailers =
        f.env.git(&f.repo, ["log", "-1", "--format=%(trailers:key=Derived-From,valueonly)", "clean"]);
    assert_eq!(trailers.trim(), format!("raw {raw}"));
    let message = f.message("clean");
    assert!(message.starts_with("Clean raw "), "{message}");
    assert!(
        message.contains("Dropped 14 file(s): 3 empty, 7 image, 1 json, 2 records, 1 utf8."),
        "{message}"
    );
    assert!(message.contains("data/tables/bad-row.csv: line 3"), "{message}");
    let report: Value =
        serde_json::from_str(&f.env.git(&f.repo, ["show", "clean:.mlgit/clean-report.json"])).unwrap();
    assert_eq!(report["source"]["commit"], raw.as_str());
    assert_eq!(report["dropped"].as_array().unwrap().len(), 14);
    f.lfs_fsck("clean");

    // Same raw commit, same result: nothing new is committed.
    let before = f.env.refs(&f.repo);
    let again = f.mlgit_json(&["clean", "--file-level"]);
    assert_eq!(again["unchanged"], true);
    assert_eq!(f.env.refs(&f.repo), before);

    // A user's clone gets the kept files byte for byte.
    let clone = f.env.path("clone");
    f.env.git(
        f.env.tmp.path(),
        ["clone", "-q", "-b", "clean", f.repo.to_str().unwrap(), clone.to_str().unwrap()],
    );
    f.env.git(&clone, ["lfs", "pull"]);
    for (path, content) in &files {
        let full = format!("data/{path}");
        let local = clone.join(&full);
        if dropped.contains_key(&full) {
            assert!(!local.exists(), "{full} should be dropped");
        } else {
            assert_eq!(&std::fs::read(&local).unwrap(), content, "{full}");
        }
    }
    assert_eq!(f.env.git(&clone, ["status", "--porcelain"]), "", "clean clone has no changes");
}

#[test]
fn validators_can_be_turned_off_and_duplicates_dropped() {
    let Some(f) = Flow::new() else { return };
    // Turn the image validator off on main, the way a user would.
    let cfg = f.repo.join("mlgit.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("images: true", "images: false");
    std::fs::write(&cfg, text).unwrap();
    f.env.git(&f.repo, ["commit", "-q", "-am", "No image validation"]);
    f.add_raw(&[
        ("a/broken.png", b"not a png"),
        ("a/one.csv", b"x\n1\n"),
        ("b/same.csv", b"x\n1\n"),
        ("c/other.csv", b"x\n2\n"),
    ]);
    let out = f.mlgit_json(&["clean", "--drop-duplicates", "--file-level"]);
    let dropped = out["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{out}");
    assert_eq!(dropped[0]["path"], "data/b/same.csv");
    assert_eq!(dropped[0]["check"], "duplicate");
    assert_eq!(dropped[0]["reason"], "same content as data/a/one.csv");
    assert!(f.blobs("clean", "data").contains_key("data/a/broken.png"));
}

#[test]
fn clean_runs_a_transformation_and_records_its_script() {
    let Some(f) = Flow::new() else { return };
    let raw = f.add_raw(&[("in/a.csv", b"name\nann\n"), ("in/b.csv", b"name\nbob\n"), ("in/empty.csv", b"")]);
    // The script lives in transform/ of the worktree, as on the clean branch.
    write_files(
        &f.repo,
        &[(
            "transform/upper.sh",
            b"#!/bin/sh\nset -e\ncd \"$MLGIT_INPUT\"\nfor f in $(find . -type f | sort); do\n  mkdir -p \"$MLGIT_OUTPUT/$(dirname \"$f\")\"\n  tr a-z A-Z < \"$f\" > \"$MLGIT_OUTPUT/$f\"\ndone\necho \"$MLGIT_SOURCE_COMMIT\" > \"$MLGIT_OUTPUT/SOURCE\"\necho transformed\n",
        )],
    );
    let out = f.mlgit_json(&["clean", "--run", "sh transform/upper.sh"]);
    assert_eq!(out["dropped"].as_array().unwrap().len(), 1, "the empty file is dropped before the transform");
    let t = &out["transform"];
    assert_eq!(t["command"], "sh transform/upper.sh");
    assert_eq!(t["output_files"], 3);
    let script_blob = f.env.git(&f.repo, ["hash-object", "transform/upper.sh"]).trim().to_string();
    assert_eq!(t["files"][0]["path"], "transform/upper.sh");
    assert_eq!(t["files"][0]["blob"], script_blob.as_str());
    let clean_files = f.blobs("clean", ".");
    assert_eq!(
        clean_files.get("transform/upper.sh"),
        Some(&script_blob),
        "the script is committed with the data"
    );
    let paths: Vec<&str> =
        clean_files.keys().filter(|p| p.starts_with("data/")).map(String::as_str).collect();
    assert_eq!(paths, ["data/SOURCE", "data/in/a.csv", "data/in/b.csv"]);

    let clone = f.env.path("clone");
    f.env.git(
        f.env.tmp.path(),
        ["clone", "-q", "-b", "clean", f.repo.to_str().unwrap(), clone.to_str().unwrap()],
    );
    f.env.git(&clone, ["lfs", "pull"]);
    assert_eq!(std::fs::read(clone.join("data/in/a.csv")).unwrap(), b"NAME\nANN\n");
    assert_eq!(std::fs::read_to_string(clone.join("data/SOURCE")).unwrap().trim(), raw);
    f.lfs_fsck("clean");
    let tree_id = f.env.git(&f.repo, ["rev-parse", "clean:transform"]).trim().to_string();
    let msg = f.message("clean");
    assert!(msg.contains(&format!("Mlgit-Transform: transform/ {tree_id}")), "{msg}");
    assert!(msg.contains("Mlgit-Transform-Command: sh transform/upper.sh"), "{msg}");

    // Same input, same script, same output: no new commit.
    let again = f.mlgit_json(&["clean", "--run", "sh transform/upper.sh"]);
    assert_eq!(again["unchanged"], true);

    // Without transform/ in the worktree, the script committed on clean runs (and stays recorded).
    std::fs::remove_dir_all(f.repo.join("transform")).unwrap();
    let raw2 = f.add_raw(&[("in/c.csv", b"name\ncid\n")]);
    let next = f.mlgit_json(&["clean", "--run", "sh transform/upper.sh"]);
    assert_eq!(next["transform"]["files"][0]["blob"], script_blob.as_str());
    assert_eq!(next["transform"]["output_files"], 4);
    let pointer = f.env.git(&f.repo, ["show", "clean:data/SOURCE"]);
    let oid = pointer.lines().find_map(|l| l.strip_prefix("oid sha256:")).unwrap();
    let object = f.repo.join(".git/lfs/objects").join(&oid[0..2]).join(&oid[2..4]).join(oid);
    assert_eq!(std::fs::read_to_string(object).unwrap().trim(), raw2, "the new raw commit was transformed");
    assert_eq!(f.env.git(&f.repo, ["rev-parse", "clean:transform"]).trim(), tree_id);
}

#[test]
fn a_bad_transformation_commits_nothing() {
    let Some(f) = Flow::new() else { return };
    f.add_raw(&[("a.csv", b"x\n1\n")]);
    let err = f.mlgit_fails(&["clean", "--run", "exit 3"]);
    assert!(
        err.contains("the transformation `exit 3` failed (exit status 3); nothing was committed"),
        "{err}"
    );
    let err = f.mlgit_fails(&["clean", "--run", "true"]);
    assert!(err.contains("wrote nothing into MLGIT_OUTPUT"), "{err}");
    let err = f.mlgit_fails(&[
        "clean",
        "--run",
        "cp -r \"$MLGIT_INPUT\"/. \"$MLGIT_OUTPUT\" && echo x > ../escaped",
    ]);
    assert!(err.contains("wrote outside MLGIT_OUTPUT (created escaped)"), "{err}");
    let err = f.mlgit_fails(&[
        "clean",
        "--run",
        "cp -r \"$MLGIT_INPUT\"/. \"$MLGIT_OUTPUT\" && echo x > side-effect",
    ]);
    assert!(err.contains("created work/side-effect"), "{err}");
    let err = f.mlgit_fails(&[
        "clean",
        "--run",
        "cp -r \"$MLGIT_INPUT\"/. \"$MLGIT_OUTPUT\" && echo '* -text' > \"$MLGIT_OUTPUT/.gitattributes\"",
    ]);
    assert!(err.contains(".gitattributes (reserved name"), "{err}");
    // The input is read-only, so changing it fails; where permissions do not bind (root), the
    // before/after listing catches it.
    let err = f.mlgit_fails(&[
        "clean",
        "--run",
        "echo y > \"$MLGIT_INPUT/a.csv\" && cp -r \"$MLGIT_INPUT\"/. \"$MLGIT_OUTPUT\"",
    ]);
    assert!(err.contains("(changed input/a.csv)") || err.contains("failed (exit status"), "{err}");
}

#[test]
fn clean_refuses_bad_inputs_and_moves_nothing() {
    let Some(f) = Flow::new() else { return };
    let err = f.mlgit_fails(&["clean"]);
    assert!(err.contains("'raw' at ") && err.contains("has no files under data/: nothing to clean"), "{err}");
    assert!(err.contains("hint: add data first"), "{err}");
    let err = f.mlgit_fails(&["clean", "--from", "main"]);
    assert!(err.contains("--from main: 'main' is not a data branch"), "{err}");
    let err = f.mlgit_fails(&["clean", "--to", "raw"]);
    assert!(err.contains("--from and --to are both 'raw'"), "{err}");
    let err = f.mlgit_fails(&["split", "--from", "dev/model"]);
    assert!(err.contains("'dev/model' is not a data branch"), "{err}");

    f.add_raw(&[("empty.csv", b""), ("blank.txt", b"\n")]);
    let err = f.mlgit_fails(&["clean"]);
    assert!(
        err.contains("every one of the 2 file(s) of 'raw' at") && err.contains("failed validation"),
        "{err}"
    );
    f.add_raw(&[("ok.csv", b"a\n1\n"), ("pic.png", PNG)]);
    let err = f.mlgit_fails(&["clean", "--rev", "main"]);
    assert!(err.contains("is not on branch 'raw'"), "{err}");
    // Corrupt the PNG's object in the LFS store: clean must name it and point at `mlgit verify`.
    let oid = f.env.git(&f.repo, ["lfs", "ls-files", "-l", "raw"]);
    let oid = oid
        .lines()
        .find(|l| l.ends_with("data/pic.png"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let object = f.repo.join(".git/lfs/objects").join(&oid[0..2]).join(&oid[2..4]).join(&oid);
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&object, bytes).unwrap();
    let err = f.mlgit_fails(&["clean"]);
    assert!(err.contains("the LFS object of raw:data/pic.png is corrupt"), "{err}");
    assert!(err.contains("mlgit verify raw"), "{err}");
    std::fs::remove_file(&object).unwrap();
    let err = f.mlgit_fails(&["clean"]);
    assert!(
        err.contains("the LFS object of raw:data/pic.png") && err.contains("is not in the local store"),
        "{err}"
    );
    assert!(err.contains("git lfs fetch"), "{err}");
}

#[test]
fn large_files_are_validated_on_the_bounded_pool() {
    let Some(f) = Flow::new() else { return };
    // 9 MiB each: above the size that moves validation to the CPU-sized pool.
    let mut good = b"id,value\n".to_vec();
    while good.len() < 9 << 20 {
        good.extend_from_slice(b"12345,some value here\n");
    }
    let mut bad = good.clone();
    let lines = bad.iter().filter(|&&b| b == b'\n').count();
    bad.extend_from_slice(b"1,2,3\n");
    f.add_raw(&[("big/good.csv", &good), ("big/bad.csv", &bad)]);
    let out = f.mlgit_json(&["clean", "--file-level"]);
    assert_eq!(out["kept"], 1);
    assert_eq!(out["dropped"][0]["path"], "data/big/bad.csv");
    let reason = out["dropped"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("line {}: CSV record has 3 field(s)", lines + 1)), "{reason}");
    assert_eq!(out["unchecked"].as_array().unwrap().len(), 0);
    assert_eq!(out["read_bytes"], (good.len() + bad.len()) as u64);
}

/// `n` small text files under `data/`, named so a group regex can find a "patient".
fn many(range: std::ops::Range<usize>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| (format!("patient-{:03}/scan-{i:05}.txt", i / 7), format!("scan {i}\n").into_bytes()))
        .collect()
}

fn add_many(f: &Flow, files: &[(String, Vec<u8>)]) -> String {
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
    f.add_raw(&refs)
}

/// `relative path under data/ → split` of a split commit.
fn assignment(f: &Flow, rev: &str) -> BTreeMap<String, String> {
    f.blobs(rev, "data")
        .into_keys()
        .map(|p| {
            let rest = p.strip_prefix("data/").unwrap();
            let (split, rel) = rest.split_once('/').unwrap();
            (rel.to_string(), split.to_string())
        })
        .collect()
}

#[test]
fn split_is_deterministic_proportional_stable_under_growth_and_zero_copy() {
    let Some(f) = Flow::new() else { return };
    add_many(&f, &many(0..1000));
    f.mlgit_json(&["clean"]);
    let out = f.mlgit_json(&["split"]);
    assert_eq!(out["files"], 1000);
    let counts = &out["counts"];
    let (train, val, test) = (
        counts["train"].as_u64().unwrap(),
        counts["validation"].as_u64().unwrap(),
        counts["test"].as_u64().unwrap(),
    );
    assert_eq!(train + val + test, 1000);
    // Binomial standard deviation at n=1000 is 12.6 for 80% and 9.5 for 10%: allow ~4 sigma.
    assert!((750..=850).contains(&train), "{counts}");
    assert!((60..=140).contains(&val) && (60..=140).contains(&test), "{counts}");
    let first = assignment(&f, "split");
    assert_eq!(first.len(), 1000);
    // The counts git sees are the counts mlgit reported.
    for (name, n) in [("train", train), ("validation", val), ("test", test)] {
        let listed =
            f.env.git(&f.repo, ["ls-tree", "-r", "--name-only", "split", "--", &format!("data/{name}")]);
        assert_eq!(listed.lines().count() as u64, n, "{name}");
    }
    let yaml = f.env.git(&f.repo, ["show", "split:split.yaml"]);
    assert!(yaml.contains("seed: 42") && yaml.contains(&format!("train: {train}")), "{yaml}");

    // Zero-copy: each file keeps clean's blob id.
    let clean = f.blobs("clean", "data");
    for (p, blob) in f.blobs("split", "data") {
        let rest = p.strip_prefix("data/").unwrap().split_once('/').unwrap().1;
        assert_eq!(clean.get(&format!("data/{rest}")), Some(&blob), "{p}");
    }
    f.lfs_fsck("split");
    let parents = f.env.git(&f.repo, ["log", "-1", "--format=%P", "split"]);
    assert_eq!(parents.split_whitespace().nth(1), Some(f.rev("clean").as_str()));

    // Same input → same tree: another seed changes it, going back restores the very same tree id.
    let tree42 = f.rev("split^{tree}");
    let before = f.env.refs(&f.repo);
    assert_eq!(f.mlgit_json(&["split"])["unchanged"], true);
    assert_eq!(f.env.refs(&f.repo), before);
    f.mlgit_fails(&["split", "--seed", "7"]);
    assert_eq!(f.env.refs(&f.repo), before, "a new seed without --reshuffle moves nothing");
    let moved = f.mlgit_json(&["split", "--seed", "7", "--reshuffle"]);
    assert_ne!(f.rev("split^{tree}"), tree42);
    assert!(moved["moved_files"].as_u64().unwrap() > 100, "{moved}");
    let back = f.mlgit_json(&["split", "--seed", "42", "--reshuffle"]);
    assert_eq!(back["tree"], tree42.as_str());

    // Grow by 20%: no old file moves.
    add_many(&f, &many(1000..1200));
    f.mlgit_json(&["clean"]);
    f.mlgit_json(&["split"]);
    let grown = assignment(&f, "split");
    assert_eq!(grown.len(), 1200);
    for (path, split) in &first {
        assert_eq!(grown.get(path), Some(split), "{path} moved");
    }

    // A clone of split has the files byte for byte.
    let clone = f.env.path("clone");
    f.env.git(
        f.env.tmp.path(),
        ["clone", "-q", "-b", "split", f.repo.to_str().unwrap(), clone.to_str().unwrap()],
    );
    f.env.git(&clone, ["lfs", "pull"]);
    for (rel, split) in grown.iter().take(50) {
        let i: usize = rel.rsplit('-').next().unwrap().trim_end_matches(".txt").parse().unwrap();
        assert_eq!(
            std::fs::read(clone.join("data").join(split).join(rel)).unwrap(),
            format!("scan {i}\n").as_bytes()
        );
    }
    assert_eq!(f.env.git(&clone, ["status", "--porcelain"]), "");
}

#[test]
fn group_by_keeps_groups_together_and_counts_files_without_a_group() {
    let Some(f) = Flow::new() else { return };
    let mut files = many(0..700);
    files.push(("loose/readme.txt".into(), b"no patient\n".to_vec()));
    files.push(("loose/other.txt".into(), b"no patient either\n".to_vec()));
    add_many(&f, &files);
    f.mlgit_json(&["clean"]);
    let out =
        f.env.mlgit(&f.repo, ["--json", "split", "--group-by", r"^patient-(\d+)/", "--ratios", "60,20,20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 of 702 file(s) matched no group"), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["groups"], 100);
    assert_eq!(v["ungrouped"], 2);
    assert_eq!(v["ungrouped_examples"][0], "loose/other.txt");
    let mut by_patient: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (rel, split) in assignment(&f, "split") {
        if let Some(p) = rel.strip_prefix("patient-") {
            by_patient.entry(p[..3].to_string()).or_default().insert(split);
        }
    }
    assert_eq!(by_patient.len(), 100);
    for (p, splits) in &by_patient {
        assert_eq!(splits.len(), 1, "patient {p} is in {splits:?}");
    }
    let used: std::collections::BTreeSet<&String> = by_patient.values().flatten().collect();
    assert_eq!(used.len(), 3, "with 100 groups every split gets some");
    let msg = f.message("split");
    assert!(msg.contains("Mlgit-Split-Group-By: ^patient-(\\d+)/"), "{msg}");
    assert!(msg.contains("2 file(s) matched no group"), "{msg}");
}

#[test]
fn split_refuses_bad_inputs_and_moves_nothing() {
    let Some(f) = Flow::new() else { return };
    let err = f.mlgit_fails(&["split"]);
    assert!(err.contains("has no files under data/: nothing to split"), "{err}");
    f.add_raw(&[("a/1.txt", b"1"), ("a/2.txt", b"2")]);
    f.mlgit_json(&["clean"]);
    for (ratios, why) in [
        ("80,10,5", "ratios [80, 10, 5] sum to 95, not 100"),
        ("80,-10,30", "'-10' is not a positive part"),
        ("90,10,0", "'0' is not a positive part"),
        ("50,50", "need three parts"),
    ] {
        let err = f.mlgit_fails(&["split", "--ratios", ratios]);
        assert!(err.contains(why), "{ratios}: {err}");
        assert!(err.contains("hint:"), "{err}");
    }
    let err = f.mlgit_fails(&["split", "--group-by", "([a-z"]);
    assert!(err.contains("is not a valid regular expression"), "{err}");
    let err = f.mlgit_fails(&["split", "--group-by", "^a/"]);
    assert!(err.contains("has no capture group"), "{err}");
    let err = f.mlgit_fails(&["split", "--group-by", "^patient-(\\d+)/"]);
    assert!(err.contains("matches none of the 2 file(s) under data/ of 'clean'"), "{err}");
}

#[test]
fn diff_matches_git_and_compares_lfs_content() {
    let Some(f) = Flow::new() else { return };
    let r1 =
        f.add_raw(&[("img/a.png", PNG), ("img/b.gif", GIF), ("t/x.csv", b"a\n1\n"), ("t/y.csv", b"a\n2\n")]);
    // A second commit (plain git; raw's append-only rule is mlgit's, not git's) changes one file,
    // removes one and adds two.
    std::fs::remove_file(f.raw_wt.join("data/t/y.csv")).unwrap();
    let r2 = f.add_raw(&[("t/x.csv", b"a\n1\n2\n"), ("img/c.jpg", JPEG), ("t/z.jsonl", b"{}\n")]);
    let out = f.mlgit_json(&["diff", &r1, &r2]);
    let git_ns = f.env.git(&f.repo, ["diff", "--name-status", &r1, &r2]);
    let from_git: Vec<String> = git_ns.lines().map(|l| l.replace('\t', " ")).collect();
    let from_mlgit: Vec<String> = out["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let letter = match c["status"].as_str().unwrap() {
                "added" => "A",
                "removed" => "D",
                _ => "M",
            };
            format!("{letter} {}", c["path"].as_str().unwrap())
        })
        .collect();
    assert_eq!(from_mlgit, from_git);
    assert_eq!(out["total"]["added"], 2);
    assert_eq!(out["total"]["removed"], 1);
    assert_eq!(out["total"]["modified"], 1);
    // Byte deltas use the real sizes, not the pointers'.
    let expected = JPEG.len() as i64 + 3 + 2 - 4;
    assert_eq!(out["total"]["bytes_delta"], expected);
    assert_eq!(out["by_folder"]["data/img"]["added"], 1);
    assert_eq!(out["by_folder"]["data/t"]["bytes_delta"], 2 + 3 - 4);
    assert_eq!(out["by_extension"][".csv"]["removed"], 1);
    assert_eq!(out["files"][0]["lfs"], true);

    let sub = f.mlgit_json(&["diff", &r1, &r2, "--path", "data/img"]);
    assert_eq!(sub["files"].as_array().unwrap().len(), 1);
    assert_eq!(sub["files"][0]["path"], "data/img/c.jpg");

    // A pointer rewritten with the same content (git lfs writes an extension-free pointer; here a
    // non-canonical one) is not a modification, though git sees a changed blob.
    let pointer = f.env.git(&f.repo, ["cat-file", "-p", &format!("{r2}:data/img/a.png")]);
    let noncanonical = pointer.replace('\n', "\r\n");
    let blob = f
        .env
        .git_cmd(&f.repo)
        .args(["hash-object", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(noncanonical.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let blob = String::from_utf8(blob.stdout).unwrap().trim().to_string();
    let idx = f.env.path("idx");
    let env_idx = |args: &[&str]| {
        let out = f.env.git_cmd(&f.repo).env("GIT_INDEX_FILE", &idx).args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    env_idx(&["read-tree", &r2]);
    env_idx(&["update-index", "--cacheinfo", &format!("100644,{blob},data/img/a.png")]);
    let tree = env_idx(&["write-tree"]);
    let c3 = env_idx(&["commit-tree", &tree, "-p", &r2, "-m", "rewrite a pointer"]);
    assert_eq!(f.env.git(&f.repo, ["diff", "--name-only", &r2, &c3]).trim(), "data/img/a.png");
    let same = f.mlgit_json(&["diff", &r2, &c3]);
    assert_eq!(same["files"].as_array().unwrap().len(), 0);
    assert_eq!(same["pointer_only"], 1);

    let err = f.mlgit_fails(&["diff", &r1, &r2, "--path", "data/nope"]);
    assert!(err.contains("--path data/nope: neither"), "{err}");
    let err = f.mlgit_fails(&["diff", &r1, "no-such-ref"]);
    assert!(err.contains("'no-such-ref' is not a branch, tag or commit"), "{err}");
}

#[test]
fn diff_counts_files_per_split_and_compares_metrics_of_snapshots() {
    let Some(f) = Flow::new() else { return };
    add_many(&f, &many(0..100));
    f.mlgit_json(&["clean"]);
    f.mlgit_json(&["split"]);
    let s1 = f.rev("split");
    add_many(&f, &many(100..120));
    f.mlgit_json(&["clean"]);
    f.mlgit_json(&["split"]);
    let out = f.mlgit_json(&["diff", &s1, "split"]);
    let mut total = 0;
    for name in ["train", "validation", "test"] {
        let count = |rev: &str| {
            f.env
                .git(&f.repo, ["ls-tree", "-r", "--name-only", rev, "--", &format!("data/{name}")])
                .lines()
                .count() as i64
        };
        let s = &out["splits"][name];
        assert_eq!(s["a"], count(&s1));
        assert_eq!(s["b"], count("split"));
        assert_eq!(s["delta"], count("split") - count(&s1));
        total += s["delta"].as_i64().unwrap();
    }
    assert_eq!(total, 20);
    assert_eq!(out["total"]["added"], 20);
    assert_eq!(out["total"]["modified"], 1, "only split.yaml changes besides the added files");

    // Two snapshots: commits with tracking/run.json, tagged (what train-tag writes).
    let wt = f.env.path("stable-wt");
    f.env.git(&f.repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "stable/model"]);
    let record = |tag: &str, lr: f64, acc: f64, split: &str| {
        format!(
            r#"{{"schema":1,"tag":"{tag}","params":{{"lr":{lr},"model":"tree"}},"metrics":{{"accuracy":{acc}}},"data":{{"split":"{split}"}}}}"#
        )
    };
    write_files(&wt, &[("tracking/run.json", record("model-v1", 0.1, 0.8, &s1).as_bytes())]);
    f.env.git(&wt, ["add", "tracking"]);
    f.env.git(&wt, ["commit", "-q", "-m", "Snapshot model-v1"]);
    f.env.git(&wt, ["tag", "-a", "-m", "model-v1", "model-v1"]);
    f.env.tick();
    let split2 = f.rev("split");
    write_files(&wt, &[("tracking/run.json", record("model-v2", 0.05, 0.85, &split2).as_bytes())]);
    let dev = f.rev("dev/model");
    let msg = format!("Snapshot model-v2\n\nDerived-From: dev {dev}\nDerived-From: split {split2}\n");
    f.env.git(&wt, ["commit", "-q", "-am", &msg]);
    f.env.git(&wt, ["tag", "-a", "-m", "model-v2", "model-v2"]);
    let m = f.mlgit_json(&["diff", "model-v1", "model-v2", "--metrics"]);
    let metrics = &m["metrics"];
    assert_eq!(metrics["a_tag"], "model-v1");
    assert_eq!(metrics["b_tag"], "model-v2");
    assert_eq!(metrics["metrics"][0]["key"], "accuracy");
    assert!((metrics["metrics"][0]["delta"].as_f64().unwrap() - 0.05).abs() < 1e-9);
    assert_eq!(metrics["params"][0]["key"], "lr");
    assert!((metrics["params"][0]["delta"].as_f64().unwrap() + 0.05).abs() < 1e-9);
    assert_eq!(metrics["params"][1]["a"], "tree");
    assert_eq!(metrics["params"][1]["delta"], Value::Null);
    let human = f.env.mlgit_ok(&f.repo, ["diff", "model-v1", "model-v2", "--metrics"]);
    assert!(human.contains("accuracy") && human.contains("0.8") && human.contains("0.85"), "{human}");
    let err = f.mlgit_fails(&["diff", "raw", "clean", "--metrics"]);
    assert!(err.contains("--metrics: raw and clean have no tracking record"), "{err}");

    // Lineage from the snapshots: via tracking/run.json (v1) and via the trailer (v2).
    for (tag, split, via, batches) in
        [("model-v1", s1.clone(), "tracking/run.json", 1), ("model-v2", split2.clone(), "trailer", 2)]
    {
        let l = f.mlgit_json(&["lineage", tag]);
        let kinds: Vec<&str> =
            l["chain"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["snapshot", "split", "clean", "raw"], "{l}");
        assert_eq!(l["chain"][0]["derived_from"], split.as_str());
        assert_eq!(l["chain"][0]["via"], via);
        assert_eq!(l["raw_batches"].as_array().unwrap().len(), batches, "the first split saw one batch");
    }
}

#[test]
fn lineage_follows_trailers_back_to_raw_provenance() {
    let Some(f) = Flow::new() else { return };
    let r1 = f.add_raw(&[("a.csv", b"a\n1\n")]);
    let r2 = f.add_raw(&[("b.csv", b"a\n2\n")]);
    f.mlgit_json(&["clean"]);
    f.mlgit_json(&["split"]);
    let out = f.mlgit_json(&["lineage", "split"]);
    let chain = out["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 3);
    // Each link is what `git log --format=%B` shows in the Derived-From trailer.
    for (i, rev) in ["split", "clean"].iter().enumerate() {
        let trailer =
            f.env.git(&f.repo, ["log", "-1", "--format=%(trailers:key=Derived-From,valueonly)", rev]);
        let sha = trailer.split_whitespace().nth(1).unwrap();
        assert_eq!(chain[i]["commit"], f.rev(rev).as_str());
        assert_eq!(chain[i]["derived_from"], sha);
        assert_eq!(chain[i + 1]["commit"], sha);
    }
    assert_eq!(chain[2]["commit"], r2.as_str());
    assert_eq!(chain[2]["kind"], "raw");
    let batches = out["raw_batches"].as_array().unwrap();
    let commits: Vec<&str> = batches.iter().map(|b| b["commit"].as_str().unwrap()).collect();
    assert_eq!(commits, [r2.as_str(), r1.as_str()], "newest first, init commit (no provenance) left out");
    let log = f.env.git(
        &f.repo,
        [
            "log",
            "-1",
            "--format=%(trailers:key=Mlgit-Source,valueonly)%(trailers:key=Mlgit-Host,valueonly)",
            &r1,
        ],
    );
    let mut lines = log.lines();
    assert_eq!(batches[1]["source"], lines.next().unwrap());
    assert_eq!(batches[1]["host"], lines.next().unwrap());
    assert_eq!(batches[1]["ingested_at"], "2026-11-21T10:00:00+00:00");
    let human = f.env.mlgit_ok(&f.repo, ["lineage", "split"]);
    assert!(human.contains("source /mnt/drop/batch-1  host ingest-1.example"), "{human}");

    // An older raw commit can be cleaned on purpose; lineage then stops at it.
    let old = f.mlgit_json(&["clean", "--rev", "raw~1"]);
    assert_eq!(old["raw_commit"], r1.as_str());
    assert_eq!(old["kept"], 1);
    let l = f.mlgit_json(&["lineage", "clean"]);
    assert_eq!(l["chain"][1]["commit"], r1.as_str());
    assert_eq!(l["raw_batches"].as_array().unwrap().len(), 1);
    f.mlgit_json(&["clean"]);

    // From clean, and from a raw commit itself.
    let c = f.mlgit_json(&["lineage", "clean"]);
    assert_eq!(c["chain"].as_array().unwrap().len(), 2);
    let r = f.mlgit_json(&["lineage", &r1]);
    assert_eq!(r["chain"][0]["kind"], "raw");
    assert_eq!(r["raw_batches"].as_array().unwrap().len(), 1);

    let err = f.mlgit_fails(&["lineage", "main"]);
    assert!(err.contains("has no lineage"), "{err}");
}

#[test]
fn clean_updates_a_clean_checkout_and_refuses_a_dirty_one() {
    let Some(f) = Flow::new() else { return };
    f.add_raw(&[("a.csv", b"a\n1\n")]);
    let wt = f.env.path("clean-wt");
    f.env.git(&f.repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "clean"]);
    f.mlgit_json(&["clean"]);
    assert_eq!(std::fs::read(wt.join("data/a.csv")).unwrap(), b"a\n1\n");
    assert_eq!(f.env.git(&wt, ["status", "--porcelain"]), "");
    f.add_raw(&[("b.csv", b"a\n2\n")]);
    std::fs::write(wt.join("README.md"), "edited\n").unwrap();
    let err = f.mlgit_fails(&["clean"]);
    assert!(err.contains("branch 'clean' is checked out in") && err.contains("uncommitted changes"), "{err}");
}
