//! `privdnn-encrypt`: the model owner's encrypt stage (see `cli.rs`).

fn main() -> anyhow::Result<()> {
    privdnn_encrypt::cli::main()
}
