//! An asset's `type` and its `data_pipeline`, typed, and the one interpreter
//! of that pipeline: validation (`rules::bootaction`, `render::check`) and
//! rendering (`render::bootdata`) both run it, so a pipeline that validates
//! renders, and one that fails to render fails validation at the same step.
//!
//! Semantics are Drydock's (`BootActionAsset.execute_pipeline`, Python 3): data
//! enters as bytes; `base64_decode` takes bytes or text and gives bytes,
//! `base64_encode` takes bytes and gives bytes (`base64.b64encode`),
//! `utf8_decode` bytes → text, `utf8_encode` text → bytes, `template` text →
//! text. The template engine is not known here (it lives in `render`): a
//! `template` step calls the [`Templater`] the caller hands in.

use serde::{Deserialize, Serialize};

/// An asset's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetType {
    /// A systemd unit, in the `units` tarball.
    Unit,
    /// A file, in the `files` tarball.
    File,
    /// Packages to install, in the `pkg_list` JSON.
    PkgList,
}

/// One step of a `data_pipeline` (the schema admits no other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineStep {
    /// Bytes or text → bytes, as Python's non-validating `b64decode`.
    Base64Decode,
    /// Bytes → bytes (base64 text, still bytes).
    Base64Encode,
    /// Bytes → text.
    Utf8Decode,
    /// Text → bytes.
    Utf8Encode,
    /// Text → text, rendered with the node's context.
    Template,
}

impl PipelineStep {
    /// The step as written in a design.
    pub fn name(self) -> &'static str {
        match self {
            PipelineStep::Base64Decode => "base64_decode",
            PipelineStep::Base64Encode => "base64_encode",
            PipelineStep::Utf8Decode => "utf8_decode",
            PipelineStep::Utf8Encode => "utf8_encode",
            PipelineStep::Template => "template",
        }
    }

    /// What the step gives for `input`, or `None` when it cannot take it.
    pub fn output(self, input: Shape) -> Option<Shape> {
        match (self, input) {
            (PipelineStep::Base64Decode, _) => Some(Shape::Bytes),
            (PipelineStep::Base64Encode, Shape::Bytes) => Some(Shape::Bytes),
            (PipelineStep::Utf8Decode, Shape::Bytes) => Some(Shape::Text),
            (PipelineStep::Utf8Encode, Shape::Text) => Some(Shape::Bytes),
            (PipelineStep::Template, Shape::Text) => Some(Shape::Text),
            _ => None,
        }
    }
}

impl std::fmt::Display for PipelineStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether data between steps is bytes or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Bytes (Python `bytes`).
    Bytes,
    /// Text (Python `str`).
    Text,
}

impl Shape {
    /// `bytes` or `text`, as messages say it.
    pub fn word(self) -> &'static str {
        match self {
            Shape::Bytes => "bytes",
            Shape::Text => "text",
        }
    }
}

/// Data between steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Bytes.
    Bytes(Vec<u8>),
    /// Text.
    Text(String),
}

impl Data {
    /// Its shape.
    pub fn shape(&self) -> Shape {
        match self {
            Data::Bytes(_) => Shape::Bytes,
            Data::Text(_) => Shape::Text,
        }
    }

    /// The bytes written to the node.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Data::Bytes(b) => b,
            Data::Text(t) => t.into_bytes(),
        }
    }
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// The step cannot take data of this shape (SW385).
    Shape(Shape),
    /// `base64_decode` got something that is not base64 (SW383); the shape it got.
    Base64(Shape, String),
    /// `utf8_decode` got bytes that are not UTF-8, invalid from this offset (SW384).
    Utf8(usize),
    /// `template` did not compile or render (SW392, SW393).
    Template(String),
}

/// A pipeline stopped at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    /// Position of the step in `data_pipeline`.
    pub index: usize,
    /// The step.
    pub step: PipelineStep,
    /// What went wrong.
    pub failure: StepFailure,
}

/// Renders the source a `template` step gets; implemented by `render` with a
/// node's context (validation and boot data alike).
pub trait Templater {
    /// The text `source` renders to, or why it does not.
    fn render(&mut self, source: &str) -> Result<String, String>;
}

/// A [`Templater`] for steps that must not reach a template: refuses it.
pub struct NoTemplates;

impl Templater for NoTemplates {
    fn render(&mut self, _source: &str) -> Result<String, String> {
        Err("no node context to render a template with".to_string())
    }
}

/// The first step of `steps` (numbered from `first`) that cannot take the
/// shape it gets, starting from `input`; without running anything.
pub fn check_shapes(
    steps: &[PipelineStep],
    first: usize,
    input: Shape,
) -> Result<Shape, PipelineError> {
    let mut shape = input;
    for (j, &step) in steps.iter().enumerate() {
        shape = step.output(shape).ok_or(PipelineError {
            index: first + j,
            step,
            failure: StepFailure::Shape(shape),
        })?;
    }
    Ok(shape)
}

/// Runs `steps` (numbered from `first`) over `data`; each `template` step
/// goes to `templater`.
pub fn run(
    steps: &[PipelineStep],
    first: usize,
    mut data: Data,
    templater: &mut dyn Templater,
) -> Result<Data, PipelineError> {
    for (j, &step) in steps.iter().enumerate() {
        let fail = |failure| PipelineError {
            index: first + j,
            step,
            failure,
        };
        let shape = data.shape();
        if step.output(shape).is_none() {
            return Err(fail(StepFailure::Shape(shape)));
        }
        data = match (step, data) {
            (PipelineStep::Base64Decode, Data::Bytes(b)) => {
                Data::Bytes(b64decode(&b).map_err(|e| fail(StepFailure::Base64(shape, e)))?)
            }
            (PipelineStep::Base64Decode, Data::Text(t)) => Data::Bytes(
                b64decode(t.as_bytes()).map_err(|e| fail(StepFailure::Base64(shape, e)))?,
            ),
            (PipelineStep::Base64Encode, Data::Bytes(b)) => {
                use base64::Engine;
                Data::Bytes(
                    base64::engine::general_purpose::STANDARD
                        .encode(b)
                        .into_bytes(),
                )
            }
            (PipelineStep::Utf8Decode, Data::Bytes(b)) => Data::Text(
                String::from_utf8(b)
                    .map_err(|e| fail(StepFailure::Utf8(e.utf8_error().valid_up_to())))?,
            ),
            (PipelineStep::Utf8Encode, Data::Text(t)) => Data::Bytes(t.into_bytes()),
            (PipelineStep::Template, Data::Text(t)) => Data::Text(
                templater
                    .render(&t)
                    .map_err(|e| fail(StepFailure::Template(e)))?,
            ),
            // `output` refused every other pair above.
            (_, d) => d,
        };
    }
    Ok(data)
}

/// Python's `base64.b64decode` (non-validating): characters outside the
/// alphabet are skipped, padding is required, and a non-ASCII byte is
/// refused (Python refuses a `str` with one).
pub fn b64decode(input: &[u8]) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    if let Some(pos) = input.iter().position(|b| !b.is_ascii()) {
        return Err(format!("non-ASCII byte at offset {pos}"));
    }
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .collect();
    ENGINE.decode(&clean).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PipelineStep::*;

    #[test]
    fn base64_like_python() {
        assert_eq!(b64decode(b"aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(b64decode(b"aGVsbG8").is_err());
    }

    #[test]
    fn base64_encode_gives_bytes_as_python_does() {
        let out = run(
            &[Base64Encode, Utf8Decode],
            0,
            Data::Bytes(b"hi".to_vec()),
            &mut NoTemplates,
        )
        .unwrap();
        assert_eq!(out, Data::Text("aGk=".into()));
        assert_eq!(
            check_shapes(&[Base64Encode, Utf8Decode], 0, Shape::Bytes),
            Ok(Shape::Text)
        );
    }

    #[test]
    fn the_step_that_cannot_take_its_input_is_named() {
        let e = check_shapes(&[Utf8Decode, Utf8Decode], 3, Shape::Bytes).unwrap_err();
        assert_eq!((e.index, e.step), (4, Utf8Decode));
        assert_eq!(e.failure, StepFailure::Shape(Shape::Text));
    }

    #[test]
    fn steps_read_and_print_as_written() {
        let s: PipelineStep = serde_json::from_str("\"base64_decode\"").unwrap();
        assert_eq!(s, Base64Decode);
        assert_eq!(s.to_string(), "base64_decode");
        let t: AssetType = serde_json::from_str("\"pkg_list\"").unwrap();
        assert_eq!(t, AssetType::PkgList);
    }
}
