//! A web server, CDN or object store as a source: the published repository
//! at an `https://` URL (`http://` where the INI allows it), read with range
//! requests over one client that keeps its connections alive and speaks
//! HTTP/2 where the server offers it.
//!
//! A mirror is trusted for nothing but availability: every byte it serves is
//! checked against the signed records by the caller. What this module makes
//! sure of is that an answer is the one asked for: a range answered with
//! another range is an error, a range answered with the whole file (`200`)
//! is cut to the range asked for, a body longer than asked is refused, and a
//! certificate that does not verify ends the connection with the host named.
//!
//! A record read with [`HttpsSource::read_conditional`] keeps its ETag and
//! Last-Modified in the state folder, so asking again for an unchanged
//! timestamp costs one request answered `304` and no body.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use sha2::{Digest, Sha256};

use super::progress::Progress;
use super::reports::ReportFolder;
use super::source::{Source, TransportError, TransportErrorKind};
use crate::config::WebConfig;
use crate::store::atomic::write_atomically;

/// Redirects followed for one request, at most.
const MAX_REDIRECTS: usize = 5;
/// The existing run log read back before appending to it over PUT.
const REPORT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Where one web source is and how to reach it.
pub(crate) struct WebTarget<'a> {
    /// The repository's root.
    pub url: &'a Url,
    /// Certificates, token, client certificate, proxy.
    pub web: &'a WebConfig,
    /// The "no progress" timeout, also the connect timeout.
    pub timeout: Duration,
    /// The state folder, where conditional requests keep their validators;
    /// `None` in a dry run, which writes nothing.
    pub validators: Option<PathBuf>,
}

/// A connected web source.
pub(crate) struct HttpsSource {
    client: Client,
    /// The repository's root, ending in `/`.
    base: Url,
    progress: Progress,
    validators: Option<PathBuf>,
    /// Set once the server answered a range request with the whole file.
    ignores_ranges: AtomicBool,
}

/// A file of a web source: its URL; each read is a request of its own.
pub(crate) struct WebFile {
    url: Url,
}

/// A report being written: sent whole with PUT when finished.
pub(crate) struct WebWriter {
    url: Url,
    body: std::sync::Mutex<Vec<u8>>,
}

/// A record read with a conditional request.
pub(crate) struct Conditional {
    /// The record's bytes, from the answer or, after `304`, from the last one.
    pub bytes: Vec<u8>,
    /// The server answered `304`: the same bytes as last time.
    pub unchanged: bool,
}

/// The validators and body of the last answer for one URL.
#[derive(serde::Serialize, serde::Deserialize)]
struct Validators {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    body: String,
}

impl HttpsSource {
    /// Builds the client for `target`: the system's roots or the INI's CA
    /// file, the token, the client certificate and the proxy. Nothing is
    /// sent yet; a server that cannot be reached or verified shows at the
    /// first request.
    pub(crate) fn connect(
        target: &WebTarget<'_>,
        progress: Progress,
    ) -> Result<HttpsSource, TransportError> {
        let web = target.web;
        let mut base = target.url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut headers = HeaderMap::new();
        if let Some(file) = &web.token_file {
            let token = read_setting(file, "token_file")?;
            let token = String::from_utf8_lossy(&token).trim().to_owned();
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                client_error(file, "token_file", "the token is not a valid header value")
            })?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        let mut builder = Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .user_agent(concat!("wpkgsync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(target.timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(same_scheme_redirects())
            .https_only(!web.allow_http);
        if let Some(file) = &web.ca_file {
            let pem = read_setting(file, "ca_file")?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| client_error(file, "ca_file", "no PEM certificate in it"))?;
            builder = builder.tls_built_in_root_certs(false);
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(file) = &web.client_certificate {
            let pem = read_setting(file, "client_certificate")?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                client_error(
                    file,
                    "client_certificate",
                    &format!("not a PEM certificate and key: {e}"),
                )
            })?;
            builder = builder.identity(identity);
        }
        if let Some(proxy) = &web.proxy {
            let proxy = reqwest::Proxy::all(proxy.clone()).map_err(|e| {
                TransportError::new(
                    TransportErrorKind::ClientKey,
                    format!("server.proxy {proxy}: {e}"),
                )
            })?;
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(|e| {
            TransportError::new(
                TransportErrorKind::ClientKey,
                format!("{}: the HTTPS client cannot be set up: {e}", target.url),
            )
        })?;
        Ok(HttpsSource {
            client,
            base,
            progress,
            validators: target.validators.clone(),
            ignores_ranges: AtomicBool::new(false),
        })
    }

    /// Whether the transfer is in the clear (`http://`).
    pub(crate) fn is_plain(&self) -> bool {
        self.base.scheme() == "http"
    }

    /// The URL of a repository path.
    fn url_of(&self, path: &str) -> Result<Url, TransportError> {
        self.base.join(path.trim_start_matches('/')).map_err(|e| {
            TransportError::new(
                TransportErrorKind::Other,
                format!("{path} makes no URL below {}: {e}", self.base),
            )
        })
    }

    /// Sends a request; the error names the URL.
    async fn send(&self, request: RequestBuilder, url: &Url) -> Result<Response, TransportError> {
        request.send().await.map_err(|e| request_error(&e, url))
    }

    /// Reads `record` with a conditional request when an earlier answer left
    /// validators, refusing a body larger than `limit`.
    pub(crate) async fn read_conditional(
        &self,
        path: &str,
        limit: u64,
    ) -> Result<Conditional, TransportError> {
        let url = self.url_of(path)?;
        let cache = self.validators_file(&url);
        let known = cache
            .as_deref()
            .and_then(|file| read_validators(file, &url));
        let mut request = self.client.get(url.clone());
        if let Some(known) = &known {
            if let Some(etag) = &known.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = &known.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, date);
            }
        }
        let response = self.send(request, &url).await?;
        if response.status() == StatusCode::NOT_MODIFIED
            && let Some(known) = known
            && let Ok(bytes) = hex::decode(&known.body)
        {
            self.progress.touch();
            return Ok(Conditional {
                bytes,
                unchanged: true,
            });
        }
        let response = expect_status(response, &url, &[StatusCode::OK])?;
        let validator = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, last_modified) = (validator(header::ETAG), validator(header::LAST_MODIFIED));
        let bytes = self.body(response, &url, 0, limit, true).await?;
        if let Some(file) = cache
            && (etag.is_some() || last_modified.is_some())
        {
            let record = Validators {
                url: url.to_string(),
                etag,
                last_modified,
                body: hex::encode(&bytes),
            };
            // Only a saving for the next run; the record is verified either way.
            if let Ok(json) = serde_json::to_vec(&record)
                && let (Some(dir), Some(name)) = (file.parent(), file.file_name())
            {
                let _ = write_atomically(dir, &name.to_string_lossy(), &json);
            }
        }
        Ok(Conditional {
            bytes,
            unchanged: false,
        })
    }

    /// Where the validators for `url` are kept, if anywhere.
    fn validators_file(&self, url: &Url) -> Option<PathBuf> {
        let dir = self.validators.as_ref()?;
        let digest = Sha256::digest(url.as_str().as_bytes());
        Some(dir.join(format!("http-{}.json", hex::encode(&digest[..8]))))
    }

    /// Reads a body from `skip` on, at most `take` bytes of it; more than
    /// `take` is an error when `refuse_more`, else the rest is not read.
    /// Each chunk that arrives touches the progress clock.
    async fn body(
        &self,
        mut response: Response,
        url: &Url,
        skip: u64,
        take: u64,
        refuse_more: bool,
    ) -> Result<Vec<u8>, TransportError> {
        let mut data = Vec::with_capacity(take.min(1 << 20) as usize);
        let mut skipped = 0u64;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(data),
                Err(e) => return Err(request_error(&e, url)),
            };
            self.progress.touch();
            let mut chunk = &chunk[..];
            if skipped < skip {
                let dropped = (skip - skipped).min(chunk.len() as u64);
                skipped += dropped;
                chunk = &chunk[dropped as usize..];
            }
            let room = take - data.len() as u64;
            if chunk.len() as u64 > room {
                if refuse_more {
                    return Err(TransportError::new(
                        TransportErrorKind::TooLarge,
                        format!("{url} is larger than {take} bytes"),
                    ));
                }
                data.extend_from_slice(&chunk[..room as usize]);
                return Ok(data);
            }
            data.extend_from_slice(chunk);
        }
    }
}

/// Redirects stay on the scheme they started on (never from `https://` to
/// `http://`), and end after a few.
fn same_scheme_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let scheme = attempt.previous().first().map(Url::scheme);
        let next = attempt.url().clone();
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if scheme.is_some_and(|scheme| scheme != next.scheme()) {
            attempt.error(format!("redirect to another scheme: {next}"))
        } else {
            attempt.follow()
        }
    })
}

/// A file the INI names for the HTTPS client.
fn read_setting(file: &Path, key: &str) -> Result<Vec<u8>, TransportError> {
    std::fs::read(file).map_err(|e| client_error(file, key, &e.to_string()))
}

fn client_error(file: &Path, key: &str, why: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::ClientKey,
        format!("server.{key} {}: {why}", file.display()),
    )
}

fn read_validators(file: &Path, url: &Url) -> Option<Validators> {
    let bytes = std::fs::read(file).ok()?;
    serde_json::from_slice::<Validators>(&bytes)
        .ok()
        .filter(|known| known.url == url.as_str())
}

/// An answer of one of the `expected` statuses, else the error its status
/// stands for.
fn expect_status(
    response: Response,
    url: &Url,
    expected: &[StatusCode],
) -> Result<Response, TransportError> {
    let status = response.status();
    if expected.contains(&status) {
        return Ok(response);
    }
    let kind = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => TransportErrorKind::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
            TransportErrorKind::AuthRefused
        }
        StatusCode::FORBIDDEN => TransportErrorKind::PermissionDenied,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => TransportErrorKind::Timeout,
        status if status.is_server_error() => TransportErrorKind::Unreachable,
        _ => TransportErrorKind::Other,
    };
    Err(TransportError::new(
        kind,
        format!("{url}: the server answered {status}"),
    ))
}

/// A request that got no answer, told apart by cause: a certificate that
/// does not verify (the server's identity, 203), a refused client
/// certificate, a timeout, or a server that cannot be reached.
fn request_error(e: &reqwest::Error, url: &Url) -> TransportError {
    let host = url.host_str().unwrap_or("the server");
    if let Some(tls) = tls_cause(e) {
        let (kind, what) = match tls {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => (
                TransportErrorKind::HostKey,
                "the server's certificate does not verify",
            ),
            rustls::Error::AlertReceived(_) => (
                TransportErrorKind::AuthRefused,
                "the server refused the TLS handshake (client certificate?)",
            ),
            _ => (TransportErrorKind::Unreachable, "TLS failed"),
        };
        return TransportError::new(kind, format!("{host}: {what}: {tls}"));
    }
    let kind = if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_redirect() || e.is_builder() {
        TransportErrorKind::Other
    } else {
        TransportErrorKind::Unreachable
    };
    TransportError::new(kind, format!("{url}: {}", chain(e)))
}

/// The TLS error below `e`, also when wrapped in an I/O error (whose
/// `source` skips the error it carries).
fn tls_cause(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        cause = error.source();
    }
    None
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = error.source();
    }
    text
}

/// The first and last byte of a `Content-Range: bytes a-b/n` header.
fn content_range(response: &Response) -> Option<(u64, u64)> {
    let value = response
        .headers()
        .get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.strip_prefix("bytes ")?.split('/').next()?;
    let (first, last) = range.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

impl Source for HttpsSource {
    type File = WebFile;

    async fn open(&self, path: &str) -> Result<WebFile, TransportError> {
        Ok(WebFile {
            url: self.url_of(path)?,
        })
    }

    async fn read_at(
        &self,
        file: &WebFile,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let url = &file.url;
        let last = offset + u64::from(len) - 1;
        let request = self
            .client
            .get(url.clone())
            .header(header::RANGE, format!("bytes={offset}-{last}"));
        let response = self.send(request, url).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                // Another range than the one asked for is a lying server.
                match content_range(&response) {
                    Some((first, end)) if first == offset && end <= last && end >= first => {
                        let expected = end - first + 1;
                        let data = self.body(response, url, 0, expected, true).await?;
                        if data.len() as u64 == expected {
                            Ok(data)
                        } else {
                            Err(TransportError::new(
                                TransportErrorKind::Unreachable,
                                format!("{url}: the answer for bytes {offset}-{end} was cut short"),
                            ))
                        }
                    }
                    other => Err(TransportError::new(
                        TransportErrorKind::Other,
                        format!(
                            "{url}: asked for bytes {offset}-{last}, answered {}",
                            other.map_or("no range".into(), |(a, b)| format!("bytes {a}-{b}"))
                        ),
                    )),
                }
            }
            // The whole file instead of the range: take the range out of it.
            StatusCode::OK => {
                self.ignores_ranges.store(true, Ordering::Relaxed);
                self.body(response, url, offset, u64::from(len), false)
                    .await
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(Vec::new()),
            _ => Err(expect_status(response, url, &[]).err().unwrap_or_else(|| {
                TransportError::new(TransportErrorKind::Other, format!("{url}: no answer"))
            })),
        }
    }

    async fn close(&self, _file: WebFile) {}

    /// One request for the whole file, refusing a body larger than `limit`.
    async fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>, TransportError> {
        let url = self.url_of(path)?;
        let response = self.send(self.client.get(url.clone()), &url).await?;
        let response = expect_status(response, &url, &[StatusCode::OK])?;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(TransportError::new(
                TransportErrorKind::TooLarge,
                format!("{path} is larger than {limit} bytes"),
            ));
        }
        self.body(response, &url, 0, limit, true).await
    }
}

impl HttpsSource {
    /// Whether the server answered a range request with the whole file.
    pub(crate) fn ignores_ranges(&self) -> bool {
        self.ignores_ranges.load(Ordering::Relaxed)
    }

    /// A reports URL (the INI's `reports`, which need not lie below the
    /// repository).
    fn report_url(path: &str) -> Result<Url, TransportError> {
        Url::parse(path).map_err(|e| {
            TransportError::new(
                TransportErrorKind::Other,
                format!("{path} is not a URL: {e}"),
            )
        })
    }
}

/// The reports folder over WebDAV's PUT, MOVE and DELETE (nginx's dav
/// module, for one): a file is sent whole when it is finished; appending
/// reads the existing file back first, since PUT replaces.
impl ReportFolder for HttpsSource {
    type Writer = WebWriter;

    async fn create(&self, path: &str, append: bool) -> Result<WebWriter, TransportError> {
        let url = Self::report_url(path)?;
        let mut body = Vec::new();
        if append {
            let response = self.send(self.client.get(url.clone()), &url).await?;
            if response.status() != StatusCode::NOT_FOUND {
                let response = expect_status(response, &url, &[StatusCode::OK])?;
                body = self.body(response, &url, 0, REPORT_MAX_BYTES, true).await?;
            }
        }
        Ok(WebWriter {
            url,
            body: std::sync::Mutex::new(body),
        })
    }

    async fn write_at(
        &self,
        file: &WebWriter,
        _offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        // Reports are written in order, each byte once.
        if let Ok(mut body) = file.body.lock() {
            body.extend_from_slice(data);
        }
        Ok(())
    }

    async fn finish(&self, file: WebWriter) -> Result<(), TransportError> {
        let body = file.body.into_inner().unwrap_or_default();
        let request = self.client.put(file.url.clone()).body(body);
        let response = self.send(request, &file.url).await?;
        expect_status(
            response,
            &file.url,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
        )
        .map(drop)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        let (from, to) = (Self::report_url(from)?, Self::report_url(to)?);
        let request = self
            .client
            .request(
                reqwest::Method::from_bytes(b"MOVE").expect("a valid method"),
                from.clone(),
            )
            .header("Destination", to.as_str())
            .header("Overwrite", "T");
        let response = self.send(request, &from).await?;
        expect_status(
            response,
            &from,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
        )
        .map(drop)
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        let url = Self::report_url(path)?;
        let response = self.send(self.client.delete(url.clone()), &url).await?;
        expect_status(
            response,
            &url,
            &[
                StatusCode::NO_CONTENT,
                StatusCode::OK,
                StatusCode::NOT_FOUND,
            ],
        )
        .map(drop)
    }
}
