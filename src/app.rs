//! One run, phase by phase. A sync: trust the INI, lock, open and repair the
//! store, connect, load the verified manifest, select the package folders,
//! mirror, repair again, upload the reports, record, pulse. Each phase is one
//! call into the module that owns it; this file only orders them and decides
//! which problem the run's exit code and one line stand for.
//!
//! Returns an [`Outcome`] or an [`Error`] and never exits; `main` turns either
//! into the one line and the exit code. The other commands are dispatched by
//! `commands.rs`.

use std::path::Path;
use std::time::Instant;

use crate::cli::SyncArgs;
use crate::clock::now_unix;
use crate::config::Config;
use crate::display::Display;
use crate::error::Error;
use crate::exit::{Code, Outcome};
use crate::gossip;
use crate::manifest;
use crate::manifest::verify::PinnedKey;
use crate::platform;
use crate::report::{self, Figures};
use crate::runlog::RunLog;
use crate::select;
use crate::startup;
use crate::store::acl;
use crate::store::acl::before::RepairBefore;
use crate::store::dir::StoreDir;
use crate::store::index::StoreIndex;
use crate::store::lock::RunLock;
use crate::store::state::State;
use crate::sync;
use crate::sync::scope::Scope;
use crate::transport::{self, Sources, Throttled};

/// The client sync: everything after the INI is read is recorded in the state.
pub(crate) async fn sync(args: SyncArgs, log: &mut RunLog) -> Result<Outcome, Error> {
    let ini = args
        .config
        .clone()
        .unwrap_or_else(platform::default_ini_path);
    let (config, warnings) = startup::load_trusted(&ini, log)?;
    for warning in &warnings {
        log.line(&format!("warning: {warning}"));
    }
    let _lock = RunLock::acquire(&config.sync.state)?;
    log.line(&format!("sync started, config {}", ini.display()));

    let mut state = State::load(&config.sync.state)?;
    StoreIndex::read_ahead(&config.sync.state);
    let store = match open_store(&config.sync.local, args.dry_run) {
        Ok(store) => store,
        Err(e) => {
            if !args.dry_run {
                state.record_run(now_unix(), e.exit_code().number());
                state.save(&config.sync.state)?;
            }
            return Err(e);
        }
    };
    let started = Instant::now();
    let mut figures = Figures::default();
    // The repair before the sync walks the store on blocking threads while
    // the connection is made and the manifest loaded: the one waits on the
    // disk, the others on the network and the server.
    let mut before = RepairBefore::start(store.as_ref(), args.dry_run);
    let run = Run {
        config: &config,
        args: &args,
        store: store.as_ref(),
    };
    // A whole run has a deadline, whatever a source does; the partial
    // downloads it leaves are resumed by the next run.
    let deadline = config.sync.deadline;
    let syncing = run.connect_and_mirror(&mut before, &mut state, &mut figures, log);
    let (result, connection) = match tokio::time::timeout(deadline, syncing).await {
        Ok(done) => done,
        Err(_) => (Err(Error::Deadline(deadline)), None),
    };
    let sync_code = match &result {
        Ok(outcome) => outcome.code,
        Err(e) => e.exit_code(),
    };
    // However the sync ended, the repair before it is over before the one
    // after it starts, and that one runs after every run that may have
    // written to the store, failed ones too.
    let mut acl_problem = before.finish(log).await;
    if !args.dry_run
        && let Some(store) = &store
        && let Err(e) = acl::repair(store)
    {
        acl_problem.get_or_insert(e.to_string());
    }
    let acl_code = acl_problem.as_ref().map(|_| Code::AclRepair);
    // The server went away (lost, silent, or the run out of time): an upload
    // would only wait for it again, twice.
    let session_dead = matches!(sync_code, Code::Unreachable | Code::Timeout)
        && (connection.is_some() || matches!(result, Err(Error::Deadline(_))));
    let report_problem = if args.dry_run || config.server.reports.is_empty() {
        None
    } else if session_dead {
        log.line(&format!(
            "report upload skipped: the session with the server ended (exit {})",
            sync_code.number()
        ));
        None
    } else if let Some(connection) = &connection {
        let uploaded = report::upload(connection, &config, sync_code, acl_code, &figures, started);
        upload_problem(uploaded.await, &config, log)
    } else {
        None
    };
    let code = Code::precedence(
        sync_code,
        report_problem.as_ref().map(|_| Code::ReportUpload),
        acl_code,
    );
    let result = settle(result, code, sync_code, [report_problem, acl_problem], log);
    if !args.dry_run {
        state.record_run(now_unix(), code.number());
        state.save(&config.sync.state)?;
        // A verified version exists: tell the peers, within a second, and only log
        // what went wrong. A failed report upload or ACL repair (106, 103) comes
        // after a sync that succeeded, so the version is as good.
        if matches!(sync_code, Code::Success | Code::Partial)
            && let Some(version) = state.accepted_version
            && let Some(line) =
                gossip::announce::after_sync(&config.gossip, &config.sync.state, version).await
        {
            log.line(&line);
        }
    }
    result
}

/// Logs how the report upload went; returns its problem, if any.
fn upload_problem(
    uploaded: Result<bool, report::ReportError>,
    config: &Config,
    log: &mut RunLog,
) -> Option<String> {
    match uploaded {
        Ok(true) => log.line("uploaded the WPKG log and the run line"),
        Ok(false) => log.line(&format!(
            "uploaded the run line; no WPKG log at {}",
            config.sync.wpkg_log.display()
        )),
        Err(e) => return Some(e.to_string()),
    }
    None
}

/// After a successful sync, the problem the exit code `code` stands for (the
/// report's before the repair's) is the run's one line; any other goes to
/// the log.
fn settle(
    result: Result<Outcome, Error>,
    code: Code,
    sync_code: Code,
    problems: [Option<String>; 2],
    log: &mut RunLog,
) -> Result<Outcome, Error> {
    let mut problems = problems.into_iter().flatten();
    let mut result = result;
    if code != sync_code
        && let Some(first) = problems.next()
    {
        result = Ok(Outcome {
            code,
            problem: Some(first),
        });
    }
    for other in problems {
        log.line(&other);
    }
    result
}

/// Opens the store root; a dry run creates nothing, and a missing store is
/// then an empty one.
fn open_store(path: &Path, dry_run: bool) -> Result<Option<StoreDir>, Error> {
    if dry_run && !path.exists() {
        return Ok(None);
    }
    Ok(Some(StoreDir::open(path)?))
}

/// What one sync works with: the INI, the switches and the open store (none
/// in a dry run before the first sync).
struct Run<'a> {
    config: &'a Config,
    args: &'a SyncArgs,
    store: Option<&'a StoreDir>,
}

impl Run<'_> {
    /// The bandwidth cap in KiB/s; `/fast` lifts it.
    fn cap_kib(&self) -> Option<u32> {
        if self.args.fast {
            None
        } else {
            self.config.sync.bwlimit.0
        }
    }

    /// Connects and mirrors while the repair `before` runs; also returns the
    /// connection when there was one, for the report upload.
    async fn connect_and_mirror(
        &self,
        before: &mut RepairBefore,
        state: &mut State,
        figures: &mut Figures,
        log: &mut RunLog,
    ) -> (Result<Outcome, Error>, Option<Throttled<Sources>>) {
        let key = match startup::pinned_key(self.config) {
            Ok(key) => key,
            Err(e) => return (Err(e), None),
        };
        let state_dir = &self.config.sync.state;
        let validators = (!self.args.dry_run).then(|| state_dir.path());
        let connected =
            transport::connect(self.config, self.cap_kib(), self.args.setup, validators).await;
        let source = match connected {
            Ok(source) => source,
            Err(e) => return (Err(e.into()), None),
        };
        let result = self
            .mirror(&source, &key, before, state, figures, log)
            .await;
        for note in source.inner().take_notes() {
            log.line(&note);
        }
        (result, Some(source))
    }

    /// Loads the verified manifest, selects the package folders and makes the
    /// store match; a dry run prints the plan instead. The store is surveyed
    /// only once the repair before the sync is done; the manifest, which
    /// does not depend on it, is loaded meanwhile.
    async fn mirror(
        &self,
        source: &Throttled<Sources>,
        key: &PinnedKey,
        before: &mut RepairBefore,
        state: &mut State,
        figures: &mut Figures,
        log: &mut RunLog,
    ) -> Result<Outcome, Error> {
        let config = self.config;
        let dry_run = self.args.dry_run;
        let state_dir = &config.sync.state;
        let newest = manifest::load::newest_timestamp(
            source.inner(),
            key,
            state.accepted(),
            state_dir,
            !dry_run,
        )
        .await?;
        state.sources_behind = newest.behind;
        let mut manifest =
            manifest::load::load(source, key, &newest.timestamp, state_dir, !dry_run).await?;
        log.line(&format!("manifest version {} verified", manifest.version()));
        figures.version = Some(manifest.version());

        before.wait(log).await;
        let listing = before.take_listing();
        let mut surveyed = sync::run::survey(self.store, before.repaired(), listing, state_dir)?;
        let (folders, notes) = select::policy::folders_for_run(
            source,
            &manifest,
            surveyed.store,
            &surveyed.inventory,
            config,
            self.args.setup,
        )
        .await?;
        for note in &notes {
            log.line(note);
            if dry_run {
                println!("{note}");
            }
        }
        let scope = Scope::new(folders, &config.sync.exclude);
        let mirrored_folder =
            |folder: Option<&str>| folder.is_some_and(|f| scope.mirrors_folder(f));
        manifest::load::load_parts(source, &mut manifest, mirrored_folder, state_dir, !dry_run)
            .await?;
        surveyed.rehash(&manifest, log);
        let Some(store) = self.store.filter(|_| !dry_run) else {
            surveyed
                .preview(source, &manifest, &scope, self.cap_kib())
                .await?;
            return Ok(Outcome::success());
        };
        let display = Display::choose(self.args.quiet);
        let mirrored = surveyed
            .mirror(
                source,
                store,
                &manifest,
                &scope,
                display,
                config.sync.timeout,
                state_dir,
                log,
            )
            .await?;
        state.indexed_version = mirrored.complete.then_some(manifest.version());
        state.accept(manifest.version(), *manifest.sha256());
        figures.fetched = Some(mirrored.fetched);
        figures.deleted = Some(mirrored.deleted);
        Ok(mirrored.outcome)
    }
}
