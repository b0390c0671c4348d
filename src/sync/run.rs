//! One sync of the store to a verified manifest, in order: what the store
//! holds and which of it can be believed (the survey), then plan, apply and
//! record the verified files in the store index, or, in a dry run, the plan
//! printed with what each download would cost.

use std::collections::HashSet;
use std::time::Duration;

use super::apply::{self, Applied, KnownContent};
use super::inventory::{Inventory, LocalKind};
use super::plan::{Plan, plan};
use super::scope::{Scope, Verdict};
use super::signatures::BundledSignatures;
use super::watchdog::Watched;
use crate::display::{self, Display};
use crate::error::Error;
use crate::exit::{Code, Outcome};
use crate::manifest::verify::VerifiedManifest;
use crate::runlog::RunLog;
use crate::store::acl::Repaired;
use crate::store::dir::StoreDir;
use crate::store::index::{FileId, IndexEntry, StoreIndex};
use crate::store::state_dir::StateDir;
use crate::store::walk::Found;
use crate::transport::{Source, Throttled};

/// The store as this run found it: the open root (none in a dry run before
/// the first sync), what it holds, and which files earlier runs verified.
pub(crate) struct Surveyed<'a> {
    pub(crate) store: Option<&'a StoreDir>,
    pub(crate) inventory: Inventory,
    index: StoreIndex,
}

/// What a sync did, for the state file and the report line.
pub(crate) struct Mirrored {
    pub(crate) outcome: Outcome,
    pub(crate) fetched: u64,
    pub(crate) deleted: u64,
    /// Every file in scope is in place and verified.
    pub(crate) complete: bool,
}

/// Scans the store and distrusts what it cannot vouch for: files the ACL
/// repair had to fix (`suspect`) and files that are not the ones the index
/// recorded as verified. [`Surveyed::rehash`] then hashes those again.
pub(crate) fn survey<'a>(
    store: Option<&'a StoreDir>,
    suspect: &Repaired,
    listing: Option<Vec<Found>>,
    state_dir: &StateDir,
) -> Result<Surveyed<'a>, Error> {
    let index = StoreIndex::load(state_dir);
    let Some(dir) = store else {
        return Ok(Surveyed {
            store,
            inventory: Inventory::default(),
            index,
        });
    };
    let mut inventory = Inventory::scan(dir, listing)?;
    inventory.distrust(suspect);
    inventory.distrust_other_files(&index);
    Ok(Surveyed {
        store,
        inventory,
        index,
    })
}

impl Surveyed<'_> {
    /// Hashes the distrusted files that `manifest` lists (the parts this run
    /// loaded): the ones that still hold their content count as unchanged,
    /// which costs a read of the disk rather than a download.
    pub(crate) fn rehash(&mut self, manifest: &VerifiedManifest, log: &mut RunLog) {
        if let Some(dir) = self.store
            && let Some(note) = self.inventory.rehash_suspects(dir, manifest)
        {
            log.line(&note);
        }
    }

    /// The dry run: prints the package folders left out and the plan, with
    /// the bytes each download would take from `source` at `cap` KiB/s.
    pub(crate) async fn preview<S: Source>(
        &self,
        source: &Throttled<S>,
        manifest: &VerifiedManifest,
        scope: &Scope,
        cap: Option<u32>,
    ) -> Result<(), Error> {
        display::print_excluded(manifest, scope);
        let plan = plan(manifest, scope, &self.inventory, Some(&self.index));
        let known = KnownContent::new(&self.index, &self.inventory, &plan);
        let signatures = BundledSignatures::read(source, &plan, &self.inventory, &known).await;
        let estimates = apply::estimate(
            source,
            self.store,
            &self.inventory,
            &plan,
            &known,
            &signatures,
        )
        .await?;
        display::print_plan(&plan, &estimates, cap);
        Ok(())
    }

    /// Makes `store` match the manifest within `scope` and saves the index of
    /// the verified files in `state_dir`. Fails with a timeout once nothing
    /// has moved for `timeout`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the run's source, store, trust, scope, display, rule and records"
    )]
    pub(crate) async fn mirror<S: Source>(
        &self,
        source: &Throttled<S>,
        store: &StoreDir,
        manifest: &VerifiedManifest,
        scope: &Scope,
        display: Display,
        timeout: Duration,
        state_dir: &StateDir,
        log: &mut RunLog,
    ) -> Result<Mirrored, Error> {
        let plan = plan(manifest, scope, &self.inventory, Some(&self.index));
        let known = KnownContent::new(&self.index, &self.inventory, &plan);
        let signatures = BundledSignatures::read(source, &plan, &self.inventory, &known).await;
        display.set_total(plan.fetch_bytes());
        let events = Watched::new(display);
        let applied = tokio::select! {
            applied = apply::apply(source, store, &self.inventory, &plan, &known, &signatures, &events) => applied?,
            stalled = events.stalled(timeout, source.progress()) => return Err(stalled),
        };
        events.inner().finish();
        apply::remove_temps(store, &self.inventory)?;
        let verified = index_of(manifest, scope, &applied, store, &self.inventory);
        if verified != self.index {
            verified.save(state_dir)?;
        }
        Ok(Mirrored {
            outcome: summarise(&applied, &plan, manifest.version(), log),
            fetched: applied.fetched as u64,
            deleted: applied.deleted as u64,
            complete: applied.failures.is_empty(),
        })
    }
}

/// The store's verified files after a run: everything in scope but the
/// failures, each with the identity of the file now in place.
fn index_of(
    manifest: &VerifiedManifest,
    scope: &Scope,
    applied: &Applied,
    store: &StoreDir,
    inventory: &Inventory,
) -> StoreIndex {
    let failed: HashSet<&str> = applied
        .failures
        .iter()
        .map(|(path, _)| path.as_str())
        .collect();
    let files = manifest
        .files()
        .iter()
        .filter(|f| scope.judge(f.path().as_str()) == Verdict::Mirrored)
        .filter(|f| !failed.contains(f.path().as_str()))
        .map(|f| {
            let fetched = applied.placed.contains(f.path());
            let id = match inventory.entries.get(f.path().as_str()).map(|e| &e.kind) {
                Some(LocalKind::File { id, .. }) if !fetched => Some(*id),
                _ => store
                    .symlink_metadata(f.path())
                    .ok()
                    .map(|m| FileId::of(&m)),
            };
            let entry = IndexEntry {
                size: f.size(),
                mtime: f.mtime(),
                sha256: hex::encode(f.sha256()),
                id,
            };
            (f.path().clone(), entry)
        })
        .collect();
    StoreIndex { files }
}

fn summarise(applied: &Applied, plan: &Plan<'_>, version: u64, log: &mut RunLog) -> Outcome {
    for (path, why) in &applied.failures {
        log.line(&format!("failed: {path}: {why}"));
    }
    log.line(&format!(
        "version {version}: fetched {} files ({} bytes), deleted {}, unchanged {}, failed {}",
        applied.fetched,
        applied.bytes,
        applied.deleted,
        plan.unchanged,
        applied.failures.len()
    ));
    match applied.failures.first() {
        None => Outcome::success(),
        Some((path, why)) => Outcome {
            code: Code::Partial,
            problem: Some(format!(
                "{} of {} files could not be fetched or verified, old copies kept; first: {path}: {why}",
                applied.failures.len(),
                plan.fetch.len() + plan.clear.len() + plan.delete.len()
            )),
        },
    }
}
