//! `herald token create|hash`: credentials for `[auth]`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use herald_server::Config;
use herald_server::auth::{HeraldClaim, SigningKey, hash_key, mint};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint a JWT signed with the configured `auth.jwt.hs256_secret` (or --private-key).
    Create(CreateArgs),
    /// Print the `sha256:…` hash of an API key, for `[[auth.api_keys]] hash`.
    Hash(HashArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A pattern it may publish to (repeatable).
    #[arg(long)]
    publish: Vec<String>,
    /// A pattern it may read and subscribe to (repeatable).
    #[arg(long)]
    subscribe: Vec<String>,
    /// Grant admin routes.
    #[arg(long)]
    admin: bool,
    /// How long the token is valid (`30m`, `1h`, `7d`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The `sub` claim (who it is for: shows in logs and keys rate limits).
    #[arg(long)]
    subject: Option<String>,
    /// The configuration holding `auth.jwt.hs256_secret` (then HERALD_* variables).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Sign RS256 / EdDSA with this PEM private key instead of the shared secret.
    #[arg(long)]
    private_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct HashArgs {
    /// The API key.
    key: String,
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create(a) => create(a),
        TokenCommand::Hash(a) => {
            println!("{}", hash_key(&a.key));
            Ok(())
        }
    }
}

fn create(a: CreateArgs) -> anyhow::Result<()> {
    for p in a.publish.iter().chain(&a.subscribe) {
        herald_core::Pattern::parse(p).with_context(|| format!("invalid pattern {p:?}"))?;
    }
    if a.ttl.is_zero() {
        bail!("--ttl must be positive");
    }
    let key = match &a.private_key {
        Some(path) => SigningKey::PrivatePem(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => {
            let config = Config::load(a.config.as_deref(), std::env::vars())?;
            let secret = config
                .auth
                .and_then(|auth| auth.jwt)
                .and_then(|jwt| jwt.hs256_secret);
            match secret {
                Some(s) => SigningKey::Secret(s),
                None => bail!(
                    "no auth.jwt.hs256_secret configured: pass --config FILE (or set \
                     HERALD_AUTH__JWT__HS256_SECRET), or sign with --private-key FILE"
                ),
            }
        }
    };
    let claim = HeraldClaim {
        publish: a.publish,
        subscribe: a.subscribe,
        admin: a.admin,
    };
    let token = mint(&key, a.subject, claim, a.ttl).map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}
