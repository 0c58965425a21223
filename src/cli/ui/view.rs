//! The viewer's store handle, kept fresh beside a writer.
//!
//! A read-only open of a live store (redb's read-only handle) sees each new commit in its next
//! read, so it serves as is. Two kinds of handle need opening again: one over a store its writer
//! left without closing (`Store::needs_recovery`: an in-memory snapshot of the last durable
//! commit, which does not follow later commits), and one whose path now names another file
//! (`vacuum`, `demo` or a restore renamed a new file into place). `View::store` checks for
//! both, at most once per [`RECHECK`], and reopens (a snapshot only once the file was written
//! again, since each open copies its catalog); when a reopen fails, the old handle goes on
//! serving the last state it saw.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runstore::Store;

/// How often a stale handle is checked against the file.
const RECHECK: Duration = Duration::from_secs(1);

/// The store the viewer serves, reopened when its handle no longer shows the file.
pub(super) struct View {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    store: Store,
    identity: Option<FileIdentity>,
    checked: Instant,
}

/// Which file a path named, and whether it has been written since: device and inode (zero
/// where there are none), length and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    file: (u64, u64),
    written: (u64, u128),
}

fn identity(path: &std::path::Path) -> Option<FileIdentity> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::MetadataExt;
        (metadata.dev(), metadata.ino())
    };
    #[cfg(not(unix))]
    let file = (0, 0);
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    Some(FileIdentity {
        file,
        written: (metadata.len(), modified),
    })
}

impl View {
    /// A view over `store`, just opened read-only from `path`.
    pub(super) fn new(path: PathBuf, store: Store) -> View {
        let identity = identity(&path);
        View {
            path,
            state: Mutex::new(State {
                store,
                identity,
                checked: Instant::now(),
            }),
        }
    }

    /// The store file's path, as given on the command line.
    pub(super) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A handle showing the store's latest durable commit (as of at most [`RECHECK`] ago for a
    /// crashed writer's store or a replaced file).
    pub(super) fn store(&self) -> Store {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = identity(&self.path);
            let replaced = now.map(|n| n.file) != state.identity.map(|i| i.file);
            // A snapshot is copied whole at each open: only again once a writer has come back.
            let written = now != state.identity;
            if replaced || (state.store.needs_recovery() && written) {
                if let Ok(store) = Store::open_read_only(&self.path) {
                    state.store = store;
                    state.identity = now;
                }
            }
        }
        state.store.clone()
    }
}
