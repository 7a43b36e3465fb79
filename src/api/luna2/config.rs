//! Luna2's config reads (`daemon/routes/config_*.py`): the site as Luna2
//! config, computed from the applied design. Every route needs an
//! operator's token ([`super::auth::Token`]).

use crate::api::http::routes::Route;

/// The config read routes.
pub fn routes() -> Vec<Route> {
    Vec::new()
}
