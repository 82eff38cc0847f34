//! `/api/auth/*`, the JWKS, and attacks on tokens.

use std::time::Duration;

use axum::http::{StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cloud_api::auth::Keys;
use cloud_store::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{
    PASSWORD, Reply, bare_request, create_user, fresh_state, json_request, login, provision, send, token_for,
};

fn data(reply: &Reply) -> Value {
    assert!(reply.status.is_success(), "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    let body = reply.json();
    assert_eq!(body["success"], true, "{body}");
    body["data"].clone()
}

async fn me(state: &cloud_api::AppState, token: &str) -> Reply {
    send(state, bare_request("GET", "/api/auth/me", Some(token))).await
}

#[tokio::test]
async fn login_me_refresh_logout() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let user = create_user(&state, p.tenant_id, "Alice@Example.com", Role::Security).await;

    // Email is case-insensitive; the wrong password and an unknown email look the same.
    let wrong = login(&state, "alice@example.com", "not the password at all").await;
    let wrong = wrong.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let unknown = login(&state, "bob@example.com", PASSWORD).await;
    assert_eq!(unknown.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED")["message"], wrong["message"]);

    let tokens = data(&login(&state, "ALICE@example.com", PASSWORD).await);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["user"]["id"], user.to_string());
    assert_eq!(tokens["user"]["role"], "security");
    assert!(tokens["user"].get("hashed_password").is_none());
    let access = tokens["access_token"].as_str().unwrap();

    // The token is an RS256 JWT whose kid is in the JWKS, and it verifies against the published key.
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwks = send(&state, bare_request("GET", "/.well-known/jwks.json", None)).await.json();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kid"].as_str(), header.kid.as_deref());
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    let key =
        jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["vigil-api"]);
    let claims = jsonwebtoken::decode::<Value>(access, &key, &validation).unwrap().claims;
    assert_eq!(claims["tid"], p.tenant_id.to_string());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);

    let who = data(&me(&state, access).await);
    assert_eq!(who["email"], "alice@example.com");

    // PUT /me: profile fields; a password change needs the current password.
    let update = json!({ "full_name": "Alice Liddell" });
    let updated = data(&send(&state, json_request("PUT", "/api/auth/me", Some(access), &update)).await);
    assert_eq!(updated["full_name"], "Alice Liddell");
    let change = json!({ "password": "a brand new password" });
    let error = send(&state, json_request("PUT", "/api/auth/me", Some(access), &change)).await;
    assert_eq!(error.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "current_password");

    // Refresh rotates: a new pair, and the old refresh token is spent.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let next = data(
        &send(&state, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": refresh }))).await,
    );
    let next_refresh = next["refresh_token"].as_str().unwrap();
    assert_ne!(next_refresh, refresh);
    assert!(me(&state, next["access_token"].as_str().unwrap()).await.status.is_success());

    // Logout revokes the session: its refresh token no longer works.
    let out =
        send(&state, json_request("POST", "/api/auth/logout", None, &json!({ "refresh_token": next_refresh }))).await;
    data(&out);
    let after =
        send(&state, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": next_refresh }))).await;
    after.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn replayed_refresh_token_revokes_the_whole_family() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    create_user(&state, p.tenant_id, "alice@example.com", Role::User).await;
    let first = data(&login(&state, "alice@example.com", PASSWORD).await)["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let state = state.clone();
        async move {
            send(&state, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": token }))).await
        }
    };
    // The legitimate client rotates twice.
    let second = data(&refresh(first.clone()).await)["refresh_token"].as_str().unwrap().to_owned();
    let third = data(&refresh(second.clone()).await)["refresh_token"].as_str().unwrap().to_owned();

    // A thief replays the first token: refused, and the family is revoked...
    let replay = refresh(first).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(replay["message"].as_str().unwrap().contains("revoked"), "{replay}");
    // ...so the legitimate client's current token is dead too and must log in again.
    refresh(third).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // Another login (another family) is unaffected.
    let other = data(&login(&state, "alice@example.com", PASSWORD).await)["refresh_token"].as_str().unwrap().to_owned();
    data(&refresh(other).await);
    // Garbage is just invalid.
    refresh("nope".into()).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn password_reset_through_the_outbox() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    create_user(&state, p.tenant_id, "alice@example.com", Role::Viewer).await;
    let old_session =
        data(&login(&state, "alice@example.com", PASSWORD).await)["refresh_token"].as_str().unwrap().to_owned();

    // Known and unknown emails get the same answer; only the known one queues a message.
    for email in ["alice@example.com", "nobody@example.com"] {
        let reply =
            send(&state, json_request("POST", "/api/auth/reset-password", None, &json!({ "email": email }))).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let outbox = state.store.pending_outbox(p.tenant_id).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!((outbox[0].kind.as_str(), outbox[0].recipient.as_str()), ("password_reset", "alice@example.com"));
    let token = outbox[0].payload["token"].as_str().unwrap().to_owned();

    let weak = json!({ "token": token, "new_password": "short" });
    let reply = send(&state, json_request("POST", "/api/auth/reset-password", None, &weak)).await;
    assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "new_password");

    let reset = json!({ "token": token, "new_password": "my new long password" });
    data(&send(&state, json_request("POST", "/api/auth/reset-password", None, &reset)).await);
    // Single use.
    let again = send(&state, json_request("POST", "/api/auth/reset-password", None, &reset)).await;
    assert_eq!(again.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "token");

    login(&state, "alice@example.com", PASSWORD).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    data(&login(&state, "alice@example.com", "my new long password").await);
    // Sessions from before the reset are revoked.
    let old =
        send(&state, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": old_session }))).await;
    old.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn brute_force_is_rate_limited_with_retry_after() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    create_user(&state, p.tenant_id, "alice@example.com", Role::Viewer).await;
    for attempt in 0..10 {
        let reply = login(&state, "alice@example.com", &format!("guess number {attempt}")).await;
        reply.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    // The 11th attempt in the minute is refused before the password is even checked, even the right one.
    let limited = login(&state, "alice@example.com", PASSWORD).await;
    let error = limited.error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry_after: u64 = limited.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error["details"]["retry_after_seconds"], retry_after);
    // Another account from the same client is not blocked by this one's budget.
    create_user(&state, p.tenant_id, "bob@example.com", Role::Viewer).await;
    data(&login(&state, "bob@example.com", PASSWORD).await);
}

#[tokio::test]
async fn register_is_for_admins_and_validates_fields() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let admin = token_for(&state, p.tenant_id, "admin@acme.test", Role::Admin).await;
    let viewer = token_for(&state, p.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let new_user = |email: &str, role: &str| json!({ "email": email, "username": email.split('@').next().unwrap(), "password": PASSWORD, "role": role });
    let register = |token: &str, body: Value| json_request("POST", "/api/auth/register", Some(token), &body);

    // No token: 401. Viewer: 403. Admin: 201.
    let anonymous =
        send(&state, json_request("POST", "/api/auth/register", None, &new_user("x@acme.test", "user"))).await;
    anonymous.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let denied = send(&state, register(&viewer, new_user("x@acme.test", "user"))).await;
    assert_eq!(denied.error(StatusCode::FORBIDDEN, "FORBIDDEN")["details"]["required_role"], "admin");
    let created = send(&state, register(&admin, new_user("sec@acme.test", "security"))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(data(&created)["tenant_id"], p.tenant_id.to_string());
    data(&login(&state, "sec@acme.test", PASSWORD).await);

    // An admin cannot mint a superuser.
    let up = send(&state, register(&admin, new_user("root@acme.test", "superuser"))).await;
    up.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    // Conflicts and validation errors name the field.
    let dup = send(&state, register(&admin, new_user("SEC@acme.test", "user"))).await;
    assert_eq!(dup.error(StatusCode::CONFLICT, "CONFLICT")["details"]["field"], "email");
    let cases = [
        (json!({ "email": "not-an-email", "username": "u", "password": PASSWORD, "role": "user" }), "email"),
        (json!({ "email": "u@acme.test", "username": "u", "password": "short", "role": "user" }), "password"),
        (json!({ "email": "u@acme.test", "username": "u", "password": PASSWORD, "role": "king" }), "role"),
        (json!({ "email": "u@acme.test", "username": "u", "password": PASSWORD }), "role"),
        (json!({ "email": "u@acme.test", "username": "u", "password": PASSWORD, "role": "user", "x": 1 }), "x"),
        (json!({ "email": "u@acme.test", "username": "", "password": PASSWORD, "role": "user" }), "username"),
        (
            json!({ "email": "u@acme.test", "username": "u", "password": PASSWORD, "role": "user", "site_ids": [Uuid::now_v7()] }),
            "site_ids",
        ),
    ];
    for (body, field) in cases {
        let reply = send(&state, register(&admin, body.clone())).await;
        assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], field, "{body}");
    }
}

/// Tokens an attacker could forge or replay; none may authenticate.
#[tokio::test]
async fn forged_expired_and_tampered_tokens_are_refused() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let valid = token_for(&state, p.tenant_id, "viewer@acme.test", Role::Viewer).await;
    assert!(me(&state, &valid).await.status.is_success());
    let keys = &state.auth.keys;
    let kid = keys.signer_kid().to_owned();
    let parts: Vec<&str> = valid.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let mut forged: Vec<(&str, String)> = Vec::new();

    // alg=none, with and without a signature.
    let none_header = b64(&json!({ "alg": "none", "typ": "JWT", "kid": kid }));
    forged.push(("alg none", format!("{none_header}.{}.", parts[1])));
    forged.push(("alg none with signature", format!("{none_header}.{}.{}", parts[1], parts[2])));

    // HS256 "signed" with the public key (algorithm confusion).
    let jwks = keys.jwks();
    let public_n = jwks["keys"][0]["n"].as_str().unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(&hs_header, &claims, &jsonwebtoken::EncodingKey::from_secret(public_n.as_bytes()))
        .unwrap();
    forged.push(("HS256 with the public key", hs));
    let hs_jwks = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwks["keys"][0].to_string().as_bytes()),
    )
    .unwrap();
    forged.push(("HS256 with the JWK", hs_jwks));
    // ... and with the public key as PEM (SubjectPublicKeyInfo), the classic confusion secret.
    let private_pem = state.store.signing_keys().await.unwrap()[0].private_pem.clone();
    let private_der =
        STANDARD.decode(private_pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()).unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&private_der).unwrap();
    let public_der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
        aws_lc_rs::signature::KeyPair::public_key(&pair),
    )
    .unwrap();
    let public_b64 = STANDARD.encode(public_der.as_ref());
    let lines: Vec<&str> = public_b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let public_pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
    let hs_pem =
        jsonwebtoken::encode(&hs_header, &claims, &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()))
            .unwrap();
    forged.push(("HS256 with the PEM public key", hs_pem));

    // Expired (beyond the leeway), signed with the real key.
    let user_id = Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap();
    let mut expired = Keys::claims(user_id, p.tenant_id, Role::Viewer, None, Uuid::now_v7(), Duration::from_secs(900));
    expired.iat -= 7200;
    expired.exp -= 7200;
    forged.push(("expired", keys.sign(&expired).unwrap()));

    // Tampered payload (viewer → superuser), original signature.
    let mut escalated = claims.clone();
    escalated["role"] = json!("superuser");
    forged.push(("tampered payload", format!("{}.{}.{}", parts[0], b64(&escalated), parts[2])));
    // Another tenant's id swapped in.
    let mut moved = claims.clone();
    moved["tid"] = json!(Uuid::now_v7());
    forged.push(("tampered tenant", format!("{}.{}.{}", parts[0], b64(&moved), parts[2])));

    // Signed by a key we never issued: under its own kid (unknown) and under ours (bad signature).
    let (other_kid, other_pem) = cloud_api::auth::tokens::generate_key().unwrap();
    let other = Keys::from_pems(&[(other_kid, other_pem.clone())]).unwrap();
    let mut good_claims =
        Keys::claims(user_id, p.tenant_id, Role::Admin, None, Uuid::now_v7(), Duration::from_secs(900));
    forged.push(("unknown kid", other.sign(&good_claims).unwrap()));
    let impostor = Keys::from_pems(&[(kid.clone(), other_pem)]).unwrap();
    forged.push(("our kid, foreign key", impostor.sign(&good_claims).unwrap()));
    // No kid at all.
    let mut no_kid_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    no_kid_header.kid = None;
    let pem = state.store.signing_keys().await.unwrap()[0].private_pem.clone();
    let ours = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    forged.push(("missing kid", jsonwebtoken::encode(&no_kid_header, &good_claims, &ours).unwrap()));
    // Wrong audience, signed with our real key.
    good_claims.aud = "someone-else".into();
    forged.push(("wrong audience", keys.sign(&good_claims).unwrap()));
    forged.push(("garbage", "a.b.c".into()));

    for (what, token) in forged {
        let reply = me(&state, &token).await;
        reply.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer", "{what}");
        // Nor do they work where an API key would.
        let events = send(&state, bare_request("GET", "/api/events", Some(&token))).await;
        assert_eq!(events.status, StatusCode::UNAUTHORIZED, "{what}");
    }
}

#[tokio::test]
async fn signing_keys_are_shared_through_the_database() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let token = token_for(&state, p.tenant_id, "viewer@acme.test", Role::Viewer).await;
    // A second replica on the same database loads the same key and accepts the token.
    let replica = cloud_api::AppState::build(state.store.clone(), crate::common::test_auth_config()).await.unwrap();
    assert_eq!(replica.auth.keys.signer_kid(), state.auth.keys.signer_kid());
    assert!(me(&replica, &token).await.status.is_success());
}

/// Password spraying (one guess each for many accounts) runs into the per-IP budget.
#[tokio::test]
async fn spraying_many_accounts_from_one_ip_is_limited_too() {
    let state = fresh_state().await;
    for n in 0..100 {
        let reply = login(&state, &format!("user{n}@example.com"), "Winter2026!!").await;
        reply.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    let limited = login(&state, "user100@example.com", "Winter2026!!").await;
    limited.error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

/// Behind a trusted proxy each client gets its own budget (by the last X-Forwarded-For entry);
/// without that setting the header is ignored, so clients cannot choose their bucket.
#[tokio::test]
async fn forwarded_for_is_used_only_when_trusted() {
    let attempt = |ip: &str| {
        axum::http::Request::post("/api/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .body(axum::body::Body::from(
                json!({ "email": "a@example.com", "password": "wrong password!!" }).to_string(),
            ))
            .unwrap()
    };
    let untrusted = fresh_state().await;
    for n in 0..10 {
        send(&untrusted, attempt(&format!("198.51.100.{n}"))).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    send(&untrusted, attempt("198.51.100.99")).await.error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");

    let store = fresh_state().await.store;
    let config = cloud_api::auth::AuthConfig { trust_forwarded_for: true, ..crate::common::test_auth_config() };
    let trusted = cloud_api::AppState::build(store, config).await.unwrap();
    for _ in 0..10 {
        send(&trusted, attempt("198.51.100.1")).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    send(&trusted, attempt("198.51.100.1")).await.error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    send(&trusted, attempt("198.51.100.2")).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}
