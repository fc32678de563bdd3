//! `privdnn-party`: the owner service (`serve`) and the user client (`client`), see `cli.rs`.

fn main() {
    if let Err(e) = privdnn_party::cli::main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
