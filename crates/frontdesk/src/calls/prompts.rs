//! Prompts as the media layer plays them: WAV files of the dialplan,
//! encoded once to 20 ms G.711 frames and shared by every call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use media::prompt::Prompt;

/// Encoded prompts by file path. Loaded on first use (off the async
/// workers), kept until the dialplan is reloaded.
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    // Path → prompt; a guard never leaves these methods.
    cache: Arc<DashMap<PathBuf, Arc<Prompt>>>,
}

impl Prompts {
    /// The prompt at `path`, loading it if needed.
    pub async fn get(&self, path: &Path) -> Result<Arc<Prompt>, media::PromptError> {
        if let Some(prompt) = self.cache.get(path) {
            return Ok(Arc::clone(prompt.value()));
        }
        let owned = path.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || Prompt::load(&owned))
            .await
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?;
        let prompt = Arc::new(loaded);
        self.cache.insert(path.to_path_buf(), Arc::clone(&prompt));
        Ok(prompt)
    }

    /// Loads every WAV in `folder` ahead of the first call.
    pub async fn preload(&self, folder: &Path) {
        let Ok(mut entries) = tokio::fs::read_dir(folder).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
                && let Err(error) = self.get(&path).await
            {
                tracing::warn!("{}: {error}", path.display());
            }
        }
    }

    /// Forgets every prompt (a reload may have changed the files).
    pub fn clear(&self) {
        self.cache.clear();
    }
}
