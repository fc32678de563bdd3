//! Reading stage outputs: a file is either missing (a stage has not run: not an error), loaded,
//! or invalid (an error naming the file). Also the tolerant `serde_json::Value` lookups used for
//! the schemas that are still provisional (infer, attack): every lookup error names the file and
//! the JSON pointer of the value.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AnalyzeError;

/// The state of one input file of a run.
#[derive(Debug)]
pub enum Input<T> {
    /// The file does not exist.
    Missing(PathBuf),
    /// The file was read and understood.
    Loaded(T),
    /// The file exists but could not be understood; the message names file and place.
    Invalid(PathBuf, String),
}

impl<T> Input<T> {
    /// The loaded value, if any.
    pub fn get(&self) -> Option<&T> {
        match self {
            Input::Loaded(v) => Some(v),
            _ => None,
        }
    }

    /// Why there is no value ("missing …" / "unreadable …"), `None` when loaded.
    pub fn problem(&self, command: &str) -> Option<String> {
        match self {
            Input::Loaded(_) => None,
            Input::Missing(path) => Some(format!("missing `{}`: run `{command}`", path.display())),
            Input::Invalid(path, _) => Some(format!(
                "unreadable `{}` (see the error printed by the command)",
                path.display()
            )),
        }
    }

    /// [`Input::problem`] for a file written by one stage of the pipeline command.
    pub fn stage_problem(&self, command: &str, stage: &str) -> Option<String> {
        self.problem(command).map(|p| {
            p.replace(
                &format!("`{command}`"),
                &format!("`{command}` ({stage} stage)"),
            )
        })
    }

    /// Loads `path` with `parse`, turning "not found" into [`Input::Missing`] and any other
    /// failure into [`Input::Invalid`] (also pushed onto `problems`).
    pub fn load(
        path: PathBuf,
        problems: &mut Vec<AnalyzeError>,
        parse: impl FnOnce(&Path, &str) -> Result<T, AnalyzeError>,
    ) -> Self {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Input::Missing(path),
            Err(e) => {
                let err = AnalyzeError::io(&path, e);
                let message = err.to_string();
                problems.push(err);
                return Input::Invalid(path, message);
            }
        };
        match parse(&path, &text) {
            Ok(v) => Input::Loaded(v),
            Err(err) => {
                let message = err.to_string();
                problems.push(err);
                Input::Invalid(path, message)
            }
        }
    }
}

/// Parses `text` (the contents of `path`) as JSON into `T`.
pub fn parse_typed<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, AnalyzeError> {
    serde_json::from_str(text).map_err(|source| AnalyzeError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// A JSON value together with the file and pointer it came from, for error messages.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    /// The value.
    pub value: &'a Value,
    /// The file it was read from.
    pub path: &'a Path,
}

impl<'a> Node<'a> {
    /// The root of a parsed file.
    pub fn root(value: &'a Value, path: &'a Path) -> Self {
        Self { value, path }
    }

    fn err(&self, pointer: &str, what: &str) -> AnalyzeError {
        AnalyzeError::malformed(self.path, format!("`{pointer}`: {what}"))
    }

    /// The member `key` of an object (`None` when absent or null).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        match self.value.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Node {
                value,
                path: self.path,
            }),
        }
    }

    /// The first present member among `keys` (aliases of one field).
    pub fn get_any(&self, keys: &[&str]) -> Option<Node<'a>> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// An optional number under one of `keys`; present but not a number is an error.
    pub fn opt_f64(&self, pointer: &str, keys: &[&str]) -> Result<Option<f64>, AnalyzeError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some(n) => n.value.as_f64().map(Some).ok_or_else(|| {
                self.err(
                    &format!("{pointer}/{}", keys[0]),
                    &format!("expected a number, found {}", kind(n.value)),
                )
            }),
        }
    }

    /// An optional string under `key`; present but not a string is an error.
    pub fn opt_str(&self, pointer: &str, key: &str) -> Result<Option<&'a str>, AnalyzeError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => n.value.as_str().map(Some).ok_or_else(|| {
                self.err(
                    &format!("{pointer}/{key}"),
                    &format!("expected a string, found {}", kind(n.value)),
                )
            }),
        }
    }

    /// A required array under one of `keys`.
    pub fn array(&self, pointer: &str, keys: &[&str]) -> Result<Vec<Node<'a>>, AnalyzeError> {
        match self.get_any(keys) {
            None => Err(self.err(
                &format!("{pointer}/{}", keys[0]),
                "missing (expected an array)",
            )),
            Some(n) => n.as_array(&format!("{pointer}/{}", keys[0])),
        }
    }

    /// An optional array under one of `keys`.
    pub fn opt_array(
        &self,
        pointer: &str,
        keys: &[&str],
    ) -> Result<Option<Vec<Node<'a>>>, AnalyzeError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some(n) => n.as_array(&format!("{pointer}/{}", keys[0])).map(Some),
        }
    }

    fn as_array(&self, pointer: &str) -> Result<Vec<Node<'a>>, AnalyzeError> {
        match self.value {
            Value::Array(items) => Ok(items
                .iter()
                .map(|value| Node {
                    value,
                    path: self.path,
                })
                .collect()),
            other => Err(self.err(
                pointer,
                &format!("expected an array, found {}", kind(other)),
            )),
        }
    }

    /// The members of an object whose values are numbers, in file order of serde_json's map
    /// (sorted by key). Present but not an object of numbers is an error.
    pub fn number_map(&self, pointer: &str, key: &str) -> Result<Vec<(String, f64)>, AnalyzeError> {
        let Some(n) = self.get(key) else {
            return Ok(Vec::new());
        };
        let pointer = format!("{pointer}/{key}");
        let Value::Object(map) = n.value else {
            return Err(self.err(
                &pointer,
                &format!("expected an object, found {}", kind(n.value)),
            ));
        };
        map.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                v.as_f64().map(|x| (k.clone(), x)).ok_or_else(|| {
                    self.err(
                        &format!("{pointer}/{k}"),
                        &format!("expected a number, found {}", kind(v)),
                    )
                })
            })
            .collect()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `text` as untyped JSON.
pub fn parse_value(path: &Path, text: &str) -> Result<Value, AnalyzeError> {
    parse_typed(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_name_the_file_and_pointer() {
        let path = Path::new("results/x/infer/metrics.json");
        let v: Value = serde_json::json!({"a": {"b": "text", "n": 2.5}, "list": 3});
        let root = Node::root(&v, path);
        let a = root.get("a").expect("a");
        assert_eq!(a.opt_f64("/a", &["n"]).expect("number"), Some(2.5));
        assert_eq!(a.opt_f64("/a", &["absent"]).expect("absent"), None);
        let err = a.opt_f64("/a", &["b"]).expect_err("string is not a number");
        assert_eq!(
            err.to_string(),
            "results/x/infer/metrics.json: `/a/b`: expected a number, found a string"
        );
        let err = root.array("", &["list"]).expect_err("not an array");
        assert!(
            err.to_string()
                .contains("`/list`: expected an array, found a number")
        );
        let err = root.array("", &["nothing"]).expect_err("missing");
        assert!(err.to_string().contains("`/nothing`: missing"));
    }

    #[test]
    fn input_states() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut problems = Vec::new();
        let missing: Input<Value> =
            Input::load(dir.path().join("none.json"), &mut problems, parse_value);
        assert!(matches!(missing, Input::Missing(_)));
        assert!(
            missing
                .problem("cargo xtask pipeline mnist")
                .expect("problem")
                .contains("run `cargo xtask pipeline mnist`")
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{ not json").expect("write");
        let invalid: Input<Value> = Input::load(bad.clone(), &mut problems, parse_value);
        assert!(matches!(invalid, Input::Invalid(..)));
        assert_eq!(problems.len(), 1);
        let message = problems[0].to_string();
        assert!(message.starts_with(&bad.display().to_string()), "{message}");
        assert!(message.contains("malformed JSON"), "{message}");
    }
}
