//! `GET /api/reports/leads`: what happened to the leads that arrived in a
//! range, per source, per department and per kind (`kinds`: e.g. the
//! voicemails answered within their window, issue 22).
//!
//! For the leads *created* in `[from, to)`, as of `now`:
//! - `leads`: how many;
//! - `contacted_within_window`: the share first contacted by their
//!   `respond_by` (0–1; 0.0 with no leads);
//! - `speed_to_lead_ms`: nearest-rank p50 and p90 of arrival → first
//!   contact, over the leads contacted at all (`null` when none);
//! - `leaked`: leads whose window has passed (`respond_by` ≤ `now`)
//!   without a contact within it — the ones the clinic let slip;
//! - `booked`: leads closed with the outcome `booked`.
//!
//! Contacts and outcomes come from the columns the lead's events fold
//! into (`first_contact_at`, `outcome`); a lead nobody has touched counts
//! in `leads` and, once its window passes, in `leaked`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::report::{Percentiles, share};

/// The columns of one lead a report reads (times in ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadFacts {
    pub kind: String,
    pub source: String,
    pub department: String,
    pub created_at: i64,
    pub respond_by: i64,
    pub first_contact_at: Option<i64>,
    pub booked: bool,
}

/// The figures of one group of leads (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LeadFigures {
    /// Leads created in the range.
    pub leads: u64,
    /// Share first contacted within their window.
    pub contacted_within_window: f64,
    /// Arrival to first contact, of the contacted leads.
    pub speed_to_lead_ms: Percentiles,
    /// Leads whose window passed without a contact in it.
    pub leaked: u64,
    /// Leads closed as booked.
    pub booked: u64,
}

/// One source's figures: `{"source", …figures}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SourceLeads {
    /// The source's id.
    pub source: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: LeadFigures,
}

/// One department's figures: `{"department", …figures}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DepartmentLeads {
    /// The queue's id.
    pub department: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: LeadFigures,
}

/// One kind's figures: `{"kind", …figures}` (`voicemail`:
/// `contacted_within_window` is the share of voicemails answered within
/// their window).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KindLeads {
    /// `web_form`, `callback`, `voicemail` or `abandoned_call`.
    pub kind: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: LeadFigures,
}

/// The whole report, serialized as DESIGN.md's
/// `{"sources":[…],"departments":[…]}` and `"kinds":[…]`, each sorted by
/// name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LeadReport {
    /// Per source.
    pub sources: Vec<SourceLeads>,
    /// Per department.
    pub departments: Vec<DepartmentLeads>,
    /// Per kind of lead.
    pub kinds: Vec<KindLeads>,
}

impl LeadFigures {
    fn of(leads: &[&LeadFacts], now: i64) -> Self {
        let mut within = 0;
        let mut leaked = 0;
        let mut booked = 0;
        let mut speeds = Vec::new();
        for lead in leads {
            let in_window = lead
                .first_contact_at
                .is_some_and(|at| at <= lead.respond_by);
            if in_window {
                within += 1;
            } else if lead.respond_by <= now {
                leaked += 1;
            }
            if let Some(at) = lead.first_contact_at {
                speeds.push(u64::try_from(at - lead.created_at).unwrap_or(0));
            }
            if lead.booked {
                booked += 1;
            }
        }
        let count = leads.len() as u64;
        LeadFigures {
            leads: count,
            contacted_within_window: share(within, count),
            speed_to_lead_ms: Percentiles::of(speeds),
            leaked,
            booked,
        }
    }
}

/// The report over `facts` at `now` (ms since the epoch).
pub(crate) fn leads(facts: &[LeadFacts], now: i64) -> LeadReport {
    let mut by_source: BTreeMap<&str, Vec<&LeadFacts>> = BTreeMap::new();
    let mut by_department: BTreeMap<&str, Vec<&LeadFacts>> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, Vec<&LeadFacts>> = BTreeMap::new();
    for lead in facts {
        by_kind.entry(&lead.kind).or_default().push(lead);
        by_source.entry(&lead.source).or_default().push(lead);
        by_department
            .entry(&lead.department)
            .or_default()
            .push(lead);
    }
    LeadReport {
        sources: by_source
            .into_iter()
            .map(|(source, leads)| SourceLeads {
                source: source.to_string(),
                figures: LeadFigures::of(&leads, now),
            })
            .collect(),
        departments: by_department
            .into_iter()
            .map(|(department, leads)| DepartmentLeads {
                department: department.to_string(),
                figures: LeadFigures::of(&leads, now),
            })
            .collect(),
        kinds: by_kind
            .into_iter()
            .map(|(kind, leads)| KindLeads {
                kind: kind.to_string(),
                figures: LeadFigures::of(&leads, now),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(
        source: &str,
        department: &str,
        created: i64,
        contact: Option<i64>,
        booked: bool,
    ) -> LeadFacts {
        LeadFacts {
            kind: if source == "phone" {
                "voicemail"
            } else {
                "web_form"
            }
            .into(),
            source: source.into(),
            department: department.into(),
            created_at: created,
            respond_by: created + 300_000,
            first_contact_at: contact,
            booked,
        }
    }

    #[test]
    fn figures_per_source_and_department() {
        let facts = [
            // Reached after 1 min, booked.
            lead("website", "orthopedics", 0, Some(60_000), true),
            // Reached after 10 min: outside its window, so leaked.
            lead("website", "orthopedics", 1_000, Some(601_000), false),
            // Never reached, window over: leaked.
            lead("website", "dermatology", 2_000, None, false),
            // Never reached, window still open: neither.
            lead("form-builder", "dermatology", 500_000, None, false),
        ];
        let report = leads(&facts, 600_000);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["sources"][1],
            serde_json::json!({
                "source": "website",
                "leads": 3,
                "contacted_within_window": 1.0 / 3.0,
                "speed_to_lead_ms": {"p50": 60_000, "p90": 600_000},
                "leaked": 2,
                "booked": 1,
            })
        );
        assert_eq!(json["sources"][0]["source"], "form-builder");
        assert_eq!(json["sources"][0]["leaked"], 0);
        assert_eq!(
            json["sources"][0]["speed_to_lead_ms"]["p50"],
            serde_json::Value::Null
        );
        assert_eq!(json["departments"][0]["department"], "dermatology");
        assert_eq!(json["departments"][0]["leads"], 2);
        assert_eq!(json["departments"][1]["booked"], 1);
    }

    #[test]
    fn voicemails_answered_within_their_window() {
        let facts = [
            // Called back within the hour.
            lead("phone", "nurse-line", 0, Some(120_000), false),
            // Called back too late.
            lead("phone", "nurse-line", 0, Some(900_000), false),
            lead("website", "orthopedics", 0, Some(60_000), true),
        ];
        let json = serde_json::to_value(leads(&facts, 1_000_000)).unwrap();
        assert_eq!(json["kinds"][0]["kind"], "voicemail");
        assert_eq!(json["kinds"][0]["leads"], 2);
        assert_eq!(json["kinds"][0]["contacted_within_window"], 0.5);
        assert_eq!(json["kinds"][1]["kind"], "web_form");
        assert_eq!(json["kinds"][1]["contacted_within_window"], 1.0);
    }

    #[test]
    fn no_leads_no_rows() {
        let report = leads(&[], 0);
        assert!(report.sources.is_empty() && report.departments.is_empty());
    }
}
