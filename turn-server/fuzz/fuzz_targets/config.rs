//! The coturn configuration parser: arbitrary file bytes, with a few command-line
//! options, through parsing, coturn's passes, the cross-option checks, `--check-config`'s
//! report and the core configuration. Secrets must never show in the report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turn_server::config::{SearchPath, StaticHost, check_report, load_text};
use turn_server::startup::core_config::core_config;

/// Command-line options the first byte switches on, bit by bit: values the file also
/// sets, so command-line precedence and list merging run too.
const ARGS: [&str; 8] = [
    "--realm=cli.example",
    "--static-auth-secret=cli-secret-value",
    "--denied-peer-ip=10.0.0.0/8",
    "-X",
    "203.0.113.5/10.0.0.5",
    "--no-tls",
    "--user=carol:cli-password",
    "--check-config",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let mut args: Vec<&str> = Vec::new();
    for (bit, arg) in ARGS.iter().enumerate() {
        // "-X" takes the next entry as its value: both or neither.
        let on = match bit {
            3 | 4 => selector & 0x08 != 0,
            _ => selector >> bit & 1 == 1,
        };
        if on {
            args.push(arg);
        }
    }
    let outcome = load_text(text, args);
    let host = StaticHost {
        addresses: vec!["127.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()],
        interfaces: vec!["lo".to_owned()],
    };
    let report = check_report(&outcome, &host, &SearchPath::new(Vec::<&str>::new()));
    // The effective configuration shows secrets, passwords and keys only as <redacted>.
    for line in report.text.lines() {
        for key in ["static-auth-secret=", "pkey-pwd="] {
            if let Some(value) = line.strip_prefix(key) {
                assert_eq!(value, "<redacted>", "{line}");
            }
        }
        if let Some(user) = line.strip_prefix("user=") {
            assert!(
                user.ends_with(":<redacted>") || user.ends_with(":0x<redacted>"),
                "{line}"
            );
        }
    }
    if let Ok(loaded) = &outcome {
        let core = core_config(&loaded.config, None, &host.addresses);
        for peer in [
            "10.0.0.5:22",
            "10.0.0.5:50000",
            "[::ffff:127.0.0.1]:80",
            "8.8.8.8:53",
        ] {
            let _ = core.policy.check(peer.parse().unwrap());
        }
        let _ = loaded.config.render();
    }
});
