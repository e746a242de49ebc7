//! `{class}` references to synonym classes inside phrases and patterns.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Names start with a letter, so regex repetitions such as `{2}` or `{0,4}` are left alone.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{([a-z][a-z0-9_-]*)\}").expect("static regex"));

/// A phrase word that names a synonym class: the whole word in braces (`{stakeholder}`).
/// The validator and the scorer both read phrases through this, so a guide that loads always
/// compiles (they once disagreed on `{t'll}`, found by fuzzing).
pub fn phrase_class(word: &str) -> Option<&str> {
    word.strip_prefix('{').and_then(|w| w.strip_suffix('}'))
}

/// Replaces every `{name}` with `expand(name)`; the first name `expand` does not know is
/// returned as the error.
pub fn expand_placeholders(text: &str, expand: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut unknown = None;
    let expanded = PLACEHOLDER.replace_all(text, |caps: &Captures| {
        expand(&caps[1]).unwrap_or_else(|| {
            unknown.get_or_insert_with(|| caps[1].to_string());
            String::new()
        })
    });
    match unknown {
        Some(name) => Err(name),
        None => Ok(expanded.into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_names_and_leaves_repetitions() {
        let out = expand_placeholders(r"{tell} \w{2,3}", |n| (n == "tell").then(|| "(?:told)".into()));
        assert_eq!(out.unwrap(), r"(?:told) \w{2,3}");
    }

    #[test]
    fn reports_unknown_name() {
        assert_eq!(expand_placeholders("{nope} x", |_| None), Err("nope".to_string()));
    }
}
