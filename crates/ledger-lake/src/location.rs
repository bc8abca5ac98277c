//! Where a lake lives: a local directory or a Blob Storage container, and
//! the `object_store` that reaches it.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use url::Url;

use crate::LakeError;

/// A resolved lake location.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// Prefix of the lake inside the store.
    pub root: Path,
    /// The URL DataFusion registers the store under (`file:///` or
    /// `az://container/`).
    pub store_url: Url,
    /// For messages: the lake as the user named it (no credentials).
    pub display: String,
}

impl Location {
    /// Parses `./dir`, `/abs/dir`, `file:///abs`, `az://container/prefix`,
    /// `abfss://container@account.dfs.core.windows.net/prefix` or
    /// `https://account.blob.core.windows.net/container/prefix`.
    ///
    /// Blob credentials come from the environment: `AZURE_STORAGE_CONNECTION_STRING`,
    /// or `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY` /
    /// `AZURE_STORAGE_SAS_KEY`, or a managed identity / service principal
    /// (`AZURE_CLIENT_ID`, ...); `AZURE_STORAGE_USE_EMULATOR=true` with
    /// `AZURITE_BLOB_STORAGE_URL` for Azurite.
    /// A path below the lake's root.
    pub fn child(&self, rel: &str) -> Path {
        below(&self.root, rel)
    }

    pub fn parse(lake: &str) -> Result<Location, LakeError> {
        Self::resolve(lake, true)
    }

    /// Like [`Location::parse`], but a local lake must exist already (for
    /// readers: a mistyped path is an error, not an empty lake).
    pub fn existing(lake: &str) -> Result<Location, LakeError> {
        Self::resolve(lake, false)
    }

    fn resolve(lake: &str, create: bool) -> Result<Location, LakeError> {
        let is_azure = ["az://", "azure://", "abfs://", "abfss://", "adl://"]
            .iter()
            .any(|p| lake.starts_with(p))
            || (lake.starts_with("https://") && lake.contains(".core.windows.net"));
        if is_azure {
            return azure(lake);
        }
        let path = lake.strip_prefix("file://").unwrap_or(lake);
        if !create && !std::path::Path::new(path).is_dir() {
            return Err(LakeError::NotFound(lake.to_string()));
        }
        std::fs::create_dir_all(path).map_err(|e| LakeError::Unwritable {
            lake: lake.to_string(),
            reason: e.to_string(),
        })?;
        let abs = std::fs::canonicalize(path).map_err(|e| LakeError::Unwritable {
            lake: lake.to_string(),
            reason: e.to_string(),
        })?;
        let root = Path::from_absolute_path(&abs).map_err(|e| LakeError::Config(e.to_string()))?;
        let store_url = Url::parse("file:///").map_err(|e| LakeError::Config(e.to_string()))?;
        Ok(Location {
            store: Arc::new(LocalFileSystem::new()),
            root,
            store_url,
            display: abs.display().to_string(),
        })
    }
}

/// `rel` (slash-separated) below `root` in an object store.
pub fn below(root: &Path, rel: &str) -> Path {
    let root = root.as_ref();
    if root.is_empty() {
        Path::from(rel)
    } else {
        Path::from(format!("{root}/{rel}"))
    }
}

fn azure(lake: &str) -> Result<Location, LakeError> {
    let url = Url::parse(lake).map_err(|e| LakeError::Config(format!("bad lake URL: {e}")))?;
    let mut builder = MicrosoftAzureBuilder::from_env().with_url(lake);
    if let Ok(cs) = std::env::var("AZURE_STORAGE_CONNECTION_STRING") {
        builder = apply_connection_string(builder, &cs)?;
    }
    let store = builder
        .build()
        .map_err(|e| LakeError::Config(format!("cannot configure Blob Storage: {e}")))?;
    let container = container_of(&url)
        .ok_or_else(|| LakeError::Config(format!("no container in lake URL {lake}")))?;
    let prefix = prefix_of(&url);
    let store_url =
        Url::parse(&format!("az://{container}/")).map_err(|e| LakeError::Config(e.to_string()))?;
    Ok(Location {
        store: Arc::new(store),
        root: Path::from(prefix.as_str()),
        store_url,
        display: format!("az://{container}/{prefix}"),
    })
}

/// The container named by an Azure URL in any accepted form.
fn container_of(url: &Url) -> Option<String> {
    match url.scheme() {
        "https" => url
            .path_segments()?
            .next()
            .map(str::to_string)
            .filter(|s| !s.is_empty()),
        _ if !url.username().is_empty() => Some(url.username().to_string()),
        _ => url.host_str().map(str::to_string),
    }
}

fn prefix_of(url: &Url) -> String {
    let path = url.path().trim_matches('/');
    match url.scheme() {
        // https://account.blob.core.windows.net/container/prefix
        "https" => path
            .split_once('/')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default(),
        _ => path.to_string(),
    }
}

/// Reads the parts of a storage connection string that matter here. The
/// string itself is a secret: errors never quote it.
fn apply_connection_string(
    mut b: MicrosoftAzureBuilder,
    cs: &str,
) -> Result<MicrosoftAzureBuilder, LakeError> {
    for part in cs.split(';').filter(|p| !p.trim().is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(LakeError::Config(
                "AZURE_STORAGE_CONNECTION_STRING is not a list of key=value pairs".into(),
            ));
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => b = b.with_account(v.trim()),
            "accountkey" => b = b.with_access_key(v.trim()),
            "sharedaccesssignature" => b = b.with_config(AzureConfigKey::SasKey, v.trim()),
            "blobendpoint" => {
                let endpoint = v.trim().trim_end_matches('/').to_string();
                if endpoint.starts_with("http://") {
                    b = b.with_allow_http(true);
                }
                b = b.with_endpoint(endpoint);
            }
            "usedevelopmentstorage" if v.trim().eq_ignore_ascii_case("true") => {
                b = b.with_use_emulator(true)
            }
            _ => {}
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_url_forms() {
        let u = Url::parse("az://ledger/prod/lake").unwrap();
        assert_eq!(container_of(&u).as_deref(), Some("ledger"));
        assert_eq!(prefix_of(&u), "prod/lake");
        let u = Url::parse("abfss://ledger@acct.dfs.core.windows.net/x").unwrap();
        assert_eq!(container_of(&u).as_deref(), Some("ledger"));
        assert_eq!(prefix_of(&u), "x");
        let u = Url::parse("https://acct.blob.core.windows.net/ledger/a/b").unwrap();
        assert_eq!(container_of(&u).as_deref(), Some("ledger"));
        assert_eq!(prefix_of(&u), "a/b");
    }
}
