//! `frontdesk certs dev`: a self-signed certificate and key for TLS on this
//! machine (SIP over TLS with `run --sips`, and the admin listener over
//! HTTPS), made with rcgen.
//!
//! The pair is for development only: no authority signed it, so softphones
//! and browsers must be told to trust it. The key is written with mode
//! 0600 (through a temporary file renamed into place, so it is never
//! readable by others, not even for a moment), and existing files are
//! never overwritten without `--force`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ivr::jiff::civil::Date;
use ivr::jiff::tz::TimeZone;
use ivr::jiff::{Timestamp, ToSpan};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use sha2::{Digest, Sha256};

/// The certificate's file name in the output folder (`--cert`'s default).
pub const CERT_FILE: &str = "frontdesk.crt";
/// The key's file name in the output folder (`--key`'s default).
pub const KEY_FILE: &str = "frontdesk.key";
/// How long a development certificate is valid.
const VALID_DAYS: i64 = 365;

/// Make certificates.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// A self-signed pair for localhost, 127.0.0.1 and ::1 (development only).
    Dev(DevArgs),
}

/// `frontdesk certs dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Folder to write frontdesk.crt and frontdesk.key into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "certs")]
    out: PathBuf,

    /// Replace existing files.
    #[arg(long)]
    force: bool,

    /// Another name or IP address the certificate is for (repeatable), e.g.
    /// this machine's LAN address for a softphone on another computer.
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
}

/// Runs a `certs` subcommand.
pub fn certs(command: CertsCommand) -> ExitCode {
    match command {
        CertsCommand::Dev(args) => match dev(&args) {
            Ok(made) => {
                println!("wrote {}", made.cert.display());
                println!("wrote {} (mode 0600)", made.key.display());
                println!("for: {}", made.names.join(", "));
                println!("valid until: {}", made.not_after);
                println!("sha-256 fingerprint: {}", made.fingerprint);
                println!(
                    "self-signed, for development only: softphones and browsers must be told to trust {}",
                    made.cert.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("frontdesk certs dev: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// What `certs dev` wrote.
#[derive(Debug)]
pub struct Made {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The key (PEM, PKCS#8, mode 0600).
    pub key: PathBuf,
    /// The names and addresses it is for.
    pub names: Vec<String>,
    /// The last day it is valid (UTC), `YYYY-MM-DD`.
    pub not_after: String,
    /// The SHA-256 of the certificate (DER), as colon-separated hex.
    pub fingerprint: String,
}

/// Why `certs dev` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A file is there and `--force` was not given.
    #[error("{} exists; not overwriting it (use --force to replace the pair)", .0.display())]
    Exists(PathBuf),
    /// The folder or a file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// rcgen refused (an unusable `--name`).
    #[error("cannot make the certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Makes the pair and writes it into `args.out`.
pub fn dev(args: &DevArgs) -> Result<Made, DevError> {
    let cert_path = args.out.join(CERT_FILE);
    let key_path = args.out.join(KEY_FILE);
    if !args.force {
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(DevError::Exists(path.clone()));
            }
        }
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for name in &args.names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    // IP addresses become IP subject alternative names, the rest DNS names.
    let mut params = CertificateParams::new(names.clone())?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "frontdesk development certificate");
    subject.push(
        DnType::OrganizationName,
        "frontdesk (self-signed, development only)",
    );
    params.distinguished_name = subject;
    let today = TimeZone::UTC.to_datetime(Timestamp::now()).date();
    let (not_before, not_after) = (
        today.saturating_sub(1.days()),
        today.saturating_add(VALID_DAYS.days()),
    );
    let (y, m, d) = ymd(not_before);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(not_after);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let not_after = not_after.to_string();
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;

    fs::create_dir_all(&args.out).map_err(|source| DevError::Write {
        path: args.out.clone(),
        source,
    })?;
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    let digest = Sha256::digest(cert.der());
    let fingerprint = digest
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(Made {
        cert: cert_path,
        key: key_path,
        names,
        not_after,
        fingerprint,
    })
}

/// Writes `bytes` to `path` with `mode` (0600 for the key): into a new
/// temporary file in the same folder, made with that mode, then renamed
/// over `path`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DevError> {
    let error = |source| DevError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(error)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written.and_then(|()| fs::rename(&temporary, path)) {
        let _ = fs::remove_file(&temporary);
        return Err(error(source));
    }
    Ok(())
}

/// `date` as `rcgen::date_time_ymd` takes it (jiff's months are 1..=12
/// and its days 1..=31, as rcgen's).
fn ymd(date: Date) -> (i32, u8, u8) {
    (
        i32::from(date.year()),
        u8::try_from(date.month()).unwrap_or(1),
        u8::try_from(date.day()).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pair_is_written_with_a_private_key_and_never_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let args = DevArgs {
            out: out.clone(),
            force: false,
            names: vec!["192.0.2.7".into(), "clinic.example".into()],
        };
        let made = dev(&args).unwrap();
        assert_eq!(made.cert, out.join(CERT_FILE));
        assert_eq!(
            made.names,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "192.0.2.7",
                "clinic.example"
            ]
        );
        let mode = fs::metadata(&made.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let cert = fs::read_to_string(&made.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        let key = fs::read_to_string(&made.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The pair fits together and serves TLS.
        sip::transport::tls::load_server_config(&made.cert, &made.key).unwrap();

        let error = dev(&args).unwrap_err();
        assert!(matches!(error, DevError::Exists(_)), "{error}");
        assert_eq!(fs::read_to_string(&made.key).unwrap(), key, "untouched");

        let forced = dev(&DevArgs {
            force: true,
            ..args
        })
        .unwrap();
        assert_ne!(fs::read_to_string(&forced.key).unwrap(), key, "replaced");
        let leftovers: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "no temporary files: {leftovers:?}");
    }
}
