//! Suites too big for one module: the table, the router, a deterministic
//! simulation and property tests.

mod callback;
mod cluster;
mod properties;
mod router;
mod simulation;
mod table;
mod transfer;
mod util;
