//! End-to-end tests of the one restore path (materialize, checkout, the worktree sync), store
//! integrity (`verify --repair`, re-commit repairs) and `mlgit gc`, each named after a failure of
//! issue 9 and checked with the real git CLI (and git-lfs where it matters).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{list_files, stderr, stdout, write_files, TestEnv};

/// The path of an LFS object in `repo`'s store.
fn object_path(repo: &Path, oid: &str) -> PathBuf {
    repo.join(".git/lfs/objects").join(&oid[0..2]).join(&oid[2..4]).join(oid)
}

/// The LFS oid of the pointer at `rev:path`.
fn lfs_oid(env: &TestEnv, repo: &Path, spec: &str) -> String {
    let pointer = env.git(repo, ["show", spec]);
    pointer.lines().find_map(|l| l.strip_prefix("oid sha256:")).expect("a pointer").to_string()
}

/// Leftover temporary files of the restore path under `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    list_files(dir).into_iter().filter(|p| p.contains(".mlgit-tmp-")).collect()
}

/// A repository whose `raw` holds `src` (five LFS files, one 2 MiB).
fn data_repo(env: &TestEnv) -> (PathBuf, PathBuf) {
    let repo = env.init_repo("r");
    let src = env.path("src");
    let big: Vec<u8> = (0..(2 << 20) + 3).map(|i| (i % 253) as u8).collect();
    write_files(&src, &[("a.csv", b"id,x\n1,2\n"), ("sub/b.csv", b"id,x\n3,4\n"), ("big.bin", &big)]);
    env.mlgit_json(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    env.tick();
    (repo, src)
}

/// Commit the current state of `wt` (a git worktree) on its branch.
fn git_commit(env: &TestEnv, wt: &Path, message: &str) -> String {
    env.git(wt, ["add", "-A", "."]);
    env.git(wt, ["commit", "-q", "-m", message]);
    env.tick();
    env.git(wt, ["rev-parse", "HEAD"]).trim().to_string()
}

#[test]
fn materialize_never_writes_through_a_symlink_in_the_target() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let wt = env.path("wt");
    env.git(&repo, ["worktree", "add", "-q", "-b", "code", wt.to_str().unwrap(), "main"]);
    // Revision 1: `link` is a symlink pointing outside the target.
    std::os::unix::fs::symlink(&outside, wt.join("link")).unwrap();
    let rev1 = git_commit(&env, &wt, "a link");
    // Revision 2: `link/` is a folder.
    fs::remove_file(wt.join("link")).unwrap();
    write_files(&wt, &[("link/evil.sh", b"echo pwned\n"), ("link/deeper/x.txt", b"x\n")]);
    let rev2 = git_commit(&env, &wt, "a folder");

    let out = env.path("out");
    env.mlgit_ok(&repo, ["materialize", &rev1, "--into", out.to_str().unwrap()]);
    let meta = fs::symlink_metadata(out.join("link")).unwrap();
    assert!(meta.file_type().is_symlink(), "revision 1 writes the link as a link");
    env.mlgit_ok(&repo, ["materialize", &rev2, "--into", out.to_str().unwrap()]);

    assert!(list_files(&outside).is_empty(), "written outside the target: {:?}", list_files(&outside));
    assert!(fs::symlink_metadata(out.join("link")).unwrap().is_dir(), "the link was replaced by a folder");
    assert_eq!(fs::read(out.join("link/evil.sh")).unwrap(), b"echo pwned\n");
    assert_eq!(fs::read(out.join("link/deeper/x.txt")).unwrap(), b"x\n");
    assert!(temp_files(&out).is_empty());

    // A link in a parent folder of the target tree is not followed either.
    let out2 = env.path("out2");
    fs::create_dir_all(&out2).unwrap();
    std::os::unix::fs::symlink(&outside, out2.join("link")).unwrap();
    env.mlgit_ok(&repo, ["materialize", &rev2, "--into", out2.to_str().unwrap()]);
    assert!(list_files(&outside).is_empty(), "written outside the target: {:?}", list_files(&outside));
    assert!(fs::symlink_metadata(out2.join("link")).unwrap().is_dir());
}

#[test]
fn materialize_into_dot_git_is_refused_and_writes_nothing() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let wt = env.path("wt");
    env.git(&repo, ["worktree", "add", "-q", "-b", "code", wt.to_str().unwrap(), "main"]);
    write_files(
        &wt,
        &[("config", b"[core]\n\tfsmonitor = touch /tmp/pwned\n"), ("pre-commit", b"#!/bin/sh\n")],
    );
    fs::set_permissions(wt.join("pre-commit"), fs::Permissions::from_mode(0o755)).unwrap();
    let rev = git_commit(&env, &wt, "hooks");

    let config_before = fs::read(repo.join(".git/config")).unwrap();
    let hooks_before = list_files(&repo.join(".git/hooks"));
    std::os::unix::fs::symlink(repo.join(".git"), env.path("gitlink")).unwrap();
    let linked_git_dir = env.git(&wt, ["rev-parse", "--absolute-git-dir"]).trim().to_string();
    let targets = [
        ".git".to_string(),
        ".git/hooks".to_string(),
        "./sub/../.git/hooks".to_string(),
        env.path("gitlink").join("hooks").to_str().unwrap().to_string(),
        linked_git_dir,
    ];
    for into in &targets {
        let res = env.mlgit(&repo, ["materialize", &rev, "--into", into]);
        assert_eq!(res.status.code(), Some(1), "--into {into}: {}", stderr(&res));
        assert!(stderr(&res).contains("inside a .git folder"), "--into {into}: {}", stderr(&res));
    }
    // From the linked worktree, its own git dir and the common dir are refused too.
    let res = env.mlgit(&wt, ["materialize", &rev, "--into", repo.join(".git/worktrees").to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
    assert_eq!(fs::read(repo.join(".git/config")).unwrap(), config_before, ".git/config changed");
    assert_eq!(list_files(&repo.join(".git/hooks")), hooks_before, "hooks changed");
    assert!(!repo.join("sub").exists());
    env.git(&repo, ["fsck", "--no-progress"]);
}

#[test]
fn materialize_refuses_the_git_dir_when_git_dir_is_elsewhere() {
    let env = TestEnv::new();
    let repo = env.path("r");
    let store = env.path("store.git");
    env.git(
        env.tmp.path(),
        ["init", "-q", "--separate-git-dir", store.to_str().unwrap(), repo.to_str().unwrap()],
    );
    env.mlgit_ok(&repo, ["init", "--quiet", "."]);
    let hooks_before = list_files(&store.join("hooks"));
    let res = env.mlgit(&repo, ["materialize", "main", "--into", store.join("hooks").to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
    assert!(stderr(&res).contains("inside a .git folder"), "{}", stderr(&res));
    assert_eq!(list_files(&store.join("hooks")), hooks_before, "materialize wrote into .git/hooks");
}

#[test]
fn a_same_size_corrupt_object_fails_materialize_with_exit_3_and_leaves_no_bad_file() {
    let env = TestEnv::new();
    let (repo, _src) = data_repo(&env);
    let oid = lfs_oid(&env, &repo, "raw:data/big.bin");
    let obj = object_path(&repo, &oid);
    let mut bytes = fs::read(&obj).unwrap();
    bytes[1000] ^= 1;
    fs::write(&obj, bytes).unwrap();

    let out = env.path("out");
    let res = env.mlgit(&repo, ["materialize", "raw", "--into", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(3), "{}", stderr(&res));
    let err = stderr(&res);
    assert!(err.contains("data/big.bin") && err.contains(&oid) && err.contains("corrupt"), "{err}");
    assert!(!out.join("data/big.bin").exists(), "the corrupt bytes were written");
    assert!(temp_files(&out).is_empty(), "temporary files left: {:?}", temp_files(&out));
    assert!(out.join(".mlgit-incomplete").exists(), "the folder must not look complete");
}

#[test]
fn a_truncated_object_is_reported_as_corrupt_not_as_missing() {
    let env = TestEnv::new();
    let (repo, _src) = data_repo(&env);
    let oid = lfs_oid(&env, &repo, "raw:data/big.bin");
    let obj = object_path(&repo, &oid);
    let bytes = fs::read(&obj).unwrap();
    fs::write(&obj, &bytes[..bytes.len() / 2]).unwrap();

    let out = env.path("out");
    let res = env.mlgit(&repo, ["materialize", "raw", "--into", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(3), "{}", stderr(&res));
    let err = stderr(&res);
    assert!(err.contains("corrupt") && err.contains("data/big.bin"), "{err}");
    assert!(!err.contains("not in the local store"), "{err}");
    assert!(!out.exists(), "nothing may be written when an object is known bad up front");
}

#[test]
fn checkout_refuses_a_corrupt_data_or_model_object_with_exit_3() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let st = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", st.to_str().unwrap(), "stable/model"]);
    let script = "mkdir -p model && printf '%05000d' 7 > model/m.bin && echo '{\"acc\":1}' > metrics.json";
    env.mlgit_ok(&st, ["train-tag", "--", "sh", "-c", script]);
    let oid = lfs_oid(&env, &repo, "model-v1:model/m.bin");
    let obj = object_path(&repo, &oid);
    let mut bytes = fs::read(&obj).unwrap();
    bytes[10] ^= 1;
    fs::write(&obj, bytes).unwrap();

    let out = env.path("co");
    let res = env.mlgit(&repo, ["checkout", "model-v1", "--into", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(3), "{}", stderr(&res));
    assert!(stderr(&res).contains("model/m.bin") && stderr(&res).contains("corrupt"), "{}", stderr(&res));
    assert!(!out.join("model/m.bin").exists(), "the corrupt bytes were written");
    assert!(temp_files(&out).is_empty());
}

#[test]
fn verify_repair_rewrites_a_corrupt_object_from_the_source() {
    let env = TestEnv::new();
    let (repo, src) = data_repo(&env);
    let big = lfs_oid(&env, &repo, "raw:data/big.bin");
    let small = lfs_oid(&env, &repo, "raw:data/a.csv");
    let mut bytes = fs::read(object_path(&repo, &big)).unwrap();
    bytes[7] ^= 1;
    fs::write(object_path(&repo, &big), bytes).unwrap();
    fs::remove_file(object_path(&repo, &small)).unwrap();
    if env.has_git_lfs() {
        let fsck = env.git_cmd(&repo).args(["lfs", "fsck", "raw", "--dry-run"]).output().unwrap();
        assert!(!fsck.status.success(), "git lfs fsck should see the damage: {}", stdout(&fsck));
    }

    let v = env.mlgit_json(&repo, ["verify", "--repair", "raw"]);
    assert_eq!(v["ok"], true, "{v}");
    let repaired: Vec<&str> =
        v["repaired"].as_array().unwrap().iter().map(|r| r["oid"].as_str().unwrap()).collect();
    assert!(repaired.contains(&big.as_str()) && repaired.contains(&small.as_str()), "{v}");
    assert_eq!(
        v["repaired"][0]["from"].as_str().map(|f| f.starts_with(src.to_str().unwrap())),
        Some(true),
        "{v}"
    );
    assert_eq!(v["unrepaired"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(fs::read(object_path(&repo, &big)).unwrap(), fs::read(src.join("big.bin")).unwrap());
    if env.has_git_lfs() {
        env.git(&repo, ["lfs", "fsck", "raw", "--dry-run"]);
    }

    // With the source gone and the object corrupt again, the repair fails loudly: exit 3.
    let mut bytes = fs::read(object_path(&repo, &big)).unwrap();
    bytes[7] ^= 1;
    fs::write(object_path(&repo, &big), bytes).unwrap();
    fs::remove_dir_all(&src).unwrap();
    let res = env.mlgit(&repo, ["--json", "verify", "--repair", "raw"]);
    assert_eq!(res.status.code(), Some(3), "{}", stderr(&res));
    let v: serde_json::Value = serde_json::from_str(stdout(&res).trim()).unwrap();
    assert_eq!(v["unrepaired"][0]["oid"], big.as_str(), "{v}");
    assert_eq!(v["problems"][0]["problem"], "corrupt", "{v}");
}

#[test]
fn recommitting_the_original_file_repairs_a_truncated_object() {
    let env = TestEnv::new();
    let (repo, src) = data_repo(&env);
    let oid = lfs_oid(&env, &repo, "raw:data/big.bin");
    let obj = object_path(&repo, &oid);
    let good = fs::read(&obj).unwrap();
    fs::write(&obj, &good[..100]).unwrap();

    // The same bytes, committed again (from a copy, so no stat cache vouches for them).
    let copy = env.path("copy");
    fs::create_dir_all(&copy).unwrap();
    for f in ["a.csv", "big.bin"] {
        fs::copy(src.join(f), copy.join(f)).unwrap();
    }
    fs::create_dir_all(copy.join("sub")).unwrap();
    fs::copy(src.join("sub/b.csv"), copy.join("sub/b.csv")).unwrap();
    env.mlgit_json(&repo, ["commit-data", "--source", copy.to_str().unwrap()]);
    assert_eq!(fs::read(&obj).unwrap(), good, "the truncated object was not repaired");
    let v = env.mlgit_json(&repo, ["verify", "raw"]);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn a_tree_file_named_mlgit_incomplete_is_written_not_dropped() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let wt = env.path("wt");
    env.git(&repo, ["worktree", "add", "-q", "-b", "code", wt.to_str().unwrap(), "main"]);
    write_files(&wt, &[(".mlgit-incomplete", b"mine\n"), ("sub/.mlgit-incomplete", b"also mine\n")]);
    let rev = git_commit(&env, &wt, "marker-named files");
    let out = env.path("out");
    env.mlgit_ok(&repo, ["materialize", &rev, "--into", out.to_str().unwrap()]);
    assert_eq!(fs::read(out.join(".mlgit-incomplete")).unwrap(), b"mine\n");
    assert_eq!(fs::read(out.join("sub/.mlgit-incomplete")).unwrap(), b"also mine\n");
    // Again, over the first run.
    env.mlgit_ok(&repo, ["materialize", &rev, "--into", out.to_str().unwrap()]);
    assert_eq!(fs::read(out.join(".mlgit-incomplete")).unwrap(), b"mine\n");
}

#[test]
fn a_rerun_after_a_killed_materialize_removes_its_temporary_files() {
    let env = TestEnv::new();
    let (repo, src) = data_repo(&env);
    let out = env.path("out");
    // What a `kill -9` half-way leaves: the marker and temporary files beside the files.
    write_files(
        &out,
        &[
            (".mlgit-incomplete", b"x"),
            ("data/.mlgit-tmp-4242-7", b"half"),
            ("data/sub/.mlgit-tmp-4242-9", b""),
        ],
    );
    env.mlgit_ok(&repo, ["materialize", "raw", "--into", out.to_str().unwrap()]);
    assert!(temp_files(&out).is_empty(), "left: {:?}", temp_files(&out));
    assert!(!out.join(".mlgit-incomplete").exists());
    assert_eq!(fs::read(out.join("data/sub/b.csv")).unwrap(), fs::read(src.join("sub/b.csv")).unwrap());
}

#[test]
fn an_interrupted_materialize_stops_with_no_temporary_file_left() {
    let env = TestEnv::new();
    let (repo, _src) = data_repo(&env);
    let git = mlgit::repo::Repo::discover(&repo).unwrap();
    let interrupt = mlgit::interrupt::Interrupt::new();
    interrupt.trigger();
    let out = env.path("out");
    let opts = mlgit::data::materialize::MaterializeOptions {
        rev: "raw".into(),
        into: out.clone(),
        include: vec![],
        interrupt,
    };
    let err = mlgit::data::materialize::materialize(&git, &opts, &mlgit::progress::NoProgress).unwrap_err();
    assert_eq!(err.kind(), mlgit::ErrorKind::Interrupted, "{err}");
    assert!(temp_files(&out).is_empty());
    assert!(out.join(".mlgit-incomplete").exists(), "an interrupted folder must not look complete");
}

/// Set a path's modification time `secs` seconds into the past (older than gc's grace period).
fn backdate(path: &Path, secs: u64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let when = format!("@{}", now - secs);
    let touch = std::process::Command::new("touch").args(["-h", "-d", &when]).arg(path).status().unwrap();
    assert!(touch.success());
}

/// Put `content` into the store by hand, as an object nothing references.
fn orphan_object(repo: &Path, content: &[u8]) -> (String, PathBuf) {
    use sha2::Digest;
    let oid: String = sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect();
    let path = object_path(repo, &oid);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    (oid, path)
}

#[test]
fn gc_removes_unreachable_objects_and_keeps_every_object_a_ref_needs() {
    let env = TestEnv::new();
    let (repo, _src) = data_repo(&env);
    let st = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", st.to_str().unwrap(), "stable/model"]);
    let script = "mkdir -p model && printf '%05000d' 7 > model/m.bin && echo '{\"acc\":1}' > metrics.json";
    env.mlgit_ok(&st, ["train-tag", "--", "sh", "-c", script]);
    let model = lfs_oid(&env, &repo, "model-v1:model/m.bin");
    let data = lfs_oid(&env, &repo, "raw:data/big.bin");
    // Only the tag reaches the model once the branch forgets it (its reflog still does; drop it).
    env.git(&st, ["reset", "-q", "--hard", "HEAD~1"]);
    env.git(&repo, ["reflog", "expire", "--expire=now", "--all"]);
    let (orphan, orphan_path) = orphan_object(&repo, b"nobody needs me\n");
    backdate(&orphan_path, 7200);
    let (recent, recent_path) = orphan_object(&repo, b"written a moment ago\n");
    // An object only a linked worktree's index reaches.
    let (staged, staged_path) = orphan_object(&repo, b"staged in a worktree\n");
    backdate(&staged_path, 7200);
    let pointer = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{staged}\nsize 21\n");
    fs::write(st.join("staged.bin"), pointer).unwrap();
    env.git(&st, ["add", "staged.bin"]);

    let dry = env.mlgit_json(&repo, ["gc", "--dry-run"]);
    assert_eq!(dry["command"], "gc");
    assert_eq!(dry["dry_run"], true);
    let listed: Vec<&str> =
        dry["removed_objects"].as_array().unwrap().iter().map(|o| o["oid"].as_str().unwrap()).collect();
    assert_eq!(listed, vec![orphan.as_str()], "{dry}");
    assert!(orphan_path.exists(), "--dry-run removed an object");

    let v = env.mlgit_json(&repo, ["gc"]);
    assert_eq!(v["removed_objects"][0]["oid"], orphan.as_str(), "{v}");
    assert_eq!(v["recent"], 1, "{v}");
    assert!(!orphan_path.exists(), "the unreachable object is still there");
    for (what, oid) in
        [("tagged model", &model), ("raw data", &data), ("recent", &recent), ("staged", &staged)]
    {
        assert!(object_path(&repo, oid).exists(), "gc removed the {what} object");
    }
    assert!(recent_path.exists());
    let verify = env.mlgit_json(&repo, ["verify", "--all"]);
    assert_eq!(verify["ok"], true, "{verify}");
    if env.has_git_lfs() {
        env.git(&repo, ["lfs", "fsck", "model-v1", "--dry-run"]);
        env.git(&repo, ["lfs", "fsck", "raw", "--dry-run"]);
    }
}

#[test]
fn gc_removes_partial_pack_files_that_make_git_report_garbage() {
    let env = TestEnv::new();
    let (repo, _src) = data_repo(&env);
    let pack = repo.join(".git/objects/pack");
    fs::create_dir_all(&pack).unwrap();
    for name in ["pack_git2_4f2a9c", "tmp_pack_Xy12ab"] {
        fs::write(pack.join(name), vec![7u8; 4096]).unwrap();
        backdate(&pack.join(name), 7200);
    }
    let lfs_tmp = repo.join(".git/lfs/tmp");
    fs::create_dir_all(&lfs_tmp).unwrap();
    fs::write(lfs_tmp.join("partial-123"), b"half an object").unwrap();
    backdate(&lfs_tmp.join("partial-123"), 7200);
    // Copies of killed `clean` runs in the temporary folder: a stale one (with a read-only input,
    // as clean leaves it) and one a running transform still works in.
    let tmp = env.path("tmp");
    let stale = tmp.join("mlgit-clean-AbC123");
    write_files(&stale, &[("input/data/a.csv", b"1\n"), ("work/x", b"x")]);
    fs::set_permissions(stale.join("input/data"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(stale.join("input"), fs::Permissions::from_mode(0o555)).unwrap();
    backdate(&stale, 7200);
    let busy = tmp.join("mlgit-clean-Busy99");
    fs::create_dir_all(busy.join("work")).unwrap();
    backdate(&busy, 7200);
    /// Kills the stand-in transform however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sleep = std::process::Command::new("sleep").arg("60").current_dir(busy.join("work")).spawn();
    let transform = Running(sleep.unwrap());

    let garbage = env.git(&repo, ["count-objects", "-v"]);
    assert!(garbage.contains("garbage: 2"), "{garbage}");
    let v: serde_json::Value = {
        let out = env.mlgit_cmd(&repo).env("TMPDIR", &tmp).args(["--json", "gc"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(stdout(&out).trim()).unwrap()
    };
    drop(transform);
    let removed: Vec<&str> =
        v["removed_temporary"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(removed.len(), 4, "{v}");
    let counted = env.git_cmd(&repo).args(["count-objects", "-v"]).output().unwrap();
    assert!(stdout(&counted).contains("garbage: 0"), "{}", stdout(&counted));
    assert!(!stderr(&counted).contains("garbage found"), "{}", stderr(&counted));
    assert!(!lfs_tmp.join("partial-123").exists());
    assert!(!stale.exists(), "the stale clean copy is still there");
    assert!(busy.exists(), "gc removed the folder of a running transform");
    // Nothing the repository needs went with them.
    assert_eq!(env.mlgit_json(&repo, ["verify", "--all"])["ok"], true);
    env.git(&repo, ["fsck", "--no-progress"]);
}
