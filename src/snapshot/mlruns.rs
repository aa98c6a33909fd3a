//! Reading an MLflow file store (`mlruns/<experiment>/<run>/{params,metrics,tags}/<key>`) to find
//! the run a training logged under the snapshot's tag: its params, and the last value of each metric.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::error::Result;

/// An MLflow run found in `mlruns/`.
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowRun {
    pub experiment_id: String,
    pub run_id: String,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
}

/// Read the files of one folder as key → content (keys nested in folders get '/' names, as MLflow
/// stores keys that contain '/').
fn read_keys(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(rel) = e.path().strip_prefix(dir) else { continue };
        if let Ok(text) = fs::read_to_string(e.path()) {
            out.insert(rel.to_string_lossy().into_owned(), text);
        }
    }
    out
}

/// The run whose tags or params hold the value `tag` (e.g. `mlflow.set_tag("mlgit.tag", tag)` or
/// `log_param("tag", tag)`). The first such run in path order wins.
pub fn find_run(mlruns: &Path, tag: &str) -> Result<Option<MlflowRun>> {
    let Ok(experiments) = fs::read_dir(mlruns) else { return Ok(None) };
    let mut exp_dirs: Vec<_> = experiments.flatten().filter(|e| e.path().is_dir()).collect();
    exp_dirs.sort_by_key(|e| e.file_name());
    for exp in exp_dirs {
        let Ok(runs) = fs::read_dir(exp.path()) else { continue };
        let mut run_dirs: Vec<_> = runs.flatten().filter(|e| e.path().join("meta.yaml").is_file()).collect();
        run_dirs.sort_by_key(|e| e.file_name());
        for run in run_dirs {
            let tags = read_keys(&run.path().join("tags"));
            let params = read_keys(&run.path().join("params"));
            if !tags.values().chain(params.values()).any(|v| v.trim() == tag) {
                continue;
            }
            let mut metrics = BTreeMap::new();
            for (key, text) in read_keys(&run.path().join("metrics")) {
                // Lines are "<timestamp> <value> <step>"; the last point is the highest step, then time.
                let last = text
                    .lines()
                    .filter_map(|l| {
                        let mut p = l.split_whitespace();
                        let ts: i64 = p.next()?.parse().ok()?;
                        let value: f64 = p.next()?.parse().ok()?;
                        let step: i64 = p.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                        Some((step, ts, value))
                    })
                    .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
                // Non-finite values ("nan", "inf") are kept: the record writes them as strings.
                if let Some((_, _, v)) = last {
                    metrics.insert(key, v);
                }
            }
            return Ok(Some(MlflowRun {
                experiment_id: exp.file_name().to_string_lossy().into_owned(),
                run_id: run.file_name().to_string_lossy().into_owned(),
                params,
                metrics,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_run_carrying_the_tag_and_takes_the_last_step() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("0").join("abc");
        for (rel, content) in [
            ("meta.yaml", "run_id: abc\n"),
            ("tags/mlgit.tag", "model-v2"),
            ("params/lr", "0.1"),
            ("metrics/loss", "100 0.9 0\n200 0.5 1\n150 0.7 2\n"),
            ("metrics/grad", "100 nan 0\n"),
        ] {
            let p = run.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        assert_eq!(find_run(dir.path(), "model-v1").unwrap(), None);
        let r = find_run(dir.path(), "model-v2").unwrap().unwrap();
        assert_eq!((r.experiment_id.as_str(), r.run_id.as_str()), ("0", "abc"));
        assert_eq!(r.params["lr"], "0.1");
        assert_eq!(r.metrics["loss"], 0.7);
        assert!(r.metrics["grad"].is_nan());
    }
}
