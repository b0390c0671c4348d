//! A published repository on the server side: WPKG-like files, `wpkgsync publish`,
//! and the tools of an attacker who controls the server (tampering with bytes,
//! replaying old records, signing hostile manifests with the publisher's key).
//!
//! The publisher key is made once per test binary with `wpkgsync keygen`, since an
//! RSA 3072 key takes seconds in a debug build.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256};
use wpkgsync::exit::Code;
use wpkgsync::manifest::format::{
    DELTAS_DIR, FORMAT, FileEntry, MANIFEST_FILE, META_DIR, Manifest, Part, PartRef,
    SIGNATURE_SUFFIX, SignatureAt, TIMESTAMP_FILE, Timestamp, group_into_parts, own_signature_path,
    part_path,
};

use super::run::{Output, wpkgsync};
use super::workspace;

/// The publisher's key pair as files, shared by every test of this binary.
pub(crate) struct KeyFiles {
    /// `publisher-private.pem` (PKCS#8).
    pub private: PathBuf,
    /// `publisher.pem` (SPKI), the key clients pin.
    pub public: PathBuf,
}

/// The key pair, made by `wpkgsync keygen` on first use.
pub(crate) fn publisher() -> &'static KeyFiles {
    static KEY: OnceLock<KeyFiles> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = workspace::folder("publisher");
        wpkgsync()
            .arg("keygen")
            .arg("--out")
            .arg(&dir)
            .run()
            .assert_code(Code::Success);
        let key = KeyFiles {
            private: dir.join("publisher-private.pem"),
            public: dir.join("publisher.pem"),
        };
        assert!(key.private.is_file(), "keygen wrote no {:?}", key.private);
        assert!(key.public.is_file(), "keygen wrote no {:?}", key.public);
        key
    })
}

/// Modification times handed out to written files: whole seconds, in the past,
/// every one different, so a mirrored mtime can be told from "written now" and a
/// changed file always has a newer time.
fn next_mtime() -> SystemTime {
    static NEXT: AtomicI64 = AtomicI64::new(1_600_000_000);
    let secs = NEXT.fetch_add(60, Ordering::Relaxed);
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// The four signed records as published, saved to replay them later.
pub(crate) struct Records(Vec<(String, Vec<u8>)>);

/// A repository folder as the publisher sees it.
pub(crate) struct Repo {
    root: PathBuf,
}

impl Repo {
    /// A repository rooted at `root` (created, mode 0755).
    pub(crate) fn new(root: PathBuf) -> Self {
        workspace::make_private_dir(&root);
        Self { root }
    }

    /// The repository folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the signed records.
    pub(crate) fn meta(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    /// The path of `rel` (a `/`-separated path) in the repository.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `bytes` to `rel`, creating folders, with a fresh past mtime.
    pub(crate) fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> &Self {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {parent:?}: {e}"));
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        set_mtime(&path, next_mtime());
        self
    }

    /// Deletes the file `rel`.
    pub(crate) fn remove_file(&self, rel: &str) -> &Self {
        let path = self.path(rel);
        fs::remove_file(&path).unwrap_or_else(|e| panic!("rm {path:?}: {e}"));
        self
    }

    /// Deletes the folder `rel` and everything in it.
    pub(crate) fn remove_dir(&self, rel: &str) -> &Self {
        let path = self.path(rel);
        fs::remove_dir_all(&path).unwrap_or_else(|e| panic!("rm -r {path:?}: {e}"));
        self
    }

    /// A small WPKG repository: the top-level XML files, three package XMLs and
    /// their folders with binary-ish files, one of them nested.
    pub(crate) fn write_sample(&self) -> &Self {
        self.write(
            "config.xml",
            xml("config", "<param name=\"logfilePattern\" />"),
        )
        .write(
            "hosts.xml",
            xml("wpkg:wpkg", "<host name=\".+\" profile-id=\"default\" />"),
        )
        .write(
            "profiles.xml",
            xml("profiles:profiles", "<profile id=\"default\" />"),
        )
        .write("packages/7zip.xml", package_xml("7zip", "7zip\\7z.msi"))
        .write(
            "packages/firefox.xml",
            package_xml("firefox", "firefox\\setup.exe"),
        )
        .write(
            "packages/putty.xml",
            package_xml("putty", "putty\\x64\\putty.msi"),
        )
        .write("packages/7zip/7z.msi", noise(1, 40_000))
        .write("packages/7zip/readme.txt", "7-Zip for WPKG\r\n")
        .write("packages/firefox/setup.exe", noise(2, 120_000))
        .write(
            "packages/firefox/distribution/policies.json",
            "{\"policies\":{}}\n",
        )
        .write("packages/putty/x64/putty.msi", noise(3, 30_000))
        .write("packages/putty/empty.txt", "")
    }

    /// Runs `wpkgsync publish` with the default expiry and asserts success.
    pub(crate) fn publish(&self) -> Output {
        self.publish_with(&[])
    }

    /// Runs `wpkgsync publish` with extra arguments and asserts success.
    pub(crate) fn publish_with(&self, extra: &[&str]) -> Output {
        let out = wpkgsync()
            .arg("publish")
            .arg("--repo")
            .arg(&self.root)
            .arg("--key")
            .arg(&publisher().private)
            .args(extra)
            .run();
        out.assert_code(Code::Success);
        for name in [TIMESTAMP_FILE, MANIFEST_FILE] {
            for file in [name.to_string(), format!("{name}{SIGNATURE_SUFFIX}")] {
                let path = self.meta().join(&file);
                assert!(path.is_file(), "publish wrote no {path:?}\n{out}");
            }
        }
        out
    }

    /// The manifest as published.
    pub(crate) fn manifest(&self) -> Manifest {
        let path = self.meta().join(MANIFEST_FILE);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
    }

    /// Every file the published parts list, sorted by path.
    pub(crate) fn files(&self) -> Vec<FileEntry> {
        let mut files: Vec<FileEntry> = self
            .manifest()
            .parts
            .iter()
            .flat_map(|part| self.part(part).files)
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    /// The block signature file of `rel`, which must have one of its own.
    pub(crate) fn own_signature(&self, rel: &str) -> PathBuf {
        let file = self
            .files()
            .into_iter()
            .find(|f| f.path == rel)
            .expect("listed");
        assert_eq!(file.signature, Some(SignatureAt::Own), "{rel}");
        self.path(&own_signature_path(&file.sha256))
    }

    /// The published part of `folder` (`None`: the part of every other file).
    pub(crate) fn part_of(&self, folder: Option<&str>) -> PartRef {
        self.manifest()
            .parts
            .into_iter()
            .find(|p| p.folder.as_deref() == folder)
            .unwrap_or_else(|| panic!("no part of {folder:?}"))
    }

    /// The compressed file of a part on the server.
    pub(crate) fn part_file(&self, part: &PartRef) -> PathBuf {
        self.path(&part_path(&part.sha256))
    }

    /// A part as published.
    pub(crate) fn part(&self, part: &PartRef) -> Part {
        let path = self.part_file(part);
        let data = fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        let bytes = zstd::decode_all(&data[..]).unwrap_or_else(|e| panic!("unzstd {path:?}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
    }

    /// Replaces the compressed file of `part` with `bytes` compressed, and
    /// removes every patch, so that a client must read the part whole: what
    /// an attacker on the server could do.
    pub(crate) fn replace_part(&self, part: &PartRef, bytes: &[u8]) {
        let path = self.part_file(part);
        fs::write(&path, zstd::encode_all(bytes, 3).unwrap()).expect("write part");
        let _ = fs::remove_dir_all(self.meta().join(DELTAS_DIR));
    }

    /// Copies the four signed records (the rest of the folder stays).
    pub(crate) fn save_records(&self) -> Records {
        Records(
            record_names()
                .into_iter()
                .map(|name| {
                    let path = self.meta().join(&name);
                    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
                    (name, bytes)
                })
                .collect(),
        )
    }

    /// Puts saved records back, as a server replaying an old state would.
    pub(crate) fn restore_records(&self, records: &Records) {
        for (name, bytes) in &records.0 {
            let path = self.meta().join(name);
            fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        }
    }

    /// Flips the bits of one byte in the middle of `rel`, keeping its size and
    /// mtime, as an attacker on the server would after publishing.
    pub(crate) fn tamper(&self, rel: &str) {
        let path = self.path(rel);
        let mtime = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let mut bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        assert!(!bytes.is_empty(), "cannot tamper with empty {path:?}");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        set_mtime(&path, mtime);
    }

    /// Writes and signs, with the publisher's private key, a manifest that lists
    /// `files` (path as written in the manifest, content) and a timestamp that
    /// names it, valid for a day, with a version above any `wpkgsync publish` of
    /// this run. The content itself is not written: the caller decides where it
    /// lies on the server.
    pub(crate) fn publish_forged(&self, files: &[(&str, &[u8])]) {
        static BUMP: AtomicI64 = AtomicI64::new(1_000);
        let version = unix_now() + BUMP.fetch_add(1, Ordering::Relaxed) as u64;
        self.publish_forged_as(version, files);
    }

    /// [`Self::publish_forged`] under the given `version`: what a publisher
    /// holding the key could sign, such as two manifests of one version.
    pub(crate) fn publish_forged_as(&self, version: u64, files: &[(&str, &[u8])]) {
        let now = unix_now();
        let mut entries: Vec<FileEntry> = files
            .iter()
            .map(|(path, bytes)| FileEntry {
                path: (*path).to_string(),
                size: bytes.len() as u64,
                mtime: 1_600_000_000,
                sha256: sha256_hex(bytes),
                signature: None,
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        workspace::make_private_dir(&self.meta());
        let mut parts = Vec::new();
        for (folder, files) in group_into_parts(entries, |f| &f.path) {
            let bytes = serde_json::to_vec(&Part {
                format: FORMAT,
                bundle: None,
                files,
            })
            .expect("part json");
            let part = PartRef {
                folder,
                sha256: sha256_hex(&bytes),
                size: bytes.len() as u64,
            };
            let path = self.part_file(&part);
            fs::create_dir_all(path.parent().unwrap()).expect("parts folder");
            fs::write(&path, zstd::encode_all(&bytes[..], 3).unwrap()).expect("write part");
            parts.push(part);
        }
        let manifest = Manifest {
            format: FORMAT,
            version,
            parts,
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest json");
        let timestamp = Timestamp {
            format: FORMAT,
            version,
            manifest_sha256: sha256_hex(&manifest_bytes),
            manifest_size: manifest_bytes.len() as u64,
            published: now,
            expires: now + 24 * 3600,
        };
        let timestamp_bytes = serde_json::to_vec_pretty(&timestamp).expect("timestamp json");
        for (name, bytes) in [
            (MANIFEST_FILE, manifest_bytes),
            (TIMESTAMP_FILE, timestamp_bytes),
        ] {
            let signature = sign(&bytes);
            fs::write(self.meta().join(name), &bytes).expect("write record");
            fs::write(
                self.meta().join(format!("{name}{SIGNATURE_SUFFIX}")),
                signature,
            )
            .expect("write signature");
        }
    }
}

/// Signs `bytes` with the publisher's private key: RSA PKCS#1 v1.5, SHA-256.
fn sign(bytes: &[u8]) -> Vec<u8> {
    static KEY: OnceLock<rsa::pkcs1v15::SigningKey<Sha256>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let pem = fs::read_to_string(&publisher().private).expect("read the private key");
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 RSA key");
        rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
    });
    key.sign(bytes).to_vec()
}

fn record_names() -> Vec<String> {
    [TIMESTAMP_FILE, MANIFEST_FILE]
        .into_iter()
        .flat_map(|name| [name.to_string(), format!("{name}{SIGNATURE_SUFFIX}")])
        .collect()
}

/// Lowercase hex sha256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Sets the modification time of `path`.
pub(crate) fn set_mtime(path: &Path, mtime: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .unwrap_or_else(|e| panic!("set mtime of {path:?}: {e}"));
}

/// `len` bytes that look like a compressed installer: deterministic per `seed`,
/// incompressible, different for different seeds.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64*: cheap and good enough to defeat compression and dedup.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn xml(root: &str, body: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<{root}>\r\n  {body}\r\n</{root}>\r\n")
}

fn package_xml(id: &str, installer: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<packages>\r\n  \
         <package id=\"{id}\" name=\"{id}\" revision=\"1\">\r\n    \
         <install cmd='msiexec /qn /i \"%SOFTWARE%\\{installer}\"' />\r\n  \
         </package>\r\n</packages>\r\n"
    )
}
