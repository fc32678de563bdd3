# Thin wrappers over cargo xtask; see README.md.
.PHONY: setup test data pipeline bench-train quick tables

setup:        ## build everything (release)
	cargo build --release --workspace

test:         ## the test suite (same command as CI)
	cargo test --release --workspace

data:         ## convert ../shared/datasets into data/
	cargo xtask data

pipeline:     ## make pipeline P=mnist [PROFILE=quick]
	cargo xtask pipeline $(P) $(if $(PROFILE),--profile $(PROFILE),)

bench-train:  ## training images/s per model and CPU backend
	cargo xtask bench train

tables:       ## every table (results/tables) and figure (results/figures) from results/
	cargo xtask tables
