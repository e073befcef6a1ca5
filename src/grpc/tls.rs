//! TLS on the gRPC port: rustls with the ring provider (no OpenSSL), an optional client
//! certificate check against a CA (mTLS), and the certificate, key and CA read again when
//! their files change, so that a renewed certificate needs no restart.
//!
//! Connections are accepted here, not by tonic: each handshake runs in a task of its own under
//! a timeout, so a peer that never finishes one cannot hold up the others.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How often the files are read again for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server's certificate chain, its key and (for mTLS) the clients' CA are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn read(&self) -> Vec<Option<Vec<u8>>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .map(|p| p.and_then(|p| std::fs::read(p).ok()))
            .collect()
    }

    fn build(&self) -> anyhow::Result<ServerConfig> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", self.cert.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "--tls-cert {} holds no certificate",
            self.cert.display()
        );
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| anyhow::anyhow!("--tls-key {}: {e}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| anyhow::anyhow!("--tls-client-ca {}: {e}", ca.display()))?
                {
                    roots.add(
                        cert.map_err(|e| anyhow::anyhow!("--tls-client-ca {}: {e}", ca.display()))?,
                    )?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key)?;
        // gRPC is HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// The TLS configuration in force, rebuilt when its files change.
pub struct TlsReloader {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsReloader {
    /// Reads the files; any error is a startup error.
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<Self>> {
        let config = files.build()?;
        Ok(Arc::new(Self {
            files,
            config: RwLock::new(Arc::new(config)),
        }))
    }

    /// Whether clients must present a certificate.
    pub fn verifies_clients(&self) -> bool {
        self.files.client_ca.is_some()
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again every second; a change that builds puts the new configuration in
    /// force for new connections, one that does not is logged and the old one stays.
    pub async fn watch(self: Arc<Self>) {
        let mut last = self.files.read();
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let now = self.files.read();
            if now == last {
                continue;
            }
            last = now;
            match self.files.build() {
                Ok(config) => {
                    tracing::info!("TLS files changed: certificate reloaded");
                    *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS files changed but do not load; the certificate in force stays");
                }
            }
        }
    }
}

/// The connections of `listener` that completed a TLS handshake.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsReloader>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(TlsConn(stream))).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// An accepted TLS connection.
pub struct TlsConn(TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
