//! The `runstore` command line: `runstore::cli_main` (the commands in `src/cli/`, part of the
//! library so the Python package's `runstore` script runs the same code) over this process's
//! arguments.
//!
//! Exit codes: 0 success; 1 an error (printed with its cause chain); 2 bad usage (clap);
//! 3 `check` found problems. A closed stdout (e.g. `runstore runs x | head`) is success.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(runstore::cli_main(std::env::args_os()))
}
