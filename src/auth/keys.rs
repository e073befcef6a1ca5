//! API keys: the key file, its hashed entries, and the checks of a presented secret.
//!
//! A key's secret is `<id>.<64 hex digits>`. The file holds the id, the SHA-256 of the whole
//! secret (never the secret), the tenants the key may act for and its role; a presented secret
//! is found by its id and compared by hash in constant time. Secrets are 256 random bits, so a
//! fast hash is enough: there is nothing to guess by brute force.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and scoring: Get*, Score, Rank, FindAudience, History, GetPolicy, dry-run Check.
    Read,
    /// Also writes: upserts, signals, content, Check, RecordEngagement, RecordSend.
    Write,
    /// Also SetPolicy, LiftSuppression and every erasure.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: read, write or admin")),
        }
    }
}

/// One entry of the key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub id: String,
    /// `sha256:` and the hex SHA-256 of the secret.
    pub hash: String,
    /// Tenants the key may act for; `*` alone means every tenant.
    pub tenants: Vec<String>,
    pub role: Role,
}

/// The key file: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub keys: Vec<KeyEntry>,
}

/// Who a request is from, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key_id: String,
    pub role: Role,
    /// `None`: every tenant.
    pub tenants: Option<Vec<String>>,
}

impl Grant {
    /// Whether the key may act for `tenant`.
    pub fn covers(&self, tenant: &str) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == tenant))
    }
}

/// The keys in force, by id.
#[derive(Debug, Default)]
pub struct KeySet {
    by_id: HashMap<String, (Vec<u8>, Grant)>,
}

/// Why a secret was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `authorization: Bearer` header.
    Missing,
    /// Not of the secret's form, or no key has its id.
    Unknown,
    /// A key has the id, but not this secret.
    Mismatch,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Unknown => "unknown",
            Refusal::Mismatch => "mismatch",
        }
    }
}

/// The hash the file keeps of `secret`.
pub fn hash_of(secret: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh secret for key `id`.
pub fn new_secret(id: &str) -> anyhow::Result<String> {
    anyhow::ensure!(valid_id(id), "a key id is 1-64 letters, digits, '-' or '_'");
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("{id}.{}", hex::encode(bytes)))
}

impl KeySet {
    /// The keys of a parsed file, checked: unique valid ids, well-formed hashes, tenants given.
    pub fn from_file(file: &KeyFile) -> anyhow::Result<Self> {
        let mut by_id = HashMap::new();
        for k in &file.keys {
            anyhow::ensure!(
                valid_id(&k.id),
                "key id {:?}: 1-64 letters, digits, '-' or '_'",
                k.id
            );
            let digest = k
                .hash
                .strip_prefix("sha256:")
                .and_then(|h| hex::decode(h).ok())
                .filter(|d| d.len() == 32)
                .ok_or_else(|| {
                    anyhow::anyhow!("key {}: hash must be sha256:<64 hex digits>", k.id)
                })?;
            anyhow::ensure!(
                !k.tenants.is_empty(),
                "key {}: no tenants (use [\"*\"] for all)",
                k.id
            );
            let tenants = if k.tenants.iter().any(|t| t == "*") {
                anyhow::ensure!(k.tenants.len() == 1, "key {}: \"*\" stands alone", k.id);
                None
            } else {
                Some(k.tenants.clone())
            };
            let grant = Grant {
                key_id: k.id.clone(),
                role: k.role,
                tenants,
            };
            anyhow::ensure!(
                by_id.insert(k.id.clone(), (digest, grant)).is_none(),
                "key id {} appears twice",
                k.id
            );
        }
        Ok(Self { by_id })
    }

    /// Reads and checks a key file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::from_file(&read_file(path)?)
    }

    /// How many keys are in force.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The grant of a presented secret.
    pub fn check(&self, secret: &str) -> Result<&Grant, (Refusal, Option<&str>)> {
        let Some((id, _)) = secret.split_once('.') else {
            return Err((Refusal::Unknown, None));
        };
        let Some((digest, grant)) = self.by_id.get(id) else {
            return Err((Refusal::Unknown, None));
        };
        let presented = Sha256::digest(secret.as_bytes());
        if bool::from(presented.as_slice().ct_eq(digest)) {
            Ok(grant)
        } else {
            Err((Refusal::Mismatch, Some(grant.key_id.as_str())))
        }
    }
}

/// Reads a key file (a missing file is an error: a typo must not open the service).
pub fn read_file(path: &Path) -> anyhow::Result<KeyFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading the key file {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("parsing the key file {}: {e}", path.display()))
}

/// Writes a key file whole: to a temporary file beside it, then renamed over it, so that a
/// server reading it never sees half a file.
pub fn write_file(path: &Path, file: &KeyFile) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut temp, file)?;
    std::io::Write::write_all(&mut temp, b"\n")?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// `pertinent keys add`: appends a key for `id` to `file` (created if missing) and returns its
/// secret, which exists nowhere else.
pub fn add(file: &Path, id: String, tenants: Vec<String>, role: Role) -> anyhow::Result<String> {
    let mut keys = if file.exists() {
        read_file(file)?
    } else {
        KeyFile::default()
    };
    anyhow::ensure!(
        keys.keys.iter().all(|k| k.id != id),
        "{} already has a key {id}: revoke it first, or choose another id",
        file.display()
    );
    let secret = new_secret(&id)?;
    keys.keys.push(KeyEntry {
        id,
        hash: hash_of(&secret),
        tenants,
        role,
    });
    // Checked as the server will check it before anything is written.
    KeySet::from_file(&keys)?;
    write_file(file, &keys)?;
    Ok(secret)
}

/// `pertinent keys revoke`: removes key `id` from `file`.
pub fn revoke(file: &Path, id: &str) -> anyhow::Result<()> {
    let mut keys = read_file(file)?;
    let before = keys.keys.len();
    keys.keys.retain(|k| k.id != id);
    anyhow::ensure!(
        keys.keys.len() < before,
        "{} has no key {id}",
        file.display()
    );
    write_file(file, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(secret: &str, id: &str, tenants: &[&str], role: Role) -> KeyFile {
        KeyFile {
            keys: vec![KeyEntry {
                id: id.into(),
                hash: hash_of(secret),
                tenants: tenants.iter().map(|t| t.to_string()).collect(),
                role,
            }],
        }
    }

    #[test]
    fn a_secret_is_checked_by_its_hash_and_only_its_own_key_matches() {
        let secret = new_secret("pipeline-a").unwrap();
        let keys =
            KeySet::from_file(&file_with(&secret, "pipeline-a", &["acme"], Role::Write)).unwrap();
        let grant = keys.check(&secret).unwrap();
        assert_eq!(grant.role, Role::Write);
        assert!(grant.covers("acme") && !grant.covers("other"));
        let other = new_secret("pipeline-a").unwrap();
        assert_eq!(keys.check(&other).unwrap_err().0, Refusal::Mismatch);
        assert_eq!(keys.check("nodot").unwrap_err().0, Refusal::Unknown);
        assert_eq!(
            keys.check(&new_secret("b").unwrap()).unwrap_err().0,
            Refusal::Unknown
        );
        // The file holds no part of the secret.
        let text =
            serde_json::to_string(&file_with(&secret, "pipeline-a", &["*"], Role::Read)).unwrap();
        assert!(!text.contains(secret.split_once('.').unwrap().1));
    }

    #[test]
    fn bad_key_files_are_refused_with_the_reason() {
        let secret = new_secret("k").unwrap();
        let mut f = file_with(&secret, "k", &["*", "acme"], Role::Read);
        assert!(
            KeySet::from_file(&f)
                .unwrap_err()
                .to_string()
                .contains("alone")
        );
        f.keys[0].tenants = vec![];
        assert!(
            KeySet::from_file(&f)
                .unwrap_err()
                .to_string()
                .contains("no tenants")
        );
        f.keys[0].tenants = vec!["*".into()];
        f.keys[0].hash = "md5:00".into();
        assert!(
            KeySet::from_file(&f)
                .unwrap_err()
                .to_string()
                .contains("sha256")
        );
        let mut twice = file_with(&secret, "k", &["*"], Role::Read);
        twice.keys.push(twice.keys[0].clone());
        assert!(
            KeySet::from_file(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(new_secret("no spaces").is_err());
        assert!(
            KeySet::from_file(&file_with(&secret, "k", &["*"], Role::Admin))
                .unwrap()
                .check(&secret)
                .unwrap()
                .covers("any")
        );
    }
}
