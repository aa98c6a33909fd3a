//! `train-tag --set KEY=VALUE`: params set on the command line for one run (as `dvc exp run
//! --set-param` does), handed to the training in a JSON file named by `MLGIT_PARAMS`, recorded in
//! the snapshot, and checked against the params the training reported.
//!
//! Why a file of its own, outside the worktree: `params.json`/`params.yaml` in the worktree are the
//! training's outputs (what it says it used, moved aside before it runs), so mlgit writing there
//! would both lose the user's file and make the snapshot record mlgit's words as the training's. The
//! file lives in the worktree's git folder, one per run, and is always written (`{}` without
//! `--set`) so training code can read it unconditionally.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The environment variable holding the path of the params file.
pub const PARAMS_ENV: &str = "MLGIT_PARAMS";
/// The longest VALUE taken: a value goes into commit trailers and the tag message, one line each.
const MAX_VALUE: usize = 1024;
/// The longest KEY taken.
const MAX_KEY: usize = 200;

const FORM: &str = "write it as KEY=VALUE, e.g. `--set params.lr=0.01` or `--set layers=[64,32]`";

/// Parse the `--set` arguments into the overrides as recorded: keys without the `params.`
/// prefix, nested keys dotted, values as YAML reads them (numbers, booleans, strings, lists).
pub fn parse(args: &[String]) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for arg in args {
        let (key, value) = parse_one(arg)?;
        if out.contains_key(&key) {
            return Err(Error::invalid(format!("--set gives '{key}' twice"))
                .with_hint("give each key once (`params.lr` and `lr` are the same key)"));
        }
        out.insert(key, value);
    }
    nested(&out)?;
    Ok(out)
}

fn parse_one(arg: &str) -> Result<(String, Value)> {
    let Some((raw_key, raw_value)) = arg.split_once('=') else {
        return Err(Error::invalid(format!("--set '{}' has no '='", clip(arg))).with_hint(FORM));
    };
    let key = key(raw_key)?;
    Ok((key.clone(), value(&key, raw_value)?))
}

/// The key as recorded: `params.` dropped, every dotted part a plain name.
fn key(raw: &str) -> Result<String> {
    let hint =
        "a key is names of letters, digits, '_' or '-' joined by dots, e.g. `lr` or `params.optimizer.lr`";
    if raw.len() > MAX_KEY {
        return Err(Error::invalid(format!(
            "--set key '{}…' is longer than {MAX_KEY} characters",
            clip(raw)
        ))
        .with_hint(hint));
    }
    let key = raw.strip_prefix("params.").unwrap_or(raw);
    if key.is_empty() || raw == "params" {
        return Err(Error::invalid(format!("--set '{raw}=…' has no key")).with_hint(FORM));
    }
    let plain = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !key.split('.').all(plain) {
        return Err(Error::invalid(format!("--set key '{raw}' is not a param name")).with_hint(hint));
    }
    Ok(key.to_string())
}

/// The value as YAML reads it: a scalar or a list (of scalars or lists), one line, finite numbers.
fn value(key: &str, raw: &str) -> Result<Value> {
    let quote = format!("quote it as a YAML string: `--set '{key}=\"…\"'`");
    if raw.len() > MAX_VALUE {
        return Err(Error::invalid(format!(
            "--set {key}: the value is {} bytes; at most {MAX_VALUE} are taken",
            raw.len()
        ))
        .with_hint("commit large settings as a file on the dev branch and let the training read it"));
    }
    if raw.contains(['\n', '\r']) {
        return Err(Error::invalid(format!("--set {key}: the value spans several lines"))
            .with_hint("give one line; a list is written `[a, b]`"));
    }
    if raw.trim().is_empty() {
        return Err(Error::invalid(format!("--set {key}= has no value"))
            .with_hint(format!("write `{key}=null` for no value, or `{key}=\"\"` for an empty string")));
    }
    let yaml: serde_yaml::Value = serde_yaml::from_str(raw).map_err(|e| {
        Error::invalid(format!("--set {key}: '{}' is not a YAML value", clip(raw)))
            .with_source(e)
            .with_hint(quote.clone())
    })?;
    if yaml.is_null() && !matches!(raw.trim(), "null" | "Null" | "NULL" | "~") {
        // `#x` is a YAML comment: an empty value the user did not mean.
        return Err(
            Error::invalid(format!("--set {key}: '{}' reads as nothing in YAML", clip(raw))).with_hint(quote)
        );
    }
    to_json(&yaml).map_err(|what| {
        Error::invalid(format!("--set {key}: {what}"))
            .with_hint(format!("set nested keys one at a time (`--set {key}.name=…`), or {quote}"))
    })
}

fn to_json(v: &serde_yaml::Value) -> std::result::Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::String(s) => Value::String(s.clone()),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{f} is not a finite number (JSON cannot hold it)"))?
            }
        }
        Y::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<std::result::Result<_, _>>()?),
        Y::Mapping(_) => return Err("a mapping is not taken as a value".into()),
        Y::Tagged(t) => return Err(format!("the YAML tag {} is not taken", t.tag)),
    })
}

/// The overrides as the training reads them: dotted keys become nested objects. A key that is both
/// a value and a parent (`a=1` with `a.b=2`) is refused.
pub fn nested(overrides: &BTreeMap<String, Value>) -> Result<Value> {
    let mut root = Map::new();
    for (key, value) in overrides {
        let parts: Vec<&str> = key.split('.').collect();
        let (last, parents) = parts.split_last().unwrap_or((&"", &[]));
        let mut at = &mut root;
        for (i, part) in parents.iter().enumerate() {
            let slot = at.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
            at = match slot {
                Value::Object(m) => m,
                _ => return Err(both(&parts[..=i].join("."), key)),
            };
        }
        if at.contains_key(*last) {
            return Err(both(key, &format!("{key}.…")));
        }
        at.insert(last.to_string(), value.clone());
    }
    Ok(Value::Object(root))
}

fn both(parent: &str, child: &str) -> Error {
    Error::invalid(format!("--set gives '{parent}' a value and also sets '{child}' inside it"))
        .with_hint(format!("set either '{parent}' or the keys inside it"))
}

/// One override as a `--set` argument that reads back as the same value (strings bare when YAML
/// would read them back as that string, else JSON, which YAML reads too): the commit trailer, and
/// what the user types to run it again.
pub fn set_arg(key: &str, value: &Value) -> String {
    let text = match value {
        Value::String(s) if value_of(s).as_ref() == Some(value) && s.trim() == s => s.clone(),
        other => other.to_string(),
    };
    format!("{key}={text}")
}

fn value_of(s: &str) -> Option<Value> {
    value("k", s).ok()
}

/// Notes for overrides the reported params contradict: the training did not use what was set.
/// Params are looked up nested (`{"opt": {"lr": …}}`) and flat (`"opt.lr"`, as MLflow logs them);
/// a param not reported is not a contradiction (the training may report only some).
pub fn contradictions(overrides: &BTreeMap<String, Value>, params: &BTreeMap<String, Value>) -> Vec<String> {
    let mut notes = Vec::new();
    for (key, set) in overrides {
        let reported = params.get(key).or_else(|| {
            let mut parts = key.split('.');
            let first = params.get(parts.next()?)?;
            parts.try_fold(first, |v, p| v.get(p))
        });
        if let Some(reported) = reported {
            if !same(set, reported) {
                notes.push(format!(
                    "the training ignored --set {}: the params it reported say {key} = {reported} \
                     (it must read the JSON file named by ${PARAMS_ENV}; see docs/experiments.md)",
                    set_arg(key, set)
                ));
            }
        }
    }
    notes
}

/// Whether a reported param is the value set: numbers by value (`1` = `1.0`), and a string (MLflow
/// logs every param as one) by what YAML reads in it.
fn same(set: &Value, reported: &Value) -> bool {
    match (set, reported) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (Value::String(a), Value::String(b)) => a == b,
        (other, Value::String(s)) => {
            let python = match s.as_str() {
                "None" => Some(Value::Null),
                "True" => Some(Value::Bool(true)),
                "False" => Some(Value::Bool(false)),
                _ => None,
            };
            match python.or_else(|| value_of(s)) {
                Some(Value::String(_)) | None => false,
                Some(read) => same(other, &read),
            }
        }
        _ => set == reported,
    }
}

/// The params file of one run, in the worktree's git folder; removed when the run is over (the
/// snapshot records the overrides).
#[derive(Debug)]
pub(super) struct ParamsFile {
    path: PathBuf,
}

impl ParamsFile {
    /// Write the nested overrides for the run `tag` of `branch` under
    /// `git_dir/mlgit/params/<branch>/`. Through a temp file and a rename, so a file or link
    /// already at that name is replaced, never written through. The caller holds the branch's
    /// lock, so no other run of `branch` is alive: files a killed run of it left there are removed
    /// first (its `Drop` never ran).
    pub(super) fn write(
        git_dir: &Path,
        branch: &str,
        tag: &str,
        overrides: &BTreeMap<String, Value>,
    ) -> Result<ParamsFile> {
        let dir = git_dir.join("mlgit").join("params").join(branch.replace('/', "-"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        sweep(&dir);
        let path = dir.join(format!("{}.json", tag.replace('/', "-")));
        let mut bytes = serde_json::to_vec_pretty(&nested(overrides)?)
            .map_err(|e| Error::invalid("cannot serialise the --set params").with_source(e))?;
        bytes.push(b'\n');
        let mut tmp =
            tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io("create a file in", &dir, e))?;
        tmp.write_all(&bytes).map_err(|e| Error::io("write", tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| Error::io("write", &path, e.error))?;
        Ok(ParamsFile { path })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ParamsFile {
    fn drop(&mut self) {
        // Best effort: a file left behind is removed by the branch's next run.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Remove what earlier runs of the branch left in its params folder (files and links only; the
/// folder is mlgit's, under the git dir, and nothing else writes there).
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| !t.is_dir()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// At most 60 characters of user input, for messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_lose_the_params_prefix_and_values_are_read_as_yaml() {
        let o = parse(&args(&[
            "params.lr=0.01",
            "opt.name=adam",
            "layers=[64, 32]",
            "deep=true",
            "seed=7",
            "tag='1.0'",
            "none=~",
        ]))
        .unwrap();
        assert_eq!(o["lr"], json!(0.01));
        assert_eq!(o["opt.name"], json!("adam"));
        assert_eq!(o["layers"], json!([64, 32]));
        assert_eq!(o["deep"], json!(true));
        assert_eq!(o["seed"], json!(7));
        assert_eq!(o["tag"], json!("1.0"));
        assert_eq!(o["none"], Value::Null);
        assert_eq!(
            nested(&o).unwrap(),
            json!({"lr": 0.01, "opt": {"name": "adam"}, "layers": [64, 32], "deep": true, "seed": 7, "tag": "1.0", "none": null})
        );
    }

    #[test]
    fn malformed_keys_and_values_are_refused_with_what_to_write() {
        for bad in [
            "lr",
            "=1",
            "params=1",
            "params.=1",
            "../x=1",
            "a..b=1",
            "a/b=1",
            ".a=1",
            "a.=1",
            "a b=1",
            "lr=",
            "lr= ",
            "lr=#x",
            "lr={a: 1}",
            "lr=[1,",
            "lr=.nan",
            "lr=a\nb",
            "lr=!custom x",
        ] {
            let e = parse(&args(&[bad])).unwrap_err();
            assert!(e.hint().is_some(), "{bad}: {}", e.message());
        }
        let huge = format!("lr={}", "9".repeat(MAX_VALUE + 1));
        assert!(parse(&[huge]).unwrap_err().message().contains("at most"));
        let long_key = format!("{}=1", "k".repeat(MAX_KEY + 1));
        assert!(parse(&[long_key]).is_err());
        assert!(parse(&args(&["lr=1", "params.lr=2"])).unwrap_err().message().contains("twice"));
        assert!(parse(&args(&["opt=1", "opt.lr=2"])).unwrap_err().message().contains("also sets"));
        assert!(parse(&args(&["opt.lr=2", "opt=1"])).is_err());
        // A param named `params` is still reachable through the prefix.
        assert_eq!(parse(&args(&["params.params=1"])).unwrap()["params"], json!(1));
    }

    #[test]
    fn a_set_arg_reads_back_as_the_same_value() {
        for v in [
            json!(0.01),
            json!("adam"),
            json!("1.0"),
            json!(" x"),
            json!("a: b"),
            json!([1, "two"]),
            json!(null),
            json!(true),
            json!(""),
        ] {
            let arg = set_arg("k", &v);
            let back = parse(std::slice::from_ref(&arg)).map(|o| o["k"].clone());
            assert_eq!(back.ok(), Some(v.clone()), "{arg}");
        }
        assert_eq!(set_arg("opt.name", &json!("adam")), "opt.name=adam");
        assert_eq!(set_arg("v", &json!("1.0")), "v=\"1.0\"");
    }

    #[test]
    fn reported_params_that_differ_from_an_override_are_contradictions() {
        let o = parse(&args(&["lr=0.01", "opt.beta=1", "n=[1,2]", "flag=true", "absent=3"])).unwrap();
        let agree = BTreeMap::from([
            ("lr".to_string(), json!("0.01")),
            ("opt".to_string(), json!({"beta": 1.0})),
            ("n".to_string(), json!("[1, 2]")),
            ("flag".to_string(), json!("True")),
        ]);
        assert_eq!(contradictions(&o, &agree), Vec::<String>::new());
        let differ = BTreeMap::from([("lr".to_string(), json!(0.1)), ("opt.beta".to_string(), json!(2))]);
        let notes = contradictions(&o, &differ);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("--set lr=0.01") && notes[0].contains("lr = 0.1"), "{notes:?}");
    }
}
