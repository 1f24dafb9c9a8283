//! SIP for frontdesk: message layer, transports, transactions, dialogs, registrar
#![forbid(unsafe_code)]
