//! viva's pure input-handling modules, compiled from `../src` for the fuzz targets (see
//! Cargo.toml for why not the whole crate). `extern crate self as viva` lets [`checks`] name
//! them `viva::…`, so the very same file also compiles in `tests/fuzz_corpora.rs` against the
//! real crate.

extern crate self as viva;

#[path = "../../src/audio/mod.rs"]
pub mod audio;
#[path = "../../src/guide/mod.rs"]
pub mod guide;
#[path = "../../src/protocol.rs"]
pub mod protocol;
#[path = "../../src/scoring/mod.rs"]
pub mod scoring;

pub mod checks;
