//! Authentication (RFC 8489 §9.2): REST and static credentials, nonces, USERHASH, and the
//! session key that keeps an allocation alive past its credential's expiry.

use super::*;

#[test]
fn credential_failures() {
    let mut h = Harness::new(rest_config());
    // Wrong secret.
    let mut mallory = h.client("192.0.2.2:5000", "@mallory:example.org", UNIX + 3600);
    mallory.password = mint(
        &Secret::new("guess"),
        "@mallory:example.org",
        UNIX + 3600,
        ':',
    )
    .password;
    assert_eq!(
        code_of(&h.request(&mut mallory, Method::ALLOCATE, &[udp()])),
        Some(401)
    );
    // Expired credential.
    let mut late = h.client("192.0.2.3:5000", "@late:example.org", UNIX - 1);
    assert_eq!(
        code_of(&h.request(&mut late, Method::ALLOCATE, &[udp()])),
        Some(401)
    );
    // Malformed username.
    let mut odd = h.client("192.0.2.4:5000", "bad user", UNIX + 3600);
    assert_eq!(
        code_of(&h.request(&mut odd, Method::ALLOCATE, &[udp()])),
        Some(400)
    );
    // A nonce of our own format but forged.
    let mut bob = h.client("192.0.2.5:5000", "@bob:example.org", UNIX + 3600);
    bob.nonce = vec![b'0'; 32];
    let response = h.request(&mut bob, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&response).unwrap();
    assert_eq!(error_code(&message), Some(438));
    assert!(
        message.attr(AttrType::NONCE).is_some(),
        "438 carries a fresh nonce"
    );
    // Missing NONCE with MESSAGE-INTEGRITY: 400.
    let mut bytes = Vec::new();
    MessageWriter::new(
        &mut bytes,
        Method::ALLOCATE,
        Class::Request,
        TransactionId([3; 12]),
    )
    .attr(AttrType::USERNAME, bob.username.as_bytes())
    .attr(AttrType::REALM, REALM.as_bytes())
    .integrity(&[0; 16]);
    assert_eq!(code_of(&h.send(bob.tuple, &bytes).unwrap().1), Some(400));
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.server.stats().auth_failures >= 2);
}

#[test]
fn stale_nonce_then_retry() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let long = [udp(), (AttrType::LIFETIME, 3600u32.to_be_bytes().to_vec())];
    assert_eq!(
        lifetime_of(&h.request(&mut alice, Method::ALLOCATE, &long)),
        3600
    );
    h.advance(601);
    let response = h.request(&mut alice, Method::REFRESH, &[]);
    let message = Message::parse(&response).unwrap();
    assert_eq!(error_code(&message), Some(438));
    alice.nonce = message.attr(AttrType::NONCE).unwrap().to_vec();
    let response = h.request(&mut alice, Method::REFRESH, &[]);
    assert_eq!(code_of(&response), None, "fresh nonce accepted");
    assert_eq!(h.server.stats().stale_nonces, 1);
}

#[test]
fn expired_rest_credential_keeps_its_allocation_alive() {
    // coturn caches the session key: refreshes past the username's expiry still work.
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 60);
    h.allocate(&mut alice);
    h.advance(120);
    assert_eq!(code_of(&h.request(&mut alice, Method::REFRESH, &[])), None);
    // A new 5-tuple with the same expired credential is refused.
    let mut again = h.client("192.0.2.1:5001", "@alice:example.org", UNIX + 60);
    assert_eq!(
        code_of(&h.request(&mut again, Method::ALLOCATE, &[udp()])),
        Some(401)
    );
}

#[test]
fn static_users_and_no_auth() {
    let mut users = BTreeMap::new();
    users.insert(
        "bob".to_owned(),
        UserKeys::from_password("bob", REALM, "secret"),
    );
    let config = ServerConfig {
        credentials: Credentials::Users(users),
        ..rest_config()
    };
    let mut h = Harness::new(config);
    let mut bob = h.client("192.0.2.2:5000", "", UNIX);
    bob.username = "bob".into();
    bob.password = "secret".into();
    h.allocate(&mut bob);
    let mut eve = h.client("192.0.2.3:5000", "", UNIX);
    eve.username = "eve".into();
    eve.password = "secret".into();
    assert_eq!(
        code_of(&h.request(&mut eve, Method::ALLOCATE, &[udp()])),
        Some(401)
    );

    let mut open = Harness::new(ServerConfig {
        credentials: Credentials::None,
        ..rest_config()
    });
    let mut anyone = open.client("192.0.2.4:5000", "", UNIX);
    let response = open.unauthenticated(&mut anyone, Method::ALLOCATE, &[udp()]);
    assert_eq!(Message::parse(&response).unwrap().class(), Class::Success);
}

#[test]
fn userhash_for_static_users() {
    let mut users = BTreeMap::new();
    users.insert(
        "bob".to_owned(),
        UserKeys::from_password("bob", REALM, "secret"),
    );
    let mut h = Harness::new(ServerConfig {
        credentials: Credentials::Users(users),
        ..rest_config()
    });
    let mut bob = h.client("192.0.2.2:5000", "", UNIX);
    bob.username = "bob".into();
    bob.password = "secret".into();
    let challenge = h.unauthenticated(&mut bob, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&challenge).unwrap();
    assert!(
        message
            .attr(AttrType::NONCE)
            .unwrap()
            .starts_with(b"obMatJos2AAAD"),
        "username anonymity offered"
    );
    bob.nonce = message.attr(AttrType::NONCE).unwrap().to_vec();
    let offered = message
        .attr(AttrType::PASSWORD_ALGORITHMS)
        .unwrap()
        .to_vec();
    let request = rfc8489_request(&mut bob, Method::ALLOCATE, &[udp()], &offered, true);
    let (_, response) = h.send(bob.tuple, &request).unwrap();
    assert_eq!(Message::parse(&response).unwrap().class(), Class::Success);
    assert_eq!(h.server.allocation_count(), 1);
    let mut nobody = h.client("192.0.2.3:5000", "", UNIX);
    nobody.username = "nobody".into();
    nobody.password = "secret".into();
    nobody.nonce = bob.nonce.clone();
    nobody.tuple = tuple("192.0.2.2:5001");
    let request = rfc8489_request(&mut nobody, Method::ALLOCATE, &[udp()], &offered, true);
    assert_eq!(
        code_of(&h.send(nobody.tuple, &request).unwrap().1),
        Some(401)
    );
}
