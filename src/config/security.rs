//! Who may connect, and how: API keys, TLS, reflection, the health port; and `pertinent keys`.

use super::*;

/// `pertinent keys ...`: so that no one edits hashes by hand.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Adds a key to the file (created if missing) and prints its secret, once, alone on one
    /// line of stdout. The file keeps only its hash.
    Add {
        /// The key file (the one --api-keys-file names).
        #[arg(long)]
        file: PathBuf,
        /// The key's id: 1-64 letters, digits, '-' or '_'; logged with every refusal.
        #[arg(long)]
        id: String,
        /// Tenants the key may act for, comma-separated, or '*' for every tenant.
        #[arg(long, value_delimiter = ',', required = true)]
        tenants: Vec<String>,
        /// read, write or admin.
        #[arg(long)]
        role: crate::auth::Role,
    },
    /// Removes a key from the file; a running service stops accepting it within a second.
    Revoke {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        id: String,
    },
}

/// Who may connect, and how (docs/security.md).
#[derive(Debug, Clone, Args)]
pub struct SecuritySettings {
    /// JSON file of API keys (`pertinent keys add` writes it): each key's id, the hash of its
    /// secret, its tenants and its role. Re-read when it changes. Without it the service has no
    /// authentication and listens only on a loopback address unless --insecure-no-auth.
    #[arg(long, env = "PERTINENT_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// Serve without API keys on a non-loopback address: anyone who reaches the port can read
    /// and erase every tenant's data. Logged at every start.
    #[arg(long, env = "PERTINENT_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// PEM certificate chain for TLS on the gRPC port (with --tls-key); re-read when it changes.
    #[arg(long, env = "PERTINENT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert; re-read when it changes.
    #[arg(long, env = "PERTINENT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: clients must present a certificate they signed (mTLS). Needs
    /// --tls-cert; re-read when it changes.
    #[arg(long, env = "PERTINENT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Also serve grpc.health.v1 alone, in plaintext, on this address: for probes that cannot
    /// speak TLS (Kubernetes' gRPC probes) when --tls-cert is set. Off when unset.
    #[arg(long, env = "PERTINENT_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// Serve gRPC server reflection (v1), open to every caller like health.
    #[arg(long, env = "PERTINENT_REFLECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub reflection: bool,
}

impl SecuritySettings {
    pub(super) fn options(&self) -> SecurityOptions {
        SecurityOptions {
            api_keys_file: self.api_keys_file.clone(),
            insecure_no_auth: self.insecure_no_auth,
            reflection: self.reflection,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }),
                // clap requires both or neither.
                _ => None,
            },
            health_listen: self.health_listen,
        }
    }
}

/// Who may connect, and how, resolved.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    pub api_keys_file: Option<PathBuf>,
    pub insecure_no_auth: bool,
    pub reflection: bool,
    pub tls: Option<TlsFiles>,
    pub health_listen: Option<SocketAddr>,
}
