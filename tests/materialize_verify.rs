//! End-to-end tests of `mlgit materialize` and `mlgit verify`: files come back byte-identical
//! without git-lfs, missing objects fail up front naming the paths, and verify finds (exit 3) each
//! kind of problem git-lfs itself would trip over.

mod common;

use std::fs;
use std::path::Path;

use common::{assert_same_tree, list_files, stderr, stdout, write_files, TestEnv};

fn sample(root: &Path) {
    write_files(
        root,
        &[
            ("train/a.csv", b"id,x\n1,2\n"),
            ("train/b c.csv", b"id,x\n3,4\n"),
            ("test/\u{fc}.csv", b"id,x\n5,6\n"),
            ("-dash.json", b"{}\n"),
            ("empty", b""),
        ],
    );
    let big: Vec<u8> = (0..(2 << 20) + 3).map(|i| (i % 253) as u8).collect();
    fs::write(root.join("big.bin"), big).unwrap();
}

fn committed_repo(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = env.init_repo("r");
    let src = env.path("src");
    sample(&src);
    env.mlgit_json(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    (repo, src)
}

#[test]
fn materialize_writes_the_files_back_byte_identical() {
    let env = TestEnv::new();
    let (repo, src) = committed_repo(&env);
    let out_dir = env.path("out");
    let out = env.mlgit_json(&repo, ["materialize", "raw", "--into", out_dir.to_str().unwrap()]);
    assert_eq!(out["command"], "materialize");
    assert_eq!(out["lfs_files"], 5);
    assert_eq!(out["commit"], env.git(&repo, ["rev-parse", "raw"]).trim());
    assert_same_tree(&src, &out_dir.join("data"));
    assert!(!out_dir.join(".mlgit-incomplete").exists());
    assert!(out_dir.join(".gitattributes").exists() && out_dir.join("README.md").exists());

    // Again into the same folder: files are replaced in place, same result.
    env.mlgit_json(&repo, ["materialize", "raw", "--into", out_dir.to_str().unwrap()]);
    assert_same_tree(&src, &out_dir.join("data"));
}

#[test]
fn include_limits_what_is_written() {
    let env = TestEnv::new();
    let (repo, src) = committed_repo(&env);
    let out_dir = env.path("part");
    let out = env.mlgit_json(
        &repo,
        [
            "materialize",
            "raw",
            "--into",
            out_dir.to_str().unwrap(),
            "--include",
            "data/train",
            "--include",
            "*.bin",
        ],
    );
    assert_eq!(out["files"], 3);
    assert_eq!(list_files(&out_dir), vec!["data/big.bin", "data/train/a.csv", "data/train/b c.csv"]);
    assert_eq!(fs::read(out_dir.join("data/big.bin")).unwrap(), fs::read(src.join("big.bin")).unwrap());

    let before = env.refs(&repo);
    let res = env.mlgit(
        &repo,
        ["materialize", "raw", "--into", env.path("none").to_str().unwrap(), "--include", "nothing/**"],
    );
    assert_eq!(res.status.code(), Some(1));
    assert!(stderr(&res).contains("no file of raw matches --include nothing/**"), "{}", stderr(&res));
    assert!(!env.path("none").exists());
    assert_eq!(env.refs(&repo), before);
}

#[test]
fn a_missing_lfs_object_fails_up_front_naming_the_paths() {
    let env = TestEnv::new();
    let (repo, _src) = committed_repo(&env);
    let pointer = env.git(&repo, ["show", "raw:data/train/b c.csv"]);
    let oid = pointer.lines().find_map(|l| l.strip_prefix("oid sha256:")).unwrap().to_string();
    fs::remove_file(repo.join(format!(".git/lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4]))).unwrap();
    let out_dir = env.path("out");
    let res = env.mlgit(&repo, ["materialize", "raw", "--into", out_dir.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1), "{}", stdout(&res));
    let err = stderr(&res);
    assert!(err.contains("data/train/b c.csv") && err.contains("git lfs fetch"), "{err}");
    assert!(!out_dir.exists(), "nothing may be written when an object is missing");

    // verify names it too, with exit code 3.
    let res = env.mlgit(&repo, ["--json", "verify", "raw"]);
    assert_eq!(res.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_str(stdout(&res).trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["problems"][0]["path"], "data/train/b c.csv");
    assert_eq!(v["problems"][0]["problem"], "missing");
    assert_eq!(v["problems"][0]["oid"], oid.as_str());
}

#[test]
fn verify_passes_on_what_commit_data_writes_and_finds_corruption() {
    let env = TestEnv::new();
    let (repo, _src) = committed_repo(&env);
    let v = env.mlgit_json(&repo, ["verify", "--all"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["objects"], 5);
    assert!(v["refs"].as_array().unwrap().iter().any(|r| r["ref"] == "raw" && r["lfs_files"] == 5), "{v}");

    let pointer = env.git(&repo, ["show", "raw:data/big.bin"]);
    let oid = pointer.lines().find_map(|l| l.strip_prefix("oid sha256:")).unwrap().to_string();
    let path = repo.join(format!(".git/lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4]));
    let mut bytes = fs::read(&path).unwrap();
    bytes[1000] ^= 1;
    fs::write(&path, bytes).unwrap();
    let res = env.mlgit(&repo, ["verify", "raw"]);
    assert_eq!(res.status.code(), Some(3));
    let text = stdout(&res);
    assert!(text.contains("raw:data/big.bin") && text.contains("corrupt"), "{text}");
}

#[test]
fn verify_finds_pointers_git_lfs_would_misread() {
    let env = TestEnv::new();
    let (repo, _src) = committed_repo(&env);
    // Build a commit with plumbing: a pointer without its final newline (non-canonical), a
    // pointer outside the LFS rules, and a plain file inside them.
    let pointer = env.git(&repo, ["show", "raw:data/train/a.csv"]);
    let work = env.path("plumb");
    fs::create_dir_all(&work).unwrap();
    fs::write(work.join("noncanon"), pointer.trim_end()).unwrap();
    fs::write(work.join("outside"), &pointer).unwrap();
    fs::write(work.join("plain"), b"not a pointer\n").unwrap();
    let hash = |name: &str| {
        env.git(&repo, ["hash-object", "-w", work.join(name).to_str().unwrap()]).trim().to_string()
    };
    let (noncanon, outside, plain) = (hash("noncanon"), hash("outside"), hash("plain"));
    let attrs = env.git(&repo, ["rev-parse", "raw:.gitattributes"]).trim().to_string();
    let data = format!("100644 blob {noncanon}\tnoncanon.csv\n100644 blob {plain}\tplain.csv\n");
    let data_tree = pipe(&env, &repo, &["mktree"], &data);
    let root = format!(
        "100644 blob {attrs}\t.gitattributes\n040000 tree {data_tree}\tdata\n100644 blob {outside}\toutside.bin\n"
    );
    let tree = pipe(&env, &repo, &["mktree"], &root);
    let commit = env.git(&repo, ["commit-tree", &tree, "-m", "bad"]).trim().to_string();
    env.git(&repo, ["update-ref", "refs/heads/bad", &commit]);

    let res = env.mlgit(&repo, ["--json", "verify", "bad"]);
    assert_eq!(res.status.code(), Some(3), "{}", stderr(&res));
    let v: serde_json::Value = serde_json::from_str(stdout(&res).trim()).unwrap();
    let problems: Vec<(String, String)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].as_str().unwrap().to_string(), p["problem"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        problems,
        vec![
            ("data/noncanon.csv".to_string(), "non_canonical_pointer".to_string()),
            ("data/plain.csv".to_string(), "marked_not_pointer".to_string()),
            ("outside.bin".to_string(), "pointer_not_marked".to_string()),
        ]
    );
    if env.has_git_lfs() {
        // git-lfs agrees that this ref is broken.
        let out = env.git_cmd(&repo).args(["lfs", "fsck", "--pointers", "bad"]).output().unwrap();
        assert!(!out.status.success(), "git lfs fsck accepted a broken ref");
    }
}

fn pipe(env: &TestEnv, dir: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = env
        .git_cmd(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    stdout(&out).trim().to_string()
}
