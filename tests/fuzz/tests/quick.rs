//! The default suite's slice of the fuzzer: a fixed seed and a fixed number of executions
//! (a few seconds), every target reached, no panic and no allocation beyond a decoder's bound.

use privdnn_fuzz::{Config, run};

#[test]
fn a_quick_fixed_seed_run_finds_nothing() {
    let report = run(&Config {
        duration: None,
        iterations: Some(60_000),
        seed: 14,
        threads: 2,
    })
    .expect("fuzz targets");
    println!("{}", report.render());
    assert!(report.executions() >= 60_000);
    for t in &report.targets {
        assert!(t.executions > 50, "{} barely ran", t.name);
        assert!(t.accepted > 0, "{}: no input got past the decoder", t.name);
    }
    assert_eq!(report.panics(), 0, "{}", report.render());
    assert_eq!(report.over_limit(), 0, "{}", report.render());
}
