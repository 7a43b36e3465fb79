//! Schema stage (codes `SW2nn`): each document's `data` against its kind's JSON
//! Schema from the project's `schemas/` folder, compiled once per process.
//!
//! The only user of `jsonschema`. Like Drydock (draft-04, no format checker),
//! `format` keywords are not enforced here: address syntax is checked, with a
//! better message, by the semantic rules.

use std::sync::OnceLock;

use jsonschema::Validator;

use super::message::Message;
use super::parse::Document;
use super::Kind;

/// The schema text of a kind, as shipped in `schemas/`.
pub fn schema_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Region => include_str!("../../schemas/Region.json"),
        Kind::Rack => include_str!("../../schemas/Rack.json"),
        Kind::NetworkLink => include_str!("../../schemas/NetworkLink.json"),
        Kind::Network => include_str!("../../schemas/Network.json"),
        Kind::HardwareProfile => include_str!("../../schemas/HardwareProfile.json"),
        Kind::HostProfile => include_str!("../../schemas/HostProfile.json"),
        Kind::BaremetalNode => include_str!("../../schemas/BaremetalNode.json"),
        Kind::BootAction => include_str!("../../schemas/BootAction.json"),
    }
}

fn validators() -> &'static [Validator; 8] {
    static V: OnceLock<[Validator; 8]> = OnceLock::new();
    V.get_or_init(|| {
        Kind::ALL.map(|k| {
            let schema: serde_json::Value = serde_json::from_str(schema_text(k))
                .expect("shipped schemas are valid JSON (tested)");
            jsonschema::draft4::options()
                .should_validate_formats(false)
                .build(&schema)
                .expect("shipped schemas compile (tested)")
        })
    })
}

/// Checks one document; one SW201 message per violation.
pub fn check(doc: &Document) -> Vec<Message> {
    let validator = &validators()[doc.kind as usize];
    let mut out = Vec::new();
    for err in validator.iter_errors(&doc.data) {
        let pointer = err.instance_path.as_str().to_string();
        let line = doc.line_of(&pointer);
        let shown = if pointer.is_empty() {
            "data"
        } else {
            pointer.as_str()
        };
        out.push(
            Message::error(
                "SW201",
                format!("{}: schema violation at {shown}: {err}", doc.kind.name()),
                format!(
                    "Fix the field at JSON pointer `{shown}` of the document's data; the schema is schemas/{}.json.",
                    doc.kind.name()
                ),
            )
            .about(doc.schema(), &doc.name)
            .at(&doc.file, line),
        );
        if out.len() >= 50 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_schema_compiles() {
        assert_eq!(validators().len(), 8);
    }
}
