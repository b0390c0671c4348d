//! The command line, in Windows form (`/fast`, `/CONFIG:FILE`, `/?`) and GNU form
//! (`--fast`, `--config FILE`).
//!
//! Windows switches are rewritten to their GNU twins before clap sees them, but
//! only when they name a known switch, so a Unix path such as `/etc/x.ini` given
//! as a value is never mistaken for one.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::Code;

/// Keeps a WPKG repository mirrored from an SSH server, verified against the
/// publisher's signature.
#[derive(Debug, Parser)]
#[command(name = "wpkgsync", version, after_help = exit_code_help())]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A publisher or helper command; without one, wpkgsync syncs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Switches of the sync.
    #[command(flatten)]
    pub sync: SyncArgs,
}

/// Switches of the one-shot client sync.
#[derive(Clone, Debug, Default, Args)]
pub struct SyncArgs {
    /// INI file (default: %ProgramData%\wpkgsync\wpkgsync.ini, /etc/wpkgsync/wpkgsync.ini on Unix).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Lift the bandwidth cap for this run.
    #[arg(long)]
    pub fast: bool,
    /// First install: mirror the top level and packages/*.xml only.
    #[arg(long)]
    pub setup: bool,
    /// Show what would be fetched and deleted, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress display, even at a console.
    #[arg(long)]
    pub quiet: bool,
}

/// Commands other than the sync.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Show the last result; exits 107 when no sync succeeded within stale_days.
    Status {
        /// INI file, as for the sync.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON for monitoring tools.
        #[arg(long)]
        json: bool,
    },
    /// Set up the periodic run: a Task Scheduler task (Windows) or a systemd
    /// timer (Unix), every 2 hours as SYSTEM/root.
    Schedule {
        /// install (register and enable), show (print the definition), remove.
        #[arg(value_enum)]
        action: ScheduleAction,
        /// INI file the scheduled run reads (default as for the sync).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Unix: write the units into DIR and enable nothing (default: /etc/systemd/system, enabled).
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
    },
    /// Create the publisher's RSA key pair (publisher-private.pem, publisher.pem).
    Keygen {
        /// Folder for the two key files.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign the repository: write the manifest and timestamp records.
    Publish {
        /// The repository folder.
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        /// The publisher's private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Days until clients refuse this version unless it is republished.
        #[arg(long, value_name = "N", default_value_t = 30)]
        expires_days: u64,
        /// Send the new version's pulse to the peers of the INI's [gossip] section.
        #[arg(long)]
        announce: bool,
        /// INI file whose [gossip] section --announce uses (default as for the sync).
        #[arg(long, value_name = "FILE", requires = "announce")]
        config: Option<PathBuf>,
    },
    /// Receive gossip pulses: start an early sync on a newer version, and relay.
    Listen {
        /// INI file, as for the sync.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Listen on this address (0.0.0.0: every IPv4 interface; default: the
        /// local address through which the INI's gossip peers are reached).
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::IpAddr>,
    },
}

/// What `schedule` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleAction {
    /// Register and enable the periodic run.
    Install,
    /// Print its definition.
    Show,
    /// Delete it.
    Remove,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run this.
    Run(Cli),
    /// Print this text to stdout and exit 0 (help, version).
    Info(String),
    /// Print this to stderr and exit 2.
    Usage(String),
}

/// Switches that have a Windows form; each maps to `--name`.
const SWITCHES: &[&str] = &[
    "fast", "setup", "config", "dry-run", "quiet", "help", "version",
];
/// Switches followed by a value.
const WITH_VALUE: &[&str] = &[
    "config",
    "out",
    "repo",
    "key",
    "expires-days",
    "unit-dir",
    "bind",
];

/// Rewrites Windows switches to GNU ones.
pub fn normalise(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut value_next = false;
    for (index, arg) in args.into_iter().enumerate() {
        if index == 0 || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if let Some(long) = text.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or_default();
            value_next = !long.contains('=') && WITH_VALUE.contains(&name);
            out.push(arg);
            continue;
        }
        let Some(switch) = text.strip_prefix('/') else {
            out.push(arg);
            continue;
        };
        if switch == "?" {
            out.push("--help".into());
            continue;
        }
        let (name, value) = match switch.split_once(':') {
            Some((name, value)) => (name.to_ascii_lowercase(), Some(value)),
            None => (switch.to_ascii_lowercase(), None),
        };
        let name = if name == "dryrun" {
            "dry-run".to_owned()
        } else {
            name
        };
        if !SWITCHES.contains(&name.as_str()) {
            out.push(arg);
            continue;
        }
        match value {
            Some(value) => out.push(format!("--{name}={value}").into()),
            None => {
                value_next = WITH_VALUE.contains(&name.as_str());
                out.push(format!("--{name}").into());
            }
        }
    }
    out
}

/// Parses the process arguments.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Parsed {
    match Cli::try_parse_from(normalise(args)) {
        Ok(cli) => Parsed::Run(cli),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Parsed::Info(e.render().to_string())
            }
            _ => Parsed::Usage(e.render().to_string()),
        },
    }
}

fn exit_code_help() -> String {
    let mut text = String::from(
        "Windows forms: /fast /setup /config FILE (or /config:FILE) /dry-run /quiet /?\n\nExit codes:\n",
    );
    for code in Code::ALL {
        text.push_str(&format!("  {:>3}  {}\n", code.number(), code.meaning()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Cli {
        let argv = std::iter::once("wpkgsync")
            .chain(args.iter().copied())
            .map(OsString::from);
        match parse(argv) {
            Parsed::Run(cli) => cli,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn windows_and_gnu_forms_agree() {
        for args in [
            &[
                "/fast",
                "/setup",
                "/config",
                "C:\\w.ini",
                "/dry-run",
                "/quiet",
            ][..],
            &["/FAST", "/Setup", "/CONFIG:C:\\w.ini", "/DryRun", "/QUIET"],
            &[
                "--fast",
                "--setup",
                "--config",
                "C:\\w.ini",
                "--dry-run",
                "--quiet",
            ],
            &[
                "--fast",
                "--setup",
                "--config=C:\\w.ini",
                "--dry-run",
                "--quiet",
            ],
        ] {
            let cli = run(args);
            assert!(cli.command.is_none());
            let s = cli.sync;
            assert!(s.fast && s.setup && s.dry_run && s.quiet, "{args:?}");
            assert_eq!(s.config, Some(PathBuf::from("C:\\w.ini")), "{args:?}");
        }
    }

    #[test]
    fn a_unix_path_value_is_not_a_switch() {
        let cli = run(&["--config", "/fast"]);
        assert_eq!(cli.sync.config, Some(PathBuf::from("/fast")));
        assert!(!cli.sync.fast);
        let cli = run(&["/config", "/etc/setup"]);
        assert_eq!(cli.sync.config, Some(PathBuf::from("/etc/setup")));
    }

    #[test]
    fn listen_takes_a_config_and_a_bind_address() {
        let cli = run(&["listen", "/config:/etc/w.ini", "--bind", "127.0.0.7"]);
        match cli.command {
            Some(Command::Listen { config, bind }) => {
                assert_eq!(config, Some(PathBuf::from("/etc/w.ini")));
                assert_eq!(bind, Some([127, 0, 0, 7].into()));
            }
            other => panic!("{other:?}"),
        }
        let argv = ["wpkgsync", "listen", "--bind", "pc042"].map(OsString::from);
        assert!(matches!(parse(argv), Parsed::Usage(_)));
    }

    #[test]
    fn question_mark_prints_help_with_exit_codes() {
        let args = ["wpkgsync", "/?"].map(OsString::from);
        let Parsed::Info(text) = parse(args) else {
            panic!("expected help");
        };
        assert!(text.contains("--fast"));
        assert!(text.contains("206"));
        assert!(text.contains("/config:FILE"));
    }

    #[test]
    fn unknown_switches_are_usage_errors() {
        let args = ["wpkgsync", "/bogus"].map(OsString::from);
        assert!(matches!(parse(args), Parsed::Usage(_)));
        let args = ["wpkgsync", "--nope"].map(OsString::from);
        assert!(matches!(parse(args), Parsed::Usage(_)));
    }

    #[test]
    fn publisher_commands_parse() {
        let cli = run(&["publish", "--repo", "/srv/r", "--key", "/k.pem"]);
        match cli.command {
            Some(Command::Publish {
                expires_days, repo, ..
            }) => {
                assert_eq!(expires_days, 30);
                assert_eq!(repo, PathBuf::from("/srv/r"));
            }
            other => panic!("{other:?}"),
        }
        let cli = run(&[
            "publish",
            "--repo",
            "/srv/r",
            "--key",
            "/k.pem",
            "--announce",
            "--config",
            "/etc/w.ini",
        ]);
        assert!(matches!(
            cli.command,
            Some(Command::Publish {
                announce: true,
                config: Some(_),
                ..
            })
        ));
        let cli = run(&["keygen", "--out", "/k", "--force"]);
        assert!(matches!(
            cli.command,
            Some(Command::Keygen { force: true, .. })
        ));
    }
}
