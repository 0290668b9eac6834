//! The HTTPS client with extra trusted roots (`--ca-bundle` / `AWS_CA_BUNDLE`).
//!
//! The AWS SDK for Rust does not read `AWS_CA_BUNDLE` itself (the CLI and the Python and Go SDKs
//! do); this module gives it the same meaning: a PEM file of CA certificates trusted in addition
//! to the system's roots, for the API Gateway endpoint and for the credential providers (STS,
//! SSO, the container endpoint) alike.
//!
//! The client is aws-smithy-http-client's hyper client over rustls with aws-lc-rs, the same
//! stack as the SDK's default client (never ring).

use std::path::{Path, PathBuf};

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::AwsSetupError;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The PEM blocks of `pem` that hold a certificate usable as a trust anchor, and how many were
/// skipped as unusable. (aws-smithy-http-client panics on a certificate it cannot parse, so
/// each is checked here first.)
pub(crate) fn usable_certificates(pem: &str) -> (Vec<String>, usize) {
    let mut usable = Vec::new();
    let mut skipped = 0;
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            skipped += 1;
            break;
        };
        let end = start + len + END.len();
        let block = &rest[start..end];
        rest = &rest[end..];
        let ok = CertificateDer::from_pem_slice(block.as_bytes())
            .ok()
            .is_some_and(|der| rustls::RootCertStore::empty().add(der).is_ok());
        if ok {
            usable.push(format!("{block}\n"));
        } else {
            skipped += 1;
        }
    }
    (usable, skipped)
}

/// Reads a CA bundle; an error when it cannot be read or holds no usable certificate.
pub(crate) fn read_ca_bundle(path: &Path) -> Result<Vec<String>, AwsSetupError> {
    let err = |message: String| AwsSetupError::CaBundle {
        path: PathBuf::from(path),
        message,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let (usable, skipped) = usable_certificates(&pem);
    if usable.is_empty() {
        return Err(err(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) could be read".into(),
        ));
    }
    if skipped > 0 {
        tracing::warn!(
            path = %path.display(),
            skipped,
            used = usable.len(),
            "some certificates of the CA bundle could not be parsed and are ignored"
        );
    }
    Ok(usable)
}

/// An HTTPS client trusting the system's roots plus `certificates` (PEM blocks).
pub(crate) fn https_client_with_roots(
    certificates: Vec<String>,
) -> Result<SharedHttpClient, AwsSetupError> {
    let mut store = TrustStore::default(); // the system's roots, as the default client
    for cert in certificates {
        store.add_pem_certificate(cert.into_bytes());
    }
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| AwsSetupError::Tls(e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUQ5ri+stlg0isM+eQkqVNwkav9EwwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWYXBpZ3ctb3BlcmF0b3IgdGVzdCBDQTAgFw0yNjExMjUwMjI5
NTlaGA8yMTI2MTEwMTAyMjk1OVowITEfMB0GA1UEAwwWYXBpZ3ctb3BlcmF0b3Ig
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLfmIs6vE8iJf++R0Bgk
OWje2DKcZA68tmkFDWnWYY82h6Nq2ouRetMS7QAK2BqezSFgfvvXkUEMBPbPJmgL
bcujUzBRMB0GA1UdDgQWBBRlT4nhpaf+lsie5fQs6PcjPRXBmzAfBgNVHSMEGDAW
gBRlT4nhpaf+lsie5fQs6PcjPRXBmzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0gAMEUCIQDQZjeo04jF2K39JP/oXBIYKHik/zMjZMCFzF0eaUAE6AIgJcnh
3knbiEaUeJYdCLA5Z1fKIiU5hPqv8+wDrCjXtk0=
-----END CERTIFICATE-----
";

    #[test]
    fn bundles_keep_good_certificates_and_skip_bad_ones() {
        let bundle = format!(
            "# comment\n{TEST_CA}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{TEST_CA}"
        );
        let (usable, skipped) = usable_certificates(&bundle);
        assert_eq!(usable.len(), 2);
        assert_eq!(skipped, 1);
        assert_eq!(usable_certificates("nothing here"), (vec![], 0));
    }

    #[test]
    fn a_bundle_without_certificates_is_an_error() {
        let dir = std::env::temp_dir().join(format!("apigw-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certs").unwrap();
        let e = read_ca_bundle(&empty).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let missing = read_ca_bundle(&dir.join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("missing.pem"), "{missing}");
        let good = dir.join("good.pem");
        std::fs::write(&good, TEST_CA).unwrap();
        let certs = read_ca_bundle(&good).unwrap();
        assert_eq!(certs.len(), 1);
        https_client_with_roots(certs).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
