//! The `runstore` command line: parse, run, pick the exit code.
//!
//! Exit codes: 0 success; 1 an error (printed with its cause chain); 2 bad usage (clap);
//! 3 `check` found problems. A closed stdout (e.g. `runstore runs x | head`) is success.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_contained_panics();
    let args = <cli::Args as clap::Parser>::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("runstore: {}", cli::error_text(&error));
            ExitCode::from(1)
        }
    }
}

/// The library turns a panic inside redb (a damaged catalog page) into `Error::Corrupted`,
/// which this binary prints as an error; the default hook would first print the panic as if
/// the program had crashed. Any other panic is a bug and is printed as usual.
fn quiet_contained_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_redb = info
            .location()
            .is_some_and(|location| location.file().contains("/redb-"));
        if !in_redb {
            default(info);
        }
    }));
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
