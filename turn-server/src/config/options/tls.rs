//! TLS: the certificate, key and CA files, the OpenSSL knobs rustls does not need, and
//! the protocol versions.

use std::path::PathBuf;

use rtc_auth::secret::Secret;

use super::Arg::{Flag, Required};
use super::Setter::{Bool, Custom, File, Text};
use super::{Spec, row};

/// Certificate files, OpenSSL settings and TLS versions.
pub(super) const TLS: &[Spec] = &[
    row(
        "cert",
        None,
        Required,
        "certificate chain PEM file (turn_server_cert.pem)",
        Custom(|t, v| {
            t.config.cert = PathBuf::from(v);
            Ok(())
        }),
    ),
    row(
        "pkey",
        None,
        Required,
        "private key PEM file (turn_server_pkey.pem)",
        Custom(|t, v| {
            t.config.pkey = PathBuf::from(v);
            Ok(())
        }),
    ),
    row(
        "pkey-pwd",
        None,
        Required,
        "private key password",
        Custom(|t, v| {
            t.config.pkey_pwd = Some(Secret::new(v));
            Ok(())
        }),
    ),
    row(
        "cipher-list",
        None,
        Required,
        "OpenSSL cipher list (accepted; rustls chooses)",
        Text(|c| &mut c.cipher_list),
    ),
    row(
        "dh-file",
        None,
        Required,
        "DH parameters file (accepted; rustls uses ECDHE)",
        File(|c| &mut c.dh_file),
    ),
    row(
        "CA-file",
        None,
        Required,
        "CA certificates for client certificates",
        File(|c| &mut c.ca_file),
    ),
    row(
        "ec-curve-name",
        None,
        Required,
        "ECDH curve (accepted; rustls chooses)",
        Text(|c| &mut c.ec_curve_name),
    ),
    row(
        "no-tlsv1_2",
        None,
        Flag,
        "TLS 1.3 only",
        Bool(|c| &mut c.no_tlsv1_2),
    ),
];
