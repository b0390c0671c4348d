//! A throwaway public-key infrastructure for the HTTPS tests, made once per test
//! binary with the `openssl` CLI: a CA, a server certificate it signed for
//! 127.0.0.1, a client certificate it signed for mutual TLS, and an unrelated
//! "wrong" CA with a server certificate of its own for the same address, to see
//! a client refuse a server it has no reason to trust.
//!
//! Keys are ECDSA P-256 (fast to make, accepted by rustls). Server certificates
//! carry `subjectAltName = IP:127.0.0.1, DNS:localhost`: rustls ignores the
//! common name and refuses a certificate without a SAN. The configuration of
//! every `openssl` call is written here, so the system's `openssl.cnf` adds
//! nothing. Layout, every file 0644 (it is a test, and nginx must read them):
//!
//! ```text
//! /var/lib/wpkgsync-tests/<pid>/pki/
//!     ca.pem ca.key                      the CA the tests trust
//!     server.pem server.key              127.0.0.1, signed by the CA
//!     client.pem client.key client-identity.pem   clientAuth, signed by the CA;
//!                                        the identity is cert then PKCS#8 key
//!     wrong-ca.pem wrong-ca.key          a CA nobody trusts
//!     wrong-server.pem wrong-server.key  127.0.0.1, signed by the wrong CA
//! ```

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::run::Command;
use super::workspace;

/// Certificates last this long; the clock tests move time by days, not years.
const DAYS: &str = "3650";

/// The files of the test PKI.
pub(crate) struct TestPki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_identity: PathBuf,
    wrong_ca: PathBuf,
    wrong_server_cert: PathBuf,
    wrong_server_key: PathBuf,
}

impl TestPki {
    /// The PKI shared by every test of this binary, made on first use (its folder
    /// goes with the process's workspace).
    pub(crate) fn shared() -> &'static TestPki {
        static SHARED: OnceLock<TestPki> = OnceLock::new();
        SHARED.get_or_init(|| TestPki::make(&workspace::folder("pki")))
    }

    fn make(dir: &Path) -> TestPki {
        let ca = dir.join("ca.pem");
        let wrong_ca = dir.join("wrong-ca.pem");
        make_ca(dir, "ca", "wpkgsync test CA");
        make_ca(dir, "wrong-ca", "wpkgsync wrong CA");
        let server_ext = "basicConstraints = critical, CA:FALSE\n\
                          keyUsage = critical, digitalSignature\n\
                          extendedKeyUsage = serverAuth\n\
                          subjectAltName = IP:127.0.0.1, DNS:localhost\n";
        let client_ext = "basicConstraints = critical, CA:FALSE\n\
                          keyUsage = critical, digitalSignature\n\
                          extendedKeyUsage = clientAuth\n";
        make_leaf(dir, "server", "127.0.0.1", "ca", server_ext, 2);
        make_leaf(dir, "wrong-server", "127.0.0.1", "wrong-ca", server_ext, 3);
        make_leaf(dir, "client", "wpkgsync test client", "ca", client_ext, 4);

        let client_identity = dir.join("client-identity.pem");
        let mut identity = read(&dir.join("client.pem"));
        identity.push_str(&read(&dir.join("client.key")));
        fs::write(&client_identity, identity)
            .unwrap_or_else(|e| panic!("write {client_identity:?}: {e}"));

        for entry in fs::read_dir(dir).expect("list the PKI folder").flatten() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644))
                .unwrap_or_else(|e| panic!("chmod {:?}: {e}", entry.path()));
        }
        TestPki {
            ca,
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_identity,
            wrong_ca,
            wrong_server_cert: dir.join("wrong-server.pem"),
            wrong_server_key: dir.join("wrong-server.key"),
        }
    }

    /// The CA certificate (PEM) that signed the server and client certificates.
    pub(crate) fn ca_pem(&self) -> &Path {
        &self.ca
    }

    /// The server certificate for 127.0.0.1 and localhost, signed by the CA.
    pub(crate) fn server_cert(&self) -> &Path {
        &self.server_cert
    }

    /// The server certificate's private key (PKCS#8 PEM).
    pub(crate) fn server_key(&self) -> &Path {
        &self.server_key
    }

    /// The client certificate and then its PKCS#8 key in one PEM file, as
    /// `reqwest::Identity::from_pem` reads it.
    pub(crate) fn client_identity_pem(&self) -> &Path {
        &self.client_identity
    }

    /// A CA certificate unrelated to [`Self::ca_pem`].
    pub(crate) fn wrong_ca_pem(&self) -> &Path {
        &self.wrong_ca
    }

    /// A server certificate for 127.0.0.1 signed by the wrong CA.
    pub(crate) fn wrong_server_cert(&self) -> &Path {
        &self.wrong_server_cert
    }

    /// The wrong server certificate's private key.
    pub(crate) fn wrong_server_key(&self) -> &Path {
        &self.wrong_server_key
    }
}

/// A P-256 private key in PKCS#8 PEM at `path`.
fn make_key(path: &Path) {
    Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .arg("-out")
        .arg(path)
        .run()
        .assert_success();
}

/// A self-signed CA `<name>.pem` with its key `<name>.key`.
fn make_ca(dir: &Path, name: &str, common_name: &str) {
    let key = dir.join(format!("{name}.key"));
    make_key(&key);
    let config = dir.join(format!("{name}.cnf"));
    fs::write(
        &config,
        format!(
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             x509_extensions = ext\n\
             [dn]\n\
             CN = {common_name}\n\
             [ext]\n\
             basicConstraints = critical, CA:TRUE\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n"
        ),
    )
    .unwrap_or_else(|e| panic!("write {config:?}: {e}"));
    Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-new",
            "-sha256",
            "-days",
            DAYS,
            "-set_serial",
            "1",
        ])
        .arg("-config")
        .arg(&config)
        .arg("-key")
        .arg(&key)
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .run()
        .assert_success();
}

/// A certificate `<name>.pem` with key `<name>.key` for `common_name`, carrying
/// the extensions `ext`, signed by the CA `<ca>.pem`.
fn make_leaf(dir: &Path, name: &str, common_name: &str, ca: &str, ext: &str, serial: u32) {
    let key = dir.join(format!("{name}.key"));
    make_key(&key);
    let csr = dir.join(format!("{name}.csr"));
    let config = dir.join(format!("{name}.cnf"));
    fs::write(
        &config,
        format!("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {common_name}\n"),
    )
    .unwrap_or_else(|e| panic!("write {config:?}: {e}"));
    Command::new("openssl")
        .args(["req", "-new", "-sha256"])
        .arg("-config")
        .arg(&config)
        .arg("-key")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .run()
        .assert_success();
    let ext_file = dir.join(format!("{name}.ext"));
    fs::write(&ext_file, ext).unwrap_or_else(|e| panic!("write {ext_file:?}: {e}"));
    Command::new("openssl")
        .args(["x509", "-req", "-sha256", "-days", DAYS])
        .args(["-set_serial", &serial.to_string()])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(dir.join(format!("{ca}.pem")))
        .arg("-CAkey")
        .arg(dir.join(format!("{ca}.key")))
        .arg("-extfile")
        .arg(&ext_file)
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .run()
        .assert_success();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
}
