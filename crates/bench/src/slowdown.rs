//! A slowdown made on purpose, to show that `kernelab compare` finds a real one: in a build with
//! the cargo feature `slowdown-knob` (never a default, and named in the report's
//! `machine.features`), `KERNELAB_TEST_SLOWDOWN=VARIANT:PERCENT` (e.g. `naive:10`) makes every
//! timed launch of that CPU variant spin, after the kernel returns, for PERCENT of the time the
//! launch itself took, so the row takes `1 + PERCENT/100` times as long. Without the feature the
//! variable is ignored and this module does nothing.

use std::time::Instant;

use kernelab_tensor::{BackendKind, Result};

/// The extra fraction of a launch's time that `variant` on a `backend` device is to spin for, when
/// this build has the knob and `KERNELAB_TEST_SLOWDOWN` names the variant.
pub fn factor(backend: BackendKind, variant: &str) -> Option<f64> {
    if !cfg!(feature = "slowdown-knob") || backend != BackendKind::Cpu {
        return None;
    }
    let setting = std::env::var("KERNELAB_TEST_SLOWDOWN").ok()?;
    parse(&setting).filter(|(name, _)| *name == variant).map(|(_, fraction)| fraction)
}

/// `naive:10` → (`naive`, 0.10); `None` for anything else (a percentage from 0 to 1000).
fn parse(setting: &str) -> Option<(&str, f64)> {
    let (name, percent) = setting.split_once(':')?;
    let percent: f64 = percent.trim().trim_end_matches('%').parse().ok()?;
    (percent.is_finite() && (0.0..=1000.0).contains(&percent)).then_some((name.trim(), percent / 100.0))
}

/// Runs `launch`; with a slowdown, then spins for that fraction of the time it took (a CPU
/// launch returns when its work is done).
pub fn launch(slowdown: Option<f64>, launch: impl FnOnce() -> Result<()>) -> Result<()> {
    let Some(fraction) = slowdown else { return launch() };
    let t0 = Instant::now();
    launch()?;
    let extra = t0.elapsed().mul_f64(fraction);
    let spin = Instant::now();
    while spin.elapsed() < extra {
        std::hint::spin_loop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_setting_names_a_variant_and_a_percentage() {
        assert_eq!(parse("naive:10"), Some(("naive", 0.10)));
        assert_eq!(parse("threaded:12.5%"), Some(("threaded", 0.125)));
        assert_eq!(parse("naive"), None);
        assert_eq!(parse("naive:-5"), None);
        assert_eq!(parse("naive:x"), None);
    }

    #[test]
    fn a_slowed_launch_takes_longer_by_its_fraction_and_none_is_untouched() {
        let work = || {
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        };
        let t0 = Instant::now();
        launch(Some(0.5), work).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(30), "{:?}", t0.elapsed());
        let mut ran = false;
        launch(None, || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran);
    }
}
