//! The report reader: what it reads back and what it refuses, each refusal with its reason.

use serde_json::{Value, json};

use crate::compare::tests::{report, row};
use crate::record::{Report, Status};

/// A report with an `ok`, a `fail`, a `skipped` and an `error` row, as JSON.
fn sample_report() -> Value {
    let ok = row("naive", &[1e-3, 1.2e-3, 1.1e-3]);
    let mut fail = row("threaded", &[2e-3, 2.5e-3, 2.1e-3]);
    (fail.status, fail.ok, fail.note) = (Status::Fail, false, Some("over budget: output 0[1]".into()));
    let mut skipped = crate::record::tests::row("openblas", f64::NAN, &[64, 64, 64], 1);
    (skipped.status, skipped.n, skipped.samples_s, skipped.rounds) = (Status::Skipped, 0, vec![], vec![]);
    (skipped.flops, skipped.bytes, skipped.gflops, skipped.gbps) = (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    skipped.note = Some("skipped: not compiled in (cargo feature `openblas`)".into());
    let mut error = skipped.clone();
    (error.variant, error.status, error.note) = ("packed_avx512".into(), Status::Error, Some("error: boom".into()));
    serde_json::from_str(&report(vec![ok, fail, skipped, error]).to_json().unwrap()).unwrap()
}

fn refusal(report: &Value) -> String {
    Report::parse(&report.to_string()).unwrap_err()
}

#[test]
fn every_kind_of_row_reads_back_as_it_was_written() {
    let written = sample_report();
    assert!(written["records"][2]["flops"].is_null() && written["records"][2]["median_s"].is_null());
    let read = Report::parse(&written.to_string()).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), written, "read and written again, the same JSON");
    assert!(read.records[2].flops.is_nan() && read.records[3].status == Status::Error);
}

#[test]
fn a_report_from_before_rounds_still_reads() {
    let mut old = sample_report();
    old["settings"].as_object_mut().unwrap().remove("round_seed");
    for r in old["records"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("rounds");
    }
    let read = Report::parse(&old.to_string()).unwrap();
    assert!(read.records[0].rounds.is_empty() && read.settings.round_seed.is_none());
}

#[test]
fn a_schema_version_that_is_not_the_integer_one_is_named_as_what_it_is() {
    for (version, says) in [
        (json!("1"), "schema_version is the string \"1\""),
        (json!(1.0), "schema_version is written `1.0`, a fractional number"),
        (json!(99), "schema version 99; this kernelab reads version 1"),
        (json!(null), "schema_version is `null`"),
    ] {
        let mut r = sample_report();
        r["schema_version"] = version;
        let why = refusal(&r);
        assert!(why.contains(says), "{why}");
    }
    let mut r = sample_report();
    r.as_object_mut().unwrap().remove("schema_version");
    assert!(refusal(&r).contains("no schema_version"));
    assert!(Report::parse("[1, 2]").unwrap_err().contains("no schema_version"));
    assert!(Report::parse("{ nope").unwrap_err().starts_with("not JSON"));
}

#[test]
fn samples_that_are_not_positive_normal_times_are_refused_naming_the_row() {
    for (value, says) in [
        (json!(0.0), "sample 1 is 0e0: a time is a positive"),
        (json!(-1e-3), "sample 1 is -1e-3"),
        (json!(1e-310), "sample 1 is 1e-310, a subnormal number"),
    ] {
        let mut r = sample_report();
        r["records"][0]["samples_s"][1] = value;
        let why = refusal(&r);
        assert!(why.starts_with("records[0] (matmul cpu/naive 64x64x64 1t warm (cpu)): "), "{why}");
        assert!(why.contains(says), "{why}");
    }
    let mut r = sample_report();
    r["records"][1]["samples_s"][0] = Value::Null;
    let why = refusal(&r);
    assert!(why.starts_with("records[1]: invalid type: null, expected f64"), "{why}");
}

#[test]
fn counts_medians_statuses_and_rounds_that_disagree_with_the_samples_are_refused() {
    let refused = |edit: &dyn Fn(&mut Value), says: &str| {
        let mut r = sample_report();
        edit(&mut r);
        let why = refusal(&r);
        assert!(why.contains(says), "{why} does not say {says}");
    };
    refused(&|r| r["records"][0]["n"] = json!(4), "n is 4 but samples_s holds 3 samples");
    refused(&|r| r["records"][0]["median_s"] = json!(1.2e-3), "median_s is 1.2e-3 but its samples' median is 1.1e-3");
    refused(&|r| r["records"][0]["median_s"] = Value::Null, "median_s is NaN");
    refused(&|r| r["records"][2]["status"] = json!("ok"), "status `ok` without samples");
    refused(
        &|r| {
            r["records"][0]["status"] = json!("skipped");
        },
        "status `skipped` with 3 samples",
    );
    refused(&|r| r["records"][0]["rounds"] = json!([0, 1]), "rounds holds 2 entries for 3 samples");
    refused(&|r| r["records"][0]["rounds"] = json!([0, 2, 2]), "rounds go from 2 to 2 at sample 2");
}

#[test]
fn a_row_twice_is_refused_but_the_same_work_on_two_devices_is_two_rows() {
    let mut r = sample_report();
    let first = r["records"][0].clone();
    r["records"].as_array_mut().unwrap().push(first.clone());
    assert!(refusal(&r).contains("records[0] and records[4] are the same row (matmul cpu/naive"), "{}", refusal(&r));
    let mut other = first;
    other["device"] = json!("Another CPU");
    r["records"][4] = other;
    assert!(Report::parse(&r.to_string()).is_ok());
}
