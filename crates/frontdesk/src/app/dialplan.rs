//! The dialplan in force, and its reload (SIGHUP, `POST /api/reload`): a
//! new plan replaces the running one only when it compiles.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ivr::{Diagnostics, Dialplan};
use tracing::{error, info};

use super::App;

/// The running dialplan. Readers take a snapshot with [`LiveDialplan::current`];
/// a reload swaps in a whole new plan, so a call never sees half of one.
#[derive(Debug)]
pub struct LiveDialplan {
    path: PathBuf,
    current: ArcSwap<Dialplan>,
    /// Every plan read is made open at all hours (`demo --open`).
    open_all_hours: bool,
}

impl LiveDialplan {
    /// Reads and compiles the dialplan at `path`.
    pub async fn load(path: &Path) -> Result<Self, Diagnostics> {
        let plan = load_blocking(path.to_path_buf()).await?;
        Ok(Self {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(plan),
            open_all_hours: false,
        })
    }

    /// From now on, and on every reload, the clinic is open at all hours
    /// ([`Dialplan::open_all_hours`]): `frontdesk demo --open`.
    pub fn open_all_hours(mut self) -> Self {
        self.open_all_hours = true;
        let plan = Dialplan::clone(&self.current.load()).open_all_hours();
        self.current.store(Arc::new(plan));
        self
    }

    /// The file the plan is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plan in force now.
    pub fn current(&self) -> Arc<Dialplan> {
        self.current.load_full()
    }

    /// Reads and compiles the file again without installing it.
    pub async fn read(&self) -> Result<Dialplan, Diagnostics> {
        let plan = load_blocking(self.path.clone()).await?;
        Ok(if self.open_all_hours {
            plan.open_all_hours()
        } else {
            plan
        })
    }

    /// Makes `plan` the plan in force.
    pub fn install(&self, plan: Arc<Dialplan>) {
        self.current.store(plan);
    }
}

/// Reading and compiling touches the disk (the file, its prompts): off the
/// async workers.
async fn load_blocking(path: PathBuf) -> Result<Dialplan, Diagnostics> {
    match tokio::task::spawn_blocking(move || Dialplan::load(&path)).await {
        Ok(result) => result,
        // The loader panicked: a bug in it, not in the file; let it surface.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// One line about a plan for the log: clinic, numbers, queues, agents.
#[derive(Debug)]
pub struct Summary<'a>(pub &'a Dialplan);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = self.0;
        write!(
            f,
            "clinic \"{}\" ({}), {} numbers, {} queues, {} agents",
            plan.clinic().name(),
            plan.clinic().time_zone_name(),
            plan.numbers().len(),
            plan.queues().count(),
            plan.agents().len()
        )
    }
}

/// SIGHUP (and `POST /api/reload`): re-read the dialplan; a plan with
/// errors is refused and the running one stays. Returns the errors. With
/// `--redis`, a reload that succeeded is announced to every node.
pub async fn reload(app: &App) -> Result<(), Vec<String>> {
    let result = reload_shared(app).await;
    if let (Ok(()), Some(cluster)) = (&result, &app.cluster) {
        cluster.reloaded();
    }
    result
}

/// A reload another node announced: the same, not announced again.
pub async fn reload_shared(app: &App) -> Result<(), Vec<String>> {
    info!("reload requested");
    match app.reload().await {
        Ok(plan) => {
            metrics::counter!("frontdesk_dialplan_reloads_total", "result" => "ok").increment(1);
            info!(
                "dialplan {} reloaded: {}",
                app.dialplan.path().display(),
                Summary(&plan)
            );
            Ok(())
        }
        Err(errors) => {
            metrics::counter!("frontdesk_dialplan_reloads_total", "result" => "refused")
                .increment(1);
            for line in &errors {
                error!("{line}");
            }
            error!(
                "dialplan {} refused ({} errors); the running dialplan stays",
                app.dialplan.path().display(),
                errors.len()
            );
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dialplans/clinic.toml")
    }

    #[tokio::test]
    async fn the_demo_clinic_loads() {
        let live = LiveDialplan::load(&clinic()).await.unwrap();
        let summary = Summary(&live.current()).to_string();
        assert!(
            summary.starts_with("clinic \"Riverside Family Health\" (America/Chicago), "),
            "{summary}"
        );
        assert!(summary.contains(" 7 queues, 7 agents"), "{summary}");
    }

    #[tokio::test]
    async fn a_broken_reload_keeps_the_running_plan_and_a_fixed_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clinic.toml");
        let original = std::fs::read_to_string(clinic()).unwrap();
        // Prompts are found next to the dialplan.
        std::os::unix::fs::symlink(
            clinic().parent().unwrap().join("prompts"),
            dir.path().join("prompts"),
        )
        .unwrap();
        std::fs::write(&path, &original).unwrap();
        let live = LiveDialplan::load(&path).await.unwrap();
        let before = live.current();

        std::fs::write(&path, "[clinic\n").unwrap();
        let errors = live.read().await.unwrap_err();
        let first = errors.to_lines().remove(0);
        assert!(
            first.starts_with(&format!("{}:1:", path.display())),
            "{first}"
        );
        assert!(Arc::ptr_eq(&before, &live.current()));

        std::fs::write(&path, &original).unwrap();
        let after = Arc::new(live.read().await.unwrap());
        assert!(
            Arc::ptr_eq(&before, &live.current()),
            "read alone installs nothing"
        );
        live.install(Arc::clone(&after));
        assert!(Arc::ptr_eq(&after, &live.current()));
        assert!(!Arc::ptr_eq(&before, &after));
    }
}
