//! JWT verification with pinned algorithms, and minting (`herald token create`).

use super::config::{JwtConfig, patterns};
use herald_core::Principal;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Verifies tokens against the configured keys. Only the algorithms of configured keys
/// are accepted: HS256 with the secret, RS256 or EdDSA with the public key.
pub(crate) struct Verifier {
    keys: Vec<(Algorithm, DecodingKey)>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.keys.iter().map(|(a, _)| *a).collect();
        f.debug_struct("Verifier")
            .field("algorithms", &algs)
            .finish()
    }
}

/// The claims herald reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Who (for logs and rate limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch (required).
    pub exp: u64,
    /// What it grants.
    #[serde(default)]
    pub herald: HeraldClaim,
}

/// The `herald` claim.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HeraldClaim {
    /// Topics (patterns) it may publish to.
    pub publish: Vec<String>,
    /// Topics (patterns) it may read and subscribe to.
    pub subscribe: Vec<String>,
    /// Admin routes.
    pub admin: bool,
}

impl Verifier {
    pub(crate) fn new(cfg: &JwtConfig) -> Result<Verifier, String> {
        let mut keys = Vec::new();
        if let Some(secret) = &cfg.hs256_secret {
            if secret.is_empty() {
                return Err("auth.jwt.hs256_secret must not be empty".into());
            }
            if secret.len() < 32 {
                tracing::warn!("auth.jwt.hs256_secret is shorter than 32 bytes: easy to guess");
            }
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = &cfg.public_key_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("auth.jwt.public_key_file {}: {e}", path.display()))?;
            keys.push(
                public_key(&pem)
                    .map_err(|e| format!("auth.jwt.public_key_file {}: {e}", path.display()))?,
            );
        }
        if keys.is_empty() {
            return Err("[auth.jwt] needs hs256_secret or public_key_file".into());
        }
        Ok(Verifier {
            keys,
            audience: cfg.audience.clone(),
            issuer: cfg.issuer.clone(),
            leeway: cfg.leeway_seconds,
        })
    }

    /// The principal of a valid token and when it expires, or why it is not valid.
    pub(crate) fn verify(&self, token: &str) -> Result<(Principal, SystemTime), String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let Some((alg, key)) = self.keys.iter().find(|(a, _)| *a == header.alg) else {
            return Err(format!(
                "tokens signed with {:?} are not accepted here",
                header.alg
            ));
        };
        let mut v = Validation::new(*alg);
        v.algorithms = vec![*alg];
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp"]);
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => "the token expired".to_owned(),
                K::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                K::InvalidAudience => "the token is for another audience (aud)".to_owned(),
                K::InvalidIssuer => "the token is from another issuer (iss)".to_owned(),
                K::MissingRequiredClaim(c) => format!("the token lacks the {c} claim"),
                K::InvalidSignature => "the token's signature is not valid".to_owned(),
                _ => format!("invalid token: {e}"),
            }
        })?;
        let c = data.claims;
        let publish = patterns(&c.herald.publish, "the token's herald.publish")?;
        let subscribe = patterns(&c.herald.subscribe, "the token's herald.subscribe")?;
        let id = format!("jwt:{}", c.sub.as_deref().unwrap_or("-"));
        let expires = UNIX_EPOCH + Duration::from_secs(c.exp.saturating_add(self.leeway));
        Ok((
            Principal::new(id, publish, subscribe, c.herald.admin),
            expires,
        ))
    }
}

fn public_key(pem: &[u8]) -> Result<(Algorithm, DecodingKey), String> {
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Algorithm::RS256, k));
    }
    DecodingKey::from_ed_pem(pem)
        .map(|k| (Algorithm::EdDSA, k))
        .map_err(|_| "not a PEM RSA or Ed25519 public key".to_owned())
}

/// How to sign a new token.
#[derive(Debug)]
pub enum SigningKey {
    /// HS256 with the shared secret.
    Secret(String),
    /// RS256 or EdDSA with a PEM private key.
    PrivatePem(Vec<u8>),
}

/// Mints a token granting `claim` for `ttl`.
pub fn mint(
    key: &SigningKey,
    subject: Option<String>,
    claim: HeraldClaim,
    ttl: Duration,
) -> Result<String, String> {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .saturating_add(ttl)
        .as_secs();
    let claims = Claims {
        sub: subject,
        exp,
        herald: claim,
    };
    let (alg, key) = match key {
        SigningKey::Secret(s) => (Algorithm::HS256, EncodingKey::from_secret(s.as_bytes())),
        SigningKey::PrivatePem(pem) => match EncodingKey::from_rsa_pem(pem) {
            Ok(k) => (Algorithm::RS256, k),
            Err(_) => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(pem)
                    .map_err(|_| "not a PEM RSA or Ed25519 private key".to_owned())?,
            ),
        },
    };
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).map_err(|e| e.to_string())
}
