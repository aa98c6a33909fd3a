//! `mlgit runs --where EXPR`: one condition on a run's params, metrics or tag, such as
//! `params.lr<0.1`, `metrics.accuracy>=0.9`, `accuracy>0.8` (a bare name is a metric, else a param)
//! or `tag=model-v3`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

use super::RunEntry;
use crate::error::{Error, Result};

/// The operators, longest first so `<=` is not read as `<`.
const OPS: [(&str, Op); 7] = [
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("!=", Op::Ne),
    ("==", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
    ("=", Op::Eq),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Tag,
    Branch,
    Param(String),
    Metric(String),
    /// A bare name: a metric when some run has that metric, else a param (see [`Filter::resolve`]).
    Bare(String),
}

/// One `--where` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The expression as given (for messages).
    pub text: String,
    pub field: Field,
    pub op: Op,
    pub value: String,
}

impl Filter {
    /// Parse `FIELD OP VALUE` (spaces around the operator allowed).
    pub fn parse(text: &str) -> Result<Filter> {
        let hint = "write FIELD OP VALUE, e.g. 'params.lr<0.1', 'metrics.accuracy>=0.9', 'accuracy>0.8' or \
                    'tag=model-v3'; the operators are < <= > >= = == !=";
        let Some(at) = text.find(['<', '>', '=', '!']) else {
            return Err(Error::invalid(format!("--where '{text}': no comparison operator")).with_hint(hint));
        };
        let rest = &text[at..];
        let Some((sym, op)) = OPS.iter().find(|(sym, _)| rest.starts_with(sym)) else {
            return Err(
                Error::invalid(format!("--where '{text}': '!' must be followed by '='")).with_hint(hint)
            );
        };
        let name = text[..at].trim();
        let value = rest[sym.len()..].trim();
        if name.is_empty() || value.is_empty() {
            return Err(
                Error::invalid(format!("--where '{text}': a name and a value are needed")).with_hint(hint)
            );
        }
        if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && value.parse::<f64>().is_err() {
            return Err(Error::invalid(format!(
                "--where '{text}': '{sym}' compares numbers, and '{value}' is not one"
            ))
            .with_hint("use = or != to compare text"));
        }
        // Rust reads `nan`, `inf` and `infinity` as numbers, with which nothing compares: refuse them
        // rather than list no run.
        if value.parse::<f64>().is_ok_and(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "--where '{text}': '{value}' is not a finite number, and nothing compares with it"
            ))
            .with_hint(
                "compare with a finite number; runs with a NaN or infinite metric are listed without --where",
            ));
        }
        let field = match name {
            "tag" => Field::Tag,
            "branch" => Field::Branch,
            _ => match (name.strip_prefix("params."), name.strip_prefix("metrics.")) {
                (Some(p), _) => Field::Param(p.to_string()),
                (_, Some(m)) => Field::Metric(m.to_string()),
                _ => Field::Bare(name.to_string()),
            },
        };
        Ok(Filter { text: text.to_string(), field, op: *op, value: value.to_string() })
    }

    /// Give a bare name its kind, and check that some run has the field: a condition on a name no
    /// run has is a typo, which would otherwise silently list nothing.
    pub fn resolve(mut self, metrics: &[String], params: &[String]) -> Result<Filter> {
        let known = |list: &[String], n: &str| list.iter().any(|k| k == n);
        self.field = match self.field {
            Field::Bare(n) if known(metrics, &n) => Field::Metric(n),
            Field::Bare(n) if known(params, &n) => Field::Param(n),
            Field::Metric(n) if known(metrics, &n) => Field::Metric(n),
            Field::Param(n) if known(params, &n) => Field::Param(n),
            Field::Tag => Field::Tag,
            Field::Branch => Field::Branch,
            _ => {
                return Err(Error::invalid(format!(
                    "--where '{}': no run has this metric or param",
                    self.text
                ))
                .with_hint(format!(
                    "metrics: {}; params: {}",
                    list_or_none(metrics),
                    list_or_none(params.iter().map(|p| format!("params.{p}")).collect::<Vec<_>>().as_slice())
                )))
            }
        };
        Ok(self)
    }

    /// Whether a run meets the condition; `params` are its flattened params. A run without the
    /// field does not.
    pub fn matches(&self, run: &RunEntry, params: &BTreeMap<String, Value>) -> bool {
        let (number, text) = match &self.field {
            Field::Tag => (None, Some(run.tag.clone())),
            Field::Branch => (None, run.branch.clone()),
            Field::Metric(m) | Field::Bare(m) => match run.metrics.get(m) {
                Some(v) => (Some(*v), Some(super::format_metric(*v))),
                None => (None, None),
            },
            Field::Param(p) => match params.get(p) {
                // MLflow params are strings: "0.1" compares as the number it spells.
                Some(Value::String(s)) => (s.trim().parse::<f64>().ok(), Some(s.clone())),
                Some(v) => (v.as_f64(), Some(v.to_string())),
                None => (None, None),
            },
        };
        if let (Some(x), Ok(y)) = (number, self.value.parse::<f64>()) {
            let Some(ord) = x.partial_cmp(&y) else { return false };
            return self.holds(ord);
        }
        match (text, self.op) {
            (Some(t), Op::Eq) => t == self.value,
            (Some(t), Op::Ne) => t != self.value,
            _ => false,
        }
    }

    fn holds(&self, ord: Ordering) -> bool {
        match self.op {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(params: Value, acc: f64) -> (RunEntry, BTreeMap<String, Value>) {
        let record = json!({"schema": 1, "tag": "m-v1", "params": params, "metrics": {"accuracy": acc}});
        let entry = super::super::entry_of("m-v1", &record, None);
        let flat = super::super::leaderboard::flatten_params(&entry.params);
        (entry, flat)
    }

    #[test]
    fn conditions_parse_and_compare_numbers_and_text() {
        let (r, p) = run(json!({"lr": "0.05", "model": "forest", "opt": {"lr": 0.2}}), 0.9);
        let f = |t: &str| {
            Filter::parse(t)
                .unwrap()
                .resolve(&["accuracy".into()], &["lr".into(), "model".into(), "opt.lr".into()])
        };
        for (expr, want) in [
            ("params.lr<0.1", true),
            ("params.lr >= 0.1", false),
            ("accuracy>0.8", true),
            ("metrics.accuracy<=0.9", true),
            ("accuracy!=0.9", false),
            ("model=forest", true),
            ("params.model==tree", false),
            ("params.opt.lr>0.1", true),
            ("tag=m-v1", true),
            ("tag!=m-v1", false),
        ] {
            assert_eq!(f(expr).unwrap().matches(&r, &p), want, "{expr}");
        }
        assert!(f("f1>0.5").unwrap_err().message().contains("no run has"));
        assert!(Filter::parse("lr").unwrap_err().message().contains("no comparison operator"));
        assert!(Filter::parse("lr<fast").unwrap_err().message().contains("compares numbers"));
        assert!(Filter::parse("lr!0.1").unwrap_err().message().contains("followed by '='"));
        assert!(Filter::parse("<0.1").unwrap_err().message().contains("a name and a value"));
        for bad in ["accuracy!=nan", "lr<inf", "lr=-Infinity"] {
            assert!(Filter::parse(bad).unwrap_err().message().contains("not a finite number"), "{bad}");
        }
    }
}
