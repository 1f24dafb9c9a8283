//! RTP, G.711, prompts, DTMF for frontdesk
#![forbid(unsafe_code)]
