//! Durable call journal and reports for frontdesk
#![forbid(unsafe_code)]
