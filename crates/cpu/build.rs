//! Records the optimization level this crate is built at (cargo's `OPT_LEVEL` for the profile:
//! `0` for a debug build, `3` for a release build, `2` under this workspace's test profile), so the
//! roofline cache keeps an unoptimized build's ceilings apart from an optimized build's.

fn main() {
    let level = std::env::var("OPT_LEVEL").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=KERNELAB_OPT_LEVEL={level}");
    println!("cargo:rerun-if-changed=build.rs");
}
