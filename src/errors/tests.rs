use super::*;
use ErrorShape::*;

fn json(r: &Refusal, shape: ErrorShape) -> String {
    String::from_utf8(r.body(shape)).unwrap()
}

#[test]
fn status_table() {
    let scope = || Refusal::InsufficientScope {
        detail: "x",
        scope: None,
    };
    let nonce = |guard| Refusal::UseDpopNonce {
        nonce: "n".into(),
        guard,
    };
    let table: &[(Refusal, u16, u16)] = &[
        (Refusal::InvalidRequest("x"), 400, 400),
        (Refusal::InvalidClient { basic: false }, 400, 401),
        (Refusal::InvalidClient { basic: true }, 401, 401),
        (Refusal::ClientAuthentication("x"), 400, 401),
        (Refusal::UnauthorizedClient, 400, 401),
        (Refusal::ForeignToken, 400, 400),
        (Refusal::MayNotIntrospect, 403, 403),
        (Refusal::UnsupportedGrantType, 400, 400),
        (Refusal::InvalidScope, 400, 400),
        (Refusal::MethodNotAllowed, 405, 405),
        (Refusal::CorsRefused("x"), 403, 403),
        (Refusal::InvalidDpopProof("x"), 400, 400),
        (Refusal::DpopProofRefused("x"), 401, 401),
        (nonce(false), 400, 400),
        (nonce(true), 401, 401),
        (Refusal::ReplayUnchecked, 503, 503),
        (Refusal::Connect, 405, 405),
        (Refusal::PayloadTooLarge, 413, 413),
        (Refusal::RequestTimeout, 408, 408),
        (Refusal::UriTooLong, 414, 414),
        (Refusal::MissingToken, 401, 401),
        (Refusal::InvalidToken("x"), 401, 401),
        (scope(), 403, 403),
        (Refusal::NotFound, 404, 404),
        (Refusal::UntrustedDecisionPeer, 403, 403),
        (Refusal::TooManyRequests, 429, 429),
        (
            Refusal::TooManyFailures {
                retry_after_secs: 9,
            },
            429,
            429,
        ),
        (Refusal::BadGateway, 502, 502),
        (Refusal::GatewayTimeout, 504, 504),
        (Refusal::Internal, 500, 500),
    ];
    for (r, oauth, errors) in table {
        assert_eq!(r.status(OAuth).as_u16(), *oauth, "{r:?}");
        assert_eq!(r.status(Errors).as_u16(), *errors, "{r:?}");
    }
}

#[test]
fn seed_samples_are_rendered_exactly() {
    // seed 000-002: 400 {"error":"invalid_client"}
    assert_eq!(
        json(&Refusal::InvalidClient { basic: false }, OAuth),
        r#"{"error":"invalid_client"}"#
    );
    // seed 004: 400, 401 and 500 samples
    assert_eq!(
        json(&Refusal::InvalidRequest("x"), Errors),
        r#"{"errors":[{"title":"Bad Request","status":"400"}]}"#
    );
    assert_eq!(
        json(&Refusal::InvalidClient { basic: false }, Errors),
        r#"{"errors":[{"title":"Unauthorized","status":"401"}]}"#
    );
    assert_eq!(
        json(&Refusal::Internal, Errors),
        r#"{"errors":[{"title":"Internal Server Error","status":"500","detail":"there was a problem processing your request"}]}"#
    );
}

#[test]
fn challenges_follow_rfc6750() {
    assert_eq!(
        Refusal::MissingToken
            .challenge(OAuth, &Challenge::bearer("r"))
            .unwrap(),
        r#"Bearer realm="r""#
    );
    let c = Refusal::InvalidToken("token expired")
        .challenge(Errors, &Challenge::bearer("r"))
        .unwrap();
    assert_eq!(
        c,
        r#"Bearer realm="r", error="invalid_token", error_description="token expired""#
    );
    // RFC 9728 §5.1: where the resource's metadata is.
    let at = Challenge {
        resource_metadata: Some("https://gw/.well-known/oauth-protected-resource/api/"),
        ..Challenge::bearer("r")
    };
    let c = Refusal::MissingToken.challenge(OAuth, &at);
    assert_eq!(
        c.unwrap(),
        r#"Bearer realm="r", resource_metadata="https://gw/.well-known/oauth-protected-resource/api/""#
    );
    let c = Refusal::InsufficientScope {
        detail: "d",
        scope: Some("write".into()),
    }
    .challenge(OAuth, &Challenge::bearer("r"));
    assert!(
        c.unwrap()
            .ends_with(r#"error="insufficient_scope", error_description="d", scope="write""#)
    );
    assert_eq!(
        Refusal::InvalidClient { basic: false }.challenge(OAuth, &Challenge::bearer("r")),
        None
    );
    assert_eq!(
        Refusal::InvalidClient { basic: true }
            .challenge(OAuth, &Challenge::bearer("r"))
            .unwrap(),
        r#"Basic realm="r""#
    );
}

/// RFC 9449 §7.1: where both schemes are accepted, both challenges; a token error in
/// each, a proof error in DPoP's; a route that requires DPoP challenges with DPoP only.
#[test]
fn challenges_name_each_accepted_scheme() {
    let both = Challenge {
        dpop_algs: Some("ES256 EdDSA"),
        resource_metadata: Some("https://gw/m"),
        ..Challenge::bearer("r")
    };
    let dpop_only = Challenge {
        bearer: false,
        ..both
    };
    assert_eq!(
        Refusal::MissingToken.challenge(OAuth, &both).unwrap(),
        r#"Bearer realm="r", resource_metadata="https://gw/m", DPoP realm="r", algs="ES256 EdDSA", resource_metadata="https://gw/m""#
    );
    assert_eq!(
        Refusal::InvalidToken("t")
            .challenge(OAuth, &dpop_only)
            .unwrap(),
        r#"DPoP realm="r", algs="ES256 EdDSA", error="invalid_token", error_description="t", resource_metadata="https://gw/m""#
    );
    let c = Refusal::DpopProofRefused("p")
        .challenge(Errors, &both)
        .unwrap();
    assert_eq!(
        c,
        r#"Bearer realm="r", resource_metadata="https://gw/m", DPoP realm="r", algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="p", resource_metadata="https://gw/m""#
    );
    let nonce = Refusal::UseDpopNonce {
        nonce: "n".into(),
        guard: true,
    };
    assert!(
        nonce
            .challenge(OAuth, &dpop_only)
            .unwrap()
            .contains(r#"error="use_dpop_nonce""#)
    );
    let at_endpoint = Refusal::UseDpopNonce {
        nonce: "n".into(),
        guard: false,
    };
    assert_eq!(
        at_endpoint.challenge(OAuth, &both),
        None,
        "a 400 has no challenge"
    );
    // The errors shape names DPoP's codes, so that a client can act on them.
    assert_eq!(
        json(&at_endpoint, Errors),
        r#"{"errors":[{"title":"Bad Request","status":"400","code":"use_dpop_nonce","detail":"a DPoP nonce is required: sign the proof again with the nonce in DPoP-Nonce"}]}"#
    );
}
