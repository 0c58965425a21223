//! The physical references, measured in the same run as the systems: what the disk and the
//! memory do with the same bytes when nothing else is in the way.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Seconds to write `bytes` to a new plain file in one `write_all` and one `fdatasync`,
/// once per rep.
pub fn write_fsync(bytes: &[u8], dir: &Path, reps: usize) -> std::io::Result<Vec<f64>> {
    let path = dir.join("raw-write.bin");
    let mut samples = Vec::new();
    for _ in 0..reps {
        let _ = std::fs::remove_file(&path);
        let started = Instant::now();
        let mut file = std::fs::File::create(&path)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        samples.push(started.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&path);
    Ok(samples)
}

/// Seconds to append `calls` chunks of `chunk` bytes to a plain file with an `fdatasync`
/// after each (the disk's durable-append rate), once per rep.
pub fn append_fsync_per_call(
    chunk: usize,
    calls: usize,
    dir: &Path,
    reps: usize,
) -> std::io::Result<Vec<f64>> {
    let path = dir.join("raw-append.bin");
    let data = vec![0x5au8; chunk];
    let mut samples = Vec::new();
    for _ in 0..reps {
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::File::create(&path)?;
        file.sync_all()?;
        let started = Instant::now();
        for _ in 0..calls {
            file.write_all(&data)?;
            file.sync_data()?;
        }
        samples.push(started.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&path);
    Ok(samples)
}

/// Seconds to sum `values` from memory, once per rep (one pass each, as the systems get).
pub fn sum_f64(values: &[f64], reps: usize) -> Vec<f64> {
    (0..reps)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(values.iter().sum::<f64>());
            started.elapsed().as_secs_f64()
        })
        .collect()
}

/// Seconds to sum f32 `values` (in f64) from memory, once per rep.
pub fn sum_f32(values: &[f32], reps: usize) -> Vec<f64> {
    (0..reps)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(values.iter().map(|v| f64::from(*v)).sum::<f64>());
            started.elapsed().as_secs_f64()
        })
        .collect()
}

/// Child side of the fresh-process plain-file read: read the whole file and sum it as f32 or
/// f64 words. Prints `seconds sum`.
pub fn child_read(path: &Path, word: &str) -> std::io::Result<()> {
    let started = Instant::now();
    let bytes = std::fs::read(path)?;
    let sum: f64 = match word {
        "f32" => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .sum(),
        _ => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .sum(),
    };
    println!("{} {sum}", started.elapsed().as_secs_f64());
    Ok(())
}
