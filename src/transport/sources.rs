//! Every source of one run, as one [`Source`]: the INI's mirrors in their
//! order, then the remote. Signed records make them interchangeable, so a
//! source is trusted for availability only.
//!
//! Reads go to the first source still in the run. One that fails (lost,
//! silent, an error answer, a lying range) is dropped for the run and the
//! read is asked again of the next, at the same offset: the bytes a file
//! already has are not fetched again. One that lacks a file, or may not
//! serve it, is passed over for that file only. Bytes that fail the
//! caller's check are rejected ([`Source::reject`]): every source that
//! served them is dropped and the caller asks again. Each request is
//! watched with its source's own fate on the run's one clock, so a source
//! found silent is dead and the next starts with the whole timeout.
//!
//! The reports go to the remote alone, whichever source served the files.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::connection::{Connection, ConnectionFile, connect_one};
use super::https::Conditional;
use super::progress::Progress;
use super::reports::ReportFolder;
use super::source::{Source, TransportError, TransportErrorKind};
use super::throttle::Throttled;
use crate::config::Config;

/// How long the sources beside the remote may take to connect and answer
/// for the timestamp: a mirror that is down must not hold the run.
const REACH_BOUND: Duration = Duration::from_secs(15);
/// The most sources a run reads from (one bit each in a file's record).
const MAX_SOURCES: usize = 64;

/// One source of the run.
struct Member {
    /// How the log names it: the INI's text.
    label: String,
    /// `None` when it could not be reached.
    connection: Option<Connection>,
    progress: Progress,
    /// Still asked for reads this run.
    in_run: AtomicBool,
    /// Why it left the run, or could not join it.
    fault: Mutex<Option<TransportError>>,
}

/// The run's sources, mirrors first and the remote last.
pub(crate) struct Sources {
    members: Vec<Member>,
    timeout: Duration,
    /// What happened to sources along the way, for the local log.
    notes: Mutex<Vec<String>>,
}

/// A file open on the run's sources: opened on each source when that one is
/// first asked for its bytes.
pub(crate) struct SourcesFile {
    path: String,
    handles: Vec<OnceCell<Result<ConnectionFile, TransportError>>>,
    /// Sources whose bytes the file got, one bit each.
    served: AtomicU64,
    /// Sources that lack this file, or may not serve it.
    passed_over: AtomicU64,
}

/// Connects to every source the INI names at once, under the run's bandwidth
/// cap (`cap_kib`, none with `/fast`). A source that cannot be reached is
/// noted and left out; the run fails with the remote's error only when no
/// source could be reached. `setup` is `/setup`: only then, at a console, may
/// an unknown SSH host key be recorded. `validators` is the state folder
/// (`None` in a dry run) for the conditional requests of HTTPS sources.
pub(crate) async fn connect(
    config: &Config,
    cap_kib: Option<u32>,
    setup: bool,
    validators: Option<&std::path::Path>,
) -> Result<Throttled<Sources>, TransportError> {
    use std::io::IsTerminal;
    // Trust on first use only for an administrator at a console running
    // /setup; a scheduled run has no one to ask and never records a key.
    let ask = setup && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let clock = Progress::new();
    let remotes: Vec<_> = config
        .server
        .mirrors
        .iter()
        .chain(std::iter::once(&config.server.remote))
        .take(MAX_SOURCES)
        .collect();
    let several = remotes.len() > 1;
    let members = futures::future::join_all(remotes.into_iter().map(|remote| {
        let progress = clock.sibling();
        async move {
            let connecting = connect_one(remote, config, ask, validators, &progress);
            let connected = if several {
                bounded(config.sync.timeout, connecting).await
            } else {
                connecting.await
            };
            let (connection, fault) = match connected {
                Ok(connection) => (Some(connection), None),
                Err(e) => (None, Some(e)),
            };
            Member {
                label: remote.label(),
                in_run: AtomicBool::new(connection.is_some()),
                connection,
                progress,
                fault: Mutex::new(fault),
            }
        }
    }))
    .await;
    let sources = Sources {
        members,
        timeout: config.sync.timeout,
        notes: Mutex::new(Vec::new()),
    };
    if sources.members.iter().all(|m| m.connection.is_none()) {
        return Err(sources.remote_fault());
    }
    for member in &sources.members {
        if let Some(fault) = member.fault() {
            sources.note(format!("source {} left out: {fault}", member.label));
        }
        if member.connection.as_ref().is_some_and(Connection::is_plain) {
            sources.note(format!(
                "source {} is plain http://: the transfer is not private",
                member.label
            ));
        }
    }
    Ok(Throttled::new(sources, cap_kib, clock))
}

/// `request` within the reach bound (no longer than `timeout`).
async fn bounded<T>(
    timeout: Duration,
    request: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    let bound = REACH_BOUND.min(timeout);
    tokio::time::timeout(bound, request)
        .await
        .unwrap_or_else(|_| {
            Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!("no answer within {}s", bound.as_secs()),
            ))
        })
}

impl Member {
    fn fault(&self) -> Option<TransportError> {
        self.fault.lock().ok().and_then(|fault| fault.clone())
    }

    /// Runs one request on this source under its watch.
    async fn watch<T>(
        &self,
        timeout: Duration,
        request: impl std::future::Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        self.progress.watch(timeout, request).await
    }
}

impl Sources {
    /// How many sources the run has, reachable or not.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// How the log names source `index`.
    pub(crate) fn label(&self, index: usize) -> &str {
        &self.members[index].label
    }

    /// Reads one record from source `index` alone, within the reach bound
    /// when there are several sources.
    pub(crate) async fn read_record_from(
        &self,
        index: usize,
        path: &str,
        limit: u64,
    ) -> Result<Conditional, TransportError> {
        let member = &self.members[index];
        let Some(connection) = member.connection.as_ref().filter(|_| self.in_run(index)) else {
            return Err(member
                .fault()
                .unwrap_or_else(|| left_the_run(&member.label)));
        };
        let reading = member.watch(self.timeout, connection.read_record(path, limit));
        if self.members.len() > 1 {
            bounded(self.timeout, reading).await
        } else {
            reading.await
        }
    }

    /// Takes source `index` out of the run, saying why in the log.
    pub(crate) fn leave_out(&self, index: usize, why: String) {
        let member = &self.members[index];
        if member.in_run.swap(false, Ordering::Relaxed) {
            self.note(format!(
                "source {} dropped for this run: {why}",
                member.label
            ));
            // The next source starts on a clock that is not already spent.
            member.progress.touch();
        }
    }

    /// What happened to sources so far, for the local log; taken once.
    pub(crate) fn take_notes(&self) -> Vec<String> {
        let mut notes = self
            .notes
            .lock()
            .map(|mut notes| std::mem::take(&mut *notes))
            .unwrap_or_default();
        for member in &self.members {
            if member
                .connection
                .as_ref()
                .is_some_and(Connection::ignores_ranges)
            {
                notes.push(format!(
                    "source {} answers range requests with whole files: \
                     each read downloads the file up to the range",
                    member.label
                ));
            }
        }
        notes
    }

    /// Whether source `index` is still asked for reads.
    fn in_run(&self, index: usize) -> bool {
        self.members[index].in_run.load(Ordering::Relaxed)
    }

    fn note(&self, line: String) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(line);
        }
    }

    /// Why the remote cannot be used, for a run with nothing left.
    fn remote_fault(&self) -> TransportError {
        let remote = self.members.last().expect("a run has a remote");
        remote
            .fault()
            .or_else(|| self.members.iter().rev().find_map(Member::fault))
            .unwrap_or_else(|| left_the_run(&remote.label))
    }

    /// Source `index` failed a request for `file`: one that lacks the file
    /// is passed over for it, any other failure drops the source.
    fn failed(&self, index: usize, file: &SourcesFile, error: &TransportError) {
        match error.kind() {
            TransportErrorKind::NotFound | TransportErrorKind::PermissionDenied => {
                file.passed_over.fetch_or(1 << index, Ordering::Relaxed);
            }
            _ => {
                if let Ok(mut fault) = self.members[index].fault.lock() {
                    fault.get_or_insert_with(|| error.clone());
                }
                self.leave_out(index, error.to_string());
            }
        }
    }

    /// The first source still in the run that has not passed over `file`.
    fn next_for(&self, file: &SourcesFile) -> Option<usize> {
        let passed_over = file.passed_over.load(Ordering::Relaxed);
        (0..self.members.len()).find(|&i| self.in_run(i) && passed_over & (1 << i) == 0)
    }

    /// `file` open on source `index`, opened on first use.
    async fn handle<'f>(
        &self,
        index: usize,
        file: &'f SourcesFile,
    ) -> Result<&'f ConnectionFile, TransportError> {
        let member = &self.members[index];
        let connection = member
            .connection
            .as_ref()
            .expect("only connected sources are in the run");
        let opened = file.handles[index]
            .get_or_init(|| member.watch(self.timeout, connection.open(&file.path)))
            .await;
        opened.as_ref().map_err(Clone::clone)
    }

    /// The error for `file` once no source is left to ask: what the last
    /// source said about it, else why the remote left the run.
    fn exhausted(&self, last: Option<TransportError>) -> TransportError {
        last.unwrap_or_else(|| self.remote_fault())
    }
}

fn left_the_run(label: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Unreachable,
        format!("source {label} is no longer in the run"),
    )
}

impl Source for Sources {
    type File = SourcesFile;

    async fn open(&self, path: &str) -> Result<SourcesFile, TransportError> {
        Ok(SourcesFile {
            path: path.to_owned(),
            handles: self.members.iter().map(|_| OnceCell::new()).collect(),
            served: AtomicU64::new(0),
            passed_over: AtomicU64::new(0),
        })
    }

    async fn read_at(
        &self,
        file: &SourcesFile,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        let mut last = None;
        while let Some(index) = self.next_for(file) {
            let member = &self.members[index];
            let read = match self.handle(index, file).await {
                Ok(handle) => {
                    let connection = member.connection.as_ref().expect("connected");
                    member
                        .watch(self.timeout, connection.read_at(handle, offset, len))
                        .await
                }
                Err(e) => Err(e),
            };
            match read {
                Ok(data) => {
                    file.served.fetch_or(1 << index, Ordering::Relaxed);
                    return Ok(data);
                }
                Err(e) => {
                    self.failed(index, file, &e);
                    last = Some(e);
                }
            }
        }
        Err(self.exhausted(last))
    }

    async fn close(&self, file: SourcesFile) {
        for (index, handle) in file.handles.into_iter().enumerate() {
            if let Some(Ok(handle)) = handle.into_inner()
                && let Some(connection) = &self.members[index].connection
            {
                // Closing a read-only file loses nothing; a silent source
                // must not hold the run here either.
                let closing = async {
                    connection.close(handle).await;
                    Ok(())
                };
                let _ = self.members[index].watch(self.timeout, closing).await;
            }
        }
    }

    fn reject(&self, file: &SourcesFile) -> bool {
        let served = file.served.load(Ordering::Relaxed);
        let passed_over = file.passed_over.load(Ordering::Relaxed);
        // With no other source to ask, the file fails and the source stays:
        // its other files may be right.
        let another = (0..self.members.len())
            .any(|i| self.in_run(i) && (served | passed_over) & (1 << i) == 0);
        if !another {
            return false;
        }
        file.served.store(0, Ordering::Relaxed);
        for index in (0..self.members.len()).filter(|i| served & (1 << i) != 0) {
            self.leave_out(index, format!("it served wrong bytes for {}", file.path));
        }
        true
    }
}

/// The reports go to the remote, watched like its reads.
impl ReportFolder for Sources {
    type Writer = ConnectionFile;

    async fn create(&self, path: &str, append: bool) -> Result<ConnectionFile, TransportError> {
        let (remote, connection) = self.remote()?;
        remote
            .watch(self.timeout, connection.create(path, append))
            .await
    }

    async fn write_at(
        &self,
        file: &ConnectionFile,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let (remote, connection) = self.remote()?;
        remote
            .watch(self.timeout, connection.write_at(file, offset, data))
            .await
    }

    async fn finish(&self, file: ConnectionFile) -> Result<(), TransportError> {
        let (remote, connection) = self.remote()?;
        remote.watch(self.timeout, connection.finish(file)).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        let (remote, connection) = self.remote()?;
        remote
            .watch(self.timeout, connection.rename(from, to))
            .await
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        let (remote, connection) = self.remote()?;
        remote.watch(self.timeout, connection.remove(path)).await
    }
}

impl Sources {
    /// The remote and its connection, for the reports.
    fn remote(&self) -> Result<(&Member, &Connection), TransportError> {
        let remote = self.members.last().expect("a run has a remote");
        match &remote.connection {
            Some(connection) => Ok((remote, connection)),
            None => Err(self.remote_fault()),
        }
    }
}
