//! Leads: patients' inquiries that are not live calls (a web form now;
//! callbacks, voicemail and abandoned calls next), and where the dialplan
//! sends them. DESIGN.md, "Leads, sources, intents, branches, trunks".
//!
//! A lead comes from a *source* (`[sources.<id>]`: the clinic's website, a
//! form builder), each with its own HMAC secret and response windows. Its
//! message is classified by *intent* (`[[intents]]`, [`intent`]): the
//! first rule with a phrase in the message names the queue, and an
//! emergency rule makes the lead urgent; no match goes to
//! [`FALLBACK_QUEUE`]. Its postal code picks a *branch*
//! (`[branches.<id>]`, [`branch`]), a preference among agents. Its phone
//! number is read into E.164 with the clinic's country ([`phone`]).
//! [`Dialplan::route_lead`](crate::Dialplan::route_lead) puts it together,
//! with no I/O and no clock, for the daemon and `frontdesk simulate
//! --lead` alike.
//!
//! Trunks (`[trunks.<id>]`, [`trunk`]) are the way out for click-to-call
//! and callbacks; they are checked here so that the next step can dial.

pub mod branch;
pub mod intent;
pub mod phone;
pub mod source;
pub mod trunk;

use crate::ids::{Branch, QueueId};
use crate::plan::Priority;

pub use branch::{BranchMap, BranchMatch};
pub use intent::{IntentMatch, IntentMatcher, IntentRule};
pub use phone::{Country, PhoneError, PhoneNumber};
pub use source::{Source, SourceSecret};
pub use trunk::{Trunk, TrunkTransport, TrunkUri};

/// Where a lead that matches no intent goes (DESIGN.md: "no match ->
/// front-desk"); `check` requires this queue once leads can arrive.
pub const FALLBACK_QUEUE: &str = "front-desk";

/// Where a lead goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRoute {
    /// The intent rule and phrase that matched; `None`: the fallback.
    pub intent: Option<IntentMatch>,
    /// The queue (department) that owns it.
    pub queue: QueueId,
    /// An emergency rule matched: urgent, flagged first everywhere.
    pub emergency: bool,
    /// Urgent for an emergency, else the source's priority.
    pub priority: Priority,
    /// The branch to prefer among its agents, and what chose it.
    pub branch: Option<LeadBranch>,
}

/// Which branch a lead prefers, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadBranch {
    /// The postal code's prefix.
    PostalCode(BranchMatch),
    /// No prefix matched (or no postal code): the known patient's usual
    /// branch, from `[[directory]]`, as for calls.
    Directory(Branch),
}

impl LeadBranch {
    /// The branch.
    pub fn branch(&self) -> &Branch {
        match self {
            LeadBranch::PostalCode(found) => &found.branch,
            LeadBranch::Directory(branch) => branch,
        }
    }
}
