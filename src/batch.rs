//! `Batch`: many run creations and changes in one commit ([`Store::batch`]).
//!
//! A batch holds the store's one write transaction for the length of the caller's closure;
//! each call checks and does what the `Store` or `Run` call of the same name does, through
//! the same internals, so only the commit is shared. The store's transaction core refuses
//! any other write from the batch's thread (it would wait for its own commit).

use redb::WriteTransaction;

use crate::error::{Error, Result};
use crate::run::{init_in, validate_init, InitOptions, Run};
use crate::store::{contain_panic, BatchGuard, Store};
use crate::time;
use crate::value::Value;

impl Store {
    /// Runs `f` with a [`Batch`]: every run it creates and every change it makes land in one
    /// commit, or none of them do. The calls check and do what the [`Store`] and [`Run`]
    /// calls of the same names do; only the commit is shared, so writing a thousand runs
    /// costs one fsync instead of thousands.
    ///
    /// Inside `f`, change the store only through the batch: a [`Run`] or [`Store`] call that
    /// writes fails with [`Error::InvalidInput`] (it would wait for the batch's own commit).
    ///
    /// ```no_run
    /// # fn main() -> runstore::Result<()> {
    /// use runstore::{InitOptions, Store, Value};
    /// let store = Store::open_or_create("experiments.runs")?;
    /// store.batch(|batch| {
    ///     for lr in [0.1, 0.01, 0.001] {
    ///         let run = batch.init_with("sweep", None, &InitOptions::default())?;
    ///         batch.set_parameters(&run, &Value::map([("lr", Value::from(lr))]))?;
    ///         batch.add_output_values(&run, &[Value::map([("acc", Value::from(0.5))])])?;
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch<T>(&self, f: impl FnOnce(&mut Batch<'_>) -> Result<T>) -> Result<T> {
        let mut last_init = None;
        // A panic in the caller's closure is the caller's: it aborts the batch and goes on
        // unwinding (the write guard would otherwise report it as a damaged file). The batch's
        // own calls contain redb's panics themselves.
        let mut caller_panic = None;
        let value = self.write("batch", |txn| {
            let _guard = BatchGuard::enter(self);
            let mut batch = Batch {
                store: self,
                txn,
                last_init: None,
            };
            let value =
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut batch))) {
                    Ok(result) => result?,
                    Err(payload) => {
                        caller_panic = Some(payload);
                        return Err(Error::InvalidInput {
                            reason: "the batch closure panicked".into(),
                        });
                    }
                };
            last_init = batch.last_init;
            Ok(value)
        });
        if let Some(payload) = caller_panic {
            std::panic::resume_unwind(payload);
        }
        let value = value?;
        if let Some(id) = last_init {
            *self.lock_active() = Some(id);
        }
        Ok(value)
    }
}

/// Many changes in one commit: see [`Store::batch`]. Each call checks and does what the
/// [`Store`] or [`Run`] call of the same name does.
pub struct Batch<'a> {
    store: &'a Store,
    txn: &'a WriteTransaction,
    last_init: Option<u64>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("path", &self.store.path())
            .finish()
    }
}

impl Batch<'_> {
    /// [`Store::init`] inside the batch; the last run it creates becomes the active run when
    /// the batch commits.
    pub fn init(&mut self, project: &str, run_name: Option<&str>) -> Result<Run> {
        self.init_with(project, run_name, &InitOptions::default())
    }

    /// [`Store::init_with`] inside the batch.
    pub fn init_with(
        &mut self,
        project: &str,
        run_name: Option<&str>,
        options: &InitOptions,
    ) -> Result<Run> {
        validate_init(project, run_name, options)?;
        let (id, name) = contain_panic("batch init", || {
            init_in(self.txn, project, run_name, options, time::now_us())
        })?;
        self.last_init = Some(id);
        Ok(Run::new(self.store.clone(), id, project.to_string(), name))
    }

    fn check_run(&self, run: &Run) -> Result<u64> {
        if !self.store.same_store(run.store()) {
            return Err(Error::InvalidInput {
                reason: format!("run {} belongs to another store handle", run.url()),
            });
        }
        Ok(run.id())
    }

    /// [`Run::set_parameters`] inside the batch.
    pub fn set_parameters(&mut self, run: &Run, parameters: &Value) -> Result<()> {
        self.check_run(run)?;
        contain_panic("batch", || run.set_parameters_in(self.txn, parameters))
    }

    /// [`Run::add_output_value`] inside the batch.
    pub fn add_output_value(&mut self, run: &Run, value: &Value) -> Result<()> {
        self.add_output_values(run, std::slice::from_ref(value))
    }

    /// [`Run::add_output_values`] inside the batch.
    pub fn add_output_values(&mut self, run: &Run, values: &[Value]) -> Result<()> {
        self.check_run(run)?;
        contain_panic("batch", || run.add_output_values_in(self.txn, values))
    }

    /// [`Run::set_status`] inside the batch.
    pub fn set_status(&mut self, run: &Run, status: crate::status::RunStatus) -> Result<()> {
        self.check_run(run)?;
        contain_panic("batch", || run.set_status_in(self.txn, status))
    }

    /// [`Run::set_description`] inside the batch.
    pub fn set_description(&mut self, run: &Run, description: &str) -> Result<()> {
        self.check_run(run)?;
        contain_panic("batch", || run.set_description_in(self.txn, description))
    }
}
