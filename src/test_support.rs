//! What the crate's own tests share.

extern crate std;

use proptest::test_runner::{Config, RngSeed};

/// Property tests run with a fixed seed, so a CI run is repeatable; set
/// `PROPTEST_RNG_SEED` to explore others.
pub(crate) fn proptest_config(cases: u32) -> Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x05ee_db05);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}
