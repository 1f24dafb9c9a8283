//! Names from the dialplan, as newtypes over `Arc<str>`.

/// Defines a name newtype over `Arc<str>`: cheap to clone, compared and
/// hashed by its text, looked up by `&str` in maps (`Borrow<str>`),
/// printed as the text (`Display`) or as `Name("text")` (`Debug`), and
/// serialized as a string.
///
/// ```
/// domain::name_type!(
///     /// A menu, by its key in `[menus.<id>]`.
///     MenuId
/// );
/// let main = MenuId::new("main");
/// assert_eq!(main.as_str(), "main");
/// assert_eq!(format!("{main:?}"), "MenuId(\"main\")");
/// ```
#[macro_export]
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(::std::sync::Arc<str>);

        impl $name {
            /// Wraps a name. Names come from a checked dialplan (or a
            /// test); this validates nothing by itself.
            pub fn new(name: impl AsRef<str>) -> Self {
                Self(::std::sync::Arc::from(name.as_ref()))
            }

            /// The name as the dialplan writes it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::new(name)
            }
        }

        impl ::std::convert::From<String> for $name {
            fn from(name: String) -> Self {
                Self::new(name)
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An agent: the SIP user name an agent registers with (`1003`).
    AgentId
);
name_type!(
    /// A department queue, by its key in `[queues.<id>]` (`pediatrics`).
    QueueId
);
name_type!(
    /// A skill an agent has and a queue requires (`front-desk`).
    Skill
);
name_type!(
    /// A clinic branch (`north`).
    Branch
);
name_type!(
    /// A spoken language, as the dialplan names it (`en`, `es`).
    Language
);
name_type!(
    /// The marketing source a dialed number stands for (`main-line`).
    SourceTag
);
name_type!(
    /// A prompt, by its file path relative to the dialplan's folder
    /// (`prompts/call-back-later.wav`), exactly as the dialplan writes it.
    PromptId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_compare_by_text_and_look_up_by_str() {
        let mut map = HashMap::new();
        map.insert(QueueId::new("pediatrics"), 1);
        assert_eq!(map.get("pediatrics"), Some(&1));
        assert_eq!(QueueId::from("a"), QueueId::new(String::from("a")));
        assert_eq!(AgentId::from("1003").to_string(), "1003");
        assert_eq!(format!("{:?}", AgentId::new("1003")), "AgentId(\"1003\")");
        assert_eq!(Skill::new("x").as_ref(), "x");
    }
}
