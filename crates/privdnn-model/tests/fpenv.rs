//! Subnormal flushing (own test binary, so no other test builds rayon's global pool first).

use privdnn_model::with_flushed_denormals;

#[test]
fn subnormals_are_flushed_on_the_caller_and_every_worker() {
    let tiny = std::hint::black_box(f32::MIN_POSITIVE);
    let half = |x: f32| std::hint::black_box(x) * std::hint::black_box(0.5f32);
    assert!(half(tiny) > 0.0, "default mode keeps subnormals");
    let inside = with_flushed_denormals(|| half(tiny));
    assert_eq!(inside, 0.0, "flushed on the calling thread");
    let workers = with_flushed_denormals(|| rayon::broadcast(|_| half(tiny)));
    assert!(!workers.is_empty());
    assert!(
        workers.iter().all(|v| *v == 0.0),
        "flushed on every rayon worker: {workers:?}"
    );
    assert!(half(tiny) > 0.0, "restored afterwards on the caller");
}

#[test]
fn separate_pools_flush_on_every_worker_and_have_the_asked_size() {
    let tiny = std::hint::black_box(f32::MIN_POSITIVE);
    let pool = privdnn_model::flushed_thread_pool(2).expect("pool");
    assert_eq!(pool.current_num_threads(), 2);
    let workers = pool.broadcast(|_| std::hint::black_box(tiny) * std::hint::black_box(0.5f32));
    assert_eq!(workers, vec![0.0, 0.0], "flushed on both workers");
}
