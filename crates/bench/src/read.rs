//! Reading a report back: the one reader of `kernelab compare` and `kernelab plot`. Every report
//! `kernelab bench --json` writes reads back (`null` in a row that was not run, reports from
//! before rounds); a report that is not one, or whose numbers contradict each other, is refused
//! with the file, the row and the reason.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use kernelab_tensor::{Error, Result};

use crate::record::{Record, Report, RowKey, SCHEMA_VERSION, Status};
use crate::timing::Samples;

impl Report {
    /// Reads and checks the report at `path` (see [`Report::parse`]); the error names the file.
    pub fn read(path: &Path) -> Result<Report> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: name.clone(), source })?;
        Report::parse(&text).map_err(|why| Error::Format { path: name, why })
    }

    /// Parses a report and checks it ([`Report::validate`]); the error names the row and the
    /// reason: a `schema_version` that is not the integer [`SCHEMA_VERSION`] (`"1"` and `1.0` are
    /// named as what they are), a key of the wrong type, a row that contradicts itself.
    pub fn parse(text: &str) -> std::result::Result<Report, String> {
        let mut value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        check_schema(&value)?;
        let not_a_report = "not a `kernelab bench --json` report";
        let Some(object) = value.as_object_mut() else { return Err(not_a_report.into()) };
        let rows = match object.insert("records".into(), Value::Array(Vec::new())) {
            Some(Value::Array(rows)) => rows,
            Some(other) => return Err(format!("`records` is {other}, not a list of rows")),
            None => return Err(format!("no `records`: {not_a_report}")),
        };
        let mut report: Report =
            serde_json::from_value(value).map_err(|e| format!("{not_a_report} of schema {SCHEMA_VERSION}: {e}"))?;
        report.records = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| serde_json::from_value::<Record>(row).map_err(|e| format!("records[{i}]: {e}")))
            .collect::<std::result::Result<_, _>>()?;
        report.validate()?;
        Ok(report)
    }

    /// Checks every row ([`check_record`]) and that no row appears twice (by [`RowKey`], the
    /// device included).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let mut seen: HashMap<RowKey, usize> = HashMap::with_capacity(self.records.len());
        for (i, r) in self.records.iter().enumerate() {
            let key = r.key();
            check_record(r).map_err(|why| format!("records[{i}] ({key}): {why}"))?;
            if let Some(first) = seen.insert(key, i) {
                return Err(format!(
                    "records[{first}] and records[{i}] are the same row ({}): a report holds each row once",
                    r.key()
                ));
            }
        }
        Ok(())
    }
}

/// `schema_version` must be the integer [`SCHEMA_VERSION`].
fn check_schema(value: &Value) -> std::result::Result<(), String> {
    let want = u64::from(SCHEMA_VERSION);
    match value.get("schema_version") {
        None => Err(format!(
            "no schema_version: not a `kernelab bench --json` report of schema {want} (an older one, or another \
             program's JSON?)"
        )),
        Some(Value::Number(n)) if n.as_u64() == Some(want) => Ok(()),
        Some(Value::Number(n)) if n.is_f64() => {
            Err(format!("schema_version is written `{n}`, a fractional number; a report writes the integer {want}"))
        }
        Some(Value::Number(n)) => {
            Err(format!("schema version {n}; this kernelab reads version {want}: re-run its benchmark"))
        }
        Some(Value::String(s)) => {
            Err(format!("schema_version is the string \"{s}\"; a report writes the number {want}, unquoted"))
        }
        Some(other) => Err(format!("schema_version is `{other}`, not the number {want}")),
    }
}

/// One row's numbers must agree with each other: `n` is the number of samples; an `ok` row has
/// samples, a row that did not run (`skipped`, `error`) has none, and a `fail` row has none
/// (refused by a check before or after its timing) or, in reports from before every failure was
/// refused untimed, its samples; every sample
/// is a positive, finite, normal number of seconds; `rounds`, when present, holds one increasing
/// round a sample; `median_s` is the samples' median (to 1e-9, relative).
pub fn check_record(r: &Record) -> std::result::Result<(), String> {
    let n = r.samples_s.len();
    if r.n != n {
        return Err(format!("n is {} but samples_s holds {n} samples", r.n));
    }
    let status = format!("{:?}", r.status).to_lowercase();
    match r.status {
        Status::Ok if n == 0 => {
            return Err(format!("status `{status}` without samples: a row that ran has its samples"));
        }
        Status::Skipped | Status::Error if n > 0 => {
            return Err(format!("status `{status}` with {n} samples: a row that did not run has none"));
        }
        _ => {}
    }
    for (j, &s) in r.samples_s.iter().enumerate() {
        if !s.is_finite() || s <= 0.0 {
            return Err(format!("sample {j} is {s:e}: a time is a positive, finite number of seconds"));
        }
        if !s.is_normal() {
            return Err(format!("sample {j} is {s:e}, a subnormal number: no clock measures that"));
        }
    }
    if !r.rounds.is_empty() {
        if r.rounds.len() != n {
            return Err(format!("rounds holds {} entries for {n} samples", r.rounds.len()));
        }
        if let Some(j) = r.rounds.windows(2).position(|w| w[1] <= w[0]) {
            return Err(format!(
                "rounds go from {} to {} at sample {}: a row takes one sample a round, in order",
                r.rounds[j],
                r.rounds[j + 1],
                j + 1
            ));
        }
    }
    if n > 0 {
        let median = Samples::from_secs(r.samples_s.clone()).median();
        if !(r.median_s.is_finite() && (r.median_s - median).abs() <= 1e-9 * median) {
            return Err(format!("median_s is {:e} but its samples' median is {median:e}", r.median_s));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
