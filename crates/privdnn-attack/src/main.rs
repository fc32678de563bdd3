//! `privdnn-attack`: thin binary over [`privdnn_attack::cli`].

fn main() -> anyhow::Result<()> {
    privdnn_model::with_flushed_denormals(privdnn_attack::cli::main)
}
