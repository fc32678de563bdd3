//! `privdnn-select`: thin binary over [`privdnn_select::cli`].

fn main() -> anyhow::Result<()> {
    privdnn_model::with_flushed_denormals(privdnn_select::cli::main)
}
