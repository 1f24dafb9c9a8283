//! Branch from a postal code (`[branches.<id>] postal_prefixes`).
//!
//! A lead's postal code names the branch nearest the patient: the branch
//! with the longest prefix of the code wins (`606` for one branch and
//! `6060` for another is a coarse area with a finer part carved out).
//! Codes are compared with spaces and dashes removed and letters
//! upper-cased, so `60605-1234`, `sw1a 1aa` and `SW1A1AA` read as written
//! on envelopes. The branch is a preference, as for calls: agents of it
//! are offered the lead first, then anyone with the skill.

use std::collections::BTreeMap;

use crate::ids::Branch;

/// The most characters of a postal code that are read.
pub const MAX_POSTAL_CODE: usize = 16;

/// Every branch's postal prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchMap {
    /// Prefix (normalised) → branch.
    prefixes: BTreeMap<String, Branch>,
}

/// The branch a postal code picked, and the prefix that picked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchMatch {
    /// The branch.
    pub branch: Branch,
    /// The prefix of `[branches.<id>] postal_prefixes` that matched.
    pub prefix: String,
}

impl BranchMap {
    /// A map from `(prefix, branch)` pairs, prefixes normalised with
    /// [`normalize_postal_code`]; the checker refuses a prefix given to
    /// two branches, so here the last one wins.
    pub fn new(entries: impl IntoIterator<Item = (String, Branch)>) -> Self {
        BranchMap {
            prefixes: entries
                .into_iter()
                .map(|(prefix, branch)| (normalize_postal_code(&prefix), branch))
                .filter(|(prefix, _)| !prefix.is_empty())
                .collect(),
        }
    }

    /// Whether no branch has prefixes.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The branches, each once, sorted.
    pub fn branches(&self) -> Vec<&Branch> {
        let mut branches: Vec<&Branch> = self.prefixes.values().collect();
        branches.sort();
        branches.dedup();
        branches
    }

    /// The branch of the longest prefix of `postal_code`, if any.
    pub fn branch_of(&self, postal_code: &str) -> Option<BranchMatch> {
        let code = normalize_postal_code(postal_code);
        (1..=code.len())
            .rev()
            .filter(|&end| code.is_char_boundary(end))
            .find_map(|end| {
                self.prefixes
                    .get_key_value(&code[..end])
                    .map(|(prefix, branch)| BranchMatch {
                        branch: branch.clone(),
                        prefix: prefix.clone(),
                    })
            })
    }
}

/// A postal code as compared: spaces and dashes removed, ASCII letters
/// upper-cased, at most [`MAX_POSTAL_CODE`] characters kept.
pub fn normalize_postal_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .take(MAX_POSTAL_CODE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> BranchMap {
        let north = ["6061", "6062", "6064", "6065", "6066"];
        let south = ["6060", "6063", "6067", "6068"];
        BranchMap::new(
            north
                .iter()
                .map(|p| (p.to_string(), Branch::new("north")))
                .chain(south.iter().map(|p| (p.to_string(), Branch::new("south")))),
        )
    }

    #[test]
    fn the_demo_clinics_codes() {
        let map = demo();
        let branch = |code: &str| map.branch_of(code).map(|m| m.branch.to_string());
        assert_eq!(branch("60605"), Some("south".into()));
        assert_eq!(branch("60614"), Some("north".into()));
        assert_eq!(branch("60605-1234"), Some("south".into()));
        assert_eq!(branch(" 6 0 6 1 4 "), Some("north".into()));
        assert_eq!(branch("90210"), None);
        assert_eq!(branch(""), None);
        assert_eq!(map.branch_of("60605").unwrap().prefix, "6060");
    }

    #[test]
    fn the_longest_prefix_wins() {
        let map = BranchMap::new([
            ("606".to_string(), Branch::new("city")),
            ("6060".to_string(), Branch::new("south")),
            ("sw1a".to_string(), Branch::new("london")),
        ]);
        assert_eq!(map.branch_of("60605").unwrap().branch.as_str(), "south");
        assert_eq!(map.branch_of("60699").unwrap().branch.as_str(), "city");
        assert_eq!(map.branch_of("sw1a 1aa").unwrap().branch.as_str(), "london");
        assert_eq!(map.branches().len(), 3);
    }

    #[test]
    fn any_text_is_safe() {
        let map = demo();
        for code in ["é6060", "60€60", "\u{0}", &"6".repeat(1000)] {
            let _ = map.branch_of(code);
        }
    }
}
