//! The Task Scheduler definition (schema 1.2, Windows 7 and later) of the
//! periodic run.

use super::{INTERVAL_HOURS, Job, RANDOM_DELAY_MINUTES, TIME_LIMIT_HOURS};

/// The task's name in Task Scheduler's root folder.
pub(crate) const TASK_NAME: &str = "wpkgsync";

/// The task as XML text. Runs as SYSTEM (S-1-5-18) with highest privileges;
/// `IgnoreNew` drops a start while a run goes on; `StartWhenAvailable` runs a
/// missed start as soon as the machine is up; laptops run on battery too.
pub(crate) fn task_xml(job: &Job) -> String {
    let command = escape(&job.exe.display().to_string());
    let arguments = escape(&format!("/config \"{}\" /quiet", job.ini.display()));
    format!(
        r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>Keeps the WPKG software repository in sync with the update server (wpkgsync).</Description>
    <URI>\{TASK_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <TimeTrigger>
      <Repetition>
        <Interval>PT{INTERVAL_HOURS}H</Interval>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
      <StartBoundary>2000-01-01T00:00:00</StartBoundary>
      <Enabled>true</Enabled>
      <RandomDelay>PT{RANDOM_DELAY_MINUTES}M</RandomDelay>
    </TimeTrigger>
  </Triggers>
  <Principals>
    <Principal id="System">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT{TIME_LIMIT_HOURS}H</ExecutionTimeLimit>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="System">
    <Exec>
      <Command>{command}</Command>
      <Arguments>{arguments}</Arguments>
    </Exec>
  </Actions>
</Task>
"#
    )
}

/// UTF-16 LE with a byte order mark, the encoding the XML declares and
/// `schtasks /XML` expects.
pub(crate) fn utf16_with_bom(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn job() -> Job {
        Job {
            exe: PathBuf::from(r"C:\Program Files\WpkgSync\wpkgsync.exe"),
            ini: PathBuf::from(r"C:\ProgramData\wpkgsync\R&D <test>.ini"),
        }
    }

    fn text_of<'a>(doc: &'a roxmltree::Document, name: &str) -> &'a str {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or_else(|| panic!("no <{name}>"))
    }

    #[test]
    fn the_task_runs_as_system_every_two_hours_and_never_twice() {
        let xml = task_xml(&job());
        // roxmltree refuses a declaration naming UTF-16 in a &str; the bytes
        // on disk are UTF-16, checked below.
        let body = xml.split_once("?>").unwrap().1;
        let doc = roxmltree::Document::parse(body).expect("well-formed XML");
        assert_eq!(text_of(&doc, "UserId"), "S-1-5-18");
        assert_eq!(text_of(&doc, "RunLevel"), "HighestAvailable");
        assert_eq!(text_of(&doc, "Interval"), "PT2H");
        assert_eq!(text_of(&doc, "RandomDelay"), "PT30M");
        assert_eq!(text_of(&doc, "MultipleInstancesPolicy"), "IgnoreNew");
        assert_eq!(text_of(&doc, "StartWhenAvailable"), "true");
        assert_eq!(text_of(&doc, "ExecutionTimeLimit"), "PT2H");
        assert_eq!(
            text_of(&doc, "Command"),
            r"C:\Program Files\WpkgSync\wpkgsync.exe"
        );
        assert_eq!(
            text_of(&doc, "Arguments"),
            r#"/config "C:\ProgramData\wpkgsync\R&D <test>.ini" /quiet"#
        );
    }

    #[test]
    fn the_file_is_utf16_le_with_a_bom() {
        let xml = task_xml(&job());
        let bytes = utf16_with_bom(&xml);
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        assert_eq!(String::from_utf16(&units).unwrap(), xml);
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-16"?>"#));
    }
}
