//! Typed names for the things a dialplan declares.
//!
//! Each is a cheap-to-clone newtype over `Arc<str>`, so that a queue name in
//! a routing decision cannot be mixed up with an agent id or a menu name.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a name. Names come from a checked dialplan; this does
            /// not validate anything by itself.
            pub fn new(name: impl AsRef<str>) -> Self {
                Self(Arc::from(name.as_ref()))
            }

            /// The name as written in the dialplan.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::new(name)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A department queue, named by its key in `[queues.<id>]` (`pediatrics`).
    QueueId
);
id_type!(
    /// A menu, named by its key in `[menus.<id>]` (`main`).
    MenuId
);
id_type!(
    /// An agent: the SIP user name an agent registers with (`1003`).
    AgentId
);
id_type!(
    /// A skill an agent has and a queue needs (`front-desk`).
    Skill
);
id_type!(
    /// A clinic branch (`north`).
    Branch
);
id_type!(
    /// The marketing source a dialed number stands for (`main-line`).
    SourceTag
);
id_type!(
    /// A language tag for a caller or an agent (`en`, `es`).
    Language
);
id_type!(
    /// A prompt, named by its file path relative to the dialplan's folder
    /// (`prompts/main-menu.wav`), exactly as the dialplan writes it.
    PromptId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ids_compare_by_name_and_look_up_by_str() {
        let mut map = HashMap::new();
        map.insert(QueueId::new("pediatrics"), 1);
        assert_eq!(map.get("pediatrics"), Some(&1));
        assert_eq!(QueueId::from("a"), QueueId::new(String::from("a")));
        assert_eq!(format!("{:?}", AgentId::new("1003")), "AgentId(\"1003\")");
        assert_eq!(Skill::new("x").to_string(), "x");
    }
}
