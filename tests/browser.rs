//! The demo storefront in a real browser (headless Chromium): a page on one loopback origin
//! gets an implicit token from the gateway on another and lists the demo API's live products;
//! the same page from an origin the gateway does not allow cannot read it (the browser's CORS
//! check fails the fetch); a page whose token was revoked reads the 401's `WWW-Authenticate`.

mod support;

#[path = "support/browser.rs"]
mod browser;

use tokio::net::TcpListener;

use support::*;

#[tokio::test]
async fn a_storefront_page_reads_the_api_across_origins_only_where_allowed() {
    let demo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = demo.local_addr().unwrap();
    tokio::spawn(storegate::demo::serve(demo));
    let allowed = format!("http://127.0.0.1:{}", up.port());
    let extra = format!(
        "\n[[routes]]\nprefix = \"/api/\"\nupstream = \"http://{up}\"\napi = \"storefront\"\n\n[cors]\nallowed_origins = [\"{allowed}\"]\n"
    );
    let gw = spawn_gateway(up, &extra).await;
    let page = |origin: &str, more: &str| {
        format!(
            "{origin}/storefront?gateway=https://127.0.0.1:{}&client=public-key{more}",
            gw.addr.port()
        )
    };
    let result =
        "return document.body.dataset.result ? JSON.parse(document.body.dataset.result) : null";
    let browser = browser::Browser::start().await;

    browser.goto(&page(&allowed, "")).await;
    let listed = browser.wait_for(result).await;
    assert_eq!(listed["state"], "listed", "{listed}");
    assert_eq!(
        listed["products"],
        serde_json::json!(["Black T-shirt (M)", "White mug"]),
        "the live products, as an implicit token sees them"
    );

    // Another origin (the same server, named otherwise): the browser refuses the page the
    // gateway's answer, and says no more than that.
    let elsewhere = format!("http://localhost:{}", up.port());
    browser.goto(&page(&elsewhere, "")).await;
    let refused = browser.wait_for(result).await;
    assert_eq!(refused["state"], "failed", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("TypeError")),
        "{refused}"
    );

    browser.goto(&page(&allowed, "&revoke=1")).await;
    let revoked = browser.wait_for(result).await;
    assert_eq!(revoked["state"], "refused", "{revoked}");
    assert_eq!(revoked["status"], 401);
    let challenge = revoked["challenge"].as_str().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("invalid_token"),
        "the page reads WWW-Authenticate: {revoked}"
    );
    browser.quit().await;
}
