//! A YAML value with the path that reached it, so every error names the field
//! (`objectives[2].select.protocol`), the value and what was expected.

use serde_yaml_ng::Value;
use xcbench_snapshot::config_text::ConfigError;

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

/// How a value reads in an error: strings quoted, numbers and booleans as written.
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
