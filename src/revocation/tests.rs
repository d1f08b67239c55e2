use super::*;
use crate::clients::{Client, Grant};
use std::sync::atomic::Ordering;

fn signed(client: &str, jti: &str, iat: u64) -> Signed {
    Signed::new(
        "k".into(),
        client,
        "read",
        Some(jti),
        ["store"],
        (Grant::ClientCredentials, iat + 3600, Some(iat)),
    )
    .unwrap()
}

fn token(jti: &str, client: &str, until: u64) -> Revocation {
    Revocation::Token {
        jti: jti.into(),
        client: client.into(),
        until,
    }
}

fn client_before(client: &str, before: u64) -> Revocation {
    Revocation::Client {
        client: client.into(),
        issued_before: before,
        until: before + 86_400,
    }
}

#[test]
fn a_revoked_jti_is_refused_and_others_are_not() {
    let r = Revocations::open(None, 1_000).unwrap();
    assert!(!r.is_revoked(&signed("c1", "a", 900)));
    assert_eq!(r.add(&[token("a", "c1", 5_000)], 1_000).unwrap(), 1);
    assert!(r.is_revoked(&signed("c1", "a", 900)));
    assert!(!r.is_revoked(&signed("c1", "b", 900)));
    assert_eq!(r.add(&[token("a", "c1", 5_000)], 1_000).unwrap(), 0, "once");
    assert_eq!(
        r.add(&[token("old", "c1", 999)], 1_000).unwrap(),
        0,
        "expired"
    );
}

#[test]
fn issued_before_refuses_older_tokens_only_and_never_moves_back() {
    let r = Revocations::open(None, 1_000).unwrap();
    r.add(&[client_before("c1", 500)], 1_000).unwrap();
    assert!(r.is_revoked(&signed("c1", "a", 499)));
    assert!(
        !r.is_revoked(&signed("c1", "b", 500)),
        "issued at the instant"
    );
    assert!(!r.is_revoked(&signed("c2", "c", 1)), "another client");
    assert_eq!(r.add(&[client_before("c1", 400)], 1_000).unwrap(), 0);
    assert!(
        r.is_revoked(&signed("c1", "a", 499)),
        "an earlier instant revokes nothing back"
    );
    assert_eq!(r.add(&[client_before("c1", 700)], 1_000).unwrap(), 1);
    assert!(r.is_revoked(&signed("c1", "b", 600)));
}

#[test]
fn revocations_survive_a_restart_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let r = Revocations::open(Some(dir.path()), 1_000).unwrap();
    r.add(&[token("a", "c1", 5_000), client_before("c2", 800)], 1_000)
        .unwrap();
    r.add(&[token("short", "c1", 2_000)], 1_000).unwrap();
    drop(r);
    let r = Revocations::open(Some(dir.path()), 1_500).unwrap();
    assert!(r.is_revoked(&signed("c1", "a", 900)));
    assert!(r.is_revoked(&signed("c2", "x", 700)));
    assert!(r.is_revoked(&signed("c1", "short", 900)));
    drop(r);
    let r = Revocations::open(Some(dir.path()), 3_000).unwrap();
    assert!(
        !r.is_revoked(&signed("c1", "short", 900)),
        "expired entries go"
    );
    assert_eq!(r.len(), 2);
    let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
    assert_eq!(text.lines().count(), 2, "compacted at start-up: {text}");
}

#[test]
fn a_damaged_file_keeps_every_readable_entry() {
    let dir = tempfile::tempdir().unwrap();
    let r = Revocations::open(Some(dir.path()), 1_000).unwrap();
    r.add(&[token("a", "c1", 5_000)], 1_000).unwrap();
    r.add(&[token("b", "c1", 5_000)], 1_000).unwrap();
    drop(r);
    let path = dir.path().join(FILE_NAME);
    let mut text = std::fs::read_to_string(&path).unwrap();
    // A garbage line in the middle, then a write cut short at the end.
    text.insert_str(text.find('\n').unwrap() + 1, "\u{0}garbage\n");
    text.push_str(r#"{"kind":"token","jti":"c","cli"#);
    std::fs::write(&path, &text).unwrap();

    let r = Revocations::open(Some(dir.path()), 1_000).unwrap();
    assert_eq!(r.damaged_lines.load(Ordering::Relaxed), 2);
    assert!(r.is_revoked(&signed("c1", "a", 900)), "before the damage");
    assert!(r.is_revoked(&signed("c1", "b", 900)), "after the damage");
    assert_eq!(
        std::fs::read(dir.path().join("revocations.jsonl.damaged")).unwrap(),
        text.as_bytes(),
        "the damaged file is kept aside"
    );
    r.add(&[token("d", "c1", 5_000)], 1_000).unwrap();
    drop(r);
    let r = Revocations::open(Some(dir.path()), 1_000).unwrap();
    assert_eq!(
        r.damaged_lines.load(Ordering::Relaxed),
        0,
        "rewritten clean"
    );
    assert_eq!(r.len(), 3);
}

#[test]
fn a_cut_last_line_does_not_swallow_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    // A complete entry whose newline never reached the disk.
    std::fs::write(
        &path,
        r#"{"kind":"token","jti":"a","client":"c1","until":5000}"#,
    )
    .unwrap();
    let r = Revocations::open(Some(dir.path()), 1_000).unwrap();
    r.add(&[token("b", "c1", 5_000)], 1_000).unwrap();
    drop(r);
    let r = Revocations::open(Some(dir.path()), 1_000).unwrap();
    assert_eq!(r.damaged_lines.load(Ordering::Relaxed), 0);
    assert_eq!(r.len(), 2);
}

#[test]
fn the_file_is_compacted_as_entries_expire() {
    let dir = tempfile::tempdir().unwrap();
    let r = Revocations::open(Some(dir.path()), 0).unwrap();
    for i in 0..200u64 {
        // Each entry outlives the next add by one second only.
        r.add(&[token(&format!("j{i}"), "c1", i + 1)], i).unwrap();
    }
    let lines = std::fs::read_to_string(dir.path().join(FILE_NAME))
        .unwrap()
        .lines()
        .count();
    assert!(lines <= 70, "{lines} lines for 2 entries in force");
    assert!(r.len() <= 2);
}

#[test]
fn config_instants_are_added_with_their_expiry() {
    let mut clients = Clients::default();
    let mut c = Client::with_secret("c1", "s", &["store"], &["read"]).unwrap();
    c.revoke_issued_before = Some(500);
    clients.insert(c);
    let r = Revocations::open(None, 1_000).unwrap();
    r.apply_config(&clients, 600, 1_000);
    assert!(r.is_revoked(&signed("c1", "a", 499)));
    let r = Revocations::open(None, 1_000).unwrap();
    r.apply_config(&clients, 400, 1_000);
    assert!(
        r.is_empty(),
        "every token before it has expired: nothing to add"
    );
}
