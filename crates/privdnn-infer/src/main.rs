//! `privdnn-infer`: the infer stage (see `cli.rs`).

fn main() -> anyhow::Result<()> {
    privdnn_infer::cli::main()
}
