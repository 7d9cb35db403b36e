//! Consumer groups, jobs and webhooks.

use crate::client::{Client, check};
use crate::error::{Error, ErrorKind};
use bytes::Bytes;
use herald_proto::{Claimed, Delivery, JobDoc};
use serde_json::{Value, json};
use std::time::Duration;

/// Options of a claim.
///
/// ```
/// use std::time::Duration;
/// let opts = herald_client::ClaimOptions { max: 10, wait: Some(Duration::from_secs(20)), lease: None };
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClaimOptions {
    /// Most deliveries (1–1000; 10 when 0).
    pub max: usize,
    /// Long-poll up to this long while nothing is available.
    pub wait: Option<Duration>,
    /// Lease for these deliveries (the group's default when absent).
    pub lease: Option<Duration>,
}

/// A submitted job.
///
/// ```no_run
/// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
/// let job = client.submit_job("render", r#"{"frame":7}"#, "application/json", None).await?;
/// println!("follow it at {}", job.status_url);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SubmittedJob {
    /// The job id.
    pub id: String,
    /// `/v1/jobs/{queue}/{id}`.
    pub status_url: String,
    /// The secret the callback is signed with, when a callback URL was given.
    #[serde(default)]
    pub callback_secret: Option<String>,
}

fn settle_body(receipts: &[String]) -> Value {
    json!({ "receipts": receipts })
}

impl Client {
    async fn post_json(&self, path: &str, body: &Value, timeout: Duration) -> Result<Value, Error> {
        let res = self
            .http
            .post(self.url(path))
            .json(body)
            .timeout(timeout)
            .send()
            .await?;
        Ok(check(res).await?.json().await?)
    }

    /// Leases up to `opts.max` messages of `topic` to this member of `group`,
    /// long-polling while none is available.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use herald_client::ClaimOptions;
    /// let batch = client.claim("orders", "billing", ClaimOptions { max: 10, ..Default::default() }).await?;
    /// let receipts: Vec<String> = batch.iter().map(|d| d.receipt.clone()).collect();
    /// client.ack("orders", "billing", &receipts).await?;
    /// # Ok(()) }
    /// ```
    pub async fn claim(
        &self,
        topic: &str,
        group: &str,
        opts: ClaimOptions,
    ) -> Result<Vec<Delivery>, Error> {
        let mut body = json!({ "max": if opts.max == 0 { 10 } else { opts.max } });
        if let Some(w) = opts.wait {
            body["wait"] = json!(w.as_secs_f64());
        }
        if let Some(l) = opts.lease {
            body["lease_seconds"] = json!(l.as_secs_f64());
        }
        let timeout = opts.wait.unwrap_or_default() + Duration::from_secs(15);
        let v = self
            .post_json(
                &format!("/v1/topics/{topic}/groups/{group}/claim"),
                &body,
                timeout,
            )
            .await?;
        let c: Claimed =
            serde_json::from_value(v).map_err(|e| Error::new(ErrorKind::Decode, e.to_string()))?;
        Ok(c.deliveries)
    }

    /// Acknowledges deliveries. Answers the server's `{"acked", "refused"}`.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client, receipt: String) -> Result<(), herald_client::Error> {
    /// client.ack("orders", "billing", &[receipt]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn ack(&self, topic: &str, group: &str, receipts: &[String]) -> Result<Value, Error> {
        self.post_json(
            &format!("/v1/topics/{topic}/groups/{group}/ack"),
            &settle_body(receipts),
            Duration::from_secs(30),
        )
        .await
    }

    /// Returns deliveries for redelivery after `delay`, recording `error` as the reason.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client, receipt: String) -> Result<(), herald_client::Error> {
    /// use std::time::Duration;
    /// client.nack("orders", "billing", &[receipt], Duration::from_secs(10), Some("db down")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn nack(
        &self,
        topic: &str,
        group: &str,
        receipts: &[String],
        delay: Duration,
        error: Option<&str>,
    ) -> Result<Value, Error> {
        let mut body = settle_body(receipts);
        body["delay_seconds"] = json!(delay.as_secs_f64());
        if let Some(e) = error {
            body["error"] = json!(e);
        }
        self.post_json(
            &format!("/v1/topics/{topic}/groups/{group}/nack"),
            &body,
            Duration::from_secs(30),
        )
        .await
    }

    /// Submits a job; `callback` gets the final job document, signed.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// let job = client.submit_job("mail", "hello", "text/plain", Some("https://example.com/done")).await?;
    /// let secret = job.callback_secret.expect("a callback was asked for");
    /// # Ok(()) }
    /// ```
    pub async fn submit_job(
        &self,
        queue: &str,
        task: impl Into<Bytes>,
        content_type: &str,
        callback: Option<&str>,
    ) -> Result<SubmittedJob, Error> {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/jobs/{queue}")))
            .header("content-type", content_type)
            .body(task.into());
        if let Some(cb) = callback {
            req = req.header("herald-callback", cb);
        }
        Ok(check(req.send().await?).await?.json().await?)
    }

    /// A job's document; with `wait`, held until the job finishes or the wait ends.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use std::time::Duration;
    /// let doc = client.job("render", "0a1b2c3d0000000000000007", Some(Duration::from_secs(30))).await?;
    /// println!("{:?}", doc.status);
    /// # Ok(()) }
    /// ```
    pub async fn job(
        &self,
        queue: &str,
        id: &str,
        wait: Option<Duration>,
    ) -> Result<JobDoc, Error> {
        let mut req = self.http.get(self.url(&format!("/v1/jobs/{queue}/{id}")));
        if let Some(w) = wait {
            req = req
                .query(&[("wait", w.as_secs_f64())])
                .timeout(w + Duration::from_secs(15));
        }
        Ok(check(req.send().await?).await?.json().await?)
    }

    /// Reports a job's progress, success (`Ok(result)`) or failure (`Err(error)`); the
    /// verb is `progress`, `complete` or `fail`.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// let id = "0a1b2c3d0000000000000007";
    /// client.report_job("render", id, "progress", &serde_json::json!({"percent": 50})).await?;
    /// client.report_job("render", id, "complete", &serde_json::json!({"url": "s3://out.png"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn report_job(
        &self,
        queue: &str,
        id: &str,
        verb: &str,
        value: &Value,
    ) -> Result<JobDoc, Error> {
        if !matches!(verb, "progress" | "complete" | "fail") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "verb must be progress, complete or fail",
            ));
        }
        let v = self
            .post_json(
                &format!("/v1/jobs/{queue}/{id}/{verb}"),
                value,
                Duration::from_secs(30),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| Error::new(ErrorKind::Decode, e.to_string()))
    }

    async fn webhook_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut req = self
            .http
            .request(method, self.url(path))
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = check(req.send().await?).await?;
        if res.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(res.json().await?)
    }

    /// Registers a webhook endpoint for `pattern`; `after` is where delivery starts
    /// (`latest` by default). Answers the endpoint, with its signing `secret`.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// let hook = client.create_webhook("orders.>", "https://example.com/hook", None).await?;
    /// println!("{} {}", hook["id"], hook["secret"]);
    /// # Ok(()) }
    /// ```
    pub async fn create_webhook(
        &self,
        pattern: &str,
        url: &str,
        after: Option<&str>,
    ) -> Result<Value, Error> {
        let mut body = json!({"pattern": pattern, "url": url});
        if let Some(a) = after {
            body["after"] = json!(a);
        }
        self.webhook_request(reqwest::Method::POST, "/v1/webhooks", Some(body))
            .await
    }

    /// Every webhook endpoint the caller may see.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// for hook in client.webhooks().await?["webhooks"].as_array().into_iter().flatten() {
    ///     println!("{} → {}", hook["pattern"], hook["url"]);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn webhooks(&self) -> Result<Value, Error> {
        self.webhook_request(reqwest::Method::GET, "/v1/webhooks", None)
            .await
    }

    /// The latest delivery attempts of an endpoint, newest first.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// let log = client.webhook_deliveries("wh0123456789abcdef", 20).await?;
    /// # Ok(()) }
    /// ```
    pub async fn webhook_deliveries(&self, id: &str, limit: usize) -> Result<Value, Error> {
        self.webhook_request(
            reqwest::Method::GET,
            &format!("/v1/webhooks/{id}/deliveries?limit={limit}"),
            None,
        )
        .await
    }

    /// Redelivers an endpoint's messages from `after` (`earliest` or a cursor), and
    /// re-enables it if it was disabled.
    ///
    /// ```no_run
    /// # async fn demo(client: herald_client::Client) -> Result<(), herald_client::Error> {
    /// client.replay_webhook("wh0123456789abcdef", "earliest").await?;
    /// # Ok(()) }
    /// ```
    pub async fn replay_webhook(&self, id: &str, after: &str) -> Result<Value, Error> {
        let path = format!("/v1/webhooks/{id}/replay?after={after}");
        self.webhook_request(reqwest::Method::POST, &path, None)
            .await
    }
}
