//! Real-shape measurements of the user-keyed mode (ignored by default; random weights of the real
//! shapes, N = 8192, 4 × 54-bit primes, two 24-bit CRT residues):
//!
//! `cargo test --release -p privdnn-he --test user_keyed_bench -- --ignored --nocapture --test-threads 1`
//!
//! * CIFAR-10 quick block (VGG16 width 0.25: 3×32×32, conv1 16 k3 p1, square, conv2 16 k3 p1),
//!   50 % selection (8 + 8), spatial layout, one request of 96 images (16 groups of 6 frames).
//! * MNIST LeNet5 block (1×28×28, conv1 6 k5, pool 2, square, conv2 16 k5), selection {0}/{0},
//!   batch layout, 5,000 images in one request.
//!
//! Prints wall and process CPU seconds per phase, bytes each way and peak resident memory
//! (VmHWM, reset before each phase), and checks every output against the integer shadow.

mod common;

use common::{float_block, params};
use privdnn_artifacts::{PhaseCost, measure};
use privdnn_he::block::{BlockShape, IntBlock};
use privdnn_he::engine::Layout;
use privdnn_he::params::HeParams;
use privdnn_he::user_keyed::{KeyedOwner, KeyedUser};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Peak resident memory of a phase in MiB.
fn mib(cost: &PhaseCost) -> f64 {
    cost.peak_rss_bytes as f64 / f64::from(1u32 << 20)
}

fn run(name: &str, shape: BlockShape, sel: (&[usize], &[usize]), layout: Layout, n: usize) {
    let params = params();
    let f = float_block(&shape, 5);
    let block = IntBlock::quantize_fitting(&f, 8, HeParams::crt_modulus(&params), sel.1, false)
        .expect("fits");
    let (owner, setup) =
        measure(|| KeyedOwner::new(block.clone(), sel, &params, false).expect("owner"));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (user, keygen) = measure(|| KeyedUser::new(owner.model(), layout, &mut rng).expect("user"));
    let x: Vec<Vec<i64>> = (0..n)
        .map(|_| {
            let raw: Vec<u8> = (0..shape.input_len()).map(|_| rng.random()).collect();
            block.center(&raw)
        })
        .collect();
    let ((request, pending), req) = measure(|| user.request(&x, &mut rng).expect("request"));
    let (reply, ans) = measure(|| owner.answer(&request, &mut rng).expect("answer"));
    let up = request.bytes();
    drop(request);
    let (out, fin) = measure(|| user.finish(&pending, &reply).expect("finish"));
    let mut exact = 0;
    for (i, xi) in x.iter().enumerate() {
        let a = block.layer1(xi);
        let ok = sel.1.iter().enumerate().all(|(jj, &j)| {
            let want: Vec<i64> = block.layer2(&a, j).into_iter().map(|v| v as i64).collect();
            out.z2[i][jj] == want
        });
        exact += ok as usize;
    }
    let b = owner.noise_bounds()[0];
    println!(
        "{name}: {n} images, {layout:?} layout; noise bound: eval 2^{:.1}, switched 2^{:.1}, \
         rounding 2^{:.1}, margin {:.1} bits",
        b.log_eval, b.log_switched, b.log_rounding, b.margin_bits
    );
    println!(
        "  owner setup {:.2} s; user keygen {:.2} s wall / {:.2} s CPU, {:.0} MiB peak",
        setup.wall_s,
        keygen.wall_s,
        keygen.cpu_s,
        mib(&keygen)
    );
    println!(
        "  user request {:.2} s wall / {:.2} s CPU, peak {:.0} MiB; owner answer {:.2} s wall / \
         {:.2} s CPU, peak {:.0} MiB; user finish {:.2} s wall / {:.2} s CPU, peak {:.0} MiB",
        req.wall_s,
        req.cpu_s,
        mib(&req),
        ans.wall_s,
        ans.cpu_s,
        mib(&ans),
        fin.wall_s,
        fin.cpu_s,
        mib(&fin)
    );
    println!(
        "  per image: owner CPU {:.4} s, user CPU {:.4} s; total wall both parties {:.2} s",
        ans.cpu_s / n as f64,
        (req.cpu_s + fin.cpu_s) / n as f64,
        req.wall_s + ans.wall_s + fin.wall_s
    );
    println!(
        "  bytes: request {up} ({:.0} per image, keys {} included), reply {} ({:.0} per image)",
        up as f64 / n as f64,
        user_key_bytes(&user),
        reply.bytes(),
        reply.bytes() as f64 / n as f64
    );
    println!("  exact: {exact}/{n} images");
    assert_eq!(exact, n);
}

fn user_key_bytes(user: &KeyedUser) -> usize {
    // Keys travel inside every request; a 1-image request shows their size.
    let s = &user.model().plain.shape;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (r, _) = user
        .request(&[vec![0; s.input_len()]], &mut rng)
        .expect("probe");
    r.key_bytes()
}

#[test]
#[ignore = "real shapes at N = 8192: minutes"]
fn bench_cifar10_quick_spatial() {
    let shape = BlockShape::new(3, 32, 32, 3, 1, 1, 16, 3, 1, 16).expect("vgg");
    let half: Vec<usize> = (0..8).collect();
    run("cifar10-quick", shape, (&half, &half), Layout::Spatial, 96);
}

#[test]
#[ignore = "real shapes at N = 8192: minutes"]
fn bench_mnist_lenet_batch_5000() {
    let shape = BlockShape::new(1, 28, 28, 5, 0, 2, 6, 5, 0, 16).expect("lenet");
    run("mnist-lenet5", shape, (&[0], &[0]), Layout::Batch, 5000);
}
