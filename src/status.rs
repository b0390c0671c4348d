//! `wpkgsync status`: the state file for administrators and monitoring tools,
//! and an exit code that says whether the last success is too old.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::clock::now_unix;
use crate::config::Config;
use crate::error::Error;
use crate::exit::{Code, Outcome};
use crate::platform;
use crate::store::state::State;

/// Prints what the state file says and judges whether it is too old.
pub(crate) fn report(ini: Option<PathBuf>, json: bool) -> Result<Outcome, Error> {
    let ini = ini.unwrap_or_else(platform::default_ini_path);
    let (config, _) = Config::load(&ini)?;
    let state = State::load(&config.sync.state)?;
    let now = now_unix();
    let limit = u64::from(config.sync.stale_days) * 86_400;
    let problem = match state.last_success {
        None => Some("no sync has succeeded yet".to_owned()),
        Some(at) if now.saturating_sub(at) > limit => Some(format!(
            "the last successful sync is older than {} days",
            config.sync.stale_days
        )),
        Some(_) => None,
    };
    let time = |unix: Option<u64>| {
        unix.map(|t| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
        })
    };
    if json {
        let report = serde_json::json!({
            "last_success": time(state.last_success),
            "last_run": time(state.last_run),
            "last_exit": state.last_exit,
            "accepted_version": state.accepted_version,
            "consecutive_failures": state.consecutive_failures,
            "sources_behind": state.sources_behind,
            "stale": problem.is_some(),
            "stale_days": config.sync.stale_days,
            "wpkgsync": env!("CARGO_PKG_VERSION"),
        });
        println!("{report:#}");
    } else {
        let or_never = |t: Option<String>| t.unwrap_or_else(|| "never".to_owned());
        println!(
            "last success:         {}",
            or_never(time(state.last_success))
        );
        println!("last run:             {}", or_never(time(state.last_run)));
        match state
            .last_exit
            .and_then(|n| Code::from_number(i32::from(n)))
        {
            Some(code) => println!(
                "last exit code:       {} ({})",
                code.number(),
                code.meaning()
            ),
            None => println!("last exit code:       none"),
        }
        match state.accepted_version {
            Some(version) => println!("accepted version:     {version}"),
            None => println!("accepted version:     none"),
        }
        println!("consecutive failures: {}", state.consecutive_failures);
        if !state.sources_behind.is_empty() {
            println!("sources behind:       {}", state.sources_behind.join(", "));
        }
        println!("wpkgsync version:     {}", env!("CARGO_PKG_VERSION"));
    }
    Ok(Outcome {
        code: if problem.is_some() {
            Code::Stale
        } else {
            Code::Success
        },
        problem,
    })
}
