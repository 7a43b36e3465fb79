//! Validation messages and the Status object they are reported in.

use serde::{Deserialize, Serialize};

/// How serious a message is. Only `Error` makes a design invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl Level {
    /// The word used in text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "Error",
            Level::Warning => "Warning",
            Level::Info => "Info",
        }
    }
}

/// A design document a message is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocRef {
    pub schema: String,
    pub name: String,
}

/// Where a message points: a file of the design and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceRef {
    pub file: String,
    pub line: u32,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Stable rule code, `SW<stage><nn>`; see docs/validation.md.
    pub code: String,
    pub level: Level,
    pub message: String,
    /// How to fix it.
    pub diagnostic: String,
    pub documents: Vec<DocRef>,
    pub source: Option<SourceRef>,
    pub error: bool,
}

impl Message {
    /// A message of the given level; `error` follows from the level.
    pub fn new(
        code: &str,
        level: Level,
        message: impl Into<String>,
        diagnostic: impl Into<String>,
    ) -> Self {
        Message {
            code: code.to_string(),
            level,
            message: message.into(),
            diagnostic: diagnostic.into(),
            documents: Vec::new(),
            source: None,
            error: level == Level::Error,
        }
    }

    /// An error message.
    pub fn error(code: &str, message: impl Into<String>, diagnostic: impl Into<String>) -> Self {
        Self::new(code, Level::Error, message, diagnostic)
    }

    /// A warning message.
    pub fn warning(code: &str, message: impl Into<String>, diagnostic: impl Into<String>) -> Self {
        Self::new(code, Level::Warning, message, diagnostic)
    }

    /// An informational message.
    pub fn info(code: &str, message: impl Into<String>, diagnostic: impl Into<String>) -> Self {
        Self::new(code, Level::Info, message, diagnostic)
    }

    /// Adds the document the message is about.
    pub fn about(mut self, schema: &str, name: &str) -> Self {
        self.documents.push(DocRef {
            schema: schema.to_string(),
            name: name.to_string(),
        });
        self
    }

    /// Sets where the message points.
    pub fn at(mut self, file: &str, line: u32) -> Self {
        self.source = Some(SourceRef {
            file: file.to_string(),
            line,
        });
        self
    }

    /// `file:line: LEVEL CODE Kind/name: message`, as `slipway validate` prints it.
    pub fn to_text_line(&self) -> String {
        let (file, line) = match &self.source {
            Some(s) => (s.file.as_str(), s.line),
            None => ("-", 0),
        };
        let doc = match self.documents.first() {
            Some(d) => {
                let kind = d.schema.split('/').nth(1).unwrap_or(&d.schema);
                format!("{kind}/{}", d.name)
            }
            None => "-".to_string(),
        };
        // One message, one line: a control character from the design (a
        // newline in a name, a path or a key) is shown escaped, never written.
        one_line(&format!(
            "{file}:{line}: {} {} {doc}: {}",
            self.level.as_str(),
            self.code,
            self.message
        ))
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`).
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_line_is_one_line_whatever_the_design_holds() {
        let m = Message::error("SW388", "path `/etc/x\nroot::0:0` and \u{1b}[2J", "fix")
            .about("drydock/BootAction/v1", "ba\rx")
            .at("site\n.yaml", 3);
        let line = m.to_text_line();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("/etc/x\\nroot::0:0"), "{line}");
    }
}

/// Drydock's Status object, extended with `source` in each message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub kind: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub status: String,
    pub message: String,
    pub reason: String,
    pub code: u16,
    pub details: StatusDetails,
}

/// The `details` of a validation Status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(rename = "errorCount")]
    pub error_count: usize,
    #[serde(rename = "messageList")]
    pub message_list: Vec<Message>,
}

impl Status {
    /// The Status for a finished validation.
    pub fn from_messages(messages: &[Message]) -> Status {
        let error_count = messages.iter().filter(|m| m.error).count();
        let ok = error_count == 0;
        Status {
            kind: "Status".into(),
            api_version: "v1.0".into(),
            metadata: serde_json::Map::new(),
            status: if ok { "Success" } else { "Failure" }.into(),
            message: if ok {
                "Validation successful".into()
            } else {
                format!("Validation failed with {error_count} error(s)")
            },
            reason: "Validation".into(),
            code: if ok { 200 } else { 400 },
            details: StatusDetails {
                error_count,
                message_list: messages.to_vec(),
            },
        }
    }
}
