//! Outbound HTTP for webhook deliveries: one client per process (connection pooling,
//! TLS with the platform's roots), a short timeout, and no redirects (a receiver that
//! moves must be updated, not followed).

use std::time::Duration;

use async_trait::async_trait;
use vigilo_app::services::webhooks::WebhookSender;

pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    pub fn new() -> Result<HttpSender, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Vigilo-Webhooks/1")
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpSender { client })
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        let mut req = self.client.post(url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.map_err(|e| e.without_url().to_string())?;
        Ok(res.status().as_u16())
    }
}
