//! The TOML document under every TOML configuration file (`agent.toml`, the mesh file,
//! `collector.toml`): its text into the raw values serde reads, and the toml crate's errors
//! placed where they are: the field's path (`peers[1].payload_size`, also inside arrays of
//! tables), its line, the value as written (cut short) and what was expected in words rather
//! than Rust types, with what it echoes of the input capped ([`capped`], the one cap every
//! configuration file's errors share).

use std::ops::Range;

use serde::de::{Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::units::ConfigError;

pub use xcbench_snapshot::config_text::{capped, echoed, ECHO_CHARS, MESSAGE_CHARS};

/// Parses `text` (named `file` in errors) into `T`; an error names the field and line.
pub fn from_toml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| capped(place(file, text, e.message(), e.span())))
}

/// The document as a tree of spans: enough to find which field a position is in.
enum Tree {
    Leaf,
    Array(Vec<Spanned<Tree>>),
    Table(Vec<(String, Spanned<Tree>)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Tree;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
                Ok(Tree::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Tree::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    // A date-time comes as a map of one private key: a value, not a table.
                    if key.starts_with("$__toml_private") {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        return Ok(Tree::Leaf);
                    }
                    entries.push((key, map.next_value()?));
                }
                Ok(Tree::Table(entries))
            }
        }
        d.deserialize_any(Any)
    }
}

impl Tree {
    /// Whether `at` is inside this value (its own span, or one of its children's: an array
    /// of tables is spread over the document).
    fn covers(node: &Spanned<Tree>, at: usize) -> bool {
        let span = node.span();
        span.contains(&at)
            || match node.get_ref() {
                Tree::Leaf => false,
                Tree::Array(items) => items.iter().any(|i| Tree::covers(i, at)),
                Tree::Table(entries) => entries.iter().any(|(_, v)| Tree::covers(v, at)),
            }
    }

    /// The deepest value holding `at`: its path, the value, and its span (none for the
    /// document itself).
    fn find(&self, at: usize) -> (String, &Tree, Option<Range<usize>>) {
        let (mut path, mut node, mut span) = (String::new(), self, None);
        loop {
            let next = match node {
                Tree::Leaf => None,
                Tree::Array(items) => items
                    .iter()
                    .enumerate()
                    .find(|(_, v)| Tree::covers(v, at))
                    .map(|(i, v)| (format!("{path}[{i}]"), v)),
                Tree::Table(entries) => entries
                    .iter()
                    .find(|(_, v)| Tree::covers(v, at))
                    .map(|(k, v)| (join(&path, k), v)),
            };
            match next {
                Some((p, v)) => {
                    path = p;
                    span = Some(v.span());
                    node = v.get_ref();
                }
                None => return (path, node, span),
            }
        }
    }

    /// The path of the value whose span is exactly `span` (a table an error is about).
    fn path_of(&self, span: &Range<usize>) -> Option<String> {
        let children: Vec<(String, &Spanned<Tree>)> = match self {
            Tree::Leaf => return None,
            Tree::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[{i}]"), v))
                .collect(),
            Tree::Table(entries) => entries.iter().map(|(k, v)| (join("", k), v)).collect(),
        };
        children.into_iter().find_map(|(step, v)| {
            // The deepest: an array of one table spans what its table does.
            let deeper = v
                .get_ref()
                .path_of(span)
                .map(|rest| match rest.starts_with('[') {
                    true => format!("{step}{rest}"),
                    false => format!("{step}.{rest}"),
                });
            deeper.or_else(|| (v.span() == *span).then_some(step))
        })
    }

    /// The child `key` of a table and its span.
    fn child(&self, key: &str) -> Option<Range<usize>> {
        match self {
            Tree::Table(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.span()),
            _ => None,
        }
    }
}

/// `path.key`, the key quoted unless it is bare.
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = match bare {
        true => key.to_owned(),
        false => format!("{key:?}"),
    };
    match path.is_empty() {
        true => key,
        false => format!("{path}.{key}"),
    }
}

/// The 1-based line of byte `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The table header (`[agent]`, `[[peers]]`) the line holding `at` is under, if any, and
/// where that header's line starts.
fn header_before(text: &str, at: usize) -> Option<(&str, usize)> {
    let mut end = line_start(text, at);
    while end > 0 {
        let start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[start..end - 1];
        let l = line.split('#').next().unwrap_or(line).trim();
        if l.starts_with('[') {
            return Some((l, start));
        }
        end = start;
    }
    None
}

/// Where the line holding byte `at` starts.
fn line_start(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].rfind('\n').map_or(0, |i| i + 1)
}

/// For a document that does not parse: the field a `key = value` line holding `at` sets
/// (under its table header, `[[x]]` counted), and its value as written.
fn key_at(text: &str, at: usize) -> Option<(String, &str)> {
    let start = line_start(text, at);
    let line = text[start..].lines().next().unwrap_or("");
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let dotted = |k: &str| {
        !k.is_empty()
            && k.split('.').all(|p| {
                let p = p.trim();
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
    };
    if !dotted(key) {
        return None;
    }
    let table = match header_before(text, at) {
        None => String::new(),
        Some((h, pos)) => {
            let name = |h: &str, n: usize| -> Option<String> {
                Some(h.get(n..h.len().checked_sub(n)?)?.trim().to_owned())
            };
            match h.starts_with("[[") && h.ends_with("]]") {
                true => {
                    let name = name(h, 2)?;
                    let index = text[..pos]
                        .lines()
                        .filter(|l| l.split('#').next().unwrap_or(l).trim() == h)
                        .count();
                    format!("{name}[{index}]")
                }
                false if h.ends_with(']') => name(h, 1)?,
                false => return None,
            }
        }
    };
    let key: String = key.split('.').map(str::trim).collect::<Vec<_>>().join(".");
    let field = match table.is_empty() {
        true => key,
        false => format!("{table}.{key}"),
    };
    Some((field, value_text(value)))
}

/// A value as written on its line: a quoted one to its closing quote, else up to a comment.
fn value_text(text: &str) -> &str {
    let t = text.trim();
    match t.chars().next() {
        Some(q @ ('"' | '\'')) => t[1..].find(q).map_or(t, |end| &t[..end + 2]),
        _ => t.split(" #").next().unwrap_or(t).trim(),
    }
}

/// The text at `span`, as an error shows a value (cut short by [`capped`]).
fn written(text: &str, span: &Range<usize>) -> String {
    text.get(span.clone())
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| "(set)".to_owned())
}

/// serde's expectation in a config file's words.
fn in_words(expected: &str) -> String {
    let e = expected.trim();
    let words = match e {
        "a string" => "a string in quotes",
        "a boolean" => "true or false",
        "a sequence" => "an array, e.g. [\"a\", \"b\"]",
        "a map" => "a table",
        _ if e.starts_with("struct ") || e.starts_with("a map") => "a table",
        // i64, u16, ...
        _ if e.len() > 1
            && e.starts_with(['i', 'u'])
            && e[1..].chars().all(|c| c.is_ascii_digit()) =>
        {
            "an integer"
        }
        "an integer" => "an integer",
        _ if e.starts_with("a sequence") => "an array",
        _ => e,
    };
    words.to_owned()
}

/// The text between the first pair of backticks.
fn quoted(message: &str) -> Option<&str> {
    let rest = message.split_once('`')?.1;
    Some(rest.split_once('`')?.0)
}

/// A toml error (`message` at `span`) as a [`ConfigError`] naming the field and line.
fn place(file: &str, text: &str, message: &str, span: Option<Range<usize>>) -> ConfigError {
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let message = match message.is_empty() {
        true => "is not valid TOML here".to_owned(),
        false => message,
    };
    let syntax = |message: String| ConfigError::Syntax {
        file: file.to_owned(),
        message,
    };
    let Some(span) = span else {
        return match message.strip_prefix("missing field ").and_then(quoted) {
            Some(field) => field_error(file, field, "(none)", "must be set".into()),
            None => syntax(message),
        };
    };
    let line = line_of(text, span.start);
    // Only a document that parses has fields to name: a syntax error names its table.
    let Ok(tree) = toml::from_str::<Tree>(text) else {
        let message = if message.contains("recursion limit exceeded") {
            "must not nest this deep (recursion limit exceeded)".to_owned()
        } else if message.contains("number too large") {
            "must be a number TOML can hold (a 64-bit integer)".to_owned()
        } else {
            message
        };
        return match key_at(text, span.start) {
            Some((field, value)) => {
                field_error(file, &field, value, format!("{message} (line {line})"))
            }
            None => {
                let under = header_before(text, span.start)
                    .map(|(h, _)| format!(" (under {h})"))
                    .unwrap_or_default();
                syntax(format!("line {line}{under}: {message}"))
            }
        };
    };
    let (path, node, node_span) = tree.find(span.start);
    if let Some(key) = message.strip_prefix("unknown field ").and_then(quoted) {
        let value = node
            .child(key)
            .map_or_else(|| "(set)".to_owned(), |s| written(text, &s));
        let keys = message
            .split_once(", expected ")
            .map(|(_, list)| format!(": expected {}", list.replace('`', "")))
            .unwrap_or_else(|| ": this table takes no fields".to_owned());
        let expected = format!("is not a field here (line {line}){keys}");
        return field_error(file, &join(&path, key), &value, expected);
    }
    if let Some(key) = message.strip_prefix("missing field ").and_then(quoted) {
        // The table the field is missing from is the value spanning exactly the error.
        let (table, at) = match tree.path_of(&span) {
            Some(p) => (p, format!(" (in the table at line {line})")),
            None => (String::new(), String::new()),
        };
        return field_error(
            file,
            &join(&table, key),
            "(none)",
            format!("must be set{at}"),
        );
    }
    if path.is_empty() {
        return syntax(format!("line {line}: {message}"));
    }
    let value = written(text, &node_span.unwrap_or(span));
    let expected = match message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.split_once(", expected "))
    {
        Some((_, e)) => format!("must be {} (line {line})", in_words(e)),
        None => format!("{message} (line {line})"),
    };
    field_error(file, &path, &value, expected)
}

fn field_error(file: &str, field: &str, value: &str, expected: String) -> ConfigError {
    ConfigError::Field {
        file: file.to_owned(),
        field: field.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Raw {
        agent: Agent,
        #[serde(default)]
        peers: Vec<Peer>,
        history: Option<Vec<Tier>>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Agent {
        id: String,
        n: Option<i64>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Peer {
        id: String,
        address: String,
        payload_size: Option<i64>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tier {
        slot: String,
    }

    fn err(text: &str) -> String {
        from_toml::<Raw>("a.toml", text).unwrap_err().to_string()
    }

    const PEERS: &str = "[agent]\nid = \"a\"\n\n[[peers]]\nid = \"b\"\naddress = \"x\"\n\n[[peers]]\nid = \"c\"\n\n\naddress = \"y\"\n";

    #[test]
    fn errors_inside_arrays_of_tables_keep_their_place() {
        assert_eq!(
            err(&format!("{PEERS}adress = \"z\"\n")),
            "a.toml: peers[1].adress = \"z\": is not a field here (line 13): expected one of id, address, payload_size"
        );
        assert_eq!(
            err(&format!("{PEERS}payload_size = \"big\"\n")),
            "a.toml: peers[1].payload_size = \"big\": must be an integer (line 13)"
        );
        assert_eq!(
            err("[agent]\nid = \"a\"\n\n[[peers]]\nid = \"b\"\n"),
            "a.toml: peers[0].address = (none): must be set (in the table at line 4)"
        );
        assert_eq!(
            err("history = [\n  { slot = \"1s\" },\n  { slot = 5 },\n]\n[agent]\nid = \"a\"\n"),
            "a.toml: history[1].slot = 5: must be a string in quotes (line 3)"
        );
    }

    #[test]
    fn top_level_errors_name_their_field() {
        assert_eq!(
            err("peers = 5\n[agent]\nid = \"a\"\n"),
            "a.toml: peers = 5: must be an array, e.g. [\"a\", \"b\"] (line 1)"
        );
        assert_eq!(
            err("[agent]\nid = 5\n"),
            "a.toml: agent.id = 5: must be a string in quotes (line 2)"
        );
        assert_eq!(
            err("[agent]\nid = \"a\"\nnn = 1\n"),
            "a.toml: agent.nn = 1: is not a field here (line 3): expected id or n"
        );
        assert_eq!(err(""), "a.toml: agent = (none): must be set");
        assert_eq!(
            err("agent = { id = \"a\", n = \"x\" }\n"),
            "a.toml: agent.n = \"x\": must be an integer (line 1)"
        );
        assert_eq!(
            err("[agent]\nid = \"a\"\nn = 99999999999999999999\n"),
            "a.toml: agent.n = 99999999999999999999: must be a number TOML can hold (a 64-bit integer) (line 3)"
        );
        assert_eq!(
            err("[agent]\nid = \"a\"\n[[peers]]\nid = \"b"),
            "a.toml: peers[0].id = \"b: invalid basic string (line 4)"
        );
        assert_eq!(
            err("[agent]\nid = \"a\"\n[[peers]]\nid = \"b\"\n[[peers]]\nid = \"c\"\n]\n"),
            "a.toml: line 7 (under [[peers]]): invalid key"
        );
    }

    #[test]
    fn echoes_are_capped_and_on_one_line() {
        let big = "x".repeat(1_000_000);
        let e = err(&format!("[agent]\nid = \"a\"\nn = \"{big}\"\n"));
        assert!(e.len() < 400, "{}", e.len());
        assert!(e.contains("... (1000002 bytes)"), "{e}");
        assert_eq!(echoed("a\nb", 10), "a\\nb");
        assert_eq!(echoed("äöü", 2), "äö... (6 bytes)");
        let deep = format!(
            "[agent]\nid = \"a\"\nn = {}1{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(!err(&deep).contains('\n'));
    }
}
