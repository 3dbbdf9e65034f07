//! The secrets a node generates for itself when none is configured: the development secret and
//! the TURN secret, each kept in a file of the data directory readable by the owner only.

use std::path::Path;

use anyhow::Context;

use super::auth::AuthConfig;
use super::media::MediaConfig;
use super::turn::{TurnConfig, TurnSharedSecret};

/// The file that holds the generated development secret.
pub const DEV_SECRET_FILE: &str = "dev-secret";
/// The file that holds the generated TURN secret.
pub const TURN_SECRET_FILE: &str = "turn-secret";
/// The file that holds the generated media link secret.
pub const MEDIA_LINK_SECRET_FILE: &str = "media-link-secret";

/// The media link secret: the configured one, or the one kept in the data directory, or a new
/// random one written there (readable by the owner only).
///
/// # Errors
/// If the data directory cannot be created or the secret file cannot be read or written.
pub fn media_link_secret(media: &MediaConfig, data_dir: &Path) -> anyhow::Result<String> {
    match &media.link_secret {
        Some(secret) => Ok(secret.clone()),
        None => secret_file(&data_dir.join(MEDIA_LINK_SECRET_FILE), data_dir),
    }
}

/// The TURN secret: the configured one, or the one kept in the data directory, or a new random
/// one written there (readable by the owner only).
///
/// # Errors
/// If the data directory cannot be created or the secret file cannot be read or written.
pub fn turn_secret(turn: &TurnConfig, data_dir: &Path) -> anyhow::Result<String> {
    match &turn.secret {
        TurnSharedSecret::Configured(secret) => Ok(secret.clone()),
        TurnSharedSecret::GeneratedInDataDir => {
            secret_file(&data_dir.join(TURN_SECRET_FILE), data_dir)
        }
    }
}

/// The development secret: the configured one, or the one kept in the data directory, or a new
/// random one written there (readable by the owner only). Never a built-in default.
///
/// # Errors
/// If the data directory cannot be created or the secret file cannot be read or written.
pub fn development_secret(auth: &AuthConfig, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(secret) = &auth.hs256_secret {
        return Ok(secret.clone());
    }
    secret_file(&data_dir.join(DEV_SECRET_FILE), data_dir)
}

/// The secret kept in `path`, or a new random one written there (owner-readable only).
fn secret_file(path: &Path, data_dir: &Path) -> anyhow::Result<String> {
    let path = path.to_path_buf();
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let secret = hex::encode(bytes);
    write_private_file(&path, &secret)?;
    // Another process may have won the race to create it; the file is the truth.
    let stored =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(stored.trim().to_owned())
}

fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file
            .write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("creating {}", path.display())),
    }
}
