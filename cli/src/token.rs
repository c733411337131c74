//! `vigilo token`: mints a local bearer token with the data folder's secret.

use std::path::Path;
use std::process::ExitCode;

use vigilo_domain::ids::UserId;
use vigilo_domain::workspace::check_email;
use vigilo_local::DataDir;

pub fn run(data: &Path, sub: &str, email: &str, name: Option<&str>) -> Result<ExitCode, String> {
    UserId::parse(sub).map_err(|r| format!("--sub {r}"))?;
    check_email(email).map_err(|r| format!("--email {r}"))?;
    let dir = DataDir::create(data).map_err(|e| e.to_string())?;
    let key = dir.token_secret().map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now().as_second().max(0) as u64;
    let token = vigilo_http::auth::mint(&key, sub, email, name, now)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
