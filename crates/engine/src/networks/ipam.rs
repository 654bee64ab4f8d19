//! The IPAM store every network shares, its address changes written off the requests' path:
//! an allocation (connect) or release (exit) changes the store in memory and wakes a flusher
//! thread that writes the changed networks' files 20 ms later, in one batch (each file still
//! temp, fsync, rename, fsync the directory). Two fsyncs per container start and two per exit
//! cost 10-40 ms on a busy disk, in the middle of a `docker run`. A crash before the flush
//! loses nothing: the start-up reconciles the store with the endpoints of the containers that
//! still run (`Networks::restore`). Creating and removing a network is written at once.
use super::bridge::lock;
use crate::util::internal;
use crate::Result;
use berth_net::IpamStore;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How long the flusher waits after the first change of a batch.
const BATCH_DELAY: Duration = Duration::from_millis(20);

pub(super) struct Ipam {
    store: Mutex<IpamStore>,
    wake: Mutex<Option<Sender<()>>>,
}

/// The store, locked; dropping it after a change wakes the flusher.
pub(super) struct IpamGuard<'a> {
    store: MutexGuard<'a, IpamStore>,
    owner: &'a Ipam,
}

impl Ipam {
    /// Open the store in `dir`, address writes deferred, with its flusher thread.
    pub(super) fn open(dir: PathBuf) -> Result<Arc<Ipam>> {
        let mut store = IpamStore::open(&dir)
            .map_err(|e| internal(format!("open the IPAM store in {}", dir.display()), e))?;
        store.defer_address_writes();
        let ipam = Arc::new(Ipam {
            store: Mutex::new(store),
            wake: Mutex::new(None),
        });
        let (tx, rx) = channel();
        let weak = Arc::downgrade(&ipam);
        match std::thread::Builder::new()
            .name("berth-ipam".into())
            .spawn(move || flusher(weak, rx))
        {
            Ok(_) => *lock(&ipam.wake)? = Some(tx),
            // (Without the thread every change is flushed by the guard that made it.)
            Err(e) => tracing::warn!("start the IPAM flusher thread: {e}"),
        }
        Ok(ipam)
    }

    pub(super) fn lock(&self) -> Result<IpamGuard<'_>> {
        Ok(IpamGuard {
            store: lock(&self.store)?,
            owner: self,
        })
    }

    /// Write what is not written yet, now (shutdown).
    pub(super) fn flush(&self) {
        if let Ok(mut st) = self.store.lock() {
            if let Err(e) = st.flush() {
                tracing::warn!("write the networks' address allocations: {e}");
            }
        }
    }

    /// Whether the flusher was told (else the caller writes at once).
    fn wake(&self) -> bool {
        self.wake
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|tx| tx.send(()).is_ok()))
            .unwrap_or(false)
    }
}

impl Deref for IpamGuard<'_> {
    type Target = IpamStore;
    fn deref(&self) -> &IpamStore {
        &self.store
    }
}

impl DerefMut for IpamGuard<'_> {
    fn deref_mut(&mut self) -> &mut IpamStore {
        &mut self.store
    }
}

impl Drop for IpamGuard<'_> {
    fn drop(&mut self) {
        if self.store.has_unwritten() && !self.owner.wake() {
            if let Err(e) = self.store.flush() {
                tracing::warn!("write the networks' address allocations: {e}");
            }
        }
    }
}

/// Waits for a change, lets the batch gather, writes it; ends with the store.
fn flusher(ipam: Weak<Ipam>, rx: Receiver<()>) {
    while rx.recv().is_ok() {
        std::thread::sleep(BATCH_DELAY);
        while rx.try_recv().is_ok() {}
        let Some(ipam) = ipam.upgrade() else {
            return;
        };
        ipam.flush();
    }
}
