//! The status endpoint's page for people: `GET /` (a summary and, while the edge is not enrolled or
//! the cloud refuses its credential, the enrolment form) and `POST /enrol` (the form: cloud address,
//! claim code, optional name), which enrols and switches the running daemon to the new identity.
//!
//! The form is refused from another origin (a browser on the LAN visiting a hostile page must not
//! enrol the edge elsewhere); the code is never logged nor shown back.

use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use edge_uplink::Uplink;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::enrol::{Claim, Enroller};
use crate::stats::UplinkStats;
use crate::status::StatusState;

/// What the status endpoint knows about the edge's cloud identity.
#[derive(Debug, Clone)]
pub struct CloudView {
    pub uplink: Uplink,
    /// `Some` when `cloud.enrolment` is configured.
    pub enroller: Option<Enroller>,
    /// URL, tenant and site from the configuration at start (after the enrolment file).
    pub configured: (String, Uuid, Uuid),
}

impl CloudView {
    /// The `cloud` object of `/status`.
    pub fn summary(&self, stats: &UplinkStats) -> Value {
        let current = self.enroller.as_ref().and_then(Enroller::current);
        let (url, tenant, site) = match &current {
            Some(c) => (c.url.clone(), c.tenant, c.site),
            None => self.configured.clone(),
        };
        let enrolled = self.uplink.is_enrolled();
        let state = if !enrolled {
            "not_enrolled"
        } else {
            match stats.state() {
                "" | "not_enrolled" => "unknown",
                s => s,
            }
        };
        json!({
            "enrolled": enrolled,
            "state": state,
            "url": (!url.is_empty()).then_some(url),
            "tenant": (!tenant.is_nil()).then_some(tenant),
            "site": (!site.is_nil()).then_some(site),
            "edge_id": current.as_ref().map(|c| c.edge_id),
            "name": current.as_ref().map(|c| c.name.clone()),
            "enrolled_at": current.as_ref().map(|c| c.enrolled_at.clone()),
        })
    }
}

pub fn routes() -> Router<StatusState> {
    Router::new().route("/", get(page)).route("/enrol", post(submit))
}

/// Minimal HTML escaping for text and attribute values.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn render(s: &StatusState, message: Option<(&str, &str)>) -> String {
    let cloud = s.cloud.summary(&s.stats.uplink);
    let text = |v: &Value| v.as_str().map_or_else(|| "—".to_owned(), esc);
    let state = cloud["state"].as_str().unwrap_or("unknown");
    let show_form = s.cloud.enroller.is_some() && matches!(state, "not_enrolled" | "unauthorized");
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Vigil edge</title>\
         <style>body{font-family:sans-serif;max-width:40em;margin:2em auto}th{text-align:left;padding-right:1em}\
         .error{color:#a00}.ok{color:#070}</style></head><body><h1>Vigil edge</h1>",
    );
    if let Some((class, text)) = message {
        out.push_str(&format!("<p class=\"{class}\" id=\"message\">{}</p>", esc(text)));
    }
    let explain = match state {
        "not_enrolled" => "not enrolled: events are kept on this box until it is enrolled",
        "unauthorized" => "the cloud refuses this edge's credential (revoked?): events are kept; re-enrol it",
        "unreachable" => "cloud unreachable: events are kept and sent when it returns",
        "ok" => "connected",
        _ => "starting",
    };
    out.push_str(&format!(
        "<table><tr><th>Cloud</th><td id=\"state\" data-state=\"{state}\">{}</td></tr>\
         <tr><th>Address</th><td>{}</td></tr><tr><th>Edge</th><td>{} ({})</td></tr>\
         <tr><th>Site</th><td>{}</td></tr><tr><th>Tenant</th><td>{}</td></tr>\
         <tr><th>Events waiting</th><td>{}</td></tr><tr><th>Events sent</th><td>{}</td></tr>\
         <tr><th>Version</th><td>{}</td></tr></table>",
        esc(explain),
        text(&cloud["url"]),
        text(&cloud["name"]),
        text(&cloud["edge_id"]),
        text(&cloud["site"]),
        text(&cloud["tenant"]),
        s.spool.len(),
        s.stats.uplink.events_acked.load(Relaxed),
        env!("CARGO_PKG_VERSION"),
    ));
    if show_form {
        out.push_str(
            "<h2>Enrol this edge</h2><form method=\"post\" action=\"/enrol\">\
             <p><label>Cloud address <input name=\"cloud\" type=\"url\" required placeholder=\"https://cloud.example.com\"></label></p>\
             <p><label>Claim code <input name=\"code\" required autocomplete=\"off\" placeholder=\"ABCD-EFGH-JKMN\"></label></p>\
             <p><label>Name (optional) <input name=\"name\"></label></p>\
             <p><button type=\"submit\">Enrol</button></p></form>",
        );
    }
    out.push_str("<p><a href=\"/status\">status (JSON)</a> · <a href=\"/metrics\">metrics</a></p></body></html>");
    out
}

async fn page(State(s): State<StatusState>) -> Html<String> {
    Html(render(&s, None))
}

#[derive(serde::Deserialize)]
struct EnrolForm {
    cloud: String,
    code: String,
    #[serde(default)]
    name: Option<String>,
}

/// Whether a form post comes from this page: no `Origin` (not a browser, e.g. curl), or an
/// `Origin` whose host is the `Host` the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

async fn submit(State(s): State<StatusState>, headers: HeaderMap, Form(form): Form<EnrolForm>) -> Response {
    if !same_origin(&headers) {
        tracing::warn!("Enrolment form posted from another origin; refused.");
        return (
            StatusCode::FORBIDDEN,
            Html(render(&s, Some(("error", "refused: the form must be sent from this page")))),
        )
            .into_response();
    }
    let Some(enroller) = &s.cloud.enroller else {
        let text = "enrolment is not configured (set cloud.enrolment and cloud.token_file)";
        return (StatusCode::CONFLICT, Html(render(&s, Some(("error", text))))).into_response();
    };
    let state = s.cloud.summary(&s.stats.uplink)["state"].as_str().unwrap_or_default().to_owned();
    if !matches!(state.as_str(), "not_enrolled" | "unauthorized") {
        let text = "this edge is enrolled and its credential works";
        return (StatusCode::CONFLICT, Html(render(&s, Some(("error", text))))).into_response();
    }
    let claim =
        Claim { url: form.cloud, code: form.code, name: form.name.filter(|n| !n.trim().is_empty()), ca_cert: None };
    match enroller.enrol(claim).await {
        Ok(done) => {
            s.stats.uplink.set_state("");
            let text = format!("enrolled as {} at site {}; events are being sent", done.name, done.site);
            (StatusCode::OK, Html(render(&s, Some(("ok", &text))))).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "Enrolment from the status page failed.");
            (StatusCode::BAD_REQUEST, Html(render(&s, Some(("error", &error))))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_same_origin_or_originless_posts_enrol() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8091"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8091"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
