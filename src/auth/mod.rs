//! Who may call what: API keys bound to tenants and roles, checked from the request headers
//! before a request body is decoded (a tower layer in front of the services), and the tenant
//! checked by each handler once the body names it. docs/security.md has the model.
//!
//! Imports nothing of the engine or the store: it sees paths, headers and tenant names only.

pub mod keys;

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Status;

pub use keys::{Grant, KeyEntry, KeyFile, KeySet, Role};

/// The package every protected service is in; health and reflection are outside it.
const PROTECTED: &str = "/pertinent.v1.";

/// How often the key file is read again for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The least role each RPC needs, by `Service/Method`. A Check that is not a dry run needs
/// `write`, which its handler checks once the body says which it is.
pub const RPC_ROLES: [(&str, Role); 19] = [
    ("ProspectService/UpsertProspect", Role::Write),
    ("ProspectService/GetProspect", Role::Read),
    ("ProspectService/DeleteProspect", Role::Admin),
    ("ProspectService/AddSignals", Role::Write),
    ("ProspectService/DeleteSignals", Role::Admin),
    ("ContentService/RegisterContent", Role::Write),
    ("ContentService/GetContent", Role::Read),
    ("ContentService/DeleteContent", Role::Admin),
    ("ScoringService/Score", Role::Read),
    ("ScoringService/Rank", Role::Read),
    ("ScoringService/FindAudience", Role::Read),
    ("GateService/Check", Role::Read),
    ("GateService/RecordEngagement", Role::Write),
    ("GateService/History", Role::Read),
    ("GateService/RecordSend", Role::Write),
    ("GateService/LiftSuppression", Role::Admin),
    ("GateService/SetPolicy", Role::Admin),
    ("GateService/GetPolicy", Role::Read),
    // Unknown methods of the package are UNIMPLEMENTED after authentication.
    ("", Role::Read),
];

fn required_role(method: &str) -> Role {
    RPC_ROLES
        .iter()
        .find(|(name, _)| *name == method)
        .map_or(Role::Read, |(_, role)| *role)
}

/// A refusal: counted (`pertinent_auth_refusals_total` by `reason`) and answered with
/// `google.rpc.ErrorInfo` under the same reason, upper-cased.
fn refused(code: tonic::Code, reason: &'static str, message: impl Into<String>) -> Status {
    metrics::counter!("pertinent_auth_refusals_total", "reason" => reason).increment(1);
    let mut details = tonic_types::ErrorDetails::new();
    details.set_error_info(
        reason.to_ascii_uppercase(),
        crate::domain::ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    <Status as tonic_types::StatusExt>::with_error_details(code, message, details)
}

/// The keys in force, re-read when their file changes.
pub struct Authenticator {
    keys: RwLock<Arc<KeySet>>,
    path: PathBuf,
}

impl Authenticator {
    /// Loads the key file; an unreadable or invalid file is an error (the service must not
    /// start open by mistake).
    pub fn load(path: PathBuf) -> anyhow::Result<Arc<Self>> {
        let keys = KeySet::load(&path)?;
        tracing::info!(keys = keys.len(), "API keys loaded");
        Ok(Arc::new(Self {
            keys: RwLock::new(Arc::new(keys)),
            path,
        }))
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the key file again every second and puts a changed, valid one in force; an
    /// invalid one is logged and the keys in force stay.
    pub async fn watch(self: Arc<Self>) {
        let mut last = std::fs::read(&self.path).ok();
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let now = std::fs::read(&self.path).ok();
            if now == last {
                continue;
            }
            last = now;
            match KeySet::load(&self.path) {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "API key file changed: keys reloaded");
                    *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                }
                Err(e) => {
                    tracing::error!(error = %e, "API key file changed but is invalid; the keys in force stay");
                }
            }
        }
    }

    /// The grant of a request to `path` with `headers`: `Ok(None)` for what is open (health,
    /// reflection), the key's grant for a protected RPC its role allows, else the refusal.
    pub fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Option<Grant>, Status> {
        let Some(method) = path.strip_prefix(PROTECTED) else {
            return Ok(None);
        };
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, secret) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
            });
        let Some(secret) = presented else {
            tracing::warn!(rpc = method, "refused: no API key");
            return Err(refused(
                tonic::Code::Unauthenticated,
                "api_key_missing",
                "an API key is required: authorization: Bearer <key>",
            ));
        };
        let keys = self.current();
        let grant = match keys.check(secret) {
            Ok(grant) => grant.clone(),
            Err((reason, key_id)) => {
                tracing::warn!(
                    rpc = method,
                    reason = reason.as_str(),
                    key_id = key_id.unwrap_or("-"),
                    "refused: unknown API key"
                );
                return Err(refused(
                    tonic::Code::Unauthenticated,
                    "api_key_unknown",
                    "unknown API key",
                ));
            }
        };
        let needs = required_role(method);
        if grant.role < needs {
            tracing::warn!(rpc = method, key_id = %grant.key_id, role = grant.role.as_str(), "refused: RPC outside the key's role");
            return Err(refused(
                tonic::Code::PermissionDenied,
                "role_insufficient",
                format!(
                    "this key ({}) may not call pertinent.v1.{method}: it needs the {} role",
                    grant.role.as_str(),
                    needs.as_str()
                ),
            ));
        }
        Ok(Some(grant))
    }
}

/// The grant a request was admitted with; `None` when the service runs without keys.
pub fn grant_of<T>(request: &tonic::Request<T>) -> Option<Grant> {
    request.extensions().get::<Grant>().cloned()
}

/// Refuses a tenant outside the key's grant, or a role the request's body makes necessary
/// (a Check that is not a dry run). Says nothing of whether anything exists in the tenant.
pub fn permit(
    grant: &Option<Grant>,
    tenant: Option<&crate::domain::Tenant>,
    rpc: &str,
    needs: Role,
) -> Result<(), Status> {
    let Some(grant) = grant else {
        return Ok(());
    };
    if let Some(tenant) = tenant
        && !grant.covers(tenant.as_str())
    {
        tracing::warn!(rpc, key_id = %grant.key_id, "refused: tenant outside the key's grant");
        return Err(refused(
            tonic::Code::PermissionDenied,
            "tenant_not_granted",
            format!("this key may not act for tenant {tenant}"),
        ));
    }
    if grant.role < needs {
        tracing::warn!(rpc, key_id = %grant.key_id, "refused: RPC outside the key's role");
        return Err(refused(
            tonic::Code::PermissionDenied,
            "role_insufficient",
            format!(
                "this key ({}) may not call pertinent.v1.{rpc} this way: it needs the {} role",
                grant.role.as_str(),
                needs.as_str()
            ),
        ));
    }
    Ok(())
}

/// The tower layer that authenticates every request before its body is decoded.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Option<Arc<Authenticator>>,
}

impl AuthLayer {
    /// `None`: no keys (local use, or `--insecure-no-auth`).
    pub fn new(auth: Option<Arc<Authenticator>>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// See `AuthLayer`.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Option<Arc<Authenticator>>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(auth) = &self.auth {
            match auth.admit(request.uri().path(), request.headers()) {
                Ok(Some(grant)) => {
                    request.extensions_mut().insert(grant);
                }
                Ok(None) => {}
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            }
        }
        // The ready service answers this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}
