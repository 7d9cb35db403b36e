//! Jobs: the async-task pattern on top of topics and consumer groups.
//!
//! Submitting publishes the task to `jobs.{queue}`; the job's id is that message's
//! cursor. Each state of the job is a JSON document published to `jobs.{queue}.{id}`,
//! so the submitter can short-poll, long-poll, or follow it over SSE or WebSocket.
//! Workers take tasks with any consumer group on `jobs.{queue}`; a delivery marks the job
//! `running` (with its attempt), a task that uses up its attempts ends `failed`, and a
//! worker reports `progress`, `complete` or `fail`. Terminal states with a callback URL
//! enqueue a signed callback on `_herald.callbacks` in the same commit.

use crate::Start;
use crate::clock::rfc3339_ms;
use crate::cursor::Cursor;
use crate::error::HubError;
use crate::groups::{Delivery, GroupObserver};
use crate::hub::{Hub, Publish, Read};
use crate::message::Message;
use crate::principal::Principal;
use crate::topic::{Filter, TopicName};
use bytes::Bytes;
pub use herald_proto::{JobDoc, JobStatus};
use serde_json::Value;
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// The internal topic job callbacks wait on.
pub const CALLBACK_TOPIC: &str = "_herald.callbacks";
/// Header of a callback message: where to POST.
pub const CALLBACK_URL_HEADER: &str = "herald-callback-url";
/// Header of a task message carrying its callback URL.
const TASK_CALLBACK_HEADER: &str = "herald-callback";

/// A submitted job.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// Its first document.
    pub doc: JobDoc,
    /// The secret its callback is signed with (`whsec_…`), when it has a callback.
    pub callback_secret: Option<String>,
}

/// The topic of a queue's tasks.
pub fn queue_topic(queue: &str) -> Result<TopicName, HubError> {
    crate::check_group_name(queue).map_err(|_| {
        HubError::InvalidParameter(format!(
            "invalid queue name {:?}: use 1-64 characters from A-Z a-z 0-9 _ -",
            queue.chars().take(80).collect::<String>()
        ))
    })?;
    HubError::topic(&format!("jobs.{queue}"))
}

/// Whether `topic` is a job's status topic (`jobs.{queue}.{id}`).
pub(crate) fn is_status_topic(topic: &TopicName) -> bool {
    topic
        .as_str()
        .strip_prefix("jobs.")
        .is_some_and(|rest| rest.split('.').count() == 2)
}

fn status_topic(queue: &str, id: &str) -> Result<TopicName, HubError> {
    Cursor::parse(id).map_err(|_| HubError::JobNotFound(id.chars().take(64).collect()))?;
    HubError::topic(&format!("jobs.{queue}.{id}"))
}

/// Serialises status changes of one job (a delivery's `running` must not overwrite a
/// `succeeded` that raced it).
#[derive(Debug)]
pub(crate) struct JobLocks([tokio::sync::Mutex<()>; 32]);

impl Default for JobLocks {
    fn default() -> Self {
        JobLocks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl JobLocks {
    fn of(&self, id: &str) -> &tokio::sync::Mutex<()> {
        let h = id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.0[h % self.0.len()]
    }
}

/// Keeps job documents in step with the queue's consumer groups.
pub(crate) struct JobObserver;

impl GroupObserver for JobObserver {
    fn delivered(&self, hub: &Hub, topic: &TopicName, deliveries: &[Delivery]) {
        let Some(queue) = queue_of(topic) else { return };
        for d in deliveries {
            let (hub, queue, id, attempt) = (
                hub.clone(),
                queue.to_owned(),
                d.message.id.to_string(),
                d.attempt,
            );
            tokio::spawn(async move {
                let r = hub
                    .transition(&queue, &id, |doc| {
                        (!doc.status.is_terminal()).then_some(JobDoc {
                            status: JobStatus::Running,
                            attempt,
                            ..doc
                        })
                    })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(queue, id, error = %e, "cannot mark job running");
                }
            });
        }
    }

    fn dead_lettered(&self, hub: &Hub, topic: &TopicName, message: &Arc<Message>, error: &str) {
        let Some(queue) = queue_of(topic) else { return };
        let (hub, queue, id, error) = (
            hub.clone(),
            queue.to_owned(),
            message.id.to_string(),
            error.to_owned(),
        );
        tokio::spawn(async move {
            let r = hub
                .transition(&queue, &id, |doc| {
                    (!doc.status.is_terminal()).then_some(JobDoc {
                        status: JobStatus::Failed,
                        error: Some(Value::String(format!("attempts exhausted: {error}"))),
                        ..doc
                    })
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(queue, id, error = %e, "cannot mark job failed");
            }
        });
    }
}

/// `jobs.{queue}` → `queue`.
fn queue_of(topic: &TopicName) -> Option<&str> {
    let rest = topic.as_str().strip_prefix("jobs.")?;
    (!rest.contains('.')).then_some(rest)
}

impl Hub {
    /// Submits a task to `queue`. With `callback`, the job's final document is POSTed
    /// there (signed) when it finishes.
    pub async fn submit_job(
        &self,
        who: &Principal,
        queue: &str,
        mut task: Publish,
        callback: Option<String>,
    ) -> Result<Submitted, HubError> {
        let topic = queue_topic(queue)?;
        if let Some(url) = &callback {
            if url.len() > 2048 || url.is_empty() {
                return Err(HubError::InvalidParameter(
                    "the callback URL must be 1-2048 characters".into(),
                ));
            }
            task.headers
                .push((TASK_CALLBACK_HEADER.into(), url.clone()));
        }
        task.topic = Some(topic.clone());
        let published = self.publish(who, task).await?;
        let id = published.id.to_string();
        let now = rfc3339_ms(published.time_ms);
        let doc = JobDoc {
            id: id.clone(),
            queue: queue.to_owned(),
            status: JobStatus::Queued,
            attempt: 0,
            progress: None,
            result: None,
            error: None,
            created: now.clone(),
            updated: now,
        };
        // A delivery may already have marked it running; never go back to queued.
        self.transition(queue, &id, |current| {
            (current.attempt == 0 && current.status == JobStatus::Queued).then(|| current.clone())
        })
        .await?;
        let callback_secret = match callback {
            Some(_) => Some(self.callback_secret(&id).await?),
            None => None,
        };
        Ok(Submitted {
            doc,
            callback_secret,
        })
    }

    /// The secret a job's callback is signed with: derived from the server's callback
    /// key and the job id, so each submitter can verify only its own callbacks.
    pub async fn callback_secret(&self, job_id: &str) -> Result<String, HubError> {
        use base64::Engine;
        let key = self.callback_key().await?;
        let tag = crate::hmac::hmac_sha256(&key, job_id.as_bytes());
        Ok(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(tag)
        ))
    }

    /// The server's callback key: random, created on first use, stored with the log.
    async fn callback_key(&self) -> Result<Bytes, HubError> {
        const KEY: &str = "meta/callback-key";
        self.callback_key_cell()
            .get_or_try_init(|| async {
                if let Some((_, v)) = self
                    .store()
                    .records(KEY)?
                    .into_iter()
                    .find(|(k, _)| k == KEY)
                {
                    return Ok(v);
                }
                let key = Bytes::from(rand::random::<[u8; 32]>().to_vec());
                let record = crate::Record {
                    key: KEY.into(),
                    value: Some(key.clone()),
                };
                self.store().append(Vec::new(), vec![record]).await?;
                Ok(key)
            })
            .await
            .cloned()
    }

    /// The current document of a job; with `wait`, long-polls until it is finished.
    pub async fn job(
        &self,
        who: &Principal,
        queue: &str,
        id: &str,
        wait: Duration,
    ) -> Result<JobDoc, HubError> {
        let topic = status_topic(queue, id)?;
        if !who.may_subscribe(&Filter::topic(&topic)) {
            return Err(who.refuse(format!("may not read job {id}")));
        }
        let (mut doc, mut at) = self.job_doc(queue, id).await?;
        let deadline = Instant::now() + wait;
        while !doc.status.is_terminal() && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self
                .read(
                    &Principal::system(),
                    Read {
                        filter: Filter::topic(&topic),
                        start: Start::After(at),
                        limit: crate::MAX_READ_LIMIT,
                        wait: left.min(self.options().max_wait),
                    },
                )
                .await?;
            let Some(last) = r.messages.last() else { break };
            at = last.id;
            doc = parse_doc(last)?;
        }
        Ok(doc)
    }

    /// The latest document of a job and its position.
    async fn job_doc(&self, queue: &str, id: &str) -> Result<(JobDoc, Cursor), HubError> {
        let topic = status_topic(queue, id)?;
        let missing = || HubError::JobNotFound(id.to_owned());
        // A topic's newest position is known before its commit is visible to reads;
        // give an in-flight commit a moment to land.
        for _ in 0..100 {
            let info = self.store().topic(&topic)?.ok_or_else(missing)?;
            let last = info.last.ok_or_else(missing)?;
            if let Some(m) = self.message_at(&topic, last) {
                return Ok((parse_doc(&m)?, m.id));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(missing())
    }

    /// Publishes the document `change` makes of the current one (nothing when it
    /// returns `None`); serialised per job.
    async fn transition(
        &self,
        queue: &str,
        id: &str,
        change: impl FnOnce(JobDoc) -> Option<JobDoc>,
    ) -> Result<Option<JobDoc>, HubError> {
        let topic = status_topic(queue, id)?;
        let _guard = self.job_locks().of(id).lock().await;
        let current = match self.job_doc(queue, id).await {
            Ok((doc, _)) => doc,
            Err(HubError::JobNotFound(_)) => {
                // Not documented yet: it exists when its task does.
                let seq = Cursor::parse(id)
                    .map(|c| c.seq)
                    .map_err(|_| HubError::JobNotFound(id.into()))?;
                let task = self
                    .message_at(&queue_topic(queue)?, seq)
                    .ok_or_else(|| HubError::JobNotFound(id.into()))?;
                JobDoc {
                    id: id.to_owned(),
                    queue: queue.to_owned(),
                    status: JobStatus::Queued,
                    attempt: 0,
                    progress: None,
                    result: None,
                    error: None,
                    created: task.time(),
                    updated: task.time(),
                }
            }
            Err(e) => return Err(e),
        };
        let Some(mut next) = change(current.clone()) else {
            return Ok(None);
        };
        if next == current && self.store().topic(&topic)?.is_some_and(|t| t.count > 0) {
            return Ok(Some(current));
        }
        next.updated = rfc3339_ms(self.options().clock.now_ms());
        let body = serde_json::to_vec(&next).map_err(|e| HubError::InvalidBody(e.to_string()))?;
        let mut items = vec![Ok(Publish::new(topic, "application/json", body.clone()))];
        if next.status.is_terminal()
            && let Some(url) = self.callback_url(queue, id)
        {
            let mut cb = Publish::new(HubError::topic(CALLBACK_TOPIC)?, "application/json", body);
            cb.headers = vec![
                (CALLBACK_URL_HEADER.into(), url),
                ("herald-job-id".into(), id.to_owned()),
            ];
            items.push(Ok(cb));
        }
        for r in self.publish_batch(&Principal::system(), items).await? {
            r?;
        }
        Ok(Some(next))
    }

    fn callback_url(&self, queue: &str, id: &str) -> Option<String> {
        let seq = Cursor::parse(id).ok()?.seq;
        let task = self.message_at(&queue_topic(queue).ok()?, seq)?;
        task.headers
            .iter()
            .find(|(k, _)| &**k == TASK_CALLBACK_HEADER)
            .map(|(_, v)| v.to_string())
    }

    fn worker_check(&self, who: &Principal, queue: &str) -> Result<TopicName, HubError> {
        let topic = queue_topic(queue)?;
        if !who.may_subscribe(&Filter::topic(&topic)) {
            return Err(who.refuse(format!("may not work on queue {queue}")));
        }
        Ok(topic)
    }

    /// A worker reports progress: the job is `running` with this progress.
    pub async fn job_progress(
        &self,
        who: &Principal,
        queue: &str,
        id: &str,
        progress: Value,
    ) -> Result<JobDoc, HubError> {
        self.worker_check(who, queue)?;
        let r = self
            .transition(queue, id, |doc| {
                (!doc.status.is_terminal()).then_some(JobDoc {
                    status: JobStatus::Running,
                    progress: Some(progress),
                    ..doc
                })
            })
            .await?;
        r.ok_or_else(|| HubError::Conflict(format!("job {id} is already finished")))
    }

    /// A worker finishes a job: `succeeded` with `result`, or `failed` with `error` (no
    /// retry). The job's delivery is settled.
    pub async fn finish_job(
        &self,
        who: &Principal,
        queue: &str,
        id: &str,
        outcome: Result<Value, Value>,
    ) -> Result<JobDoc, HubError> {
        let topic = self.worker_check(who, queue)?;
        let r = self
            .transition(queue, id, |doc| {
                (!doc.status.is_terminal()).then_some(match outcome {
                    Ok(result) => JobDoc {
                        status: JobStatus::Succeeded,
                        result: Some(result),
                        ..doc
                    },
                    Err(error) => JobDoc {
                        status: JobStatus::Failed,
                        error: Some(error),
                        ..doc
                    },
                })
            })
            .await?;
        let doc = r.ok_or_else(|| HubError::Conflict(format!("job {id} is already finished")))?;
        if let Ok(c) = Cursor::parse(id) {
            self.settle_position(&topic, c.seq).await;
        }
        Ok(doc)
    }
}

fn parse_doc(m: &Message) -> Result<JobDoc, HubError> {
    serde_json::from_slice(&m.data).map_err(|e| {
        HubError::Storage(crate::StoreError::Io(format!(
            "job document {} is unreadable: {e}",
            m.id
        )))
    })
}

/// Turns any JSON into a job field.
pub fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}
