//! `privdnn-train`: thin binary over [`privdnn_train::cli`].

fn main() -> anyhow::Result<()> {
    privdnn_train::cli::main()
}
