//! How a configuration section is declared: `config_section!` writes each key once, with its
//! doc comment and its default, and derives from that the struct, its `Default`, the rustdoc
//! line that states the default and the [`KeyDoc`]s `config.example.toml` is generated from
//! (see `src/config/tests/example.rs`). Also the small checks sections validate themselves with.

use anyhow::bail;

/// One key of a section as `config.example.toml` documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key, as written in the file.
    pub name: &'static str,
    /// Its doc comment, one entry per line.
    pub doc: &'static [&'static str],
    /// For a key without a default value: the value the example file shows, commented out.
    pub example: Option<&'static str>,
}

/// A `[section]` of the configuration file, declared with `config_section!`.
pub trait DocumentedSection {
    /// The section's name in the file (`[server]`).
    const NAME: &'static str;
    /// The section's doc comment, one entry per line.
    const DOC: &'static [&'static str];
    /// Its keys, in the order the file lists them.
    const KEYS: &'static [KeyDoc];
}

/// A section's documentation, gathered from its [`DocumentedSection`] implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionDoc {
    /// The section's name in the file.
    pub name: &'static str,
    /// Its doc comment, one entry per line.
    pub doc: &'static [&'static str],
    /// Its keys, in file order.
    pub keys: &'static [KeyDoc],
}

impl SectionDoc {
    /// The documentation of `Section`.
    pub const fn of<Section: DocumentedSection>() -> SectionDoc {
        SectionDoc {
            name: Section::NAME,
            doc: Section::DOC,
            keys: Section::KEYS,
        }
    }
}

/// Declares a `[section]` struct whose every key states its doc comment and its default once:
///
/// ```text
/// config_section! {
///     /// `[server]`: ...
///     pub struct ServerConfig = "server" {
///         /// Address to listen on.
///         pub listen: String = "127.0.0.1:8080".to_owned(),
///         /// A key without a default value shows an example, commented out.
///         pub node_id: Option<String> = None; example "\"node-a\"",
///     }
/// }
/// ```
///
/// The struct is `Deserialize` with `deny_unknown_fields` and `default`, so a key left out keeps
/// its default.
macro_rules! config_section {
    (
        $(#[doc = $section_doc:literal])*
        pub struct $name:ident = $section:literal {
            $(
                $(#[doc = $doc:literal])*
                pub $key:ident : $type:ty = $default:expr $(; example $example:literal)?,
            )*
        }
    ) => {
        $(#[doc = $section_doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("Default: `", stringify!($default), "`.")]
                pub $key: $type,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $($key: $default,)*
                }
            }
        }

        impl $crate::config::section::DocumentedSection for $name {
            const NAME: &'static str = $section;
            const DOC: &'static [&'static str] = &[$($section_doc),*];
            const KEYS: &'static [$crate::config::section::KeyDoc] = &[
                $(
                    $crate::config::section::KeyDoc {
                        name: stringify!($key),
                        doc: &[$($doc),*],
                        example: config_section!(@example $($example)?),
                    },
                )*
            ];
        }
    };
    (@example $example:literal) => { Some($example) };
    (@example) => { None };
}

pub(crate) use config_section;

/// Fails naming the first of `keys` (in `section`) whose value is 0: "`section.key` must be
/// greater than 0".
///
/// # Errors
/// As described.
pub(crate) fn ensure_positive<const N: usize>(
    section: &str,
    keys: [(&str, u64); N],
) -> anyhow::Result<()> {
    for (key, value) in keys {
        if value == 0 {
            bail!("{section}.{key} must be greater than 0");
        }
    }
    Ok(())
}

/// Fails unless `value` starts with one of `schemes`: "`what` must start with a or b".
///
/// # Errors
/// As described.
pub(crate) fn ensure_scheme(what: &str, value: &str, schemes: &[&str]) -> anyhow::Result<()> {
    if !schemes.iter().any(|scheme| value.starts_with(scheme)) {
        bail!("{what} must start with {}", schemes.join(" or "));
    }
    Ok(())
}
