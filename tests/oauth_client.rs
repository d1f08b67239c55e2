//! A real OAuth client library against the gateway, starting from discovery: Python's authlib
//! (Debian's python3-authlib, installed by `scripts/test`) runs tests/oauth_client.py.

mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_discovers_gets_a_token_introspects_and_revokes() {
    let probe = Command::new(PYTHON)
        .args(["-c", "import authlib, requests"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{PYTHON} with authlib and requests is needed: run scripts/test, which installs \
         python3-authlib and python3-requests ({probe:?})"
    );
    let (up, _) = spawn_upstream().await;
    let toml = config_with(up, |t| {
        let mut entry = client_entry("inspector", READER_SECRET, &["backoffice"], &[]);
        let e = entry.as_table_mut().unwrap();
        e.insert("introspect".into(), true.into());
        clients_of(t).push(entry);
    });
    let gw = spawn_gateway_toml(&toml).await;
    let ca = gw.dir.path().join("test-ca.pem");
    std::fs::write(&ca, &gw.ca_pem).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oauth_client.py");
    let base = gw.url("");
    let args: Vec<String> = [
        script,
        base.as_str(),
        ca.to_str().unwrap(),
        "backoffice-app",
        SECRET,
        "inspector",
        READER_SECRET,
        "/admin/echo",
    ]
    .map(str::to_owned)
    .to_vec();
    let (ok, stdout, stderr) = python(args).await;
    assert!(ok, "authlib: {stdout}{stderr}");
    assert_eq!(stdout.trim(), "ok");
}
