//! Voicemails on disk: the folder under `--data` the media tasks record
//! into, the names a request may ask for, and the retention sweep.
//!
//! A message is patient data: the folder is `0700` and each file `0600`
//! (the media task creates it so), its name is 128 random bits in hex (it
//! says nothing about the caller and cannot be guessed), and it is only
//! served to the agent who holds its lead or to the admin token
//! (`http::voicemail`). The dialplan's `[voicemail] retention` bounds how
//! long it lives: [`sweep`] deletes older files and writes a
//! `recording_deleted` step on their lead, which stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ivr::jiff::Timestamp;
use records::{JournalHandle, LeadEvent, Reader};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::app::LiveDialplan;

/// The folder's name under `--data`.
pub const FOLDER: &str = "voicemail";

/// The sweep's period: a quarter of the retention, within these bounds
/// (a test's retention of seconds is honoured within a second; the demo's
/// 30 days costs one directory listing an hour).
const SWEEP_MIN: Duration = Duration::from_secs(1);
const SWEEP_MAX: Duration = Duration::from_secs(3600);

/// The voicemail folder.
#[derive(Debug, Clone)]
pub struct VoicemailStore {
    dir: PathBuf,
}

impl VoicemailStore {
    /// Creates (or tightens) `<data>/voicemail` with mode 0700.
    pub fn open(data: &Path) -> std::io::Result<VoicemailStore> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = data.join(FOLDER);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(crate::private::DIR_MODE)
            .create(&dir)?;
        // An existing folder keeps its mode, and the umask narrows a new
        // one: set it exactly.
        std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(crate::private::DIR_MODE),
        )?;
        Ok(VoicemailStore { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the recording `name` is; `None` for a name that is not one of
    /// ours (32 lower-case hex digits and `.wav`), so that no request can
    /// walk out of the folder.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        is_recording_name(name).then(|| self.dir.join(name))
    }

    /// Deletes the recordings last written before `now - retention`;
    /// returns their names.
    pub fn expire(&self, now: SystemTime, retention: Duration) -> Vec<String> {
        let Some(cutoff) = now.checked_sub(retention) else {
            return Vec::new();
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) => {
                warn!(%error, dir = %self.dir.display(), "cannot list the voicemail folder");
                return Vec::new();
            }
        };
        let mut deleted = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_recording_name(&name) {
                continue;
            }
            let modified = entry.metadata().and_then(|m| m.modified());
            if !modified.is_ok_and(|at| at <= cutoff) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => deleted.push(name),
                Err(error) => warn!(%error, "cannot delete an expired voicemail"),
            }
        }
        deleted
    }
}

/// `<32 lower-case hex digits>.wav`: the names the call core draws.
pub fn is_recording_name(name: &str) -> bool {
    name.strip_suffix(".wav").is_some_and(|stem| {
        stem.len() == 32
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The sweep's period for `retention`.
pub fn sweep_every(retention: Duration) -> Duration {
    (retention / 4).clamp(SWEEP_MIN, SWEEP_MAX)
}

/// Deletes expired voicemails now and then, by the retention of the
/// dialplan in force, and marks their leads (`recording_deleted`).
pub async fn sweep(
    store: VoicemailStore,
    dialplan: Arc<LiveDialplan>,
    journal: JournalHandle,
    reader: Reader,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let retention = dialplan
            .current()
            .voicemail()
            .map(ivr::Voicemail::retention);
        let every = retention.map_or(SWEEP_MAX, sweep_every);
        debug!(dir = %store.dir().display(), ?every, "voicemail retention sweep");
        if let Some(retention) = retention {
            let store = store.clone();
            let reader = reader.clone();
            let marked = tokio::task::spawn_blocking(move || {
                let deleted = store.expire(SystemTime::now(), retention);
                deleted
                    .into_iter()
                    .map(|name| (reader.voicemail_lead(&name), name))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (lead, name) in marked {
                match lead {
                    Ok(Some(lead)) => {
                        info!(lead = %lead, "voicemail past its retention: deleted");
                        let step = LeadEvent {
                            lead,
                            at: Timestamp::now(),
                            event: "recording_deleted".to_string(),
                            agent: None,
                            detail: json!({ "recording": name }),
                            first_contact: false,
                        };
                        if let Err(error) = journal.record_lead_event(step) {
                            warn!(%error, "cannot record a voicemail's deletion");
                        }
                    }
                    Ok(None) => info!("an expired voicemail without a lead: deleted"),
                    Err(error) => warn!(%error, "cannot find an expired voicemail's lead"),
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_are_paths() {
        let store = VoicemailStore {
            dir: PathBuf::from("/data/voicemail"),
        };
        let name = "0123456789abcdef0123456789abcdef.wav";
        assert_eq!(
            store.path(name),
            Some(PathBuf::from("/data/voicemail").join(name))
        );
        for bad in [
            "../journal.sqlite",
            "0123456789ABCDEF0123456789ABCDEF.wav",
            "0123456789abcdef0123456789abcde.wav",
            "0123456789abcdef0123456789abcdef.mp3",
            "/etc/passwd",
            "",
        ] {
            assert_eq!(store.path(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_sweep_runs_often_enough_for_its_retention() {
        assert_eq!(sweep_every(Duration::from_secs(2)), SWEEP_MIN);
        assert_eq!(
            sweep_every(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(sweep_every(Duration::from_secs(30 * 86_400)), SWEEP_MAX);
    }

    #[test]
    fn expire_deletes_what_is_older_than_retention() {
        let data = std::env::temp_dir().join(format!("fd-vm-{}", std::process::id()));
        let store = VoicemailStore::open(&data).unwrap();
        let name = "00000000000000000000000000000001.wav";
        std::fs::write(store.dir().join(name), b"RIFF").unwrap();
        std::fs::write(store.dir().join("notes.txt"), b"kept").unwrap();
        let now = SystemTime::now();
        assert!(store.expire(now, Duration::from_secs(3600)).is_empty());
        let later = now + Duration::from_secs(7200);
        assert_eq!(store.expire(later, Duration::from_secs(3600)), vec![name]);
        assert!(!store.dir().join(name).exists());
        assert!(store.dir().join("notes.txt").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir_all(&data).unwrap();
    }
}
