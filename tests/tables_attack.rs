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

/// Let the test overwrite an LFS object (the store keeps them read-only).
fn writable(path: &Path) {
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// Change one digit of the file in place (same size, same field count: still a valid table).
fn flip_a_digit(path: &Path) -> Vec<u8> {
    let good = std::fs::read(path).expect("read object");
    let mut bad = good.clone();
    let at = bad.iter().rposition(|b| b.is_ascii_digit()).expect("a digit");
    bad[at] = if bad[at] == b'7' { b'3' } else { b'7' };
    writable(path);
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

/// A python3 that has pandas and pyarrow (the Parquet writer real uint64 ids come from). Under CI
/// (`CI=true`) a missing one fails the test; elsewhere the test is skipped with a printed reason.
fn python_with_pyarrow() -> Option<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import pandas, pyarrow, pyarrow.parquet, sys; print(sys.executable)"])
        .output()
        .ok();
    match out {
        Some(o) if o.status.success() => Some(common::stdout(&o).trim().to_string()),
        _ => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("pandas and pyarrow are required when CI=true (pip install pandas==3.1.1 pyarrow==25.0.1)");
            }
            eprintln!(
                "skipping: pandas and pyarrow are not installed (pip install pandas==3.1.1 pyarrow==25.0.1)"
            );
            None
        }
    }
}

/// Run a python script with arguments; its stdout.
fn run_python(py: &str, script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(py).arg("-c").arg(script).args(args).output().expect("run python3");
    assert!(out.status.success(), "python failed: {}", stderr(&out));
    common::stdout(&out)
}

/// The bytes of a blob of a data branch, through its LFS object when it is a pointer.
fn blob_bytes(env: &TestEnv, repo: &Path, spec: &str) -> Vec<u8> {
    let text = env.git(repo, ["show", spec]);
    if text.starts_with("version https://git-lfs") {
        std::fs::read(lfs_object(env, repo, spec)).expect("read LFS object")
    } else {
        text.into_bytes()
    }
}

/// The split (0 train, 1 validation, 2 test) of key text `key` under seed 42 and 80/10/10, the
/// documented rule (docs/split.md) written out again.
fn assign(key: &str) -> usize {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("42:{key}").as_bytes());
    let h = u64::from_be_bytes(digest[..8].try_into().unwrap()) as u128;
    if h * 100 < 80u128 << 64 {
        0
    } else if h * 100 < 90u128 << 64 {
        1
    } else {
        2
    }
}

#[test]
fn uint64_ids_above_i64_max_are_not_duplicates() {
    let Some(py) = python_with_pyarrow() else { return };
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    // Ids that were all one float each: u64::MAX and u64::MAX − 1 (both 2^64 as f64), and 2^63 +
    // k (all 2^63 as f64); small ids as a control. Every record differs only in its id.
    let mut ids: Vec<u64> = vec![u64::MAX, u64::MAX - 1];
    ids.extend((0..30).map(|k| (1u64 << 63) + k));
    ids.extend(0..10);
    let id_list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    std::fs::create_dir_all(src.join("b1")).unwrap();
    let parquet = src.join("b1/u.parquet");
    run_python(
        &py,
        "import sys, numpy as np, pandas as pd\n\
         ids = np.array([int(x) for x in sys.argv[2].split(',')], dtype=np.uint64)\n\
         pd.DataFrame({'id': ids, 'v': ['x'] * len(ids)}).to_parquet(sys.argv[1], index=False)\n",
        &[parquet.to_str().unwrap(), &id_list],
    );
    let jsonl: String = ids.iter().map(|i| format!("{{\"id\": {i}, \"v\": \"x\"}}\n")).collect();
    // A CSV holds the same ids as text: an int column whose text is parsed exactly.
    let csv: String =
        std::iter::once("id,v\n".to_string()).chain(ids.iter().map(|i| format!("{i},x\n"))).collect();
    write_files(&src, &[("b1/j.jsonl", jsonl.as_bytes()), ("b1/c.csv", csv.as_bytes())]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);

    // Nothing is a duplicate: every record is kept.
    let n = ids.len() as u64;
    let v = env.mlgit_json(&repo, ["clean", "--drop-duplicates"]);
    assert_eq!(v["records_kept"], 3 * n, "{v}");
    assert_eq!(v["records_dropped"], 0, "{v}");
    for table in ["u", "j", "c"] {
        let schema = env.git(&repo, ["show", &format!("clean:schema/{table}.json")]);
        let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
        assert_eq!(schema["columns"][0]["name"], "id", "{schema}");
        assert_eq!(schema["columns"][0]["type"], "int", "{table}: {schema}");
    }

    // A schema `unique` on id holds the distinct ids apart and still catches a repeated one.
    for table in ["u", "j", "c"] {
        let text = env.git(&repo, ["show", &format!("clean:schema/{table}.json")]);
        let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        schema["unique"] = serde_json::json!(["id"]);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = format!("schema/{table}.json");
        env.commit_on(&repo, "clean", &[(path.as_str(), text.as_bytes())], "ids are unique");
    }
    let more = src.join("b2");
    std::fs::create_dir_all(&more).unwrap();
    let new_id = (1u64 << 63) + 100;
    run_python(
        &py,
        "import sys, numpy as np, pandas as pd\n\
         ids = np.array([int(x) for x in sys.argv[2].split(',')], dtype=np.uint64)\n\
         pd.DataFrame({'id': ids, 'v': ['y'] * len(ids)}).to_parquet(sys.argv[1], index=False)\n",
        &[more.join("u.parquet").to_str().unwrap(), &format!("{new_id},{}", u64::MAX)],
    );
    let jsonl2 = format!("{{\"id\": {new_id}, \"v\": \"y\"}}\n{{\"id\": {}, \"v\": \"y\"}}\n", u64::MAX);
    let csv2 = format!("id,v\n{new_id},y\n{},y\n", u64::MAX);
    write_files(&more, &[("j.jsonl", jsonl2.as_bytes()), ("c.csv", csv2.as_bytes())]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    let v = env.mlgit_json(&repo, ["clean"]);
    assert_eq!(v["records_kept"], 3 * (n + 1), "only the repeated u64::MAX is dropped: {v}");
    let mut dropped = Vec::new();
    for t in v["tables"].as_array().unwrap() {
        for b in t["bad_records"].as_array().unwrap() {
            dropped.push((t["path"].as_str().unwrap().to_string(), b["line"].clone(), b["reason"].clone()));
        }
    }
    dropped.sort_by(|a, b| a.0.cmp(&b.0));
    let reason = "duplicate key id='18446744073709551615': an earlier record has the same unique key";
    assert_eq!(dropped.len(), 3, "{v}");
    for (d, (path, line)) in dropped.iter().zip([("b2/c.csv", 3), ("b2/j.jsonl", 2), ("b2/u.parquet", 2)]) {
        assert!(d.0.ends_with(path), "{d:?}");
        assert_eq!((d.1.as_u64(), d.2.as_str()), (Some(line), Some(reason)), "{d:?}");
    }

    // split --key id: each record goes where the exact decimal text of its id sends it.
    let v = env.mlgit_json(&repo, ["split", "--key", "id"]);
    let splits = ["train", "validation", "test"];
    let total: u64 = splits.iter().map(|s| v["records"][s].as_u64().unwrap()).sum();
    assert_eq!(total, 3 * (n + 1), "{v}");
    let want = |batch_ids: &[u64], split: usize| -> Vec<String> {
        let mut w: Vec<String> =
            batch_ids.iter().filter(|i| assign(&i.to_string()) == split).map(u64::to_string).collect();
        w.sort();
        w
    };
    let reader = "import sys, json, pyarrow.parquet as pq\n\
                  print(json.dumps([str(i) for i in pq.read_table(sys.argv[1]).column('id').to_pylist()]))\n";
    for (s, split) in splits.iter().enumerate() {
        for (batch, batch_ids) in [("b1", ids.clone()), ("b2", vec![new_id])] {
            let bytes = blob_bytes(&env, &repo, &format!("split:data/{split}/{batch}/j.jsonl"));
            let mut got: Vec<String> = String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| {
                    let id = l.split_once("\"id\": ").unwrap().1;
                    id.split_once(',').unwrap().0.to_string()
                })
                .collect();
            got.sort();
            assert_eq!(got, want(&batch_ids, s), "{split}/{batch}/j.jsonl");

            let bytes = blob_bytes(&env, &repo, &format!("split:data/{split}/{batch}/c.csv"));
            let text = String::from_utf8(bytes).unwrap();
            let mut got: Vec<String> =
                text.lines().skip(1).map(|l| l.split_once(',').unwrap().0.to_string()).collect();
            got.sort();
            assert_eq!(got, want(&batch_ids, s), "{split}/{batch}/c.csv");

            let file = env.path(&format!("{split}-{batch}-u.parquet"));
            std::fs::write(&file, blob_bytes(&env, &repo, &format!("split:data/{split}/{batch}/u.parquet")))
                .unwrap();
            let mut got: Vec<String> =
                serde_json::from_str(&run_python(&py, reader, &[file.to_str().unwrap()])).unwrap();
            got.sort();
            assert_eq!(got, want(&batch_ids, s), "{split}/{batch}/u.parquet");
        }
    }
}

/// An uncompressed, plain-encoded Parquet table of `id` and `x = id * 1_000_003`, whose bytes hold
/// each value as it is (so a changed byte is a changed value, still a valid file).
fn plain_parquet(rows: i64) -> Vec<u8> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
    let x: ArrayRef = Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i * 1_000_003)));
    let batch = RecordBatch::try_from_iter([("id", id), ("x", x)]).expect("batch");
    let props = WriterProperties::builder().set_dictionary_enabled(false).build();
    let mut file = Vec::new();
    let mut w = ArrowWriter::try_new(&mut file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    file
}

#[test]
fn clean_and_split_read_a_corrupt_parquet_lfs_object_as_data() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("t.parquet", &plain_parquet(2000))]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    // One value changed (x of row 1234: still a valid table, read to its end), then the footer
    // garbled (the file does not parse): either way clean (of a corrupt raw object) and split (of
    // a corrupt clean one) name the object as corrupt, and commit nothing.
    let commands: [(&str, &[&str], &str); 2] =
        [("clean", &["clean"], "raw"), ("split", &["split", "--key", "id"], "clean")];
    for (command, args, branch) in commands {
        let object = lfs_object(&env, &repo, &format!("{branch}:data/t.parquet"));
        let good = std::fs::read(&object).expect("read object");
        writable(&object);
        let value = (1234i64 * 1_000_003).to_le_bytes();
        let at = good.windows(8).position(|w| w == value).expect("the value's bytes");
        let mut changed = good.clone();
        changed[at] ^= 0x01;
        let mut garbled = good.clone();
        let end = garbled.len();
        garbled[end - 20..end - 8].fill(0xff);
        for (what, bad) in [("a changed value", changed), ("a garbled footer", garbled)] {
            std::fs::write(&object, &bad).expect("corrupt object");
            let refs = env.refs(&repo);
            let out = env.mlgit(&repo, args);
            assert!(!out.status.success(), "{command} of {what} succeeded: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("the LFS object of {branch}:data/t.parquet is corrupt")),
                "{command}, {what}: {}",
                stderr(&out)
            );
            assert_eq!(env.refs(&repo), refs, "{command}, {what}: a ref moved");
        }
        std::fs::write(&object, &good).expect("repair");
        env.mlgit_ok(&repo, args);
    }
}
