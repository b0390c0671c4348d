//! The INI file, read in two stages.
//!
//! Stage one ([`RawIni::parse`]) turns text into `section.key = value` entries with
//! their line numbers and never fails on meaning. Stage two ([`Config::from_raw`])
//! expands `%VAR%`, applies the per-OS defaults and turns every value into its
//! type, collecting every problem in one pass so an administrator fixes the file
//! once. Nothing here touches the network or the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::path::RelPath;
use crate::platform;
use crate::store::state_dir::StateDir;

/// One `key = value` line of the INI file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// Section name, lowercase.
    pub section: String,
    /// Key name, lowercase.
    pub key: String,
    /// The value as written, comments removed.
    pub value: String,
    /// 1-based line of the key, when it could be found.
    pub line: Option<usize>,
}

/// Stage one: the INI file as entries.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawIni {
    entries: Vec<RawEntry>,
}

/// Why the INI file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file at the path (exit 101).
    #[error("INI file {} not found", path.display())]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file exists but cannot be read or is not INI (exit 102).
    #[error("failed to read INI file {}: {why}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// One or more values are missing or wrong (exit 102).
    #[error("{}", problems.iter().map(|p| p.render(path)).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// A problem with one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the key was present.
    pub line: Option<usize>,
    /// `section.key`.
    pub key: String,
    /// What is wrong, a lowercase fragment.
    pub why: String,
}

impl Problem {
    fn render(&self, path: &Path) -> String {
        match self.line {
            Some(line) => format!("{}:{line}: {}: {}", path.display(), self.key, self.why),
            None => format!("{}: {}: {}", path.display(), self.key, self.why),
        }
    }
}

/// Where the repository comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Remote {
    /// An SSH server, reached as `user@host`.
    Ssh {
        /// Account name.
        user: String,
        /// Host name or address.
        host: String,
    },
    /// A local folder holding a published repository (USB drive, share).
    Folder(PathBuf),
    /// A web server, CDN or object store at the published repository's root:
    /// `https://`, or `http://` where `allow_http` says so.
    Http(reqwest::Url),
}

impl Remote {
    /// How the local log names this source.
    pub(crate) fn label(&self) -> String {
        match self {
            Remote::Ssh { user, host } => format!("{user}@{host}"),
            Remote::Folder(path) => path.display().to_string(),
            Remote::Http(url) => url.to_string(),
        }
    }
}

/// Which package folders are mirrored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PackageSelection {
    /// From the WPKG package XML and log.
    Auto,
    /// Every folder under `packages/`.
    All,
    /// These folders under `packages/`.
    List(Vec<String>),
}

/// A bandwidth cap in KiB/s; `None` means no cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KibPerSec(pub Option<u32>);

/// `[server]`.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    /// `remote`.
    pub remote: Remote,
    /// `port`.
    pub port: u16,
    /// `path`: the repository on the server.
    pub path: String,
    /// `reports`: the writable reports folder (on the server, or a local
    /// path for a folder source); empty when the INI says `none`: no upload.
    pub reports: String,
    /// `identity`: the client's private key.
    pub identity: PathBuf,
    /// `known_hosts`.
    pub known_hosts: PathBuf,
    /// `mirrors`: further read-only sources, tried before `remote`.
    pub mirrors: Vec<Remote>,
    /// The client side of HTTPS sources.
    pub web: WebConfig,
}

/// What HTTPS sources and report URLs need from `[server]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WebConfig {
    /// `ca_file`: PEM certificates trusted instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// `token_file`: a bearer token sent to every HTTPS source.
    pub token_file: Option<PathBuf>,
    /// `client_certificate`: PEM certificate and key for mutual TLS.
    pub client_certificate: Option<PathBuf>,
    /// `proxy`: an HTTP(S) proxy; without it, `HTTPS_PROXY` applies.
    pub proxy: Option<reqwest::Url>,
    /// `allow_http`: plain `http://` sources are accepted.
    pub allow_http: bool,
}

/// `[sync]`.
#[derive(Clone, Debug)]
pub(crate) struct SyncConfig {
    /// `local`: the store.
    pub local: PathBuf,
    /// `bwlimit`.
    pub bwlimit: KibPerSec,
    /// `timeout`: seconds without progress.
    pub timeout: Duration,
    /// `deadline`: seconds a whole run may take.
    pub deadline: Duration,
    /// `packages`.
    pub packages: PackageSelection,
    /// `exclude`: top-level names or paths never mirrored.
    pub exclude: Vec<String>,
    /// `wpkg_log`.
    pub wpkg_log: PathBuf,
    /// `state`: state file, lock, local log, caches.
    pub state: StateDir,
    /// `stale_days`.
    pub stale_days: u32,
}

/// `[gossip]`.
#[derive(Clone, Debug)]
pub(crate) struct GossipConfig {
    /// `peers`: host[:port].
    pub peers: Vec<String>,
    /// `port`.
    pub port: u16,
    /// `spread`.
    pub spread: bool,
    /// `ttl`.
    pub ttl: u8,
    /// `jitter`.
    pub jitter: Duration,
}

/// Stage two: the typed settings of a run.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[sync]`.
    pub sync: SyncConfig,
    /// `[trust] publisher_key`.
    pub publisher_key: PathBuf,
    /// `[gossip]`.
    pub gossip: GossipConfig,
}

/// Every key this build knows, for the unknown-key warnings.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "remote",
            "port",
            "path",
            "reports",
            "identity",
            "known_hosts",
            "mirrors",
            "ca_file",
            "token_file",
            "client_certificate",
            "proxy",
            "allow_http",
        ],
    ),
    (
        "sync",
        &[
            "local",
            "bwlimit",
            "timeout",
            "deadline",
            "packages",
            "exclude",
            "wpkg_log",
            "state",
            "stale_days",
        ],
    ),
    ("trust", &["publisher_key"]),
    ("gossip", &["peers", "port", "spread", "ttl", "jitter"]),
];

impl RawIni {
    /// Reads and parses the INI file at `path`.
    pub(crate) fn load(path: &Path) -> Result<RawIni, ConfigError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_owned(),
                    why: e.to_string(),
                });
            }
        };
        // Notepad writes UTF-16 or UTF-8 with a BOM, older editors the ANSI
        // code page.
        let text = crate::text::decode(&bytes);
        RawIni::parse(&text).map_err(|why| ConfigError::Unreadable {
            path: path.to_owned(),
            why,
        })
    }

    /// Parses INI text: `;` and `#` start comments (also after a value, behind a
    /// space), backslashes are literal (Windows paths), keys are case-insensitive.
    pub(crate) fn parse(text: &str) -> Result<RawIni, String> {
        let options = ini::ParseOption {
            enabled_quote: true,
            enabled_escape: false,
            enabled_indented_mutiline_value: false,
            enabled_preserve_key_leading_whitespace: false,
        };
        let ini = ini::Ini::load_from_str_opt(text, options)
            .map_err(|e| format!("line {}: {}", e.line, e.msg))?;
        let mut entries = Vec::new();
        for (section, properties) in ini.iter() {
            let section = section.unwrap_or_default().trim().to_lowercase();
            for (key, value) in properties.iter() {
                let key = key.trim().to_lowercase();
                let line = locate(text, &section, &key);
                entries.push(RawEntry {
                    section: section.clone(),
                    key,
                    value: value.trim().to_owned(),
                    line,
                });
            }
        }
        Ok(RawIni { entries })
    }

    /// The last entry for `section.key`, as Windows' own INI reader would take it.
    pub(crate) fn get(&self, section: &str, key: &str) -> Option<&RawEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.section == section && e.key == key)
    }

    /// Entries no known key accounts for, as `file:line: section.key` warnings.
    pub(crate) fn unknown_keys(&self, file: &Path) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| {
                !KNOWN_KEYS
                    .iter()
                    .any(|(s, keys)| *s == e.section && keys.contains(&e.key.as_str()))
            })
            .map(|e| {
                Problem {
                    line: e.line,
                    key: format!("{}.{}", e.section, e.key),
                    why: "unknown key, ignored".into(),
                }
                .render(file)
            })
            .collect()
    }
}

/// Finds the line of `key` in `[section]`, for messages only.
fn locate(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim().to_lowercase();
        } else if current == section
            && let Some((k, _)) = line.split_once('=')
            && k.trim().to_lowercase() == key
        {
            return Some(index + 1);
        }
    }
    None
}

/// Expands `%NAME%` from `lookup`; `%%` is a literal `%`. `%COMPUTERNAME%` falls
/// back to the host name where the environment lacks it (Unix).
pub(crate) fn expand(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else {
            return Err(format!("unmatched % in {value:?}"));
        };
        let name = &after[..end];
        if name.is_empty() {
            out.push('%');
        } else if let Some(found) = lookup(name) {
            out.push_str(&found);
        } else if name.eq_ignore_ascii_case("COMPUTERNAME") {
            out.push_str(&platform::computer_name());
        } else {
            return Err(format!("environment variable %{name}% is not set"));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads the process environment, case-insensitively as Windows does.
pub(crate) fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        std::env::vars()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Collects values and problems for [`Config::from_raw`].
struct Reader<'a> {
    raw: &'a RawIni,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn problem(&mut self, section: &str, key: &str, why: String) {
        let line = self.raw.get(section, key).and_then(|e| e.line);
        self.problems.push(Problem {
            line,
            key: format!("{section}.{key}"),
            why,
        });
    }

    /// The expanded value, or `default` when absent or empty; `None` after a problem.
    fn text(&mut self, section: &str, key: &str, default: Option<&str>) -> Option<String> {
        let value = match self.raw.get(section, key) {
            Some(entry) if !entry.value.is_empty() => entry.value.clone(),
            _ => match default {
                Some(default) => default.to_owned(),
                None => {
                    self.problem(section, key, "required value is missing".into());
                    return None;
                }
            },
        };
        match expand(&value, self.lookup) {
            Ok(expanded) => Some(expanded),
            Err(why) => {
                self.problem(section, key, why);
                None
            }
        }
    }

    fn path(&mut self, section: &str, key: &str, default: Option<&str>) -> Option<PathBuf> {
        self.text(section, key, default).map(PathBuf::from)
    }

    fn number<T: std::str::FromStr>(
        &mut self,
        section: &str,
        key: &str,
        default: &str,
        valid: impl Fn(&T) -> bool,
        expected: &str,
    ) -> Option<T> {
        let text = self.text(section, key, Some(default))?;
        match text.parse::<T>() {
            Ok(n) if valid(&n) => Some(n),
            _ => {
                self.problem(section, key, format!("{text:?} is not {expected}"));
                None
            }
        }
    }

    fn flag(&mut self, section: &str, key: &str, default: &str) -> Option<bool> {
        let text = self.text(section, key, Some(default))?;
        match text.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" => Some(true),
            "no" | "false" | "0" | "off" => Some(false),
            _ => {
                self.problem(section, key, format!("{text:?} is not yes or no"));
                None
            }
        }
    }

    fn list(&mut self, section: &str, key: &str, default: &str) -> Option<Vec<String>> {
        let text = self.text(section, key, Some(default))?;
        Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

impl Reader<'_> {
    /// `[server]`; `None` after a problem.
    fn server(&mut self, defaults: &platform::PathDefaults) -> Option<ServerConfig> {
        let web = self.web();
        let allow_http = web.as_ref().is_some_and(|web| web.allow_http);
        let remote = self.text("server", "remote", None).and_then(|text| {
            parse_remote(&text, allow_http)
                .map_err(|why| self.problem("server", "remote", why))
                .ok()
        });
        let mirrors = self.list("server", "mirrors", "").and_then(|list| {
            let parsed: Result<Vec<Remote>, String> = list
                .iter()
                .map(|text| parse_remote(text, allow_http))
                .collect();
            parsed
                .map_err(|why| self.problem("server", "mirrors", why))
                .ok()
        });
        let port = self.number("server", "port", "22", |p: &u16| *p > 0, "a TCP port");
        let path = self.text("server", "path", Some("/opt/updates"));
        let over_http = matches!(remote, Some(Remote::Http(_)));
        // Over HTTP the reports go to a URL that takes PUT, or nowhere.
        let default_reports = if over_http {
            "none"
        } else {
            "/opt/wpkgreports"
        };
        let reports = self
            .text("server", "reports", Some(default_reports))
            .and_then(|dir| {
                let is_url = dir.starts_with("https://") || dir.starts_with("http://");
                if dir.eq_ignore_ascii_case("none") {
                    Some(String::new())
                } else if over_http && !is_url {
                    let why = "with an https:// remote, reports must be an https:// URL or none";
                    self.problem("server", "reports", why.into());
                    None
                } else if is_url && !over_http {
                    let why = "a reports URL needs an https:// remote";
                    self.problem("server", "reports", why.into());
                    None
                } else if is_url {
                    parse_web_url(&dir, allow_http)
                        .map(|_| dir)
                        .map_err(|why| self.problem("server", "reports", why))
                        .ok()
                } else {
                    Some(dir)
                }
            });
        let identity = self.path("server", "identity", Some(defaults.identity));
        let known_hosts = self.path("server", "known_hosts", Some(defaults.known_hosts));
        Some(ServerConfig {
            remote: remote?,
            port: port?,
            path: path?,
            reports: reports?,
            identity: identity?,
            known_hosts: known_hosts?,
            mirrors: mirrors?,
            web: web?,
        })
    }

    /// The HTTPS keys of `[server]`; `None` after a problem.
    fn web(&mut self) -> Option<WebConfig> {
        let optional_path = |r: &mut Self, key: &str| {
            r.text("server", key, Some(""))
                .map(|text| (!text.is_empty()).then(|| PathBuf::from(text)))
        };
        let ca_file = optional_path(self, "ca_file");
        let token_file = optional_path(self, "token_file");
        let client_certificate = optional_path(self, "client_certificate");
        let allow_http = self.flag("server", "allow_http", "no");
        let proxy = self.text("server", "proxy", Some("")).and_then(|text| {
            if text.is_empty() {
                return Some(None);
            }
            reqwest::Url::parse(&text)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .map(Some)
                .or_else(|| {
                    let why = format!("{text:?} is not an http:// or https:// proxy URL");
                    self.problem("server", "proxy", why);
                    None
                })
        });
        Some(WebConfig {
            ca_file: ca_file?,
            token_file: token_file?,
            client_certificate: client_certificate?,
            proxy: proxy?,
            allow_http: allow_http?,
        })
    }

    /// `[sync]`; `None` after a problem.
    fn sync(&mut self, defaults: &platform::PathDefaults) -> Option<SyncConfig> {
        let local = self.path("sync", "local", None);
        let bwlimit = self.number(
            "sync",
            "bwlimit",
            "2000",
            |_: &u32| true,
            "a number of KiB/s",
        );
        let timeout = self.number(
            "sync",
            "timeout",
            "120",
            |t: &u64| (1..=86_400).contains(t),
            "a number of seconds between 1 and 86400",
        );
        let deadline = self.number(
            "sync",
            "deadline",
            "6600",
            |t: &u64| (1..=604_800).contains(t),
            "a number of seconds between 1 and 604800",
        );
        let packages = self
            .text("sync", "packages", Some("auto"))
            .and_then(|text| {
                parse_packages(&text)
                    .map_err(|why| self.problem("sync", "packages", why))
                    .ok()
            });
        let exclude = self.list("sync", "exclude", "lost+found, profiles.sites, client");
        let wpkg_log = self.path("sync", "wpkg_log", Some(defaults.wpkg_log));
        let state = self.path("sync", "state", Some(defaults.state));
        let stale_days = self.number(
            "sync",
            "stale_days",
            "14",
            |_: &u32| true,
            "a number of days",
        );
        let bwlimit = bwlimit?;
        Some(SyncConfig {
            local: local?,
            bwlimit: KibPerSec((bwlimit > 0).then_some(bwlimit)),
            timeout: Duration::from_secs(timeout?),
            deadline: Duration::from_secs(deadline?),
            packages: packages?,
            exclude: exclude?,
            wpkg_log: wpkg_log?,
            state: StateDir::new(state?),
            stale_days: stale_days?,
        })
    }

    /// `[trust] publisher_key`; `None` after a problem.
    fn publisher_key(&mut self) -> Option<PathBuf> {
        self.path("trust", "publisher_key", None)
    }

    /// `[gossip]`; `None` after a problem.
    fn gossip(&mut self) -> Option<GossipConfig> {
        let peers = self.list("gossip", "peers", "");
        let port = self.number("gossip", "port", "40400", |p: &u16| *p > 0, "a UDP port");
        let spread = self.flag("gossip", "spread", "yes");
        let ttl = self.number(
            "gossip",
            "ttl",
            "3",
            |t: &u8| *t <= 16,
            "a number from 0 to 16",
        );
        let jitter = self.number(
            "gossip",
            "jitter",
            "300",
            |_: &u64| true,
            "a number of seconds",
        );
        Some(GossipConfig {
            peers: peers?,
            port: port?,
            spread: spread?,
            ttl: ttl?,
            jitter: Duration::from_secs(jitter?),
        })
    }
}

impl Config {
    /// Reads `path` through both stages with the process environment.
    pub(crate) fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let raw = RawIni::load(path)?;
        let warnings = raw.unknown_keys(path);
        let config = Config::from_raw(path, &raw, &environment)?;
        Ok((config, warnings))
    }

    /// Stage two: types every value, reporting every problem at once.
    pub(crate) fn from_raw(
        file: &Path,
        raw: &RawIni,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let defaults = platform::defaults();
        let mut r = Reader {
            raw,
            lookup,
            problems: Vec::new(),
        };
        // Every section is read before any is judged, so one pass reports
        // every problem in the file.
        let server = r.server(&defaults);
        let sync = r.sync(&defaults);
        let publisher_key = r.publisher_key();
        let gossip = r.gossip();
        let (Some(server), Some(sync), Some(publisher_key), Some(gossip)) =
            (server, sync, publisher_key, gossip)
        else {
            return Err(ConfigError::Invalid {
                path: file.to_owned(),
                problems: r.problems,
            });
        };
        Ok(Config {
            server,
            sync,
            publisher_key,
            gossip,
        })
    }
}

impl GossipConfig {
    /// Reads only the `[gossip]` section of `path`, for `publish --announce` on
    /// a server that has no client settings.
    pub(crate) fn load(path: &Path) -> Result<GossipConfig, ConfigError> {
        let raw = RawIni::load(path)?;
        GossipConfig::from_raw(path, &raw, &environment)
    }

    /// Stage two for the `[gossip]` section alone.
    pub(crate) fn from_raw(
        file: &Path,
        raw: &RawIni,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GossipConfig, ConfigError> {
        let mut r = Reader {
            raw,
            lookup,
            problems: Vec::new(),
        };
        match r.gossip() {
            Some(gossip) if r.problems.is_empty() => Ok(gossip),
            _ => Err(ConfigError::Invalid {
                path: file.to_owned(),
                problems: r.problems,
            }),
        }
    }
}

/// `https://` (or, with `allow_http`, `http://`) is a web server, `user@host`
/// an SSH server; anything that looks like a path is a folder.
fn parse_remote(text: &str, allow_http: bool) -> Result<Remote, String> {
    if text.contains("://") {
        return parse_web_url(text, allow_http).map(Remote::Http);
    }
    let looks_like_path = text.starts_with(['/', '\\', '.'])
        || (text.len() >= 2
            && text.as_bytes()[1] == b':'
            && text.as_bytes()[0].is_ascii_alphabetic());
    if looks_like_path {
        return Ok(Remote::Folder(PathBuf::from(text)));
    }
    match text.split_once('@') {
        Some((user, host))
            if !user.is_empty()
                && !host.is_empty()
                && !host.contains(['@', '/', ' '])
                && !user.contains([' ', ':']) =>
        {
            Ok(Remote::Ssh {
                user: user.to_owned(),
                host: host.to_owned(),
            })
        }
        _ => Err(format!(
            "{text:?} is neither https://host/path, user@host nor a local folder"
        )),
    }
}

/// An `https://` URL with a host; `http://` only with `allow_http`, since
/// the transfer is then not private.
fn parse_web_url(text: &str, allow_http: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        _ if url.host().is_none() => Err(format!("{text:?} names no host")),
        _ if url.query().is_some() || url.fragment().is_some() => {
            Err(format!("{text:?} may not have a query or fragment"))
        }
        "https" => Ok(url),
        "http" if allow_http => Ok(url),
        "http" => Err(format!(
            "{text:?} is plain HTTP, not private: set server.allow_http = yes to accept it"
        )),
        other => Err(format!(
            "{text:?}: {other}:// is not a source this client reads"
        )),
    }
}

/// `auto`, `all`, or folder names under `packages/`.
fn parse_packages(text: &str) -> Result<PackageSelection, String> {
    match text.to_ascii_lowercase().as_str() {
        "auto" => return Ok(PackageSelection::Auto),
        "all" => return Ok(PackageSelection::All),
        _ => {}
    }
    let mut folders = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match RelPath::new(name) {
            Ok(path) if !name.contains('/') => folders.push(path.to_string()),
            _ => return Err(format!("{name:?} is not a folder name under packages/")),
        }
    }
    Ok(PackageSelection::List(folders))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ProgramData" => Some(r"C:\ProgramData".into()),
            "COMPUTERNAME" => Some("PC042".into()),
            "SystemDrive" => Some("C:".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        let raw = RawIni::parse(text).map_err(|why| ConfigError::Unreadable {
            path: "t.ini".into(),
            why,
        })?;
        Config::from_raw(Path::new("t.ini"), &raw, &env)
    }

    const MINIMAL: &str = "[server]\nremote = wpkgsync@updates.example.org\n[sync]\nlocal = %ProgramData%\\wpkg\n[trust]\npublisher_key = %ProgramData%\\wpkgsync\\publisher.pem\n";

    #[test]
    fn minimal_file_gets_the_design_defaults() {
        let config = load(MINIMAL).unwrap();
        assert_eq!(
            config.server.remote,
            Remote::Ssh {
                user: "wpkgsync".into(),
                host: "updates.example.org".into()
            }
        );
        assert_eq!(config.server.port, 22);
        assert_eq!(config.server.path, "/opt/updates");
        assert_eq!(config.server.reports, "/opt/wpkgreports");
        assert_eq!(config.sync.local, PathBuf::from(r"C:\ProgramData\wpkg"));
        assert_eq!(config.sync.bwlimit, KibPerSec(Some(2000)));
        assert_eq!(config.sync.timeout, Duration::from_secs(120));
        assert_eq!(config.sync.deadline, Duration::from_secs(6600));
        assert_eq!(config.sync.packages, PackageSelection::Auto);
        assert_eq!(
            config.sync.exclude,
            ["lost+found", "profiles.sites", "client"]
        );
        assert_eq!(config.sync.stale_days, 14);
        assert_eq!(config.gossip.port, 40400);
        assert!(config.gossip.spread);
        assert_eq!(config.gossip.ttl, 3);
        assert_eq!(config.gossip.jitter, Duration::from_secs(300));
    }

    #[test]
    fn inline_comments_and_backslashes_survive() {
        let text = "[server]\nremote = u@h ; the server\nidentity = C:\\keys\\id # note\n[sync]\nlocal = D:\\wpkg\n[trust]\npublisher_key = k.pem\n";
        let config = load(text).unwrap();
        assert_eq!(config.server.identity, PathBuf::from(r"C:\keys\id"));
        assert_eq!(config.sync.local, PathBuf::from(r"D:\wpkg"));
    }

    #[test]
    fn keys_and_sections_are_case_insensitive() {
        let text = "[Server]\nRemote = u@h\n[SYNC]\nLocal = /x\n[trust]\nPUBLISHER_KEY = k\n";
        assert!(load(text).is_ok());
    }

    #[test]
    fn missing_remote_names_the_key_and_line() {
        let text = "[server]\nport = 22\n[sync]\nlocal = /x\n[trust]\npublisher_key = k\n";
        let err = load(text).unwrap_err().to_string();
        assert_eq!(err, "t.ini: server.remote: required value is missing");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text =
            "[server]\nremote = nonsense\nport = 99999\n[sync]\nlocal = /x\nbwlimit = fast\n";
        let ConfigError::Invalid { problems, .. } = load(text).unwrap_err() else {
            panic!("expected Invalid");
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.remote",
                "server.port",
                "sync.bwlimit",
                "trust.publisher_key"
            ]
        );
        assert_eq!(problems[1].line, Some(3));
    }

    #[test]
    fn unknown_variables_are_an_error_naming_them() {
        let text = MINIMAL.replace("%ProgramData%\\wpkg\n", "%NOPE%\\wpkg\n");
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.contains("sync.local: environment variable %NOPE% is not set"),
            "{err}"
        );
    }

    #[test]
    fn expansion_handles_literals_and_names() {
        assert_eq!(
            expand("%SystemDrive%\\wpkg-%COMPUTERNAME%.log", &env).unwrap(),
            "C:\\wpkg-PC042.log"
        );
        assert_eq!(expand("100%% sure", &env).unwrap(), "100% sure");
        assert!(expand("50% off", &env).is_err());
    }

    #[test]
    fn remote_may_be_a_folder() {
        let folder = |text: &str| parse_remote(text, false);
        assert_eq!(
            folder("/srv/updates"),
            Ok(Remote::Folder("/srv/updates".into()))
        );
        assert_eq!(
            folder("E:\\updates"),
            Ok(Remote::Folder("E:\\updates".into()))
        );
        assert_eq!(
            folder("\\\\nas\\updates"),
            Ok(Remote::Folder("\\\\nas\\updates".into()))
        );
        assert!(folder("updates.example.org").is_err());
        assert!(folder("@host").is_err());
    }

    #[test]
    fn remote_may_be_a_web_server_and_plain_http_must_be_allowed() {
        let url = |text: &str| Remote::Http(reqwest::Url::parse(text).unwrap());
        assert_eq!(
            parse_remote("https://cdn.example.org/wpkg", false),
            Ok(url("https://cdn.example.org/wpkg"))
        );
        let plain = parse_remote("http://10.0.0.5/wpkg", false).unwrap_err();
        assert!(plain.contains("server.allow_http"), "{plain}");
        assert_eq!(
            parse_remote("http://10.0.0.5/wpkg", true),
            Ok(url("http://10.0.0.5/wpkg"))
        );
        for wrong in ["ftp://h/x", "file:///x", "https://h/x?y=1", "https://h/x#y"] {
            assert!(parse_remote(wrong, true).is_err(), "{wrong}");
        }
    }

    #[test]
    fn mirrors_and_report_urls_follow_the_remote() {
        let base = "[server]\nremote = https://cdn.example.org/wpkg\n[sync]\nlocal = /x\n[trust]\npublisher_key = k\n";
        let config = load(base).unwrap();
        assert!(
            config.server.reports.is_empty(),
            "no reports by default over HTTPS"
        );
        let with = |extra: &str| load(&base.replace("[sync]", &format!("{extra}\n[sync]")));
        let mirrored = with("mirrors = https://m1.example.org/w, u@h, /media/usb").unwrap();
        assert_eq!(mirrored.server.mirrors.len(), 3);
        assert!(with("reports = /opt/wpkgreports").is_err());
        assert!(with("reports = https://r.example.org/reports").is_ok());
        assert!(with("mirrors = http://m.example.org/w").is_err());
        assert!(with("mirrors = http://m.example.org/w\nallow_http = yes").is_ok());
        assert!(with("proxy = socks://p:1").is_err());
    }

    #[test]
    fn package_lists_are_folder_names() {
        assert_eq!(parse_packages("ALL"), Ok(PackageSelection::All));
        assert_eq!(
            parse_packages("7zip, firefox"),
            Ok(PackageSelection::List(vec![
                "7zip".into(),
                "firefox".into()
            ]))
        );
        assert!(parse_packages("../x").is_err());
        assert!(parse_packages("a/b").is_err());
    }

    #[test]
    fn bwlimit_zero_means_no_cap() {
        let config = load(&format!("{MINIMAL}[sync]\nbwlimit = 0\n")).unwrap();
        assert_eq!(config.sync.bwlimit, KibPerSec(None));
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let raw = RawIni::parse("[server]\nremote = u@h\nremtoe = x\n").unwrap();
        assert_eq!(
            raw.unknown_keys(Path::new("t.ini")),
            ["t.ini:3: server.remtoe: unknown key, ignored"]
        );
    }

    #[test]
    fn the_gossip_section_reads_alone() {
        let raw = RawIni::parse("[gossip]\npeers = pc1, 10.0.0.255:4000\nttl = 2\n").unwrap();
        let gossip = GossipConfig::from_raw(Path::new("t.ini"), &raw, &env).unwrap();
        assert_eq!(gossip.peers, ["pc1", "10.0.0.255:4000"]);
        assert_eq!((gossip.port, gossip.ttl, gossip.spread), (40400, 2, true));
        let raw = RawIni::parse("[gossip]\nttl = 17\n").unwrap();
        let err = GossipConfig::from_raw(Path::new("t.ini"), &raw, &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.ini:2: gossip.ttl: \"17\" is not a number from 0 to 16"
        );
    }

    #[test]
    fn utf16_files_from_notepad_are_read() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "[server]\r\nremote = u@h\r\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let text = crate::text::decode(&bytes);
        let raw = RawIni::parse(&text).unwrap();
        assert_eq!(raw.get("server", "remote").unwrap().value, "u@h");
    }
}
