//! `privdnn-train`: thin binary over [`privdnn_train::cli`].

fn main() -> anyhow::Result<()> {
    privdnn_model::with_flushed_denormals(privdnn_train::cli::main)
}
