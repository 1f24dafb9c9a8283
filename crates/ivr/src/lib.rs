//! Dialplan schema, validation and the IVR engine for frontdesk
#![forbid(unsafe_code)]
