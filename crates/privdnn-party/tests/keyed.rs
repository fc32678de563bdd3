//! The user-keyed mode over loopback TCP on a tiny LeNet5: the owner serves only the public
//! keyed model, answers a request sent in many parts, and the decrypted outputs equal the
//! integer shadow bit for bit; a `decrypt` frame and the owner-keyed files are refused.

use std::time::Duration;

use privdnn_artifacts::{
    ModelSpec, NeuronSelection, Normalization, RunLayout, TrainedModel, read_artifact,
};
use privdnn_config::{Backend, HeConfig};
use privdnn_he::engine::Layout;
use privdnn_model::{Network, export_tensors};
use privdnn_partial::keyed::{KeyedModelFile, KeyedOwnerFile, KeyedUserSide, setup, write_setup};
use privdnn_partial::shadow_outputs;
use privdnn_party::client::Client;
use privdnn_party::server::{Server, ServerConfig};
use privdnn_party::wire::{FileId, Limits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny_model() -> TrainedModel {
    let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
    let spec = ModelSpec {
        architecture: privdnn_artifacts::Architecture::Lenet5,
        in_channels: 1,
        image_size: 28,
        num_classes: 10,
        lenet_filters: [4, 5],
        width: 1.0,
    };
    let (tensors, _) =
        export_tensors(&Network::new(&spec, &device).expect("network")).expect("export");
    TrainedModel {
        dataset: "synthetic".into(),
        spec,
        normalization: Normalization {
            mean: vec![0.4],
            std: vec![0.25],
        },
        tensors,
    }
}

#[test]
fn a_keyed_client_gets_shadow_exact_outputs_over_tcp_and_decrypt_is_refused() {
    let model = tiny_model();
    let selection = NeuronSelection {
        layer1: vec![1],
        layer2: vec![2, 4],
        channels: [4, 5],
        algorithm: "test".into(),
    };
    let out = setup(&model, &selection, &HeConfig::default()).expect("keyed setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = RunLayout::new(dir.path());
    write_setup(&layout, &out, None).expect("write");
    assert!(!layout.owner_secret().exists() && !layout.evaluation_keys().exists());
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let server = Server::bind_keyed(&layout.keyed_model(), &layout.keyed_owner_block(), &config)
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.addr().to_string();
    let mut client =
        Client::connect(&addr, Limits::default(), Duration::from_secs(5)).expect("connect");
    let info = client.info().expect("info");
    assert_eq!(
        info.files.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![FileId::KeyedModel]
    );
    let bytes = client.file(FileId::KeyedModel).expect("download");
    let cached = dir.path().join("client").join("keyed_model.bin");
    privdnn_artifacts::write_bytes_atomic(&cached, &bytes).expect("cache");
    let file: KeyedModelFile = read_artifact(&cached).expect("keyed model");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let user = KeyedUserSide::new(file, Layout::Batch, &mut rng).expect("user");
    let images: Vec<Vec<u8>> = (0..3)
        .map(|_| (0..28 * 28).map(|_| rng.random::<u8>()).collect())
        .collect();
    let raw: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let (request, pending) = user.request(&raw, &mut rng).expect("request");
    let request = privdnn_artifacts::codec::encode(&request).expect("encode");
    let (reply, call) = client.keyed(1, &request, 4 << 20).expect("keyed call");
    assert!(
        call.parts > 1,
        "{} bytes in {} parts",
        request.len(),
        call.parts
    );
    let got = user.finish(&pending, &reply).expect("finish");
    let owner: KeyedOwnerFile = read_artifact(&layout.keyed_owner_block()).expect("owner");
    let shadow = shadow_outputs(&owner.block, &selection, &raw, owner.layer1);
    assert_eq!(got.z, shadow.z, "decrypted outputs equal the shadow");
    // No decryption exists on this service: the frame is refused with a clear error.
    let err = client.decrypt(vec![1, 2, 3]).expect_err("refused");
    assert!(err.to_string().contains("user-keyed"), "{err}");
    let mut client =
        Client::connect(&addr, Limits::default(), Duration::from_secs(5)).expect("reconnect");
    let err = client.file(FileId::EvaluationKeys).expect_err("not served");
    assert!(err.to_string().contains("does not serve"), "{err}");
    server.shutdown();
}
