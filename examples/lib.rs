//! zero's examples: small, commented programs a user copies from, one file each in this
//! directory (`cargo run -p zero-examples --example NAME -- ARGS`). Each says at its top what
//! it shows, how to run it and which peer it needs. `tests/examples.rs` runs the quick ones
//! against real peers; `cargo test` builds them all.
