//! `mlgit demo`: the whole framework on built-in sample data. The library part writes the embedded
//! sample data and the second trainer into a folder and lays out the plan — the exact mlgit and git
//! command lines a user would type, in order — which the CLI runs one by one, showing each.

use std::fs;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use serde::Serialize;

use crate::error::{Error, Result};

static DEMO: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/demo");

/// One step of the demo: a program (`mlgit`, `git`, or a built-in copy) and its arguments.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// What the step shows the user, in the framework's words.
    pub title: String,
    pub program: Program,
    pub args: Vec<String>,
    /// The exit code that means success (3 for a drift report that raises an alert, as meant).
    pub expect: i32,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Program {
    Mlgit,
    Git,
    /// Copy `args[0]` to `args[1]` (shown as `cp`).
    Copy,
}

impl Step {
    fn new(title: &str, program: Program, args: &[&str]) -> Step {
        Step {
            title: title.to_string(),
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            expect: 0,
        }
    }

    fn expecting(mut self, code: i32) -> Step {
        self.expect = code;
        self
    }

    /// The command line as the user would type it.
    pub fn command_line(&self) -> String {
        let program = match self.program {
            Program::Mlgit => "mlgit",
            Program::Git => "git",
            Program::Copy => "cp",
        };
        let mut s = program.to_string();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "\"'$`\\;&|<>()*?".contains(c)) {
                s.push_str(&format!("'{}'", a.replace('\'', r"'\''")));
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

/// The folders of a demo under its root.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub root: PathBuf,
    /// The sample data a vendor "delivered".
    pub sample_data: PathBuf,
    /// The repository.
    pub repo: PathBuf,
    /// A worktree of the stable branch, where training runs.
    pub stable: PathBuf,
    /// A worktree of the second dev branch.
    pub dev: PathBuf,
    /// The second trainer, copied into the dev worktree.
    pub better_trainer: PathBuf,
    /// Production requests and labels, as the serving side would log them.
    pub production: PathBuf,
}

/// Write the sample data and the second trainer under `root` (which must not exist or be empty).
pub fn prepare(root: &Path) -> Result<Layout> {
    if root.exists() {
        let mut entries = fs::read_dir(root).map_err(|e| Error::io("read", root, e))?;
        if entries.next().is_some() {
            return Err(Error::new(
                crate::ErrorKind::AlreadyExists,
                format!("{} is not empty", root.display()),
            )
            .with_hint("give a new folder for the demo (e.g. /tmp/mlgit-demo-2), or remove this one"));
        }
    }
    let root = crate::repo::absolute(root);
    let layout = Layout {
        sample_data: root.join("sample-data"),
        repo: root.join("churn"),
        stable: root.join("churn-stable"),
        dev: root.join("churn-dev-one-rule"),
        better_trainer: root.join("better_train.sh"),
        production: root.join("production"),
        root,
    };
    write_embedded(&DEMO, "data", &layout.sample_data)?;
    write_embedded(&DEMO, "production", &layout.production)?;
    let trainer = DEMO
        .get_file("better_train.sh")
        .ok_or_else(|| Error::not_found("the embedded demo lacks better_train.sh"))?;
    fs::write(&layout.better_trainer, trainer.contents())
        .map_err(|e| Error::io("write", &layout.better_trainer, e))?;
    Ok(layout)
}

fn write_embedded(dir: &Dir<'static>, prefix: &str, dest: &Path) -> Result<()> {
    for file in dir.files() {
        let Ok(rel) = file.path().strip_prefix(prefix) else { continue };
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        fs::write(&path, file.contents()).map_err(|e| Error::io("write", &path, e))?;
    }
    for sub in dir.dirs() {
        if sub.path().starts_with(prefix) {
            write_embedded(sub, prefix, dest)?;
        }
    }
    Ok(())
}

/// The demo's steps, in order.
pub fn plan(l: &Layout) -> Vec<Step> {
    let p = |path: &Path| path.display().to_string();
    let (repo, stable, dev, prod) = (p(&l.repo), p(&l.stable), p(&l.dev), p(&l.production));
    vec![
        Step::new(
            "Create the repository: main, raw, clean, split, dev/model, stable/model, monitoring/*",
            Program::Mlgit,
            &["init", &repo, "--name", "churn"],
        ),
        Step::new(
            "Ingest the vendor's delivery onto raw (append-only, LFS, no checkout)",
            Program::Mlgit,
            &[
                "-C",
                &repo,
                "commit-data",
                "--source",
                &p(&l.sample_data),
                "-m",
                "Customer batches, events and images from the demo vendor",
            ],
        ),
        Step::new(
            "Derive clean from raw: bad records and broken files are dropped, schemas inferred",
            Program::Mlgit,
            &["-C", &repo, "clean"],
        ),
        Step::new(
            "Split the tables record by record, by customer (80/10/10, seeded, stable under growth)",
            Program::Mlgit,
            &["-C", &repo, "split", "--key", "customer_id", "--label", "churned"],
        ),
        Step::new(
            "Profile the validation rows the leaderboard is measured on",
            Program::Mlgit,
            &["-C", &repo, "show", "split"],
        ),
        Step::new(
            "Bring the code of dev/model and the data of split onto stable/model",
            Program::Mlgit,
            &["-C", &repo, "stable", "update"],
        ),
        Step::new(
            "Check out stable/model in its own worktree: training runs there",
            Program::Git,
            &["-C", &repo, "worktree", "add", &stable, "stable/model"],
        ),
        Step::new(
            "Train the baseline (majority class) and tag model + data + code + metrics",
            Program::Mlgit,
            &["-C", &stable, "train-tag", "--materialize", "--", "sh", "train.sh"],
        ),
        Step::new(
            "Start a second model on its own dev branch",
            Program::Git,
            &["-C", &repo, "worktree", "add", "-b", "dev/one-rule", &dev, "dev/model"],
        ),
        Step::new(
            "Write the better trainer (a one-rule classifier)",
            Program::Copy,
            &[&p(&l.better_trainer), &format!("{dev}/train.sh")],
        ),
        Step::new(
            "Commit the code on dev/one-rule",
            Program::Git,
            &["-C", &dev, "commit", "-q", "-am", "One-rule classifier: learn the best single-feature rule"],
        ),
        Step::new(
            "Bring the new code onto stable/model (same data)",
            Program::Mlgit,
            &["-C", &repo, "stable", "update", "--code", "dev/one-rule"],
        ),
        Step::new(
            "Train the one-rule model and tag the second snapshot",
            Program::Mlgit,
            &["-C", &stable, "train-tag", "--materialize", "--", "sh", "train.sh"],
        ),
        Step::new(
            "Merge the tracking records of both snapshots into main (what CI does on tag push)",
            Program::Mlgit,
            &["-C", &repo, "merge-tracking"],
        ),
        Step::new(
            "Follow the best model back to its raw data",
            Program::Mlgit,
            &["-C", &repo, "lineage", "model-v2"],
        ),
        Step::new(
            "Deploy the better model: staging first (a commit on env/staging with DEPLOYMENT.yaml)",
            Program::Mlgit,
            &[
                "-C",
                &repo,
                "promote",
                "model-v2",
                "--env",
                "staging",
                "--reason",
                "one rule beats the baseline",
            ],
        ),
        Step::new(
            "The baseline cannot skip staging: the policy refuses (exit 1), nothing is written",
            Program::Mlgit,
            &["-C", &repo, "promote", "model-v1", "--env", "prod"],
        )
        .expecting(1),
        Step::new(
            "model-v2 went through staging: promote it to prod",
            Program::Mlgit,
            &["-C", &repo, "promote", "model-v2", "--env", "prod", "--reason", "validated on staging"],
        ),
        Step::new(
            "Production, week 1: log the requests, each with the tag of the model that served it",
            Program::Mlgit,
            &[
                "-C",
                &repo,
                "monitor",
                "log",
                "--env",
                "prod",
                "--source",
                &format!("{prod}/requests-week-1.csv"),
            ],
        ),
        Step::new(
            "The week's ground truth arrived: join it to the requests by request id",
            Program::Mlgit,
            &[
                "-C",
                &repo,
                "monitor",
                "label",
                "--env",
                "prod",
                "--source",
                &format!("{prod}/labels-week-1.csv"),
            ],
        ),
        Step::new(
            "Compare each model's requests with that model's own training data (no alert expected)",
            Program::Mlgit,
            &["-C", &repo, "monitor", "drift", "--env", "prod"],
        ),
        Step::new(
            "Production, week 2: prices went up",
            Program::Mlgit,
            &[
                "-C",
                &repo,
                "monitor",
                "log",
                "--env",
                "prod",
                "--source",
                &format!("{prod}/requests-week-2.csv"),
            ],
        ),
        Step::new(
            "Drift: alerts (exit code 3), the report kept on monitoring/prod under alerts/",
            Program::Mlgit,
            &["-C", &repo, "monitor", "drift", "--env", "prod", "--commit"],
        )
        .expecting(3),
        Step::new(
            "Which model serves where, since when, by whom, and the last drift alert",
            Program::Mlgit,
            &["-C", &repo, "envs"],
        ),
        Step::new(
            "What tells the two models apart: their params and metrics",
            Program::Mlgit,
            &["-C", &repo, "diff", "model-v1", "model-v2", "--metrics"],
        ),
        Step::new("The leaderboard on main", Program::Mlgit, &["-C", &repo, "runs"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_writes_the_sample_data_and_refuses_a_used_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("demo");
        let l = prepare(&root).unwrap();
        assert!(l.sample_data.join("customers/batch-01.csv").is_file());
        assert!(l.sample_data.join("images/truncated.png").is_file());
        assert!(l.better_trainer.is_file());
        let err = prepare(&root).unwrap_err();
        assert!(err.message().contains("is not empty"), "{}", err.message());
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let s = Step::new("t", Program::Git, &["commit", "-m", "two words", "it's"]);
        assert_eq!(s.command_line(), r"git commit -m 'two words' 'it'\''s'");
    }
}
