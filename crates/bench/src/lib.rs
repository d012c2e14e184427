//! Benchmarking and checking kernelab's kernels: the f64 [`reference`](mod@reference) of every op, [`case`]s
//! that run an op on any device, the [`conformance`] suite, the checks a row passes before it is
//! timed ([`vet`], [`trust`]), [`timing`], the benchmark [`runner`], result [`record`]s, the
//! [`table`] and the [`fast_p`] summary; and [`backends`], which opens devices by name.

pub mod backends;
pub mod case;
pub mod check;
pub mod compare;
pub mod conformance;
pub mod contention;
pub mod drift;
pub mod fast_p;
pub mod footprint;
pub mod noise;
#[cfg(test)]
mod overflow_tests;
pub mod probe;
pub mod read;
pub mod record;
pub mod reference;
#[cfg(test)]
mod reference_precision_tests;
pub mod rounds;
pub mod run_shift;
pub mod runner;
pub mod slowdown;
pub mod stats;
pub mod table;
pub mod timing;
pub mod trust;
pub mod vet;
