//! Who is calling: the token of a request (header, query or cookie) resolved to a
//! [`Principal`] from static API keys or JWTs. What a principal may do is decided in the
//! core; this module only establishes who it is.

mod config;
mod jwt;
mod token;

pub use config::{ApiKeyConfig, AuthConfig, GrantsConfig, JwtConfig, hash_key};
pub use jwt::{HeraldClaim, SigningKey, mint};
pub use token::{from_headers, redact_query};

use herald_core::{HubError, Principal};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// The server's credentials. Reloadable: [`Auth::reload`] swaps them and revokes
/// the principals of keys that were removed or changed, which ends their live streams.
#[derive(Debug)]
pub struct Auth {
    active: RwLock<Arc<Active>>,
}

#[derive(Debug)]
struct Active {
    config: Option<AuthConfig>,
    /// Callers without a token.
    anonymous: Principal,
    /// API keys by the SHA-256 of the key, with the token that revokes them.
    keys: HashMap<[u8; 32], (ApiKeyConfig, Principal, CancellationToken)>,
    jwt: Option<jwt::Verifier>,
    /// Revokes every JWT principal when the JWT configuration changes.
    jwt_generation: CancellationToken,
    /// Tokens verified already, with their principal: clients present the same JWT on
    /// every request, and verifying a signature costs far more than the request (RS256
    /// about 0.5 ms of CPU here). Emptied when full; replaced on reload.
    verified: RwLock<HashMap<Box<str>, Principal>>,
}

/// Most verified JWTs remembered.
const VERIFIED_MAX: usize = 10_000;

impl Auth {
    /// Credentials from the configuration; `None` = anonymous full access.
    pub fn new(config: Option<&AuthConfig>) -> Result<Auth, String> {
        Ok(Auth {
            active: RwLock::new(Arc::new(Active::build(config, None)?)),
        })
    }

    /// Whether access control is on.
    pub fn enabled(&self) -> bool {
        self.current().config.is_some()
    }

    /// Replaces the credentials. Principals of removed or changed API keys, and every
    /// JWT principal when the JWT settings changed, lapse at once.
    pub fn reload(&self, config: Option<&AuthConfig>) -> Result<(), String> {
        let old = self.current();
        let new = Arc::new(Active::build(config, Some(&old))?);
        for (hash, (cfg, _, revoke)) in &old.keys {
            if new.keys.get(hash).is_none_or(|(c, _, _)| c != cfg) {
                revoke.cancel();
            }
        }
        let jwt = |a: &Active| a.config.as_ref().and_then(|c| c.jwt.clone());
        if jwt(&old) != jwt(&new) {
            old.jwt_generation.cancel();
        }
        *write(&self.active) = new;
        Ok(())
    }

    /// The caller of a request with these headers and query string. Without `[auth]`
    /// every caller is the anonymous principal and tokens are not looked at.
    pub fn caller(
        &self,
        headers: &axum::http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Principal, HubError> {
        let active = self.current();
        if active.config.is_none() {
            return Ok(active.anonymous.clone());
        }
        let token = from_headers(headers, query)?;
        active.resolve(token.as_deref())
    }

    /// The caller presenting `token` (or none).
    pub fn resolve(&self, token: Option<&str>) -> Result<Principal, HubError> {
        self.current().resolve(token)
    }

    fn current(&self) -> Arc<Active> {
        read(&self.active).clone()
    }
}

impl Active {
    /// The caller presenting `token` (or none).
    fn resolve(&self, token: Option<&str>) -> Result<Principal, HubError> {
        let active = self;
        let Some(token) = token else {
            return Ok(active.anonymous.clone());
        };
        if active.config.is_none() {
            return Ok(active.anonymous.clone());
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        if let Some((_, who, _)) = active.keys.get(digest.as_ref()) {
            return Ok(who.clone());
        }
        let Some(verifier) = &active.jwt else {
            return Err(HubError::Unauthorized("unknown API key".into()));
        };
        if token.split('.').count() != 3 {
            return Err(HubError::Unauthorized(
                "unknown API key (and not a JWT)".into(),
            ));
        }
        if let Some(who) = read(&active.verified).get(token)
            && who.is_current()
        {
            return Ok(who.clone());
        }
        let (who, expires) = verifier.verify(token).map_err(HubError::Unauthorized)?;
        let who = who.lapsing(Some(expires), Some(active.jwt_generation.clone()));
        let mut verified = write(&active.verified);
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.into(), who.clone());
        Ok(who)
    }

    /// Builds credentials, keeping the revocation tokens of unchanged keys from `old`.
    fn build(config: Option<&AuthConfig>, old: Option<&Active>) -> Result<Active, String> {
        let Some(cfg) = config else {
            return Ok(Active {
                config: None,
                anonymous: Principal::anonymous(),
                keys: HashMap::new(),
                jwt: None,
                jwt_generation: CancellationToken::new(),
                verified: RwLock::default(),
            });
        };
        cfg.validate()?;
        let anonymous = match &cfg.anonymous {
            Some(g) => Principal::guest(
                config::patterns(&g.publish, "auth.anonymous.publish")?,
                config::patterns(&g.subscribe, "auth.anonymous.subscribe")?,
            ),
            None => Principal::guest(Vec::new(), Vec::new()),
        };
        let mut keys = HashMap::new();
        for k in &cfg.api_keys {
            let hash = config::key_hash(&k.hash)?;
            let kept = old
                .and_then(|o| o.keys.get(&hash))
                .filter(|(c, _, _)| c == k)
                .map(|(_, who, revoke)| (who.clone(), revoke.clone()));
            let (who, revoke) = match kept {
                Some(kept) => kept,
                None => {
                    let revoke = CancellationToken::new();
                    let name = k
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("key:{}", &k.hash[7..15]));
                    let who = Principal::new(
                        name,
                        config::patterns(&k.publish, "auth.api_keys.publish")?,
                        config::patterns(&k.subscribe, "auth.api_keys.subscribe")?,
                        k.admin,
                    )
                    .lapsing(None, Some(revoke.clone()));
                    (who, revoke)
                }
            };
            keys.insert(hash, (k.clone(), who, revoke));
        }
        let jwt = cfg.jwt.as_ref().map(jwt::Verifier::new).transpose()?;
        let jwt_generation = match old {
            Some(o) if o.config.as_ref().and_then(|c| c.jwt.as_ref()) == cfg.jwt.as_ref() => {
                o.jwt_generation.clone()
            }
            _ => CancellationToken::new(),
        };
        Ok(Active {
            config: Some(cfg.clone()),
            anonymous,
            keys,
            jwt,
            jwt_generation,
            verified: RwLock::default(),
        })
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn jwt_config(secret: &str) -> AuthConfig {
        AuthConfig {
            jwt: Some(JwtConfig {
                hs256_secret: Some(secret.into()),
                leeway_seconds: 0,
                ..JwtConfig::default()
            }),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn verified_tokens_are_remembered_until_they_lapse_or_the_keys_change() {
        let secret = "unit-test-secret-0123456789abcdef0123";
        let auth = Auth::new(Some(&jwt_config(secret))).expect("auth");
        let claim = HeraldClaim {
            publish: vec!["a".into()],
            ..HeraldClaim::default()
        };
        let token = mint(
            &SigningKey::Secret(secret.into()),
            None,
            claim,
            Duration::from_secs(60),
        )
        .expect("mint");
        let first = auth.resolve(Some(&token)).expect("valid");
        assert_eq!(auth.current().verified.read().expect("lock").len(), 1);
        let again = auth.resolve(Some(&token)).expect("cached");
        assert_eq!(first.id(), again.id());
        // New JWT settings: the old principal lapses and the token no longer verifies.
        auth.reload(Some(&jwt_config("another-secret-0123456789abcdef01234")))
            .expect("reload");
        assert!(!first.is_current());
        assert!(auth.resolve(Some(&token)).is_err());
        assert!(auth.current().verified.read().expect("lock").is_empty());
    }
}
