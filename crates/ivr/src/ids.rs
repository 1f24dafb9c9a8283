//! Typed names for the things a dialplan declares.
//!
//! The clinic's names that routing and the journal share (queues, agents,
//! skills, branches, languages, sources, prompts) are the `domain` crate's;
//! a menu is the dialplan's alone. Each is a cheap-to-clone newtype over
//! `Arc<str>`, so that a queue name in a routing decision cannot be mixed
//! up with an agent id or a menu name.

pub use domain::{AgentId, Branch, Language, PromptId, QueueId, Skill, SourceTag};

domain::name_type!(
    /// A menu, named by its key in `[menus.<id>]` (`main`).
    MenuId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_ids_compare_by_name() {
        assert_eq!(MenuId::from("main"), MenuId::new(String::from("main")));
        assert_eq!(format!("{:?}", MenuId::new("main")), "MenuId(\"main\")");
    }
}
