//! What the benchmark binaries share (each includes this file with `#[path]`): the Criterion
//! settings (ten samples a benchmark, warm-up and measurement times cut short when `CI` is set)
//! and a deterministic random generator.

use std::time::Duration;

use criterion::Criterion;

/// Whether `CI` is set: benchmarks then run smaller and shorter.
pub(crate) fn is_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Ten samples a benchmark, one second of warm-up and `measurement` of measuring; with `CI`
/// set, 200 ms and 500 ms.
pub(crate) fn bounded_criterion(measurement: Duration) -> Criterion {
    let (warm_up, measurement) = if is_ci() {
        (Duration::from_millis(200), Duration::from_millis(500))
    } else {
        (Duration::from_secs(1), measurement)
    };
    Criterion::default()
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .configure_from_args()
}

/// A small deterministic generator (xorshift64), so runs are repeatable without a `rand` dep.
pub(crate) struct Xorshift(pub(crate) u64);

impl Xorshift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}
