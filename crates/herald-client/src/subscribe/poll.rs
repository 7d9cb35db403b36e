//! Short and long polling.

use super::{Event, Session, Stop, Via};
use crate::client::ReadOptions;
use std::time::Duration;

pub(crate) async fn run(s: &mut Session<'_>, via: Via) -> Stop {
    loop {
        let read = ReadOptions::after(s.cursor.clone()).limit(1000);
        let read = match via {
            Via::LongPoll => read.wait(Duration::from_secs(30)),
            _ => read,
        };
        let page = match s.client.read(&[s.pattern], read).await {
            Ok(p) => p,
            Err(e) => return Stop::from_error(e),
        };
        if let Some(reset) = page.reset
            && let Err(stop) = s.emit(Event::Reset(reset)).await
        {
            return stop;
        }
        let empty = page.messages.is_empty();
        for m in page.messages {
            if let Err(stop) = s.emit(Event::Message(m)).await {
                return stop;
            }
        }
        s.started_at(page.next);
        if let (true, Via::Poll { interval }) = (empty, via) {
            tokio::time::sleep(interval).await;
        }
    }
}
