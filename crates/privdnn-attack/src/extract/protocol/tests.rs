//! The extraction through both modes' real roles on a tiny untrained LeNet5 (N = 8192, the
//! default HE settings): the roles' answers equal the integer shadow, and a few queries give
//! every selected integer weight exactly, in both modes.

use privdnn_artifacts::{Architecture, ModelSpec, NeuronSelection, Normalization, TrainedModel};
use privdnn_config::{HeConfig, HeMode};
use privdnn_model::{Network, backend_device, export_tensors};

use super::{ProtocolOracle, exact_weights, random_raw, run_mode};
use crate::extract::{Block, IntUnits, Recovered, SolveSettings};

fn tiny() -> (TrainedModel, NeuronSelection) {
    let spec = ModelSpec {
        architecture: Architecture::Lenet5,
        in_channels: 1,
        image_size: 28,
        num_classes: 10,
        lenet_filters: [4, 5],
        width: 1.0,
    };
    let device = backend_device(privdnn_config::Backend::Flex, false).expect("flex");
    device.seed(3);
    let (tensors, _) =
        export_tensors(&Network::new(&spec, &device).expect("network")).expect("export");
    let model = TrainedModel {
        dataset: "synthetic".into(),
        spec,
        normalization: Normalization {
            mean: vec![0.4],
            std: vec![0.25],
        },
        tensors,
    };
    let sel = NeuronSelection {
        layer1: vec![1],
        layer2: vec![3],
        channels: [4, 5],
        algorithm: "test".into(),
    };
    (model, sel)
}

/// The truth as a solver result with channel 1 scaled by `alpha` (a symmetry of the block).
fn truth_as_recovered(block: &Block, alpha: f64) -> Recovered {
    let kk = block.geometry.k2 * block.geometry.k2;
    let c = block.s1[0];
    let j = block.s2[0];
    let mut coef: Vec<f64> = block.w2[j].iter().flatten().copied().collect();
    for t in 0..kk {
        coef[c * kk + t] /= alpha * alpha;
    }
    coef.push(block.b2[j]);
    Recovered {
        w: vec![block.w1[c].iter().map(|v| v * alpha).collect()],
        b: vec![block.b1[c] * alpha],
        coef: vec![coef],
        iterations: 0,
        restarts: 0,
        residual: 0.0,
    }
}

#[test]
fn exact_weights_undoes_the_symmetry_and_counts_every_selected_weight() {
    let (model, sel) = tiny();
    let oracle = ProtocolOracle::setup(&model, &sel, &HeConfig::default(), HeMode::UserKeyed)
        .expect("setup");
    let truth = Block::from_int(&oracle.truth, &sel.layer1, &sel.layer2).expect("block");
    // conv1: 1 × (6·6 + 1); conv2: 1 × (4·5·5 + 1)
    let total = 37 + 101;
    let mut rec = truth_as_recovered(&truth, -2.5);
    let score = exact_weights(&oracle.truth, &rec, &sel.layer1, &sel.layer2);
    assert_eq!(
        (score.exact, score.within_tolerance, score.total),
        (total, total, total)
    );
    rec.coef[0][7] += 3.0 * IntUnits::of(&oracle.truth).w2; // three integer steps off
    let score = exact_weights(&oracle.truth, &rec, &sel.layer1, &sel.layer2);
    assert_eq!(
        (score.exact, score.within_tolerance),
        (total - 1, total - 1)
    );
    assert_eq!(score.missed.len(), 1, "{:?}", score.missed);
    assert!(
        score.missed[0].starts_with("conv2.weight["),
        "{:?}",
        score.missed
    );
    // the public block has every selected weight zeroed
    assert!(oracle.public.b2[3] == 0 && oracle.public.b1[1] == 0);
    assert_ne!(oracle.public, oracle.truth);
}

#[test]
fn both_modes_answer_with_the_shadow_and_a_few_queries_give_every_selected_weight() {
    let (model, sel) = tiny();
    let he = HeConfig::default();
    let raw = random_raw(28 * 28, 2, 9);
    let settings = SolveSettings {
        iterations: 200,
        ..SolveSettings::default()
    };
    for mode in [HeMode::OwnerKeyed, HeMode::UserKeyed] {
        let mut oracle = ProtocolOracle::setup(&model, &sel, &he, mode).expect("setup");
        let got = oracle.answer(&raw).expect("answer");
        let images: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
        let shadow = privdnn_partial::shadow_outputs(&oracle.truth, &sel, &images, false);
        assert_eq!(
            got,
            shadow.z,
            "{}: the roles' answers are the shadow",
            mode.name()
        );
        assert!(oracle.bytes > 0);
        let report = run_mode(&model, &sel, &he, mode, &[2, 4, 8], &settings).expect("run");
        let needed = report["queries_for_all_weights_within_tolerance"].as_u64();
        assert!(
            needed.is_some_and(|n| n <= 8),
            "{}: {report:#}",
            mode.name()
        );
        let last = report["curve"]
            .as_array()
            .and_then(|c| c.last())
            .expect("row");
        assert_eq!(last["weights_within_tolerance"], last["weights"]);
        // everything but at most the conv2 bias (at the product scale) rounds exactly
        assert!(
            last["weights_recovered_exactly"].as_u64() >= Some(137),
            "{last:#}"
        );
        assert_eq!(last["weights"], 138);
    }
}
