//! Semantic stage (codes `SW3nn`): cross-document rules over a typed design.
//!
//! One file per rule family. A rule never panics and never stops the others;
//! each message names the document and the line of the offending field.
//! Code ranges: 301–319 documents and references, 320–344 networks,
//! 345–349 node identity, 350–364 storage, 365–374 platform and hardware,
//! 375–379 out-of-band, 380–399 boot actions. docs/validation.md has a
//! section per code.

use super::effective::EffectiveNode;
use super::message::Message;
use super::Design;

pub mod identity;
pub mod network;
pub mod references;

/// What every rule sees: the design and its compiled nodes.
pub struct Ctx<'a> {
    pub design: &'a Design,
    pub nodes: &'a [std::sync::Arc<EffectiveNode>],
}

impl<'a> Ctx<'a> {
    /// Compiles the nodes once for all rules.
    pub fn new(design: &'a Design) -> Self {
        Ctx {
            nodes: design.effective_nodes(),
            design,
        }
    }
}

/// Runs every rule family.
pub fn check(design: &Design) -> Vec<Message> {
    let ctx = Ctx::new(design);
    let mut out = Vec::new();
    for family in FAMILIES {
        family(&ctx, &mut out);
    }
    out
}

type Family = fn(&Ctx, &mut Vec<Message>);

const FAMILIES: &[Family] = &[
    references::check,
    network::check,
    identity::check,
    storage::check,
    platform::check,
    oob::check,
    bootaction::check,
];

pub mod bootaction;
pub mod oob;
pub mod platform;
pub mod storage;
