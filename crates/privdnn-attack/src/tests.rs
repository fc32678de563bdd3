//! Unit tests on tiny untrained models and synthetic data (seconds).

use indicatif::ProgressBar;
use privdnn_artifacts::{Architecture, ModelSpec, NeuronSelection, Normalization, TrainedModel};
use privdnn_config::{Augmentation, OptimizerKind};
use privdnn_model::burn::tensor::{Tensor, TensorData};
use privdnn_model::{Network, backend_device, export_tensors};

use crate::extract::{Block, SolveSettings, random_queries, relative_error, solve};
use crate::recover::{AttackTraining, Devices, Variant, recover};
use crate::reinit::reinitialize;

fn model(architecture: Architecture, in_channels: usize, size: usize, width: f64) -> TrainedModel {
    let spec = ModelSpec {
        architecture,
        in_channels,
        image_size: size,
        num_classes: 10,
        lenet_filters: [6, 16],
        width,
    };
    let device = backend_device(privdnn_config::Backend::Flex, false).expect("flex");
    device.seed(7);
    let net = Network::new(&spec, &device).expect("network");
    let (tensors, _) = export_tensors(&net).expect("export");
    TrainedModel {
        dataset: "synthetic".into(),
        spec,
        normalization: Normalization {
            mean: vec![0.5; in_channels],
            std: vec![0.25; in_channels],
        },
        tensors,
    }
}

fn selection(l1: &[usize], l2: &[usize], channels: [usize; 2]) -> NeuronSelection {
    NeuronSelection {
        layer1: l1.to_vec(),
        layer2: l2.to_vec(),
        channels,
        algorithm: "test".into(),
    }
}

/// Element `i` of tensor `name` is in filter `row` of the first dimension.
fn row_of(m: &TrainedModel, name: &str, i: usize) -> usize {
    let t = m.tensor(name).expect("tensor");
    i / (t.values.len() / t.shape[0])
}

fn encrypted(name: &str, row: usize, sel: &NeuronSelection) -> bool {
    match name {
        "conv1.weight" | "conv1.bias" | "bn1.gamma" | "bn1.beta" | "bn1.running_mean"
        | "bn1.running_var" => sel.layer1.contains(&row),
        "conv2.weight" | "conv2.bias" => sel.layer2.contains(&row),
        _ => false,
    }
}

#[test]
fn reinitialisation_changes_the_selected_filters_and_nothing_else() {
    for (arch, cin, size, width) in [
        (Architecture::Lenet5, 1, 28, 0.5),
        (Architecture::Resnet18, 3, 32, 0.0625),
    ] {
        let m = model(arch, cin, size, width);
        let sel = selection(
            &[1, 2],
            &[0, 3],
            [
                m.tensor("conv1.weight").expect("w").shape[0],
                m.tensor("conv2.weight").expect("w").shape[0],
            ],
        );
        let (re, masks) = reinitialize(&m, &sel, 3).expect("reinit");
        assert!(masks.count() > 0);
        for (a, b) in m.tensors.iter().zip(&re.tensors) {
            assert_eq!(a.name, b.name);
            for (i, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
                let enc = encrypted(&a.name, row_of(&m, &a.name, i), &sel);
                if enc {
                    // every re-drawn weight differs (bn constants may coincide with defaults)
                    if a.name.starts_with("conv") {
                        assert_ne!(x, y, "{} [{i}] was not re-initialised", a.name);
                    }
                } else {
                    assert_eq!(x, y, "{} [{i}] changed", a.name);
                }
            }
            let mask = masks.get(&a.name);
            if let Some(mask) = mask {
                for (i, v) in mask.iter().enumerate() {
                    assert_eq!(*v > 0.0, encrypted(&a.name, row_of(&m, &a.name, i), &sel));
                }
            }
        }
        // the same seed gives the same draw
        assert_eq!(
            reinitialize(&m, &sel, 3).expect("again").0.tensors,
            re.tensors
        );
    }
}

fn tiny_training(epochs: usize) -> AttackTraining {
    AttackTraining {
        epochs,
        scratch_epochs: 1,
        batch_size: 32,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        learning_rate: 1e-2,
        lr_ratio: 10.0,
        scratch_learning_rate: 1e-3,
        scratch_augmentation: Augmentation::default(),
        eval_batch_size: 64,
        seed: 1,
    }
}

fn devices() -> Devices {
    Devices {
        train: backend_device(privdnn_config::Backend::Flex, true).expect("autodiff"),
        eval: backend_device(privdnn_config::Backend::Flex, false).expect("flex"),
    }
}

#[test]
fn freeze_trains_only_the_selected_filters_and_unfreeze_trains_all() {
    // VGG (BN + dropout in the tail) at a tiny width: BN statistics must not move either.
    let m = model(Architecture::Vgg16, 3, 32, 0.0625);
    let (train, test) = privdnn_data::synthetic(64, 32, 32, 3, 5);
    let c = privdnn_model::partition::channels(&m).expect("channels");
    let sel = selection(&[0, 2], &[1], c);
    let separated = privdnn_model::partition::separate_weights(&m, &sel).expect("separate");
    let (start, masks) = reinitialize(&separated, &sel, 1).expect("reinit");
    let bar = ProgressBar::hidden();
    let (r, frozen) = recover(
        &m,
        &sel,
        &train,
        &test,
        Variant::Freeze,
        &tiny_training(1),
        &devices(),
        &bar,
    )
    .expect("freeze");
    assert_eq!(r.reinitialized_values, masks.count());
    let mut moved = 0;
    for (a, b) in start.tensors.iter().zip(&frozen.tensors) {
        let mask = masks.get(&a.name);
        for (i, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
            if mask.is_some_and(|mk| mk[i] > 0.0) {
                moved += usize::from(x != y);
            } else {
                assert_eq!(x, y, "freeze changed {} [{i}]", a.name);
            }
        }
    }
    assert!(
        moved * 10 > masks.count() * 9,
        "only {moved} of {} selected values trained",
        masks.count()
    );
    let (_, free) = recover(
        &m,
        &sel,
        &train,
        &test,
        Variant::Unfreeze,
        &tiny_training(1),
        &devices(),
        &bar,
    )
    .expect("unfreeze");
    let changed = |name: &str| {
        let a = start.tensor(name).expect("a");
        let b = free.tensor(name).expect("b");
        a.values != b.values
    };
    assert!(changed("fc3.weight") && changed("conv1.weight"));
    for t in start.tensors.iter().filter(|t| t.name.contains("running_")) {
        assert_eq!(
            Some(&t.values),
            free.tensor(&t.name).map(|x| &x.values),
            "{} moved",
            t.name
        );
    }
}

#[test]
fn block_matches_the_burn_model() {
    for (arch, cin, size, width) in [
        (Architecture::Lenet5, 1, 28, 0.5),
        (Architecture::Vgg16, 3, 32, 0.0625),
    ] {
        let m = model(arch, cin, size, width);
        let c = privdnn_model::partition::channels(&m).expect("channels");
        let sel = selection(&[0], &[1, 2], c);
        let block = Block::from_model(&m, &sel).expect("block");
        let x = random_queries(&m, 1, 3).remove(0);
        let device = backend_device(privdnn_config::Backend::Flex, false).expect("flex");
        let net = privdnn_model::import_tensors(
            Network::new(&m.spec, &device).expect("n"),
            &m.tensors,
            None,
        )
        .expect("import");
        let xs: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let t = Tensor::<4>::from_data(TensorData::new(xs, [1, cin, size, size]), &device);
        let z2 = net
            .conv2(net.layer1(net.conv1(t)))
            .into_data()
            .try_into_vec::<f32>()
            .expect("z2");
        let ours = block.query(&x);
        let hw = block.geometry.h2 * block.geometry.h2;
        for (k, &j) in sel.layer2.iter().enumerate() {
            for p in 0..hw {
                let (a, b) = (f64::from(z2[j * hw + p]), ours[k][p]);
                assert!(
                    (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
                    "{arch:?} filter {j} position {p}: burn {a} vs block {b}"
                );
            }
        }
    }
}

#[test]
fn extraction_recovers_a_random_quadratic_block_exactly() {
    // a tiny random block: 1 input channel 8×8, conv1 3×3 pad 1 (2 filters, 1 encrypted),
    // conv2 3×3 pad 1 (2 filters, 1 selected)
    use crate::extract::Geometry;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut r = || rng.random_range(-1.0..1.0);
    let geometry = Geometry {
        cin: 1,
        size: 8,
        k1: 3,
        pad1: 1,
        pool: 1,
        c1: 2,
        h1: 8,
        k2: 3,
        pad2: 1,
        h2: 8,
        interior: false,
    };
    let block = Block {
        geometry,
        w1: (0..2).map(|_| (0..9).map(|_| r()).collect()).collect(),
        b1: vec![r(), r()],
        w2: (0..2)
            .map(|_| (0..2).map(|_| (0..9).map(|_| r()).collect()).collect())
            .collect(),
        b2: vec![r(), r()],
        s1: vec![1],
        s2: vec![0],
    };
    let m = model(Architecture::Lenet5, 1, 28, 0.5); // only its normalisation and shape
    let mut spec_model = m.clone();
    spec_model.spec.image_size = 8;
    let queries = random_queries(&spec_model, 2, 1);
    let settings = SolveSettings {
        iterations: 200,
        tolerance: 1e-12,
        ..SolveSettings::default()
    };
    let rec = solve(&block, &queries, &settings).expect("solve");
    let fresh = random_queries(&spec_model, 4, 99);
    let err = relative_error(&block, &rec, &fresh);
    assert!(
        err < 1e-6,
        "relative error {err} after {} iterations (residual {})",
        rec.iterations,
        rec.residual
    );
    assert_eq!(block.geometry.lifted(), 1 + 9 + 45);
    // the composed (obscure) block is recovered the same way
    let composed = block.compose_obscure(&[(0..9).map(|i| 0.1 * i as f64 - 0.3).collect()], 3);
    // 16 interior equations per query, 10 + 51 unknowns
    let rec =
        solve(&composed, &random_queries(&spec_model, 8, 2), &settings).expect("solve composed");
    let err = relative_error(&composed, &rec, &fresh);
    assert!(
        err < 1e-6,
        "composed: relative error {err} (residual {}, {} iterations)",
        rec.residual,
        rec.iterations
    );
}

#[test]
fn psnr_and_ssim_of_identical_and_different_images() {
    let a: Vec<f32> = (0..3 * 16 * 16).map(|i| (i % 17) as f32 / 17.0).collect();
    assert!(crate::invert::psnr(&a, &a).is_infinite());
    assert!((crate::invert::ssim(&a, &a, 3, 16) - 1.0).abs() < 1e-9);
    let b: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
    assert!(crate::invert::ssim(&a, &b, 3, 16) < 0.5);
}

/// A tiny pipeline root whose train stage output is an untrained tiny model.
fn tiny_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let pipelines = root.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).expect("mkdir");
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/tiny.toml");
    std::fs::copy(shipped, pipelines.join("tiny.toml")).expect("copy tiny.toml");
    let cfg = privdnn_config::load(&pipelines.join("tiny.toml"), None).expect("config");
    let mut m = model(Architecture::Lenet5, 1, 28, cfg.pipeline.model.width);
    m.normalization = cfg.pipeline.data.normalization.clone();
    let train = root.path().join("results/tiny/train");
    std::fs::create_dir_all(&train).expect("mkdir");
    privdnn_artifacts::write_artifact(&train.join("model.bin"), &m).expect("write model");
    root
}

/// Attack-stage arguments on the tiny root with one-epoch trainings.
fn tiny_args(root: &std::path::Path, only: &[&str], set: &[&str]) -> crate::cli::RunArgs {
    let fixed = ["epochs=1", "scratch_epochs=1", "invert_steps=20"];
    crate::cli::RunArgs {
        target: privdnn_config::PipelineArgs::new("tiny", root),
        only: only.iter().map(|s| s.to_string()).collect(),
        set: fixed.iter().chain(set).map(|s| s.to_string()).collect(),
        fresh: false,
        server: None,
        variant: None,
    }
}

fn read_metrics(root: &std::path::Path) -> serde_json::Value {
    let path = root.join("results/tiny/attack/metrics.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("metrics")).expect("json")
}

#[test]
fn an_interrupted_stage_resumes_and_fresh_starts_over() {
    let root = tiny_root();
    let set = [r#"experiments=["recover","sweep"]"#];
    crate::cli::run(&tiny_args(root.path(), &[], &set)).expect("first run");
    // an interruption during `sweep`: one point written, no time for the experiment; sentinels
    // show what a rerun keeps
    let mut v = read_metrics(root.path());
    v["recovery"]["sentinel"] = serde_json::json!(true);
    v["points"].as_array_mut().expect("points").truncate(1);
    v["points"][0]["sentinel"] = serde_json::json!(true);
    v["seconds"]
        .as_object_mut()
        .expect("seconds")
        .remove("sweep");
    let path = root.path().join("results/tiny/attack/metrics.json");
    std::fs::write(&path, serde_json::to_string(&v).expect("json")).expect("write");
    crate::cli::run(&tiny_args(root.path(), &[], &set)).expect("resumed run");
    let v = read_metrics(root.path());
    assert_eq!(v["recovery"]["sentinel"], true, "finished `recover` rerun");
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2, "the sweep was not completed");
    assert_eq!(points[0]["sentinel"], true, "the finished point was redone");
    assert!(points[1].get("sentinel").is_none() && points[1]["recovered_freeze"].is_number());
    assert!(v["seconds"]["sweep"].is_number());
    let mut fresh = tiny_args(root.path(), &[], &set);
    fresh.fresh = true;
    crate::cli::run(&fresh).expect("fresh run");
    let v = read_metrics(root.path());
    assert!(
        v["recovery"].get("sentinel").is_none(),
        "--fresh kept an old record"
    );
    assert!(
        v["points"][0].get("sentinel").is_none(),
        "--fresh kept an old point"
    );
}

#[test]
fn stage_writes_every_experiment_on_the_tiny_pipeline() {
    let root = tiny_root();
    let args = tiny_args(root.path(), &["recover", "sweep", "extract", "invert"], &[]);
    crate::cli::run(&args).expect("attack stage");
    let out = root.path().join("results/tiny/attack");
    let text = std::fs::read_to_string(out.join("metrics.json")).expect("metrics");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    for key in [
        "recovery",
        "from_scratch",
        "points",
        "extraction",
        "inversion",
        "settings",
    ] {
        assert!(v.get(key).is_some(), "metrics.json lacks `{key}`");
    }
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2);
    assert!(
        points
            .iter()
            .all(|p| p["recovered_freeze"].is_number() && p["recovered_unfreeze"].is_number())
    );
    assert!(v["from_scratch"]["accuracy"].is_number());
    assert!(out.join("inversion.png").exists());
}

/// A tiny pipeline root with an untrained LeNet5 as the SPNN variants' model and, for each
/// listed variant folder, the z1 of training images `indices` as the server would record it.
fn spnn_run(variants: &[&str], indices: &[usize]) -> tempfile::TempDir {
    use privdnn_spnn::{SERVER_VIEW_FILE, ServerView};
    let root = tempfile::tempdir().expect("tempdir");
    let pipelines = root.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).expect("mkdir");
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/tiny.toml");
    std::fs::copy(shipped, pipelines.join("tiny.toml")).expect("copy tiny.toml");
    let cfg = privdnn_config::load(&pipelines.join("tiny.toml"), None).expect("config");
    let (splits, _) = privdnn_data::load_splits(root.path(), &cfg.pipeline).expect("splits");
    let mut m = model(Architecture::Lenet5, 1, 28, cfg.pipeline.model.width);
    m.normalization = cfg.pipeline.data.normalization.clone();
    let device = backend_device(privdnn_config::Backend::Flex, false).expect("flex");
    let net = privdnn_model::import_tensors(
        Network::new(&m.spec, &device).expect("net"),
        &m.tensors,
        None,
    )
    .expect("import");
    let pixels: Vec<f32> = indices
        .iter()
        .flat_map(|&i| splits.train.image(i).iter().map(|b| f32::from(*b) / 255.0))
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [indices.len(), 1, 28, 28]), &device);
    let z1 = net.conv1(crate::invert::normalise_input(x, &m));
    let [_, c1, h1, w1] = z1.dims();
    let z1 = privdnn_model::tensor_values(z1, "z1").expect("z1");
    for (k, v) in variants.iter().enumerate() {
        let dir = root.path().join("results/tiny/baselines/spnn").join(v);
        std::fs::create_dir_all(&dir).expect("mkdir");
        privdnn_artifacts::write_artifact(&dir.join("model.bin"), &m).expect("write model");
        let view = ServerView {
            dataset: splits.train.dataset.clone(),
            noise_sigma: 0.01 * k as f64,
            epoch: 3,
            indices: indices.to_vec(),
            shape: [c1, h1, w1],
            z1: z1.clone(),
        };
        std::fs::create_dir_all(dir.join("server")).expect("server dir");
        view.write(&dir.join("server").join(SERVER_VIEW_FILE))
            .expect("write view");
    }
    root
}

fn spnn_args(root: &std::path::Path) -> crate::cli::RunArgs {
    crate::cli::RunArgs {
        target: privdnn_config::PipelineArgs::new("tiny", root),
        only: vec!["spnn_leakage".into()],
        set: vec![
            "invert_steps=300".into(),
            "invert_learning_rate=0.05".into(),
        ],
        fresh: false,
        server: None,
        variant: None,
    }
}

#[test]
fn spnn_leakage_reconstructs_training_images_from_z1() {
    let root = spnn_run(&["spnn", "spnn-noise"], &[0, 5, 17, 42, 99, 123]);
    crate::cli::run(&spnn_args(root.path())).expect("spnn leakage");
    let out = root.path().join("results/tiny/attack");
    let text = std::fs::read_to_string(out.join("spnn_leakage.json")).expect("record");
    eprintln!("{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    for key in ["images", "variants", "reference", "grid"] {
        assert!(v.get(key).is_some(), "spnn_leakage.json lacks `{key}`");
    }
    assert_eq!(v["images"], 6);
    assert_eq!(v["grid"], "spnn_leakage.png");
    assert!(out.join("spnn_leakage.png").exists());
    let reference = v["reference"]["psnr_db"].as_f64().expect("reference psnr");
    let variants = v["variants"].as_array().expect("variants");
    let names: Vec<&str> = variants.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["spnn", "spnn_noise"]);
    for r in variants {
        for key in ["noise_sigma", "epoch"] {
            assert!(r[key].is_number(), "variant lacks `{key}`");
        }
        let attackers = r["attackers"].as_array().expect("attackers");
        assert_eq!(attackers[0]["name"], "blind");
        assert_eq!(attackers[1]["name"], "released_conv1");
        for a in attackers {
            assert!(a["knows"].is_string());
            assert!(a["psnr_db"].as_f64().is_some_and(f64::is_finite), "{a}");
            assert!(a["ssim"].as_f64().is_some_and(f64::is_finite), "{a}");
        }
        let released = attackers[1]["psnr_db"].as_f64().expect("psnr");
        assert!(released > 25.0, "released conv1: {released} dB");
        assert!(
            released > reference + 10.0,
            "{released} vs reference {reference}"
        );
    }
    let metrics = std::fs::read_to_string(out.join("metrics.json")).expect("metrics");
    assert!(metrics.contains("spnn_leakage"));
}

#[test]
fn spnn_leakage_without_a_view_names_the_file_and_the_command() {
    let root = spnn_run(&[], &[0]);
    let err = crate::cli::run(&spnn_args(root.path())).expect_err("no views");
    let text = format!("{err:#}");
    assert!(text.contains("server_view.bin"), "{text}");
    assert!(text.contains("cargo xtask baseline spnn tiny"), "{text}");
}
