//! Boot data of a node: every asset of every BootAction that targets it,
//! through its `data_pipeline`, packed as a deterministic gzipped tar (DESIGN
//! §4). The only user of `tar` and `flate2`.
//!
//! - Templates are compiled once per design ([`CompiledActions::compile`]) and
//!   rendered per (node, action) with Drydock's context.
//! - Assets with only a `location` (an http URL) are not fetched: they are
//!   skipped with a warning (see docs/compat.md).
//! - Tarball bytes depend only on the rendered assets and the mtime given:
//!   members sorted by path (stable, so a path written twice keeps both, as
//!   Drydock does), named by the absolute asset path, mode from the asset's
//!   octal `permissions` (default 0600), uid/gid 0, empty user and group
//!   names, GNU format; gzip header without file name or timestamp.

use std::collections::BTreeMap;

use super::context::ActionValues;
use super::template::{PreparedAction, RenderContext, TemplateError, Templates};
use crate::design::pipeline::{
    self, AssetType, Data, NoTemplates, PipelineError, PipelineStep, Shape, StepFailure, Templater,
};
use crate::design::Design;

/// Default mode of an asset without `permissions` (Drydock's).
pub const DEFAULT_MODE: u32 = 0o600;

/// Which part of a node's boot data is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BootDataKind {
    /// `type: unit` assets, as a tarball.
    Units,
    /// `type: file` assets, as a tarball.
    Files,
    /// The node's packages (`type: pkg_list` assets) as a JSON object.
    PkgList,
    /// Units and files, as one tarball.
    All,
}

impl BootDataKind {
    /// Every kind, in [`BootDataKind::index`] order.
    pub const ALL: [BootDataKind; 4] = [
        BootDataKind::Units,
        BootDataKind::Files,
        BootDataKind::PkgList,
        BootDataKind::All,
    ];

    /// A dense index (0..4), for per-kind slots.
    pub fn index(self) -> usize {
        match self {
            BootDataKind::Units => 0,
            BootDataKind::Files => 1,
            BootDataKind::PkgList => 2,
            BootDataKind::All => 3,
        }
    }

    /// The kind named by a route segment (`units`, `files`, `pkg_list`, `all`).
    pub fn from_word(word: &str) -> Option<BootDataKind> {
        match word {
            "units" => Some(BootDataKind::Units),
            "files" => Some(BootDataKind::Files),
            "pkg_list" => Some(BootDataKind::PkgList),
            "all" => Some(BootDataKind::All),
            _ => None,
        }
    }

    /// The route segment of the kind.
    pub fn word(self) -> &'static str {
        match self {
            BootDataKind::Units => "units",
            BootDataKind::Files => "files",
            BootDataKind::PkgList => "pkg_list",
            BootDataKind::All => "all",
        }
    }

    /// The media type of the rendered bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            BootDataKind::PkgList => "application/json",
            _ => "application/gzip",
        }
    }

    /// The file name offered for download (`<host>-<kind>.tar.gz`).
    pub fn file_name(self, host: &str) -> String {
        match self {
            BootDataKind::PkgList => format!("{host}-pkg_list.json"),
            k => format!("{host}-{}.tar.gz", k.word()),
        }
    }

    fn wants(self, t: Option<AssetType>) -> bool {
        let Some(t) = t else { return false };
        matches!(
            (self, t),
            (BootDataKind::Units, AssetType::Unit)
                | (BootDataKind::Files, AssetType::File)
                | (BootDataKind::All, AssetType::Unit | AssetType::File)
        )
    }
}

/// Why boot data could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An asset's pipeline failed for this node.
    #[error("BootAction {action}, asset {asset}: {message}")]
    Asset {
        /// The BootAction.
        action: String,
        /// The asset's path (or index).
        asset: String,
        /// What was expected and found.
        message: String,
    },
    /// The tarball could not be written.
    #[error("writing the tarball: {0}")]
    Archive(String),
}

#[derive(Debug)]
struct PreparedAsset {
    label: String,
    path: Option<String>,
    asset_type: Option<AssetType>,
    data: Option<serde_json::Value>,
    location: Option<String>,
    pipeline: Vec<PipelineStep>,
    /// Position of the first `template` step and the name of its compiled
    /// template (the steps before it are run once, at compile time).
    template: Option<(usize, String)>,
    mode: u32,
}

#[derive(Debug)]
struct PreparedActionDoc {
    name: String,
    signaling: bool,
    assets: Vec<PreparedAsset>,
}

/// Every BootAction of a design with its templates compiled, ready to render
/// for any node. Build once per applied revision.
pub struct CompiledActions {
    templates: Templates,
    actions: Vec<PreparedActionDoc>,
}

impl std::fmt::Debug for CompiledActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledActions")
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

/// One rendered member of a tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute path on the node.
    pub path: String,
    /// Unix mode bits.
    pub mode: u32,
    /// Content.
    pub bytes: Vec<u8>,
}

/// One BootAction of a node's deployment: its index in
/// [`Design::boot_actions`] and the values its templates see.
#[derive(Debug, Clone)]
pub struct NodeAction {
    /// Index of the BootAction in the design.
    pub index: usize,
    /// `action.*` of the template context.
    pub values: ActionValues,
}

/// An asset's `permissions` as octal mode bits (`"555"` → 0o555); default 0600.
pub fn parse_mode(permissions: Option<&str>) -> Result<u32, String> {
    match permissions.map(str::trim) {
        None | Some("") => Ok(DEFAULT_MODE),
        Some(p) => {
            let digits = p.strip_prefix("0o").unwrap_or(p);
            u32::from_str_radix(digits, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    format!("permissions `{p}`: expected an octal mode such as 644 or 0755")
                })
        }
    }
}

impl CompiledActions {
    /// Compiles every template of every BootAction of `design`.
    pub fn compile(design: &Design) -> Result<CompiledActions, RenderError> {
        let mut templates = Templates::new();
        let mut actions = Vec::with_capacity(design.boot_actions.len());
        for (bi, ba) in design.boot_actions.iter().enumerate() {
            let mut assets = Vec::with_capacity(ba.data.assets.len());
            for (ai, a) in ba.data.assets.iter().enumerate() {
                let label = a.path.clone().unwrap_or_else(|| format!("#{ai}"));
                let err = |message: String| RenderError::Asset {
                    action: ba.name.clone(),
                    asset: label.clone(),
                    message,
                };
                let asset_type = a.asset_type;
                // The steps before the first `template` do not depend on the
                // node: run them now and compile what `template` will see.
                let template = match a
                    .data_pipeline
                    .iter()
                    .position(|s| *s == PipelineStep::Template)
                {
                    Some(k) => {
                        let name = format!("{}/{bi}/{ai}", ba.name);
                        let source = match &a.data {
                            Some(serde_json::Value::String(s)) => {
                                let raw = Data::Bytes(s.clone().into_bytes());
                                let before = &a.data_pipeline[..k];
                                let ran = pipeline::run(before, 0, raw, &mut NoTemplates);
                                match ran.map_err(|e| err(describe(&e)))? {
                                    Data::Text(t) => t,
                                    Data::Bytes(_) => {
                                        return Err(err(format!(
                                            "step {k} `template` cannot take bytes; add utf8_decode before it"
                                        )))
                                    }
                                }
                            }
                            _ => String::new(),
                        };
                        templates
                            .add(&name, &source)
                            .map_err(|e| err(e.to_string()))?;
                        Some((k, name))
                    }
                    None => None,
                };
                let mode = parse_mode(a.permissions.as_deref()).map_err(err)?;
                assets.push(PreparedAsset {
                    label,
                    path: a.path.clone(),
                    asset_type,
                    data: a.data.clone(),
                    location: a.location.clone(),
                    pipeline: a.data_pipeline.clone(),
                    template,
                    mode,
                });
            }
            actions.push(PreparedActionDoc {
                name: ba.name.clone(),
                signaling: ba.data.signaling.unwrap_or(true),
                assets,
            });
        }
        Ok(CompiledActions { templates, actions })
    }

    /// Name of the BootAction at `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.actions[index].name
    }

    /// Whether the BootAction at `index` reports status (`signaling`, default true).
    pub fn signaling(&self, index: usize) -> bool {
        self.actions[index].signaling
    }

    /// The `units`, `files` or `all` assets of a node's actions, rendered,
    /// sorted by path.
    pub fn render_files(
        &self,
        node: &super::context::NodeContext,
        actions: &[NodeAction],
        kind: BootDataKind,
    ) -> Result<Vec<RenderedFile>, RenderError> {
        let mut out = Vec::new();
        for na in actions {
            let doc = &self.actions[na.index];
            let mut ctx: Option<RenderContext> = None;
            for asset in &doc.assets {
                if !kind.wants(asset.asset_type) {
                    continue;
                }
                let err = |message: String| RenderError::Asset {
                    action: doc.name.clone(),
                    asset: asset.label.clone(),
                    message,
                };
                let Some(path) = &asset.path else {
                    return Err(err("has no `path`; expected an absolute path".into()));
                };
                let data = match &asset.data {
                    Some(serde_json::Value::String(s)) => s.as_bytes().to_vec(),
                    Some(other) => {
                        return Err(err(format!(
                            "expected `data` to be a string, found {other}"
                        )))
                    }
                    None => {
                        if let Some(loc) = &asset.location {
                            tracing::warn!(
                                action = %doc.name,
                                path = %path,
                                location = %loc,
                                "asset has only a location; slipway does not fetch locations, skipped"
                            );
                        }
                        continue;
                    }
                };
                let ctx = ctx.get_or_insert_with(|| {
                    RenderContext::for_node(node.clone(), &PreparedAction::new(&na.values))
                });
                let bytes = self
                    .run_pipeline(asset, data, ctx)
                    .map_err(|m| err(format!("rendering for node {}: {m}", node.hostname)))?;
                out.push(RenderedFile {
                    path: path.clone(),
                    mode: asset.mode,
                    bytes,
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The packages of a node's actions (`pkg_list` assets merged; a later
    /// action wins a name), as `{"name": "version" | null}`.
    pub fn packages(&self, actions: &[usize]) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        for &i in actions {
            for asset in &self.actions[i].assets {
                if asset.asset_type != Some(AssetType::PkgList) {
                    continue;
                }
                if let Some(serde_json::Value::Object(m)) = &asset.data {
                    for (name, v) in m {
                        let v = match v {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) if s.is_empty() => None,
                            serde_json::Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        };
                        out.insert(name.clone(), v);
                    }
                }
            }
        }
        out
    }

    /// The asset's bytes for a node: its data through the whole pipeline,
    /// the first template compiled once, any later one on the spot.
    fn run_pipeline(
        &self,
        asset: &PreparedAsset,
        data: Vec<u8>,
        ctx: &RenderContext,
    ) -> Result<Vec<u8>, String> {
        let out = match &asset.template {
            Some((k, name)) => {
                let text = self
                    .templates
                    .render(name, ctx)
                    .map_err(|e| format!("step {k} template: {e}"))?;
                let rest = &asset.pipeline[k + 1..];
                pipeline::run(rest, k + 1, Data::Text(text), &mut NodeTemplater(ctx))
            }
            None => pipeline::run(
                &asset.pipeline,
                0,
                Data::Bytes(data),
                &mut NodeTemplater(ctx),
            ),
        };
        out.map(Data::into_bytes).map_err(|e| describe(&e))
    }
}

/// Renders a `template` step with one node's context (a step whose source
/// depends on the node is compiled when it is reached).
pub struct NodeTemplater<'a>(pub &'a RenderContext);

impl Templater for NodeTemplater<'_> {
    fn render(&mut self, source: &str) -> Result<String, String> {
        render_once(source, self.0).map_err(|e| e.to_string())
    }
}

fn render_once(source: &str, ctx: &RenderContext) -> Result<String, TemplateError> {
    let mut t = Templates::new();
    t.add("inline", source)?;
    t.render("inline", ctx)
}

/// A pipeline failure as rendering reports it (`step 2 utf8_decode: ...`).
pub fn describe(e: &PipelineError) -> String {
    let i = e.index;
    let step = e.step;
    match &e.failure {
        StepFailure::Shape(Shape::Bytes) => format!(
            "step {i} `{step}` cannot take bytes; expected base64_decode, base64_encode or utf8_decode here"
        ),
        StepFailure::Shape(Shape::Text) => format!(
            "step {i} `{step}` cannot take text; expected base64_decode, utf8_encode or template here"
        ),
        StepFailure::Base64(_, why) => {
            format!("step {i} base64_decode: expected base64 text, found: {why}")
        }
        StepFailure::Utf8(offset) => format!(
            "step {i} utf8_decode: expected UTF-8, found an invalid byte at offset {offset}"
        ),
        StepFailure::Template(why) => format!("step {i} template: {why}"),
    }
}

/// Packs files (already sorted) into a deterministic gzipped tar.
pub fn tarball(files: &[RenderedFile], mtime: u64) -> Result<Vec<u8>, RenderError> {
    let arch = |e: std::io::Error| RenderError::Archive(e.to_string());
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for f in files {
        let name = f.path.as_bytes();
        if name.len() > 100 {
            // GNU long name: a `././@LongLink` member of type L holds the name.
            let mut long = header(0o644, mtime, name.len() as u64 + 1);
            long.set_entry_type(tar::EntryType::GNULongName);
            set_name(&mut long, b"././@LongLink");
            long.set_cksum();
            let mut data = name.to_vec();
            data.push(0);
            builder.append(&long, data.as_slice()).map_err(arch)?;
        }
        let mut h = header(f.mode, mtime, f.bytes.len() as u64);
        set_name(&mut h, &name[..name.len().min(100)]);
        h.set_cksum();
        builder.append(&h, f.bytes.as_slice()).map_err(arch)?;
    }
    let tar = builder.into_inner().map_err(arch)?;
    gzip(&tar)
}

/// gzip of `data` (RFC 1952: no name, mtime 0, OS unknown, default level),
/// deflated by a compressor kept per thread: a new one allocates ~300 KiB of
/// zeroed tables, and allocating and faulting them in for each small
/// tarball cost more than compressing it (TLB shootdowns across threads).
fn gzip(data: &[u8]) -> Result<Vec<u8>, RenderError> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::default(), false));
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    // Magic, deflate, no flags, mtime 0, no extra flags, OS 255 (unknown).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    DEFLATE.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let consumed = c.total_in() as usize;
            match c.compress_vec(&data[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(RenderError::Archive(format!("gzip: {e}"))),
            }
        }
    })?;
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
}

fn header(mode: u32, mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    // Empty names: `set_username` only fails on names over 32 bytes.
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}

/// Writes the name field directly: the tar crate refuses absolute paths,
/// and Drydock's members keep their leading `/`.
fn set_name(h: &mut tar::Header, name: &[u8]) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name);
}

/// Renders one node's boot data of `kind`: a tarball, or for
/// [`BootDataKind::PkgList`] a JSON object.
pub fn render_node(
    compiled: &CompiledActions,
    node: &super::context::NodeContext,
    actions: &[NodeAction],
    kind: BootDataKind,
    mtime: u64,
) -> Result<Vec<u8>, RenderError> {
    if kind == BootDataKind::PkgList {
        let idx: Vec<usize> = actions.iter().map(|a| a.index).collect();
        let pkgs = compiled.packages(&idx);
        return serde_json::to_vec(&pkgs).map_err(|e| RenderError::Archive(e.to_string()));
    }
    let files = compiled.render_files(node, actions, kind)?;
    tarball(&files, mtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn file(path: &str, mode: u32, body: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            mode,
            bytes: body.as_bytes().to_vec(),
        }
    }

    fn members(tgz: &[u8]) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
        let gz = flate2::read::GzDecoder::new(tgz);
        let mut a = tar::Archive::new(gz);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let h = e.header();
                let meta = (
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.username().unwrap().unwrap_or("").to_string(),
                );
                assert_eq!(meta.3, "");
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (path, meta.0, meta.1, meta.2, body)
            })
            .collect()
    }

    #[test]
    fn tarball_has_absolute_names_modes_and_root_owner() {
        let long = format!("/opt/{}/x.sh", "d".repeat(120));
        let files = vec![
            file("/etc/a.conf", 0o644, "a"),
            file("/var/tmp/hello.sh", 0o555, "#!/bin/sh\n"),
            file(&long, 0o600, "long"),
        ];
        let tgz = tarball(&files, 1_700_000_000).unwrap();
        // gzip header: no name flag, zero mtime.
        assert_eq!(&tgz[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&tgz[4..8], &[0, 0, 0, 0]);
        let m = members(&tgz);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].0, "/etc/a.conf");
        assert_eq!(m[0].1, 0o644);
        assert_eq!(m[1].0, "/var/tmp/hello.sh");
        assert_eq!(m[1].1, 0o555);
        assert_eq!(m[2].0, long);
        for x in &m {
            assert_eq!((x.2, x.3), (0, 0));
        }
        assert_eq!(m[1].4, b"#!/bin/sh\n");
    }

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!(parse_mode(None), Ok(0o600));
        assert_eq!(parse_mode(Some("555")), Ok(0o555));
        assert_eq!(parse_mode(Some("0755")), Ok(0o755));
        assert!(parse_mode(Some("999")).unwrap_err().contains("octal"));
    }

    proptest! {
        #[test]
        fn same_files_same_bytes(
            names in proptest::collection::vec("[a-z]{1,12}", 0..6),
            mtime in 0u64..4_000_000_000,
        ) {
            let files: Vec<RenderedFile> = names
                .iter()
                .map(|n| file(&format!("/srv/{n}"), 0o640, n))
                .collect();
            let a = tarball(&files, mtime).unwrap();
            let b = tarball(&files.clone(), mtime).unwrap();
            prop_assert_eq!(a, b);
        }
    }
}
