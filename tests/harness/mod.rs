//! Harness code shared by the integration tests (`tests/it`) and the soak examples
//! (`examples/crash_soak.rs`, `examples/sweep_soak.rs`): one copy of the child processes, the
//! parents that start and kill them, and the checks of what they committed. The test binary
//! includes this module (`tests/it/main.rs`); an example includes the files it needs with
//! `#[path]`, each beside `rng.rs`, so `super::rng` resolves the same way in both.

pub mod crash;
pub mod rng;
pub mod sweep;
