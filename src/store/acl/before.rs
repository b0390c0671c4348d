//! The repair before the sync, on a blocking thread while the connection is
//! made and the manifest loaded: the one waits on the disk, the others on the
//! network and the server. It also lists the store for the inventory.

use futures::future::BoxFuture;

use crate::runlog::RunLog;
use crate::store::dir::StoreDir;
use crate::store::walk::Found;

/// What the repair before the sync returns: what it changed, and the store's
/// entries as it left them where it lists them.
type Listed = Result<(super::Repaired, Option<Vec<Found>>), super::AclError>;

/// The repair before the sync, so nothing anyone else could write is taken
/// as unchanged, used as a basis or copied from. It also lists the store for
/// the inventory, which then need not walk it again.
pub(crate) enum RepairBefore {
    /// A dry run repairs nothing.
    Skipped,
    /// On a blocking thread, with a second handle on the store root. Kept
    /// here while it is awaited, so a sync that ends first (the deadline)
    /// still waits for it before the repair after the sync.
    Running(BoxFuture<'static, Listed>),
    /// What it had to fix (everything, when it failed), its problem for
    /// the exit code, and the store's entries as it left them, until the
    /// inventory takes them.
    Done(super::Repaired, Option<String>, Option<Vec<Found>>),
}

impl RepairBefore {
    /// Starts the repair of `store`, unless there is none or this is a dry run.
    pub(crate) fn start(store: Option<&StoreDir>, dry_run: bool) -> RepairBefore {
        let Some(store) = store.filter(|_| !dry_run) else {
            return RepairBefore::Skipped;
        };
        let Ok(handle) = store.try_clone() else {
            // No second handle: the repair runs here, before the connection.
            return RepairBefore::Running(Box::pin(std::future::ready(super::repair_listing(
                store,
            ))));
        };
        let path = store.path().to_path_buf();
        let task = tokio::task::spawn_blocking(move || super::repair_listing(&handle));
        RepairBefore::Running(Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                Err(super::AclError {
                    path,
                    why: format!("the repair thread stopped: {e}"),
                })
            })
        }))
    }

    /// Waits for the repair and logs a failure.
    pub(crate) async fn wait(&mut self, log: &mut RunLog) {
        let RepairBefore::Running(task) = self else {
            return;
        };
        let (repaired, problem, listing) = match task.await {
            Ok((repaired, listing)) => (repaired, None, listing),
            Err(e) => (everything(), Some(e.to_string()), None),
        };
        if let Some(problem) = &problem {
            log.line(&format!(
                "{problem}: every file is hashed again before it counts"
            ));
        }
        *self = RepairBefore::Done(repaired, problem, listing);
    }

    /// Every entry of the store as the repair left it, once, for the
    /// inventory to start from instead of walking the store again: in
    /// between only the connection and the manifest are dealt with, nothing
    /// writes to the store, and no one but an administrator can once the
    /// repair is done.
    pub(crate) fn take_listing(&mut self) -> Option<Vec<Found>> {
        match self {
            RepairBefore::Done(_, _, listing) => listing.take(),
            RepairBefore::Skipped | RepairBefore::Running(_) => None,
        }
    }

    /// What the repair had to fix: nothing in a dry run, everything until
    /// it is done.
    pub(crate) fn repaired(&self) -> &super::Repaired {
        static NOTHING: super::Repaired = super::Repaired {
            paths: Vec::new(),
            everything: false,
        };
        static EVERYTHING: super::Repaired = super::Repaired {
            paths: Vec::new(),
            everything: true,
        };
        match self {
            RepairBefore::Skipped => &NOTHING,
            RepairBefore::Running(_) => &EVERYTHING,
            RepairBefore::Done(repaired, _, _) => repaired,
        }
    }

    /// Waits for the repair if the sync did not (it failed or ran out of
    /// time first); returns its problem.
    pub(crate) async fn finish(mut self, log: &mut RunLog) -> Option<String> {
        self.wait(log).await;
        match self {
            RepairBefore::Done(_, problem, _) => problem,
            RepairBefore::Skipped | RepairBefore::Running(_) => None,
        }
    }
}

/// What a repair that did not finish leaves known: nothing.
fn everything() -> super::Repaired {
    super::Repaired {
        everything: true,
        ..super::Repaired::default()
    }
}
