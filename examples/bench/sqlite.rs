//! SQLite doing each workload (being written).
