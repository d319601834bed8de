//! Properties of the configuration writer over generated input, with a fixed seed so a
//! run is repeatable (set `PROPTEST_RNG_SEED` to explore others).

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use stdiobus_embed::{ConfigBuffer, ConfigError, Limits, Pool};

/// Characters the kernel carries: everything but NUL and the control characters it
/// cannot decode (it decodes only `\n`, `\r` and `\t` among them).
fn carried_char() -> impl Strategy<Value = char> {
    any::<char>().prop_filter("the kernel cannot carry it", |c| {
        !c.is_control() || matches!(c, '\n' | '\r' | '\t') || *c > '\u{1f}'
    })
}

fn text(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(carried_char(), min..24).prop_map(String::from_iter)
}

fn config() -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x05ee_db05);
    ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Whatever it is given, the writer's output is JSON that gives every string back.
    #[test]
    fn written_configs_parse_and_round_trip(
        pools in proptest::collection::vec(
            (text(1), text(1), proptest::collection::vec(text(0), 0..4), 1u32..4),
            1..4,
        ),
        restarts in proptest::option::of(any::<u32>()),
    ) {
        // Ids must differ; make them so by numbering them.
        let ids: Vec<String> = pools.iter().enumerate().map(|(n, p)| format!("{n}{}", p.0)).collect();
        let args: Vec<Vec<&str>> = pools.iter().map(|p| p.2.iter().map(String::as_str).collect()).collect();
        let list: Vec<Pool<'_>> = pools
            .iter()
            .zip(&ids)
            .zip(&args)
            .map(|((p, id), args)| Pool::new(id, &p.1).args(args).instances(p.3))
            .collect();
        let limits = Limits { max_restarts: restarts, ..Limits::default() };
        let mut buffer = ConfigBuffer::<65536>::new();
        buffer.write(&list, &limits).unwrap();
        let json: serde_json::Value = serde_json::from_str(buffer.as_str()).unwrap();
        for (n, pool) in list.iter().enumerate() {
            let got = &json["pools"][n];
            prop_assert_eq!(got["id"].as_str(), Some(pool.id));
            prop_assert_eq!(got["command"].as_str(), Some(pool.command));
            prop_assert_eq!(got["instances"].as_u64(), Some(u64::from(pool.instances)));
            let got_args: Vec<&str> = got["args"].as_array().map_or(vec![], |a| a.iter().map(|v| v.as_str().unwrap()).collect());
            prop_assert_eq!(got_args, pool.args.to_vec());
        }
        prop_assert_eq!(json["limits"]["max_restarts"].as_u64(), restarts.map(u64::from));
    }

    /// A character the kernel cannot carry is refused, never written changed.
    #[test]
    fn uncarried_characters_are_refused(
        before in text(0),
        bad in prop_oneof![Just('\0'), (1u32..0x20).prop_filter_map("carried", |c| {
            let c = char::from_u32(c)?;
            (!matches!(c, '\n' | '\r' | '\t')).then_some(c)
        })],
        after in text(0),
    ) {
        let command = format!("/bin/{before}{bad}{after}");
        let mut buffer = ConfigBuffer::<4096>::new();
        let error = buffer.write(&[Pool::new("p", &command)], &Limits::default()).unwrap_err();
        prop_assert!(
            matches!(error, ConfigError::NulByte { .. } | ConfigError::UnsupportedCharacter { .. }),
            "{:?}", error
        );
    }
}
