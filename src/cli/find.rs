//! Finding what a command names (a project, a run url) with an error that says which part is
//! missing and what was likely meant, where the library's `NotFound` names only the url.
//!
//! The lookups themselves are the library's (`Store::run`, `Store::projects`); this module only
//! reads the names around a miss to explain it, so a found run costs nothing extra.

use std::path::Path;

use anyhow::{bail, Result};
use runstore::{Error, Run, Store};

use super::text::echo;

/// Most names listed after an unknown project when none is close enough to suggest.
const NAMES_LISTED_MAX: usize = 5;

/// The run at `url` in `store` (at `path`); when there is none, an error naming the missing
/// project or run and the closest name there is.
pub(super) fn run(store: &Store, path: &Path, url: &str) -> Result<Run> {
    match store.run(url) {
        Err(Error::NotFound { .. }) => {
            let (project, name) = runstore::parse_run_url(url)?;
            project_exists(store, path, &project)?;
            let runs = store.runs(Some(&project))?;
            let hint = hint(&name, runs.iter().map(Run::name));
            bail!(
                "no run {} in project {} of {}{hint}",
                echo(&name),
                echo(&project),
                path.display()
            )
        }
        other => Ok(other?),
    }
}

/// `Ok` when `store` (at `path`) has a project named `project`; otherwise an error naming it
/// with the closest project name, or the first few there are.
pub(super) fn project_exists(store: &Store, path: &Path, project: &str) -> Result<()> {
    let projects = store.projects()?;
    if projects.iter().any(|info| info.name == project) {
        return Ok(());
    }
    let names: Vec<&str> = projects.iter().map(|info| info.name.as_str()).collect();
    let mut hint = hint(project, names.iter().copied());
    if hint.is_empty() {
        hint = match names.len() {
            0 => " (it has no projects)".to_string(),
            n if n <= NAMES_LISTED_MAX => format!(" (its projects: {})", names.join(", ")),
            n => format!(
                " (its projects include {}, and {} more: runstore projects {})",
                names[..NAMES_LISTED_MAX].join(", "),
                n - NAMES_LISTED_MAX,
                path.display()
            ),
        };
    }
    bail!("no project {} in {}{hint}", echo(project), path.display())
}

/// " (did you mean 'x'?)" for the name closest to `word`, or nothing.
fn hint<'a>(word: &str, names: impl IntoIterator<Item = &'a str> + Clone) -> String {
    runstore::query::suggest(word, names)
        .map_or_else(String::new, |name| format!(" (did you mean '{name}'?)"))
}
