//! A YAML value with the path that reached it, so every error names the field
//! (`objectives[2].select.protocol`), the value and what was expected.

use serde_yaml_ng::Value;
use xcbench_snapshot::config_text::ConfigError;

pub(crate) use xcbench_snapshot::config_text::capped;

/// Refuses YAML text whose flow collections (`[`, `{`) nest deeper than `max`, before the
/// YAML parser sees it (its time grows with the square of that depth). A small scanner
/// after the parser's own rules: a bracket counts where a token starts (anywhere inside a
/// flow collection, where plain text cannot hold one), not inside quotes, comments or block
/// scalars.
pub(crate) fn check_nesting(file: &str, text: &str, max: usize) -> Result<(), ConfigError> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut line) = (0, 0usize, 1usize);
    // At a token's start (a bracket or a quote there opens one); after a space or tab.
    let (mut start, mut spaced) = (true, true);
    while i < b.len() {
        let c = b[i];
        let blank_after = b
            .get(i + 1)
            .is_none_or(|n| matches!(n, b' ' | b'\t' | b'\r' | b'\n'));
        match c {
            b'\n' => {
                line += 1;
                if depth == 0 {
                    start = true;
                }
            }
            b'#' if spaced => {
                while i + 1 < b.len() && b[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'[' | b'{' if start || depth > 0 => {
                depth += 1;
                if depth > max {
                    let under = top_key_before(text, i)
                        .map(|k| format!(" (under {k})"))
                        .unwrap_or_default();
                    return Err(ConfigError::Syntax {
                        file: file.to_owned(),
                        message: format!(
                            "line {line}{under}: nested deeper than {max} levels of [ and {{ (an SLO file needs two or three): refused before parsing"
                        ),
                    });
                }
                start = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                start = false;
            }
            b',' if depth > 0 => start = true,
            b':' | b'?' | b'-' if blank_after || (depth > 0 && c == b':') => start = true,
            b'\'' | b'"' if start => {
                i = quoted_end(b, i, &mut line);
                start = false;
            }
            b'|' | b'>' if start && depth == 0 => {
                i = block_scalar_end(b, i, &mut line);
                start = true;
            }
            b'&' | b'!' | b'*' if start => {
                // An anchor or a tag keeps the token start after it; an alias is a node.
                while i + 1 < b.len()
                    && !matches!(b[i + 1], b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}')
                {
                    i += 1;
                }
                start = c != b'*';
            }
            b' ' | b'\t' | b'\r' => {}
            _ => start = false,
        }
        spaced = matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n'));
        i += 1;
    }
    Ok(())
}

/// Where a quoted scalar opened at `open` ends (its closing quote), counting its lines; a
/// document marker (`---`, `...`) at a line's start ends it too, as it does for the parser.
fn quoted_end(b: &[u8], open: usize, line: &mut usize) -> usize {
    let quote = b[open];
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote == b'"' => i += 1,
            b'\'' if quote == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 1,
            c if c == quote => return i,
            b'\n' => {
                *line += 1;
                let rest = &b[i + 1..];
                if rest.starts_with(b"---") || rest.starts_with(b"...") {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Where a block scalar (`|` or `>` at `at`) ends: the last byte before the first line
/// after its header that is neither blank nor indented deeper than the header's line.
fn block_scalar_end(b: &[u8], at: usize, line: &mut usize) -> usize {
    let line_start = b[..at]
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(0, |p| p + 1);
    let indent = b[line_start..].iter().take_while(|c| **c == b' ').count();
    let mut eol = match b[at..].iter().position(|c| *c == b'\n') {
        Some(p) => at + p,
        None => return b.len(),
    };
    loop {
        let rest = &b[eol + 1..];
        let spaces = rest.iter().take_while(|c| **c == b' ').count();
        let blank = rest.get(spaces).is_none_or(|c| matches!(c, b'\n' | b'\r'));
        if rest.is_empty() || !(blank || spaces > indent) {
            // The newline itself is left to the scanner (it counts the line).
            return eol - 1;
        }
        match rest.iter().position(|c| *c == b'\n') {
            Some(p) => {
                *line += 1;
                eol = eol + 1 + p;
            }
            None => return b.len(),
        }
    }
}

/// The top-level key (`objectives`) whose value holds byte `at`.
fn top_key_before(text: &str, at: usize) -> Option<&str> {
    text.get(..at)?
        .lines()
        .rev()
        .find(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()) && l.contains(':'))
        .and_then(|l| l.split(':').next())
        .map(str::trim)
}

/// A value in the file and where it is.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub(crate) value: &'a Value,
    pub(crate) file: &'a str,
    path: &'a str,
}

/// A node's owned path, for children built in a loop.
pub(crate) struct Path(pub(crate) String);

impl Path {
    /// `list[i]`.
    pub(crate) fn indexed(list: &str, i: usize) -> Path {
        Path(format!("{list}[{i}]"))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn node<'a>(&'a self, value: &'a Value, file: &'a str) -> Node<'a> {
        Node {
            value,
            file,
            path: &self.0,
        }
    }
}

/// How a value reads in an error: strings quoted, numbers and booleans as written (cut
/// short where the error leaves the parser, [`capped`]).
pub(crate) fn shown(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

impl<'a> Node<'a> {
    pub(crate) fn root(value: &'a Value, file: &'a str) -> Node<'a> {
        Node {
            value,
            file,
            path: "",
        }
    }

    pub(crate) fn path(&self) -> &str {
        if self.path.is_empty() {
            "(top level)"
        } else {
            self.path
        }
    }

    pub(crate) fn err(&self, expected: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            file: self.file.to_owned(),
            field: self.path().to_owned(),
            value: shown(self.value),
            expected: expected.into(),
        }
    }

    /// An error about a child that is missing.
    pub(crate) fn missing(&self, key: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            file: self.file.to_owned(),
            field: self.child_path(key).0,
            value: "(missing)".to_owned(),
            expected: expected.into(),
        }
    }

    pub(crate) fn child_path(&self, key: &str) -> Path {
        if self.path.is_empty() {
            Path(key.to_owned())
        } else {
            Path(format!("{}.{key}", self.path))
        }
    }

    /// The mapping's entries, refusing keys not in `allowed`.
    pub(crate) fn fields(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        let Value::Mapping(m) = self.value else {
            return Err(self.err("must be a mapping"));
        };
        for k in m.keys() {
            match k.as_str() {
                Some(k) if allowed.contains(&k) => {}
                _ => {
                    return Err(ConfigError::Field {
                        file: self.file.to_owned(),
                        field: self.path().to_owned(),
                        value: format!("key {}", shown(k)),
                        expected: format!("unknown key; expected one of {}", allowed.join(", ")),
                    })
                }
            }
        }
        Ok(())
    }

    /// The child at `key` of a mapping (`None` when absent or null).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        match self.value {
            Value::Mapping(m) => m.get(key).filter(|v| !v.is_null()),
            _ => None,
        }
    }

    /// A string, or a number or boolean written where a string is read (`window: 3600`).
    pub(crate) fn text(&self) -> Option<String> {
        match self.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub(crate) fn string(&self, expected: &str) -> Result<String, ConfigError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.err(expected.to_owned())),
        }
    }

    pub(crate) fn bool(&self) -> Result<bool, ConfigError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.err("must be true or false"))
    }

    pub(crate) fn list(&self) -> Result<&'a [Value], ConfigError> {
        match self.value {
            Value::Sequence(s) => Ok(s),
            _ => Err(self.err("must be a list")),
        }
    }
}

/// Calls `f` with the child at `key` when it is present.
pub(crate) fn with_child<T>(
    node: &Node<'_>,
    key: &str,
    f: impl FnOnce(Node<'_>) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => {
            let path = node.child_path(key);
            f(path.node(v, node.file)).map(Some)
        }
    }
}
