//! Queues, agent availability table and agent selection for frontdesk
#![forbid(unsafe_code)]
