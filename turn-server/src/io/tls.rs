//! TLS for `tls-listening-port`: rustls with TLS 1.2 and 1.3 only (1.3 only with
//! `no-tlsv1_2`), certificates from coturn's `cert`/`pkey` PEM files, reloadable without
//! a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration could not be built; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("certificate {} and key {}: {source}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

/// Where the certificate and key live (already resolved with coturn's search path).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// `cert`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `pkey`: the private key (PKCS#8, PKCS#1 or SEC1; not encrypted).
    pub key: PathBuf,
    /// `no-tlsv1_2`: offer TLS 1.3 only.
    pub tls13_only: bool,
}

impl TlsFiles {
    /// Reads both files and builds a server configuration.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain = read_chain(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|error| TlsError::File {
            path: self.key.clone(),
            reason: format!(
                "no usable private key ({error}); encrypted keys (pkey-pwd) are not supported"
            ),
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|source| self.pair_error(source))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|source| self.pair_error(source))?;
        Ok(Arc::new(config))
    }

    fn pair_error(&self, source: rustls::Error) -> TlsError {
        TlsError::Pair {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        }
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("bad certificate: {e}")))?;
    if chain.is_empty() {
        return Err(error("no certificate in the file".to_owned()));
    }
    Ok(chain)
}
