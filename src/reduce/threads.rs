//! Data parallelism over a fixed split of the work: the caller decides the pieces, so results
//! never depend on how many threads ran (only the wall time does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Threads to use: the machine's parallelism, at most [`THREADS_MAX`].
pub(crate) fn count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, THREADS_MAX)
}

/// More threads than this buys little for the memory-bound loops here.
pub(crate) const THREADS_MAX: usize = 16;

/// `f` applied to every item, results in item order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = count().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else {
                    break;
                };
                let result = f(item);
                let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                results[index] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every index below len was taken by one thread"))
        .collect()
}

/// `f` run on every job (jobs own disjoint output slices).
pub(crate) fn for_each<T: Send>(jobs: Vec<T>, f: impl Fn(T) + Sync) {
    let threads = count().min(jobs.len());
    if threads <= 1 {
        jobs.into_iter().for_each(f);
        return;
    }
    let queue = Mutex::new(jobs.into_iter());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                match job {
                    Some(job) => f(job),
                    None => break,
                }
            });
        }
    });
}
