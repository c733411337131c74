//! Outbound HTTP for webhook deliveries: one client per process (connection pooling,
//! TLS with the platform's roots), a short timeout, and no redirects (a receiver that
//! moves must be updated, not followed).

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use vigilo_app::notify::WebhookSender;

pub struct HttpSender {
    /// Built on the first delivery: loading the platform's TLS roots costs a few
    /// milliseconds that a function's cold start need not pay when nothing is sent.
    client: OnceLock<reqwest::Client>,
}

impl HttpSender {
    pub fn new() -> Result<HttpSender, String> {
        Ok(HttpSender { client: OnceLock::new() })
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Vigilo-Webhooks/1")
            .build()
            .map_err(|e| e.to_string())?;
        Ok(self.client.get_or_init(|| built))
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        let mut req = self.client()?.post(url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.map_err(|e| e.without_url().to_string())?;
        Ok(res.status().as_u16())
    }
}
