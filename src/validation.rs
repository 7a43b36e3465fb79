//! Full validation of a design: `design`'s stages (parse, schema, typing,
//! semantic rules), then `render`'s template checks (SW392, SW393), in one
//! list sorted as always (file, line, code). Composed here, where both are
//! visible, so that `design` does not depend on `render`.

use crate::design::{self, DesignFile, Limits, Validation, ValidationCache};

/// Runs every stage over a design's files. Never panics.
pub fn validate(files: &[DesignFile]) -> Validation {
    validate_with(files, None, &Limits::default())
}

/// [`validate`] with byte caps other than the defaults.
pub fn validate_within(files: &[DesignFile], limits: &Limits) -> Validation {
    validate_with(files, None, limits)
}

/// [`validate`], reusing the parse, schema and typing results of every
/// document unchanged since the validation that filled `cache` (see
/// [`design::validate_documents`]). Gives the same result as [`validate`].
pub fn validate_cached(files: &[DesignFile], cache: &mut ValidationCache) -> Validation {
    let limits = cache.limits();
    validate_with(files, Some(cache), &limits)
}

fn validate_with(
    files: &[DesignFile],
    cache: Option<&mut ValidationCache>,
    limits: &Limits,
) -> Validation {
    let (mut v, rules_ran) = design::validate_documents(files, cache, limits);
    if rules_ran {
        if let Some(d) = &v.design {
            let more = crate::render::check::check(d);
            if !more.is_empty() {
                v.messages.extend(more);
                // Stable: messages of one (file, line, code) keep the order
                // their stage gave them, as when all ran in one list.
                design::sort_messages(&mut v.messages);
            }
        }
    }
    v
}
