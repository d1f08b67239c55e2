//! `storegate client`: register a client (`new`) or rotate its secret (`rotate`), printing
//! the config lines to paste.

use std::process::ExitCode;

use clap::Subcommand;
use storegate::config::Config;
use storegate::registration::toml_string;

use super::{EXIT_CONFIG, EXIT_USAGE, config_failure};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Print the config entry to paste: with a fresh secret (shown once), or for a client
    /// that authenticates with a certificate or signed assertions.
    New {
        /// The client id.
        id: String,
        /// The API(s) the client's tokens are for.
        #[arg(long = "api", default_value = "store")]
        apis: Vec<String>,
        /// How it authenticates (RFC 7591): client_secret_basic, client_secret_post,
        /// tls_client_auth, self_signed_tls_client_auth or private_key_jwt. Default: a secret.
        #[arg(long)]
        auth_method: Option<String>,
        /// tls_client_auth: the subject DN its certificate names (RFC 4514).
        #[arg(long, group = "subject")]
        subject_dn: Option<String>,
        /// tls_client_auth: a DNS name in its certificate's SAN.
        #[arg(long, group = "subject")]
        san_dns: Option<String>,
        /// tls_client_auth: a URI in its certificate's SAN.
        #[arg(long, group = "subject")]
        san_uri: Option<String>,
        /// tls_client_auth: an IP address in its certificate's SAN.
        #[arg(long, group = "subject")]
        san_ip: Option<String>,
        /// tls_client_auth: an email address in its certificate's SAN.
        #[arg(long, group = "subject")]
        san_email: Option<String>,
        /// self_signed_tls_client_auth, private_key_jwt: its JWKS file.
        #[arg(long)]
        jwks_file: Option<String>,
        /// Bind its tokens to the certificate its token requests present (RFC 8705 §3).
        #[arg(long)]
        certificate_bound: bool,
    },
    /// Print a fresh secret for a client of the config, and its `secret_hashes` line with the
    /// old and the new secret: paste it, move the caller over, then drop the old hash.
    Rotate {
        /// The client id.
        id: String,
    },
}

pub fn client_command(command: ClientCommand, config: &std::path::Path) -> ExitCode {
    use storegate::clients::{format_secret_hash, generate_secret, hash_secret};
    let list = |items: &mut dyn Iterator<Item = String>| {
        items
            .map(|s| toml_string(&s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match command {
        ClientCommand::New {
            id,
            apis,
            auth_method,
            subject_dn,
            san_dns,
            san_uri,
            san_ip,
            san_email,
            jwks_file,
            certificate_bound,
        } => {
            let subject = [
                ("tls_client_auth_subject_dn", subject_dn),
                ("tls_client_auth_san_dns", san_dns),
                ("tls_client_auth_san_uri", san_uri),
                ("tls_client_auth_san_ip", san_ip),
                ("tls_client_auth_san_email", san_email),
            ]
            .into_iter()
            .find_map(|(key, v)| v.map(|v| (key, v)));
            let new = storegate::registration::NewClient {
                id,
                apis,
                method: auth_method,
                subject,
                jwks_file,
                certificate_bound,
            };
            match storegate::registration::entry(&new) {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("storegate: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
        ClientCommand::Rotate { id } => {
            let secret = generate_secret();
            let cfg = match Config::load(config) {
                Ok(c) => c,
                Err(e) => return config_failure(config, &e),
            };
            let Some(client) = cfg.clients.get(&id) else {
                eprintln!("storegate: {}: no client {id:?}", config.display());
                return ExitCode::from(EXIT_CONFIG);
            };
            let old = client.secret_digests.iter().map(|d| format_secret_hash(d));
            let new = std::iter::once(hash_secret(&secret));
            println!(
                "# new client secret for {id:?} (shown once; give it to the client, store it nowhere else):"
            );
            println!("# {secret}");
            println!(
                "# In the entry of {id:?}, replace secret_hash/secret_hashes with this line; once the caller uses the new secret, drop the old hash(es):"
            );
            println!("secret_hashes = [{}]", list(&mut old.chain(new)));
        }
    }
    ExitCode::SUCCESS
}
