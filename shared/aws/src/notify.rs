//! Notices on AWS: email through SES (the raw MIME Vigilo built, so both parts and
//! every header arrive as rendered) and chat messages through SNS, whose subscribers
//! (a chat integration, a queue) render the message and its buttons.

use async_trait::async_trait;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::Value;
use vigilo_app::notify::{ChatSink, Mailer, OutgoingEmail};

pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client) -> SesMailer {
        SesMailer { client }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, String> {
        let raw = RawMessage::builder().data(Blob::new(email.raw.clone())).build().map_err(|e| e.to_string())?;
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| format!("SES: {}", aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

pub struct SnsChat {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsChat {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: &str) -> SnsChat {
        SnsChat { client, topic_arn: topic_arn.to_owned() }
    }
}

#[async_trait]
impl ChatSink for SnsChat {
    async fn publish(&self, id: &str, message: &Value) -> Result<String, String> {
        let kind = message.get("kind").and_then(Value::as_str).unwrap_or("notice");
        let attr = |v: &str| MessageAttributeValue::builder().data_type("String").string_value(v).build();
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.to_string())
            .message_attributes("kind", attr(kind).map_err(|e| e.to_string())?)
            .message_attributes("notice_id", attr(id).map_err(|e| e.to_string())?)
            .send()
            .await
            .map_err(|e| format!("SNS: {}", aws_sdk_sns::error::DisplayErrorContext(e)))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
