//! Regression tests for defects found by attacking record-level `split` and `clean` (issue 11):
//! each test is named after the failure it guards against.

mod common;

use std::path::{Path, PathBuf};

use common::{stderr, write_files, TestEnv};

/// The LFS object file of `rev:path` (a pointer blob).
fn lfs_object(env: &TestEnv, repo: &Path, spec: &str) -> PathBuf {
    let pointer = env.git(repo, ["show", spec]);
    let oid = pointer
        .lines()
        .find_map(|l| l.strip_prefix("oid sha256:"))
        .unwrap_or_else(|| panic!("{spec} is not an LFS pointer: {pointer}"))
        .trim()
        .to_string();
    repo.join(".git/lfs/objects").join(&oid[..2]).join(&oid[2..4]).join(&oid)
}

/// Change one digit of the file in place (same size, same field count: still a valid table).
fn flip_a_digit(path: &Path) -> Vec<u8> {
    let good = std::fs::read(path).expect("read object");
    let mut bad = good.clone();
    let at = bad.iter().rposition(|b| b.is_ascii_digit()).expect("a digit");
    bad[at] = if bad[at] == b'7' { b'3' } else { b'7' };
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).expect("chmod");
    std::fs::write(path, &bad).expect("corrupt object");
    good
}

#[test]
fn split_and_clean_read_a_corrupt_lfs_object_as_data() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    let mut csv = String::from("id,x\n");
    let mut jsonl = String::new();
    for i in 0..200 {
        csv.push_str(&format!("{i},{}\n", i * 3));
        jsonl.push_str(&format!("{{\"id\":{i},\"x\":{}}}\n", i * 3));
    }
    write_files(&src, &[("t.csv", csv.as_bytes()), ("e.jsonl", jsonl.as_bytes())]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);

    for table in ["t.csv", "e.jsonl"] {
        // A corrupt raw object: clean refuses, naming it, and commits nothing.
        let object = lfs_object(&env, &repo, &format!("raw:data/{table}"));
        let good = flip_a_digit(&object);
        let refs = env.refs(&repo);
        let out = env.mlgit(&repo, ["clean"]);
        assert!(!out.status.success(), "clean of a corrupt {table} succeeded: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("the LFS object of raw:data/{table} is corrupt")),
            "{}",
            stderr(&out)
        );
        assert_eq!(env.refs(&repo), refs, "a ref moved");
        std::fs::write(&object, &good).expect("repair");
    }
    env.mlgit_ok(&repo, ["clean"]);

    for table in ["t.csv", "e.jsonl"] {
        // A corrupt clean object: split refuses, naming it, and commits nothing.
        let object = lfs_object(&env, &repo, &format!("clean:data/{table}"));
        let good = flip_a_digit(&object);
        let refs = env.refs(&repo);
        let out = env.mlgit(&repo, ["split"]);
        assert!(!out.status.success(), "split of a corrupt {table} succeeded: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("the LFS object of clean:data/{table} is corrupt")),
            "{}",
            stderr(&out)
        );
        assert_eq!(env.refs(&repo), refs, "a ref moved");
        std::fs::write(&object, &good).expect("repair");
    }
    env.mlgit_ok(&repo, ["split"]);
}

#[test]
fn a_file_that_is_not_parquet_stops_clean_and_split_without_naming_it() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a/fake.parquet", b"not parquet at all\n"), ("ok.csv", b"a,b\n1,2\n3,4\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    // Record-level clean drops the file that is not Parquet at all, naming it and why, and still
    // cleans the other tables.
    let v = env.mlgit_json(&repo, ["clean"]);
    let dropped = v["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{v}");
    assert_eq!(dropped[0]["path"], "data/a/fake.parquet");
    assert_eq!(dropped[0]["check"], "format");
    assert!(dropped[0]["reason"].as_str().unwrap().contains("Parquet"), "{v}");
    assert_eq!(v["records_kept"], 2, "{v}");
    // File-level clean keeps it; split then stops on it, naming it.
    env.mlgit_ok(&repo, ["clean", "--file-level"]);
    let refs = env.refs(&repo);
    let out = env.mlgit(&repo, ["split"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("data/a/fake.parquet: "), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs, "a ref moved");
}

#[test]
fn record_content_ignored_column_names_so_reordered_keys_straddled_and_other_columns_were_duplicates() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    // The same records with their keys in another order in a second batch, and a table whose
    // different columns happen to hold equal values.
    let mut one = String::new();
    let mut two = String::new();
    for i in 0..200 {
        one.push_str(&format!("{{\"id\":{i},\"v\":\"x{i}\"}}\n"));
        two.push_str(&format!("{{\"v\":\"x{i}\",\"id\":{i}}}\n"));
    }
    write_files(
        &src,
        &[
            ("b1/e.jsonl", one.as_bytes()),
            ("b2/e.jsonl", two.as_bytes()),
            ("p/price.csv", b"price\n10\n"),
            ("q/price.csv", b"qty\n10\n"),
        ],
    );
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    let v = env.mlgit_json(&repo, ["clean", "--drop-duplicates"]);
    // Every record of b2 repeats one of b1 (same names, same values); price and qty do not.
    assert_eq!(v["records_dropped_by_check"]["duplicate"], 200, "{v}");
    assert_eq!(v["records_kept"], 202, "{v}");
    // Without dropping them, equal records land in the same split whatever their key order.
    env.mlgit_ok(&repo, ["clean"]);
    env.mlgit_ok(&repo, ["split"]);
    for rel in ["b1/e.jsonl", "b2/e.jsonl"] {
        let mut ids = Vec::new();
        for split in ["train", "validation", "test"] {
            let text = env.git(&repo, ["show", &format!("split:data/{split}/{rel}")]);
            let text = if text.starts_with("version https://git-lfs") {
                let oid = text.lines().find_map(|l| l.strip_prefix("oid sha256:")).unwrap().to_string();
                std::fs::read_to_string(repo.join(format!(
                    ".git/lfs/objects/{}/{}/{oid}",
                    &oid[..2],
                    &oid[2..4]
                )))
                .unwrap()
            } else {
                text
            };
            let n = text.lines().count();
            ids.push(n);
        }
        assert_eq!(ids.iter().sum::<usize>(), 200, "{rel}: {ids:?}");
    }
    let count = |rel: &str, split: &str| {
        let text = env.git(&repo, ["show", &format!("split:data/{split}/{rel}")]);
        let oid = text.lines().find_map(|l| l.strip_prefix("oid sha256:")).map(str::to_string);
        match oid {
            Some(oid) => std::fs::read_to_string(repo.join(format!(
                ".git/lfs/objects/{}/{}/{oid}",
                &oid[..2],
                &oid[2..4]
            )))
            .unwrap()
            .lines()
            .count(),
            None => text.lines().count(),
        }
    };
    for split in ["train", "validation", "test"] {
        assert_eq!(count("b1/e.jsonl", split), count("b2/e.jsonl", split), "{split}: equal records straddle");
    }
}

#[test]
fn a_csv_header_that_repeats_a_name_makes_every_later_clean_fail() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let one = env.path("one");
    let two = env.path("two");
    write_files(&one, &[("t.csv", b"a,a,b\n1,2,3\n4,5,6\n"), ("u.csv", b"x\n1\n")]);
    write_files(&two, &[("2/t.csv", b"a,a,b\n7,8,9\n"), ("2/u.csv", b"x\n2\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", one.to_str().unwrap()]);
    env.mlgit_ok(&repo, ["clean"]);
    let schema = env.git(&repo, ["show", "clean:schema/t.json"]);
    assert!(schema.contains("\"a.1\""), "{schema}");
    // The schema mlgit committed must be one it reads back: the next clean works.
    env.mlgit_ok(&repo, ["commit-data", "--source", two.to_str().unwrap()]);
    let v = env.mlgit_json(&repo, ["clean"]);
    assert_eq!(v["records_kept"], 5, "{v}");
    let v = env.mlgit_json(&repo, ["split"]);
    assert_eq!(
        v["records"]["train"].as_u64().unwrap()
            + v["records"]["validation"].as_u64().unwrap()
            + v["records"]["test"].as_u64().unwrap(),
        5,
        "{v}"
    );
}

#[test]
fn a_schema_path_that_is_a_folder_gives_a_libgit2_type_error() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("t.csv", b"a,b\n1,2\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    env.mlgit_ok(&repo, ["clean"]);
    let wt = env.path("wt-clean");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "clean"]);
    std::fs::remove_file(wt.join("schema/t.json")).expect("remove the schema");
    write_files(&wt, &[("schema/t.json/x", b"{}")]);
    env.git(&wt, ["add", "-A", "."]);
    env.git(&wt, ["commit", "-q", "-m", "a folder where the schema goes"]);
    let tree = env.git(&repo, ["ls-tree", "clean", "schema/"]);
    assert!(tree.contains("tree"), "{tree}");
    let refs = env.refs(&repo);
    let out = env.mlgit(&repo, ["clean"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("clean:schema/t.json is a folder, not a schema file"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs, "a ref moved");
}
