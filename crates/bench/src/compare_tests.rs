//! `compare`'s statistics on synthetic reports with known answers (nothing here is timed).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::record::{Machine, Settings};
use crate::timing::Samples;

/// A report of `records` from one made-up machine.
pub(crate) fn report(records: Vec<Record>) -> Report {
    let settings = Settings {
        warmup: 2,
        repeat: 30,
        min_runs: 3,
        budget_s: 2.0,
        cold: false,
        threads: 2,
        batch_below_s: 2e-5,
        batch_target_s: 2e-4,
        noisy_spread: 1.2,
        variants: "all".into(),
        round_seed: Some(1),
        settle_s: 0.0,
    };
    let machine = Machine {
        cpu: "Test CPU".into(),
        logical_cores: 2,
        caches: vec![],
        os: "linux".into(),
        kernel: "6.1".into(),
        arch: "x86_64".into(),
        rustc: "rustc".into(),
        kernelab_version: "0.1.0".into(),
        git_commit: "abc".into(),
        git_dirty: false,
        features: vec![],
        unix_time: 0,
    };
    Report {
        schema_version: crate::record::SCHEMA_VERSION,
        command: vec!["kernelab".into(), "bench".into()],
        settings,
        machine,
        devices: vec![],
        baselines: vec![],
        records,
        fast_p: None,
        probe: None,
    }
}

/// An `ok` matmul row of `variant` at 64×64×64 with these samples (seconds, one a round).
pub(crate) fn row(variant: &str, samples: &[f64]) -> Record {
    let s = Samples::from_secs(samples.to_vec());
    let mut r = crate::record::tests::row(variant, s.median(), &[64, 64, 64], 1);
    r.n = samples.len();
    r.samples_s = samples.to_vec();
    r.rounds = (0..samples.len() as u32).collect();
    (r.p10_s, r.p90_s) = (s.quantile(0.1), s.quantile(0.9));
    r
}

/// `n` samples around `center`, each off by a factor drawn uniformly from `1 ± spread`.
fn noisy(rng: &mut ChaCha8Rng, center: f64, spread: f64, n: usize) -> Vec<f64> {
    (0..n).map(|_| center * (1.0 + spread * (2.0 * rng.random::<f64>() - 1.0))).collect()
}

/// Ten rows (`v0` … `v9`) of 30 samples around 10 µs … 100 µs, each `spread` wide, every center
/// multiplied by `scale[i]`.
fn run(seed: u64, spread: f64, scale: impl Fn(usize) -> f64) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    report(
        (0..10)
            .map(|i| row(&format!("v{i}"), &noisy(&mut rng, 1e-5 * (i + 1) as f64 * scale(i), spread, 30)))
            .collect(),
    )
}

fn verdicts(c: &Comparison) -> Vec<Verdict> {
    c.pairs.iter().map(|p| p.verdict).collect()
}

#[test]
fn identical_reports_are_the_same_row_for_row() {
    let a = run(1, 0.05, |_| 1.0);
    let c = compare(&a, &a, &Floor::given(0.05), SAME_WITHIN);
    assert_eq!(verdicts(&c), vec![Verdict::Same; 10]);
    assert!(c.pairs.iter().all(|p| (p.ratio, p.ratio_low, p.ratio_high) == (1.0, 1.0, 1.0)));
    assert!(regressions(&c.pairs, 0.0).is_empty(), "not even a threshold of 0% fails one run against itself");
}

#[test]
fn drift_between_runs_within_the_noise_floor_is_never_a_difference() {
    // The second run is the first one's machine on another day: every row 3% (one floor) slower
    // or faster, plus each sample's own 2% noise. Its samples alone would call every row
    // different (the old test said so at p < 1e-4); with the floor of 3% between runs, none is.
    let floor = Floor::given(0.03);
    for (seed, drift) in [(2, 1.03), (3, 0.97), (4, 1.045)] {
        let (a, b) = (run(1, 0.02, |_| 1.0), run(seed, 0.02, |_| drift));
        let c = compare(&a, &b, &floor, SAME_WITHIN);
        assert_eq!(c.pairs.len(), 10);
        assert!(
            c.pairs.iter().all(|p| matches!(p.verdict, Verdict::Same | Verdict::Undecided)),
            "drift {drift}: {:?}",
            verdicts(&c)
        );
        assert!(regressions(&c.pairs, 0.05).is_empty(), "drift {drift} fails a 5% gate");
        // Without the floor, each row on its own, the same drift is a difference in every row:
        // the floor is what tells the two apart.
        let bare = compare_with(&a, &b, &Floor::given(0.0), Judging::absolute(SAME_WITHIN));
        let moved = bare.pairs.iter().filter(|p| matches!(p.verdict, Verdict::Slower | Verdict::Faster)).count();
        assert!(moved >= 8, "drift {drift}: {:?}", verdicts(&bare));
    }
}

#[test]
fn a_ten_percent_slowdown_of_one_row_is_slower_and_fails_a_five_percent_gate() {
    // A quiet machine's floor (1%), samples within ±1%; row v4 of the new run 10% slower.
    let (a, b) = (run(1, 0.01, |_| 1.0), run(2, 0.01, |i| if i == 4 { 1.10 } else { 1.0 }));
    let c = compare(&a, &b, &Floor::given(0.01), SAME_WITHIN);
    let slow = &c.pairs[4];
    assert_eq!((slow.key.variant.as_str(), slow.verdict), ("v4", Verdict::Slower));
    assert!((slow.ratio - 1.10).abs() < 0.01 && slow.ratio_low > 1.05 && slow.ratio_high < 1.16, "{slow:?}");
    let failing: Vec<&str> = regressions(&c.pairs, 0.05).iter().map(|p| p.key.variant.as_str()).collect();
    assert_eq!(failing, vec!["v4"]);
    let others: Vec<Verdict> = c.pairs.iter().filter(|p| p.key.variant != "v4").map(|p| p.verdict).collect();
    assert_eq!(others, vec![Verdict::Same; 9]);
    // The other way round, v4 is faster and nothing fails.
    let back = compare(&b, &a, &Floor::given(0.01), SAME_WITHIN);
    assert_eq!(back.pairs[4].verdict, Verdict::Faster);
    assert!(regressions(&back.pairs, 0.05).is_empty());
}

#[test]
fn the_threshold_means_what_it_says_at_one_and_at_fifty_percent() {
    // Tight rows (floor 0.2%, samples within ±0.2%): v0 3% slower, v1 twice as slow, v2 1.45
    // times; v3 3% slower on a machine whose floor is 5%, which cannot tell.
    let scale = |i: usize| [1.03, 2.0, 1.45, 1.03, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0][i];
    let (a, b) = (run(1, 0.002, |_| 1.0), run(2, 0.002, scale));
    let mut floor = Floor::given(0.002);
    let v3 = b.records[3].key();
    floor.rows.insert(v3.to_string(), 0.05);
    let c = compare(&a, &b, &floor, SAME_WITHIN);
    let failing = |t: f64| regressions(&c.pairs, t).iter().map(|p| p.key.variant.clone()).collect::<Vec<_>>();
    assert_eq!(failing(0.01), vec!["v0", "v1", "v2"], "1%: every row surely slower by more than 1%");
    assert_eq!(failing(0.50), vec!["v1"], "50%: only the twofold slowdown");
    assert_eq!(failing(0.0), vec!["v0", "v1", "v2"]);
    assert_eq!(c.pairs[3].verdict, Verdict::Undecided, "{:?}", c.pairs[3]);
    assert!(c.pairs[0].ratio_low > 1.01 && c.pairs[0].ratio_high < 1.05, "{:?}", c.pairs[0]);
}

#[test]
fn rows_that_are_not_ok_are_never_paired_and_a_failing_new_row_is_named() {
    let a = run(1, 0.01, |_| 1.0);
    let mut b = a.clone();
    b.records[0].status = Status::Fail;
    b.records[0].note = Some("over budget: output 0[3]".into());
    b.records[1].status = Status::Skipped;
    (b.records[1].n, b.records[1].samples_s, b.records[1].rounds) = (0, vec![], vec![]);
    b.records[2].device = "Another CPU".into();
    let c = compare(&a, &b, &Floor::given(0.01), SAME_WITHIN);
    assert_eq!(c.pairs.len(), 7);
    assert!(c.pairs.iter().all(|p| !["v0", "v1", "v2"].contains(&p.key.variant.as_str())));
    assert_eq!(c.failed.len(), 1);
    assert_eq!((c.failed[0].0.variant.as_str(), c.failed[0].1), ("v0", Status::Fail));
    assert_eq!((c.unmatched, c.not_ok), (3, (0, 2)));
    assert_eq!(c.other_device, vec![("cpu".to_string(), "Another CPU".to_string())]);
}

/// A floor taken as exact (given on the command line).
fn exact(sigma: f64) -> RowFloor {
    RowFloor { sigma, df: f64::INFINITY }
}

#[test]
fn a_row_of_a_million_samples_compares_in_n_log_n() {
    // A bootstrap of 2000 resampled medians sorted 4·10⁹ values here and ran for minutes; the
    // sort-based estimates take well under a second.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (a, b) = (noisy(&mut rng, 1e-6, 0.05, 1_000_000), noisy(&mut rng, 1.1e-6, 0.05, 1_000_000));
    let (ratio, (low, high), v) = judge(&a, &b, exact(0.01), SAME_WITHIN);
    assert!((ratio - 1.1).abs() < 1e-3 && low > 1.06 && high < 1.15, "{ratio} ({low}, {high})");
    assert_eq!(v, Verdict::Slower);
}

#[test]
fn verdicts_follow_the_interval() {
    assert_eq!(verdict((1.01, 1.2), 0.05), Verdict::Slower);
    assert_eq!(verdict((0.8, 0.99), 0.05), Verdict::Faster);
    assert_eq!(verdict((0.96, 1.04), 0.05), Verdict::Same);
    assert_eq!(verdict((0.94, 1.04), 0.05), Verdict::Undecided);
    assert_eq!(verdict((0.97, 1.06), 0.05), Verdict::Undecided);
    // One sample a side says nothing of the spread: the interval is unbounded.
    let (_, (low, high), v) = judge(&[1.0], &[2.0], exact(0.01), 0.05);
    assert_eq!((low, high, v), (0.0, f64::INFINITY, Verdict::Undecided));
}

#[test]
fn rows_that_scatter_more_than_the_floor_allows_are_flagged() {
    // Ten rows, each moved by its own ±20% between the runs (a loaded machine's run-level luck),
    // against a floor of 1% measured in quiet: flagged. The same against a 20% floor, or a
    // 10% slowdown of one row among quiet ones: not.
    let shift = |i: usize| [1.2, 0.8, 1.15, 0.85, 1.2, 0.8, 1.1, 0.9, 1.25, 0.75][i];
    let (a, b) = (run(1, 0.01, |_| 1.0), run(2, 0.01, shift));
    let quiet = compare(&a, &b, &Floor::given(0.01), SAME_WITHIN);
    let (observed, expected) = spread_beyond_floor(&quiet.pairs).expect("flagged");
    assert!(observed > 0.1 && expected < 0.02, "{observed} {expected}");
    assert_eq!(spread_beyond_floor(&compare(&a, &b, &Floor::given(0.2), SAME_WITHIN).pairs), None);
    let one = run(2, 0.01, |i| if i == 4 { 1.10 } else { 1.0 });
    assert_eq!(spread_beyond_floor(&compare(&a, &one, &Floor::given(0.01), SAME_WITHIN).pairs), None);
    assert_eq!(spread_beyond_floor(&compare(&a, &a, &Floor::given(0.01), SAME_WITHIN).pairs), None);
}

/// `report` with a machine probe of 30 samples around `t`.
fn probed(mut report: Report, t: f64) -> Report {
    let samples: Vec<f64> = (0..30).map(|i| t * (1.0 + 0.01 * f64::from(i % 5))).collect();
    report.probe = Some(crate::probe::Probe {
        what: crate::probe::WHAT.into(),
        samples_s: samples,
        rounds: (0..30).collect(),
        ..Default::default()
    });
    report
}

#[test]
fn a_machine_slower_in_one_run_by_its_own_probe_is_no_regression_of_the_code() {
    // The second run's machine is 30% slower throughout (a neighbour on the same core): every
    // row and the probe alike. Without the probe every row would be `slower` at a 5% gate.
    let floor = Floor::given(0.01);
    let (a, b) = (run(1, 0.01, |_| 1.0), run(2, 0.01, |_| 1.3));
    let absolute = Judging::absolute(SAME_WITHIN);
    let blind = compare_with(&a, &b, &floor, absolute);
    assert_eq!(regressions(&blind.pairs, 0.05).len(), 10, "the control: without probes, all ten fail");
    let c = compare(&probed(a.clone(), 2e-4), &probed(b.clone(), 2.6e-4), &floor, SAME_WITHIN);
    assert!(c.machine.is_some_and(|(ratio, shift)| (ratio - 1.3).abs() < 1e-9 && shift > 0.2), "{:?}", c.machine);
    assert!(regressions(&c.pairs, 0.05).is_empty(), "{:?}", verdicts(&c));
    assert!(c.pairs.iter().all(|p| p.verdict == Verdict::Undecided), "{:?}", verdicts(&c));
    // The probes agreeing, the same ten rows are slower again: the probe widens nothing then.
    let same_machine = compare_with(&probed(a, 2e-4), &probed(b, 2e-4), &floor, absolute);
    assert_eq!(regressions(&same_machine.pairs, 0.05).len(), 10);
    assert_eq!(same_machine.machine.map(|(_, shift)| shift), Some(0.0));
}

/// `report` whose rows ran on `threads` threads while other processes took `others` cores of two.
fn on_shared_cores(mut report: Report, threads: usize, others: f64) -> Report {
    report.records.iter_mut().for_each(|r| r.threads = Some(threads));
    let contention = crate::contention::Contention { cores: 2, others_busy_cores: others, seconds: 60.0 };
    report.probe = Some(crate::probe::Probe { contention: Some(contention), ..Default::default() });
    report
}

#[test]
fn rows_whose_threads_shared_the_cores_are_undecided_whatever_their_times() {
    // Two-thread rows, and one busy process on a two-core machine during the second run: the
    // rows ran 1.3× to 2.2× slower there, as descheduled pool threads make them. No gate fails.
    let floor = Floor::given(0.01);
    let slow = |i: usize| 1.3 + 0.1 * i as f64;
    let (a, b) = (on_shared_cores(run(1, 0.01, |_| 1.0), 2, 0.02), on_shared_cores(run(2, 0.01, slow), 2, 0.97));
    let c = compare(&a, &b, &floor, SAME_WITHIN);
    assert!(c.pairs.iter().all(|p| p.contended && p.verdict == Verdict::Undecided), "{:?}", verdicts(&c));
    assert!(regressions(&c.pairs, 0.05).is_empty());
    assert_eq!(c.run, None, "contended rows are not counted in the run's shift either");
    // The control: the same times with the second run's cores as free as the first's are ten
    // regressions, each row on its own; so are one-thread rows beside the busy process (one
    // thread and it fit on two cores).
    let absolute = Judging::absolute(SAME_WITHIN);
    let quiet = compare_with(&a, &on_shared_cores(run(2, 0.01, slow), 2, 0.02), &floor, absolute);
    assert_eq!(regressions(&quiet.pairs, 0.05).len(), 10);
    assert!(quiet.pairs.iter().all(|p| !p.contended));
    let (a1, b1) = (on_shared_cores(run(1, 0.01, |_| 1.0), 1, 0.02), on_shared_cores(run(2, 0.01, slow), 1, 0.97));
    assert_eq!(regressions(&compare_with(&a1, &b1, &floor, absolute).pairs, 0.05).len(), 10);
    // Contention in the base run counts as well.
    let reversed = compare(&on_shared_cores(run(1, 0.01, |_| 1.0), 2, 0.97), &b, &floor, SAME_WITHIN);
    assert!(reversed.pairs.iter().all(|p| p.contended));
    // One contended run read twice is the same samples: `same`, not doubted.
    let twice = compare(&b, &b, &floor, SAME_WITHIN);
    assert!(twice.pairs.iter().all(|p| !p.contended && p.verdict == Verdict::Same), "{:?}", verdicts(&twice));
}

/// The verdicts of `c`'s pairs other than `variant`.
fn others(c: &Comparison, variant: &str) -> Vec<Verdict> {
    c.pairs.iter().filter(|p| p.key.variant != variant).map(|p| p.verdict).collect()
}

#[test]
fn a_whole_run_drift_of_eight_percent_is_no_row_slower_and_fails_no_gate() {
    // Every row of the second run 8% slower (the machine after an hour of load), samples within
    // ±0.5%, floor 1%. Each row on its own is `slower` (the control below); against the run's
    // shift none is, and the shift is named with its interval.
    let floor = Floor::given(0.01);
    let (a, b) = (run(1, 0.005, |_| 1.0), run(2, 0.005, |_| 1.08));
    let c = compare(&a, &b, &floor, SAME_WITHIN);
    assert!(c.pairs.iter().all(|p| p.verdict == Verdict::Undecided && p.with_run), "{:?}", verdicts(&c));
    assert!(regressions(&c.pairs, 0.05).is_empty());
    let run = c.run.expect("ten rows");
    assert!((run.ratio - 1.08).abs() < 0.005 && run.moved(), "{run:?}");
    assert!(run.ratio_low < 1.05 && run.ratio_high > 1.10, "the floor between runs allows 8%: {run:?}");
    assert!(!run.slower_beyond(0.05), "so no exit for the whole run at a 5% gate either: {run:?}");
    let absolute = compare_with(&a, &b, &floor, Judging::absolute(SAME_WITHIN));
    assert_eq!(verdicts(&absolute), vec![Verdict::Slower; 10], "the control: each row on its own is slower");
    assert_eq!(absolute.run, c.run, "the shift is reported either way");
}

#[test]
fn one_row_ten_percent_slower_under_the_same_drift_is_slower() {
    // The same 8% drift, and v4 10% slower than that (1.188 in all): v4 alone is `slower`,
    // relative to the run, and fails a 5% gate; the other nine moved only with the run.
    let floor = Floor::given(0.01);
    let (a, b) = (run(1, 0.005, |_| 1.0), run(2, 0.005, |i| if i == 4 { 1.08 * 1.10 } else { 1.08 }));
    let c = compare(&a, &b, &floor, SAME_WITHIN);
    let slow = &c.pairs[4];
    assert_eq!(slow.verdict, Verdict::Slower, "{slow:?}");
    let relative = slow.relative.expect("judged");
    assert!((relative - 1.10).abs() < 0.01 && slow.relative_low.is_some_and(|low| low > 1.05), "{slow:?}");
    let failing: Vec<&str> = regressions(&c.pairs, 0.05).iter().map(|p| p.key.variant.as_str()).collect();
    assert_eq!(failing, vec!["v4"]);
    assert_eq!(others(&c, "v4"), vec![Verdict::Undecided; 9]);
    assert!((c.run.expect("ten rows").ratio - 1.08).abs() < 0.005, "{:?}", c.run);
}

#[test]
fn one_row_ten_percent_slower_without_drift_is_still_slower() {
    // No drift: the run's shift is 1 within its interval, v4 is `slower` and the rest `same`,
    // as when each row is judged on its own.
    let floor = Floor::given(0.01);
    let (a, b) = (run(1, 0.005, |_| 1.0), run(2, 0.005, |i| if i == 4 { 1.10 } else { 1.0 }));
    let c = compare(&a, &b, &floor, SAME_WITHIN);
    assert_eq!(c.pairs[4].verdict, Verdict::Slower, "{:?}", c.pairs[4]);
    assert_eq!(others(&c, "v4"), vec![Verdict::Same; 9]);
    let run = c.run.expect("ten rows");
    assert!(!run.moved() && (run.ratio - 1.0).abs() < 0.005, "{run:?}");
    assert_eq!(regressions(&c.pairs, 0.05).len(), 1);
    assert_eq!(verdicts(&compare_with(&a, &b, &floor, Judging::absolute(SAME_WITHIN))), verdicts(&c));
}

#[test]
fn the_control_one_report_twice_and_two_quiet_runs_are_the_same() {
    // One run read twice: every row `same` with the interval [1, 1], and no shift (no row
    // differs). Two independent runs of one quiet machine: every row `same`, the shift 1.
    let floor = Floor::given(0.01);
    let a = run(1, 0.005, |_| 1.0);
    let twice = compare(&a, &a, &floor, SAME_WITHIN);
    assert_eq!(verdicts(&twice), vec![Verdict::Same; 10]);
    assert_eq!(twice.run, None);
    let quiet = compare(&a, &run(2, 0.005, |_| 1.0), &floor, SAME_WITHIN);
    assert_eq!(verdicts(&quiet), vec![Verdict::Same; 10]);
    assert!(quiet.pairs.iter().all(|p| p.judged_relative && !p.with_run));
    assert!(quiet.run.is_some_and(|r| !r.moved()), "{:?}", quiet.run);
}

/// Two reports whose rows were timed with different settling are flagged; the same settling is not.
#[test]
fn differences_name_a_change_of_settling() {
    let base = report(vec![]);
    let mut new = report(vec![]);
    assert!(differences(&base, &new).is_empty());
    new.settings.settle_s = 0.002;
    let lines = differences(&base, &new);
    assert!(
        lines.len() == 1 && lines[0].starts_with("different settling") && lines[0].contains("0 ms and 2 ms"),
        "{lines:?}"
    );
}
