//! Error bodies (§2.5): always JSON under `errors`, either a list of messages or an object
//! keyed by field (`base` for general errors).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A ConnectyCube error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The server's error description (an object or a list of strings).
    pub errors: Value,
}

impl ErrorBody {
    /// `{"errors": ["msg"]}`
    pub fn list(message: impl Into<String>) -> Self {
        Self {
            errors: Value::Array(vec![Value::String(message.into())]),
        }
    }

    /// `{"errors": {"base": ["msg"]}}`
    pub fn base(message: impl Into<String>) -> Self {
        Self::field("base", message)
    }

    /// `{"errors": {"<field>": ["msg"]}}`
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut map = serde_json::Map::new();
        map.insert(
            field.to_owned(),
            Value::Array(vec![Value::String(message.into())]),
        );
        Self {
            errors: Value::Object(map),
        }
    }

    /// Every message, flattened; field errors other than `base` are prefixed with the field.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.errors {
            Value::Array(items) => out.extend(items.iter().map(text)),
            Value::Object(map) => {
                for (field, v) in map {
                    let items = match v {
                        Value::Array(items) => items.iter().map(text).collect(),
                        other => vec![text(other)],
                    };
                    for m in items {
                        if field == "base" {
                            out.push(m);
                        } else {
                            out.push(format!("{field} {m}"));
                        }
                    }
                }
            }
            other => out.push(text(other)),
        }
        out
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_shapes() {
        let a: ErrorBody = serde_json::from_value(json!({"errors": ["Unauthorized"]})).unwrap();
        assert_eq!(a.messages(), vec!["Unauthorized"]);
        let b: ErrorBody = serde_json::from_value(
            json!({"errors": {"base": ["Required session does not exist"], "login": ["has already been taken"]}}),
        )
        .unwrap();
        assert_eq!(
            b.messages(),
            vec![
                "Required session does not exist",
                "login has already been taken"
            ]
        );
        assert_eq!(ErrorBody::base("x").errors, json!({"base": ["x"]}));
    }
}
