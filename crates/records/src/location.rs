//! Where the journal lives: `run --journal URL` (DESIGN.md, "Speech and
//! cluster names").
//!
//! - `sqlite:<path>`: the single-node journal, a SQLite file (the default,
//!   `sqlite:<--data>/journal.db`).
//! - `postgres://user:pass@host:port/db` (or `postgresql://`): the node
//!   still writes its local SQLite file first (the durable outbox, see
//!   [`crate::replica`]) and ships every call to this PostgreSQL database,
//!   which several nodes share.
//!
//! The password of a PostgreSQL URL never leaves this type in text: its
//! `Display` and `Debug` print `***` in its place, so a location can be
//! logged or shown in an error as it is.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed `--journal` value.
#[derive(Clone, PartialEq, Eq)]
pub enum JournalLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database that several nodes share.
    Postgres(PostgresUrl),
}

/// A `postgres://` or `postgresql://` URL, checked by the client's own
/// parser; shown with its password redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
}

/// Why a `--journal` value was refused (never quotes the value: it may
/// hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// Neither `sqlite:` nor `postgres://`/`postgresql://`.
    #[error("a journal location is sqlite:<path> or postgres://user:pass@host:port/db")]
    Scheme,
    /// `sqlite:` with nothing after it.
    #[error("sqlite: needs a path (sqlite:/var/lib/frontdesk/journal.db)")]
    EmptyPath,
    /// The PostgreSQL client refused the URL.
    #[error("not a PostgreSQL URL the client accepts (postgres://user:pass@host:port/db)")]
    Postgres,
    /// A PostgreSQL URL without a host.
    #[error("the PostgreSQL URL names no host")]
    NoHost,
}

impl FromStr for JournalLocation {
    type Err = LocationError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if let Some(path) = value.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(LocationError::EmptyPath);
            }
            return Ok(JournalLocation::Sqlite(PathBuf::from(path)));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let config = postgres::Config::from_str(value).map_err(|_| LocationError::Postgres)?;
            if config.get_hosts().is_empty() {
                return Err(LocationError::NoHost);
            }
            return Ok(JournalLocation::Postgres(PostgresUrl {
                url: value.to_string(),
            }));
        }
        Err(LocationError::Scheme)
    }
}

impl PostgresUrl {
    /// The client's configuration (the URL was checked at parse time).
    pub(crate) fn config(&self) -> Result<postgres::Config, postgres::Error> {
        postgres::Config::from_str(&self.url)
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }
}

/// `scheme://user:secret@rest` → `scheme://user:***@rest`; also a
/// `password=` query parameter. Anything it cannot place is hidden whole.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    // The authority ends at the first '/' or '?'; its userinfo at its last '@'.
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for JournalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            JournalLocation::Postgres(url) => url.fmt(f),
        }
    }
}

impl fmt::Debug for JournalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            JournalLocation::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_two_kinds() {
        assert_eq!(
            "sqlite:/var/lib/fd/journal.db".parse::<JournalLocation>(),
            Ok(JournalLocation::Sqlite("/var/lib/fd/journal.db".into()))
        );
        for url in [
            "postgres://fd:s3cret@127.0.0.1:5433/journal",
            "postgresql://fd:s3cret@db.internal/journal",
        ] {
            let location: JournalLocation = url.parse().unwrap();
            assert!(matches!(location, JournalLocation::Postgres(_)));
            assert!(!location.to_string().contains("s3cret"), "{location}");
            assert!(!format!("{location:?}").contains("s3cret"));
            assert!(location.to_string().contains("fd:***@"), "{location}");
        }
        for (bad, error) in [
            ("sqlite:", LocationError::EmptyPath),
            ("/var/lib/journal.db", LocationError::Scheme),
            ("mysql://a@b/c", LocationError::Scheme),
            ("postgres://a:b@h:notaport/db", LocationError::Postgres),
        ] {
            assert_eq!(bad.parse::<JournalLocation>(), Err(error), "{bad}");
        }
    }

    #[test]
    fn a_password_in_the_query_is_hidden_too() {
        let location: JournalLocation = "postgres://h/db?user=fd&password=s3cret".parse().unwrap();
        assert_eq!(location.to_string(), "postgres://h/db?user=fd&password=***");
    }

    proptest! {
        /// Any input: no panic; a refusal never quotes it; an accepted
        /// PostgreSQL URL never shows its password.
        #[test]
        fn never_panics_never_shows_the_password(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9]{6,16}",
            rest in "\\PC{0,40}",
        ) {
            for input in [
                format!("postgres://{user}:{password}@{rest}"),
                format!("postgresql://{user}:{password}@h/{rest}"),
                format!("postgres://h/db?user={user}&password={password}&{rest}"),
                rest.clone(),
            ] {
                match input.parse::<JournalLocation>() {
                    Ok(JournalLocation::Postgres(url)) => {
                        let shown = url.to_string();
                        let debug = format!("{:?}", url);
                        prop_assert!(!shown.contains(&password), "{}", shown);
                        prop_assert!(!debug.contains(&password), "{}", debug);
                    }
                    Ok(JournalLocation::Sqlite(_)) => {}
                    Err(error) => prop_assert!(!error.to_string().contains(&password)),
                }
            }
        }
    }
}
