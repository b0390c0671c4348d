//! One run, phase by phase: config, trust, connect, verify, plan, apply, record.
//!
//! Returns an [`Outcome`] or an [`Error`] and never exits; `main` turns either
//! into the one line and the exit code. Later phases of DESIGN (lock, ACL repair,
//! report upload) slot in between "apply" and "record"; the gossip pulse follows
//! "record".

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::anchors;
use crate::cli::{Cli, Command, ScheduleAction, SyncArgs};
use crate::clock::now_unix;
use crate::config::{Config, GossipConfig, PackageSelection, Remote};
use crate::display::Display;
use crate::error::Error;
use crate::exit::{Code, Outcome};
use crate::gossip;
use crate::gossip::pulse::SignedRecord;
use crate::manifest::format::{
    MANIFEST_FILE, MANIFEST_MAX_BYTES, META_DIR, SIGNATURE_MAX_BYTES, SIGNATURE_SUFFIX,
    TIMESTAMP_FILE, TIMESTAMP_MAX_BYTES,
};
use crate::manifest::verify::{
    Accepted, ManifestError, PinnedKey, VerifiedFile, VerifiedManifest, verify_manifest,
    verify_timestamp,
};
use crate::platform;
use crate::publish;
use crate::report::{self, ReportError, ReportNames, RunRecord};
use crate::runlog::RunLog;
use crate::schedule;
use crate::select;
use crate::status;
use crate::store::acl;
use crate::store::dir::StoreDir;
use crate::store::index::{FileId, IndexEntry, StoreIndex};
use crate::store::lock::RunLock;
use crate::store::manifest_cache;
use crate::store::state::State;
use crate::sync::apply::{self, Applied, Arrival, KnownContent};
use crate::sync::events::Events;
use crate::sync::inventory::{Inventory, LocalKind};
use crate::sync::package_files;
use crate::sync::plan::{Plan, plan};
use crate::sync::scope::{Others, PackageFolders, Scope, Verdict};
use crate::transport::{
    FolderSource, HostKeyPolicy, Progress, ReportFolder, SftpSource, Source, SshTarget, Throttled,
    TransportError, TransportErrorKind,
};

/// Runs what the command line asks for. `log` is opened once the INI names
/// the state folder, so `main` can record the final line there too.
pub async fn run(cli: Cli, log: &mut RunLog) -> Result<Outcome, Error> {
    match cli.command {
        Some(Command::Keygen { out, force }) => {
            let paths = publish::keygen(&out, force)?;
            println!("wrote {}", paths.private.display());
            println!("wrote {}", paths.public.display());
            Ok(Outcome::success())
        }
        Some(Command::Publish {
            repo,
            key,
            expires_days,
            announce,
            config,
        }) => {
            // Read before publishing, so a wrong INI leaves the repository alone.
            let gossip = if announce {
                let ini = config.unwrap_or_else(platform::default_ini_path);
                Some(GossipConfig::load(&ini)?)
            } else {
                None
            };
            let summary = publish::publish(&repo, &key, expires_days)?;
            for warning in &summary.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "published version {} of {}: {} files, {} bytes ({} hashed, {} from cache)",
                summary.version,
                repo.display(),
                summary.files,
                summary.bytes,
                summary.hashed,
                summary.reused
            );
            if let Some(gossip) = gossip {
                let line = gossip::announce::published(&gossip, &repo, summary.version).await;
                println!("{line}");
            }
            Ok(Outcome::success())
        }
        Some(Command::Listen { config, bind }) => {
            let ini = config.unwrap_or_else(platform::default_ini_path);
            gossip::listen::listen(ini, bind, log).await
        }
        Some(Command::Status { config, json }) => status::report(config, json),
        Some(Command::Schedule {
            action,
            config,
            unit_dir,
        }) => {
            let ini = config.unwrap_or_else(platform::default_ini_path);
            let job = schedule::Job::current(&ini)?;
            let done = match action {
                ScheduleAction::Show => {
                    print!("{}", schedule::show(&job));
                    return Ok(Outcome::success());
                }
                ScheduleAction::Install => {
                    prepare_folders(&ini)?;
                    schedule::install(&job, unit_dir.as_deref())?
                }
                ScheduleAction::Remove => schedule::remove(unit_dir.as_deref())?,
            };
            println!("{done}");
            Ok(Outcome::success())
        }
        None => sync(cli.sync, log).await,
    }
}

/// Makes the store and state folders of the INI the administrators' before
/// the first run, as the MSI's `schedule install` does; an INI that cannot
/// be read or trusted yet leaves that to the first sync, which checks again.
fn prepare_folders(ini: &Path) -> Result<(), Error> {
    let loaded = anchors::check_ini(ini)
        .map_err(Error::from)
        .and_then(|()| Ok(Config::load(ini)?));
    match loaded {
        Ok((config, _)) => {
            for line in anchors::prepare_folders(&config)? {
                println!("{line}");
            }
        }
        Err(e) => println!("folders not prepared: {}", e.line()),
    }
    Ok(())
}

/// The client sync: everything after the INI is read is recorded in the state.
async fn sync(args: SyncArgs, log: &mut RunLog) -> Result<Outcome, Error> {
    // Before anything reads the INI or touches the store, as wpkgsync.bat did.
    if !platform::is_administrator() {
        return Err(Error::NotAdministrator);
    }
    let ini = args
        .config
        .clone()
        .unwrap_or_else(platform::default_ini_path);
    // Nothing the INI says is believed before the INI itself, then every
    // file it names, is known to be the administrators' alone.
    anchors::check_ini(&ini)?;
    let (config, warnings) = Config::load(&ini)?;
    anchors::check(&config)?;
    *log = RunLog::open(&config.sync.state);
    for warning in &warnings {
        log.line(&format!("warning: {warning}"));
    }
    let _lock = RunLock::acquire(&config.sync.state)?;
    log.line(&format!("sync started, config {}", ini.display()));

    let mut state = State::load(&config.sync.state)?;
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
    // Before the sync, so nothing anyone else could write is taken as
    // unchanged, used as a basis or copied from.
    let mut acl_problem = None;
    let mut suspect = acl::Repaired::default();
    if let Some(store) = store.as_ref().filter(|_| !args.dry_run) {
        match acl::repair(store) {
            Ok(repaired) => suspect = repaired,
            Err(e) => {
                log.line(&format!("{e}: every file is hashed again before it counts"));
                acl_problem = Some(e.to_string());
                suspect.everything = true;
            }
        }
    }
    let started = Instant::now();
    let mut figures = Figures::default();
    let local = Local {
        store: store.as_ref(),
        suspect: &suspect,
    };
    // A whole run has a deadline, whatever a source does; the partial
    // downloads it leaves are resumed by the next run.
    let deadline = config.sync.deadline;
    let syncing = sync_verified(&config, &args, &local, &mut state, &mut figures, log);
    let (mut result, connection) = match tokio::time::timeout(deadline, syncing).await {
        Ok(done) => done,
        Err(_) => (Err(Error::Deadline(deadline)), None),
    };
    let sync_code = match &result {
        Ok(outcome) => outcome.code,
        Err(e) => e.exit_code(),
    };
    // The server went away (lost, silent, or the run out of time): an upload
    // would only wait for it again, twice.
    let session_dead = matches!(sync_code, Code::Unreachable | Code::Timeout)
        && (connection.is_some() || matches!(result, Err(Error::Deadline(_))));
    // After every run that may have written to the store, failed ones too.
    if !args.dry_run
        && let Some(store) = &store
        && let Err(e) = acl::repair(store)
    {
        acl_problem.get_or_insert(e.to_string());
    }
    let acl_code = acl_problem.as_ref().map(|_| Code::AclRepair);
    // After every run that reached the server, failed ones too.
    let mut report_problem = None;
    if !args.dry_run && !config.server.reports.is_empty() && session_dead {
        log.line(&format!(
            "report upload skipped: the session with the server ended (exit {})",
            sync_code.number()
        ));
    } else if !args.dry_run
        && !config.server.reports.is_empty()
        && let Some(connection) = &connection
    {
        let uploaded = match connection {
            Connection::Folder(folder) => {
                upload_reports(folder, &config, sync_code, acl_code, &figures, started).await
            }
            Connection::Sftp(sftp) => {
                upload_reports(sftp, &config, sync_code, acl_code, &figures, started).await
            }
        };
        match uploaded {
            Ok(true) => log.line("uploaded the WPKG log and the run line"),
            Ok(false) => log.line(&format!(
                "uploaded the run line; no WPKG log at {}",
                config.sync.wpkg_log.display()
            )),
            Err(e) => report_problem = Some(e.to_string()),
        }
    }
    let code = Code::precedence(
        sync_code,
        report_problem.as_ref().map(|_| Code::ReportUpload),
        acl_code,
    );
    // After a successful sync, the problem the exit code stands for (the
    // report's before the repair's) is the run's one line; any other goes to
    // the log.
    let mut problems = [report_problem, acl_problem].into_iter().flatten();
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

/// Opens the store root; a dry run creates nothing, and a missing store is
/// then an empty one.
fn open_store(path: &Path, dry_run: bool) -> Result<Option<StoreDir>, Error> {
    if dry_run && !path.exists() {
        return Ok(None);
    }
    Ok(Some(StoreDir::open(path)?))
}

/// The local side of a sync: the open store (none in a dry run before the
/// first sync) and what the repair before the sync had to fix.
struct Local<'a> {
    store: Option<&'a StoreDir>,
    suspect: &'a acl::Repaired,
}

/// What a run did, as far as it got, for the report line.
#[derive(Debug, Default)]
struct Figures {
    version: Option<u64>,
    fetched: Option<u64>,
    deleted: Option<u64>,
}

/// The connection a sync used, kept for the report upload.
#[expect(
    clippy::large_enum_variant,
    reason = "one per run, never moved after the sync"
)]
enum Connection {
    Folder(Throttled<FolderSource>),
    Sftp(Throttled<SftpSource>),
}

/// Uploads the WPKG log and appends the run's line; the line carries the code
/// the run ends with, 106 included when the log upload failed. Returns
/// whether there was a WPKG log.
async fn upload_reports<S: Source + ReportFolder>(
    folder: &Throttled<S>,
    config: &Config,
    sync_code: Code,
    acl_code: Option<Code>,
    figures: &Figures,
    started: Instant,
) -> Result<bool, ReportError> {
    let names = ReportNames::new(
        &config.server.reports,
        &report::host_label(&platform::computer_name()),
    );
    let uploaded = report::upload_wpkg_log(folder, &names, &config.sync.wpkg_log).await;
    let code = Code::precedence(
        sync_code,
        uploaded.is_err().then_some(Code::ReportUpload),
        acl_code,
    );
    let record = RunRecord {
        finished: SystemTime::now(),
        code,
        version: figures.version,
        fetched: figures.fetched,
        deleted: figures.deleted,
        bytes: folder.transferred(),
        duration: started.elapsed(),
    };
    let appended = report::append_run_line(folder, &names, &record).await;
    let uploaded = uploaded?;
    appended.map(|()| uploaded)
}

/// Connects and mirrors; also returns the connection when there was one, for
/// the report upload.
async fn sync_verified(
    config: &Config,
    args: &SyncArgs,
    local: &Local<'_>,
    state: &mut State,
    figures: &mut Figures,
    log: &mut RunLog,
) -> (Result<Outcome, Error>, Option<Connection>) {
    let key = match PinnedKey::load(&config.publisher_key) {
        Ok(key) => key,
        Err(e) => {
            let error = Error::Setting {
                key: "trust.publisher_key",
                source: Box::new(e),
            };
            return (Err(error), None);
        }
    };
    let cap = if args.fast {
        None
    } else {
        config.sync.bwlimit.0
    };
    let progress = Progress::new();
    let timeout = config.sync.timeout;
    match &config.server.remote {
        Remote::Folder(path) => {
            let source = match FolderSource::connect(path, timeout).await {
                Ok(source) => Throttled::new(source, cap, progress, timeout),
                Err(e) => return (Err(e.into()), None),
            };
            let result = mirror(&source, &key, config, args, local, state, figures, log).await;
            (result, Some(Connection::Folder(source)))
        }
        Remote::Ssh { user, host } => {
            let target = SshTarget {
                user: user.clone(),
                host: host.clone(),
                port: config.server.port,
                identity: config.server.identity.clone(),
                known_hosts: config.server.known_hosts.clone(),
                root: config.server.path.clone(),
                timeout: config.sync.timeout,
                request_limit: config.sync.deadline,
            };
            // Trust on first use only for an administrator at a console running
            // /setup; a scheduled run has no one to ask and never records a key.
            let console = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            let policy = if args.setup && console {
                HostKeyPolicy::AskAtConsole
            } else {
                HostKeyPolicy::Strict
            };
            let source = match SftpSource::connect(&target, policy, &progress).await {
                Ok(source) => Throttled::new(source, cap, progress, timeout),
                Err(e) => return (Err(e.into()), None),
            };
            let result = mirror(&source, &key, config, args, local, state, figures, log).await;
            (result, Some(Connection::Sftp(source)))
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the phases of one run; they move to their own modules next"
)]
async fn mirror<S: Source>(
    source: &Throttled<S>,
    key: &PinnedKey,
    config: &Config,
    args: &SyncArgs,
    local: &Local<'_>,
    state: &mut State,
    figures: &mut Figures,
    log: &mut RunLog,
) -> Result<Outcome, Error> {
    let cap = if args.fast {
        None
    } else {
        config.sync.bwlimit.0
    };
    let accepted = state.accepted_version.map(|version| Accepted {
        version,
        manifest_sha256: state.accepted_manifest_sha256,
    });
    let manifest = fetch_verified(source, key, accepted, &config.sync.state, !args.dry_run).await?;
    log.line(&format!("manifest version {} verified", manifest.version()));
    figures.version = Some(manifest.version());

    let mut inventory = match local.store {
        Some(store) => Inventory::scan(store)?,
        None => Inventory::default(),
    };
    // The index knows which file was verified: one put in its place with the
    // same size and mtime (or the store restored from a copy) is hashed
    // again, which costs a read of the disk rather than a download.
    let index = StoreIndex::load(&config.sync.state);
    if let Some(store) = local.store {
        inventory.distrust(local.suspect);
        inventory.distrust_other_files(&index);
        if let Some(note) = inventory.rehash_suspects(store, &manifest) {
            log.line(&note);
        }
    }
    let (folders, notes) =
        package_folders(source, &manifest, local.store, &inventory, config, args).await?;
    for note in &notes {
        log.line(note);
        if args.dry_run {
            println!("{note}");
        }
    }
    let scope = Scope::new(folders, &config.sync.exclude);
    if args.dry_run {
        print_excluded(&manifest, &scope);
    }
    let plan = plan(&manifest, &scope, &inventory, Some(&index));
    let known = KnownContent::new(&index, &inventory, &plan);
    let Some(store) = local.store.filter(|_| !args.dry_run) else {
        let estimates = apply::estimate(source, local.store, &inventory, &plan, &known).await?;
        print_plan(&plan, &estimates, cap);
        return Ok(Outcome::success());
    };

    let display = Display::choose(args.quiet);
    display.set_total(plan.fetch_bytes());
    let events = RunEvents::new(display);
    let applied = tokio::select! {
        applied = apply::apply(source, store, &inventory, &plan, &known, &events) => applied?,
        stalled = events.stalled(config.sync.timeout, source.progress()) => return Err(stalled),
    };
    events.display.finish();
    apply::remove_temps(store, &inventory)?;
    let verified = index_of(&manifest, &scope, &applied, store, &inventory);
    if verified != index {
        verified.save(&config.sync.state)?;
    }
    state.indexed_version = applied.failures.is_empty().then_some(manifest.version());
    state.accept(manifest.version(), *manifest.sha256());
    figures.fetched = Some(applied.fetched as u64);
    figures.deleted = Some(applied.deleted as u64);
    Ok(summarise(&applied, &plan, manifest.version(), log))
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
    let failed: std::collections::HashSet<&str> = applied
        .failures
        .iter()
        .map(|(path, _)| path.as_str())
        .collect();
    let files = manifest
        .files()
        .iter()
        .filter(|f| scope.judge(f.path.as_str()) == Verdict::Mirrored)
        .filter(|f| !failed.contains(f.path.as_str()))
        .map(|f| {
            let fetched = applied.placed.contains(f.path.as_str());
            let id = match inventory.entries.get(f.path.as_str()).map(|e| &e.kind) {
                Some(LocalKind::File { id, .. }) if !fetched => Some(*id),
                _ => store
                    .symlink_metadata(f.path.as_str())
                    .ok()
                    .map(|m| FileId::of(&m)),
            };
            let entry = IndexEntry {
                size: f.size,
                mtime: f.mtime,
                sha256: hex::encode(f.sha256),
                id,
            };
            (f.path.to_string(), entry)
        })
        .collect();
    StoreIndex { files }
}

/// Reads and verifies the timestamp, then the manifest it names: from the
/// cache in the state folder when it is that one, else from the source. With
/// `keep`, the timestamp record is kept for the gossip pulse and a downloaded
/// manifest is cached for the next run.
async fn fetch_verified<S: Source>(
    source: &S,
    key: &PinnedKey,
    accepted: Option<Accepted>,
    state_dir: &Path,
    keep: bool,
) -> Result<VerifiedManifest, Error> {
    let record = read_record(source, TIMESTAMP_FILE, TIMESTAMP_MAX_BYTES).await?;
    let signature =
        read_record(source, &signature_name(TIMESTAMP_FILE), SIGNATURE_MAX_BYTES).await?;
    let timestamp = verify_timestamp(key, &record, &signature, accepted, now_unix())?;
    if keep {
        // The pulse after the run and a listener's answers carry it as published.
        SignedRecord { record, signature }.keep(state_dir)?;
    }
    if let Some((manifest, signature)) =
        manifest_cache::load(state_dir, timestamp.manifest_sha256())
        && let Ok(verified) = verify_manifest(key, &timestamp, &manifest, &signature)
    {
        return Ok(verified);
    }
    let limit = timestamp.manifest_size().min(MANIFEST_MAX_BYTES);
    let manifest = read_record(source, MANIFEST_FILE, limit).await?;
    let signature =
        read_record(source, &signature_name(MANIFEST_FILE), SIGNATURE_MAX_BYTES).await?;
    let verified = verify_manifest(key, &timestamp, &manifest, &signature)?;
    if keep {
        manifest_cache::save(state_dir, &manifest, &signature)?;
    }
    Ok(verified)
}

fn signature_name(record: &str) -> String {
    format!("{record}{SIGNATURE_SUFFIX}")
}

/// Reads one record of `.wpkgsync/`; a missing or oversized one is a manifest
/// error (204), a lost connection stays a transport error.
async fn read_record<S: Source>(source: &S, name: &str, limit: u64) -> Result<Vec<u8>, Error> {
    let path = format!("{META_DIR}/{name}");
    source
        .read_limited(&path, limit)
        .await
        .map_err(|e: TransportError| match e.kind() {
            TransportErrorKind::NotFound => Error::Manifest(ManifestError::Missing { name: path }),
            TransportErrorKind::TooLarge => {
                Error::Manifest(ManifestError::TooLarge { name: path, limit })
            }
            _ => Error::Transport(e),
        })
}

/// Which package folders this run mirrors, from the INI and the switches, with
/// lines that say why for the log (and a dry run's output).
async fn package_folders<S: Source>(
    source: &S,
    manifest: &VerifiedManifest,
    store: Option<&StoreDir>,
    inventory: &Inventory,
    config: &Config,
    args: &SyncArgs,
) -> Result<(PackageFolders, Vec<String>), Error> {
    if args.setup {
        return Ok((
            PackageFolders::setup(),
            vec!["/setup: mirroring the top level and packages/*.xml".into()],
        ));
    }
    let auto = match &config.sync.packages {
        PackageSelection::All => return Ok((PackageFolders::All, Vec::new())),
        PackageSelection::List(list) => {
            return Ok((PackageFolders::only(list.clone()), Vec::new()));
        }
        PackageSelection::Auto => &config.sync.wpkg_log,
    };
    let log = match select::log_file::read_tail(auto, select::log_file::MAX_LOG_BYTES) {
        Ok(Some(bytes)) => bytes,
        found => {
            let why = match found {
                Err(e) => e.to_string(),
                _ => format!("no WPKG log at {} yet", auto.display()),
            };
            let note = format!("{why}: mirroring the top level and packages/*.xml as /setup does");
            return Ok((PackageFolders::setup(), vec![note]));
        }
    };
    let needed = select::wpkg_log::needed_ids(&log);
    if needed.is_empty() {
        // A log cut short before WPKG read the profiles names no package; taking
        // it literally would delete every package folder.
        let note = format!(
            "the WPKG log {} names no package: mirroring the top level and packages/*.xml as /setup does",
            auto.display()
        );
        return Ok((PackageFolders::setup(), vec![note]));
    }
    let definitions = package_files::read(source, manifest, store, inventory).await?;
    let selection = select::select(&definitions.files, &needed);
    let mut notes = Vec::new();
    for (id, folders) in &selection.needed {
        let folders: Vec<&str> = folders.iter().map(String::as_str).collect();
        notes.push(format!("package {id} needs: {}", folders.join(", ")));
    }
    if !selection.unknown_ids.is_empty() {
        notes.push(format!(
            "the WPKG log names packages no package file defines: {}",
            selection.unknown_ids.join(", ")
        ));
    }
    for malformed in &selection.malformed {
        notes.push(format!(
            "malformed package file, its folders are kept: {malformed}"
        ));
    }
    for unreadable in &definitions.unreadable {
        notes.push(format!("unreadable package file: {unreadable}"));
    }
    let mirror: Vec<String> = selection.folders.iter().cloned().collect();
    // Without every definition, an unselected folder may still be needed:
    // leave those alone rather than delete them.
    let folders = if definitions.unreadable.is_empty() {
        PackageFolders::only(mirror)
    } else {
        PackageFolders::Selected {
            mirror,
            others: Others::Untouched,
        }
    };
    Ok((folders, notes))
}

/// The package folders of the repository this run does not mirror.
fn print_excluded(manifest: &VerifiedManifest, scope: &Scope) {
    let mut excluded = std::collections::BTreeSet::new();
    for file in manifest.files() {
        let mut parts = file.path.as_str().splitn(3, '/');
        if let (Some(top), Some(folder), Some(_)) = (parts.next(), parts.next(), parts.next())
            && top.eq_ignore_ascii_case("packages")
            && scope.judge(file.path.as_str()) != Verdict::Mirrored
        {
            excluded.insert(folder);
        }
    }
    let list: Vec<&str> = excluded.into_iter().collect();
    println!(
        "package folders not mirrored: {}",
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    );
}

fn print_plan(plan: &Plan<'_>, estimates: &[(&VerifiedFile, Arrival)], cap: Option<u32>) {
    println!("dry run: nothing is changed");
    let mut bytes = 0;
    for (file, arrival) in estimates {
        let how = match arrival {
            Arrival::Copy(from) => format!("copy from {from}"),
            Arrival::Delta(fetched) => {
                bytes += fetched;
                format!("delta, {fetched} of {} bytes", file.size)
            }
            Arrival::Whole(fetched) => {
                bytes += fetched;
                format!("whole, {fetched} bytes")
            }
        };
        println!("fetch  {} ({how})", file.path);
    }
    for path in plan.clear.iter().chain(&plan.delete) {
        println!("delete {path}");
    }
    let estimate = match cap {
        Some(kib) => format!(
            "about {}s at {kib} KiB/s",
            bytes.div_ceil(u64::from(kib) * 1024)
        ),
        None => "no cap".to_owned(),
    };
    println!(
        "total: {} files to fetch, {bytes} bytes from the source ({estimate}), {} to delete, {} unchanged",
        plan.fetch.len(),
        plan.clear.len() + plan.delete.len(),
        plan.unchanged
    );
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

/// The run's event consumer: the display, and the time of the last progress
/// for the timeout.
struct RunEvents {
    display: Display,
    started: Instant,
    last_progress_ms: AtomicU64,
}

impl RunEvents {
    fn new(display: Display) -> RunEvents {
        RunEvents {
            display,
            started: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `timeout`: no event of the sync
    /// and no byte from the source, whose requests wait in a queue on a slow
    /// link while bytes for others arrive.
    async fn stalled(&self, timeout: Duration, source: &Progress) -> Error {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let last = Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed));
            let quiet = self.started.elapsed().saturating_sub(last);
            if quiet.min(source.silent_for()) > timeout {
                return Error::Timeout(timeout);
            }
        }
    }
}

impl Events for RunEvents {
    fn file_started(&self, path: &str, _size: u64) {
        self.display.set_file(path);
        self.touch();
    }

    fn bytes_moved(&self, bytes: u64) {
        self.display.advance(bytes);
        self.touch();
    }

    fn file_done(&self, _path: &str) {
        self.touch();
    }

    fn file_failed(&self, path: &str, why: &str) {
        self.display.println(&format!("failed: {path}: {why}"));
        self.touch();
    }

    fn deleted(&self, _path: &str) {
        self.touch();
    }
}
