//! Issue 7's benchmark runner (placeholder while the modules land).
mod data;
mod report;
mod sqlite;

fn main() {}
