//! The HTTP/2 listener's conformance, in h2spec's manner: tests/h2_conformance.py (Debian's
//! python3-hpack, installed by `scripts/test`; h2spec itself is not packaged for Debian, PyPI
//! or npm) sends 52 cases of malformed and well-formed frames over TLS, named by h2spec's
//! sections, and checks what RFC 9113 requires of each: the refusal and its error code, or
//! the answer. Nine are refused with PROTOCOL_ERROR where the RFC names a finer code
//! (FRAME_SIZE_ERROR, COMPRESSION_ERROR, STREAM_CLOSED, FLOW_CONTROL_ERROR): the h2 crate
//! maps those frame errors so; the script reports them as deviations and fails on anything
//! else (a malformed input answered, an unanswered one, another code). The well-formed cases
//! go through the guard and both forwarding paths, several streams in flight.

mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http2_listener_passes_the_conformance_cases() {
    let probe = Command::new(PYTHON).args(["-c", "import hpack"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{PYTHON} with hpack is needed: run scripts/test, which installs python3-hpack ({probe:?})"
    );
    let (up, _) = spawn_upstream().await;
    let gw = spawn_gateway(up, "").await;
    let token = gw.token("backoffice-app", SECRET).await;
    let ca = gw.dir.path().join("test-ca.pem");
    std::fs::write(&ca, &gw.ca_pem).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2_conformance.py");
    let args: Vec<String> = vec![
        script.into(),
        gw.addr.ip().to_string(),
        gw.addr.port().to_string(),
        ca.to_str().unwrap().into(),
        token,
        "/admin/echo".into(),
    ];
    let (ok, stdout, stderr) = python(args).await;
    println!("{stdout}");
    assert!(ok, "conformance cases:\n{stdout}{stderr}");
    assert_eq!(stdout.lines().last(), Some("ok"), "{stdout}");
}
