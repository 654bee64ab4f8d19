//! Blob transfers: verified downloads with retry and progress, existence checks, uploads.
use super::{Body, RegistryClient};
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use crate::progress::{Progress, ProgressSink};
use crate::service::ImageService;
use std::io::Read;
use std::time::Duration;

impl RegistryClient {
    /// Download a blob into the content store (verified), with retries and progress.
    /// With `stage`, a layer is unpacked (speculatively, into a staging dir) while it downloads.
    ///
    /// At most `size` + 1 bytes are read: a registry sending more than the descriptor says is
    /// cut off there (a Content-Length announcing more fails before any byte is read). Only
    /// transport errors are retried; a size or digest mismatch is what the registry serves,
    /// so it fails at once. Nothing of a failed download is left in the store.
    pub fn fetch_blob(
        &self,
        repo: &str,
        d: &Digest,
        size: u64,
        stage: bool,
        progress: &dyn ProgressSink,
        lease: &crate::lease::Lease,
    ) -> Result<()> {
        let svc = lease.service();
        if lease.hold(d) {
            return Ok(());
        }
        let scope = format!("repository:{repo}:pull");
        let mut last_err = None;
        for attempt in 0..self.opts.retries.max(1) {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * attempt as u64));
            }
            let res = (|| -> Result<()> {
                let r = self.send(
                    "GET",
                    &format!("/v2/{repo}/blobs/{d}"),
                    &scope,
                    &[],
                    &Body::None,
                    &[],
                )?;
                if let Some(announced) = r
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|&n| n > size)
                {
                    return Err(Error::SizeMismatch {
                        what: format!("blob {d} from {} (its Content-Length)", self.host),
                        expected: size,
                        actual: announced,
                    });
                }
                let mut rd = DownloadReader {
                    // one byte more than the descriptor says tells "too long" from "right"
                    inner: r.into_reader().take(size.saturating_add(1)),
                    done: 0,
                    last: 0,
                    total: size,
                    layer: d,
                    sink: progress,
                    host: &self.host,
                };
                if stage {
                    // one pass: the download is hashed into the store and unpacked meanwhile
                    svc.write_blob_and_stage(
                        &mut rd,
                        &format!("blob {d}"),
                        Some(d),
                        Some(size),
                        lease,
                    )?;
                } else {
                    let mut w = lease.writer(Some(d.clone()), Some(size))?;
                    crate::store::copy_buf(&mut rd, &mut w).map_err(|e| Error::Registry {
                        registry: self.host.clone(),
                        message: format!("download {d}: {e}"),
                    })?;
                    w.commit()?;
                }
                Ok(())
            })();
            match res {
                Ok(()) => {
                    progress.event(Progress::DownloadComplete { layer: d.clone() });
                    return Ok(());
                }
                Err(Error::SizeMismatch {
                    what,
                    expected,
                    actual,
                }) => {
                    let what = if what.contains(&self.host) {
                        what
                    } else if actual > expected {
                        format!(
                            "blob {d} from {} (reading stopped one byte past the descriptor's size)",
                            self.host
                        )
                    } else {
                        format!("blob {d} from {}", self.host)
                    };
                    return Err(Error::SizeMismatch {
                        what,
                        expected,
                        actual,
                    });
                }
                Err(Error::DigestMismatch {
                    expected, actual, ..
                }) => {
                    return Err(Error::DigestMismatch {
                        what: format!("blob {d} from {}", self.host),
                        expected,
                        actual,
                    })
                }
                Err(e @ Error::Unauthorized { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("download of {d} failed (attempt {}): {e}", attempt + 1);
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Registry {
            registry: self.host.clone(),
            message: format!("download {d} failed"),
        }))
    }

    fn blob_exists(&self, repo: &str, d: &Digest, scope: &str) -> Result<bool> {
        let r = self.send(
            "HEAD",
            &format!("/v2/{repo}/blobs/{d}"),
            scope,
            &[],
            &Body::None,
            &[404],
        )?;
        Ok(r.status() == 200)
    }

    /// Upload one blob from the content store (skipped if present; mounted from `mount_from`
    /// when possible).
    pub(super) fn push_blob(
        &self,
        svc: &ImageService,
        repo: &str,
        d: &Digest,
        mount_from: Option<&str>,
        progress: &dyn ProgressSink,
    ) -> Result<()> {
        let scope = match mount_from {
            Some(f) => format!("repository:{repo}:pull,push repository:{f}:pull"),
            None => format!("repository:{repo}:pull,push"),
        };
        if self.blob_exists(repo, d, &scope)? {
            progress.event(Progress::AlreadyExists { layer: d.clone() });
            return Ok(());
        }
        let mut start = format!("/v2/{repo}/blobs/uploads/");
        if let Some(f) = mount_from {
            start = format!("{start}?mount={d}&from={f}");
        }
        let r = self.send(
            "POST",
            &start,
            &scope,
            &[("Content-Length", "0")],
            &Body::Bytes(&[]),
            &[],
        )?;
        if r.status() == 201 {
            progress.event(Progress::Mounted {
                layer: d.clone(),
                from: mount_from.unwrap_or_default().to_string(),
            });
            return Ok(());
        }
        let mut loc = r
            .header("Location")
            .ok_or_else(|| Error::Registry {
                registry: self.host.clone(),
                message: format!("upload of {d}: no Location"),
            })?
            .to_string();
        let path = svc.content.path(d);
        let size = svc.content.size(d)?;
        let sep = |l: &str| if l.contains('?') { '&' } else { '?' };
        if self.opts.chunk_size > 0 && size > self.opts.chunk_size {
            let mut f = std::fs::File::open(&path).ctx("open blob", &path)?;
            let mut off = 0u64;
            let mut buf = vec![0u8; self.opts.chunk_size as usize];
            while off < size {
                let n = read_full(&mut f, &mut buf).ctx("read blob", &path)?;
                let range = format!("{}-{}", off, off + n as u64 - 1);
                let r = self.send(
                    "PATCH",
                    &loc,
                    &scope,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", &range),
                    ],
                    &Body::Bytes(&buf[..n]),
                    &[],
                )?;
                loc = r.header("Location").map(str::to_string).unwrap_or(loc);
                off += n as u64;
                progress.event(Progress::Pushing {
                    layer: d.clone(),
                    current: off,
                    total: size,
                });
            }
            let url = format!("{loc}{}digest={d}", sep(&loc));
            self.send(
                "PUT",
                &url,
                &scope,
                &[("Content-Length", "0")],
                &Body::Bytes(&[]),
                &[],
            )?;
        } else {
            let url = format!("{loc}{}digest={d}", sep(&loc));
            self.send(
                "PUT",
                &url,
                &scope,
                &[("Content-Type", "application/octet-stream")],
                &Body::File(path, size),
                &[],
            )?;
            progress.event(Progress::Pushing {
                layer: d.clone(),
                current: size,
                total: size,
            });
        }
        progress.event(Progress::Pushed { layer: d.clone() });
        Ok(())
    }
}

struct DownloadReader<'a, R> {
    inner: R,
    done: u64,
    last: u64,
    total: u64,
    layer: &'a Digest,
    sink: &'a dyn ProgressSink,
    host: &'a str,
}
impl<R: Read> Read for DownloadReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("download {} from {}: {e}", self.layer, self.host),
            )
        })?;
        self.done += n as u64;
        if self.done - self.last >= 512 * 1024 || (n == 0 && self.done != self.last) {
            self.last = self.done;
            self.sink.event(Progress::Downloading {
                layer: self.layer.clone(),
                current: self.done,
                total: self.total,
            });
        }
        if n == 0 {
            self.sink.event(Progress::Verifying {
                layer: self.layer.clone(),
            });
        }
        Ok(n)
    }
}

pub(super) fn copy_full_chunks(
    r: &mut dyn Read,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = read_full(r, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n])?;
    }
}

fn read_full(f: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
