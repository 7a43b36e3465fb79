//! Luna2's boot routes (`daemon/routes/boot.py`): iPXE scripts for booting
//! machines, from [`crate::services::boot_scripts`]. An iPXE client follows
//! only a 200, so whatever fails for a booting machine is a 200 with an
//! error script (Luna2's `human_friendly_errors`); input that is not a MAC
//! or a name (quotes, `;`, `../`, SQL, overlong) is a 400 `{"message"}` and
//! never reaches a script. `GET /boot/install/{node}` (the installer, a
//! shell script) needs a token.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::NodeToken;
use crate::api::http::routes::Route;
use crate::api::http::{AppState, HttpError};
use crate::services::boot_scripts::{Answer, InstallError, Menu};
use crate::services::LOAD_WAIT;

/// The media type of the scripts.
const TEXT: &str = "text/plain; charset=utf-8";

/// The boot routes.
pub fn routes() -> Vec<Route> {
    let r = |path, summary, handler| {
        let mut route = super::route("GET", path, summary, None, &[200], &[400], handler);
        route.produces = TEXT;
        route
    };
    let mut install = r(
        "/boot/install/{node}",
        "The node's installer (shell script); token: an operator's or the node's",
        get(install),
    );
    install.extra = &[400, 401, 403, 404];
    vec![
        r("/boot", "The full iPXE boot menu", get(menu_normal)),
        r("/boot/short", "The short iPXE boot menu", get(menu_short)),
        r(
            "/boot/disk",
            "The iPXE script booting the local disk",
            get(menu_disk),
        ),
        r(
            "/boot/search/mac/{mac}",
            "The iPXE script of the machine with this MAC (discovery when none has it)",
            get(search_mac),
        ),
        r(
            "/boot/search/{mac}",
            "The seed's path of /boot/search/mac/{mac}",
            get(search_mac),
        ),
        r(
            "/boot/manual/hostname/{node}/{mac}",
            "The iPXE script booting this node with this MAC",
            get(manual_mac),
        ),
        r(
            "/boot/manual/hostname/{node}",
            "The iPXE script booting this node with its boot MAC (the seed's path)",
            get(manual),
        ),
        r(
            "/boot/manual/group/{group}/{mac}",
            "The iPXE script booting the group's first node without a boot MAC",
            get(manual_group),
        ),
        install,
    ]
}

fn bad(message: String) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// A MAC as iPXE's `${net0/mac}` writes it: six colon-separated pairs of
/// hex digits, nothing else.
pub fn strict_mac(text: &str) -> Result<u64, HttpError> {
    let b = text.as_bytes();
    let ok = b.len() == 17
        && b.iter().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                *c == b':'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let key = ok
        .then(|| crate::inspection::mac_key(text))
        .flatten()
        .ok_or_else(|| bad("Invalid request: not a MAC address (aa:bb:cc:dd:ee:ff)".into()))?;
    Ok(key)
}

/// A node or group name a script may carry (`render::ipxe::name`).
pub fn strict_name(what: &str, text: &str) -> Result<(), HttpError> {
    if crate::render::ipxe::name(text) {
        Ok(())
    } else {
        Err(bad(format!(
            "Invalid request: the {what} name holds characters that are not allowed"
        )))
    }
}

fn script(a: Answer) -> Response {
    if a.error {
        tracing::info!("luna2 boot: answered an error script");
    }
    ([(header::CONTENT_TYPE, TEXT)], a.body).into_response()
}

async fn blocking(
    state: &AppState,
    f: impl FnOnce(&crate::services::boot_scripts::BootScriptService) -> Answer + Send + 'static,
) -> Response {
    state.boot.wait_ready(LOAD_WAIT).await;
    let scripts = state.boot_scripts.clone();
    match tokio::task::spawn_blocking(move || f(&scripts)).await {
        Ok(a) => script(a),
        Err(e) => script(
            state
                .boot_scripts
                .error("/boot", &format!("the boot script task failed: {e}")),
        ),
    }
}

async fn menu_of(state: AppState, menu: Menu) -> Response {
    if let Some(a) = state.boot_scripts.menu_in_memory(menu) {
        return script(a);
    }
    blocking(&state, move |s| s.menu(menu)).await
}

async fn menu_normal(State(state): State<AppState>) -> Response {
    menu_of(state, Menu::Normal).await
}

async fn menu_short(State(state): State<AppState>) -> Response {
    menu_of(state, Menu::Short).await
}

async fn menu_disk(State(state): State<AppState>) -> Response {
    menu_of(state, Menu::Disk).await
}

/// `GET /boot/search/mac/{mac}` (and the seed's `/boot/search/{mac}`).
async fn search_mac(
    State(state): State<AppState>,
    Path(mac): Path<String>,
) -> Result<Response, HttpError> {
    let mac = strict_mac(&mac)?;
    if let Some(a) = state.boot_scripts.by_mac_in_memory(mac) {
        return Ok(script(a));
    }
    Ok(blocking(&state, move |s| s.by_mac(mac)).await)
}

/// `GET /boot/manual/hostname/{node}/{mac}`.
async fn manual_mac(
    State(state): State<AppState>,
    Path((node, mac)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    strict_name("node", &node)?;
    let mac = strict_mac(&mac)?;
    Ok(blocking(&state, move |s| s.manual(&node, Some(mac))).await)
}

/// `GET /boot/manual/hostname/{node}` (the seed's path).
async fn manual(
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Response, HttpError> {
    strict_name("node", &node)?;
    Ok(blocking(&state, move |s| s.manual(&node, None)).await)
}

/// `GET /boot/manual/group/{group}/{mac}`.
async fn manual_group(
    State(state): State<AppState>,
    Path((group, mac)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    strict_name("group", &group)?;
    let mac = strict_mac(&mac)?;
    Ok(blocking(&state, move |s| s.manual_group(&group, mac)).await)
}

/// `GET /boot/install/{node}`: the installer with a fresh install-time
/// token of the node (`LUNA_TOKEN`), for an operator's token or the node's.
async fn install(
    token: NodeToken,
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Response, HttpError> {
    strict_name("node", &node)?;
    token.for_node(&node)?;
    state.boot.wait_ready(LOAD_WAIT).await;
    let scripts = state.boot_scripts.clone();
    let users = state.users.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let body = scripts.install(&node)?;
        let provision = users
            .tokens
            .issue_provision(&node, std::time::Duration::from_secs(3600));
        let mut text = format!("export LUNA_TOKEN='{provision}'\n").into_bytes();
        // The token line goes after the shebang line.
        let split = body.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut out = body[..split].to_vec();
        out.append(&mut text);
        out.extend_from_slice(&body[split..]);
        Ok::<_, InstallError>(out)
    })
    .await
    .map_err(|e| HttpError::internal(format!("install task failed: {e}")))?;
    match answer {
        Ok(body) => Ok(([(header::CONTENT_TYPE, TEXT)], body).into_response()),
        Err(InstallError::UnknownNode(n)) => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{n} not found"),
        )),
        Err(InstallError::Unrenderable(m)) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            m,
        )),
        Err(InstallError::Boot(e)) => Err(HttpError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_taken_in_ipxes_form_only() {
        assert!(strict_mac("52:54:00:aB:cd:ef").is_ok());
        for bad in [
            "52-54-00-ab-cd-ef",
            "525400abcdef",
            "52:54:00:ab:cd:ef:00",
            "52:54:00:ab:cd:eg",
            "x' OR '1'='1",
            "",
        ] {
            assert!(strict_mac(bad).is_err(), "{bad}");
        }
    }
}
