//! Any template text compiled and rendered for a real node's context:
//! errors, never a panic or a runaway render (templates are fuel-limited).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slipway::design::DesignFile;
use slipway::render::context::{node_context, ActionValues, TemplateContext};
use slipway::render::template::{RenderContext, Templates};

const SITE: &str = include_str!("../../tests/data/designs/ok/gen-site-3-nodes.yaml");

fn context() -> &'static RenderContext {
    static CTX: OnceLock<RenderContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let v = slipway::validate(&[DesignFile {
            path: "site.yaml".into(),
            bytes: SITE.as_bytes().to_vec(),
        }]);
        let d = v.design.expect("the site parses");
        let node = &d.effective_nodes()[0];
        RenderContext::new(&TemplateContext {
            node: node_context(&d, node),
            action: ActionValues::placeholder(),
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let mut t = Templates::new();
    if t.add("fuzz", src).is_ok() {
        let _ = t.render("fuzz", context());
    }
});
