//! `GET /conversation/{id}/events`: the display stream as Server-Sent Events; each update's
//! `id:` is its seq, so a reconnecting client's `Last-Event-ID` resumes exactly.

use super::feed::Feed;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

pub fn stream(
    feed: Feed,
    initial: Vec<super::hub::Frame>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let pending: VecDeque<_> = initial.into();
    let s = futures::stream::unfold((feed, pending), |(mut feed, mut pending)| async move {
        loop {
            if let Some(f) = pending.pop_front() {
                let mut ev = Event::default().event(f.event).data(f.text.as_str());
                if let Some(seq) = f.seq {
                    ev = ev.id(seq.to_string());
                }
                return Some((Ok(ev), (feed, pending)));
            }
            match feed.next().await {
                Ok(frames) => pending.extend(frames),
                Err(_) => return None,
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
