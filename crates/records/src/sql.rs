//! What the call-side queries share between SQLite and PostgreSQL (see
//! [`crate::shared`]): parameters, and rows read into owned cells so that
//! one decoder reads both databases.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::QueryError;

/// A query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Int(value) => value.to_sql(),
            Param::Text(value) => value.to_sql(),
        }
    }
}

/// One query: a text with `$1`, `$2`… first appearing in that order (so
/// that it binds alike on both databases), and its parameters.
#[derive(Debug, Clone)]
pub(crate) struct Statement<'a> {
    pub(crate) sql: &'a str,
    pub(crate) params: Vec<Param>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: &'a str, params: Vec<Param>) -> Self {
        Statement { sql, params }
    }
}

/// One value of a row (the journal stores integers and text only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Cell {
    /// A SQLite value (a REAL or a BLOB is not the journal's: corrupt).
    pub(crate) fn from_sqlite(value: ValueRef<'_>) -> Result<Cell, QueryError> {
        match value {
            ValueRef::Null => Ok(Cell::Null),
            ValueRef::Integer(value) => Ok(Cell::Int(value)),
            ValueRef::Text(text) => String::from_utf8(text.to_vec())
                .map(Cell::Text)
                .map_err(|error| QueryError::Corrupt(error.to_string())),
            ValueRef::Real(_) | ValueRef::Blob(_) => {
                Err(QueryError::Corrupt("a REAL or BLOB value".into()))
            }
        }
    }
}

/// Typed access to a row's cells; a missing column or a wrong type is
/// [`QueryError::Corrupt`].
pub(crate) struct Cells<'a>(pub(crate) &'a [Cell]);

impl Cells<'_> {
    fn cell(&self, index: usize) -> Result<&Cell, QueryError> {
        self.0
            .get(index)
            .ok_or_else(|| QueryError::Corrupt(format!("no column {index}")))
    }

    pub(crate) fn text(&self, index: usize) -> Result<String, QueryError> {
        self.opt_text(index)?
            .ok_or_else(|| QueryError::Corrupt(format!("column {index} is NULL")))
    }

    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, QueryError> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Text(text) => Ok(Some(text.clone())),
            Cell::Int(_) => Err(QueryError::Corrupt(format!("column {index} is an integer"))),
        }
    }

    pub(crate) fn int(&self, index: usize) -> Result<i64, QueryError> {
        self.opt_int(index)?
            .ok_or_else(|| QueryError::Corrupt(format!("column {index} is NULL")))
    }

    pub(crate) fn opt_int(&self, index: usize) -> Result<Option<i64>, QueryError> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Int(value) => Ok(Some(*value)),
            Cell::Text(_) => Err(QueryError::Corrupt(format!("column {index} is text"))),
        }
    }
}
