//! The configuration API as the binary uses it, from outside the crate: load the seed
//! deployment's file, build the `--check-config` report against a machine that lacks its
//! addresses, and read the typed values the server needs.

use std::path::Path;

use turn_server::config::{
    Action, AuthMode, ConfigError, SearchPath, StaticHost, check_report, load_with,
};

fn seed() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/seed-turnserver.conf")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn seed_file_through_the_public_api() {
    let search = SearchPath::new(Vec::<&str>::new());
    let path = seed();
    let outcome = load_with(["--check-config", "-c", path.as_str()], &search);
    let loaded = match &outcome {
        Ok(loaded) => loaded,
        Err(e) => panic!("seed config must load: {e}"),
    };
    assert_eq!(loaded.action, Action::CheckConfig);
    assert_eq!(loaded.warnings.len(), 4);
    assert_eq!(loaded.config.auth_mode(), AuthMode::SharedSecret);
    assert_eq!(loaded.config.denied_peer_ips.entries.len(), 9);

    let host = StaticHost {
        addresses: vec!["127.0.0.1".parse().unwrap()],
        interfaces: vec!["lo".into()],
    };
    let report = check_report(&outcome, &host, &search);
    assert!(!report.passed());
    assert_eq!(report.errors, 2);
    let text = report.text.replace(&path, "seed");
    assert!(text.contains("error: seed:34: relay-ip: 62.122.185.165 is not an address"));
    assert!(text.contains("error: seed:33: relay-device: network interface \"eth0\""));
    assert!(text.contains("static-auth-secret=<redacted>"));
}

#[test]
fn bad_file_line_is_named() {
    let dir = std::env::temp_dir().join(format!("turn-config-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.conf");
    std::fs::write(&file, "realm=example.org\nmax-port=70000\n").unwrap();
    let search = SearchPath::new([dir.clone()]);
    match load_with(["-c", "bad.conf"], &search) {
        Err(ConfigError::Invalid { errors, .. }) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(
                errors[0].to_string(),
                format!(
                    "{}:2: max-port: port \"70000\" is not between 1 and 65535",
                    file.display()
                )
            );
        }
        other => panic!("expected an error naming the line, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
