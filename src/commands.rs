//! The commands other than the sync: keygen, publish, listen, status and
//! schedule, each handed to the module that owns it, with the lines it
//! prints; no command at all is the sync of `app.rs`.

use std::path::Path;

use crate::anchors;
use crate::app;
use crate::cli::{Cli, Command, ScheduleAction};
use crate::config::{Config, GossipConfig};
use crate::error::Error;
use crate::exit::Outcome;
use crate::gossip;
use crate::platform;
use crate::publish;
use crate::runlog::RunLog;
use crate::schedule;
use crate::status;

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
        None => app::sync(cli.sync, log).await,
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
