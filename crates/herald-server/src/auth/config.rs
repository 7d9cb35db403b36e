//! `[auth]`: anonymous grants, JWT verification keys and static API keys.

use herald_core::Pattern;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[auth]`. When present, every request is checked; callers without a token get the
/// `anonymous` grants (none unless configured).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// What callers without a token may do.
    pub anonymous: Option<GrantsConfig>,
    /// JWT verification.
    pub jwt: Option<JwtConfig>,
    /// Static API keys, stored as hashes.
    pub api_keys: Vec<ApiKeyConfig>,
}

/// Publish and subscribe patterns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrantsConfig {
    /// Topics (patterns) it may publish to.
    pub publish: Vec<String>,
    /// Topics (patterns) it may read and subscribe to.
    pub subscribe: Vec<String>,
}

/// `[auth.jwt]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Shared secret for HS256 tokens.
    pub hs256_secret: Option<String>,
    /// PEM public key for RS256 (RSA) or EdDSA (Ed25519) tokens.
    pub public_key_file: Option<PathBuf>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            hs256_secret: None,
            public_key_file: None,
            audience: None,
            issuer: None,
            leeway_seconds: 30,
        }
    }
}

/// `[[auth.api_keys]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs and rate limits (default: the start of the hash).
    #[serde(default)]
    pub name: Option<String>,
    /// `sha256:<64 hex digits>` of the key (`printf %s KEY | sha256sum`).
    pub hash: String,
    /// Topics (patterns) it may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topics (patterns) it may read and subscribe to.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Topic configuration and deletion, every topic.
    #[serde(default)]
    pub admin: bool,
}

impl AuthConfig {
    /// Checks patterns, hashes and keys; reads the public key file.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(a) = &self.anonymous {
            patterns(&a.publish, "auth.anonymous.publish")?;
            patterns(&a.subscribe, "auth.anonymous.subscribe")?;
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            key_hash(&k.hash).map_err(|e| format!("auth.api_keys[{i}].hash: {e}"))?;
            patterns(&k.publish, &format!("auth.api_keys[{i}].publish"))?;
            patterns(&k.subscribe, &format!("auth.api_keys[{i}].subscribe"))?;
        }
        if let Some(jwt) = &self.jwt {
            super::jwt::Verifier::new(jwt)?;
        }
        Ok(())
    }
}

/// Parses a list of patterns, naming the key on error.
pub(crate) fn patterns(raw: &[String], key: &str) -> Result<Vec<Pattern>, String> {
    raw.iter()
        .map(|p| Pattern::parse(p).map_err(|e| format!("{key}: {e}")))
        .collect()
}

/// The digest in `sha256:<hex>`.
pub(crate) fn key_hash(raw: &str) -> Result<[u8; 32], String> {
    let hex = raw
        .strip_prefix("sha256:")
        .ok_or("must start with sha256: (the SHA-256 of the key, in hex)")?;
    if hex.len() != 64 || !hex.is_ascii() {
        return Err("must be sha256: followed by 64 hex digits".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "must be sha256: followed by 64 hex digits")?;
    }
    Ok(out)
}

/// The `sha256:<hex>` line to put in the configuration for `key`.
pub fn hash_key(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
