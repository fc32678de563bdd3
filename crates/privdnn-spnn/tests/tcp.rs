//! The four roles as threads over loopback TCP (the processes' code): they train like the
//! in-process harness, every first-layer forward passes the offline shadow audit, a run stopped
//! after one epoch and resumed ends with the same shares and model as an uninterrupted run, and
//! roles started with other settings refuse each other with a named error.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use privdnn_artifacts::{DatasetSplit, TrainedModel};
use privdnn_spnn::audit::{audit_epoch, open_model};
use privdnn_spnn::process::holder::{HolderFile, PeerHolder, run_holder};
use privdnn_spnn::process::server::{ServerFile, run_server};
use privdnn_spnn::process::{RunSetup, dealer::run_dealer, epoch_file, read_state};
use privdnn_spnn::{Harness, SERVER_VIEW_FILE, ServerView, Task};

mod common;
use common::{ONE_TRAINING, settings, task};

fn setup(task: &Task, train: &DatasetSplit, dir: &Path, role: &str, max_epochs: usize) -> RunSetup {
    RunSetup {
        task: task.clone(),
        settings: settings(2),
        train_len: train.len(),
        dir: dir.join(role),
        derived_keys: true,
        max_epochs,
        limits: privdnn_net::Limits::default(),
    }
}

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    (l, a)
}

/// Runs all four roles until they stop.
fn run_all(task: &Task, train: &DatasetSplit, dir: &Path, max_epochs: usize) {
    let s = |role: &str| setup(task, train, dir, role, max_epochs);
    let ((ls, sa), (ld, da), (lb, ba)) = (listener(), listener(), listener());
    std::thread::scope(|scope| {
        let server = scope.spawn(|| run_server(&s("server"), &ls));
        let dealer = scope.spawn(|| run_dealer(&s("dealer"), &ld));
        let b =
            scope.spawn(|| run_holder(&s("holder-b"), 1, train, &sa, &da, PeerHolder::Listen(&lb)));
        run_holder(&s("holder-a"), 0, train, &sa, &da, PeerHolder::Dial(&ba)).expect("holder a");
        b.join().expect("join").expect("holder b");
        server.join().expect("join").expect("server");
        dealer.join().expect("join").expect("dealer");
    });
}

fn files(dir: &Path, e: usize) -> (HolderFile, HolderFile, ServerFile) {
    let read = |role: &str| epoch_file(&dir.join(role), e);
    (
        read_state(&read("holder-a"), "a").expect("a"),
        read_state(&read("holder-b"), "b").expect("b"),
        read_state(&read("server"), "server").expect("server"),
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spnn-tcp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn max_diff(a: &TrainedModel, b: &TrainedModel) -> f32 {
    a.tensors
        .iter()
        .zip(&b.tensors)
        .flat_map(|(x, y)| x.values.iter().zip(&y.values).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn tcp_roles_train_like_the_harness_and_every_forward_is_exact() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (task, train, test) = task();
    let dir = temp("full");
    run_all(&task, &train, &dir, usize::MAX);
    let s = setup(&task, &train, &dir, "report", usize::MAX);
    for e in 1..=2 {
        let (a, b, srv) = files(&dir, e);
        assert_eq!(
            audit_epoch(&s, &train, e, &a, &b, &srv).expect("audit"),
            (3, 3)
        );
        assert_eq!(b.history.last().expect("epoch").steps, 3);
    }
    let (a, b, srv) = files(&dir, 2);
    let tcp = open_model(&s, &a, &b, &srv).expect("model");
    let reference = Harness::new(task, settings(2), None)
        .expect("harness")
        .train(&train, &test, None, usize::MAX)
        .expect("harness train")
        .model;
    assert!(
        max_diff(&tcp, &reference) < 1e-4,
        "{}",
        max_diff(&tcp, &reference)
    );
    // the server kept its view of the last epoch's first images
    let view = ServerView::read(&dir.join("server").join(SERVER_VIEW_FILE)).expect("view");
    assert_eq!((view.epoch, view.indices.len()), (2, 16));
    // a corrupted digest is caught by the audit
    let (a, b, mut srv) = files(&dir, 1);
    srv.z1_digests[1] ^= 1;
    assert_eq!(
        audit_epoch(&s, &train, 1, &a, &b, &srv).expect("audit"),
        (3, 2)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_resumed_after_one_epoch_ends_like_an_uninterrupted_one() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (task, train, _) = task();
    let (full, parts) = (temp("once"), temp("twice"));
    run_all(&task, &train, &full, usize::MAX);
    run_all(&task, &train, &parts, 1);
    assert!(!epoch_file(&parts.join("server"), 2).exists());
    run_all(&task, &train, &parts, usize::MAX);
    let (fa, fb, fs) = files(&full, 2);
    let (pa, pb, ps) = files(&parts, 2);
    assert_eq!(fa.state, pa.state);
    assert_eq!(fb.state, pb.state);
    let top = |f: &HolderFile| f.top.as_ref().expect("top").tensors.clone();
    assert_eq!(top(&fb), top(&pb));
    assert_eq!(fs.upper.tensors, ps.upper.tensors);
    for d in [full, parts] {
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn roles_with_other_settings_refuse_each_other_by_name() {
    let (task, train, _) = task();
    let dir = temp("mismatch");
    let (ls, sa) = listener();
    let (_ld, da) = listener();
    let mut other = setup(&task, &train, &dir, "server", usize::MAX);
    other.settings.epochs = 5;
    std::thread::scope(|scope| {
        let server = scope.spawn(|| run_server(&other, &ls));
        let a = setup(&task, &train, &dir, "holder-a", usize::MAX);
        let Err(err) = run_holder(&a, 0, &train, &sa, &da, PeerHolder::Dial("127.0.0.1:9")) else {
            panic!("holder A must refuse");
        };
        assert!(
            err.to_string()
                .contains("server trains with other settings"),
            "{err}"
        );
        let Err(err) = server.join().expect("join") else {
            panic!("the server must refuse");
        };
        assert!(
            err.to_string()
                .contains("holder-a trains with other settings"),
            "{err}"
        );
    });
    std::fs::remove_dir_all(&dir).ok();
}
