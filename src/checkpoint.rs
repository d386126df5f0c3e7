//! The backfill's checkpoint: how far a run through a provider's user list got, saved as it
//! goes so that an interrupted run (Ctrl-C, a crash, a closed laptop) resumes from the last user
//! applied rather than from the start, or the start of its page.
//!
//! A small JSON file (`attio-user-sync-backfill.<route>.checkpoint.json` by default), replaced
//! atomically on each save (written beside it, flushed, then renamed over it), so a crash while
//! saving leaves the previous checkpoint whole.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::directory::PageCursor;

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// What a run has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Users read from the provider.
    pub read: u64,
    /// Written to Attio.
    pub synced: u64,
    /// Already in Attio as they are (no write needed).
    pub unchanged: u64,
    /// Not written, for a reason that is theirs (no email address, …).
    pub skipped: u64,
    /// Not written because a write failed.
    pub failed: u64,
    /// Sent to the durable queue for the worker to write (`--enqueue`).
    #[serde(default)]
    pub queued: u64,
    /// Compared with Attio first: users Attio does not hold.
    #[serde(default)]
    pub missing: u64,
    /// Compared: users Attio holds otherwise than the sync would write them.
    #[serde(default)]
    pub differs: u64,
    /// Compared: users Attio holds as the sync would write them (no write).
    #[serde(default)]
    pub same: u64,
    /// Attio's users of the route the complete listing did not name.
    #[serde(default)]
    pub orphans: u64,
    /// Orphans deleted (`--delete-orphans`).
    #[serde(default)]
    pub deleted: u64,
}

impl Counts {
    /// The users Attio does not hold as the provider lists them: missing, differing or
    /// orphaned (what `--check` exits 3 on and the drift alarm watches).
    pub fn drift(&self) -> u64 {
        self.missing + self.differs + self.orphans
    }
}

/// How far a backfill got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The route the users come from (`clerk`, …).
    pub route: String,
    /// The page being worked through.
    pub page: PageCursor,
    /// Users of that page already applied (the next to apply is at this index).
    pub position: usize,
    /// Users of that page after `position` already applied too (users are applied several at
    /// a time and finish out of order): a resume does not write them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done_ahead: Vec<usize>,
    /// Users of the page after it already applied (the next page is read and started while
    /// this one's last users are still in flight): a resume does not write them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_done: Vec<usize>,
    /// The run's counts so far.
    pub counts: Counts,
}

/// Why a checkpoint cannot be used.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a checkpoint this build reads.
    #[error(
        "checkpoint {path} is not a checkpoint this version reads ({reason}); move it away to start over"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file belongs to another route's backfill.
    #[error(
        "checkpoint {path} is for the {found} backfill, not {wanted}; give another --checkpoint"
    )]
    OtherRoute {
        /// The file.
        path: PathBuf,
        /// The route asked for.
        wanted: String,
        /// The route it holds.
        found: String,
    },
}

impl Checkpoint {
    /// A run of `route` that has done nothing yet.
    pub fn start(route: &str) -> Self {
        Self {
            version: CHECKPOINT_VERSION,
            route: route.to_owned(),
            page: PageCursor::Start,
            position: 0,
            done_ahead: Vec::new(),
            next_done: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// The default file for `route`, in the working directory.
    pub fn default_path(route: &str) -> PathBuf {
        PathBuf::from(format!("attio-user-sync-backfill.{route}.checkpoint.json"))
    }

    /// The checkpoint at `path`, if there is one; it must be `route`'s.
    pub fn load(path: &Path, route: &str) -> Result<Option<Self>, CheckpointError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let checkpoint: Self =
            serde_json::from_str(&text).map_err(|e| CheckpointError::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if checkpoint.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Unreadable {
                path: path.to_owned(),
                reason: format!("format version {}", checkpoint.version),
            });
        }
        if checkpoint.route != route {
            return Err(CheckpointError::OtherRoute {
                path: path.to_owned(),
                wanted: route.to_owned(),
                found: checkpoint.route,
            });
        }
        Ok(Some(checkpoint))
    }

    /// Replaces the file at `path` with this checkpoint, atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        };
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let mut file = std::fs::File::create(&partial).map_err(io)?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "attio-user-sync-checkpoint-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_saved_checkpoint_loads_back_and_replaces_the_previous_one_whole() {
        let path = scratch("clerk.json");
        assert!(Checkpoint::load(&path, "clerk").unwrap().is_none());
        let mut checkpoint = Checkpoint::start("clerk");
        checkpoint.save(&path).unwrap();
        checkpoint.page = PageCursor::Token("cursor/with \"quotes\"".into());
        checkpoint.position = 17;
        checkpoint.counts.synced = 16;
        checkpoint.counts.skipped = 1;

        checkpoint.save(&path).unwrap();

        assert_eq!(Checkpoint::load(&path, "clerk").unwrap(), Some(checkpoint));
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("clerk.json")]);
    }

    #[test]
    fn another_route_s_or_an_unreadable_checkpoint_is_refused_naming_the_file() {
        let path = scratch("c.json");
        Checkpoint::start("okta").save(&path).unwrap();
        let error = Checkpoint::load(&path, "clerk").unwrap_err().to_string();
        assert!(
            error.contains("okta") && error.contains("c.json"),
            "{error}"
        );

        std::fs::write(&path, "{\"version\": 9}").unwrap();
        let error = Checkpoint::load(&path, "clerk").unwrap_err().to_string();
        assert!(error.contains("move it away"), "{error}");
    }
}
