//! Leases: what an operation in flight (load, pull, import, commit, push) holds in the content
//! store, so that a failed operation removes the blobs it brought in and no one removes a
//! blob another operation still needs.
//!
//! - Every blob an operation writes, or finds already stored and relies on, is *held* by the
//!   operation's [`Lease`] before it checks whether the blob is there ([`Lease::hold`]), and
//!   stays held until the lease ends. A hold is a count per blob in the service's
//!   [`Leases`] registry (one per operation however often it holds the blob).
//! - A blob the operation *created* (absent when it held it, then committed by it) is
//!   recorded. When the lease ends without [`Lease::succeed`] (an error, a refusal, a
//!   panic), those blobs are marked *doomed*.
//! - When the last hold of a blob goes, a doomed blob that no image references is deleted.
//!   A blob that was in the store before the operation is never doomed by it; a blob another
//!   operation holds waits for that operation (if it succeeds, its image references the blob
//!   and the blob stays; if it fails too, the blob goes with it).
//! - Holding, releasing and the deletions happen under the registry's lock, so a blob is never
//!   deleted between another operation's hold and its use. [`ImageService::gc`] takes the same
//!   lock and spares held blobs.
//! - The committed snapshots (unpacked layers) an operation makes or relies on are held the
//!   same way, by chain ID ([`Lease::hold_snapshot`]), from before the operation looks for
//!   them until its image is stored: gc spares them too.
//!
//! The registry is in memory: a daemon that dies mid-operation leaves the blobs of that
//! operation unreferenced, for `gc` to find (temp files go at the next open).
use crate::digest::Digest;
use crate::error::Result;
use crate::service::ImageService;
use crate::store::{BlobWriter, ContentStore};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

/// The holds of all operations in flight, per blob.
#[derive(Debug, Default)]
pub struct Leases {
    blobs: Mutex<HashMap<Digest, Hold>>,
    /// A tar-split pass ([`crate::slim`]) left a layer blob because an operation held it: the
    /// next lease to end runs the pass again.
    pub(crate) retry_drop: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Hold {
    /// Operations holding the blob.
    count: usize,
    /// Created by an operation that failed: delete once unheld, unless an image uses it.
    doomed: bool,
}

/// The registry's lock: while it is held no hold starts or ends (used by gc).
pub(crate) struct LeasesGuard<'a>(MutexGuard<'a, HashMap<Digest, Hold>>);

impl LeasesGuard<'_> {
    pub(crate) fn is_held(&self, d: &Digest) -> bool {
        self.0.get(d).is_some_and(|h| h.count > 0)
    }
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<Digest, Hold>> {
        // A panic while the lock was held left the counts as they were: keep using them.
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn guard(&self) -> LeasesGuard<'_> {
        LeasesGuard(self.lock())
    }
    /// Blobs held by operations in flight (for reports and tests).
    pub fn held(&self) -> Vec<Digest> {
        self.lock()
            .iter()
            .filter(|(_, h)| h.count > 0)
            .map(|(d, _)| d.clone())
            .collect()
    }
}

/// What one operation holds and created; shared with the [`BlobWriter`]s it opens.
#[derive(Debug)]
pub(crate) struct LeaseState {
    reg: Arc<Leases>,
    held: Mutex<HashSet<Digest>>,
    created: Mutex<HashSet<Digest>>,
    /// Created for this operation only (e.g. a layer compressed for a push): removed at its
    /// end even when it succeeds, unless an image references it.
    temporary: Mutex<HashSet<Digest>>,
}

impl LeaseState {
    /// Hold `d` (once per operation); returns whether the blob is in `content` now.
    pub(crate) fn hold(&self, content: &ContentStore, d: &Digest) -> bool {
        let reg = self.hold_locked(d);
        // Checked while holding the registry lock: a deletion of `d` is either done (absent
        // here) or can no longer happen (held).
        let there = content.exists(d);
        drop(reg);
        there
    }
    /// Hold `d` and return the registry, still locked.
    fn hold_locked(&self, d: &Digest) -> MutexGuard<'_, HashMap<Digest, Hold>> {
        let mut reg = self.reg.lock();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.insert(d.clone()) {
            reg.entry(d.clone()).or_default().count += 1;
        }
        reg
    }
    /// `d` (held) was committed by this operation and was not in the store before.
    pub(crate) fn created(&self, d: &Digest) {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(d.clone());
    }
}

/// One operation's lease on the content store; see the module docs. Dropping it without
/// [`Lease::succeed`] ends it as failed.
pub struct Lease<'a> {
    svc: &'a ImageService,
    state: Arc<LeaseState>,
    ok: bool,
}

impl<'a> Lease<'a> {
    pub(crate) fn new(svc: &'a ImageService) -> Lease<'a> {
        Lease {
            svc,
            state: Arc::new(LeaseState {
                reg: svc.leases.clone(),
                held: Default::default(),
                created: Default::default(),
                temporary: Default::default(),
            }),
            ok: false,
        }
    }
    /// The image service the lease is on.
    pub fn service(&self) -> &'a ImageService {
        self.svc
    }
    /// Hold blob `d` for this operation; returns whether it is stored now (if not, the
    /// operation is expected to write it).
    pub fn hold(&self, d: &Digest) -> bool {
        self.state.hold(&self.svc.content, d)
    }
    /// Hold the committed snapshot of chain ID `chain` (made or found by this operation) so
    /// that gc spares it until the image that references it is stored.
    pub fn hold_snapshot(&self, chain: &Digest) {
        drop(self.state.hold_locked(chain));
    }
    /// A blob writer whose commit holds the blob for this operation.
    pub fn writer(
        &self,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter> {
        Ok(self
            .svc
            .content
            .writer(expected, expected_size)?
            .leased(self.state.clone()))
    }
    /// [`ContentStore::write_bytes`] under this lease.
    pub fn write_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let d = Digest::of(data);
        if let Some(e) = expected {
            if e != &d {
                return Err(crate::Error::DigestMismatch {
                    what: "blob".into(),
                    expected: e.to_string(),
                    actual: d.to_string(),
                });
            }
        }
        if self.hold(&d) {
            return Ok(d);
        }
        let mut w = self.writer(Some(d), Some(data.len() as u64))?;
        std::io::Write::write_all(&mut w, data)
            .map_err(|e| crate::Error::io("write blob", w.tmp_path(), e))?;
        w.commit()
    }
    /// [`ContentStore::write_from`] under this lease.
    pub fn write_from(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Digest> {
        let mut w = self.writer(expected.cloned(), expected_size)?;
        let tmp = w.tmp_path().to_path_buf();
        crate::store::copy_buf(r, &mut w)
            .map_err(|e| crate::Error::io("copy into blob", tmp, e))?;
        w.commit()
    }
    /// `d` (held, written by this operation) is needed only until the operation ends.
    pub fn temporary(&self, d: &Digest) {
        self.state
            .temporary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(d.clone());
    }
    /// The operation succeeded: what it created stays (its image references it).
    pub fn succeed(mut self) {
        self.ok = true;
    }
    fn release(&mut self) {
        let held: Vec<Digest> = self
            .state
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        let created =
            std::mem::take(&mut *self.state.created.lock().unwrap_or_else(|p| p.into_inner()));
        let temporary = std::mem::take(
            &mut *self
                .state
                .temporary
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let mut reg = self.state.reg.lock();
        let mut unheld_doomed = Vec::new();
        for d in held {
            let Some(h) = reg.get_mut(&d) else { continue };
            h.count = h.count.saturating_sub(1);
            if (!self.ok || temporary.contains(&d)) && created.contains(&d) {
                h.doomed = true;
            }
            if h.count == 0 {
                if h.doomed {
                    unheld_doomed.push(d.clone());
                }
                reg.remove(&d);
            }
        }
        if unheld_doomed.is_empty() {
            drop(reg);
            self.retry_slim(false);
            return;
        }
        // Still under the registry lock: no one can hold these blobs before they are gone.
        let referenced = self.svc.referenced_blobs();
        let mut kept_for_images = false;
        for d in unheld_doomed {
            if referenced.contains(&d) {
                // an image's layer blob written again (it may have been dropped: tar-split)
                kept_for_images = true;
                continue;
            }
            match self.svc.content.delete(&d) {
                Ok(()) => tracing::debug!("removed blob {d} of a failed operation"),
                Err(e) => tracing::warn!("removing blob {d} of a failed operation: {e}"),
            }
        }
        drop(reg);
        self.retry_slim(kept_for_images);
    }

    /// Run the tar-split pass now when `needed` (a failed operation wrote an image's layer
    /// blob again), or in the background when one skipped a blob an operation held.
    fn retry_slim(&self, needed: bool) {
        let retry = self
            .svc
            .leases
            .retry_drop
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if needed {
            if let Err(e) = self.svc.slim() {
                tracing::warn!("dropping layer blobs kept as tar-split: {e}");
            }
        } else if retry {
            let d = self.svc.dropper();
            std::thread::spawn(move || {
                if let Err(e) = d.run() {
                    tracing::warn!("dropping layer blobs kept as tar-split: {e}");
                }
            });
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_lease_removes_what_it_created_unless_held_or_there_before() {
        let td = tempfile::tempdir().unwrap();
        let s =
            ImageService::open(td.path(), Some(crate::snapshot::SnapshotterKind::Copy)).unwrap();
        let before = s.content.write_bytes(b"before", None).unwrap();
        let a = Lease::new(&s);
        let b = Lease::new(&s);
        let mine = a.write_bytes(b"mine", None).unwrap();
        let shared = a.write_bytes(b"shared", None).unwrap();
        assert!(a.hold(&before));
        assert!(b.hold(&shared), "b finds a's blob");
        let mut w = a.writer(None, None).unwrap();
        std::io::Write::write_all(&mut w, b"streamed").unwrap();
        let streamed = w.commit().unwrap();
        drop(a); // failed
        assert!(!s.content.exists(&mine) && !s.content.exists(&streamed));
        assert!(s.content.exists(&before), "there before: stays");
        assert!(s.content.exists(&shared), "held by b: stays");
        assert_eq!(s.leases.held(), vec![shared.clone()]);
        drop(b); // failed too: the last holder of a doomed blob removes it
        assert!(!s.content.exists(&shared));
        assert!(s.content.exists(&before));
        assert!(s.leases.held().is_empty());

        // success keeps what was created
        let c = Lease::new(&s);
        let kept = c.write_bytes(b"kept", None).unwrap();
        c.succeed();
        assert!(s.content.exists(&kept));
    }
}
