//! [`UserIndex`] for [`RedisStore`]: each user's sessions, kept by the
//! session writes in a sorted set under `<prefix>user:<user>`, and the
//! user's generation in the same key, so that on a Cluster the index and
//! the generation share one slot.
//!
//! Listing loads every listed session at once and keeps those still bound
//! to the user. `end_all` takes two steps: one script on the user's key
//! starts a new generation (from then on a binding of an older one is
//! refused) and lists the entries; then every listed session is checked
//! and ended in a script on its own hash. On a single node that second
//! step is one script over all the listed keys; on a Cluster it is one
//! script per session, sent concurrently, and it leaves a tombstone where
//! it ended a session or found none, which refuses a create that lands
//! after it (a login whose index entry was written first).

use async_trait::async_trait;
use deadpool_redis::redis;
use http_sessions_core::store::{
    EndAll, Ended, Loaded, Record, SessionId, SessionStore, StoreError, UnixTime, UserIndex,
};
use tokio::task::JoinSet;

use crate::script;
use crate::store::RedisStore;

/// The most sessions one script of end_all's second step names, on a
/// single node: a user with more takes several, sent together.
const KEYS_PER_SCRIPT: usize = 1000;

/// A listed entry: its id, and the score it was listed with.
struct Entry {
    id: SessionId,
    id64: String,
    ends: UnixTime,
}

/// `{generation, id, score, ...}` of the raise script.
fn raised(reply: Vec<String>) -> Result<(u64, Vec<Entry>), StoreError> {
    let mut items = reply.into_iter();
    let generation = items
        .next()
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| StoreError::unavailable("the end_all script answered no generation"))?;
    let mut entries = Vec::new();
    while let (Some(id64), Some(score)) = (items.next(), items.next()) {
        // An entry this version did not write is passed over.
        let (Some(id), Ok(ends)) = (SessionId::from_base64(&id64), score.parse::<f64>()) else {
            continue;
        };
        // Scores are whole seconds, written by the scripts.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ends = UnixTime::from_secs(ends.max(0.0) as u64);
        entries.push(Entry { id, id64, ends });
    }
    Ok((generation, entries))
}

/// Every result of `tasks`, or the first error once all are done.
async fn all<T: 'static>(mut tasks: JoinSet<Result<T, StoreError>>) -> Result<Vec<T>, StoreError> {
    let mut done = Vec::with_capacity(tasks.len());
    let mut failed = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(value)) => done.push(value),
            Ok(Err(error)) => failed = failed.or(Some(error)),
            Err(error) => failed = failed.or(Some(StoreError::unavailable(error))),
        }
    }
    failed.map_or(Ok(done), Err)
}

impl RedisStore {
    /// The ids in `user`'s index whose time has not passed at `now`.
    async fn listed(&self, user: &str, now: UnixTime) -> Result<Vec<SessionId>, StoreError> {
        let mut range = redis::cmd("ZRANGEBYSCORE");
        range
            .arg(self.user_key(user))
            .arg(format!("({}", now.as_secs()))
            .arg("+inf");
        let ids: Vec<String> = self.query(&range).await?;
        Ok(ids
            .iter()
            .filter_map(|id| SessionId::from_base64(id))
            .collect())
    }

    /// end_all's second step on a single node: one script per
    /// [`KEYS_PER_SCRIPT`] sessions, over their hashes and the index.
    async fn end_listed(
        &self,
        user: &str,
        generation: u64,
        entries: Vec<Entry>,
        keep: Option<&SessionId>,
        now: UnixTime,
    ) -> Result<usize, StoreError> {
        let index = self.user_key(user);
        let mut tasks = JoinSet::new();
        for chunk in entries.chunks(KEYS_PER_SCRIPT) {
            let keys: Vec<Vec<u8>> = chunk
                .iter()
                .map(|e| self.key_of(&e.id).into_bytes())
                .collect();
            let ids: Vec<String> = chunk.iter().map(|e| e.id64.clone()).collect();
            let kept = keep.and_then(|k| chunk.iter().position(|e| e.id == *k));
            let call = script::end_listed(&index, &keys, &ids, user, generation, kept, now);
            let store = self.clone();
            tasks.spawn(async move { store.eval::<i64>(&call).await });
        }
        let ended = all(tasks).await?;
        Ok(ended
            .into_iter()
            .map(|n| usize::try_from(n).unwrap_or(0))
            .sum())
    }

    /// end_all's second step on a Cluster: one script per session, all
    /// sent at once, then the entries that name no session of the user's
    /// leave the index.
    async fn end_each(
        &self,
        user: &str,
        generation: u64,
        entries: Vec<Entry>,
        keep: Option<&SessionId>,
        now: UnixTime,
    ) -> Result<usize, StoreError> {
        let mut tasks = JoinSet::new();
        for entry in entries {
            let call = script::end_one(
                self.key_arg(&entry.id),
                user,
                generation,
                keep == Some(&entry.id),
                entry.ends,
                now,
            );
            let store = self.clone();
            tasks.spawn(async move {
                let answer: i64 = store.eval(&call).await?;
                Ok((entry.id64, answer))
            });
        }
        let answers = all(tasks).await?;
        let index = self.user_key(user);
        let ended = answers.iter().filter(|(_, answer)| *answer == 1).count();
        let stale: Vec<&str> = answers
            .iter()
            .filter(|(id, answer)| *answer != 2 && keep.is_none_or(|k| k.to_base64() != *id))
            .map(|(id, _)| id.as_str())
            .collect();
        self.unlist(&index, &stale).await?;
        Ok(ended)
    }
}

#[async_trait]
impl UserIndex for RedisStore {
    async fn list(
        &self,
        user: &str,
        now: UnixTime,
    ) -> Result<Vec<(SessionId, Record)>, StoreError> {
        let mut tasks = JoinSet::new();
        for id in self.listed(user, now).await? {
            let store = self.clone();
            tasks.spawn(async move { Ok((id, store.load(&id, now).await?)) });
        }
        Ok(all(tasks)
            .await?
            .into_iter()
            .filter_map(|(id, loaded)| match loaded {
                // The hash's user, not the entry, says whose it is.
                Some(Loaded::Live(record)) if record.user.as_deref() == Some(user) => {
                    Some((id, record))
                }
                _ => None,
            })
            .collect())
    }

    async fn end(&self, user: &str, id: &SessionId, now: UnixTime) -> Result<bool, StoreError> {
        let index = self.user_key(user);
        let id64 = id.to_base64();
        if !self.is_cluster() {
            let call = script::end(self.key_arg(id), Some(&index), user, &id64, now);
            return Ok(self.eval::<i64>(&call).await? == 1);
        }
        let call = script::end(self.key_arg(id), None, user, &id64, now);
        let ended = self.eval::<i64>(&call).await? == 1;
        self.unlist(&index, &[id64.as_str()]).await?;
        Ok(ended)
    }

    async fn end_all(&self, user: &str, end: EndAll<'_>) -> Result<Ended, StoreError> {
        // The script raises the user's generation to
        // `next_generation(current, end.floor)`.
        let raise = script::raise(&self.user_key(user), end.now, end.floor, end.remember_until);
        let reply: Vec<String> = self.eval(&raise).await?;
        let (generation, mut entries) = raised(reply)?;
        if let Some(keep) = end.keep
            && !entries.iter().any(|e| e.id == *keep)
        {
            // Restamped even if its entry is missing.
            entries.push(Entry {
                id: *keep,
                id64: keep.to_base64(),
                ends: end.now,
            });
        }
        let sessions = if entries.is_empty() && end.keep.is_none() {
            0
        } else if self.is_cluster() {
            self.end_each(user, generation, entries, end.keep, end.now)
                .await?
        } else {
            self.end_listed(user, generation, entries, end.keep, end.now)
                .await?
        };
        Ok(Ended {
            sessions,
            generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raise_reply_gives_the_generation_and_the_entries() {
        let id = SessionId::from_bytes([3; 16]);
        let reply = vec![
            "2".to_owned(),
            id.to_base64(),
            "1700000000".to_owned(),
            "not-an-id".to_owned(),
            "5".to_owned(),
        ];
        let (generation, entries) = raised(reply).unwrap();
        assert_eq!(generation, 2);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, id);
        assert_eq!(entries[0].ends, UnixTime::from_secs(1_700_000_000));
        assert!(raised(vec![]).is_err());
    }
}
